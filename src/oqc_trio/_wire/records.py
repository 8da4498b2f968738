"""Typed records parsed from server answers. Contract violations become
:class:`~oqc_trio.exceptions.ProtocolViolation` naming the endpoint and the field, never a
``KeyError`` (official weakness #13)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from ..exceptions import ProtocolViolation
from .dialect import Dialect
from .status import EXPIRED_ERROR_CODE, JobState, is_expired, map_status

__all__ = [
    "QpuRecord",
    "TaskInfo",
    "parse_features",
    "parse_login_token",
    "parse_next_window",
    "parse_qpus",
    "parse_single_submit",
    "parse_task_ids",
    "parse_task_info",
    "parse_version",
]

_METADATA_KEYS = ("config", "created_at", "id", "qpu_id", "tag")


def _object(payload: Any, where: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ProtocolViolation(f"{where}: expected a JSON object, got {type(payload).__name__}")
    return payload


def parse_version(payload: Any) -> str:
    """The ``version`` of a health answer (required: the official SDK needs it too)."""
    body = _object(payload, "health check")
    if "version" not in body:
        raise ProtocolViolation("health check: the answer has no 'version' field")
    return str(body["version"])


@attrs.frozen
class QpuRecord:
    """One QPU of the catalogue. ``url`` is where its task endpoints live (legacy only);
    ``raw`` is the record exactly as the server sent it (what ``list_qpus`` returns)."""

    id: str
    active: bool
    url: str | None = None
    name: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


def _qpu(item: Any, where: str, dialect: Dialect) -> QpuRecord:
    record = _object(item, where)
    qpu_id = record.get("id", record.get("qpu_id"))
    if not isinstance(qpu_id, str) or not qpu_id:
        raise ProtocolViolation(f"{where}: a QPU record has no string 'id'")
    url = record.get("url")
    if dialect is Dialect.LEGACY and not isinstance(url, str):
        raise ProtocolViolation(f"{where}: QPU {qpu_id!r} has no 'url'")
    return QpuRecord(
        id=qpu_id,
        active=bool(record.get("active", dialect is Dialect.V4)),
        url=url if isinstance(url, str) else None,
        name=record.get("name") if isinstance(record.get("name"), str) else None,
        raw=record,
    )


def parse_qpus(payload: Any, dialect: Dialect) -> list[QpuRecord]:
    """Every QPU record: legacy ``{"items": [...]}``, v4 a list (or ``{"items"|"data": [...]}``)."""
    where = "QPU catalogue"
    items = payload.get("items", payload.get("data")) if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise ProtocolViolation(f"{where}: expected a list of QPU records")
    return [_qpu(item, where, dialect) for item in items]


def parse_features(payload: Any, dialect: Dialect) -> Any:
    """The feature set: legacy ``feature_set`` (object or JSON string), v4 ``data``."""
    body = _object(payload, "features")
    key = "data" if dialect is Dialect.V4 else "feature_set"
    if key not in body:
        raise ProtocolViolation(f"features: the answer has no {key!r} field")
    value = body[key]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ProtocolViolation(f"features: {key!r} is a string but not JSON") from exc
    return value


def parse_login_token(payload: Any) -> str:
    """``response.user.authentication_token`` of a login answer."""
    try:
        token = payload["response"]["user"]["authentication_token"]
    except (KeyError, TypeError):
        raise ProtocolViolation(
            "login: the answer has no response.user.authentication_token"
        ) from None
    if not isinstance(token, str) or not token:
        raise ProtocolViolation("login: the authentication token is empty")
    return token


def _uuid(value: Any, where: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ProtocolViolation(f"{where}: task ID {value!r} is not a UUID") from None


def parse_task_ids(payload: Any, dialect: Dialect, expected: int) -> list[str]:
    """IDs from step 1 of a batch: a bare list (legacy) or ``{"tasks": [...]}`` (v4)."""
    items = payload.get("tasks") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise ProtocolViolation("create task IDs: expected a list of task IDs")
    if len(items) != expected:
        raise ProtocolViolation(
            f"create task IDs: asked for {expected} IDs, the server returned {len(items)}"
        )
    return [_uuid(item, "create task IDs") for item in items]


def parse_single_submit(payload: Any) -> str:
    """The ID of a task submitted alone: ``[{"task_id": ...}]``."""
    first = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(first, dict) and "task_id" in first:
        return _uuid(first["task_id"], "submit")
    raise ProtocolViolation('submit: expected [{"task_id": ...}] for a single task')


def parse_next_window(payload: Any) -> dt.datetime | None:
    """``next_window.starting`` as an aware UTC datetime, or None when there is no window.

    Tolerates ``{"next_window": null}`` (the official SDK crashes on it, weakness #29).
    """
    if not isinstance(payload, dict):
        return None
    window = payload.get("next_window")
    if not isinstance(window, dict):
        return None
    starting = window.get("starting")
    if not isinstance(starting, str):
        return None
    try:
        when = dt.datetime.fromisoformat(starting.replace("Z", "+00:00"))
    except ValueError:
        raise ProtocolViolation(
            f"windows/next: 'starting' is not an ISO timestamp: {starting!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@attrs.frozen
class TaskInfo:
    """What one ``all_info`` answer says about a task, validated."""

    task_id: str
    raw_status: str
    state: JobState
    results: Mapping[str, Any] | None = None
    error_code: int | None = None
    error_message: str | None = None
    timings: Mapping[str, Any] | None = None
    execution_metadata: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] | None = None
    retry_after: float | None = None

    @property
    def ended(self) -> bool:
        """True when the task reached a terminal state."""
        return self.state.ended


def _optional_object(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    return value if isinstance(value, dict) and value else None


def parse_task_info(payload: Any, task_id: str) -> TaskInfo:
    """Validate an ``all_info`` answer.

    ``status`` is required; a COMPLETED task must carry a ``results`` object; a FAILED task's
    ``task_error`` defaults to (-1, "Unknown error.") as in the official SDK; EXPIRED becomes
    FAILED with code :data:`EXPIRED_ERROR_CODE`. Empty ``metadata`` is rebuilt from the v4
    top-level fields, as the official SDK does.
    """
    where = f"all_info of task {task_id}"
    body = _object(payload, where)
    if "status" not in body or not isinstance(body["status"], str):
        raise ProtocolViolation(f"{where}: the answer has no string 'status'")
    raw = body["status"]
    state = map_status(raw)
    results = None
    code: int | None = None
    message: str | None = None
    if state is JobState.COMPLETED:
        results = body.get("results")
        if not isinstance(results, dict):
            raise ProtocolViolation(
                f"{where}: status {raw!r} but 'results' is "
                f"{'missing' if 'results' not in body else type(results).__name__}"
            )
    elif is_expired(raw):
        code = EXPIRED_ERROR_CODE
        message = "the task expired on the server before it could run (status EXPIRED)"
    elif state is JobState.FAILED:
        error = body.get("task_error")
        error = error if isinstance(error, dict) else {}
        raw_code = error.get("error_code", -1)
        code = raw_code if isinstance(raw_code, int) else -1
        raw_message = error.get("error_message")
        message = raw_message if isinstance(raw_message, str) else "Unknown error."
    metadata = _optional_object(body, "metadata")
    if metadata is None and any(k in body for k in _METADATA_KEYS):
        metadata = {k: body.get(k) for k in _METADATA_KEYS}
    return TaskInfo(
        task_id=task_id,
        raw_status=raw,
        state=state,
        results=results,
        error_code=code,
        error_message=message,
        timings=_optional_object(body, "timings"),
        execution_metadata=_optional_object(body, "execution_metadata"),
        metadata=metadata,
    )
