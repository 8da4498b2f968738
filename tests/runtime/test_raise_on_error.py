"""``Job.raise_on_error`` is a public, settable switch honoured by ``execute``/``wait`` (#27).

In the official SDK ``raise_on_error`` has no public setter (only a snapshot restores it),
and failures surface as a bare ``RuntimeError``. Here setting ``job.raise_on_error = True``
makes ``execute()`` and ``wait()`` raise :class:`JobFailed` (a ``RuntimeError`` subclass)
for a task the *server* failed; with ``False`` (the default) they return, and the job is
FAILED with the server's error. Server failures come from the emulator over loopback: an
injected task error (instant executor) and a program qiskit cannot parse (aer executor).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from runtime_support import BELL, FAST_POLL, config, open_emulator

from oqc_trio.client import OqcSdk
from oqc_trio.emulator.faults import FaultPlan, FaultRule
from oqc_trio.exceptions import JobFailed
from oqc_trio.job import Job, JobState

ERROR_CODE = 4242
MESSAGE = "injected: qubit 3 fell off the chip"
INVALID_QASM = "OPENQASM 2.0;\nqreg q[1;\n"


@pytest.fixture
async def failing_sdk() -> AsyncIterator[OqcSdk]:
    """An SDK against an emulator that fails every task with ``ERROR_CODE``/``MESSAGE``."""
    plan = FaultPlan(rules=(FaultRule(kind="task_error", error_code=ERROR_CODE, message=MESSAGE),))
    async with open_emulator(config(faults=plan), executor="instant") as emu:
        async with OqcSdk(emu.url, authentication_token=emu.token, poll_policy=FAST_POLL) as client:
            yield client


async def new_job(sdk: OqcSdk, program: str = BELL) -> Job:
    job = sdk.create_job(program=program, qpu_id=(await sdk.list_qpus())[0]["id"])
    assert isinstance(job, Job)
    return job


def assert_failed_by_server(job: Job) -> None:
    assert job.state is JobState.FAILED and not job.completed
    assert job.task_id is not None
    assert job.error is not None and job.result is None


async def test_raise_on_error_is_a_public_settable_property(failing_sdk: OqcSdk) -> None:
    job = await new_job(failing_sdk)
    assert job.raise_on_error is False  # the official default
    job.raise_on_error = True
    assert job.raise_on_error is True
    assert job.to_snapshot().raise_on_error is True  # and it is what a snapshot saves
    job.raise_on_error = False
    assert job.raise_on_error is False


async def test_execute_raises_job_failed_when_raise_on_error(failing_sdk: OqcSdk) -> None:
    job = await new_job(failing_sdk)
    job.raise_on_error = True
    with pytest.raises(JobFailed) as info:
        await job.execute(timeout_s=30)
    failure = info.value
    assert isinstance(failure, RuntimeError)  # old `except RuntimeError` handlers still work
    assert failure.task_id == str(job.task_id)
    assert failure.qpu_id == job.qpu_id
    assert failure.code == ERROR_CODE
    assert MESSAGE in (failure.details or "")
    # Raising does not lose what the server said.
    assert_failed_by_server(job)
    assert job.error is not None and job.error.error_code == ERROR_CODE
    assert len(job.history) == 1


async def test_execute_returns_a_failed_job_without_raise_on_error(
    failing_sdk: OqcSdk,
) -> None:
    job = await new_job(failing_sdk)
    outputs = await job.execute(timeout_s=30)  # does not raise
    assert_failed_by_server(job)
    assert job.error is not None
    assert job.error.error_code == ERROR_CODE and MESSAGE in (job.error.error_message or "")
    assert outputs.any_error and list(outputs) == [job.error]
    with pytest.raises(JobFailed):  # the error is there to be raised on demand
        outputs.raise_for_error()


async def test_wait_raises_job_failed_when_raise_on_error(failing_sdk: OqcSdk) -> None:
    job = await new_job(failing_sdk)
    await job.submit()
    job.raise_on_error = True
    with pytest.raises(JobFailed) as info:
        await job.wait(timeout_s=30)
    assert info.value.task_id == str(job.task_id) and info.value.code == ERROR_CODE
    assert_failed_by_server(job)


async def test_raise_on_error_does_not_raise_for_a_completed_job(sdk: OqcSdk) -> None:
    job = await new_job(sdk)
    job.raise_on_error = True
    await job.execute(timeout_s=30)
    assert job.completed


async def test_invalid_program_raises_job_failed_only_when_asked(aer_sdk: OqcSdk) -> None:
    raising = await new_job(aer_sdk, INVALID_QASM)
    raising.raise_on_error = True
    with pytest.raises(JobFailed) as info:
        await raising.execute(timeout_s=30)
    assert info.value.task_id == str(raising.task_id)
    assert info.value.code is not None and "line" in (info.value.details or "")
    assert_failed_by_server(raising)

    quiet = await new_job(aer_sdk, INVALID_QASM)
    await quiet.execute(timeout_s=30)
    assert_failed_by_server(quiet)
    assert quiet.error is not None and "line" in (quiet.error.error_message or "")
