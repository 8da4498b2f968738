"""The oqc-trio error tree.

Every error the SDK raises on purpose is an :class:`OqcError`, so ``except OqcError`` catches
all of them and nothing else. The two names the official SDK exports
(:class:`ServerException`, :class:`JobFailed`) keep their constructors and attributes::

    OqcError
    ├── ServerException(message, server_error_code, metadata)   the server answered non-200
    │   ├── ConnectionFailureException                           408 / 429 / 5xx: transient
    │   │   └── RateLimited                                      429, with .retry_after
    │   ├── AuthenticationError                                  401 / 403, login refused
    │   └── NotFoundError                                        404
    ├── TransportError                                           no usable answer at all
    │   ├── ServerUnreachable                                    connect refused / DNS / TLS
    │   └── RequestTimeout                                       read/write/pool timeout
    ├── ProtocolViolation                                        200, but not the contract
    ├── RequestTooLarge (also ValueError)                        body over the 128 KB limit
    ├── InsecureURLError (also ValueError)                       http:// to a remote host
    ├── NotOpenError (also RuntimeError)                         SDK used before open()
    ├── NoActiveQpuError                                         open() found no active QPU
    ├── TaskExpired                                              server said EXPIRED
    ├── ExecuteTimeout (also TimeoutError)                       timeout_s ran out, tasks resumable
    └── JobFailed(task_id, qpu_id, code, details)               a task failed server-side

How we differ from the official SDK:

- It lets ``httpx.ConnectError``, ``httpx.ReadError``, ``KeyError`` (missing ``status`` or
  ``results``) and ``ValueError`` (non-UUID task IDs) escape raw. Here they are
  :class:`TransportError` and :class:`ProtocolViolation`, each naming the request.
- Its ``AuthenticationError`` lives in ``oqc_qcaas_sdk.auth`` and is not a
  ``ServerException``; ours is both (``oqc_trio.auth`` re-exports it), so code catching either
  keeps working.
- ``JobFailed`` is raised by ``raise_for_status`` **and** ``JobOutputProxy.raise_for_error``
  (the official proxy raises a bare ``RuntimeError``; ours subclasses ``RuntimeError`` too, so
  such handlers still catch it).
- No exception ever carries a token: messages are built from status, path and server text,
  and :func:`redact` is applied to anything that may echo a header.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "AuthenticationError",
    "ConnectionFailureException",
    "ExecuteTimeout",
    "InsecureURLError",
    "JobFailed",
    "NoActiveQpuError",
    "NotFoundError",
    "NotOpenError",
    "OqcError",
    "ProtocolViolation",
    "RateLimited",
    "RequestTimeout",
    "RequestTooLarge",
    "ServerException",
    "ServerUnreachable",
    "TaskExpired",
    "TransportError",
    "UnknownQpuError",
    "redact",
]

_SECRET_PATTERNS = (
    re.compile(r"(?i)(authentication-token[\"']?\s*[:=]\s*[\"']?)([^\s\"',}]+)"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?bearer\s+)([^\s\"',}]+)"),
    re.compile(r"(?i)(\"?(?:password|authentication_token|token)\"?\s*[:=]\s*\"?)([^\s\"',}]+)"),
)


def redact(text: str, *secrets: str | None) -> str:
    """Return ``text`` with the given secrets and any header-shaped token replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class OqcError(Exception):
    """Base of every error oqc-trio raises on purpose."""


