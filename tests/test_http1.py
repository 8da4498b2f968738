"""Tests of the lean HTTP/1.1 client (``_http1``) over real loopback sockets.

Every server here is a small scripted raw-TCP server on 127.0.0.1 (port 0), run inside the
test by :func:`serving`, which cancels it when the test's ``async with`` ends. Requests are
parsed on the server side with ``h11``; answers are written as raw bytes, so each test says
exactly what goes over the wire. Timing uses the real clock (sockets and the autojump clock
do not mix), with timeouts of a fraction of a second.
"""

from __future__ import annotations

import gzip
import socket
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import h11
import pytest
import trio
import trio.lowlevel
from hypothesis import given, settings
from hypothesis import strategies as st

from oqc_trio import _http1, _wire
from oqc_trio._transport import RetryPolicy, Timeouts, Transport
from oqc_trio.auth import Credentials
from oqc_trio.exceptions import RequestTimeout, ServerUnreachable, TransportError

TOKEN = "tok-SECRET-1234567890"

Handler = Callable[[trio.SocketStream, "Server"], Awaitable[None]]


class Server:
    """What a scripted server saw: accepted connections and parsed requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.port = 0
        self.accepts = 0
        self.requests: list[tuple[h11.Request, bytes]] = []
        # Connections our handlers have closed, and an event replaced at each close.
        self.closes = 0
        self._closing = trio.Event()
        # Set when a client closed its end (a handler read EOF).
        self.client_closed = trio.Event()

    @property
    def origin(self) -> _http1.Origin:
        return _http1.Origin("http", "127.0.0.1", self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, stream: trio.SocketStream) -> None:
        self.accepts += 1
        try:
            await self.handler(stream, self)
        except trio.BrokenResourceError:
            pass  # the client went away mid-answer
        finally:
            await stream.aclose()
            self.closes += 1
            self._closing.set()
            self._closing = trio.Event()

    async def wait_closes(self, count: int) -> None:
        """Wait until our handlers have closed ``count`` connections in all."""
        while self.closes < count:
            await self._closing.wait()

    async def read_request(self, stream: trio.SocketStream) -> tuple[h11.Request, bytes] | None:
        """The next complete request on ``stream``, or None at EOF. The client never
        pipelines, so a fresh parser per request loses no bytes."""
        parser = h11.Connection(h11.SERVER)
        head: h11.Request | None = None
        body = b""
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65_536)
                if not data:
                    self.client_closed.set()
                    return None
                parser.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                self.requests.append((head, body))
                return head, body


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Server]:
    server = Server(handler)
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        server.port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, server._serve, listeners)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


def answer(
    body: bytes = b"{}", *, status: int = 200, headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """A raw HTTP/1.1 answer with a Content-Length (unless ``headers`` frames it)."""
    lines = [f"HTTP/1.1 {status} X"]
    lines += [f"{name}: {value}" for name, value in headers]
    if not any(name.lower() in ("content-length", "transfer-encoding") for name, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"


def keep_alive(reply: Callable[[h11.Request, bytes], bytes]) -> Handler:
    """A handler answering every request on a connection with ``reply(request, body)``."""

    async def handler(stream: trio.SocketStream, server: Server) -> None:
        while (received := await server.read_request(stream)) is not None:
            await stream.send_all(reply(*received))

    return handler


def pool(read_timeout: float = 0.5) -> _http1.Pool:
    return _http1.Pool(connect_timeout=0.5, read_timeout=read_timeout, write_timeout=0.5)


async def get(pool: _http1.Pool, origin: _http1.Origin, target: bytes = b"/") -> _http1.Answer:
    headers = [(b"Host", origin.host_header.encode())]
    return await pool.request(origin, b"GET", target, headers, None)


async def post(pool: _http1.Pool, origin: _http1.Origin, body: bytes) -> _http1.Answer:
    headers = [(b"Host", origin.host_header.encode()), (b"Content-Length", b"%d" % len(body))]
    return await pool.request(origin, b"POST", b"/", headers, body)


def transport(
    url: str, *, retry: RetryPolicy | None = None, timeouts: Timeouts | None = None
) -> Transport:
    """A lean-client transport with a token, quick timeouts and retries without backoff."""
    return Transport(
        url,
        Credentials(token=TOKEN),
        http_client="h11",
        retry=retry or RetryPolicy(max_attempts=3, base_delay=0.0),
        timeouts=timeouts or Timeouts(connect=0.5, read=0.5, write=0.5),
    )


def GET(url: str) -> _wire.Request:
    return _wire.Request("GET", url + "/thing", "thing")


def POST(url: str, body: bytes = b"{}") -> _wire.Request:
    return _wire.Request("POST", url + "/thing", "thing", body=body)


def _refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- keep-alive and connection reuse -----------------------------------------------------------
async def test_sequential_requests_reuse_one_connection() -> None:
    async with serving(keep_alive(lambda request, body: answer(request.target))) as server:
        lean = pool()
        targets = [b"/a", b"/b?x=1", b"/c"]
        for target in targets:
            got = await get(lean, server.origin, target)
            assert (got.status_code, got.content) == (200, target)
        assert lean.connections_opened == 1
        assert server.accepts == 1

        client = transport(server.url)
        for _ in range(3):
            assert (await client.send(GET(server.url))).content == b"/thing"
        assert server.accepts == 2  # one more, for the transport's own pool
        await client.aclose()


async def test_stale_idle_connection_is_dropped_before_reuse() -> None:
    async def answer_then_close(stream: trio.SocketStream, server: Server) -> None:
        await server.read_request(stream)
        await stream.send_all(answer(b'{"ok": 1}'))  # keep-alive answer, then EOF anyway

    async with serving(answer_then_close) as server:
        lean = pool()
        await get(lean, server.origin)
        await server.wait_closes(1)
        # The pool never retries: a POST sent on the dead connection would fail.
        assert (await post(lean, server.origin, b"{}")).status_code == 200
        assert lean.connections_opened == 2

        client = transport(server.url)
        await client.send(GET(server.url))
        await server.wait_closes(3)
        assert (await client.send(POST(server.url))).json() == {"ok": 1}
        stats = client.statistics()
        assert (stats.retries, stats.requests) == (0, {"thing": 2})
        assert server.accepts == 4
        await client.aclose()


async def test_connection_close_answer_is_not_reused() -> None:
    reply = answer(b"bye", headers=[("Connection", "close"), ("Content-Length", "3")])

    async def close_but_linger(stream: trio.SocketStream, server: Server) -> None:
        await server.read_request(stream)
        await stream.send_all(reply)
        await trio.sleep_forever()  # the client must not wait for our EOF, nor reuse us

    async with serving(close_but_linger) as server:
        lean = pool()
        for _ in range(2):
            assert (await get(lean, server.origin)).content == b"bye"
        assert lean.connections_opened == server.accepts == 2


async def test_close_delimited_body_is_read_to_eof() -> None:
    body = bytes(range(256)) * 40

    async def no_length(stream: trio.SocketStream, server: Server) -> None:
        await server.read_request(stream)
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: x/y\r\n\r\n")
        for start in range(0, len(body), 1000):
            await stream.send_all(body[start : start + 1000])
            await trio.lowlevel.checkpoint()

    async with serving(no_length) as server:
        lean = pool()
        got = await get(lean, server.origin)
        assert got.content == body
        assert got.headers["content-type"] == "x/y"
        await get(lean, server.origin)
        assert lean.connections_opened == 2


# -- framing and content encodings -------------------------------------------------------------
PAYLOAD = b'{"results": [' + b", ".join(b"%d" % i for i in range(500)) + b"]}"


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        (None, PAYLOAD),
        ("gzip", gzip.compress(PAYLOAD)),
        ("GZip ", gzip.compress(PAYLOAD)),
        ("deflate", zlib.compress(PAYLOAD)),
        ("deflate", _raw_deflate(PAYLOAD)),
        ("identity", PAYLOAD),
    ],
)
@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_bodies_are_unchunked_and_decoded(
    encoding: str | None, encoded: bytes, framing: str
) -> None:
    headers = [("Content-Encoding", encoding)] if encoding else []
    if framing == "chunked":
        pieces = [encoded[i : i + 97] for i in range(0, len(encoded), 97)]
        reply = answer(chunked(*pieces), headers=[*headers, ("Transfer-Encoding", "chunked")])
    else:
        reply = answer(encoded, headers=headers)
    async with serving(keep_alive(lambda request, body: reply)) as server:
        lean = pool()
        for _ in range(2):
            assert (await get(lean, server.origin)).content == PAYLOAD
        assert lean.connections_opened == 1


@pytest.mark.parametrize(
    ("encoding", "encoded"), [("br", b"\x0b\x02\x80{}\x03"), ("gzip", b"not gzip at all")]
)
async def test_undecodable_body_is_a_protocol_error(encoding: str, encoded: bytes) -> None:
    reply = answer(encoded, headers=[("Content-Encoding", encoding)])
    async with serving(keep_alive(lambda request, body: reply)) as server:
        lean = pool()
        with pytest.raises(_http1.ProtocolError, match=encoding):
            await get(lean, server.origin)
        with pytest.raises(_http1.ProtocolError):
            await get(lean, server.origin)
        assert lean.connections_opened == 2  # a failed exchange never returns its connection


async def test_informational_answers_are_skipped() -> None:
    early = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
    reply = early + answer(b"final", headers=[("X-Final", "yes")])
    async with serving(keep_alive(lambda request, body: reply)) as server:
        lean = pool()
        for _ in range(2):
            got = await get(lean, server.origin)
            assert (got.status_code, got.content) == (200, b"final")
            assert got.headers["x-final"] == "yes"
            assert "link" not in got.headers
        assert lean.connections_opened == 1


# -- failures ----------------------------------------------------------------------------------
def _cut_mid_body(times: int) -> Handler:
    """Answers the first ``times`` requests with half a body, then closes; later ones fully."""

    async def handler(stream: trio.SocketStream, server: Server) -> None:
        while await server.read_request(stream) is not None:
            if len(server.requests) <= times:
                await stream.send_all(answer(b"x" * 100)[:-60])
                return
            await stream.send_all(answer(b'{"whole": true}'))

    return handler


async def test_server_closing_mid_body_is_connection_lost() -> None:
    async with serving(_cut_mid_body(1)) as server:
        lean = pool()
        with pytest.raises(_http1.ConnectionLost, match="middle of the answer") as caught:
            await get(lean, server.origin)
        assert caught.value.maybe_sent
        assert (await get(lean, server.origin)).content == b'{"whole": true}'


async def test_server_closing_without_an_answer_is_connection_lost() -> None:
    async def read_then_close(stream: trio.SocketStream, server: Server) -> None:
        await server.read_request(stream)

    async with serving(read_then_close) as server:
        with pytest.raises(_http1.ConnectionLost, match="without an answer"):
            await get(pool(), server.origin)


async def test_transport_retries_get_after_lost_connection() -> None:
    async with serving(_cut_mid_body(1)) as server:
        client = transport(server.url)
        response = await client.send(GET(server.url))
        assert (response.json(), response.attempts) == ({"whole": True}, 2)
        assert client.statistics().retries == 1
        assert server.accepts == 2
        await client.aclose()


async def test_transport_does_not_retry_post_after_lost_connection() -> None:
    async with serving(_cut_mid_body(99)) as server:
        client = transport(server.url)
        with pytest.raises(TransportError, match="ConnectionLost") as caught:
            await client.send(POST(server.url))
        assert type(caught.value) is TransportError
        assert len(server.requests) == 1
        assert client.statistics().retries == 0
        await client.aclose()


async def _never_answer(stream: trio.SocketStream, server: Server) -> None:
    await server.read_request(stream)
    await trio.sleep_forever()


async def test_read_timeout() -> None:
    async with serving(_never_answer) as server:
        start = trio.current_time()
        with pytest.raises(_http1.ReadTimedOut):
            await get(pool(read_timeout=0.2), server.origin)
        assert 0.15 < trio.current_time() - start < 2

        client = transport(
            server.url, timeouts=Timeouts(read=0.2), retry=RetryPolicy(max_attempts=1)
        )
        with pytest.raises(RequestTimeout, match="ReadTimedOut"):
            await client.send(GET(server.url))
        assert len(server.requests) == 2
        await client.aclose()


async def test_connect_refused() -> None:
    port = _refused_port()
    with pytest.raises(_http1.ConnectFailed) as caught:
        await get(pool(), _http1.Origin("http", "127.0.0.1", port))
    assert not caught.value.maybe_sent

    url = f"http://127.0.0.1:{port}"
    client = transport(url)
    with pytest.raises(ServerUnreachable):
        await client.send(POST(url))  # not idempotent, but nothing was sent: retried
    stats = client.statistics()
    assert (stats.retries, stats.requests) == (2, {"thing": 3})
    await client.aclose()


async def test_cancelled_exchange_closes_its_connection() -> None:
    arrived = trio.Event()

    async def slow(stream: trio.SocketStream, server: Server) -> None:
        while await server.read_request(stream) is not None:
            if len(server.requests) == 1:
                arrived.set()
                # No answer: the cancelled client must close, which we see as EOF.
                assert await stream.receive_some() == b""
                server.client_closed.set()
                return
            await stream.send_all(answer(b"late"))

    async with serving(slow) as server:
        lean = pool(read_timeout=10)
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(get, lean, server.origin)
                await arrived.wait()
                scope.cancel()
        assert scope.cancelled_caught
        assert lean.connections_opened == 1
        with trio.fail_after(2):
            await server.client_closed.wait()  # the cancelled connection was closed
        assert (await get(lean, server.origin)).content == b"late"
        assert lean.connections_opened == server.accepts == 2


async def test_transport_deadline_mid_exchange_then_a_fresh_connection() -> None:
    async def first_slow(stream: trio.SocketStream, server: Server) -> None:
        while await server.read_request(stream) is not None:
            if len(server.requests) == 1:
                await trio.sleep(5)
            await stream.send_all(answer(b"{}"))

    async with serving(first_slow) as server:
        client = transport(server.url)
        with pytest.raises(RequestTimeout, match="deadline"):
            await client.send(GET(server.url), deadline=trio.current_time() + 0.2)
        assert (await client.send(GET(server.url))).json() == {}
        assert server.accepts == 2
        await client.aclose()


async def test_garbage_is_a_protocol_error_and_the_token_stays_secret() -> None:
    async def garbage(stream: trio.SocketStream, server: Server) -> None:
        received = await server.read_request(stream)
        assert received is not None
        # Echo the request's token back inside the garbage: error messages quote it.
        token = dict(received[0].headers).get(b"authentication-token", b"none")
        await stream.send_all(b"HELLO " + token + b"\r\n\r\n")
        await trio.sleep_forever()

    async with serving(garbage) as server:
        with pytest.raises(_http1.ProtocolError, match="HELLO"):
            await get(pool(), server.origin)

        client = transport(server.url, retry=RetryPolicy(max_attempts=1))
        with pytest.raises(TransportError, match="ProtocolError") as caught:
            await client.send(GET(server.url))
        assert type(caught.value) is TransportError
        sent = dict(server.requests[-1][0].headers)[b"authentication-token"]
        assert sent == TOKEN.encode()  # so the garbage, and h11's message, quoted it
        assert "HELLO" in str(caught.value)
        assert TOKEN not in str(caught.value)
        assert all(TOKEN not in repr(arg) for arg in caught.value.args)
        await client.aclose()


# -- what goes on the wire ---------------------------------------------------------------------
async def test_request_bytes_on_the_wire() -> None:
    async with serving(keep_alive(lambda request, body: answer())) as server:
        client = transport(server.url)
        query = (("a", "b c"), ("é", "x&y=z"))
        await client.send(_wire.Request("GET", server.url + "/p/q r", "get", params=query))
        body = b'{"program": "OPENQASM 2.0;", "n": 1000}'
        await client.send(POST(server.url, body))
        await client.aclose()

    (got, got_body), (posted, posted_body) = server.requests
    assert (got.method, got.http_version) == (b"GET", b"1.1")
    assert got.target == b"/p/q%20r?a=b+c&%C3%A9=x%26y%3Dz"
    get_headers = dict(got.headers)
    assert get_headers[b"host"] == b"127.0.0.1:%d" % server.port
    assert get_headers[b"authentication-token"] == TOKEN.encode()
    assert get_headers[b"accept-encoding"] == b"gzip, deflate"
    assert b"content-length" not in get_headers
    assert b"transfer-encoding" not in get_headers
    assert b"content-type" not in get_headers
    assert got_body == b""

    assert (posted.method, posted.target) == (b"POST", b"/thing")
    post_headers = dict(posted.headers)
    assert post_headers[b"content-type"] == b"application/json"
    assert post_headers[b"content-length"] == b"%d" % len(body)
    assert post_headers[b"authentication-token"] == TOKEN.encode()
    assert posted_body == body
    # No header is sent twice.
    assert len(post_headers) == len(posted.headers)


def test_origin_host_header_and_equality() -> None:
    assert _http1.Origin("http", "example.org", 80).host_header == "example.org"
    assert _http1.Origin("https", "example.org", None).host_header == "example.org"
    assert _http1.Origin("https", "example.org", 8443).host_header == "example.org:8443"
    assert _http1.Origin("http", "::1", 8080).host_header == "[::1]:8080"
    # Equal origins are one pool key; scheme and port tell origins apart.
    same = {_http1.Origin("https", "h", None), _http1.Origin("https", "h", 443)}
    assert len(same) == 1
    assert _http1.Origin("http", "h", 443) != _http1.Origin("https", "h", 443)
    assert _http1.Origin("http", "h", 8080) != _http1.Origin("http", "h", 8081)


# -- a property: bodies survive the round trip, whatever the segmentation ----------------------
@settings(max_examples=30, deadline=None)
@given(
    bodies=st.lists(st.binary(max_size=4096), min_size=1, max_size=4),
    piece_sizes=st.lists(st.integers(1, 700), min_size=1, max_size=8),
    use_chunked=st.booleans(),
)
async def test_echoed_bodies_round_trip(
    bodies: list[bytes], piece_sizes: list[int], use_chunked: bool
) -> None:
    async def echo(stream: trio.SocketStream, server: Server) -> None:
        while (received := await server.read_request(stream)) is not None:
            body = received[1]
            if use_chunked:
                raw = answer(
                    chunked(body[:100], body[100:]), headers=[("Transfer-Encoding", "chunked")]
                )
            else:
                raw = answer(body)
            sizes = iter(piece_sizes * (len(raw) // min(piece_sizes) + 1))
            start = 0
            while start < len(raw):
                end = start + next(sizes)
                await stream.send_all(raw[start:end])
                await trio.lowlevel.checkpoint()  # lets the client read a partial answer
                start = end

    async with serving(echo) as server:
        lean = pool()
        for body in bodies:
            assert (await post(lean, server.origin, body)).content == body
        assert lean.connections_opened == server.accepts == 1


async def test_a_token_with_a_line_break_is_refused_without_being_quoted() -> None:
    # A token read from a file often keeps its newline; h11's own message would quote it.
    async def silent(stream: trio.SocketStream, server: Server) -> None:
        await server.read_request(stream)

    async with serving(silent) as server:
        transport = Transport(server.url, Credentials(token=TOKEN + "\n"), http_client="h11")
        with pytest.raises(TransportError) as info:
            await transport.send(_wire.Api(server.url).list_qpus())
        await transport.aclose()
    assert "SECRET" not in str(info.value) and "HTTP forbids" in str(info.value)
    assert transport.statistics().retries == 0 and server.requests == []
