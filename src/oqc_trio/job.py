"""``Job`` and ``CompositeJob``: thin public handles over the trio actor runtime.

Same names, constructor and members as the official SDK's ``oqc_qcaas_sdk.job``; the
behaviour differs where the official one is weak (see ``official-sdk-behaviour.md`` §c):

- ``timeout_s`` is a cancel scope over the whole call: kept to the millisecond, not "after the
  next poll" (#4, #5); ``None`` means no deadline (#22). On expiry an
  :class:`ExecuteTimeout` (a ``TimeoutError``) is raised; the tasks keep running remotely and
  the next ``execute()`` resumes them by polling, never by resubmitting (#6, #8).
- Only the server's word marks a task FAILED. Transport errors, 404/401 while polling,
  deadlines, cancellation and Ctrl-C leave the job with its task ID, resumable (#8, #11, #13).
- Task IDs are reserved before submission, so an ambiguous submit is reconciled by ID (#8).
- ``history`` gets one entry per run, not one per ``refresh()`` (#15).
- ``cancel()`` never turns a finished job into CANCELLED (#14); a composite cancels with one
  ``cancel_many`` per QPU.
- ``CompositeJob.execute`` polls through one shared scheduler, not one loop per job (#1-#3).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from . import _wire
from ._actors.supervisor import Drive, drive, sole_error
from ._wire.status import JobState
from .config import config_to_wire
from .exceptions import ExecuteTimeout, JobFailed, NotOpenError, OqcError
from .job_output import JobError, JobOutput, JobResult
from .job_output_proxy import JobOutputProxy

if TYPE_CHECKING:
    from ._actors.submitter import SubmitTicket
    from .client import OqcSdk
    from .job_snapshot import CompositeJobSnapshot, JobSnapshot

__all__ = ["CompositeJob", "Job", "JobState"]

_CANCEL_CLEANUP_S = 5.0


def _deadline(timeout_s: float | None) -> float:
    if timeout_s is None:
        return math.inf
    if timeout_s < 0 or timeout_s != timeout_s:
        raise ValueError(f"timeout_s must be a non-negative number or None, got {timeout_s!r}")
    return trio.current_time() + timeout_s


class Job:
    """One quantum program on one QPU, and every run of it.

    Normally made by :meth:`OqcSdk.create_job`. While an ``execute``/``wait``/``submit`` call
    drives the job, a trio task (its actor) owns its state; reading properties is always safe,
    and setters that would race with it (``reconfigure``) raise ``RuntimeError`` meanwhile.
    """

    def __init__(
        self,
        program: str,
        qpu_id: str,
        config: Any = None,
        task_id: uuid.UUID | str | None = None,
        tag: str | None = None,
        hybrid_marker: str | None = None,
        fetch_diagnostics: bool = False,
        _client: OqcSdk | None = None,
    ) -> None:
        self.program = program
        self.qpu_id = qpu_id
        self.config = config
        self.task_id = uuid.UUID(str(task_id)) if task_id is not None else None
        self.tag = tag
        self.hybrid_marker = hybrid_marker
        self.fetch_diagnostics = fetch_diagnostics
        self.timings: dict[str, Any] | None = None
        self.metrics: dict[str, Any] | None = None
        self.metadata: dict[str, Any] | None = None
        self._client = _client
        self._state = JobState.CREATED
        self._result: JobResult | None = None
        self._error: JobError | None = None
        self._history: list[JobOutput] = []
        self._raise_on_error = False
        # True once the server has accepted the task under ``task_id``. A reserved but
        # unconfirmed ID is reconciled with the server before anything is sent again.
        self._confirmed = task_id is not None
        self._task_base: str | None = None
        self._drive: Drive | None = None
        self._cancel_requested = False

    # -- read-only views ---------------------------------------------------------------------
    @property
    def state(self) -> JobState:
        """The last state observed (or set locally before submission)."""
        return self._state

    @property
    def result(self) -> JobResult | None:
        """The latest run's result, if it completed."""
        return self._result

    @property
    def error(self) -> JobError | None:
        """The latest run's error, if the server failed it."""
        return self._error

    @property
    def ended(self) -> bool:
        """True once COMPLETED, FAILED or CANCELLED."""
        return self._state.ended

    @property
    def completed(self) -> bool:
        """True when the latest run COMPLETED without error."""
        return self._state is JobState.COMPLETED and self._error is None

    @property
    def outputs(self) -> JobOutputProxy[Any]:
        """The latest result, else the latest error, else empty."""
        latest = self._latest_output()
        return JobOutputProxy([latest] if latest is not None else [])

    def _latest_output(self) -> JobOutput | None:
        # Not ``result or error``: a JobResult is falsy (official semantics).
        return self._result if self._result is not None else self._error

    @property
    def history(self) -> JobOutputProxy[Any]:
        """Every run's output, oldest first: one entry per run (official: one per refresh)."""
        return JobOutputProxy(list(self._history))

    @property
    def raise_on_error(self) -> bool:
        """When True, ``execute``/``wait`` raise :class:`JobFailed` for a failed task.

        Public here; the official SDK only restores it from a snapshot.
        """
        return self._raise_on_error

    @raise_on_error.setter
    def raise_on_error(self, value: bool) -> None:
        self._raise_on_error = bool(value)

    @property
    def driven(self) -> bool:
        """True while an execute/wait/submit call's actor owns this job."""
        return self._drive is not None

    def __repr__(self) -> str:
        parts = [
            f"id={self.task_id}",
            f"qpu={self.qpu_id}",
            f"state={self._state.value}",
            f"history_len={len(self._history)}",
        ]
        if self._error is not None:
            parts.append(f"error={self._error.short}")
        if self._result is not None:
            parts.append(f"result_keys={list(self._result.data)}")
        return f"Job({', '.join(parts)})"

    # -- synchronous API -----------------------------------------------------------------------
    def reconfigure(self, memento: JobOutput | None = None, **kwargs: Any) -> None:
        """Prepare a new run: copy program/qpu_id/config from ``memento``, then set attributes.

        Atomic: an unknown attribute raises ``AttributeError`` and nothing changes. Clears the
        task ID and sets CREATED (the old task, if still running, is not cancelled). Refused
        while the job is being driven.
        """
        self._require_idle("reconfigure")
        updates: dict[str, Any] = {}
        if memento is not None:
            updates.update(
                program=memento.program, qpu_id=memento.qpu_id, config=memento.compiler_config
            )
        for name, value in kwargs.items():
            if (
                name.startswith("_")
                or not hasattr(self, name)
                or isinstance(getattr(type(self), name, None), property)
            ):
                raise AttributeError(f"Job has no settable attribute {name!r}")
            updates[name] = value
        for name, value in updates.items():
            setattr(self, name, value)
        self.task_id = None
        self._confirmed = False
        self._state = JobState.CREATED

    def raise_for_status(self) -> None:
        """Raise :class:`JobFailed` if the latest run failed on the server."""
        if self._state is JobState.FAILED or self._error is not None:
            error = self._error
            raise JobFailed(
                str(self.task_id) if self.task_id else "<unsubmitted>",
                self.qpu_id,
                error.error_code if error else None,
                error.error_message if error else None,
            )

    def to_snapshot(self) -> JobSnapshot:
        """This job's state as an official-compatible snapshot model."""
        from ._snapshots import job_to_snapshot

        return job_to_snapshot(self)

    def save(self, path: str | Any, *, compatible: bool = False) -> None:
        """Write the snapshot to ``path`` atomically (temp file, fsync, rename).

        ``compatible=True`` writes an UNKNOWN state as SUBMITTED/CREATED so the file also
        loads in the official SDK (which rejects UNKNOWN).
        """
        from .job_snapshot import save_snapshot

        save_snapshot(self.to_snapshot(), path, compatible=compatible)

    # -- async API -----------------------------------------------------------------------------
    async def submit(self, *, timeout_s: float | None = 30.0) -> Job:
        """Reserve a task ID and submit, without waiting for the result.

        ``timeout_s`` bounds the whole call (the official SDK ignores it). A server refusal
        makes the job FAILED with a :class:`JobError`; running out of time leaves a reserved
        ID that the next call reconciles, and raises :class:`ExecuteTimeout`.
        """
        if self._confirmed and not self.ended:
            return self
        await self._run([self], timeout_s, poll=False)
        return self

    async def wait(self, *, timeout_s: float | None = 10.0) -> Job:
        """Submit if needed, then wait until the task ends (or ``timeout_s``; None = forever)."""
        await self._run([self], timeout_s, poll=True, new_run=False)
        return self

    async def execute(
        self, *, timeout_s: float | None = 10.0, cancel_on_timeout: bool = False
    ) -> JobOutputProxy[Any]:
        """Run the job to the end and return :attr:`outputs`.

        A finished job starts a new run (history kept); an active one is resumed. With
        ``cancel_on_timeout`` the task is cancelled remotely (shielded, 5 s) when time runs
        out; by default it keeps running and the next call resumes it.
        """
        await self._run([self], timeout_s, poll=True, cancel_on_timeout=cancel_on_timeout)
        return self.outputs

    async def refresh(self) -> Job:
        """One status request; updates state, result and error (history once per run)."""
        self._require_idle("refresh")
        if self.task_id is None:
            raise RuntimeError("refresh() needs a submitted job (task_id is None)")
        runtime = self._sdk()._runtime()
        base = self._task_base if self._task_base is not None else runtime.task_base(self.qpu_id)
        response = await runtime.send(runtime.api.all_info(base, str(self.task_id)))
        self._task_base = base
        info = _wire.parse_task_info(response.json(), str(self.task_id))
        # CREATED means reserved but never submitted: the next execute must reconcile.
        self._confirmed = info.state is not JobState.CREATED
        self._apply_info(info)
        return self

    async def cancel(self) -> Job:
        """Cancel the task remotely if it is active. A finished job is left untouched.

        The state is then what the server reports: a task it has not stopped yet stays
        active, and the next ``execute()`` follows it rather than submitting it again.
        """
        await _cancel_jobs([self], self._client)
        return self

    async def cancel_if_active(self) -> Job:
        """Same as :meth:`cancel` (which never touches a finished job either)."""
        return await self.cancel()

    # -- runtime plumbing (used by the actor runtime only) ------------------------------------
    def _sdk(self) -> OqcSdk:
        if self._client is None:
            raise RuntimeError(
                "this Job is not bound to an OqcSdk: create it with sdk.create_job(...)"
            )
        return self._client

    async def _run(
        self,
        jobs: Sequence[Job],
        timeout_s: float | None,
        *,
        poll: bool,
        new_run: bool = True,
        cancel_on_timeout: bool = False,
    ) -> None:
        await run_jobs(
            jobs,
            self._client,
            timeout_s,
            poll=poll,
            new_run=new_run,
            cancel_on_timeout=cancel_on_timeout,
        )
        if poll and self._raise_on_error:
            self.raise_for_status()

    def _require_idle(self, action: str) -> None:
        if self._drive is not None:
            raise RuntimeError(f"cannot {action} a job while an execute call is driving it")

    def _attach(self, drive_: Drive) -> None:
        self._require_idle("drive")
        self._drive = drive_

    def _detach(self, drive_: Drive) -> None:
        if self._drive is drive_:
            self._drive = None

    def _start_new_run(self) -> None:
        self._cancel_requested = False
        self.task_id = None
        self._confirmed = False
        self._result = None
        self._error = None
        self._state = JobState.CREATED

    def _config_on_wire(self) -> tuple[str, dict[str, Any] | None]:
        """The config as the task carries it: its JSON text and any external config."""
        return config_to_wire(self.config)

    def _encoded_task(self) -> bytes:
        config, external = self._config_on_wire()
        return _wire.encode_task(
            _wire.task_dict(
                program=str(self.program),
                qpu_id=str(self.qpu_id),
                config=config,
                tag=self.tag,
                hybrid_marker=self.hybrid_marker,
                external_config=external,
            )
        )

    def _apply_ticket(self, ticket: SubmitTicket, task_base: str | None) -> None:
        if ticket.task_id is not None:
            self.task_id = uuid.UUID(ticket.task_id)
            self._task_base = task_base
        if ticket.confirmed:
            self._confirmed = True
            self._state = JobState.SUBMITTED
        elif ticket.error is not None:
            code, message = ticket.error
            self._finish(JobError(error_code=code, error_message=message, job=self))
            self._state = JobState.FAILED

    def _apply_info(self, info: _wire.TaskInfo) -> None:
        was_ended = self._state.ended
        if info.state is JobState.UNKNOWN and self._state is not JobState.CREATED:
            return  # an unrecognised word tells us nothing new
        self._state = info.state
        if not info.state.ended or was_ended:
            return
        output: JobOutput | None = None
        if info.state is JobState.COMPLETED:
            output = JobResult(data=dict(info.results or {}), job=self)
        elif info.state is JobState.FAILED:
            output = JobError(
                error_code=info.error_code, error_message=info.error_message, job=self
            )
        if output is not None:
            if self.fetch_diagnostics:
                for target in (self, output):
                    target.timings = dict(info.timings) if info.timings else None
                    target.metrics = (
                        dict(info.execution_metadata) if info.execution_metadata else None
                    )
                    target.metadata = dict(info.metadata) if info.metadata else None
            self._finish(output)

    def _finish(self, output: JobOutput) -> None:
        if isinstance(output, JobResult):
            self._result, self._error = output, None
        elif isinstance(output, JobError):
            self._error, self._result = output, None
        self._history.append(output)


