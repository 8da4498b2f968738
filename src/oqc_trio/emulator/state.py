"""The emulator's core, sans I/O: users and tokens, the task store and its lifecycle, the
per-QPU queues, request and submission counters, and fault injection.

Lifecycle: ``CREATED`` (an ID reserved by ``POST /tasks``) -> ``SUBMITTED`` (queued) ->
``RUNNING`` -> ``COMPLETED`` / ``FAILED`` / ``CANCELLED``. A task whose config cannot be read
fails at submission. Nothing here awaits: the scheduler drives the queue, and a callback
(:attr:`EmulatorState.on_change`) reports every status change.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from .._wire import TaskStatus
from . import catalogue
from .bodies import BadTaskConfig, RequestRejected, Submission, short_repr, shots_from_config
from .config import EmulatorConfig, QpuSpec, UserSpec, Window, new_token

__all__ = [
    "ADMIN_EMAIL",
    "FINISHED",
    "EmulatorState",
    "Fault",
    "Task",
    "Token",
    "User",
]

ADMIN_EMAIL = "admin@emulator.local"
FINISHED = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
#: error_code of a task whose config cannot be read.
BAD_CONFIG_ERROR_CODE = 400
#: error_code of a task the emulator itself failed to run.
INTERNAL_ERROR_CODE = 500
_TOKEN_LIFETIME = dt.timedelta(days=365)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


@attrs.define
class Fault:
    """An injected failure: the next ``times`` requests to ``route`` get ``status``."""

    route: str
    status: int
    times: int
    message: str


class EmulatorState:
    """Users, tokens, tasks, queues and counters of one emulator instance.

    Raises :class:`~oqc_trio.emulator.bodies.RequestRejected` carrying the HTTP status for
    anything a client did wrong (401 unknown token, 404 someone else's task, ...).
    """

    def __init__(
        self, config: EmulatorConfig, *, clock: Callable[[], dt.datetime] = _utcnow
    ) -> None:
        self.config = config
        self.clock = clock
        #: Called after every status change of a task (the server wakes waiters with it).
        self.on_change: Callable[[Task], None] | None = None
        self.users: dict[int, User] = {}
        self.tokens: dict[str, Token] = {}
        self.tasks: dict[str, Task] = {}
        #: Queued task IDs per QPU in FIFO order (dicts as ordered sets).
        self.queues: dict[str, dict[str, None]] = {q.id: {} for q in config.qpus}
        self.running: dict[str, dict[str, None]] = {q.id: {} for q in config.qpus}
        self.windows: dict[str, list[Window]] = {q.id: list(q.windows) for q in config.qpus}
        self.requests: Counter[str] = Counter()
        self.submissions: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self._seq = 0
        self.admin = self._add_user(
            UserSpec(email=ADMIN_EMAIL, tokens=(config.admin_token,), admin=True, name="Admin")
        )
        for spec in config.users:
            self._add_user(spec)

    # -- users and tokens --------------------------------------------------------------------
    def _add_user(self, spec: UserSpec) -> User:
        now = self.clock()
        user = User(
            id=len(self.users) + 1,
            email=spec.email,
            password=spec.password,
            admin=spec.admin,
            name=spec.name or spec.email.split("@")[0],
            password_expires_at=now + _TOKEN_LIFETIME,
        )
        self.users[user.id] = user
        for value in spec.tokens:
            self.tokens[value] = Token(value, user, now + _TOKEN_LIFETIME)
        return user

    def authenticate(self, token: str | None) -> User:
        """The user owning ``token``; 401 when it is missing, unknown or expired."""
        if not token:
            raise RequestRejected(
                "authentication required: send the 'Authentication-Token' header", 401
            )
        found = self.tokens.get(token)
        if found is None:
            raise RequestRejected("invalid authentication token", 401)
        if found.expires_at <= self.clock():
            raise RequestRejected("the authentication token has expired", 401)
        return found.user

    def login(self, email: str, password: str) -> User:
        """Check credentials; the user gets one login token, reused by later logins."""
        user = next((u for u in self.users.values() if u.email.lower() == email.lower()), None)
        if user is None or user.password is None or user.password != password:
            raise RequestRejected("Invalid email or password", 400)
        if user.login_token is None or user.login_token not in self.tokens:
            user.login_token = new_token("login")
            self.tokens[user.login_token] = Token(
                user.login_token, user, self.clock() + _TOKEN_LIFETIME
            )
        return user

    def create_token(self, user: User, expires_at: dt.datetime) -> Token:
        """A new token for ``user``."""
        token = Token(new_token("tok"), user, expires_at)
        self.tokens[token.value] = token
        return token

    def token_of(self, actor: User, value: str) -> Token:
        """A token the actor may see (its own, or any for admins); 404 otherwise."""
        token = self.tokens.get(value)
        if token is None or (token.user is not actor and not actor.admin):
            raise RequestRejected("token not found", 404)
        return token

    def delete_token(self, actor: User, value: str) -> Token:
        """Revoke a token (own, or any for admins)."""
        token = self.token_of(actor, value)
        del self.tokens[value]
        return token

    def user_of(self, actor: User, user_id: str) -> User:
        """A user the actor may see (self, or any for admins); 404 otherwise."""
        try:
            found = self.users.get(int(user_id))
        except ValueError:
            found = None
        if found is None or (found is not actor and not actor.admin):
            raise RequestRejected("user not found", 404)
        return found

    def find_users(self, actor: User, query: str) -> list[User]:
        """Users whose email contains ``query`` (non-admins only ever find themselves)."""
        pool = self.users.values() if actor.admin else [actor]
        return [u for u in pool if query.lower() in u.email.lower()]

    def create_user(
        self, actor: User, *, email: str, password: str, first_name: str, last_name: str
    ) -> User:
        """Admin only: a new user who can log in with ``email``/``password``."""
        if not actor.admin:
            raise RequestRejected("only administrators can create users", 403)
        if "@" not in email:
            raise RequestRejected(f"{short_repr(email)} is not an email address")
        if any(u.email.lower() == email.lower() for u in self.users.values()):
            raise RequestRejected(f"a user with email {short_repr(email)} exists", 409)
        name = f"{first_name} {last_name}".strip() if first_name != last_name else first_name
        return self._add_user(UserSpec(email=email, password=password, name=name))

    def update_password(self, actor: User, user_id: str, password: str, confirm: str) -> User:
        """Change a password (own, or any for admins)."""
        user = self.user_of(actor, user_id)
        if password != confirm:
            raise RequestRejected("password and password_confirm differ")
        if not password:
            raise RequestRejected("the password must not be empty")
        user.password = password
        user.password_expires_at = self.clock() + _TOKEN_LIFETIME
        return user

    # -- QPUs --------------------------------------------------------------------------------
    def qpu(self, qpu_id: str) -> QpuSpec:
        """The QPU with this id; 404 when unknown."""
        spec = self.config.qpu(qpu_id)
        if spec is None:
            raise RequestRejected(f"unknown QPU {short_repr(qpu_id)}", 404)
        return spec

    def _target_qpu(self, qpu_id: str, where: str) -> QpuSpec:
        spec = self.config.qpu(qpu_id)
        if spec is None:
            raise RequestRejected(f"{where}: unknown QPU {short_repr(qpu_id)}")
        if not spec.active:
            raise RequestRejected(f"{where}: QPU {qpu_id} is not active")
        return spec

    def status_doc(self, spec: QpuSpec) -> dict[str, Any]:
        """The system status of one QPU, with its live queue figures."""
        return catalogue.system_status(
            spec,
            queued=len(self.queues[spec.id]),
            running=len(self.running[spec.id]),
            now=self.clock(),
        )

    def wait_estimate_s(self, spec: QpuSpec, position: int) -> float:
        """Seconds before a task at ``position`` in the queue (0 = next) starts, roughly."""
        per_task = spec.execution_time_s * self.config.time_scale
        busy = len(self.running[spec.id])
        return round(per_task * (position + busy) / spec.workers, 6)

    # -- tasks -------------------------------------------------------------------------------
    def _new_task(self, owner: User, qpu_id: str, tag: str | None) -> Task:
        self._seq += 1
        task = Task(
            id=str(uuid.uuid4()),
            seq=self._seq,
            owner=owner,
            qpu_id=qpu_id,
            tag=tag,
            created_at=self.clock(),
        )
        self.tasks[task.id] = task
        return task

    def create_ids(self, owner: User, wanted: Sequence[tuple[str, str | None]]) -> list[Task]:
        """Reserve one CREATED task per ``(qpu_id, tag)``; all QPUs are checked first."""
        for qpu_id, _ in wanted:
            self._target_qpu(qpu_id, "POST /tasks")
        return [self._new_task(owner, qpu_id, tag) for qpu_id, tag in wanted]

    def task(self, user: User, task_id: str) -> Task:
        """The user's task; 404 for unknown IDs and for other users' tasks alike."""
        task = self.tasks.get(task_id)
        if task is None:
            try:
                task = self.tasks.get(str(uuid.UUID(task_id)))
            except ValueError:
                task = None
        if task is None or task.owner is not user:
            raise RequestRejected(f"task {short_repr(task_id)} not found", 404)
        return task

    def submit(
        self, owner: User, submissions: Sequence[Submission]
    ) -> tuple[list[str], list[Task]]:
        """Accept a submit body: returns every task ID in order and the newly queued tasks.

        The whole body is checked before anything changes. A task without ``task_id`` gets a
        fresh ID; a named ID must have been created by this user (``POST /tasks``).
        Resubmitting an ID that is no longer CREATED is an idempotent no-op (but counted in
        :attr:`submissions`).
        """
        where = "POST /tasks/submit"
        targets: list[Task | None] = []
        for i, sub in enumerate(submissions):
            self._target_qpu(sub.qpu_id, f"{where}: tasks[{i}]")
            if sub.task_id is None:
                targets.append(None)
                continue
            task = self.tasks.get(sub.task_id)
            if task is None or task.owner is not owner:
                raise RequestRejected(
                    f"{where}: tasks[{i}]: unknown task ID {sub.task_id} "
                    "(create task IDs with POST /tasks first)"
                )
            if task.status is TaskStatus.CREATED and task.qpu_id != sub.qpu_id:
                raise RequestRejected(
                    f"{where}: tasks[{i}]: task {task.id} was created for QPU {task.qpu_id}, "
                    f"not {short_repr(sub.qpu_id)}"
                )
            targets.append(task)
        now = self.clock()
        ids: list[str] = []
        queued: list[Task] = []
        for sub, found in zip(submissions, targets):
            task = found if found is not None else self._new_task(owner, sub.qpu_id, sub.tag)
            ids.append(task.id)
            self.submissions[task.id] += 1
            if task.status is not TaskStatus.CREATED:
                continue
            task.program = sub.program
            task.config = sub.config
            task.external_config = sub.external_config
            task.hybrid_marker = sub.hybrid_marker
            if sub.tag is not None:
                task.tag = sub.tag
            task.received = now
            try:
                task.shots = shots_from_config(sub.config)
            except BadTaskConfig as exc:
                self._fail(task, BAD_CONFIG_ERROR_CODE, str(exc))
                continue
            task.queued = now
            task.status = TaskStatus.SUBMITTED
            self.queues[task.qpu_id][task.id] = None
            queued.append(task)
            self._changed(task)
        return ids, queued

    def start(self, task: Task) -> bool:
        """Move a queued task to RUNNING; False if it is no longer queued (cancelled)."""
        if task.status is not TaskStatus.SUBMITTED:
            return False
        self.queues[task.qpu_id].pop(task.id, None)
        self.running[task.qpu_id][task.id] = None
        task.status = TaskStatus.RUNNING
        task.started = self.clock()
        self._changed(task)
        return True

    def complete(
        self,
        task: Task,
        *,
        results: dict[str, Any] | None,
        execution_metadata: dict[str, Any],
        error_code: int | None = None,
        error_message: str | None = None,
    ) -> None:
        """Record the outcome of a run (ignored if the task was cancelled meanwhile)."""
        if task.status is not TaskStatus.RUNNING:
            return
        task.execution_metadata = execution_metadata
        if error_code is not None or error_message is not None or results is None:
            self._fail(
                task,
                INTERNAL_ERROR_CODE if error_code is None else error_code,
                error_message or "the task failed without a message",
            )
            return
        task.results = results
        self._finish(task, TaskStatus.COMPLETED)

    def fail_internal(self, task: Task, message: str) -> None:
        """The emulator could not run the task: FAILED with code 500 and ``message``."""
        if not task.done:
            self._fail(task, INTERNAL_ERROR_CODE, message)

    def _fail(self, task: Task, code: int, message: str) -> None:
        task.task_error = {"error_code": code, "error_message": message}
        task.results = None
        self._finish(task, TaskStatus.FAILED)

    def _finish(self, task: Task, status: TaskStatus) -> None:
        self.queues[task.qpu_id].pop(task.id, None)
        self.running[task.qpu_id].pop(task.id, None)
        task.status = status
        task.finished = self.clock()
        self._changed(task)

    def cancel(self, user: User, task_ids: Iterable[str]) -> list[Task]:
        """Cancel the user's unfinished tasks among ``task_ids``; unknown, foreign and
        finished IDs are ignored. Returns the tasks that were RUNNING (to stop their run)."""
        was_running = []
        for task_id in task_ids:
            task = self.tasks.get(task_id)
            if task is None or task.owner is not user or task.done:
                continue
            if task.status is TaskStatus.RUNNING:
                was_running.append(task)
            self._finish(task, TaskStatus.CANCELLED)
        return was_running

    def _changed(self, task: Task) -> None:
        if self.on_change is not None:
            self.on_change(task)

    def summaries(
        self, user: User, start: dt.datetime | None, end: dt.datetime | None
    ) -> list[dict[str, Any]]:
        """The user's tasks created within ``[start, end]``, oldest first."""
        return [
            t.summary()
            for t in self.tasks.values()
            if t.owner is user
            and (start is None or t.created_at >= start)
            and (end is None or t.created_at <= end)
        ]

    def task_wait_times(self, user: User, task_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Estimated seconds before each of the user's tasks starts (0 once started)."""
        estimates: list[dict[str, Any]] = []
        for task_id in task_ids:
            task = self.tasks.get(task_id)
            if task is None or task.owner is not user:
                estimates.append({"task_id": task_id, "status": None, "wait_time_s": None})
                continue
            wait: float | None = 0.0
            position: int | None = None
            if task.status is TaskStatus.SUBMITTED:
                position = list(self.queues[task.qpu_id]).index(task.id)
                wait = self.wait_estimate_s(self.qpu(task.qpu_id), position)
            elif task.status is TaskStatus.CREATED:
                wait = None
            estimates.append(
                {
                    "task_id": task_id,
                    "qpu_id": task.qpu_id,
                    "status": task.status.value,
                    "queue_position": position,
                    "wait_time_s": wait,
                }
            )
        return estimates

    def qpu_wait_times(self, qpu_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Estimated seconds before a task submitted now would start, per known QPU."""
        waits = []
        for qpu_id in qpu_ids:
            spec = self.config.qpu(qpu_id)
            if spec is None:
                continue
            queued = len(self.queues[qpu_id])
            waits.append(
                {
                    "qpu_id": qpu_id,
                    "queued_tasks": queued,
                    "wait_time_s": self.wait_estimate_s(spec, queued),
                }
            )
        return waits

    # -- counters and faults -----------------------------------------------------------------
    def count_request(self, route: str) -> Fault | None:
        """Count a request to ``route``; return the fault to inject into it, if any."""
        self.requests[route] += 1
        for fault in self.faults:
            if fault.route in (route, "*") and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def counters(self) -> dict[str, Any]:
        """The admin counters document."""
        by_status = Counter(t.status.value for t in self.tasks.values())
        return {
            "requests": dict(sorted(self.requests.items())),
            "total_requests": sum(self.requests.values()),
            "submissions": dict(self.submissions),
            "duplicate_submissions": {k: v for k, v in self.submissions.items() if v > 1},
            "tasks": {"total": len(self.tasks), "by_status": dict(sorted(by_status.items()))},
        }

    def reset_counters(self) -> None:
        """Zero the request and submission counters (tasks are kept)."""
        self.requests.clear()
        self.submissions.clear()
