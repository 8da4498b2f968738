"""Serving the app over TCP with hypercorn's trio worker, keeping a handle on every open
connection so that an injected fault can close one without answering.

An ASGI app cannot drop its connection: when it fails before answering, hypercorn answers
500 for it. So :func:`serve` assembles the pieces that ``hypercorn.trio.serve`` assembles
(its ``TCPServer`` per connection, one ``WorkerContext``), and registers each accepted
stream under the client's address, the ``client`` of the request's ASGI scope:
:meth:`Connections.drop` shuts that socket down, and the client sees the connection close
without a response (httpx: ``RemoteProtocolError: Server disconnected without sending a
response``). ``TCPServer`` and ``WorkerContext`` are hypercorn internals (written against
hypercorn 0.18; the drop and restart tests catch a change); the lifespan protocol is not
run (the emulator's app has none).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from typing import Any

import hypercorn.config
import trio

__all__ = ["Connections", "serve"]


def _peer(stream: trio.SocketStream) -> tuple[str, int] | None:
    try:
        address = stream.socket.getpeername()
    except OSError:
        return None
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None


class Connections:
    """The open connections of a server, by client ``(host, port)``."""

    def __init__(self) -> None:
        self._streams: dict[tuple[str, int], trio.SocketStream] = {}
        #: Connections closed by :meth:`drop` so far.
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._streams)

    def add(self, stream: trio.SocketStream) -> tuple[str, int] | None:
        """Register an accepted connection; returns its key."""
        key = _peer(stream)
        if key is not None:
            self._streams[key] = stream
        return key

    def remove(self, key: tuple[str, int] | None) -> None:
        """Forget a connection that ended."""
        if key is not None:
            self._streams.pop(key, None)

    def drop(self, client: Iterable[Any] | None) -> bool:
        """Close the connection of ``client`` (an ASGI scope's ``client``) at once, without
        a response. False if it is not one of ours (then nothing happens)."""
        if client is None:
            return False
        host, port = tuple(client)[:2]
        stream = self._streams.get((str(host), int(port)))
        if stream is None:
            return False
        with contextlib.suppress(OSError):  # already gone
            stream.socket.shutdown(socket.SHUT_RDWR)
        self.dropped += 1
        return True


async def serve(
    app: Any,
    config: hypercorn.config.Config,
    connections: Connections,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ASGI ``app`` on ``config.bind`` until cancelled; ``task_status`` receives
    the bound URLs (as ``hypercorn.trio.serve`` gives them)."""
    from hypercorn.statsd import StatsdLogger
    from hypercorn.trio.tcp_server import TCPServer
    from hypercorn.trio.worker_context import WorkerContext
    from hypercorn.utils import repr_socket_addr, wrap_app

    config.set_statsd_logger_class(StatsdLogger)
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    context = WorkerContext(None)
    listeners = []
    binds = []
    for sock in config.create_sockets().insecure_sockets:
        sock.listen(config.backlog)
        listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
        binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")

    async def handle(stream: trio.SocketStream) -> None:
        key = connections.add(stream)
        try:
            await TCPServer(wrapped, config, context, {}, stream)  # type: ignore[arg-type]
        finally:
            connections.remove(key)

    async with trio.open_nursery() as nursery:
        task_status.started(binds)
        await trio.serve_listeners(handle, listeners, handler_nursery=nursery)
