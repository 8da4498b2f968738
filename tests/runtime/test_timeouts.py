"""Deadlines of ``execute``/``wait``/``submit`` against the emulator, on trio's autojump clock.

Each test pins one fix of an official-SDK weakness (``official-sdk-behaviour.md`` §c) so that
a regression to the official behaviour fails it:

- #22: ``timeout_s=None`` means *no* deadline (the official SDK silently uses 120 s). The
  tasks here take 300 s of virtual time, so a hidden 120 s default cannot pass unnoticed; a
  control test shows the same setup does raise at an explicit 120 s.
- #5: ``submit(timeout_s=...)`` bounds a submission whose POST hangs (the official SDK
  ignores it), leaving the job CREATED with its reserved task ID, never FAILED.
- #6: ``cancel_on_timeout=True`` cancels every unfinished server task with one
  ``cancel_many`` per QPU URL; without it the server tasks keep running.

The emulator's QPU execution time and injected delays run on the trio clock, so hundreds of
virtual seconds take a fraction of a second; only loopback is used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from runtime_support import BELL, config, counters, open_emulator

from oqc_trio._actors.policy import PollPolicy
from oqc_trio._transport import Timeouts
from oqc_trio.client import OqcSdk
from oqc_trio.emulator.faults import FaultPlan, FaultRule
from oqc_trio.exceptions import ExecuteTimeout
from oqc_trio.job import CompositeJob, Job, JobState

# Tasks that outlive the official SDK's hidden 120 s default.
LONG_TASK_S = 300.0
# Poll often enough to see the end promptly, rarely enough to keep 300 s cheap.
POLICY = PollPolicy(first_poll_s=0.02, max_interval_s=5.0, parked_interval_s=5.0)


def hang(route: str, seconds: float = 3600.0) -> FaultPlan:
    """The server holds the first request to ``route`` for ``seconds`` before handling it."""
    return FaultPlan(rules=(FaultRule(kind="delay", routes=(route,), delay_s=seconds, times=1),))


@asynccontextmanager
async def serving(**changes: Any) -> AsyncIterator[tuple[Any, OqcSdk]]:
    """An emulator with ``config(**changes)`` and an SDK opened against it (lean client)."""
    timeouts = changes.pop("timeouts", None)
    options: dict[str, Any] = {} if timeouts is None else {"timeouts": timeouts}
    async with open_emulator(config(**changes), executor="instant") as emu:
        async with OqcSdk(
            emu.url, authentication_token=emu.token, poll_policy=POLICY, **options
        ) as sdk:
            yield emu, sdk


async def server_statuses(emu: Any) -> dict[str, int]:
    """How many tasks the server holds in each status (its word, not the client's)."""
    return (await counters(emu))["tasks"]["by_status"]


def single(sdk: OqcSdk, qpu: str) -> Job:
    job = sdk.create_job(program=BELL, qpu_id=qpu)
    assert isinstance(job, Job)
    return job


# -- #22: None means no deadline --------------------------------------------------------------
async def test_execute_with_timeout_none_waits_past_120_s(autojump_clock: Any) -> None:
    async with serving(execution_time_s=LONG_TASK_S) as (emu, sdk):
        job = single(sdk, (await sdk.list_qpus())[0]["id"])
        start = trio.current_time()
        await job.execute(timeout_s=None)
        elapsed = trio.current_time() - start
        assert job.state is JobState.COMPLETED and job.completed
        assert elapsed >= LONG_TASK_S, elapsed
        assert set((await counters(emu))["submissions"].values()) == {1}


async def test_control_an_explicit_120_s_deadline_does_expire(autojump_clock: Any) -> None:
    """The same 300 s task with ``timeout_s=120`` raises at 120 s: the setup above can tell
    "no deadline" from the official SDK's silent 120 s."""
    async with serving(execution_time_s=LONG_TASK_S) as (_emu, sdk):
        job = single(sdk, (await sdk.list_qpus())[0]["id"])
        start = trio.current_time()
        with pytest.raises(ExecuteTimeout) as info:
            await job.execute(timeout_s=120)
        assert trio.current_time() - start == pytest.approx(120.0, abs=0.01)
        assert info.value.unfinished == [job]
        assert job.task_id is not None and not job.ended


async def test_wait_with_timeout_none_waits_past_120_s(autojump_clock: Any) -> None:
    async with serving(execution_time_s=LONG_TASK_S) as (_emu, sdk):
        job = single(sdk, (await sdk.list_qpus())[0]["id"])
        await job.submit()
        assert job.state is JobState.SUBMITTED
        start = trio.current_time()
        await job.wait(timeout_s=None)
        assert job.completed
        assert trio.current_time() - start >= LONG_TASK_S - 1.0


async def test_composite_execute_with_timeout_none_waits_past_120_s(autojump_clock: Any) -> None:
    async with serving(execution_time_s=LONG_TASK_S) as (_emu, sdk):
        qpus = [q["id"] for q in await sdk.list_qpus()]
        composite = sdk.create_job(program=[BELL, BELL], qpu_id=qpus)
        assert isinstance(composite, CompositeJob)
        start = trio.current_time()
        await composite.execute(timeout_s=None)
        assert composite.completed
        # Two tasks per QPU, one after the other: 600 s of queue.
        assert trio.current_time() - start >= 2 * LONG_TASK_S


async def test_submit_with_timeout_none_outlasts_a_300_s_submit(autojump_clock: Any) -> None:
    """The submit POST is answered after 300 s (the client's read timeout is raised above
    that): with no deadline the submission completes, once."""
    async with serving(
        faults=hang("POST /tasks/submit", LONG_TASK_S), timeouts=Timeouts(read=3600.0)
    ) as (emu, sdk):
        job = single(sdk, (await sdk.list_qpus())[0]["id"])
        start = trio.current_time()
        await job.submit(timeout_s=None)
        assert trio.current_time() - start >= LONG_TASK_S
        assert job.state is JobState.SUBMITTED and job.task_id is not None
        assert (await counters(emu))["submissions"] == {str(job.task_id): 1}


# -- #5: submit keeps its deadline -------------------------------------------------------------
async def test_submit_deadline_bounds_a_hung_submit_post(autojump_clock: Any) -> None:
    async with serving(faults=hang("POST /tasks/submit")) as (emu, sdk):
        job = single(sdk, (await sdk.list_qpus())[0]["id"])
        start = trio.current_time()
        with pytest.raises(ExecuteTimeout) as info:
            await job.submit(timeout_s=0.5)
        elapsed = trio.current_time() - start
        # Virtual time: the cancel scope fires at the deadline itself, not after the 30 s
        # read timeout nor the 3600 s the server holds the request.
        assert 0.5 <= elapsed < 0.51, elapsed
        assert isinstance(info.value, TimeoutError) and info.value.unfinished == [job]
        # Failure to observe is not failure: reserved ID kept, CREATED, no error.
        assert job.task_id is not None
        assert job.state is JobState.CREATED and job.error is None
        reserved = job.task_id
        # The next call reconciles the reserved ID and submits it exactly once.
        await job.execute(timeout_s=30)
        assert job.completed and job.task_id == reserved
        assert (await counters(emu))["submissions"] == {str(reserved): 1}


async def test_submit_deadline_bounds_a_hung_id_reservation(autojump_clock: Any) -> None:
    async with serving(faults=hang("POST /tasks")) as (emu, sdk):
        job = single(sdk, (await sdk.list_qpus())[0]["id"])
        start = trio.current_time()
        with pytest.raises(ExecuteTimeout):
            await job.submit(timeout_s=0.5)
        assert 0.5 <= trio.current_time() - start < 0.51
        assert job.task_id is None  # the reservation never answered
        assert job.state is JobState.CREATED and job.error is None
        assert (await counters(emu))["submissions"] == {}
        await job.execute(timeout_s=30)
        assert job.completed


# -- #6: cancel_on_timeout ---------------------------------------------------------------------
async def test_cancel_on_timeout_cancels_every_server_task_once_per_qpu(
    autojump_clock: Any,
) -> None:
    async with serving(execution_time_s=LONG_TASK_S) as (emu, sdk):
        qpus = [q["id"] for q in await sdk.list_qpus()]
        urls = {q["url"] for q in await sdk.list_qpus()}
        assert len(qpus) == 2 and len(urls) == 2  # two QPU URLs
        composite = sdk.create_job(program=[BELL] * 3, qpu_id=qpus)
        assert isinstance(composite, CompositeJob)
        start = trio.current_time()
        with pytest.raises(ExecuteTimeout) as info:
            await composite.execute(timeout_s=1.0, cancel_on_timeout=True)
        assert len(info.value.unfinished) == 6
        # The shielded cleanup is short: nothing like the 300 s the tasks would take.
        assert trio.current_time() - start < 6.0
        assert sdk.statistics().requests["cancel_many"] == 2  # one per QPU URL
        stats = await counters(emu)
        assert stats["requests"]["POST /tasks/cancel_many"] == 2
        assert stats["tasks"]["by_status"] == {"CANCELLED": 6}
        # Each task's own server record says CANCELLED (not only the local state).
        for job in composite.jobs:
            await job.refresh()
            assert job.state is JobState.CANCELLED


async def test_without_cancel_on_timeout_server_tasks_keep_running(autojump_clock: Any) -> None:
    async with serving(execution_time_s=LONG_TASK_S) as (emu, sdk):
        qpus = [q["id"] for q in await sdk.list_qpus()]
        composite = sdk.create_job(program=[BELL] * 3, qpu_id=qpus)
        assert isinstance(composite, CompositeJob)
        with pytest.raises(ExecuteTimeout):
            await composite.execute(timeout_s=1.0)
        assert sdk.statistics().requests.get("cancel_many", 0) == 0
        statuses = await server_statuses(emu)
        assert "CANCELLED" not in statuses
        assert sum(statuses.values()) == 6
        assert set(statuses) <= {"SUBMITTED", "RUNNING"}, statuses
        assert all(job.task_id is not None and not job.ended for job in composite.jobs)
        # They really are still running: resuming (by polling) sees all six complete.
        await composite.execute(timeout_s=None)
        assert composite.completed
        assert await server_statuses(emu) == {"COMPLETED": 6}
        assert set((await counters(emu))["submissions"].values()) == {1}
