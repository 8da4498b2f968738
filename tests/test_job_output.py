"""JobOutput / JobResult / JobError: fields, equality, JSON, awaitability, re-runs."""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

import pytest
import trio
from compiler_config.config import CompilerConfig, QuantumResultsFormat
from hypothesis import given
from hypothesis import strategies as st

from oqc_trio.dataarray_utils import Endianness
from oqc_trio.job_output import JobError, JobOutput, JobResult
from oqc_trio.job_output_proxy import JobOutputProxy

UTC = datetime.UTC
TASK = uuid.UUID("12345678-1234-5678-1234-567812345678")
WHEN = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)

BASE_KEYS = [
    "qpu_id",
    "task_id",
    "compiler_config",
    "program",
    "received",
    "timings",
    "metrics",
    "metadata",
]


class FakeJob:
    """A test double with the members outputs use; records what was called."""

    def __init__(self, program: str = "OPENQASM 2.0;", qpu_id: str = "qpu:uk:1") -> None:
        self.program: str | None = program
        self.qpu_id: str | None = qpu_id
        self.config: Any = None
        self.task_id: uuid.UUID | None = None
        self.state = "CREATED"
        self.calls: list[str] = []
        self.submitted: list[uuid.UUID] = []

    @property
    def ended(self) -> bool:
        return self.state in ("COMPLETED", "FAILED", "CANCELLED")

    def reconfigure(self, memento: JobOutput | None = None, **kwargs: Any) -> None:
        self.calls.append("reconfigure")
        if memento is not None:
            self.program, self.qpu_id = memento.program, memento.qpu_id
            self.config = memento.compiler_config
        self.task_id, self.state = None, "CREATED"

    async def submit(self) -> FakeJob:
        self.calls.append("submit")
        self.task_id, self.state = uuid.uuid4(), "SUBMITTED"
        self.submitted.append(self.task_id)
        return self

    async def execute(self) -> JobOutputProxy[JobResult]:
        self.calls.append("execute")
        if self.task_id is None:
            await self.submit()
        self.state = "COMPLETED"
        return JobOutputProxy(JobResult.from_job({"c": {"0": 1}}, self))


def completed_job() -> tuple[FakeJob, JobResult]:
    job = FakeJob()
    job.task_id, job.state = TASK, "COMPLETED"
    return job, JobResult.from_job({"c": {"0": 1}}, job)


# --- construction ------------------------------------------------------------------------


def test_received_defaults_to_now_in_utc():
    before = datetime.datetime.now(UTC)
    output = JobOutput()
    assert output.received.tzinfo is UTC
    assert before <= output.received <= datetime.datetime.now(UTC)


def test_naive_received_is_taken_as_utc_and_aware_is_converted():
    naive = JobResult(received=datetime.datetime(2024, 1, 1, 12, 0))
    assert naive.received == datetime.datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    aware = JobError(received=datetime.datetime(2024, 1, 1, 12, 0, tzinfo=plus2))
    assert aware.received == datetime.datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert aware.received.tzinfo is UTC


def test_assigning_received_or_task_id_converts_too():
    output = JobOutput()
    output.received = datetime.datetime(2020, 2, 2)
    output.task_id = str(TASK)  # type: ignore[assignment]
    assert output.received.tzinfo is UTC
    assert output.task_id == TASK


def test_job_fills_missing_fields_but_not_given_ones():
    job = FakeJob(program="prog", qpu_id="qpu:a")
    job.task_id, job.config = TASK, object()
    filled = JobResult(data={"c": {}}, job=job)
    assert (filled.qpu_id, filled.task_id, filled.program) == ("qpu:a", TASK, "prog")
    assert filled.compiler_config is job.config
    assert filled.job is job
    own = JobError(1, "m", qpu_id="qpu:b", program="other", job=job)
    assert (own.qpu_id, own.program, own.task_id) == ("qpu:b", "other", TASK)


def test_positional_order_matches_the_official_constructors():
    output = JobOutput("q", TASK, None, "p", WHEN)
    result = JobResult({"c": {}}, "q", TASK, None, "p", WHEN)
    error = JobError(7, "bad", "q", TASK, None, "p", WHEN)
    for item in (output, result, error):
        assert (item.qpu_id, item.task_id, item.program, item.received) == ("q", TASK, "p", WHEN)
    assert result.data == {"c": {}}
    assert (error.error_code, error.error_message) == (7, "bad")


def test_factories_take_fields_from_the_job():
    job, _ = completed_job()
    result = JobResult.from_job({"c": {"1": 2}}, job)
    error = JobError.from_job(500, "boom", job)
    assert result.data == {"c": {"1": 2}} and result.task_id == TASK and result.job is job
    assert (error.error_code, error.error_message, error.task_id) == (500, "boom", TASK)
    assert JobError.from_job().job is None


