"""Task statuses as the server spells them, and the public :class:`JobState` they map to.

Differs from the official SDK: ``EXPIRED`` is terminal. The official SDK maps it (and any
unknown word) to UNKNOWN and polls until its timeout; we report the task FAILED with a clear
"expired" error (:data:`EXPIRED_ERROR_CODE`), because the server will never run it.
Unrecognised words still map to UNKNOWN (not terminal), and UNKNOWN can be saved in snapshots.
"""

from __future__ import annotations

import enum

__all__ = [
    "ACTIVE_STATES",
    "EXPIRED_ERROR_CODE",
    "TERMINAL_STATES",
    "JobState",
    "TaskStatus",
    "is_expired",
    "map_status",
]


class TaskStatus(str, enum.Enum):
    """The server's task status enum (both dialects)."""

    UNKNOWN = "UNKNOWN"
    CREATED = "CREATED"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class JobState(str, enum.Enum):
    """Client-side state of a job: the official SDK's seven values, same spelling."""

    CREATED = "CREATED"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"

    @property
    def ended(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
ACTIVE_STATES = frozenset({JobState.SUBMITTED, JobState.RUNNING, JobState.UNKNOWN})

#: ``error_code`` of the JobError we synthesise for a task the server reports as EXPIRED.
EXPIRED_ERROR_CODE = 410

_ALIASES: dict[str, JobState] = {
    "CREATED": JobState.CREATED,
    "SUBMITTED": JobState.SUBMITTED,
    "QUEUED": JobState.SUBMITTED,
    "RUNNING": JobState.RUNNING,
    "IN_PROGRESS": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED,
    "SUCCEEDED": JobState.COMPLETED,
    "DONE": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "ERROR": JobState.FAILED,
    "EXPIRED": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "CANCELED": JobState.CANCELLED,
}


def _normalise(raw: object) -> str:
    return raw.strip().upper() if isinstance(raw, str) else ""


def map_status(raw: object) -> JobState:
    """Map a server status word (any case, aliases included) to a :class:`JobState`."""
    return _ALIASES.get(_normalise(raw), JobState.UNKNOWN)


def is_expired(raw: object) -> bool:
    """True when the server word is EXPIRED (any case)."""
    return _normalise(raw) == TaskStatus.EXPIRED.value
