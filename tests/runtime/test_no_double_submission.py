"""Users never pay twice for a QPU run: regressions to the official SDK's duplicate-submission
weaknesses (``official-sdk-behaviour.md`` §c) fail here.

- #8c: a 404, 401 (static token) or 403 answered to one task's ``all_info`` while
  ``execute()`` polls raises the typed error and leaves that job unfailed with its task ID;
  the next ``execute()`` resumes it by polling, without a new ID or submission.
- #8d: ``execute()`` after ``cancel()`` never resubmits the cancelled children; and a cancel
  the server has not yet carried out (it still reports the task active) leaves the job
  active, so the next ``execute()`` follows the same task instead of submitting a new one.
- #10: one refused submit chunk among many fails only its own jobs, and a failed job is never
  submitted or given another task ID afterwards; a chunk whose answer is lost (or never
  sent) is reconciled by ID: nothing is failed, nothing is submitted twice.
- #21: a QPU that turns inactive, or disappears from the catalogue, after its jobs were
  submitted does not stop ``execute()`` from following them (the task URL stays with the
  job), also for jobs restored from a snapshot where the catalogue still knows the QPU.

Every test runs a real emulator on 127.0.0.1 behind a fault-injecting transport
(``faults.FaultyTransport``), so the emulator's counters are the truth about what was
submitted; each is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import pytest
import trio
from faults import FaultyTransport, faulty_sdk
from runtime_support import BELL, config, counters, open_emulator

from oqc_trio.client import OqcSdk
from oqc_trio.exceptions import AuthenticationError, NotFoundError, OqcError, UnknownQpuError
from oqc_trio.job import CompositeJob, Job, JobState

SUBMIT = "POST /tasks/submit"
CREATE_IDS = "POST /tasks"
ALL_INFO = "GET /tasks/{task_id}/all_info"

Before = Callable[[httpx.Request], "httpx.Response | None"]
After = Callable[[httpx.Request, httpx.Response], Awaitable[httpx.Response]]


class Scripted(FaultyTransport):
    """:class:`FaultyTransport` plus two hooks for faults it has no word for: ``before``
    may answer a request in the server's place (the server never sees it); ``after`` may
    replace the server's answer once the server has acted on the request."""

    def __init__(self, *, before: Before | None = None, after: After | None = None) -> None:
        super().__init__(lambda _: None)
        self.before = before
        self.after = after

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.before is not None and (answer := self.before(request)) is not None:
            return answer
        response = await super().handle_async_request(request)
        if self.after is not None:
            response = await self.after(request, response)
        return response


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"response": {"errors": [message]}})


async def _with_status(response: httpx.Response, status: str) -> httpx.Response:
    """The server's ``all_info`` answer with its ``status`` replaced."""
    body = json.loads(await response.aread())
    await response.aclose()
    body["status"] = status
    body.pop("results", None)
    return httpx.Response(200, json=body)


def _is(request: httpx.Request, method: str, suffix: str) -> bool:
    return request.method == method and request.url.path.endswith(suffix)


@asynccontextmanager
async def _session(
    transport: FaultyTransport, *, execution_time_s: float = 0.0
) -> AsyncIterator[tuple[Any, OqcSdk]]:
    async with open_emulator(config(execution_time_s=execution_time_s), executor="instant") as emu:
        async with faulty_sdk(emu, transport) as sdk:
            yield emu, sdk


def _composite(sdk: OqcSdk, programs: list[str], qpu: str) -> CompositeJob:
    composite = sdk.create_job(program=programs, qpu_id=qpu)
    assert isinstance(composite, CompositeJob)
    return composite


def _submitted_once(stats: dict[str, Any], task_ids: list[Any]) -> None:
    """The server saw exactly these tasks submitted, each once."""
    assert stats["duplicate_submissions"] == {}
    assert sorted(stats["submissions"]) == sorted(str(t) for t in task_ids)


