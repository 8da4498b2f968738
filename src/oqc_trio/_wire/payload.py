"""Exact request bodies, their size, and chunking of task batches under the 128 KB limit.

Every body is serialised once, compactly (no spaces, non-ASCII kept), as the official client
does on the wire. Chunking measures the bytes that will really be sent, task IDs included,
instead of the official SDK's estimate taken before the IDs are injected (weakness #30).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..exceptions import RequestTooLarge

__all__ = [
    "MAX_REQUEST_BYTES",
    "TASK_ID_FIELD_BYTES",
    "ChunkBuilder",
    "chunk_encoded_tasks",
    "encode",
    "encode_task",
    "headers_size",
    "submit_body",
    "task_dict",
    "with_task_id",
]

#: The service's request ceiling: body bytes plus header names and values.
MAX_REQUEST_BYTES = 131_072

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


class ChunkBuilder:
    """Accumulates encoded tasks into one submit body of at most ``max_body_bytes``.

    ``fits(encoded)`` says whether one more task (with its ID appended, when ``with_ids``)
    keeps the exact body size within the limit; ``add`` takes it. Lets a caller encode
    tasks one at a time and hold only the chunk being built.
    """

    __slots__ = ("_id_bytes", "_max", "count", "size")

    def __init__(self, max_body_bytes: int, *, with_ids: bool = True) -> None:
        self._max = max_body_bytes
        self._id_bytes = TASK_ID_FIELD_BYTES if with_ids else 0
        self.size = len(_TASKS_OPEN) + len(_TASKS_CLOSE)
        self.count = 0

    def _added(self, encoded: bytes) -> int:
        return len(encoded) + self._id_bytes + (1 if self.count else 0)

    def fits_alone(self, encoded: bytes) -> bool:
        """Whether this task fits in a body of its own."""
        return len(_TASKS_OPEN) + len(_TASKS_CLOSE) + len(encoded) + self._id_bytes <= self._max

    def fits(self, encoded: bytes) -> bool:
        """Whether this task fits in the current chunk."""
        return self.size + self._added(encoded) <= self._max

    def add(self, encoded: bytes) -> None:
        """Count one more task into the chunk (the caller checked :meth:`fits`)."""
        self.size += self._added(encoded)
        self.count += 1


def chunk_encoded_tasks(
    encoded_tasks: Iterable[bytes], *, max_body_bytes: int, with_ids: bool = True
) -> list[list[int]]:
    """Split tasks (by index) into consecutive chunks whose submit body fits the limit.

    The size counted is the exact body :func:`submit_body` will produce once each task has its
    ID appended (``with_ids``). A single task that cannot fit raises :class:`RequestTooLarge`
    naming its index; nothing is split across chunks.
    """
    chunks: list[list[int]] = []
    current: list[int] = []
    builder = ChunkBuilder(max_body_bytes, with_ids=with_ids)
    for index, encoded in enumerate(encoded_tasks):
        if not builder.fits_alone(encoded):
            alone = len(_TASKS_OPEN) + len(_TASKS_CLOSE) + len(encoded) + builder._id_bytes
            raise RequestTooLarge(
                f"task {index} needs {alone} bytes in a submit body, over the "
                f"{max_body_bytes}-byte limit (the service accepts at most "
                f"{MAX_REQUEST_BYTES} bytes per request, headers included)"
            )
        if not builder.fits(encoded):
            chunks.append(current)
            current, builder = [], ChunkBuilder(max_body_bytes, with_ids=with_ids)
        builder.add(encoded)
        current.append(index)
    if current:
        chunks.append(current)
    return chunks
