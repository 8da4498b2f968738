"""The lean HTTP/1.1 client over TLS, as QCaaS is reached in production: a trio TLS server on
127.0.0.1 with a certificate from a throw-away CA (trustme)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import h11
import pytest
import trio

from oqc_trio import _http1, _wire
from oqc_trio._transport import RetryPolicy, Transport
from oqc_trio.auth import Credentials
from oqc_trio.exceptions import ServerUnreachable

trustme = pytest.importorskip("trustme")

TOKEN = "tok-SECRET-tls"


class TlsServer:
    """Answers every request with a small JSON body, keep-alive; counts handshakes."""

    def __init__(self) -> None:
        self.port = 0
        self.handshakes = 0
        self.targets: list[bytes] = []

    async def handle(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        parser = h11.Connection(h11.SERVER)
        try:
            await stream.do_handshake()
            self.handshakes += 1
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65_536)
                    if not data:
                        return
                    parser.receive_data(data)
                elif isinstance(event, h11.Request):
                    self.targets.append(event.target)
                elif isinstance(event, h11.EndOfMessage):
                    body = b'{"ok":true}'
                    await stream.send_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    parser = h11.Connection(h11.SERVER)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


@asynccontextmanager
async def tls_server(ca: trustme.CA) -> AsyncIterator[TlsServer]:
    server = TlsServer()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_ssl_over_tcp, host="127.0.0.1"), server.handle, 0, context
        )
        server.port = listeners[0].transport_listener.socket.getsockname()[1]
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


async def test_pool_speaks_tls_and_keeps_the_connection() -> None:
    ca = trustme.CA()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with tls_server(ca) as server:
        pool = _http1.Pool(
            connect_timeout=5, read_timeout=5, write_timeout=5, ssl_context=lambda: client_context
        )
        origin = _http1.Origin("https", "localhost", server.port)
        headers = [(b"Host", origin.host_header.encode())]
        for _ in range(3):
            answer = await pool.request(origin, b"GET", b"/admin/qpu", headers, None)
            assert (answer.status_code, answer.content) == (200, b'{"ok":true}')
        pool.close()
    assert pool.connections_opened == 1 and server.handshakes == 1
    assert server.targets == [b"/admin/qpu"] * 3


async def test_transport_trusts_the_cas_named_by_ssl_cert_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    async with tls_server(ca) as server:
        url = f"https://localhost:{server.port}"
        transport = Transport(url, Credentials(token=TOKEN), http_client="h11")
        answer = await transport.send(_wire.Api(url).list_qpus())
        await transport.aclose()
    assert answer.json() == {"ok": True}


async def test_an_untrusted_certificate_is_unreachable_and_never_sends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    async with tls_server(trustme.CA()) as server:
        url = f"https://localhost:{server.port}"
        transport = Transport(
            url, Credentials(token=TOKEN), http_client="h11", retry=RetryPolicy(1)
        )
        with pytest.raises(ServerUnreachable) as info:
            await transport.send(_wire.Api(url).list_qpus())
        await transport.aclose()
    assert "SECRET" not in str(info.value)
    assert server.targets == []
