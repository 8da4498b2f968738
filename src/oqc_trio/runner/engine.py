"""The run loop: drive every unfinished logical job through the actor runtime, journaling as
it goes.

One supervisor (the SDK's :class:`~oqc_trio._actors.supervisor.Drive`: a batching submitter
and one poll scheduler) serves the whole run; each job gets an actor, optionally behind a
capacity limiter (``max_in_flight``), and retries of server-reported transient failures start
new actors in the same run. This is what ``run_jobs`` does, plus the limiter and the retries,
which a fixed job list cannot express.

Crash safety rests on two hooks: ``on_reserved`` journals task IDs (and flushes, shielded)
*before* the submit request is sent, and ``on_finished`` records each end as it happens. On
resume, an attempt holding an ID that was never confirmed is reconciled by ID with the
server; a confirmed one is polled. Nothing is ever sent twice.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import trio

from .._actors.policy import PollPolicy
from .._actors.supervisor import Drive
from .._wire import MAX_REQUEST_BYTES
from ..auth import Credentials
from ..client import OqcSdk
from ..exceptions import (
    AuthenticationError,
    InsecureURLError,
    NoActiveQpuError,
    OqcError,
    TransportError,
)
from ..job import Job, JobState, confirm_cancelled
from .batchjob import BatchJob, WireConfigs
from .expand import ExpandedBatch, LogicalJob
from .journal import Attempt, Journal
from .progress import EventLog, LiveCounts, Tally
from .results import ResultWriter
from .schema import BatchError, Problem, ServerSection

__all__ = ["Connection", "Engine", "ServerFailure", "connect", "credentials", "server_meta"]

_CLEANUP_S = 20.0
# Of the shielded cleanup time, what the cancel and the confirmation of its outcomes may use:
# the rest is kept for the last journal flush and the result files.
_CLEANUP_RESERVE_S = 5.0
# A task the server still reports active right after the cancel is asked about again, with
# growing pauses, for this long at most (a cancel a real QPU carries out a bit later).
_CONFIRM_AGAIN_S = 5.0
_CANCEL_IDS_PER_REQUEST = 2000
_TASK_OVERHEAD_BYTES = 1024


class ServerFailure(Exception):
    """The server is unreachable, refused our credentials or broke the contract (exit 4).

    ``auth`` is True when the credentials were refused.
    """

    def __init__(self, message: str, *, auth: bool = False) -> None:
        super().__init__(message)
        self.auth = auth


@attrs.define
class Connection:
    """An open SDK, and the emulator serving it when the batch runs on the embedded one."""

    sdk: OqcSdk
    url: str
    emulator: Any = None


def server_meta(server: ServerSection) -> dict[str, Any]:
    """The server settings kept in the journal: never a secret, only where to find them."""
    return {
        "url": server.url,
        "embedded": server.embedded,
        "dialect": server.dialect,
        "token_env": server.token_env,
        "email_env": server.email_env,
        "password_env": server.password_env,
        "allow_insecure_http": server.allow_insecure_http,
    }


def credentials(meta: Mapping[str, Any], environ: Mapping[str, str]) -> Credentials:
    """Credentials read from the environment variables named in ``meta`` (never from disk).

    Raises ``LookupError(key, message)`` naming the ``[server]`` key whose variable is unset
    or empty.
    """
    found: dict[str, str] = {}
    for key, argument in (
        ("token_env", "token"),
        ("email_env", "email"),
        ("password_env", "password"),
    ):
        name = meta.get(key)
        if name is None:
            continue
        value = environ.get(name)
        if value is None:
            raise LookupError(key, f"environment variable {name} is not set")
        if not value:
            raise LookupError(key, f"environment variable {name} is empty")
        found[argument] = value
    if not found:
        raise LookupError(
            "token_env", "no credentials: set token_env (or email_env and password_env)"
        )
    return Credentials(**found)


def _describe_failure(url: str, exc: OqcError) -> str:
    if isinstance(exc, AuthenticationError):
        return f"{url}: authentication failed ({exc})"
    if isinstance(exc, TransportError):
        return f"cannot reach {url}: {exc}"
    if isinstance(exc, NoActiveQpuError):
        return str(exc)
    return f"{url}: {exc}"


async def _open(sdk: OqcSdk) -> None:
    try:
        await sdk.open()
    except OqcError as exc:
        await sdk.close()
        auth = isinstance(exc, AuthenticationError)
        raise ServerFailure(_describe_failure(sdk.url, exc), auth=auth) from None


@asynccontextmanager
async def connect(
    batch: ExpandedBatch,
    meta: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    *,
    emulator_db: Path | None = None,
) -> AsyncIterator[Connection]:
    """Open the SDK on the batch's server; start the embedded emulator first if needed.

    ``emulator_db`` is where the embedded emulator keeps its tasks (an sqlite file in the
    journal directory), so that a run interrupted or killed on the embedded emulator resumes
    like one on a real server: queued tasks keep their IDs and run on.

    Raises :class:`~oqc_trio.runner.schema.BatchError` for bad settings (exit 2) and
    :class:`ServerFailure` when the server cannot be used (exit 4).
    """
    spec = batch.spec
    options: dict[str, Any] = {
        "dialect": spec.server.dialect,
        "max_concurrency": spec.limits.max_concurrency,
        "max_requests_per_s": spec.limits.max_requests_per_s,
        "poll_policy": PollPolicy(max_interval_s=spec.limits.poll_max_interval),
    }
    if meta.get("embedded"):
        emulator_config = _emulator_config(batch)
        try:
            from ..emulator.server import open_emulator
        except ImportError as exc:
            raise BatchError(
                [
                    batch.problem(
                        ("server", "url"),
                        f"the embedded emulator needs the emulator "
                        f"extra (pip install 'oqc-trio[emulator]'): {exc}",
                    )
                ]
            ) from None
        async with open_emulator(
            emulator_config, executor=spec.server.emulator.executor, db=emulator_db
        ) as emu:
            sdk = OqcSdk(emu.url, authentication_token=emu.token, **options)
            await _open(sdk)
            try:
                yield Connection(sdk, emu.url, emu)
            finally:
                await sdk.close()
        return
    try:
        found = credentials(meta, os.environ if environ is None else environ)
    except LookupError as exc:
        key, message = exc.args
        raise BatchError([batch.problem(("server", key), message)]) from None
    try:
        sdk = OqcSdk(
            str(meta["url"]),
            credential=found,
            allow_insecure_http=bool(meta["allow_insecure_http"]),
            **options,
        )
    except InsecureURLError:
        # The SDK's message tells Python callers to pass allow_insecure_http=True; a batch
        # file says it in [server].
        host = urlsplit(str(meta["url"])).hostname
        raise BatchError(
            [
                batch.problem(
                    ("server", "url"),
                    f"refusing plain http:// to {host!r}: the token would travel unencrypted. "
                    "Use https://, or set allow_insecure_http = true in [server] if you really "
                    "mean it",
                )
            ]
        ) from None
    except ValueError as exc:
        raise BatchError([batch.problem(("server", "url"), str(exc))]) from None
    await _open(sdk)
    try:
        yield Connection(sdk, sdk.url)
    finally:
        await sdk.close()


def _emulator_config(batch: ExpandedBatch) -> Any:
    name = batch.spec.server.emulator.config
    if name is None:
        return None
    from ..emulator.config import ConfigError, EmulatorConfig

    try:
        return EmulatorConfig.from_toml(batch.path.parent / name)
    except ConfigError as exc:
        raise BatchError([batch.problem(("server", "emulator", "config"), str(exc))]) from None


def check_against_server(batch: ExpandedBatch, sdk: OqcSdk) -> None:
    """Every QPU of the batch is active on the server and every task fits in a request."""
    active = {qpu_id for qpu_id, record in sdk._qpus.items() if record.active}
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for job in batch.jobs:
        if job.qpu not in active and (job.entry, job.qpu) not in seen:
            seen.add((job.entry, job.qpu))
            problems.append(
                batch.problem(
                    (*batch.entry_path(job.entry), "qpu"),
                    f"unknown or inactive QPU {job.qpu!r} (the server offers: "
                    f"{', '.join(sorted(active)) or 'none'})",
                )
            )
    limit = MAX_REQUEST_BYTES - _TASK_OVERHEAD_BYTES
    for job in batch.jobs:
        size = len(job.program.encode()) + len(batch.configs[job.config].json)
        if size > limit:
            problems.append(
                batch.problem(
                    batch.entry_path(job.entry),
                    f"{job.key}: the task is {size:,} bytes; a request may hold {limit:,}",
                )
            )
            break
    if problems:
        raise BatchError(problems)


class _Ref:
    """The runner's view of one Job object: its logical job and current attempt."""

    __slots__ = ("attempt", "logical", "retry_if_cancelled")

    def __init__(self, logical: LogicalJob, attempt: Attempt | None, retry_if_cancelled: bool):
        self.logical = logical
        self.attempt = attempt
        self.retry_if_cancelled = retry_if_cancelled


