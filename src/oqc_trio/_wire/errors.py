"""Error bodies of both dialects, and the exception a non-200 answer becomes. Sans I/O."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

from ..exceptions import (
    AuthenticationError,
    ConnectionFailureException,
    NotFoundError,
    RateLimited,
    ServerException,
)

__all__ = [
    "TRANSIENT_STATUSES",
    "error_body",
    "exception_for_status",
    "parse_error_message",
    "parse_retry_after",
    "server_messages",
]

#: Answers that mean "try again later": retried for idempotent requests only.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MAX_MESSAGE = 500


def error_body(message: str) -> dict[str, Any]:
    """The legacy error body ``{"response": {"errors": [message]}}`` (servers use this)."""
    return {"response": {"errors": [message]}}


def parse_error_message(body: bytes, content_type: str | None) -> tuple[str, dict[str, Any]]:
    """Return ``(message, metadata)`` for an error answer.

    Legacy bodies give ``response.errors[0]`` and the whole body as metadata; v4 bodies give
    ``detail``; anything else gives the text itself (cut to 500 characters). Never raises: a
    ``response`` without ``errors`` (a KeyError in the official SDK) falls back to the text.
    """
    text = body.decode("utf-8", errors="replace")
    parsed: Any = None
    if content_type and content_type.lower().startswith("application/json"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict):
        response = parsed.get("response")
        if isinstance(response, dict):
            errors = response.get("errors")
            if isinstance(errors, list) and errors:
                return str(errors[0])[:_MAX_MESSAGE], parsed
        detail = parsed.get("detail")
        if isinstance(detail, str) and detail:
            return detail[:_MAX_MESSAGE], parsed
        return text[:_MAX_MESSAGE], parsed
    return (text.strip() or "(empty body)")[:_MAX_MESSAGE], {}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def exception_for_status(
    status: int,
    body: bytes,
    content_type: str | None,
    *,
    retry_after: str | None = None,
    method: str | None = None,
    path: str | None = None,
) -> ServerException:
    """The exception for a non-200 answer: transient, auth, not-found or plain server error."""
    message, metadata = parse_error_message(body, content_type)
    where = {"method": method, "path": path}
    if status == 429:
        return RateLimited(
            message, status, metadata, retry_after=parse_retry_after(retry_after), **where
        )
    if status in TRANSIENT_STATUSES:
        return ConnectionFailureException(
            message, status, metadata, retry_after=parse_retry_after(retry_after), **where
        )
    if status in (401, 403):
        return AuthenticationError(message, status, metadata, **where)
    if status == 404:
        return NotFoundError(message, status, metadata, **where)
    return ServerException(message, status, metadata, **where)


def server_messages(payload: Any) -> list[str]:
    """Informational ``message`` / ``messages`` strings a successful answer carries."""
    if not isinstance(payload, dict):
        return []
    found: list[str] = []
    message = payload.get("message")
    if isinstance(message, str) and message:
        found.append(message)
    messages = payload.get("messages")
    if isinstance(messages, list):
        found.extend(m for m in messages if isinstance(m, str) and m)
    return found