class CompositeJob:
    """Many jobs executed together: one supervisor, batched submission, one poll scheduler.

    Same surface as the official ``CompositeJob`` plus :meth:`as_completed`. ``outputs`` holds
    one item per child that has an output, in child order; re-``execute`` resumes active
    children and starts a new run only for finished ones.
    """

    def __init__(self, jobs: Iterable[Job] | None = None) -> None:
        self.jobs: list[Job] = list(jobs or [])

    def add(self, job_or_list: Job | Iterable[Job]) -> CompositeJob:
        """Append one job or several."""
        if isinstance(job_or_list, Job):
            self.jobs.append(job_or_list)
        else:
            self.jobs.extend(job_or_list)
        return self

    def __len__(self) -> int:
        return len(self.jobs)

    def __iter__(self) -> Iterator[Job]:
        return iter(self.jobs)

    def __repr__(self) -> str:
        return (
            f"CompositeJob(jobs={len(self.jobs)}, completed={len(self.completed_jobs)}, "
            f"failed={len(self.failed_jobs)}, active={len(self.active_jobs)})"
        )

    @property
    def completed(self) -> bool:
        """Non-empty and every child completed."""
        return bool(self.jobs) and all(job.completed for job in self.jobs)

    @property
    def completed_jobs(self) -> list[Job]:
        """Children whose latest run completed."""
        return [job for job in self.jobs if job.completed]

    @property
    def failed_jobs(self) -> list[Job]:
        """Children whose latest run the server failed."""
        return [job for job in self.jobs if job.error is not None]

    @property
    def active_jobs(self) -> list[Job]:
        """Children not yet finished."""
        return [job for job in self.jobs if not job.ended]

    @property
    def terminal_jobs(self) -> list[Job]:
        """Children that are finished (completed, failed or cancelled)."""
        return [job for job in self.jobs if job.ended]

    @property
    def outputs(self) -> JobOutputProxy[Any]:
        """Each child's latest output, in child order (children without one are skipped)."""
        return JobOutputProxy(
            [out for job in self.jobs if (out := job._latest_output()) is not None]
        )

    def _client(self) -> OqcSdk | None:
        return next((job._client for job in self.jobs if job._client is not None), None)

    async def execute(
        self, *, timeout_s: float | None = 10.0, cancel_on_timeout: bool = False
    ) -> JobOutputProxy[Any]:
        """Submit what needs submitting, follow every child to the end, return ``outputs``.

        While any child is unfinished, a call *continues* the batch: active children are
        resumed (by polling, or by reconciling a reserved ID), unsubmitted ones are submitted,
        and finished ones are left alone, so a batch interrupted by a deadline is never paid
        for twice. Once every child has finished, a call starts a new run of all of them, as
        the official SDK does.
        """
        await run_jobs(
            self._jobs_to_run(),
            self._client(),
            timeout_s,
            poll=True,
            cancel_on_timeout=cancel_on_timeout,
        )
        return self.outputs

    def _jobs_to_run(self) -> list[Job]:
        unfinished = [job for job in self.jobs if not job.ended]
        return unfinished if unfinished else list(self.jobs)

    @asynccontextmanager
    async def as_completed(
        self, *, timeout_s: float | None = None
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Job]]:
        """Execute, receiving each child as soon as it reaches a terminal state::

            async with composite.as_completed(timeout_s=60) as finished:
                async for job in finished:
                    ...

        A context manager (not a bare async generator) so the execution's nursery is
        structured: leaving the block early stops the execution (tasks keep running
        remotely, resumable); a timeout raises :class:`ExecuteTimeout` at the block's end.
        Children already finished and not re-run are not received again.
        """
        send, receive = trio.open_memory_channel[Job](math.inf)

        async def run() -> None:
            async with send:
                await run_jobs(
                    self._jobs_to_run(),
                    self._client(),
                    timeout_s,
                    poll=True,
                    on_finished=send.send_nowait,
                )

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run)
                try:
                    async with receive:
                        yield receive
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise sole_error(group) from None

    async def cancel(self) -> CompositeJob:
        """Cancel every active child: one ``cancel_many`` per QPU URL."""
        await _cancel_jobs(self.jobs, self._client())
        return self

    async def cancel_if_active(self) -> CompositeJob:
        """Same as :meth:`cancel` (finished children are never touched)."""
        return await self.cancel()

    def to_snapshot(self) -> CompositeJobSnapshot:
        """All children as an official-compatible composite snapshot."""
        from ._snapshots import composite_to_snapshot

        return composite_to_snapshot(self)

    def save(self, path: str | Any, *, compatible: bool = False) -> None:
        """Write the snapshot to ``path`` atomically (see :meth:`Job.save`)."""
        from .job_snapshot import save_snapshot

        save_snapshot(self.to_snapshot(), path, compatible=compatible)


