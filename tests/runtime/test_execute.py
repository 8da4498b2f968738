"""Job and CompositeJob against the emulator over loopback: the runtime's core behaviour."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import trio
from runtime_support import BELL, FAST_POLL, config, counters, open_emulator

from oqc_trio.client import OqcSdk
from oqc_trio.exceptions import ExecuteTimeout, JobFailed
from oqc_trio.job import CompositeJob, Job, JobState


def submissions(stats: dict[str, Any]) -> dict[str, int]:
    return stats["submissions"]


async def test_single_job_execute_completes(sdk: OqcSdk) -> None:
    job = sdk.create_job(
        program=BELL, qpu_id=sdk.default_qpu_id or (await sdk.list_qpus())[0]["id"]
    )
    assert isinstance(job, Job)
    outputs = await job.execute(timeout_s=10)
    assert job.state is JobState.COMPLETED and job.completed
    assert outputs.one is job.result
    assert set(job.result.data) == {"c"}
    assert sum(job.result.data["c"].values()) == 1000
    assert len(job.history) == 1


async def test_refresh_does_not_grow_history(sdk: OqcSdk) -> None:
    qpu = (await sdk.list_qpus())[0]["id"]
    job = sdk.create_job(program=BELL, qpu_id=qpu)
    await job.execute()
    await job.refresh()
    await job.refresh()
    assert len(job.history) == 1
    await job.execute()  # a finished job starts a new run
    assert len(job.history) == 2


async def test_composite_of_1000_jobs_across_two_qpus(emu: Any, sdk: OqcSdk) -> None:
    qpus = [q["id"] for q in await sdk.list_qpus()]
    programs = [BELL.replace("h q[0];", f"h q[0];\n// job {i}") for i in range(500)]
    composite = sdk.create_job(program=programs, qpu_id=qpus)
    assert isinstance(composite, CompositeJob) and len(composite) == 1000
    outputs = await composite.execute(timeout_s=120)
    assert composite.completed and len(outputs) == 1000
    # Child order: program outermost, then QPU.
    assert [j.qpu_id for j in composite.jobs[:4]] == [qpus[0], qpus[1], qpus[0], qpus[1]]
    stats = await counters(emu)
    assert len(submissions(stats)) == 1000
    assert set(submissions(stats).values()) == {1}
    requests = sdk.statistics().requests
    assert requests["submit"] + requests["create_ids"] < 20
    # One status request per job plus a little: the scheduler, not a loop per job.
    assert requests["all_info"] <= 1.3 * 1000


async def test_invalid_program_fails_only_its_own_job(aer_sdk: OqcSdk) -> None:
    sdk = aer_sdk
    qpu = (await sdk.list_qpus())[0]["id"]
    composite = sdk.create_job(program=[BELL, "OPENQASM 2.0;\nqreg q[1;\n", BELL], qpu_id=qpu)
    assert isinstance(composite, CompositeJob)
    await composite.execute()
    states = [job.state for job in composite.jobs]
    assert states == [JobState.COMPLETED, JobState.FAILED, JobState.COMPLETED]
    bad = composite.jobs[1]
    assert bad.error is not None and bad.error.error_code is not None
    assert "line" in (bad.error.error_message or "")
    with pytest.raises(JobFailed) as info:
        bad.raise_for_status()
    assert info.value.task_id == str(bad.task_id)
    assert composite.failed_jobs == [bad]
    assert composite.outputs.any_error


async def test_timeout_is_a_deadline_and_execute_again_resumes_without_resubmitting() -> None:
    async with open_emulator(config(execution_time_s=0.2), executor="instant") as emu:
        async with OqcSdk(emu.url, authentication_token=emu.token, poll_policy=FAST_POLL) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            composite = sdk.create_job(program=[BELL] * 8, qpu_id=qpu)
            assert isinstance(composite, CompositeJob)
            start = trio.current_time()
            with pytest.raises(ExecuteTimeout) as info:
                await composite.execute(timeout_s=0.5)
            elapsed = trio.current_time() - start
            # The deadline is a cancel scope, not "after the next poll" (the official SDK
            # overshoots by up to a whole backoff step). Slack for a loaded 2-core machine.
            assert 0.5 <= elapsed < 0.65, elapsed
            assert info.value.unfinished and composite.active_jobs
            assert all(job.task_id is not None for job in composite.jobs)
            await composite.execute(timeout_s=30)
            assert composite.completed
            stats = await counters(emu)
            assert sorted(submissions(stats).values()) == [1] * 8, (
                stats["requests"],
                len(submissions(stats)),
            )


async def test_timeout_none_means_no_deadline(sdk: OqcSdk) -> None:
    qpu = (await sdk.list_qpus())[0]["id"]
    job = sdk.create_job(program=BELL, qpu_id=qpu)
    await job.execute(timeout_s=None)
    assert job.completed


async def test_cancel_queued_jobs_and_never_cancel_finished_ones() -> None:
    async with open_emulator(config(execution_time_s=0.3), executor="instant") as emu:
        async with OqcSdk(emu.url, authentication_token=emu.token, poll_policy=FAST_POLL) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            done = sdk.create_job(program=BELL, qpu_id=qpu)
            await done.execute()
            composite = sdk.create_job(program=[BELL] * 5, qpu_id=qpu)
            assert isinstance(composite, CompositeJob)
            await composite.jobs[0].submit()
            for job in composite.jobs[1:]:
                await job.submit()
            before = sdk.statistics().requests.get("cancel_many", 0)
            await composite.add(done).cancel()
            assert sdk.statistics().requests["cancel_many"] - before == 1  # one per QPU
            assert done.state is JobState.COMPLETED  # finished: untouched
            assert all(j.state is JobState.CANCELLED for j in composite.jobs[1:5])


async def test_cancel_while_execute_drives_the_jobs(emu: Any) -> None:
    async with open_emulator(config(execution_time_s=0.3), executor="instant") as slow:
        async with OqcSdk(slow.url, authentication_token=slow.token, poll_policy=FAST_POLL) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            composite = sdk.create_job(program=[BELL] * 6, qpu_id=qpu)
            assert isinstance(composite, CompositeJob)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(composite.execute)
                await trio.sleep(0.4)
                await composite.cancel()
            assert not composite.active_jobs
            assert {j.state for j in composite.jobs} <= {JobState.COMPLETED, JobState.CANCELLED}
            assert any(j.state is JobState.CANCELLED for j in composite.jobs)


async def test_snapshot_load_execute_resumes_by_polling_only(tmp_path: Any) -> None:
    async with open_emulator(config(execution_time_s=0.1), executor="instant") as emu:
        async with OqcSdk(emu.url, authentication_token=emu.token, poll_policy=FAST_POLL) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            composite = sdk.create_job(program=[BELL] * 4, qpu_id=qpu)
            assert isinstance(composite, CompositeJob)
            for job in composite.jobs:
                await job.submit()
            composite.save(tmp_path / "batch.json")
        async with OqcSdk(emu.url, authentication_token=emu.token, poll_policy=FAST_POLL) as sdk2:
            loaded = sdk2.load(tmp_path / "batch.json")
            assert isinstance(loaded, CompositeJob)
            assert [j.task_id for j in loaded.jobs] == [j.task_id for j in composite.jobs]
            await loaded.execute(timeout_s=30)
            assert loaded.completed
            requests = sdk2.statistics().requests
            assert requests.get("submit", 0) == 0 and requests.get("create_ids", 0) == 0
        stats = await counters(emu)
        assert sorted(submissions(stats).values()) == [1] * 4


async def test_keyboard_interrupt_leaves_saveable_resumable_state(tmp_path: Any) -> None:
    async with open_emulator(config(execution_time_s=0.2), executor="instant") as emu:
        async with OqcSdk(emu.url, authentication_token=emu.token, poll_policy=FAST_POLL) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            composite = sdk.create_job(program=[BELL] * 4, qpu_id=qpu)
            assert isinstance(composite, CompositeJob)

            async def interrupt_soon() -> None:
                await trio.sleep(0.3)
                raise KeyboardInterrupt

            with pytest.RaisesGroup(KeyboardInterrupt, flatten_subgroups=True):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(interrupt_soon)
                    await composite.execute(timeout_s=30)
            assert not any(job.driven for job in composite.jobs)
            composite.save(tmp_path / "after-ctrl-c.json")
            await composite.execute(timeout_s=30)
            assert composite.completed
            stats = await counters(emu)
            assert sorted(submissions(stats).values()) == [1] * 4


def test_one_opened_sdk_across_two_trio_runs() -> None:
    """As under IPython ``%autoawait trio``: each cell is its own ``trio.run``."""
    results: dict[str, Any] = {}

    async def serve_and_use() -> None:
        async with open_emulator(config(), executor="instant") as emu:
            sdk = OqcSdk(emu.url, authentication_token=emu.token, poll_policy=FAST_POLL)

            def cell_1() -> None:
                async def body() -> None:
                    await sdk.open()

                trio.run(body)

            def cell_2() -> None:
                async def body() -> None:
                    qpu = (await sdk.list_qpus())[0]["id"]
                    job = sdk.create_job(program=BELL, qpu_id=qpu)
                    await job.execute()
                    results["state"] = job.state
                    await sdk.close()

                trio.run(body)

            await trio.to_thread.run_sync(cell_1)
            await trio.to_thread.run_sync(cell_2)
            results["clients"] = sdk.statistics().clients_opened

    trio.run(serve_and_use)
    assert results["state"] is JobState.COMPLETED
    assert results["clients"] == 2


async def test_as_completed_yields_every_child_once(sdk: OqcSdk) -> None:
    qpu = (await sdk.list_qpus())[0]["id"]
    composite = sdk.create_job(program=[BELL] * 20, qpu_id=qpu)
    assert isinstance(composite, CompositeJob)
    async with composite.as_completed(timeout_s=30) as finished:
        seen = [job async for job in finished]
    assert sorted(map(id, seen)) == sorted(map(id, composite.jobs))
    assert all(job.ended for job in seen)


async def test_streaming_runner_feeds_500_jobs_in_waves(sdk: OqcSdk) -> None:
    qpu = (await sdk.list_qpus())[0]["id"]
    finished: list[Job] = []
    async with sdk.stream(max_in_flight=100) as stream:

        async def feed() -> None:
            for wave in range(5):
                for _ in range(100):
                    job = sdk.create_job(program=BELL, qpu_id=qpu)
                    assert isinstance(job, Job)
                    await stream.send(job)
                await trio.sleep(0.01 * wave)
            await stream.close_input()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            async for job in stream:
                finished.append(job)
    assert len(finished) == 500 and all(job.completed for job in finished)


async def test_fetch_diagnostics_fills_timings_metrics_metadata(sdk: OqcSdk) -> None:
    qpu = (await sdk.list_qpus())[0]["id"]
    job = sdk.create_job(program=BELL, qpu_id=qpu, fetch_diagnostics=True)
    assert isinstance(job, Job)
    job.tag = "diag"
    await job.execute()
    assert job.timings and job.metrics and job.metadata
    assert job.metadata["tag"] == "diag" and job.metadata["qpu_id"] == qpu
    assert job.result is not None and job.result.timings == job.timings


async def test_reconfigure_is_atomic_and_refused_while_driven(sdk: OqcSdk) -> None:
    qpu = (await sdk.list_qpus())[0]["id"]
    job = sdk.create_job(program=BELL, qpu_id=qpu)
    assert isinstance(job, Job)
    await job.execute()
    with pytest.raises(AttributeError):
        job.reconfigure(tag="x", nonsense=1)
    assert job.tag is None and job.state is JobState.COMPLETED
    job.reconfigure(memento=job.result, tag="again")
    assert job.task_id is None and job.state is JobState.CREATED and job.tag == "again"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(job.execute)
        for _ in range(1000):
            if job.driven:
                break
            await trio.lowlevel.checkpoint()
        assert job.driven
        with pytest.raises(RuntimeError, match="driving"):
            job.reconfigure(tag="no")
    assert job.completed and len(job.history) == 2


async def test_v4_dialect_end_to_end(emu: Any) -> None:
    async with OqcSdk(
        emu.url, authentication_token=emu.token, dialect="v4", poll_policy=FAST_POLL
    ) as sdk:
        qpus = await sdk.list_qpus()
        qpu = qpus[0]["id"]
        assert await sdk.get_features(qpu)
        composite = sdk.create_job(program=[BELL] * 10, qpu_id=qpu)
        assert isinstance(composite, CompositeJob)
        await composite.execute(timeout_s=30)
        assert composite.completed
        assert sdk.statistics().requests["health"] == 1
    with pytest.raises(NotImplementedError):
        await OqcSdk(emu.url, dialect="v4").get_next_window("q")


async def test_email_password_login_and_queries(emu: Any) -> None:
    from oqc_trio.emulator.config import DEV_EMAIL, DEV_PASSWORD

    async with OqcSdk(
        emu.url, email=DEV_EMAIL, password=DEV_PASSWORD, poll_policy=FAST_POLL
    ) as sdk:
        qpu = (await sdk.list_qpus())[0]["id"]
        sdk.set_default_qpu(qpu)
        assert sdk.statistics().logins == 1
        assert await sdk.get_system_status(qpu) is not None
        assert await sdk.get_calibration(date_filter="2026-01-02") is not None
        assert await sdk.get_calibration(date_filter=dt.datetime(2026, 1, 2, 5)) is not None
        window = await sdk.get_next_window()
        assert window is None or window.tzinfo is not None
        job = sdk.create_job(program=BELL)
        assert isinstance(job, Job) and job.qpu_id == qpu
        await job.execute()
        assert job.completed
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        await sdk.get_calibration(date_filter="02/01/2026")


async def test_as_completed_stops_cleanly_on_break_and_reports_timeouts() -> None:
    async with open_emulator(config(execution_time_s=0.05), executor="instant") as emu:
        async with OqcSdk(emu.url, authentication_token=emu.token, poll_policy=FAST_POLL) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            composite = sdk.create_job(program=[BELL] * 20, qpu_id=qpu)
            assert isinstance(composite, CompositeJob)
            async with composite.as_completed(timeout_s=30) as finished:
                async for _job in finished:
                    break
            assert not any(job.driven for job in composite.jobs)
            with pytest.raises(ExecuteTimeout):
                async with composite.as_completed(timeout_s=0.2) as finished:
                    async for _job in finished:
                        await trio.sleep(0.05)
            await composite.execute(timeout_s=30)
            assert composite.completed
            assert set((await counters(emu))["submissions"].values()) == {1}


async def test_submit_deadline_during_a_503_storm_raises_instead_of_returning() -> None:
    from faults import FaultyTransport

    from oqc_trio._transport import RetryPolicy

    def refuse_submits(request: Any) -> str | None:
        return "503" if request.url.path.endswith("/tasks/submit") else None

    async with open_emulator(config(), executor="instant") as emu:
        faults = FaultyTransport(refuse_submits)
        async with OqcSdk(
            emu.url,
            authentication_token=emu.token,
            retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05),
            transport_factory=lambda: faults,
        ) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            job = sdk.create_job(program=BELL, qpu_id=qpu)
            assert isinstance(job, Job)
            with pytest.raises(ExecuteTimeout):
                await job.execute(timeout_s=1.0)
            assert job.task_id is not None and job.state is JobState.CREATED
