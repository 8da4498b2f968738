"""A lean HTTP/1.1 client for trio: keep-alive connections on trio streams, parsed by ``h11``.

:class:`~oqc_trio._transport.Transport` sends through this by default. It exists because a
status poll is tiny and frequent: through httpx → httpcore, each exchange cost ~0.7 ms of CPU
on our reference machine, most of it in the connection pool (which checks every idle
connection with a ``poll()`` system call on every request) and in per-request object layers;
the same exchange over ``h11`` directly costs ~0.1 ms (``benchmarks/PROFILE.md``).

What it does, and no more:

- HTTP/1.1 over TCP or TLS (``trio.SSLStream``, ALPN ``http/1.1``), one request at a time per
  connection, keep-alive, per origin a LIFO stack of idle connections. The caller bounds
  concurrency (the transport's capacity limiter), so the pool needs no queue of its own.
- Before an idle connection is reused, one non-blocking readability check on that
  connection alone: a connection the server closed (or sent stray bytes on) is dropped.
  Connections idle longer than ``keepalive_expiry`` are dropped unchecked.
- ``connect``, ``read`` and ``write`` timeouts per operation, as httpx has them.
- ``gzip`` and ``deflate`` response bodies are decoded.
- Any failure, a cancellation included, closes the connection it happened on: a connection
  goes back to the pool only after a complete, keep-alive exchange.

Failures are :class:`HttpError` subclasses; :attr:`HttpError.maybe_sent` says whether the
request may have reached the server (False only when no connection was made), which is what
decides whether a non-idempotent request may be retried.

Not here, on purpose: proxies and HTTP/2 (the transport falls back to httpx for those),
redirects (the service has none; we never follow them), cookies, streaming bodies.
"""

from __future__ import annotations

import ssl
import time
import zlib
from collections import deque
from collections.abc import Callable
from typing import Final

import h11
import trio

__all__ = [
    "Answer",
    "ConnectFailed",
    "ConnectTimedOut",
    "ConnectionLost",
    "HttpError",
    "InvalidRequest",
    "Origin",
    "Pool",
    "ProtocolError",
    "ReadTimedOut",
    "WriteTimedOut",
]

_RECEIVE_BYTES: Final = 65_536


class HttpError(Exception):
    """A request failed below HTTP (no answer was received)."""

    #: Whether the request may have reached the server.
    maybe_sent: bool = True


class ConnectFailed(HttpError):
    """No connection could be made (refused, unreachable, name not resolved, TLS failed)."""

    maybe_sent = False


class ConnectTimedOut(ConnectFailed):
    """The connection (TCP and TLS handshake) took longer than the connect timeout."""


class ReadTimedOut(HttpError):
    """No bytes of the answer arrived within the read timeout."""


class WriteTimedOut(HttpError):
    """The request could not be written within the write timeout."""


class ConnectionLost(HttpError):
    """The connection broke or was closed before the whole answer arrived."""


class ProtocolError(HttpError):
    """The server's bytes were not valid HTTP/1.1."""


class InvalidRequest(ValueError):
    """The request cannot be written as HTTP/1.1 (an illegal header value or target). Not an
    :class:`HttpError`: nothing was sent and sending again cannot help."""