async def run_jobs(
    jobs: Sequence[Job],
    client: OqcSdk | None,
    timeout_s: float | None,
    *,
    poll: bool,
    new_run: bool = True,
    cancel_on_timeout: bool = False,
    on_finished: Any = None,
    on_reserved: Any = None,
) -> None:
    """Drive ``jobs`` under one supervisor with a deadline (shared by Job and CompositeJob,
    and by the runner, which passes ``on_reserved`` to journal task IDs before submission
    and ``on_finished`` to store each result as it arrives)."""
    if not jobs:
        return
    if client is None:
        raise RuntimeError("these jobs are not bound to an OqcSdk: use sdk.create_job(...)")
    runtime = client._runtime()
    if not new_run:
        jobs = [job for job in jobs if not job.ended]
    deadline = _deadline(timeout_s)
    failures: list[tuple[Job, OqcError]] = []
    with trio.move_on_at(deadline) as scope:
        failures = await drive(
            jobs,
            runtime,
            poll=poll,
            deadline=deadline,
            on_finished=on_finished,
            on_reserved=on_reserved,
        )
    if scope.cancelled_caught:
        unfinished = [job for job in jobs if not job.ended]
        if cancel_on_timeout and unfinished:
            with trio.move_on_after(_CANCEL_CLEANUP_S) as cleanup:
                cleanup.shield = True
                await _cancel_jobs(unfinished, client)
        raise ExecuteTimeout(timeout_s, unfinished)
    if failures:
        _job, error = failures[0]
        raise error


