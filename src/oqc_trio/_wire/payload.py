"""Exact request bodies, their size, and chunking of task batches under the 128 KB limit.

Every body is serialised once, compactly (no spaces, non-ASCII kept), as the official client
does on the wire. Chunking measures the bytes that will really be sent, task IDs included,
instead of the official SDK's estimate taken before the IDs are injected (weakness #30).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ..exceptions import RequestTooLarge

__all__ = [
    "MAX_REQUEST_BYTES",
    "TASK_ID_FIELD_BYTES",
    "chunk_tasks",
    "encode",
    "encode_task",
    "headers_size",
    "submit_body",
    "task_dict",
    "with_task_id",
]

#: The service's request ceiling: body bytes plus header names and values.
MAX_REQUEST_BYTES = 131_072

_T = TypeVar("_T")

_TASKS_OPEN = b'{"tasks":['
_TASKS_CLOSE = b"]}"
_ID_PREFIX = b',"task_id":"'
#: Bytes that ``with_task_id`` adds to an encoded task (a 36-character UUID string).
TASK_ID_FIELD_BYTES = len(_ID_PREFIX) + 36 + 1


def encode(obj: Any) -> bytes:
    """Compact JSON bytes, exactly as sent."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def headers_size(headers: Mapping[str, str]) -> int:
    """Bytes the service counts for headers: names plus values."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in headers.items())


def task_dict(
    *,
    program: str,
    qpu_id: str,
    config: str,
    tag: str | None = None,
    hybrid_marker: str | None = None,
    external_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One task object for ``/tasks/submit``, fields in the order the official SDK sends them.

    ``tag`` and ``hybrid_marker`` appear only when truthy / set, ``external_config`` only for
    experimental configs. ``config`` is the CompilerConfig JSON *string*.
    """
    task: dict[str, Any] = {"program": program, "qpu_id": qpu_id}
    if tag:
        task["tag"] = tag
    if hybrid_marker is not None:
        task["hybrid_marker"] = hybrid_marker
    task["config"] = config
    if external_config is not None:
        task["external_config"] = dict(external_config)
    return task


def encode_task(task: Mapping[str, Any]) -> bytes:
    """Encode one task object without ``task_id`` (see :func:`with_task_id`)."""
    if "task_id" in task:
        raise ValueError("encode_task expects a task without task_id")
    return encode(task)


def with_task_id(encoded_task: bytes, task_id: str) -> bytes:
    """Append ``"task_id"`` as the last field of an encoded task object."""
    if len(task_id) != 36:
        raise ValueError(f"task_id must be a 36-character UUID string, got {task_id!r}")
    return encoded_task[:-1] + _ID_PREFIX + task_id.encode("ascii") + b'"}'


def submit_body(encoded_tasks: Sequence[bytes]) -> bytes:
    """The ``/tasks/submit`` body ``{"tasks":[...]}`` from already-encoded tasks."""
    return _TASKS_OPEN + b",".join(encoded_tasks) + _TASKS_CLOSE


def chunk_tasks(
    tasks: Iterable[tuple[_T, bytes]],
    *,
    max_body_bytes: int,
    too_large: Callable[[_T, RequestTooLarge], None],
    with_ids: bool = True,
) -> Iterator[list[tuple[_T, bytes]]]:
    """Group ``(key, encoded task)`` pairs into consecutive chunks whose submit body fits.

    The size counted is the exact body :func:`submit_body` will produce once each task has its
    ID appended (``with_ids``); each chunk is as large as the limit allows. ``tasks`` is read
    lazily, so a caller can encode tasks one at a time and hold only the chunk being built.
    A task that cannot fit even in a body of its own goes in no chunk: ``too_large`` is called
    with its key and a :class:`RequestTooLarge`, and chunking goes on with the next task.
    """
    empty = len(_TASKS_OPEN) + len(_TASKS_CLOSE)
    id_bytes = TASK_ID_FIELD_BYTES if with_ids else 0
    chunk: list[tuple[_T, bytes]] = []
    size = empty
    for key, encoded in tasks:
        needed = len(encoded) + id_bytes
        if empty + needed > max_body_bytes:
            too_large(
                key,
                RequestTooLarge(
                    f"task not sent: it needs {empty + needed} bytes in a submit body, over "
                    f"the {max_body_bytes}-byte limit (the service accepts at most "
                    f"{MAX_REQUEST_BYTES} bytes per request, headers included)"
                ),
            )
            continue
        added = needed + (1 if chunk else 0)  # the comma before it
        if size + added > max_body_bytes:
            yield chunk
            chunk, size, added = [], empty, needed
        size += added
        chunk.append((key, encoded))
    if chunk:
        yield chunk