class Origin:
    """Where a connection goes: scheme, host, port, and the ``Host`` header value.

    Equal origins (same scheme, host and port) share the pool's idle connections.
    """

    __slots__ = ("_hash", "_key", "host", "host_header", "port", "tls")

    def __init__(self, scheme: str, host: str, port: int | None) -> None:
        self.tls = scheme == "https"
        self.host = host
        default = 443 if self.tls else 80
        self.port = port or default
        shown = f"[{host}]" if ":" in host else host
        self.host_header = shown if self.port == default else f"{shown}:{self.port}"
        self._key = (self.tls, host, self.port)
        self._hash = hash(self._key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Origin):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Origin({'https' if self.tls else 'http'}://{self.host_header})"


class Answer:
    """A complete HTTP answer: ``status_code``, ``headers`` (lower-case names, the last of
    repeated headers wins) and the decoded ``content``. Same attribute names as
    ``httpx.Response``, which the transport also handles."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def __repr__(self) -> str:
        return f"Answer({self.status_code}, {len(self.content)} bytes)"


class _Connection:
    __slots__ = ("idle_since", "protocol", "socket", "stream")

    def __init__(self, stream: trio.abc.Stream, socket: trio.socket.SocketType) -> None:
        self.stream = stream
        self.socket = socket
        self.protocol = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def close(self) -> None:
        # Synchronous on purpose: it runs in ``finally`` blocks under cancellation. No TLS
        # close_notify is needed, HTTP/1.1 framing tells where each answer ends.
        self.socket.close()


def _decode(content: bytes, encoding: str | None) -> bytes:
    if not encoding or not content:
        return content
    coding = encoding.strip().lower()
    try:
        if coding == "gzip":
            return zlib.decompress(content, 16 + zlib.MAX_WBITS)
        if coding == "deflate":
            try:
                return zlib.decompress(content)
            except zlib.error:
                return zlib.decompress(content, -zlib.MAX_WBITS)
    except zlib.error as exc:
        raise ProtocolError(f"the {coding} body does not decompress ({exc})") from exc
    if coding == "identity":
        return content
    raise ProtocolError(f"unsupported content-encoding {encoding!r}")


class Pool:
    """Idle keep-alive connections per :class:`Origin`, and the exchange itself.

    Belongs to one ``trio.run`` (trio sockets do not survive their run). ``max_idle`` caps the
    idle connections kept per origin; the caller caps connections in use. ``ssl_context`` makes
    the TLS context, once, when the first ``https`` connection is opened.
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        write_timeout: float,
        ssl_context: Callable[[], ssl.SSLContext] = ssl.create_default_context,
        max_idle: int = 16,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._make_ssl_context = ssl_context
        self._ssl_context: ssl.SSLContext | None = None
        self._max_idle = max_idle
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[Origin, deque[_Connection]] = {}
        self.connections_opened = 0

    async def request(
        self,
        origin: Origin,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
    ) -> Answer:
        """Send one request (``headers`` must include ``Host`` and, with a body,
        ``Content-Length``) and return the complete answer, or raise :class:`HttpError`."""
        connection = self._checkout(origin)
        if connection is None:
            connection = await self._connect(origin)
        reusable = False
        try:
            answer = await self._exchange(connection, method, target, headers, body)
            protocol = connection.protocol
            if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
                protocol.start_next_cycle()
                reusable = True
            return answer
        finally:
            if reusable:
                self._checkin(origin, connection)
            else:
                connection.close()

    def close(self) -> None:
        """Close every idle connection (connections in use close when their request ends)."""
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    # -- connections -----------------------------------------------------------------------
    def _checkout(self, origin: Origin) -> _Connection | None:
        connections = self._idle.get(origin)
        if not connections:
            return None
        now = time.monotonic()
        while connections:
            connection = connections.pop()
            # Readable while idle means the server closed it (EOF) or sent bytes out of turn.
            if now - connection.idle_since < self._keepalive_expiry and not (
                connection.socket.is_readable()
            ):
                return connection
            connection.close()
        return None

    def _checkin(self, origin: Origin, connection: _Connection) -> None:
        connections = self._idle.get(origin)
        if connections is None:
            connections = self._idle[origin] = deque()
        if len(connections) >= self._max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        connections.append(connection)

    async def _connect(self, origin: Origin) -> _Connection:
        where = f"{origin.host_header}"
        tcp: trio.SocketStream | None = None
        try:
            with trio.move_on_after(self._connect_timeout) as scope:
                tcp = await trio.open_tcp_stream(origin.host, origin.port)
                stream: trio.abc.Stream = tcp
                if origin.tls:
                    if self._ssl_context is None:
                        self._ssl_context = self._make_ssl_context()
                    context = self._ssl_context
                    tls = trio.SSLStream(
                        tcp, context, server_hostname=origin.host, https_compatible=True
                    )
                    await tls.do_handshake()
                    stream = tls
                self.connections_opened += 1
                return _Connection(stream, tcp.socket)
        except (OSError, trio.BrokenResourceError) as exc:
            if tcp is not None:
                tcp.socket.close()
            cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else exc
            raise ConnectFailed(f"{where}: {cause or type(exc).__name__}") from exc
        except BaseException:
            if tcp is not None:
                tcp.socket.close()
            raise
        assert scope.cancelled_caught
        if tcp is not None:
            tcp.socket.close()
        raise ConnectTimedOut(f"{where}: no connection within {self._connect_timeout:g} s")

    # -- one exchange ----------------------------------------------------------------------
    async def _exchange(
        self,
        connection: _Connection,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
    ) -> Answer:
        protocol = connection.protocol
        stream = connection.stream
        try:
            head = protocol.send(h11.Request(method=method, target=target, headers=headers))
            middle = protocol.send(h11.Data(data=body)) if body else None
            end = protocol.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            # h11's message quotes the offending value, which may be a token.
            raise InvalidRequest(
                "not a valid HTTP/1.1 request: a header value or the target holds characters "
                "HTTP forbids (a token or URL with a line break or control character?)"
            ) from None
        try:
            with trio.move_on_after(self._write_timeout) as scope:
                await stream.send_all(b"".join(part for part in (head, middle, end) if part))
            if scope.cancelled_caught:
                raise WriteTimedOut(f"could not send within {self._write_timeout:g} s")
            return await self._receive(connection)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else exc
            raise ConnectionLost(f"connection lost ({cause or type(exc).__name__})") from exc
        except h11.RemoteProtocolError as exc:
            raise ProtocolError(f"invalid HTTP/1.1 from the server ({exc})") from exc

    async def _receive(self, connection: _Connection) -> Answer:
        protocol = connection.protocol
        stream = connection.stream
        read_timeout = self._read_timeout
        status = 0
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        eof = False
        scope = trio.CancelScope()
        with scope:
            try:
                while True:
                    event = protocol.next_event()
                    if event is h11.NEED_DATA:
                        scope.deadline = trio.current_time() + read_timeout
                        data = await stream.receive_some(_RECEIVE_BYTES)
                        eof = not data
                        protocol.receive_data(bytes(data))
                    elif isinstance(event, h11.Data):
                        chunks.append(event.data)
                    elif isinstance(event, h11.Response):
                        status = event.status_code
                        # h11 gives header names lower-cased.
                        headers = {
                            name.decode("latin-1"): value.decode("latin-1")
                            for name, value in event.headers
                        }
                    elif isinstance(event, h11.EndOfMessage):
                        content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                        return Answer(
                            status, headers, _decode(content, headers.get("content-encoding"))
                        )
                    # InformationalResponse (1xx): wait for the final answer.
            except h11.RemoteProtocolError as exc:
                # An EOF before the answer is complete is how h11 reports a closed connection.
                if not eof:
                    raise
                what = "in the middle of the answer" if status else "without an answer"
                raise ConnectionLost(f"the server closed the connection {what}") from exc
        raise ReadTimedOut(f"no answer within {read_timeout:g} s")