# --- truthiness --------------------------------------------------------------------------


def test_truthiness_ok_and_is_error():
    result, error, codeless = JobResult(), JobError(3, "x"), JobError(None, "note")
    assert (bool(result), result.ok, result.is_error) == (False, True, False)
    assert (bool(error), error.ok, error.is_error) == (True, False, True)
    assert (bool(codeless), codeless.ok, codeless.is_error) == (False, True, False)


def test_short_form():
    assert JobError(42, "Out of budget").short == "(42)Out of budget"
    assert JobError().short == "(None)None"


# --- equality ------------------------------------------------------------------------------


def test_equality_ignores_received_and_job_but_compares_data():
    a = JobResult({"c": {"0": 1}}, "q", TASK, program="p", received=WHEN, job=FakeJob())
    b = JobResult({"c": {"0": 1}}, "q", TASK, program="p", received=WHEN + datetime.timedelta(1))
    assert a == b
    assert a != JobResult({"c": {"0": 2}}, "q", TASK, program="p")
    assert a != JobResult({"c": {"0": 1}}, "q", uuid.uuid4(), program="p")


def test_equality_distinguishes_classes_and_error_fields():
    assert JobError(1, "m", "q") == JobError(1, "m", "q")
    assert JobError(1, "m", "q") != JobError(2, "m", "q")
    assert JobOutput("q") != JobResult(qpu_id="q")
    assert JobResult(qpu_id="q") != JobError(qpu_id="q")


def test_equality_compares_diagnostics_and_configs_by_json():
    assert JobResult(metrics={"a": 1}) != JobResult(metrics={"a": 2})

    def counted() -> CompilerConfig:
        return CompilerConfig(repeats=10, results_format=QuantumResultsFormat().binary_count())

    assert JobResult(compiler_config=counted()) == JobResult(compiler_config=counted())
    assert JobResult(compiler_config=counted()) != JobResult(compiler_config=CompilerConfig())


def test_outputs_are_unhashable_like_the_official():
    with pytest.raises(TypeError):
        hash(JobResult())


# --- repr and dict -------------------------------------------------------------------------


def test_repr_shapes_match_the_official():
    assert repr(JobOutput("q", TASK)) == f"JobOutput(task_id={TASK}, qpu_id='q')"
    assert repr(JobResult({"c": {}, "d": {}}, "q", TASK, received=WHEN)) == (
        f"JobResult(task_id={TASK}, qpu_id='q', data_keys=['c', 'd'], "
        "received='2024-05-06T07:08:09.123456+00:00')"
    )
    assert repr(JobError(5, "no", None, None, received=WHEN)) == (
        "JobError(code=5, message='no', task_id=None, qpu_id=None, "
        "received='2024-05-06T07:08:09.123456+00:00')"
    )


def test_to_dict_keys_and_values():
    config = CompilerConfig()
    result = JobResult({"c": {"1": 1}}, "q", TASK, config, "p", WHEN, timings={"t": 1.5})
    as_dict = result.to_dict()
    assert list(as_dict) == [*BASE_KEYS, "data"]
    assert as_dict["task_id"] == str(TASK)
    assert as_dict["compiler_config"] is config
    assert as_dict["received"] == WHEN.isoformat()
    assert as_dict["timings"] == {"t": 1.5}
    assert list(JobError(1, "m").to_dict()) == [*BASE_KEYS, "error_code", "error_message"]
    assert list(JobOutput().to_dict()) == BASE_KEYS
    assert JobOutput().to_dict()["task_id"] is None


# --- JSON ----------------------------------------------------------------------------------


def test_to_json_drops_the_config_and_from_json_restores_the_rest():
    result = JobResult({"c": {"01": 5}}, "q", TASK, CompilerConfig(), "p", WHEN)
    result.metadata = {"shots": 5}
    text = result.to_json()
    assert "compiler_config" not in json.loads(text)
    loaded = JobResult.from_json(text)
    assert loaded.compiler_config is None
    assert loaded.data == {"c": {"01": 5}}
    assert loaded.metadata == {"shots": 5}
    assert loaded.received == WHEN


def test_from_json_reads_an_official_file_with_a_naive_timestamp():
    text = json.dumps(
        {
            "qpu_id": "qpu:uk:2",
            "task_id": str(TASK),
            "program": "prog",
            "received": "2025-03-04T05:06:07.000008",
            "timings": None,
            "metrics": None,
            "metadata": None,
            "error_code": 500,
            "error_message": "Execution failed",
        }
    )
    error = JobError.from_json(text)
    assert error.received == datetime.datetime(2025, 3, 4, 5, 6, 7, 8, tzinfo=UTC)
    assert (error.task_id, error.error_code, error.short) == (TASK, 500, "(500)Execution failed")