class Engine:
    """Runs one batch on an open SDK until done, interrupted, out of time or fatally refused.

    ``interrupt()`` (the first Ctrl-C) stops submitting and polling at once; :meth:`run` then
    flushes the journal (shielded) and applies ``on_interrupt``.
    """

    def __init__(
        self,
        batch: ExpandedBatch,
        journal: Journal,
        writer: ResultWriter,
        events: EventLog,
        *,
        flush_interval: float = 1.0,
    ) -> None:
        self.batch = batch
        self.journal = journal
        self.writer = writer
        self.events = events
        self.limits = batch.spec.limits
        self.flush_interval = flush_interval
        self.tally = Tally(total=len(batch.jobs))
        self.fatal: str | None = None
        self.unobserved: list[tuple[LogicalJob, OqcError]] = []
        self.interrupted = False
        self.deadline_reached = False
        self.started = False
        self.stop: dict[str, Any] = {}
        self._startup_retries: list[dict[str, Any]] = []
        self._refs: dict[Job, _Ref] = {}
        # Jobs whose task ID is journaled but whose submission was not yet noted; each is
        # looked at by the flushes until its submission is confirmed or it ends (not every
        # in-flight job at every flush: that costs O(in flight) a second for a whole run).
        self._to_confirm: list[Job] = []
        self._work = trio.CancelScope()
        self._dirty = trio.Event()
        self._actors: trio.Nursery | None = None
        self._drive: Drive | None = None
        self._limiter: trio.CapacityLimiter | None = None
        self._sdk: OqcSdk | None = None
        self._wire_configs = WireConfigs(batch.config_objects)

    # -- public ----------------------------------------------------------------------------------
    def interrupt(self) -> None:
        """Stop submitting and polling; :meth:`run` then cleans up and returns."""
        self.interrupted = True
        self._work.cancel()

    def live_counts(self) -> LiveCounts:
        """Where every logical job is now (for the progress display)."""
        counts = LiveCounts(
            completed=self.tally.carried_completed + self.tally.completed,
            failed=self.tally.carried_failed + self.tally.failed,
            cancelled=self.tally.cancelled,
        )
        for job, ref in self._refs.items():
            if ref.attempt is None:
                counts.pending += 1
            elif not job._confirmed:
                counts.reserved += 1
            elif job.state is JobState.RUNNING:
                counts.running += 1
            else:
                counts.queued += 1
        return counts

    def work_left(self) -> bool:
        """True when some job needs the server (not completed, not failed for good)."""
        state = self.journal.state
        for job in self.batch.jobs:
            latest = state.latest(job.index)
            if latest is None or latest.state not in ("COMPLETED", "FAILED"):
                return True
            if latest.state == "FAILED" and self._retryable(job.index, latest.code):
                return True
        return False

    async def finish_offline(self) -> None:
        """Nothing to run: count what earlier runs did and rewrite the output files."""
        self.started = True
        self.events.emit("start", jobs=len(self.batch.jobs), to_run=0)
        for job in self.batch.jobs:
            latest = self.journal.state.latest(job.index)
            if latest is not None and latest.state == "COMPLETED":
                self.tally.carried_completed += 1
            else:
                self.tally.carried_failed += 1
        try:
            await self.writer.start()
            await self.writer.finish()
        finally:
            self._emit_end("done", requests=0)

    async def run(self, sdk: OqcSdk) -> None:
        """Drive every unfinished job to the end (or until interrupted / the deadline)."""
        self._sdk = sdk
        self.started = True
        jobs = self._jobs_for_run(sdk)
        await self.writer.start()
        self.journal.run_started(jobs=len(jobs), server=server_meta(self.batch.spec.server))
        await self._flush()
        self.events.emit("start", jobs=len(self.batch.jobs), to_run=len(jobs))
        for fields in self._startup_retries:
            self.events.emit("retry", **fields)
        self._startup_retries = []
        deadline = self.limits.deadline
        self._work.deadline = trio.current_time() + deadline if deadline else math.inf
        try:
            with self._work:
                if jobs:
                    await self._drive_all(sdk, jobs)
        except BaseExceptionGroup as group:
            self.fatal = _fatal_message(sdk.url, group)
        except OqcError as exc:
            self.fatal = _describe_failure(sdk.url, exc)
        if self._work.cancelled_caught and not self.interrupted:
            self.deadline_reached = True
        with trio.move_on_after(_CLEANUP_S) as cleanup:
            cleanup.shield = True
            await self._cleanup(sdk, trio.current_time() + _CLEANUP_S)

    # -- planning --------------------------------------------------------------------------------
    def _jobs_for_run(self, sdk: OqcSdk) -> list[Job]:
        state = self.journal.state
        jobs = []
        for logical in self.batch.jobs:
            latest = state.latest(logical.index)
            if latest is None:
                jobs.append(self._new_job(logical))
            elif latest.state == "CANCELLED":
                # Cancelled in an earlier run (on_interrupt/on_deadline = "cancel", or
                # ``oqc-run cancel``): the user re-ran the batch to finish it.
                self._startup_retry(logical, latest, reason="cancelled earlier")
                jobs.append(self._new_job(logical))
            elif latest.state == "COMPLETED":
                self.tally.carried_completed += 1
            elif latest.state == "FAILED":
                if self._retryable(logical.index, latest.code):
                    self._startup_retry(logical, latest, code=latest.code, message=latest.message)
                    jobs.append(self._new_job(logical))
                else:
                    self.tally.carried_failed += 1
            else:
                jobs.append(self._resumed_job(sdk, logical, latest))
        return jobs

    def _startup_retry(self, logical: LogicalJob, latest: Attempt, **fields: Any) -> None:
        """A new attempt for a job whose latest one ended in an earlier run (its ``retry``
        event is written after ``start``)."""
        self.tally.retries += 1
        if self.events.enabled:
            self._startup_retries.append({"job": logical.key, "task_id": latest.id, **fields})

    def _new_job(self, logical: LogicalJob) -> Job:
        job = BatchJob(
            logical.program,
            logical.qpu,
            self.batch.config_objects[logical.config],
            tag=logical.tag,
            _client=self._sdk,
        )
        job._wire_config = self._wire_configs[logical.config]
        self._refs[job] = _Ref(logical, None, False)
        return job

    def _resumed_job(self, sdk: OqcSdk, logical: LogicalJob, attempt: Attempt) -> Job:
        job = self._new_job(logical)
        job.task_id = _uuid(attempt.id)
        # Polled at the QPU's own URL (a Job restored from a snapshot would use the base URL).
        job._task_base = sdk._runtime().task_base(attempt.qpu)
        job._confirmed = attempt.state == "submitted"
        job._state = JobState.SUBMITTED if job._confirmed else JobState.CREATED
        ref = self._refs[job]
        ref.attempt, ref.retry_if_cancelled = attempt, attempt.cancel
        if not job._confirmed:
            self._to_confirm.append(job)
        return job

    def _retryable(self, index: int, code: int | None) -> bool:
        failed = sum(1 for a in self.journal.state.attempts[index] if a.state == "FAILED")
        return code in self.limits.retry_codes and failed <= self.limits.max_retries

    # -- driving ---------------------------------------------------------------------------------
    async def _drive_all(self, sdk: OqcSdk, jobs: list[Job]) -> None:
        runtime = sdk._runtime()
        self._drive = Drive(runtime, self._work.deadline, self._on_reserved)
        if self.limits.max_in_flight:
            self._limiter = trio.CapacityLimiter(self.limits.max_in_flight)
        try:
            async with trio.open_nursery() as services:
                services.start_soon(self._drive.submitter.run)
                services.start_soon(self._drive.scheduler.run)
                services.start_soon(self._flusher)
                async with trio.open_nursery() as actors:
                    self._actors = actors
                    for job in jobs:
                        actors.start_soon(self._actor, job)
                services.cancel_scope.cancel()
        finally:
            # The drive holds this engine (its on_reserved hook): without the cycle, the
            # batch and the journal are freed when the run is over, not by a collection.
            self._drive = None
            self._actors = None

    async def _actor(self, job: Job) -> None:
        assert self._drive is not None
        if self._limiter is not None:
            async with self._limiter:
                await self._drive.actor(job, poll=True, on_finished=self._on_finished)
        else:
            await self._drive.actor(job, poll=True, on_finished=self._on_finished)
        if not job.state.ended and job in self._refs:
            errors = [e for j, e in self._drive.observe_errors if j is job]
            if errors:
                self._unobservable(job, errors[-1])

    def _unobservable(self, job: Job, error: OqcError) -> None:
        ref = self._refs.pop(job)
        self.unobserved.append((ref.logical, error))
        self.tally.unobserved += 1
        self.events.emit(
            "unobserved", job=ref.logical.key, task_id=str(job.task_id), error=str(error)
        )
        if isinstance(error, AuthenticationError) and self.fatal is None:
            self.fatal = _describe_failure(self._sdk.url if self._sdk else "server", error)
            self._work.cancel()

    async def _on_reserved(self, tickets: Any) -> None:
        for ticket in tickets:
            ref = self._refs.get(ticket.owner)
            if ref is None:
                continue
            ref.attempt = self.journal.reserve(ref.logical.index, ticket.task_id, ticket.qpu_id)
            self._to_confirm.append(ticket.owner)
            if self.events.enabled:
                self.events.emit("reserved", job=ref.logical.key, task_id=ticket.task_id)
        # Mandatory: the IDs are on disk before the submit request leaves. (Confirmations
        # are noted by the periodic flush; most tasks finish before it, needing no record.)
        await self._flush(note_confirmed=False)
        self._dirty.set()

    def _on_finished(self, job: Job) -> None:
        ref = self._refs.pop(job, None)
        if ref is None:
            return
        logical = ref.logical
        attempt = ref.attempt
        if attempt is None:  # refused before an ID was reserved
            attempt = self.journal.reserve(logical.index, None, job.qpu_id)
        state = job.state
        key = logical.key
        if state is JobState.COMPLETED and job.result is not None:
            data = job.result.data  # the job's own copy of the server's results
            self.journal.ended(
                attempt, "COMPLETED", data=data if type(data) is dict else dict(data)
            )
            self.writer.add(logical.index)
            if self.events.enabled:
                self.events.emit("completed", job=key, task_id=attempt.id)
        elif state is JobState.FAILED:
            code = job.error.error_code if job.error else None
            message = job.error.error_message if job.error else None
            self.journal.ended(attempt, "FAILED", code=code, message=message)
            if self._retryable(logical.index, code) and not self._work.cancel_called:
                self.tally.retries += 1
                self.events.emit("retry", job=key, task_id=attempt.id, code=code, message=message)
                self._restart(logical)
                self._dirty.set()
                return
            self.events.emit("failed", job=key, task_id=attempt.id, code=code, message=message)
        else:
            self.journal.ended(attempt, "CANCELLED")
            if ref.retry_if_cancelled and not self._work.cancel_called:
                # We asked for this cancel in an earlier run (on_interrupt = "cancel"): the
                # user re-ran the batch to finish it.
                self.tally.retries += 1
                self.events.emit("retry", job=key, task_id=attempt.id, reason="cancelled earlier")
                self._restart(logical)
                self._dirty.set()
                return
            self.events.emit("cancelled", job=key, task_id=attempt.id)
        self.tally.finished(attempt.state)
        self._dirty.set()

    def _restart(self, logical: LogicalJob) -> None:
        assert self._actors is not None
        self._actors.start_soon(self._actor, self._new_job(logical))

    # -- persistence -----------------------------------------------------------------------------
    def _note_confirmed(self) -> None:
        waiting = []
        for job in self._to_confirm:
            ref = self._refs.get(job)
            if ref is None or ref.attempt is None:
                continue  # ended (its end record says more) or no longer ours
            if job._confirmed:
                self.journal.submitted(ref.attempt)
            else:
                waiting.append(job)
        self._to_confirm = waiting

    async def _flush(self, *, note_confirmed: bool = True) -> None:
        if note_confirmed:
            self._note_confirmed()
        taken = self.writer.take()
        await self.journal.flush()
        await self.writer.append(taken)
        self.events.flush()

    async def _flusher(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty = trio.Event()
            await trio.sleep(self.flush_interval)
            await self._flush()
            await self.writer.checkpoint()

    async def _cleanup(self, sdk: OqcSdk, deadline: float) -> None:
        """Flush, apply ``on_interrupt``/``on_deadline``, note how the run stopped, finish
        the result files; the ``end`` event is written whatever happens (``deadline``: the
        end of the shielded cleanup time)."""
        reason = (
            "interrupted"
            if self.interrupted
            else "deadline"
            if self.deadline_reached
            else "server"
            if self.fatal
            else "done"
        )
        policy = None
        if self.interrupted:
            policy = self.limits.on_interrupt
        elif self.deadline_reached:
            policy = self.limits.on_deadline
        cancel: dict[str, int] = {}
        try:
            await self._flush()
            if policy == "cancel":
                with trio.move_on_at(deadline - _CLEANUP_RESERVE_S):
                    await self._cancel_remote(sdk, cancel)
                # Whatever was confirmed before the time ran out (the rest stays in flight).
                self._settle_cancelled(cancel)
            if reason != "done":
                self.stop = {
                    "reason": reason,
                    "policy": policy,
                    "deadline": self.limits.deadline if reason == "deadline" else None,
                    "in_flight": self._tasks_in_flight(),
                    "unfinished": self.unfinished,
                    **cancel,
                }
                self.journal.run_ended(**self.stop)
            await self._flush()
            await self.writer.finish()
        finally:
            # (``cancelled`` is the tally's, which counts these too.)
            extra = {k: v for k, v in cancel.items() if k != "cancelled"}
            self._emit_end(reason, requests=sdk.statistics().total_requests, **extra)

    def _emit_end(self, reason: str, *, requests: int, **extra: Any) -> None:
        """The ``end`` event: this run's counts (``retries``: its ``retry`` events)."""
        self.events.emit(
            "end",
            reason=reason,
            unfinished=self.unfinished,
            completed=self.tally.completed,
            failed=self.tally.failed,
            cancelled=self.tally.cancelled,
            retries=self.tally.retries,
            requests=requests,
            **extra,
        )
        self.events.flush()

    def _tasks_in_flight(self) -> int:
        """Tasks of this run the server may still be running (their IDs are journaled)."""
        live = sum(1 for r in self._refs.values() if r.attempt is not None and r.attempt.id)
        return live + len(self.unobserved)

    async def _cancel_remote(self, sdk: OqcSdk, cancel: dict[str, int]) -> None:
        """One ``cancel_many`` per QPU URL (per 2,000 IDs) for every task still active, then
        the server's word on each: the SDK's :func:`~oqc_trio.job.confirm_cancelled` records
        it on the job (CANCELLED, or COMPLETED with the result when the task finished before
        the cancel arrived), and :meth:`_settle_cancelled` journals it. A task the server
        still reports active is asked again for a few seconds; one never confirmed stays in
        flight (the next run polls it). ``cancel`` receives the counts."""
        runtime = sdk._runtime()
        groups: dict[str | None, list[Job]] = defaultdict(list)
        for job, ref in self._refs.items():
            if ref.attempt is not None and ref.attempt.id is not None:
                if job._task_base is None:
                    job._task_base = runtime.task_base(job.qpu_id)
                if job.task_id is None:
                    job.task_id = _uuid(ref.attempt.id)
                groups[job._task_base].append(job)
        sent: list[Job] = []
        cancel["cancel_sent"] = 0
        for base, jobs in groups.items():
            for start in range(0, len(jobs), _CANCEL_IDS_PER_REQUEST):
                chunk = jobs[start : start + _CANCEL_IDS_PER_REQUEST]
                ids = [str(job.task_id) for job in chunk]
                try:
                    await runtime.send(runtime.api.cancel_many(base, ids))
                except OqcError as exc:
                    self.events.emit("cancel_failed", tasks=len(ids), error=str(exc))
                    continue
                for job in chunk:
                    attempt = self._refs[job].attempt
                    assert attempt is not None
                    self.journal.cancel_requested(attempt)
                sent.extend(chunk)
                cancel["cancel_sent"] += len(chunk)
                self.events.emit("cancel_sent", tasks=len(ids))
        pending = [job for job in sent if not job.state.ended]
        give_up = trio.current_time() + _CONFIRM_AGAIN_S
        pause = 0.25
        while pending:
            await confirm_cancelled(pending, runtime)
            self._settle_cancelled(cancel)
            pending = [job for job in pending if not job.state.ended]
            if not pending or trio.current_time() + pause > give_up:
                break
            await trio.sleep(pause)
            pause = min(2 * pause, 2.0)

    def _settle_cancelled(self, cancel: dict[str, int]) -> None:
        """Journal the end the server reported for each job after the cancel (no retry: the
        run is over) and count it in ``cancel``: ``cancelled``, or ``finished_first`` (it
        completed or failed before the cancel arrived)."""
        cancel.setdefault("cancelled", 0)
        cancel.setdefault("finished_first", 0)
        for job in [job for job in self._refs if job.state.ended]:
            cancelled = job.state is JobState.CANCELLED
            self._on_finished(job)
            cancel["cancelled" if cancelled else "finished_first"] += 1

    # -- summary ---------------------------------------------------------------------------------
    @property
    def unfinished(self) -> int:
        """Jobs of this run that did not reach an end (resumable)."""
        return len(self._refs) + len(self.unobserved)


def _uuid(value: str | None) -> Any:
    import uuid

    return uuid.UUID(value) if value else None


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """The exceptions of ``exc``, with exception groups flattened."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaf_exceptions(inner)]
    return [exc]


def _fatal_message(url: str, group: BaseExceptionGroup[Any]) -> str:
    leaves = leaf_exceptions(group)
    errors = [leaf for leaf in leaves if isinstance(leaf, OqcError)]
    if not errors or len(errors) != len([x for x in leaves if not isinstance(x, trio.Cancelled)]):
        raise group
    return _describe_failure(url, errors[0])


def default_out_dir(batch_path: Path) -> Path:
    """Output directory when neither ``[output] dir`` nor ``--out`` says: ``<stem>.out``."""
    return Path(f"{batch_path.stem}.out")
