"""Request bodies of the contract, parsed and validated into plain values. Sans I/O.

Everything a client can get wrong raises :class:`RequestRejected` with a readable message
(the app answers 400 with the contract's error body). The task ``config`` string is a
different matter: a config we cannot read fails the *task*, not the request, so
:func:`shots_from_config` raises :class:`BadTaskConfig` instead.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = [
    "DEFAULT_SHOTS",
    "MAX_IDS_PER_REQUEST",
    "BadTaskConfig",
    "CreateIds",
    "RequestRejected",
    "Submission",
    "clip",
    "parse_cancel",
    "parse_create_ids",
    "parse_date",
    "parse_datetime",
    "parse_id_list",
    "parse_json",
    "parse_submit",
    "require_object",
    "short_repr",
    "shots_from_config",
    "task_id_value",
    "text_field",
]

#: Shots when the config's ``repeats`` is null (the service's default).
DEFAULT_SHOTS = 1000
#: Ceiling on task IDs created or named by one request (bounds the work a request can cause).
MAX_IDS_PER_REQUEST = 10_000


class RequestRejected(Exception):
    """The request is malformed: answered with ``status`` (400 unless said) and ``message``;
    ``retry_after`` (seconds) adds a ``Retry-After`` header (429 answers)."""

    def __init__(
        self, message: str, status: int = 400, *, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


class BadTaskConfig(ValueError):
    """The task's ``config`` string cannot be used: the task fails with this message."""


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters, for echoing client input in messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters (for paths and other input echoed in messages)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """Decode a UTF-8 JSON body; NaN/Infinity, invalid UTF-8 and empty bodies are rejected."""
    if not body.strip():
        raise RequestRejected("the request body is empty: expected JSON")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestRejected("the request body is not valid UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise RequestRejected("the request body is nested too deeply") from None
    except ValueError as exc:
        raise RequestRejected(f"the request body is not valid JSON: {exc}") from None


def require_object(payload: Any, what: str) -> dict[str, Any]:
    """The payload as a JSON object, or a 400 naming ``what`` was expected."""
    if not isinstance(payload, dict):
        raise RequestRejected(f"{what}: expected a JSON object, got {_json_type(payload)}")
    return payload


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def text_field(
    data: Mapping[str, Any], key: str, where: str, *, required: bool = True
) -> str | None:
    """A string field that encodes to UTF-8 (lone surrogates are refused)."""
    value = data.get(key)
    if value is None:
        if required:
            raise RequestRejected(f"{where}: '{key}' is required (a string)")
        return None
    if not isinstance(value, str):
        raise RequestRejected(f"{where}: '{key}' must be a string, got {_json_type(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestRejected(f"{where}: '{key}' is not valid Unicode") from None
    return value


def task_id_value(value: Any, where: str) -> str:
    """A canonical UUID string, or a 400."""
    if not isinstance(value, str):
        raise RequestRejected(f"{where}: a task ID must be a UUID string, got {_json_type(value)}")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise RequestRejected(
            f"{where}: {short_repr(value)} is not a task ID (expected a UUID)"
        ) from None


def _list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise RequestRejected(f"{where}: '{key}' must be an array, got {_json_type(value)}")
    if len(value) > MAX_IDS_PER_REQUEST:
        raise RequestRejected(f"{where}: at most {MAX_IDS_PER_REQUEST} items per request")
    return value


# -- tasks -----------------------------------------------------------------------------------


@attrs.frozen
class CreateIds:
    """``POST /tasks``: one ``(qpu_id, tag)`` per wanted ID; ``v4`` tells the answer shape."""

    wanted: tuple[tuple[str, str | None], ...]
    v4: bool


def parse_create_ids(payload: Any) -> CreateIds:
    """Legacy ``{"qpu_id", "task_count", "tag"}`` or v4 ``{"tasks": [{"qpu_id", "tag"}]}``."""
    where = "POST /tasks"
    data = require_object(payload, where)
    if "tasks" in data:
        items = _list(data, "tasks", where)
        if not items:
            raise RequestRejected(f"{where}: 'tasks' must not be empty")
        wanted = []
        for i, item in enumerate(items):
            entry = require_object(item, f"{where}: tasks[{i}]")
            qpu_id = text_field(entry, "qpu_id", f"{where}: tasks[{i}]")
            tag = text_field(entry, "tag", f"{where}: tasks[{i}]", required=False)
            wanted.append((qpu_id or "", tag))
        return CreateIds(tuple(wanted), v4=True)
    qpu_id = text_field(data, "qpu_id", where) or ""
    tag = text_field(data, "tag", where, required=False)
    count = data.get("task_count", 1)
    if isinstance(count, bool) or not isinstance(count, int):
        raise RequestRejected(f"{where}: 'task_count' must be an integer, got {_json_type(count)}")
    if not 1 <= count <= MAX_IDS_PER_REQUEST:
        raise RequestRejected(f"{where}: 'task_count' must be between 1 and {MAX_IDS_PER_REQUEST}")
    return CreateIds(((qpu_id, tag),) * count, v4=False)


@attrs.frozen
class Submission:
    """One validated task object of a ``/tasks/submit`` body."""

    program: str
    qpu_id: str
    config: str | None
    tag: str | None = None
    hybrid_marker: str | None = None
    external_config: dict[str, Any] | None = None
    task_id: str | None = None


def parse_submit(payload: Any) -> list[Submission]:
    """``{"tasks": [task, ...]}``: every task checked before any is accepted."""
    where = "POST /tasks/submit"
    data = require_object(payload, where)
    items = _list(data, "tasks", where)
    if not items:
        raise RequestRejected(f"{where}: 'tasks' must not be empty")
    submissions = []
    for i, item in enumerate(items):
        at = f"{where}: tasks[{i}]"
        task = require_object(item, at)
        config = task.get("config")
        if isinstance(config, dict):
            # Some clients send the config object itself rather than its JSON string.
            config = json.dumps(config)
        elif config is not None:
            config = text_field(task, "config", at)
        external = task.get("external_config")
        if external is not None and not isinstance(external, dict):
            raise RequestRejected(f"{at}: 'external_config' must be an object")
        raw_id = task.get("task_id")
        submissions.append(
            Submission(
                program=text_field(task, "program", at) or "",
                qpu_id=text_field(task, "qpu_id", at) or "",
                config=config,
                tag=text_field(task, "tag", at, required=False),
                hybrid_marker=text_field(task, "hybrid_marker", at, required=False),
                external_config=external,
                task_id=None if raw_id is None else task_id_value(raw_id, at),
            )
        )
    return submissions


def parse_cancel(payload: Any) -> list[str]:
    """``{"tasks": [uuid, ...]}``; entries that are not UUIDs are refused (400)."""
    where = "POST /tasks/cancel_many"
    data = require_object(payload, where)
    return [task_id_value(v, where) for v in _list(data, "tasks", where)]


def parse_id_list(payload: Any, key: str, where: str) -> list[str]:
    """A list of strings under ``key`` (QPU ids or task ids)."""
    data = require_object(payload, where)
    values = _list(data, key, where)
    for value in values:
        if not isinstance(value, str):
            raise RequestRejected(f"{where}: '{key}' must hold strings only")
    return values


def shots_from_config(config: str | None) -> int:
    """Shots from a compiler_config JSON string: ``$data.repeats`` (null => 1000).

    Works for CompilerConfig and the Erado ``$dataclass`` envelope alike. Raises
    :class:`BadTaskConfig` with a readable message for anything else.
    """
    if config is None:
        return DEFAULT_SHOTS
    try:
        document = json.loads(config, parse_constant=_reject_constant)
    except RecursionError:
        raise BadTaskConfig("invalid config: nested too deeply") from None
    except ValueError as exc:
        raise BadTaskConfig(f"invalid config: not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise BadTaskConfig("invalid config: expected a JSON object")
    data = document.get("$data", document)
    if not isinstance(data, dict):
        raise BadTaskConfig("invalid config: '$data' must be an object")
    repeats = data.get("repeats")
    if repeats is None:
        return DEFAULT_SHOTS
    if isinstance(repeats, bool) or not isinstance(repeats, int):
        raise BadTaskConfig(f"invalid config: 'repeats' must be an integer, got {repeats!r}"[:200])
    if repeats < 1:
        raise BadTaskConfig(f"invalid config: 'repeats' must be at least 1, got {repeats}")
    return repeats


# -- dates -----------------------------------------------------------------------------------


def parse_date(value: str, what: str) -> dt.date:
    """``YYYY-MM-DD`` (a full ISO date-time is accepted and cut to its date)."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    return parse_datetime(value, what).date()


def parse_datetime(value: str, what: str) -> dt.datetime:
    """An ISO 8601 date-time (``T`` or space separated; ``str(datetime)`` works); naive
    values are taken as UTC."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise RequestRejected(
            f"{what}: {short_repr(value)} is not a date (expected YYYY-MM-DD or "
            "YYYY-MM-DDTHH:MM:SS)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
