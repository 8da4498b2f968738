"""Failure semantics: only the server's word fails a task; nothing is ever submitted twice."""

from __future__ import annotations

from typing import Any

import pytest
from faults import FAST_RETRY, FaultyTransport, faulty_sdk, first_submits_ambiguous, outage, storm
from runtime_support import BELL, FAST_POLL, config, counters, open_emulator

from oqc_trio.client import OqcSdk
from oqc_trio.exceptions import AuthenticationError
from oqc_trio.job import CompositeJob, JobState


def assert_each_submitted_once(stats: dict[str, Any], expected: int) -> None:
    assert len(stats["submissions"]) == expected
    assert stats["duplicate_submissions"] == {}


async def test_ambiguous_submit_is_reconciled_without_duplicates() -> None:
    async with open_emulator(config(), executor="instant") as emu:
        faults = FaultyTransport(first_submits_ambiguous(2))
        async with faulty_sdk(emu, faults) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            composite = sdk.create_job(program=[BELL] * 30, qpu_id=qpu)
            assert isinstance(composite, CompositeJob)
            await composite.execute(timeout_s=30)
            assert composite.completed
            assert faults.injected["accept-then-timeout"] >= 1
            # The lost answer was followed by questions, not by a second submission.
            assert sdk.statistics().requests["status"] >= 1
        assert_each_submitted_once(await counters(emu), 30)


async def test_single_job_ambiguous_submit_then_resume() -> None:
    async with open_emulator(config(), executor="instant") as emu:
        faults = FaultyTransport(first_submits_ambiguous(1))
        async with faulty_sdk(emu, faults) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            job = sdk.create_job(program=BELL, qpu_id=qpu)
            await job.execute(timeout_s=30)
            assert job.completed
        assert_each_submitted_once(await counters(emu), 1)


async def test_429_and_503_storm_completes_everything_once() -> None:
    async with open_emulator(config(), executor="instant") as emu:
        faults = FaultyTransport(storm(0.3))
        async with faulty_sdk(emu, faults) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            composite = sdk.create_job(program=[BELL] * 200, qpu_id=qpu)
            assert isinstance(composite, CompositeJob)
            await composite.execute(timeout_s=60)
            assert composite.completed, composite
            assert not composite.failed_jobs
            assert faults.injected["429"] > 0 and faults.injected["503"] > 0
        assert_each_submitted_once(await counters(emu), 200)


async def test_outage_mid_poll_is_not_a_failure() -> None:
    async with open_emulator(config(execution_time_s=0.05), executor="instant") as emu:
        faults = FaultyTransport(outage(start_after_polls=5, duration_s=0.6))
        async with faulty_sdk(emu, faults) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            composite = sdk.create_job(program=[BELL] * 20, qpu_id=qpu)
            assert isinstance(composite, CompositeJob)
            await composite.execute(timeout_s=60)
            assert composite.completed
            assert faults.injected["drop"] > 0
        assert_each_submitted_once(await counters(emu), 20)


async def test_rejected_token_is_an_error_not_failed_jobs() -> None:
    async with open_emulator(config(), executor="instant") as emu:
        async with OqcSdk(emu.url, authentication_token=emu.token, poll_policy=FAST_POLL) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            del emu.state.tokens[emu.token]  # the server revokes the token mid-session
            composite = sdk.create_job(program=[BELL] * 3, qpu_id=qpu)
            assert isinstance(composite, CompositeJob)
            with pytest.raises(AuthenticationError):
                await composite.execute(timeout_s=10)
            # Failure to submit is not failure of the task.
            assert all(job.state is JobState.CREATED for job in composite.jobs)
            assert not composite.failed_jobs


async def test_open_raises_clearly() -> None:
    async with open_emulator(config(), executor="instant") as emu:
        with pytest.raises(AuthenticationError):
            await OqcSdk(emu.url, authentication_token="wrong").open()
    from oqc_trio.exceptions import ServerUnreachable

    with pytest.raises(ServerUnreachable):
        await OqcSdk(emu.url, authentication_token="x", retry=FAST_RETRY).open()


async def test_an_oversized_program_fails_alone_and_sends_nothing(sdk: OqcSdk) -> None:
    from oqc_trio.exceptions import RequestTooLarge

    qpu = (await sdk.list_qpus())[0]["id"]
    huge = BELL + "// " + "x" * 140_000 + "\n"
    composite = sdk.create_job(program=[BELL, huge, BELL], qpu_id=qpu)
    assert isinstance(composite, CompositeJob)
    with pytest.raises(RequestTooLarge, match="not sent"):
        await composite.execute(timeout_s=30)
    assert composite.jobs[0].completed and composite.jobs[2].completed
    assert composite.jobs[1].task_id is None and composite.jobs[1].state is JobState.CREATED