class ServerException(OqcError):
    """The server answered with a status other than 200.

    Same constructor and attributes as the official SDK: ``message`` (``str(exc)``),
    ``server_error_code`` (the HTTP status, or -1 for a timeout) and ``metadata`` (the parsed
    error body, ``{}`` when there was none). ``method`` and ``path`` name the request (never its
    query string or headers).
    """

    def __init__(
        self,
        message: str,
        server_error_code: int,
        metadata: dict[str, Any] | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.server_error_code = server_error_code
        self.metadata = metadata or {}
        self.method = method
        self.path = path

    def __str__(self) -> str:
        where = f" ({self.method} {self.path})" if self.method and self.path else ""
        return f"{self.message} [HTTP {self.server_error_code}]{where}"


class ConnectionFailureException(ServerException):
    """A transient server answer (408, 429, 500, 502, 503, 504): safe to retry if idempotent.

    Unlike the official SDK, creating one never pings OQC's public status page.
    ``retry_after`` holds the server's ``Retry-After`` in seconds when it sent one.
    """

    def __init__(
        self,
        message: str,
        server_error_code: int,
        metadata: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message, server_error_code, metadata, method=method, path=path)
        self.retry_after = retry_after


class RateLimited(ConnectionFailureException):
    """HTTP 429: the server asked us to slow down (``retry_after`` seconds when given)."""


class AuthenticationError(ServerException):
    """401/403 from the server, or a refused login. The message never contains the token."""


class NotFoundError(ServerException):
    """HTTP 404: unknown task, QPU or route (another user's task is also 404)."""


class TransportError(OqcError):
    """No usable HTTP answer: the connection failed, timed out or broke mid-response.

    The official SDK lets the raw ``httpx`` exception escape; we wrap it (``__cause__`` keeps
    it) and name the request. A task is never marked FAILED because of this error.
    """

    def __init__(self, message: str, *, method: str | None = None, path: str | None = None):
        super().__init__(message)
        self.method = method
        self.path = path


class ServerUnreachable(TransportError):
    """Could not connect (refused, DNS, TLS) after the retries the deadline allowed."""


class RequestTimeout(TransportError):
    """The request or the whole call ran out of time before an answer arrived."""


class ProtocolViolation(OqcError):
    """The server answered 200 but broke the REST contract (e.g. ``all_info`` without
    ``status``, a COMPLETED task without ``results``, a task ID that is not a UUID).

    The official SDK raises ``KeyError``/``ValueError`` from deep inside ``execute()``.
    """


class RequestTooLarge(OqcError, ValueError):
    """A request body would exceed the service's 128 KB limit; nothing was sent."""


class InsecureURLError(OqcError, ValueError):
    """An ``http://`` URL to a non-loopback host, where the token would travel in clear.

    Pass ``allow_insecure_http=True`` to accept it anyway.
    """


class UnknownQpuError(OqcError, ValueError):
    """A QPU id the service's catalogue does not list (a ``ValueError``, as in the official
    SDK). A job restored from a snapshot whose QPU left the catalogue fails to be observed
    with this error, keeping its task ID, while the other jobs of the call carry on."""


class NotOpenError(OqcError, RuntimeError):
    """The SDK was used before ``open()`` succeeded (or after ``close()``).

    The official SDK stays silently uninitialised and fails later with ``TypeError``.
    """


class TaskExpired(OqcError):
    """The server reported a task as EXPIRED: it will never run. Terminal, not "poll on"."""


class JobFailed(OqcError, RuntimeError):
    """A task failed on the server (its own word, never a transport hiccup).

    Same fields and ``str`` form as the official SDK's dataclass exception:
    ``JobFailed(task_id=..., qpu_id=..., code=..., details)``.
    """

    def __init__(
        self,
        task_id: str,
        qpu_id: str | None = None,
        code: int | None = None,
        details: str | None = None,
    ) -> None:
        super().__init__(task_id, qpu_id, code, details)
        self.task_id = task_id
        self.qpu_id = qpu_id
        self.code = code
        self.details = details

    def __str__(self) -> str:
        parts = [f"task_id={self.task_id}"]
        if self.qpu_id:
            parts.append(f"qpu_id={self.qpu_id}")
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.details:
            parts.append(self.details)
        return "JobFailed(" + ", ".join(parts) + ")"

    def __repr__(self) -> str:
        return (
            f"JobFailed(task_id={self.task_id!r}, qpu_id={self.qpu_id!r}, "
            f"code={self.code}, details={self.details!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobFailed):
            return NotImplemented
        return (self.task_id, self.qpu_id, self.code, self.details) == (
            other.task_id,
            other.qpu_id,
            other.code,
            other.details,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like the official dataclass


class ExecuteTimeout(OqcError, TimeoutError):
    """``timeout_s`` ran out before every job ended (a ``TimeoutError``, as in the official SDK).

    The unfinished tasks keep running on the server and keep their IDs: calling ``execute()``
    again resumes them by polling, never by resubmitting. ``unfinished`` lists those jobs.
    """

    def __init__(self, timeout_s: float | None, unfinished: list[Any]) -> None:
        self.timeout_s = timeout_s
        self.unfinished = unfinished
        super().__init__(
            f"{len(unfinished)} job(s) still running after timeout_s={timeout_s}; their tasks "
            "keep running on the server and execute() again resumes them"
        )


class NoActiveQpuError(OqcError):
    """``open()`` found no active QPU in the server's catalogue."""