async def _until(predicate: Callable[[], bool], *, attempts: int = 2000) -> None:
    """Check ``predicate()`` every 5 ms until it holds, at most ``attempts`` times (what it
    reads, jobs and emulator queues, offers no event to wait on)."""
    for _ in range(attempts):
        if predicate():
            return
        await trio.sleep(0.005)
    raise AssertionError("condition not reached in time")


# -- #8c: failure to observe is not failure of the task ---------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, NotFoundError), (401, AuthenticationError), (403, AuthenticationError)],
)
async def test_polling_refused_for_one_task_then_execute_resumes_it(
    status: int, error: type[OqcError]
) -> None:
    refusing = [True]
    victim_ids: set[str] = set()
    holder: list[Job] = []

    def before(request: httpx.Request) -> httpx.Response | None:
        task_id = holder[0].task_id if holder else None
        if refusing[0] and task_id is not None and _is(request, "GET", f"/{task_id}/all_info"):
            victim_ids.add(str(task_id))
            return _error(status, "injected refusal")
        return None

    with trio.fail_after(60):
        async with _session(Scripted(before=before)) as (emu, sdk):
            qpu = (await sdk.list_qpus())[0]["id"]
            composite = _composite(sdk, [BELL] * 3, qpu)
            victim = composite.jobs[1]
            holder.append(victim)
            with pytest.raises(error):
                await composite.execute(timeout_s=30)
            # The server never said the task failed: the job keeps its ID and its state.
            assert len(victim_ids) == 1 and str(victim.task_id) in victim_ids
            task_id = victim.task_id
            assert victim.state is not JobState.FAILED and not victim.ended
            assert victim.error is None and not composite.failed_jobs
            assert composite.jobs[0].completed and composite.jobs[2].completed
            before_resume = await counters(emu)

            refusing[0] = False
            await composite.execute(timeout_s=30)
            assert composite.completed
            assert victim.task_id == task_id and victim.result is not None
            after = await counters(emu)
            # Resumed by polling: no new ID reservation, no new submission, for anyone.
            for route in (CREATE_IDS, SUBMIT):
                assert after["requests"].get(route, 0) == before_resume["requests"].get(route, 0)
            assert after["requests"][ALL_INFO] > before_resume["requests"][ALL_INFO]
            _submitted_once(after, [job.task_id for job in composite.jobs])


# -- #8d: execute() after cancel() --------------------------------------------------------------


@pytest.mark.parametrize("cancel_while", ["driven", "idle"])
async def test_execute_after_cancelling_two_children_resubmits_nothing(cancel_while: str) -> None:
    """Four long tasks on one QPU (one at a time, 0.5 s each): the two last in the QPU's
    queue are cancelled while the first runs, either through the running ``execute()`` or
    after leaving it; the next ``execute()`` finishes the other two and leaves the cancelled
    ones alone."""
    with trio.fail_after(60):
        async with _session(Scripted(), execution_time_s=0.5) as (emu, sdk):
            qpu = (await sdk.list_qpus())[0]["id"]
            composite = _composite(sdk, [BELL] * 4, qpu)
            jobs = composite.jobs
            async with trio.open_nursery() as nursery:
                scope = trio.CancelScope()

                async def run() -> None:
                    with scope:
                        await composite.execute(timeout_s=30)

                nursery.start_soon(run)
                await _until(lambda: all(job.state is not JobState.CREATED for job in jobs))
                await _until(lambda: bool(emu.state.running[qpu]))
                last_queued = list(emu.state.queues[qpu])[-2:]
                cancelled = [job for job in jobs if str(job.task_id) in last_queued]
                kept = [job for job in jobs if job not in cancelled]
                assert len(cancelled) == 2
                if cancel_while == "driven":
                    await CompositeJob(cancelled).cancel()
                    await _until(lambda: all(job.ended for job in cancelled))
                scope.cancel()  # leave execute(): the tasks keep running remotely
            assert not any(job.driven for job in jobs)
            if cancel_while == "idle":
                await CompositeJob(cancelled).cancel()
            task_ids = [job.task_id for job in jobs]
            assert all(job.state is JobState.CANCELLED for job in cancelled)
            assert not any(job.ended for job in kept)

            await composite.execute(timeout_s=30)
            assert all(job.completed for job in kept)
            assert all(job.state is JobState.CANCELLED for job in cancelled)
            assert [job.task_id for job in jobs] == task_ids
            stats = await counters(emu)
            _submitted_once(stats, task_ids)  # 4 in all: the cancelled ones not again
            assert stats["tasks"]["by_status"] == {"COMPLETED": 2, "CANCELLED": 2}
            assert sdk.statistics().requests["create_ids"] == 1


