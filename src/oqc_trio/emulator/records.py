"""The records of the emulator's core: users, tokens and tasks, as the routes serve them,
and the :class:`Journal` protocol through which the store hears of their changes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import attrs

from .._wire import TaskStatus
from . import catalogue
from .windows import Window

__all__ = ["FINISHED", "Journal", "Task", "Token", "User"]

FINISHED = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


@attrs.define(eq=False)
class User:
    """A user; ``admin`` users may read the counters and manage other users."""

    id: int
    email: str
    password: str | None
    admin: bool
    name: str
    password_expires_at: dt.datetime
    login_token: str | None = None

    def doc(self) -> dict[str, Any]:
        """The user as ``/admin/users`` returns it (no password)."""
        first, _, last = self.name.partition(" ")
        return {
            "id": self.id,
            "email": self.email,
            "first_name": first,
            "last_name": last or first,
            "admin": self.admin,
            "password_expires_at": self.password_expires_at.strftime("%Y-%m-%dT%H:%M:%S"),
        }


@attrs.define(eq=False)
class Token:
    """An authentication token of a user."""

    value: str
    user: User
    expires_at: dt.datetime

    def doc(self) -> dict[str, Any]:
        """``{"token", "expires_at"}`` with the ``YYYY-MM-DDTHH:MM:SS`` (UTC) the SDK reads."""
        return {
            "token": self.value,
            "expires_at": self.expires_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "user_id": self.user.id,
        }


@attrs.define(eq=False)
class Task:
    """One task: what was submitted, where it is in its lifecycle, and what came out."""

    id: str
    seq: int
    owner: User
    qpu_id: str
    tag: str | None
    created_at: dt.datetime
    status: TaskStatus = TaskStatus.CREATED
    program: str | None = None
    config: str | None = None
    external_config: dict[str, Any] | None = None
    hybrid_marker: str | None = None
    shots: int | None = None
    results: dict[str, Any] | None = None
    task_error: dict[str, Any] | None = None
    execution_metadata: dict[str, Any] = attrs.field(factory=dict)
    received: dt.datetime | None = None
    queued: dt.datetime | None = None
    started: dt.datetime | None = None
    finished: dt.datetime | None = None
    #: Position in the order of all submissions (FIFO order across restarts).
    queue_seq: int | None = None

    @property
    def done(self) -> bool:
        """True once COMPLETED, FAILED or CANCELLED."""
        return self.status in FINISHED

    def timings(self) -> dict[str, Any]:
        """``received``/``queued``/``started``/``finished`` (ISO, UTC) and durations."""

        def iso(moment: dt.datetime | None) -> str | None:
            return None if moment is None else catalogue.utc_iso(moment)

        def seconds(a: dt.datetime | None, b: dt.datetime | None) -> float | None:
            return None if a is None or b is None else round((b - a).total_seconds(), 6)

        return {
            "received": iso(self.received),
            "queued": iso(self.queued),
            "started": iso(self.started),
            "finished": iso(self.finished),
            "queue_seconds": seconds(self.queued, self.started),
            "execution_seconds": seconds(self.started, self.finished),
        }

    def metadata(self) -> dict[str, Any]:
        """``{config, created_at, id, qpu_id, tag}`` (the v3 ``metadata`` object)."""
        return {
            "config": self.config,
            "created_at": catalogue.utc_iso(self.created_at),
            "id": self.id,
            "qpu_id": self.qpu_id,
            "tag": self.tag,
        }

    def summary(self) -> dict[str, Any]:
        """One entry of the ``GET /tasks`` listing."""
        return {
            "id": self.id,
            "qpu_id": self.qpu_id,
            "status": self.status.value,
            "tag": self.tag,
            "created_at": catalogue.utc_iso(self.created_at),
            "finished": None if self.finished is None else catalogue.utc_iso(self.finished),
        }

    def all_info(self) -> dict[str, Any]:
        """Everything about the task: the v3 ``metadata`` object and the v4 top-level
        fields at once, so both dialects' readers find what they look for."""
        return {
            **self.metadata(),
            "status": self.status.value,
            "results": self.results,
            "task_error": self.task_error,
            "timings": self.timings(),
            "execution_metadata": self.execution_metadata,
            "metadata": self.metadata(),
        }


class Journal(Protocol):
    """Hears of every change to keep (the sqlite store implements it)."""

    def task(self, task: Task) -> None:
        """A task was created or changed (including its submission count)."""

    def user(self, user: User) -> None:
        """A user was created or changed."""

    def token(self, token: Token) -> None:
        """A token was created."""

    def token_deleted(self, value: str) -> None:
        """A token was revoked."""

    def window(self, qpu_id: str, window: Window) -> None:
        """A one-off window was added."""
