"""The emulator's core, sans I/O: users and tokens, the task store and its lifecycle, the
per-QPU queues and execution windows, request and submission counters, per-user limits and
the fault injector.

Lifecycle: ``CREATED`` (an ID reserved by ``POST /tasks``) -> ``SUBMITTED`` (queued) ->
``RUNNING`` -> ``COMPLETED`` / ``FAILED`` / ``CANCELLED``. A task whose config cannot be read
fails at submission. Nothing here awaits: the scheduler drives the queue, a callback
(:attr:`EmulatorState.on_change`) reports every status change, and a :class:`Journal`
(the sqlite store, with ``--db``) hears of every change worth keeping.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._wire import TaskStatus
from . import catalogue
from . import windows as schedule
from .bodies import BadTaskConfig, RequestRejected, Submission, short_repr, shots_from_config
from .config import EmulatorConfig, QpuSpec, UserSpec, new_token
from .faults import FaultInjector, FaultRule
from .limits import LimitTracker, UserLimits
from .records import FINISHED, Journal, Task, Token, User
from .windows import Window

__all__ = [
    "ADMIN_EMAIL",
    "FINISHED",
    "EmulatorState",
    "Journal",
    "Task",
    "Token",
    "User",
]

ADMIN_EMAIL = "admin@emulator.local"
#: error_code of a task whose config cannot be read.
BAD_CONFIG_ERROR_CODE = 400
#: error_code of a task the emulator itself failed to run.
INTERNAL_ERROR_CODE = 500
_TOKEN_LIFETIME = dt.timedelta(days=365)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class EmulatorState:
    """Users, tokens, tasks, queues, windows and counters of one emulator instance.

    Raises :class:`~oqc_trio.emulator.bodies.RequestRejected` carrying the HTTP status for
    anything a client did wrong (401 unknown token, 404 someone else's task, 429 over a
    limit, ...). :meth:`reset` forgets everything but the configuration (a restart).
    """

    def __init__(
        self, config: EmulatorConfig, *, clock: Callable[[], dt.datetime] = _utcnow
    ) -> None:
        self.config = config
        self.clock = clock
        #: Called after every status change of a task (the server wakes waiters with it).
        self.on_change: Callable[[Task], None] | None = None
        #: Called when a QPU's windows change (the scheduler re-plans its wait).
        self.on_windows_change: Callable[[str], None] | None = None
        self.journal: Journal | None = None
        #: Request counts survive restarts (they describe the whole run of a test).
        self.requests: Counter[str] = Counter()
        self.injector = FaultInjector(config.faults)
        self.reset()

    def reset(self) -> None:
        """Forget users, tokens, tasks and queues, and start again from the configuration
        (relative windows are placed from now). Counters and fault rules are kept."""
        config = self.config
        self.started_at = self.clock()
        self.users: dict[int, User] = {}
        self.tokens: dict[str, Token] = {}
        self.tasks: dict[str, Task] = {}
        #: Queued task IDs per QPU in FIFO order (dicts as ordered sets).
        self.queues: dict[str, dict[str, None]] = {q.id: {} for q in config.qpus}
        self.running: dict[str, dict[str, None]] = {q.id: {} for q in config.qpus}
        self.windows: dict[str, list[Window]] = {
            q.id: sorted(
                [
                    *q.windows,
                    *schedule.resolve(q.relative_windows, self.started_at, config.time_scale),
                ],
                key=lambda w: w.starting,
            )
            for q in config.qpus
        }
        self.submissions: Counter[str] = Counter()
        #: SUBMITTED + RUNNING tasks per user id.
        self.active: Counter[int] = Counter()
        self.limiter = LimitTracker()
        self._seq = 0
        self._queue_seq = 0
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
            token = Token(user.login_token, user, self.clock() + _TOKEN_LIFETIME)
            self.tokens[user.login_token] = token
            if self.journal is not None:
                self.journal.user(user)
                self.journal.token(token)
        return user

    def create_token(self, user: User, expires_at: dt.datetime) -> Token:
        """A new token for ``user``."""
        token = Token(new_token("tok"), user, expires_at)
        self.tokens[token.value] = token
        if self.journal is not None:
            self.journal.token(token)
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
        if self.journal is not None:
            self.journal.token_deleted(value)
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
        user = self._add_user(UserSpec(email=email, password=password, name=name))
        if self.journal is not None:
            self.journal.user(user)
        return user

    def update_password(self, actor: User, user_id: str, password: str, confirm: str) -> User:
        """Change a password (own, or any for admins)."""
        user = self.user_of(actor, user_id)
        if password != confirm:
            raise RequestRejected("password and password_confirm differ")
        if not password:
            raise RequestRejected("the password must not be empty")
        user.password = password
        user.password_expires_at = self.clock() + _TOKEN_LIFETIME
        if self.journal is not None:
            self.journal.user(user)
        return user

    # -- limits ------------------------------------------------------------------------------
    def limits_of(self, user: User) -> UserLimits | None:
        """The user's limits; None for administrators (never limited) and unlimited users."""
        if user.admin:
            return None
        limits = self.config.limits_of(user.email)
        return None if limits.unlimited else limits

    def admit(self, user: User, now: float) -> bool:
        """Take one request of ``user`` under its rate and concurrency limits (``now`` in
        seconds of a monotonic clock). True: admitted, :meth:`release` it when answered.
        Raises a 429 :class:`RequestRejected` with ``retry_after`` otherwise."""
        limits = self.limits_of(user)
        if limits is None:
            return False
        wait = self.limiter.admit(user.id, limits, now)
        if wait is not None:
            raise RequestRejected(
                f"too many requests from {user.email}: retry in {wait:.3g} s",
                429,
                retry_after=wait,
            )
        return True

    def release(self, user: User) -> None:
        """An admitted request of ``user`` was answered."""
        self.limiter.release(user.id)

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
            windows=self.windows[spec.id] if spec.windowed else None,
        )

    def gating_windows(self, qpu_id: str) -> list[Window] | None:
        """The windows a QPU works in, or None when it is always open."""
        spec = self.qpu(qpu_id)
        return self.windows[qpu_id] if spec.windowed else None

    def add_window(self, qpu_id: str, window: Window, *, journal: bool = True) -> None:
        """Add a window to a QPU's schedule (and wake its waiting workers)."""
        self.windows[qpu_id] = sorted([*self.windows[qpu_id], window], key=lambda w: w.starting)
        if journal and self.journal is not None:
            self.journal.window(qpu_id, window)
        if self.on_windows_change is not None:
            self.on_windows_change(qpu_id)

    def wait_estimate_s(self, spec: QpuSpec, position: int) -> float | None:
        """Seconds before a task at ``position`` in the queue (0 = next) starts, roughly:
        the work ahead of it spread over the QPU's workers and, for a QPU that works in
        windows, over the open time of its windows. None when no window is left."""
        per_task = spec.execution_time_s * self.config.time_scale
        busy = len(self.running[spec.id])
        work = per_task * (position + busy) / spec.workers
        now = self.clock()
        start = schedule.start_estimate(self.gating_windows(spec.id), now, work)
        return None if start is None else round(max((start - now).total_seconds(), 0.0), 6)

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
        if self.journal is not None:
            self.journal.task(task)
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
        self._check_active(owner, sum(t is None or t.status is TaskStatus.CREATED for t in targets))
        now = self.clock()
        ids: list[str] = []
        queued: list[Task] = []
        for sub, found in zip(submissions, targets):
            task = found if found is not None else self._new_task(owner, sub.qpu_id, sub.tag)
            ids.append(task.id)
            self.submissions[task.id] += 1
            if task.status is not TaskStatus.CREATED:
                if self.journal is not None:
                    self.journal.task(task)
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
            self._queue_seq += 1
            task.queue_seq = self._queue_seq
            self.queues[task.qpu_id][task.id] = None
            self.active[owner.id] += 1
            queued.append(task)
            self._changed(task)
        return ids, queued

    def _check_active(self, owner: User, adding: int) -> None:
        limits = self.limits_of(owner)
        cap = None if limits is None else limits.max_active_tasks
        if cap is None or adding == 0 or self.active[owner.id] + adding <= cap:
            return
        assert limits is not None
        raise RequestRejected(
            f"too many active tasks: {self.active[owner.id]} queued or running, "
            f"{adding} more submitted, at most {cap} allowed",
            429,
            retry_after=limits.retry_after_s,
        )

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
        if task.status in (TaskStatus.SUBMITTED, TaskStatus.RUNNING):
            self.active[task.owner.id] -= 1
            if self.active[task.owner.id] <= 0:
                del self.active[task.owner.id]
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
        if self.journal is not None:
            self.journal.task(task)
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
    def count_request(self, route: str, *, faults: bool = True) -> FaultRule | None:
        """Count a request to ``route``; return the fault to inject into it, if any (never
        with ``faults=False``: the request then consumes no fault draw)."""
        self.requests[route] += 1
        return self.injector.for_request(route) if faults else None

    def counters(self) -> dict[str, Any]:
        """The admin counters document: requests per route, submissions per task ID (and
        those submitted more than once), tasks by status, and faults injected by kind."""
        by_status = Counter(t.status.value for t in self.tasks.values())
        return {
            "requests": dict(sorted(self.requests.items())),
            "total_requests": sum(self.requests.values()),
            "submissions": dict(self.submissions),
            "duplicate_submissions": {k: v for k, v in self.submissions.items() if v > 1},
            "tasks": {"total": len(self.tasks), "by_status": dict(sorted(by_status.items()))},
            "faults_injected": dict(sorted(self.injector.injected.items())),
        }

    def reset_counters(self) -> None:
        """Zero the request, submission and fault counters (tasks are kept)."""
        self.requests.clear()
        self.submissions.clear()
        self.injector.injected.clear()

    # -- restoring ---------------------------------------------------------------------------
    def load(
        self,
        users: Iterable[User],
        tokens: Iterable[tuple[str, str, dt.datetime]],
        tasks: Iterable[tuple[Task, str, int]],
        windows: Iterable[tuple[str, Window]],
    ) -> list[Task]:
        """Put back what a store kept, over a fresh :meth:`reset` state; returns the tasks to
        queue again, in FIFO order.

        ``users`` are matched to configured ones by email (the kept password wins);
        ``tokens`` are ``(value, owner email, expires_at)``; ``tasks`` are ``(task, owner
        email, submissions)`` whose ``owner`` is replaced. A task that was RUNNING is queued
        again (its run was lost).
        """
        by_email = {u.email.lower(): u for u in self.users.values()}
        for kept in users:
            known = by_email.get(kept.email.lower())
            if known is None:
                kept.id = max(self.users) + 1
                self.users[kept.id] = kept
                by_email[kept.email.lower()] = kept
            else:
                known.password = kept.password
                known.password_expires_at = kept.password_expires_at
                known.login_token = kept.login_token
        for value, email, expires_at in tokens:
            owner = by_email.get(email.lower())
            if owner is not None and value not in self.tokens:
                self.tokens[value] = Token(value, owner, expires_at)
        requeue = []
        for task, email, submitted in tasks:
            owner = by_email.get(email.lower())
            if owner is None or self.config.qpu(task.qpu_id) is None:
                continue  # its user or QPU is gone from the configuration
            task.owner = owner
            self.tasks[task.id] = task
            if submitted:
                self.submissions[task.id] = submitted
            self._seq = max(self._seq, task.seq)
            self._queue_seq = max(self._queue_seq, task.queue_seq or 0)
            if task.status is TaskStatus.RUNNING:
                task.status, task.started = TaskStatus.SUBMITTED, None
            if task.status is TaskStatus.SUBMITTED:
                requeue.append(task)
                self.active[owner.id] += 1
        requeue.sort(key=lambda t: (t.queue_seq or 0, t.seq))
        for task in requeue:
            self.queues[task.qpu_id][task.id] = None
        for qpu_id, window in windows:
            if qpu_id in self.windows:
                self.add_window(qpu_id, window, journal=False)
        return requeue