async def _cancel_jobs(jobs: Sequence[Job], client: OqcSdk | None) -> None:
    """Cancel the active jobs remotely: one ``cancel_many`` per QPU URL (per execute call for
    jobs being driven, whose actors then observe the outcome)."""
    for job in jobs:
        if job.task_id is None and job._drive is not None:
            job._cancel_requested = True  # its actor cancels once the server has the task
    active = [job for job in jobs if job.task_id is not None and not job.ended]
    if not active:
        return
    if client is None:
        raise NotOpenError("cannot cancel: the jobs are not bound to an OqcSdk")
    runtime = client._runtime()
    by_drive: dict[int, tuple[Drive, list[Job]]] = {}
    idle: dict[str | None, list[Job]] = {}
    for job in active:
        if job._drive is not None:
            by_drive.setdefault(id(job._drive), (job._drive, []))[1].append(job)
        else:
            base = job._task_base if job._task_base is not None else runtime.task_base(job.qpu_id)
            job._task_base = base
            idle.setdefault(base, []).append(job)
    for drive_, driven in by_drive.values():
        await drive_.cancel_remote(driven)
    for base, group in idle.items():
        await runtime.send(runtime.api.cancel_many(base, [str(job.task_id) for job in group]))
    idle_jobs = [job for group in idle.values() for job in group]
    if idle_jobs:
        await confirm_cancelled(idle_jobs, runtime)


async def confirm_cancelled(jobs: Sequence[Job], runtime: Any) -> None:
    """Ask the server how each cancelled task stands and record its answer: a task that
    completed before the cancel arrived keeps its result, and one still reported active (the
    cancel not carried out yet) stays active, so the next execute follows that same task to
    its end instead of starting a new run. If the answer cannot be had, the state is left
    alone. Either way the job keeps its cancel-requested flag.

    For jobs no execute call drives (their ``_task_base`` set). Public to the package: the
    batch runner confirms its own ``cancel_many`` with it (not in ``__all__``)."""
    limiter = trio.CapacityLimiter(8)

    async def confirm(job: Job) -> None:
        job._cancel_requested = True
        async with limiter:
            try:
                response = await runtime.send(
                    runtime.api.all_info(job._task_base, str(job.task_id))
                )
                info = _wire.parse_task_info(response.json(), str(job.task_id))
            except OqcError:
                # Not observed: leave the state alone; the next execute resumes the task
                # and sees how it ended.
                return
        if job._drive is not None:
            return  # an execute started meanwhile: its actor owns the state now
        job._apply_info(info)

    async with trio.open_nursery() as nursery:
        for job in jobs:
            nursery.start_soon(confirm, job)
