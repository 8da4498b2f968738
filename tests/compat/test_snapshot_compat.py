"""Snapshot files are interchangeable with OQC's official oqc-qcaas-sdk 0.1.24, both ways.

Needs the official SDK (``tox -e compat``); skipped when it is not installed. Files saved by
oqc-trio are read with the official pydantic models and with ``OqcSdk.load`` (sync, offline),
and files saved by the official ``Job.save`` / ``CompositeJob.save`` are read by oqc-trio.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.compat
official = pytest.importorskip("oqc_qcaas_sdk")

import compiler_config.config as compiler_config_module  # noqa: E402
from compiler_config.config import CompilerConfig, QuantumResultsFormat  # noqa: E402
from compiler_config.experimental.erado.config import (  # noqa: E402
    EradoConfig,
    ErasureModel,
    IdlingErrorConfig,
)
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from oqc_qcaas_sdk import job_snapshot as official_models  # noqa: E402
from oqc_qcaas_sdk.client import OqcSdk  # noqa: E402
from oqc_qcaas_sdk.experimental_config import (  # noqa: E402
    ExperimentalConfig as OfficialExperimentalConfig,
)
from oqc_qcaas_sdk.job import CompositeJob, Job  # noqa: E402
from oqc_qcaas_sdk.job import JobState as OfficialJobState  # noqa: E402
from oqc_qcaas_sdk.job_output import JobError, JobResult  # noqa: E402
from oqc_qcaas_sdk.job_output_proxy import JobOutputProxy  # noqa: E402

from oqc_trio._wire.status import JobState  # noqa: E402
from oqc_trio.config import (  # noqa: E402
    ExperimentalConfig,
    config_from_snapshot,
    config_to_snapshot,
)
from oqc_trio.job_snapshot import (  # noqa: E402
    CompositeJobSnapshot,
    JobErrorSnapshot,
    JobResultSnapshot,
    JobSnapshot,
    load_snapshot,
    save_snapshot,
    snapshot_to_dict,
)

# The official ExperimentalConfig.to_json only works if its class was defined before
# compiler_config first built its (cached) table of serialisable types. Whichever test module
# ran first, make sure it is registered so the *official* side can serialise in this process.
# (Our side never needs this; see oqc_trio.config.)
compiler_config_module.get_serializable_types().setdefault(
    str(OfficialExperimentalConfig), OfficialExperimentalConfig
)

UTC = datetime.UTC
QPU = "qpu:uk:2:d865b5a184"
BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\n'


def _at(second: int) -> datetime.datetime:
    return datetime.datetime(2026, 3, 4, 5, 6, second, 123456, tzinfo=UTC)


def _ours_configs() -> list[Any]:
    return [
        CompilerConfig(repeats=100, results_format=QuantumResultsFormat().binary_count()),
        ExperimentalConfig(noise=True, bond_dimension=32, repeats=50),
        EradoConfig(repeats=200, erasure_model=ErasureModel.TRANSPILER_PASS),
        None,
    ]


def _ours_item(n: int, ok: bool, config: Any = None) -> JobResultSnapshot | JobErrorSnapshot:
    config_json, config_type = config_to_snapshot(config)
    common: dict[str, Any] = dict(
        qpu_id=QPU,
        task_id=uuid.UUID(int=n + 1),
        program=BELL,
        received=_at(n % 60),
        config_json=config_json,
        config_type=config_type,
        timings={"queued": 1.5, "executed": 0.25} if n % 2 else None,
        metrics={"optimized_instruction_count": 12} if n % 3 == 0 else None,
        metadata={"shots": 100, "nested": {"list": [1, "a", None]}} if n % 2 else None,
    )
    if ok:
        return JobResultSnapshot(data={"c": {"00": 48 + n, "11": 52 - n}}, **common)
    return JobErrorSnapshot(error_code=4000 + n, error_message=f"run {n} failed", **common)


def _ours_composite() -> CompositeJobSnapshot:
    """Finished jobs with histories of several runs under each config type, a job with a
    result and one with an error, and a submitted-but-unfinished job."""
    children = []
    for i, config in enumerate(_ours_configs()):
        history = [_ours_item(10 * i + k, ok=(i + k) % 2 == 0, config=config) for k in range(3)]
        last = history[-1]
        config_json, config_type = config_to_snapshot(config)
        children.append(
            JobSnapshot(
                program=BELL,
                qpu_id=QPU,
                config_json=config_json,
                config_type=config_type,
                tag=f"child-{i}",
                hybrid_marker="h1" if i == 1 else None,
                timings={"total": 2.5},
                task_id=last.task_id,
                state=JobState.COMPLETED if last.kind == "result" else JobState.FAILED,
                raise_on_error=i == 2,
                fetch_diagnostics=i == 0,
                result=last if isinstance(last, JobResultSnapshot) else None,
                error=last if isinstance(last, JobErrorSnapshot) else None,
                history=history,
            )
        )
    children.append(
        JobSnapshot(
            program=BELL,
            qpu_id=QPU,
            task_id=uuid.UUID("6f1c2a8e-0d7b-4c43-9a55-2e1f3b4c5d6e"),
            state=JobState.SUBMITTED,
        )
    )
    children.append(
        JobSnapshot(program=BELL, qpu_id=QPU, state=JobState.RUNNING, task_id=uuid.uuid4())
    )
    children.append(JobSnapshot(program=BELL, qpu_id=QPU))
    return CompositeJobSnapshot(jobs=children)


def _same_config(official_config: Any, ours: Any) -> None:
    """An official config object and ours describe the same settings."""
    if ours is None:
        assert official_config is None
        return
    if isinstance(ours, ExperimentalConfig):
        assert isinstance(official_config, OfficialExperimentalConfig)
        assert official_config.external_config == ours.external_config
        assert _plain_json(official_config) == json.loads(ours.base_config.to_json())
        return
    assert type(official_config) is type(ours)
    assert official_config.to_json() == ours.to_json()


def _plain_json(config: Any) -> dict[str, Any]:
    """The $type/$data of a config without its experimental extras."""
    data = json.loads(config.to_json())
    data.pop("$external", None)
    data["$type"] = str(CompilerConfig)
    for key in ("noise", "bond_dimension", "noise_model"):
        data["$data"].pop(key, None)
    return data


def _same_output(official_output: Any, ours: JobResultSnapshot | JobErrorSnapshot) -> None:
    assert official_output.qpu_id == ours.qpu_id
    assert official_output.task_id == ours.task_id
    assert official_output.program == ours.program
    assert official_output.received == ours.received
    assert official_output.timings == ours.timings
    assert official_output.metrics == ours.metrics
    assert official_output.metadata == ours.metadata
    _same_config(
        official_output.compiler_config, config_from_snapshot(ours.config_json, ours.config_type)
    )
    if isinstance(ours, JobResultSnapshot):
        assert isinstance(official_output, JobResult)
        assert dict(official_output.data) == ours.data
    else:
        assert isinstance(official_output, JobError)
        assert (official_output.error_code, official_output.error_message) == (
            ours.error_code,
            ours.error_message,
        )


def _same_job(official_job: Job, ours: JobSnapshot) -> None:
    assert official_job.program == ours.program
    assert official_job.qpu_id == ours.qpu_id
    assert official_job.task_id == ours.task_id
    assert official_job.tag == ours.tag
    assert official_job.hybrid_marker == ours.hybrid_marker
    assert official_job.state.value == ours.state.value
    assert official_job.timings == ours.timings
    assert official_job._raise_on_error == ours.raise_on_error
    assert official_job._fetch_diagnostics == ours.fetch_diagnostics
    _same_config(official_job.config, config_from_snapshot(ours.config_json, ours.config_type))
    for official_output, output in (
        (official_job.result, ours.result),
        (official_job.error, ours.error),
    ):
        if output is None:
            assert official_output is None
        else:
            _same_output(official_output, output)
    history = list(official_job._activity_history)
    assert len(history) == len(ours.history)
    for official_output, output in zip(history, ours.history, strict=True):
        _same_output(official_output, output)


# --- ours -> official -------------------------------------------------------------------------


def test_official_models_read_our_files_field_for_field(tmp_path: Path) -> None:
    ours = _ours_composite()
    path = tmp_path / "batch.json"
    save_snapshot(ours, path)
    model = official_models.CompositeJobSnapshot.model_validate_json(path.read_text())
    assert model.model_dump(mode="json") == snapshot_to_dict(ours)
    for child in ours.jobs:
        single = tmp_path / "single.json"
        save_snapshot(child, single)
        job_model = official_models.JobSnapshot.model_validate_json(single.read_text())
        assert job_model.model_dump(mode="json") == snapshot_to_dict(child)


def test_official_load_restores_our_composite(tmp_path: Path) -> None:
    ours = _ours_composite()
    path = tmp_path / "batch.json"
    save_snapshot(ours, path)
    restored = OqcSdk(url="http://127.0.0.1:9").load(path)
    assert isinstance(restored, CompositeJob)
    assert len(restored.jobs) == len(ours.jobs)
    for official_job, child in zip(restored.jobs, ours.jobs, strict=True):
        _same_job(official_job, child)
    submitted = restored.jobs[-3]
    assert submitted.state is OfficialJobState.SUBMITTED and submitted.task_id is not None
    assert not submitted.ended  # the official execute() resumes polling it


def test_official_load_restores_our_single_job(tmp_path: Path) -> None:
    for child in _ours_composite().jobs:
        path = tmp_path / "job.json"
        save_snapshot(child, path)
        restored = OqcSdk(url="http://127.0.0.1:9").load(path)
        assert isinstance(restored, Job)
        _same_job(restored, child)


def test_unknown_needs_the_compatible_save(tmp_path: Path) -> None:
    ours = CompositeJobSnapshot(
        jobs=[
            JobSnapshot(program=BELL, qpu_id=QPU, state=JobState.UNKNOWN, task_id=uuid.uuid4()),
            JobSnapshot(program=BELL, qpu_id=QPU, state=JobState.UNKNOWN),
        ]
    )
    path = tmp_path / "unknown.json"
    save_snapshot(ours, path)
    assert load_snapshot(path) == ours
    with pytest.raises(ValueError, match="does not match the expected snapshot schema"):
        OqcSdk(url="http://127.0.0.1:9").load(path)
    save_snapshot(ours, path, compatible=True)
    restored = OqcSdk(url="http://127.0.0.1:9").load(path)
    assert [job.state for job in restored.jobs] == [
        OfficialJobState.SUBMITTED,
        OfficialJobState.CREATED,
    ]
    assert restored.jobs[0].task_id == ours.jobs[0].task_id


def test_official_sdk_alone_reads_our_experimental_config(tmp_path: Path) -> None:
    # In a process that never imports oqc_trio, the official decoder only knows the classes it
    # registered: our "$type" (the base CompilerConfig path) is one of them.
    config = ExperimentalConfig(noise=True, bond_dimension=7, repeats=11)
    config_json, config_type = config_to_snapshot(config)
    path = tmp_path / "exp.json"
    save_snapshot(
        JobSnapshot(program=BELL, qpu_id=QPU, config_json=config_json, config_type=config_type),
        path,
    )
    code = (
        "import sys; from oqc_qcaas_sdk import OqcSdk;"
        "job = OqcSdk(url='http://127.0.0.1:9').load(sys.argv[1]);"
        "print(type(job.config).__name__, job.config.repeats, job.config.external_config);"
        "print('oqc_trio' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[:2] == [
        "ExperimentalConfig 11 {'noise_enabled': True, 'bond_dimension': 7}",
        "False",
    ]


_text = st.text(st.characters(codec="utf-8"), max_size=10)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_objects = st.none() | st.dictionaries(_text, _json, max_size=3)
_config_fields = st.sampled_from(_ours_configs()).map(config_to_snapshot)


def _item_strategy(cls: Any) -> Any:
    return st.builds(
        lambda config, **kw: cls(config_json=config[0], config_type=config[1], **kw),
        _config_fields,
        qpu_id=st.none() | _text,
        task_id=st.none() | st.uuids(),
        program=st.none() | _text,
        received=st.none() | st.datetimes(timezones=st.just(UTC)),
        timings=_objects,
        metrics=_objects,
        metadata=_objects,
    )


_items = _item_strategy(JobResultSnapshot) | _item_strategy(JobErrorSnapshot)
_jobs = st.builds(
    JobSnapshot,
    program=_text,
    qpu_id=_text,
    tag=st.none() | _text,
    hybrid_marker=st.none() | _text,
    metrics=_objects,
    task_id=st.none() | st.uuids(),
    state=st.sampled_from(list(JobState)),
    raise_on_error=st.booleans(),
    fetch_diagnostics=st.booleans(),
    result=st.none() | _item_strategy(JobResultSnapshot),
    error=st.none() | _item_strategy(JobErrorSnapshot),
    history=st.lists(_items, max_size=3),
)


@settings(max_examples=50, deadline=None)
@given(st.builds(CompositeJobSnapshot, jobs=st.lists(_jobs, max_size=3)))
def test_any_compatible_snapshot_reads_the_same_in_the_official_models(
    ours: CompositeJobSnapshot,
) -> None:
    data = snapshot_to_dict(ours, compatible=True)
    model = official_models.CompositeJobSnapshot.model_validate_json(json.dumps(data))
    assert model.model_dump(mode="json") == data


# --- official -> ours -------------------------------------------------------------------------


def _official_output(n: int, ok: bool, job: Job, config: Any) -> JobResult | JobError:
    common: dict[str, Any] = dict(
        qpu_id=QPU, task_id=uuid.UUID(int=1000 + n), compiler_config=config, received=_at(n)
    )
    output: JobResult | JobError
    if ok:
        output = JobResult(data={"c": {"01": n, "10": 100 - n}}, job=job, **common)
    else:
        output = JobError(error_code=3000 + n, error_message=f"boom {n}", job=job, **common)
    output.timings = {"queued": float(n)} if n % 2 else None
    output.metadata = {"n": n} if n % 3 == 0 else None
    return output


def _official_configs() -> list[Any]:
    return [
        CompilerConfig(repeats=64, results_format=QuantumResultsFormat().binary_count()),
        OfficialExperimentalConfig(noise=True, bond_dimension=12, repeats=40),
        EradoConfig(repeats=300, idling_error=IdlingErrorConfig(max_idle_length=5)),
        None,
    ]


def _official_composite() -> CompositeJob:
    jobs = []
    for i, config in enumerate(_official_configs()):
        job = Job(
            program=BELL,
            qpu_id=QPU,
            config=config,
            task_id=uuid.UUID(int=2000 + i),
            tag=f"official-{i}",
            fetch_diagnostics=i == 1,
        )
        history = [_official_output(10 * i + k, (i + k) % 2 == 1, job, config) for k in range(3)]
        job._activity_history = JobOutputProxy(history)
        last = history[-1]
        if isinstance(last, JobResult):
            job._result, job._state = last, OfficialJobState.COMPLETED
        else:
            job._error, job._state = last, OfficialJobState.FAILED
        job.timings = {"total": float(i)}
        jobs.append(job)
    pending = Job(program=BELL, qpu_id=QPU, task_id=uuid.uuid4())
    pending._state = OfficialJobState.SUBMITTED
    jobs.append(pending)
    jobs.append(Job(program=BELL, qpu_id=QPU, hybrid_marker="hm"))
    return CompositeJob(jobs=jobs)


def test_we_read_official_files_field_for_field(tmp_path: Path) -> None:
    composite = _official_composite()
    path = tmp_path / "official.json"
    composite.save(path)
    ours = load_snapshot(path)
    assert isinstance(ours, CompositeJobSnapshot)
    assert snapshot_to_dict(ours) == composite.to_snapshot().model_dump(mode="json")
    assert snapshot_to_dict(ours) == json.loads(path.read_text())
    for official_job, child in zip(composite.jobs, ours.jobs, strict=True):
        _same_job(official_job, child)


def test_we_read_official_single_job_files(tmp_path: Path) -> None:
    for official_job in _official_composite().jobs:
        path = tmp_path / "job.json"
        official_job.save(path)
        ours = load_snapshot(path)
        assert isinstance(ours, JobSnapshot)
        assert snapshot_to_dict(ours) == json.loads(path.read_text())
        _same_job(official_job, ours)


def test_official_configs_rebuild_as_ours(tmp_path: Path) -> None:
    composite = _official_composite()
    path = tmp_path / "official.json"
    composite.save(path)
    ours = load_snapshot(path)
    assert isinstance(ours, CompositeJobSnapshot)
    kinds = [type(config_from_snapshot(j.config_json, j.config_type)) for j in ours.jobs]
    assert kinds == [
        CompilerConfig,
        ExperimentalConfig,
        EradoConfig,
        type(None),
        type(None),
        type(None),
    ]
    experimental = config_from_snapshot(ours.jobs[1].config_json, ours.jobs[1].config_type)
    assert isinstance(experimental, ExperimentalConfig)
    assert experimental.external_config == {"noise_enabled": True, "bond_dimension": 12}
    assert experimental.repeats == 40


def test_naive_official_timestamps_are_read_as_utc(tmp_path: Path) -> None:
    job = Job(program=BELL, qpu_id=QPU, task_id=uuid.uuid4())
    naive = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000)
    job._result = JobResult(data={"c": {"1": 1}}, job=job, received=naive)
    job._state = OfficialJobState.COMPLETED
    path = tmp_path / "naive.json"
    job.save(path)
    assert json.loads(path.read_text())["result"]["received"] == "2026-01-02T03:04:05.678000"
    ours = load_snapshot(path)
    assert isinstance(ours, JobSnapshot) and ours.result is not None
    assert ours.result.received == naive.replace(tzinfo=UTC)


def test_round_trip_through_both(tmp_path: Path) -> None:
    """ours -> file -> official Job -> official save -> ours: nothing lost."""
    ours = _ours_composite()
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    save_snapshot(ours, first)
    OqcSdk(url="http://127.0.0.1:9").load(first).save(second)
    again = load_snapshot(second)
    assert isinstance(again, CompositeJobSnapshot)
    for before, after in zip(ours.jobs, again.jobs, strict=True):
        # The official to_json writes its own $type for ExperimentalConfig; compare configs.
        for a, b in [(before, after), *zip(before.history, after.history, strict=True)]:
            cfg_a = config_from_snapshot(a.config_json, a.config_type)
            cfg_b = config_from_snapshot(b.config_json, b.config_type)
            assert (cfg_a and cfg_a.to_json()) == (cfg_b and cfg_b.to_json())
        strip = {"config_json": None}
        assert _without(snapshot_to_dict(before), strip) == _without(snapshot_to_dict(after), strip)


def _without(data: Any, replace: dict[str, Any]) -> Any:
    """``data`` with the given keys replaced at every depth."""
    if isinstance(data, dict):
        return {k: replace[k] if k in replace else _without(v, replace) for k, v in data.items()}
    if isinstance(data, list):
        return [_without(v, replace) for v in data]
    return data
