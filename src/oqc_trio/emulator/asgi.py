"""HTTP plumbing of the emulator app: the body-size guard, JSON responses in the contract's
shapes, and the wrapper that turns every handler into an endpoint that counts, injects
faults, authenticates, applies per-user limits, waits for its changes to be stored, and
never answers 500 to bad input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._wire import error_body
from .bodies import RequestRejected
from .faults import FaultRule
from .limits import format_retry_after
from .state import EmulatorState, User

__all__ = [
    "BodyLimitMiddleware",
    "Handler",
    "JsonResponse",
    "ServerHooks",
    "endpoint",
    "error_response",
    "token_from",
]

logger = logging.getLogger(__name__)

#: A route handler: the request and the authenticated user (None on open routes) in, a
#: JSON-able answer out (sent with 200) or a ready Response; raise RequestRejected for any
#: error answer.
Handler = Callable[[Request, User | None], Awaitable[Any]]


class JsonResponse(Response):
    """``application/json``, compact, ASCII-only (so no input string can make encoding
    fail), NaN refused."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise ``content``."""
        return json.dumps(
            content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
        ).encode("ascii")


def error_response(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    retry_after: float | None = None,
) -> Response:
    """The contract's error body ``{"response": {"errors": [message]}}``, plus the v4
    gateway's ``detail`` with the same message (each dialect's client reads its own key);
    ``retry_after`` seconds become a ``Retry-After`` header."""
    if retry_after is not None:
        headers = {**(headers or {}), "retry-after": format_retry_after(retry_after)}
    return JsonResponse({**error_body(message), "detail": message}, status, headers=headers)


async def _no_flush() -> None:
    return None


@attrs.define
class ServerHooks:
    """What an endpoint may ask of the server around the app.

    ``drop(client)`` closes the connection of an ASGI ``client`` address without an answer
    (False when the server cannot); ``restart(downtime_s)`` restarts the server;
    ``flush()`` returns once the state's changes so far are stored (``--db``).
    """

    drop: Callable[[Any], bool] = lambda client: False
    restart: Callable[[float], None] | None = None
    flush: Callable[[], Awaitable[None]] = _no_flush


class DroppedConnection(ConnectionAbortedError):
    """Raised to the ASGI server when a connection must be dropped but the server cannot
    do it for us (an app served by another server than :func:`open_emulator`'s)."""


def _fault_response(fault: FaultRule) -> Response:
    status = fault.status[0]
    retry_after = fault.retry_after_s if status in (429, 503) else None
    return error_response(status, fault.message, retry_after=retry_after)


def _drop(hooks: ServerHooks, request: Request) -> Response:
    if not hooks.drop(request.scope.get("client")):
        raise DroppedConnection("injected fault: drop the connection")
    # Nobody will read this: the socket is already shut down.
    return Response(status_code=500)


def token_from(request: Request) -> str | None:
    """The token of ``Authentication-Token``, or of ``Authorization: Bearer`` (v4)."""
    token = request.headers.get("authentication-token")
    if token:
        return token.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def endpoint(
    state: EmulatorState,
    route: str,
    handler: Handler,
    *,
    hooks: ServerHooks | None = None,
    auth: bool = True,
    admin: bool = False,
    counted: bool = True,
    stores: bool = False,
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler`` as a Starlette endpoint for ``route`` (e.g. ``"POST /tasks/submit"``).

    In order: count the request and draw its fault (``counted`` routes only), apply a
    fault acting before the handler (answer an error, drop the connection, restart),
    authenticate (401 / 403), admit the user under its limits (429), wait an added latency,
    run the handler, wait until its changes are stored (``stores``), answer 200 with its
    JSON, and apply a fault acting after (replace the answer, drop it, delay it).
    :class:`RequestRejected` becomes its status with the error body; any other exception is
    a bug, logged and answered 500.
    """
    server = hooks or ServerHooks()

    async def run(request: Request) -> Response:
        fault = state.count_request(route) if counted else None
        if fault is not None and fault.phase == "before":
            if fault.kind == "status":
                return _fault_response(fault)
            if fault.kind == "drop":
                return _drop(server, request)
            if fault.kind == "restart":
                if server.restart is not None:
                    server.restart(fault.downtime_s)
                return _drop(server, request)
        latency = 0.0
        if fault is not None and fault.kind == "delay" and fault.phase == "before":
            latency = fault.delay_s
        response = await answer(request, latency)
        if fault is not None and fault.phase == "after":
            if fault.kind == "status":
                return _fault_response(fault)
            if fault.kind == "drop":
                return _drop(server, request)
            await trio.sleep(fault.delay_s)
        return response

    async def answer(request: Request, delay: float) -> Response:
        admitted: User | None = None
        try:
            user = None
            if auth or admin:
                user = state.authenticate(token_from(request))
                if admin and not user.admin:
                    raise RequestRejected("this endpoint is for administrators only", 403)
                if counted and state.admit(user, trio.current_time()):
                    admitted = user
            if delay:
                # Added latency is time the service spends on the request: it holds the
                # user's concurrency slot.
                await trio.sleep(delay)
            payload = await handler(request, user)
            if stores:
                await server.flush()
        except RequestRejected as exc:
            return error_response(exc.status, exc.message, retry_after=exc.retry_after)
        except Exception:
            logger.exception("emulator bug answering %s", route)
            return error_response(500, f"internal emulator error answering {route}")
        finally:
            if admitted is not None:
                state.release(admitted)
        return payload if isinstance(payload, Response) else JsonResponse(payload)

    run.__name__ = route
    return run


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, whether announced by
    ``Content-Length`` or only found while streaming; malformed ``Content-Length`` is 400.

    The body is read here (at most ``max_bytes`` kept) and replayed to the app, so handlers
    never see more than the limit. Over HTTP/1.1 the refusal is sent at once with
    ``Connection: close``. Over HTTP/2 the rest of the body is read and dropped first:
    hypercorn 0.18 crashes the whole server (``KeyError`` in its h2 protocol) when data
    arrives for a stream it has already answered.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                declared = value
        if declared is not None and not declared.strip().isdigit():
            await self._refuse(scope, receive, send, 400, "invalid Content-Length header")
            return
        if declared is not None and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, 413, self._too_large())
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send, 413, self._too_large(), more=more)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"request body too large: the limit is {self.max_bytes} bytes"

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        message: str,
        *,
        more: bool = True,
    ) -> None:
        headers = None
        if scope.get("http_version", "1.1").startswith("1"):
            # The unread rest of the body is still on the wire: drop the connection.
            headers = {"connection": "close"}
        else:
            while more:
                event = await receive()
                if event["type"] == "http.disconnect":
                    return
                more = event.get("more_body", False)
        response = error_response(status, message, headers=headers)
        await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