@pytest.mark.parametrize("server_stops_it", [True, False], ids=["cancelled-later", "runs-on"])
async def test_cancel_still_reported_active_is_followed_not_resubmitted(
    server_stops_it: bool,
) -> None:
    """The ``all_info`` asked right after ``cancel_many`` says RUNNING. ``cancelled-later``:
    the server did cancel (later polls say so); ``runs-on``: the cancel never reached the
    server, so the task finishes and its result is collected. Either way, ``execute()``
    follows the same task until the server says it ended; it never submits a new one."""
    cancel_sent = [False]
    rewritten: list[str] = []

    def before(request: httpx.Request) -> httpx.Response | None:
        if _is(request, "POST", "/tasks/cancel_many"):
            cancel_sent[0] = True
            if not server_stops_it:
                return httpx.Response(200, json={})  # accepted, not carried out
        return None

    async def after(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if cancel_sent[0] and not rewritten and _is(request, "GET", "/all_info"):
            rewritten.append(request.url.path)
            return await _with_status(response, "RUNNING")
        return response

    with trio.fail_after(60):
        transport = Scripted(before=before, after=after)
        async with _session(transport, execution_time_s=0.5) as (emu, sdk):
            qpu = (await sdk.list_qpus())[0]["id"]
            job = sdk.create_job(program=BELL, qpu_id=qpu)
            assert isinstance(job, Job)
            await job.submit()
            task_id = job.task_id
            await emu.wait_for_status(str(task_id), "RUNNING")
            await job.cancel()
            assert rewritten == [f"{emu.qpu_url(qpu)[len(emu.url) :]}/tasks/{task_id}/all_info"]
            # The server's word was "still running": not ended, so not resubmittable.
            assert job.state is JobState.RUNNING and not job.ended
            polls_before = (await counters(emu))["requests"][ALL_INFO]

            await job.execute(timeout_s=30)
            assert job.task_id == task_id
            if server_stops_it:
                assert job.state is JobState.CANCELLED and job.result is None
            else:
                assert job.completed and job.result is not None
            stats = await counters(emu)
            _submitted_once(stats, [task_id])
            assert stats["tasks"]["total"] == 1
            assert stats["requests"][CREATE_IDS] == 1 and stats["requests"][SUBMIT] == 1
            assert stats["requests"][ALL_INFO] > polls_before


# -- #10: one chunk's fate is its own -------------------------------------------------------------


def _padded(i: int) -> str:
    # ~1 KB per task: ~100 tasks per 128 KB submit chunk, so 1,500 jobs make ~15 chunks.
    return BELL.replace("h q[0];", f"h q[0];\n// job {i} {'x' * 900}")


class _ChunkWatch(FaultyTransport):
    """Injects ``fault`` into the 3rd submit request (``"400"``: answered 400 in the
    server's place; the others as :class:`FaultyTransport` does, on every attempt of that
    request) and sees every request: the IDs of each submit request (``submits``) and of
    each submit body the server received (``delivered``), the IDs asked about by status,
    and, at every request boundary, that no job changes its state or task ID once FAILED."""

    def __init__(self, fault: str) -> None:
        super().__init__(lambda request: fault if request is self._faulted else None)
        self.fault = fault
        self._faulted: httpx.Request | None = None
        self.submits: list[list[str]] = []
        self.delivered: list[list[str]] = []
        self.status_asked: set[str] = set()
        self.jobs: list[Job] = []
        self.failed: dict[int, Any] = {}
        self.violations: list[str] = []

    def check(self) -> None:
        for index, job in enumerate(self.jobs):
            if index in self.failed:
                if job.state is not JobState.FAILED or job.task_id != self.failed[index]:
                    self.violations.append(f"job {index}: {job.state} {job.task_id}")
            elif job.state is JobState.FAILED:
                self.failed[index] = job.task_id

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.check()
        if _is(request, "POST", "/tasks/submit"):
            ids = [task["task_id"] for task in json.loads(request.content)["tasks"]]
            if request is not self._faulted:  # not a transport retry of the faulted one
                self.submits.append(ids)
                if len(self.submits) == 3:
                    if self.fault == "400":
                        return _error(400, "injected: chunk refused")
                    self._faulted = request
            if not (request is self._faulted and self.fault == "drop"):
                self.delivered.append(ids)
        elif _is(request, "GET", "/status"):
            self.status_asked.add(request.url.path.rsplit("/", 2)[-2])
        return await super().handle_async_request(request)


async def _chunked_run(fault: str, count: int = 1500) -> tuple[_ChunkWatch, CompositeJob, Any]:
    watch = _ChunkWatch(fault)
    with trio.fail_after(120):
        async with _session(watch) as (emu, sdk):
            qpu = (await sdk.list_qpus())[0]["id"]
            composite = _composite(sdk, [_padded(i) for i in range(count)], qpu)
            watch.jobs = composite.jobs
            await composite.execute(timeout_s=100)
            watch.check()
            return watch, composite, await counters(emu)


async def test_a_refused_chunk_fails_only_its_own_jobs() -> None:
    watch, composite, stats = await _chunked_run("400")
    jobs = composite.jobs
    assert len(watch.submits) >= 10  # many chunks, several in flight at once
    refused = set(watch.submits[2])
    failed = {str(job.task_id) for job in jobs if job.state is JobState.FAILED}
    assert failed == refused and 0 < len(refused) < len(jobs)
    assert {job.error.error_code for job in jobs if job.error is not None} == {400}
    assert all(job.completed for job in jobs if str(job.task_id) not in refused)
    # Never afterwards SUBMITTED, never another ID, never in a later submit body.
    assert watch.violations == []
    assert set(watch.failed) == {i for i, job in enumerate(jobs) if str(job.task_id) in refused}
    assert not refused & {task_id for ids in watch.delivered for task_id in ids}
    assert not refused & set(stats["submissions"])
    assert stats["duplicate_submissions"] == {}
    assert len(stats["submissions"]) == len(jobs) - len(refused)


@pytest.mark.parametrize("fault", ["accept-then-timeout", "drop"])
async def test_an_unanswered_chunk_is_reconciled_by_id(fault: str) -> None:
    """``accept-then-timeout``: the server took the chunk, its answer was lost; ``drop``: the
    request never reached it. Either way the chunk's IDs are asked about, not resubmitted
    blindly, and nothing is failed."""
    watch, composite, stats = await _chunked_run(fault)
    jobs = composite.jobs
    assert len(watch.submits) >= 10
    ambiguous = set(watch.submits[2])
    assert ambiguous and ambiguous <= watch.status_asked  # reconciled by ID
    assert composite.completed and not composite.failed_jobs and watch.failed == {}
    _submitted_once(stats, [job.task_id for job in jobs])
    # What the server received: each ambiguous task once (the lost-answer request itself,
    # or for ``drop`` the resubmission of the IDs it reported never submitted).
    received = [task_id for ids in watch.delivered for task_id in ids if task_id in ambiguous]
    assert sorted(received) == sorted(ambiguous)


# -- #21: the task URL stays with the job ---------------------------------------------------------


def _hide_qpu(emu: Any, qpu: str, how: str, hidden: list[bool]) -> None:
    if how == "inactive":
        emu.state.config = emu.state.config.evolve(
            qpus=tuple(attrs.evolve(q, active=q.id != qpu) for q in emu.state.config.qpus)
        )
    else:
        hidden[0] = True  # the catalogue listing drops it (see _catalogue_without)


def _catalogue_without(qpu: str, hidden: list[bool]) -> After:
    async def after(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if hidden[0] and _is(request, "GET", "/admin/qpu"):
            body = json.loads(await response.aread())
            await response.aclose()
            body["items"] = [item for item in body["items"] if item["id"] != qpu]
            body["total"] = len(body["items"])
            return httpx.Response(200, json=body)
        return response

    return after


@pytest.mark.parametrize("how", ["inactive", "removed"])
async def test_jobs_on_a_qpu_that_leaves_the_catalogue_still_complete(how: str) -> None:
    hidden = [False]
    with trio.fail_after(60):
        async with open_emulator(config(execution_time_s=0.1), executor="instant") as emu:
            qpu_b = emu.qpu_ids[1]
            transport = Scripted(after=_catalogue_without(qpu_b, hidden))
            async with faulty_sdk(emu, transport) as sdk:
                assert {q["id"] for q in await sdk.list_qpus()} == set(emu.qpu_ids)
                composite = _composite(sdk, [BELL] * 3, qpu_b)
                for job in composite.jobs:
                    await job.submit()
                task_ids = [job.task_id for job in composite.jobs]
                _hide_qpu(emu, qpu_b, how, hidden)
                assert qpu_b not in {q["id"] for q in await sdk.list_qpus()}

                await composite.execute(timeout_s=30)
                assert composite.completed
                assert [job.task_id for job in composite.jobs] == task_ids
                assert all(job.qpu_id == qpu_b for job in composite.jobs)
                stats = await counters(emu)
                _submitted_once(stats, task_ids)
                assert sdk.statistics().requests["submit"] == 3


@pytest.mark.parametrize("how", ["inactive", "removed"])
async def test_snapshot_of_jobs_on_a_qpu_that_leaves_the_catalogue(how: str, tmp_path: Any) -> None:
    """A snapshot has no task URL (the official schema has no field for it): a restored job
    asks the catalogue, which still knows an inactive QPU. A QPU gone from the catalogue
    leaves nothing to ask: ``execute()`` raises ``UnknownQpuError`` for those jobs, which stay
    resumable and unfailed, while a job of the same composite on a listed QPU completes."""
    hidden = [False]
    with trio.fail_after(60):
        async with open_emulator(config(execution_time_s=0.1), executor="instant") as emu:
            qpu_b = emu.qpu_ids[1]
            transport = Scripted(after=_catalogue_without(qpu_b, hidden))

            async with faulty_sdk(emu, transport) as sdk:
                on_b = _composite(sdk, [BELL] * 3, qpu_b).jobs
                on_a = sdk.create_job(program=BELL, qpu_id=emu.qpu_ids[0])
                assert isinstance(on_a, Job)
                composite = CompositeJob([*on_b, on_a])
                for job in composite.jobs:
                    await job.submit()
                task_ids = [job.task_id for job in composite.jobs]
                composite.save(tmp_path / "batch.json")
            _hide_qpu(emu, qpu_b, how, hidden)
            async with faulty_sdk(emu, transport) as sdk2:
                assert qpu_b not in {q["id"] for q in await sdk2.list_qpus()}
                loaded = sdk2.load(tmp_path / "batch.json")
                assert isinstance(loaded, CompositeJob)
                if how == "inactive":
                    await loaded.execute(timeout_s=30)
                    assert loaded.completed
                else:
                    with pytest.raises(UnknownQpuError, match=qpu_b):
                        await loaded.execute(timeout_s=30)
                    *restored_b, restored_a = loaded.jobs
                    assert not any(job.ended or job.error for job in restored_b)
                    assert restored_a.state is JobState.COMPLETED
                assert [job.task_id for job in loaded.jobs] == task_ids
                requests = sdk2.statistics().requests
                assert requests.get("submit", 0) == 0 and requests.get("create_ids", 0) == 0
            _submitted_once(await counters(emu), task_ids)