def test_from_json_attaches_the_job_and_takes_its_config():
    job, _ = completed_job()
    job.config = CompilerConfig()
    loaded = JobResult.from_json(JobResult({"c": {}}, "q", TASK).to_json(), job=job)
    assert loaded.job is job
    assert loaded.compiler_config is job.config


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
counts = st.dictionaries(
    st.text(alphabet="01", min_size=1, max_size=6), st.integers(0, 10**6), max_size=6
)
offsets = st.builds(
    datetime.timezone,
    st.timedeltas(min_value=-datetime.timedelta(hours=23), max_value=datetime.timedelta(hours=23)),
)
datetimes = st.one_of(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(
        min_value=datetime.datetime(2, 1, 1),
        max_value=datetime.datetime(9998, 12, 31),
        timezones=offsets,
    ),
    st.datetimes(),
)
common = {
    "qpu_id": st.none() | st.text(max_size=12),
    "task_id": st.none() | st.uuids(),
    "program": st.none() | st.text(max_size=40),
    "received": datetimes,
    "diagnostics": st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=3),
}


def expected_received(value: datetime.datetime) -> datetime.datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


@given(data=st.dictionaries(st.text(max_size=6), counts, max_size=3), **common)
def test_result_json_round_trip(data, qpu_id, task_id, program, received, diagnostics):
    result = JobResult(data, qpu_id, task_id, None, program, received, timings=diagnostics)
    result.metrics = diagnostics
    loaded = JobResult.from_json(result.to_json())
    assert loaded == result
    assert loaded.received == expected_received(received)
    assert loaded.received.tzinfo is UTC
    assert loaded.to_json() == result.to_json()


@given(code=st.none() | st.integers(-1, 10**4), message=st.none() | st.text(max_size=30), **common)
def test_error_json_round_trip(code, message, qpu_id, task_id, program, received, diagnostics):
    error = JobError(code, message, qpu_id, task_id, None, program, received)
    error.metadata = diagnostics
    loaded = JobError.from_json(error.to_json())
    assert loaded == error
    assert bool(loaded) is (code is not None)
    assert loaded.received == expected_received(received)


# --- counts --------------------------------------------------------------------------------


def test_result_to_counts_dataarray_is_one_row():
    da = JobResult({"c": {"10": 3, "00": 1}}).to_counts_dataarray("c", Endianness.LITTLE)
    assert da.values.tolist() == [[1, 3]]
    assert list(da.coords["bitstring"].values) == ["00", "01"]


def test_result_to_counts_dataarray_passes_the_length_policy():
    result = JobResult({"c": {"1": 3, "10": 1}})
    with pytest.raises(ValueError):
        result.to_counts_dataarray("c")
    assert result.to_counts_dataarray("c", on_length_mismatch="pad").values.tolist() == [[3, 1]]


# --- awaiting and re-running ---------------------------------------------------------------


async def test_awaiting_an_output_returns_it():
    result, error = JobResult({"c": {}}), JobError(1, "m")
    assert await result is result
    assert await error is error
    await trio.lowlevel.checkpoint()


async def test_resubmit_reconfigures_then_submits_and_returns_the_job():
    job, result = completed_job()
    job.program = "changed since"
    assert await result.resubmit() is job
    assert job.calls == ["reconfigure", "submit"]
    assert job.program == result.program
    assert job.task_id not in (None, TASK)


async def test_reexecute_after_completion_reconfigures_and_runs_again():
    job, result = completed_job()
    outputs = await result.reexecute()
    assert job.calls == ["reconfigure", "execute", "submit"]
    assert isinstance(outputs, JobOutputProxy)
    assert outputs.one.task_id == job.submitted[0]


async def test_reexecute_after_resubmit_collects_that_task_instead_of_orphaning_it():
    job, result = completed_job()
    await result.resubmit()
    resubmitted = job.task_id
    outputs = await result.reexecute()
    assert job.submitted == [resubmitted]
    assert job.calls == ["reconfigure", "submit", "execute"]
    assert outputs.one.task_id == resubmitted


async def test_rerunning_without_a_job_is_a_clear_runtime_error():
    with pytest.raises(RuntimeError, match="cannot resubmit: this JobResult is not attached"):
        await JobResult().resubmit()
    with pytest.raises(RuntimeError, match="cannot reexecute: this JobError"):
        await JobError(1, "m").reexecute()
