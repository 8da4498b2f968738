"""Tests for oqc_trio.job_snapshot: models, the converter, atomic save and load errors."""

from __future__ import annotations

import datetime
import json
import os
import stat
import tempfile
import uuid
from pathlib import Path
from typing import Any

import attrs
import pytest
from compiler_config.config import CompilerConfig, QuantumResultsFormat
from compiler_config.experimental.erado.config import EradoConfig
from hypothesis import given, settings
from hypothesis import strategies as st

import oqc_trio.job_snapshot as snapshot_module
from oqc_trio._wire.status import JobState
from oqc_trio.config import ExperimentalConfig, config_from_snapshot, config_to_snapshot
from oqc_trio.job_snapshot import (
    CURRENT_SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    CompositeJobSnapshot,
    JobErrorSnapshot,
    JobOutputSnapshot,
    JobResultSnapshot,
    JobSnapshot,
    load_snapshot,
    save_snapshot,
    snapshot_from_dict,
    snapshot_to_dict,
    snapshot_to_json,
)

UTC = datetime.UTC
TASK = uuid.UUID("0b6d4a52-3c1f-4e0e-9c55-8d8f5d7c2a11")

# The official models' fields, in order (oqc_qcaas_sdk.job_snapshot, schema "1").
OUTPUT_FIELDS = [
    "qpu_id",
    "task_id",
    "program",
    "received",
    "config_json",
    "config_type",
    "timings",
    "metrics",
    "metadata",
]
JOB_FIELDS = [
    "schema_version",
    "snapshot_kind",
    "program",
    "qpu_id",
    "config_json",
    "config_type",
    "tag",
    "hybrid_marker",
    "timings",
    "metrics",
    "metadata",
    "task_id",
    "state",
    "raise_on_error",
    "fetch_diagnostics",
    "result",
    "error",
    "history",
]

# --- strategies -------------------------------------------------------------------------------

texts = st.text(max_size=12)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), texts, st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=10,
)
json_objects = st.dictionaries(texts, json_values, max_size=4)
counts = st.dictionaries(
    st.sampled_from(["c", "r", "meas"]),
    st.dictionaries(st.text("01", min_size=1, max_size=4), st.integers(0, 10_000), max_size=4),
    max_size=2,
)
received = st.none() | st.datetimes(timezones=st.just(UTC))
configs = st.sampled_from(
    [
        None,
        CompilerConfig(repeats=100, results_format=QuantumResultsFormat().binary_count()),
        ExperimentalConfig(noise=True, bond_dimension=16, repeats=10),
        EradoConfig(repeats=50),
    ]
).map(config_to_snapshot)


def _outputs(cls: type[JobResultSnapshot] | type[JobErrorSnapshot], **extra: Any) -> Any:
    return st.builds(
        lambda config, **kwargs: cls(
            config_json=config[0], config_type=config[1], **kwargs, **extra
        ),
        configs,
        qpu_id=st.none() | texts,
        task_id=st.none() | st.uuids(),
        program=st.none() | texts,
        received=received,
        timings=st.none() | json_objects,
        metrics=st.none() | json_objects,
        metadata=st.none() | json_objects,
    )


results = st.builds(
    lambda item, data: attrs.evolve(item, data=data), _outputs(JobResultSnapshot), counts
)
errors = st.builds(
    lambda item, code, message: attrs.evolve(item, error_code=code, error_message=message),
    _outputs(JobErrorSnapshot),
    st.none() | st.integers(-(2**31), 2**31),
    st.none() | texts,
)
jobs = st.builds(
    lambda config, **kwargs: JobSnapshot(config_json=config[0], config_type=config[1], **kwargs),
    configs,
    program=texts,
    qpu_id=texts,
    tag=st.none() | texts,
    hybrid_marker=st.none() | texts,
    timings=st.none() | json_objects,
    metrics=st.none() | json_objects,
    metadata=st.none() | json_objects,
    task_id=st.none() | st.uuids(),
    state=st.sampled_from(list(JobState)),
    raise_on_error=st.booleans(),
    fetch_diagnostics=st.booleans(),
    result=st.none() | results,
    error=st.none() | errors,
    history=st.lists(results | errors, max_size=4),
)
composites = st.builds(CompositeJobSnapshot, jobs=st.lists(jobs, max_size=4))
snapshots = jobs | composites


def _job(**kwargs: Any) -> JobSnapshot:
    return JobSnapshot(program="OPENQASM 2.0;", qpu_id="qpu:uk:2:d865b5a184", **kwargs)


def _run(n: int, ok: bool) -> JobResultSnapshot | JobErrorSnapshot:
    common: dict[str, Any] = dict(
        qpu_id="qpu:uk:2:d865b5a184",
        task_id=uuid.UUID(int=n),
        program="OPENQASM 2.0;",
        received=datetime.datetime(2026, 1, 2, 3, n // 60, n % 60, tzinfo=UTC),
    )
    if ok:
        return JobResultSnapshot(data={"c": {"00": 500 - n, "11": 500 + n}}, **common)
    return JobErrorSnapshot(error_code=500 + n, error_message=f"run {n} failed", **common)


def _composite() -> CompositeJobSnapshot:
    """Several children, each with a history of several runs (results and errors)."""
    children = []
    for i, state in enumerate(JobState):
        history = [_run(10 * i + k, ok=(k + i) % 2 == 0) for k in range(3)]
        last = history[-1]
        children.append(
            _job(
                task_id=last.task_id,
                state=state,
                result=last if isinstance(last, JobResultSnapshot) else None,
                error=last if isinstance(last, JobErrorSnapshot) else None,
                history=history,
                tag=f"child-{i}",
            )
        )
    return CompositeJobSnapshot(jobs=children)


# --- models -----------------------------------------------------------------------------------


def test_fields_and_defaults_are_the_official_ones() -> None:
    assert [a.name for a in attrs.fields(JobOutputSnapshot)] == OUTPUT_FIELDS
    assert [a.name for a in attrs.fields(JobResultSnapshot)] == [*OUTPUT_FIELDS, "kind", "data"]
    assert [a.name for a in attrs.fields(JobErrorSnapshot)] == [
        *OUTPUT_FIELDS,
        "kind",
        "error_code",
        "error_message",
    ]
    assert [a.name for a in attrs.fields(JobSnapshot)] == JOB_FIELDS
    assert [a.name for a in attrs.fields(CompositeJobSnapshot)] == [
        "schema_version",
        "snapshot_kind",
        "jobs",
    ]
    assert attrs.asdict(JobOutputSnapshot()) == dict.fromkeys(OUTPUT_FIELDS)
    assert JobResultSnapshot().kind == "result" and JobResultSnapshot().data == {}
    error = JobErrorSnapshot()
    assert (error.kind, error.error_code, error.error_message) == ("error", None, None)
    job = _job()
    assert job.schema_version == CURRENT_SCHEMA_VERSION == "1"
    assert job.snapshot_kind == "job" and job.state is JobState.CREATED
    assert (job.raise_on_error, job.fetch_diagnostics) == (False, False)
    assert job.history == [] and job.result is None and job.error is None
    assert CompositeJobSnapshot().jobs == [] and CompositeJobSnapshot().snapshot_kind == "composite"
    assert SUPPORTED_SCHEMA_VERSIONS == ("1",)


def test_program_and_qpu_id_are_required_and_keyword_only() -> None:
    with pytest.raises(TypeError):
        JobSnapshot(program="p")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        JobSnapshot("p", "q")  # type: ignore[call-arg, arg-type]


def test_constructor_accepts_strings_like_pydantic() -> None:
    job = _job(task_id=str(TASK), state="RUNNING")
    assert job.task_id == TASK and job.state is JobState.RUNNING
    item = JobResultSnapshot(task_id=str(TASK), received="2026-01-02T03:04:05")
    assert item.task_id == TASK
    assert item.received == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_mutable_defaults_are_not_shared() -> None:
    a, b = _job(), _job()
    a.history.append(JobResultSnapshot())
    assert b.history == []


@pytest.mark.parametrize("state", list(JobState))
def test_every_state_round_trips(state: JobState, tmp_path: Path) -> None:
    job = _job(state=state, task_id=TASK)
    path = tmp_path / "job.json"
    save_snapshot(job, path)
    assert json.loads(path.read_text())["state"] == state.value
    assert load_snapshot(path) == job


def test_output_json_shape() -> None:
    job = _job(
        task_id=TASK,
        state=JobState.COMPLETED,
        result=_run(1, ok=True),
        history=[_run(0, ok=False), _run(1, ok=True)],
    )
    data = snapshot_to_dict(job)
    assert list(data) == JOB_FIELDS
    assert data["task_id"] == str(TASK) and data["state"] == "COMPLETED"
    assert list(data["result"]) == [*OUTPUT_FIELDS, "kind", "data"]
    assert data["result"]["received"] == "2026-01-02T03:00:01Z"
    assert [item["kind"] for item in data["history"]] == ["error", "result"]
    assert list(data["history"][0]) == [*OUTPUT_FIELDS, "kind", "error_code", "error_message"]
    text = snapshot_to_json(job)
    assert text == json.dumps(data, indent=2) and text.startswith('{\n  "schema_version": "1"')
    assert snapshot_to_json(job, indent=None) == json.dumps(data)


def test_received_is_written_as_aware_utc() -> None:
    paris = datetime.timezone(datetime.timedelta(hours=1))
    item = JobResultSnapshot(received=datetime.datetime(2026, 1, 2, 4, 0, tzinfo=paris))
    data = snapshot_to_dict(_job(result=item))
    assert data["result"]["received"] == "2026-01-02T03:00:00Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T03:04:05", datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05.250000", datetime.datetime(2026, 1, 2, 3, 4, 5, 250000, UTC)),
        ("2026-01-02T03:04:05Z", datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T04:04:05+01:00", datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_received_is_read_as_utc(text: str, expected: datetime.datetime) -> None:
    data = snapshot_to_dict(_job(result=JobResultSnapshot()))
    data["result"]["received"] = text
    loaded = snapshot_from_dict(data)
    assert isinstance(loaded, JobSnapshot) and loaded.result is not None
    assert loaded.result.received == expected
    assert loaded.result.received.tzinfo is UTC


@settings(max_examples=60)
@given(snapshots)
def test_dict_round_trip(snapshot: JobSnapshot | CompositeJobSnapshot) -> None:
    data = snapshot_to_dict(snapshot)
    assert snapshot_from_dict(data) == snapshot
    assert snapshot_from_dict(json.loads(json.dumps(data))) == snapshot


@settings(max_examples=60)
@given(snapshots)
def test_json_round_trip(snapshot: JobSnapshot | CompositeJobSnapshot) -> None:
    text = snapshot_to_json(snapshot)
    assert text.isascii()
    assert snapshot_from_dict(json.loads(text)) == snapshot
    assert type(snapshot).model_validate_json(snapshot.model_dump_json()) == snapshot


@settings(max_examples=30)
@given(snapshots)
def test_file_round_trip(snapshot: JobSnapshot | CompositeJobSnapshot) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "snap.json"
        save_snapshot(snapshot, path)
        assert load_snapshot(path) == snapshot
        save_snapshot(snapshot, str(path))  # overwrite, str path
        assert load_snapshot(str(path)) == snapshot
        assert os.listdir(directory) == ["snap.json"]


def test_composite_with_histories_round_trips(tmp_path: Path) -> None:
    composite = _composite()
    assert len(composite.jobs) == len(JobState)
    path = tmp_path / "batch.json"
    save_snapshot(composite, path)
    loaded = load_snapshot(path)
    assert loaded == composite
    assert isinstance(loaded, CompositeJobSnapshot)
    for job in loaded.jobs:
        assert len(job.history) == 3
        assert {type(item) for item in job.history} == {JobResultSnapshot, JobErrorSnapshot}
        assert job.result is not None or job.error is not None


@pytest.mark.parametrize(
    "config",
    [
        None,
        CompilerConfig(repeats=123),
        ExperimentalConfig(noise=True, bond_dimension=8, noise_model={"p": 0.1}, repeats=9),
        EradoConfig(repeats=77),
    ],
)
def test_configs_survive_a_snapshot(config: Any, tmp_path: Path) -> None:
    config_json, config_type = config_to_snapshot(config)
    job = _job(
        config_json=config_json,
        config_type=config_type,
        history=[JobResultSnapshot(config_json=config_json, config_type=config_type)],
    )
    path = tmp_path / "job.json"
    save_snapshot(job, path)
    loaded = load_snapshot(path)
    assert isinstance(loaded, JobSnapshot)
    for holder in (loaded, loaded.history[0]):
        again = config_from_snapshot(holder.config_json, holder.config_type)
        assert type(again) is type(config)
        if config is not None:
            assert again is not None and again.to_json() == config.to_json()


def test_model_methods() -> None:
    job = _job(task_id=TASK, history=[_run(0, ok=True)])
    assert JobSnapshot.model_validate(job) is job
    assert JobSnapshot.model_validate(job.model_dump(mode="json")) == job
    python = job.model_dump()
    assert python["task_id"] == TASK and python["history"][0]["kind"] == "result"
    assert json.loads(job.model_dump_json()) == snapshot_to_dict(job)
    assert JobResultSnapshot.model_validate({"data": {"c": {"0": 1}}}).data == {"c": {"0": 1}}
    with pytest.raises(ValueError, match=r"(?s)<memory>: not a valid snapshot.*@ \$\.kind$"):
        JobResultSnapshot.model_validate({"kind": "error"})
    with pytest.raises(ValueError, match="not valid JSON"):
        JobSnapshot.model_validate_json("{")


# --- UNKNOWN and the official SDK -------------------------------------------------------------


def test_to_official_compatible() -> None:
    with_task = _job(state=JobState.UNKNOWN, task_id=TASK)
    without_task = _job(state=JobState.UNKNOWN)
    assert with_task.to_official_compatible().state is JobState.SUBMITTED
    assert without_task.to_official_compatible().state is JobState.CREATED
    assert with_task.state is JobState.UNKNOWN  # a copy
    for state in set(JobState) - {JobState.UNKNOWN}:
        assert _job(state=state, task_id=TASK).to_official_compatible().state is state
    composite = CompositeJobSnapshot(jobs=[with_task, without_task, _job(state="RUNNING")])
    states = [job.state for job in composite.to_official_compatible().jobs]
    assert states == [JobState.SUBMITTED, JobState.CREATED, JobState.RUNNING]


def test_compatible_save_writes_no_unknown(tmp_path: Path) -> None:
    composite = CompositeJobSnapshot(jobs=[_job(state="UNKNOWN", task_id=TASK), _job()])
    path = tmp_path / "c.json"
    save_snapshot(composite, path, compatible=True)
    assert [job["state"] for job in json.loads(path.read_text())["jobs"]] == [
        "SUBMITTED",
        "CREATED",
    ]
    save_snapshot(composite, path)
    assert json.loads(path.read_text())["jobs"][0]["state"] == "UNKNOWN"
    assert snapshot_to_dict(composite, compatible=True)["jobs"][0]["state"] == "SUBMITTED"


# --- atomic save ------------------------------------------------------------------------------


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "snap.json"
    save_snapshot(_job(tag="old"), path)
    return path


def _assert_untouched(path: Path) -> None:
    loaded = load_snapshot(path)
    assert isinstance(loaded, JobSnapshot) and loaded.tag == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("target", ["replace", "fsync", "encode"])
def test_failed_save_leaves_the_old_file(
    old_file: Path, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk on fire")

    if target == "replace":
        monkeypatch.setattr(snapshot_module.os, "replace", boom)
    elif target == "fsync":
        monkeypatch.setattr(snapshot_module.os, "fsync", boom)
    else:
        monkeypatch.setattr(snapshot_module.json, "dumps", boom)
    with pytest.raises(OSError, match="disk on fire"):
        save_snapshot(_job(tag="new"), old_file)
    monkeypatch.undo()
    _assert_untouched(old_file)


def test_interrupted_write_leaves_the_old_file(
    old_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fdopen = os.fdopen

    class Interrupted(BaseException):
        pass

    def half_writing_fdopen(fd: int, mode: str) -> Any:
        handle: Any = real_fdopen(fd, mode)

        def write(data: bytes) -> int:
            handle.raw.write(data[: len(data) // 2])  # a partial write, then the crash
            raise Interrupted

        handle.write = write
        return handle

    monkeypatch.setattr(snapshot_module.os, "fdopen", half_writing_fdopen)
    with pytest.raises(Interrupted):
        save_snapshot(_job(tag="new"), old_file)
    monkeypatch.undo()
    _assert_untouched(old_file)


def test_save_rejects_other_objects(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="JobSnapshot or CompositeJobSnapshot, not dict"):
        save_snapshot({"program": "p"}, tmp_path / "x.json")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_save_keeps_permissions(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    old_umask = os.umask(0o022)
    try:
        save_snapshot(_job(), path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # like a plain write, not mkstemp's 0600
    path.chmod(0o600)
    save_snapshot(_job(tag="again"), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_save_writes_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    save_snapshot(_job(tag="old"), real)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    save_snapshot(_job(tag="new"), link)
    assert link.is_symlink()
    loaded = load_snapshot(real)
    assert isinstance(loaded, JobSnapshot) and loaded.tag == "new"


# --- load errors ------------------------------------------------------------------------------


def _write(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "in.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return path


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_snapshot(tmp_path / "nope.json")


def test_load_invalid_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, '{\n  "schema_version": "1",\n  "program": oops\n}')
    with pytest.raises(ValueError, match=r"in\.json: not valid JSON: .* line 3, column 14"):
        load_snapshot(path)


def test_load_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b'{"program": "\xff"}')
    with pytest.raises(ValueError, match=r"in\.json: not valid JSON"):
        load_snapshot(path)


@pytest.mark.parametrize("content", [[], "a string", 3, None])
def test_load_top_level_must_be_an_object(tmp_path: Path, content: Any) -> None:
    path = _write(tmp_path, json.dumps(content))
    with pytest.raises(ValueError, match=r"in\.json: a snapshot must be a JSON object"):
        load_snapshot(path)


@pytest.mark.parametrize("version", ["2", "0", 1, None, "missing"])
def test_load_unknown_schema_version(tmp_path: Path, version: Any) -> None:
    data = snapshot_to_dict(_job())
    if version == "missing":
        del data["schema_version"]
        version = None
    else:
        data["schema_version"] = version
    with pytest.raises(ValueError, match=r"in\.json: unsupported snapshot schema_version") as info:
        load_snapshot(_write(tmp_path, data))
    assert repr(version) in str(info.value) and "reads '1'" in str(info.value)


def test_migration_table_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    def from_v0(raw: dict[str, Any]) -> dict[str, Any]:
        raw = dict(raw, schema_version="1")
        raw["program"] = raw.pop("source")
        return raw

    monkeypatch.setitem(snapshot_module._MIGRATIONS, "0", from_v0)
    data = {"schema_version": "0", "snapshot_kind": "job", "source": "p", "qpu_id": "q"}
    loaded = snapshot_from_dict(data)
    assert isinstance(loaded, JobSnapshot) and loaded.program == "p"

    monkeypatch.setitem(snapshot_module._MIGRATIONS, "9", lambda raw: raw)  # never advances
    with pytest.raises(ValueError, match=r"unsupported snapshot schema_version '9'.*'1', '0'"):
        snapshot_from_dict(dict(data, schema_version="9"))


@pytest.mark.parametrize("kind", ["jobs", None, 3, "missing"])
def test_load_unknown_snapshot_kind(tmp_path: Path, kind: Any) -> None:
    data = snapshot_to_dict(_job())
    if kind == "missing":
        del data["snapshot_kind"]
        kind = None
    else:
        data["snapshot_kind"] = kind
    with pytest.raises(ValueError, match=r"in\.json: unrecognised snapshot_kind") as info:
        load_snapshot(_write(tmp_path, data))
    assert repr(kind) in str(info.value)


def _composite_dict() -> dict[str, Any]:
    return snapshot_to_dict(_composite())


_DELETE = object()
_APPEND = object()
# (keys to the value to change, the new value, the expected message, the reported path)
LOAD_ERRORS = [
    (("jobs", 3, "task_id"), "x-1", r'expected a UUID, got string "x-1"', "$.jobs[3].task_id"),
    (("jobs", 0, "program"), _DELETE, "required field missing", "$.jobs[0].program"),
    (("jobs", 1, "qpu_id"), 7, "expected a string, got integer 7", "$.jobs[1].qpu_id"),
    (("jobs", 1, "state"), "EXPIRED", r"one of CREATED, .*UNKNOWN, got string", "$.jobs[1].state"),
    (("jobs", 2, "raise_on_error"), "yes", "expected true or false", "$.jobs[2].raise_on_error"),
    (("jobs", 2, "metadata"), [1], "expected an object, got array", "$.jobs[2].metadata"),
    (
        ("jobs", 2, "config_type"),
        "Qasm",
        r'"EradoConfig", got string "Qasm"',
        "$.jobs[2].config_type",
    ),
    (("jobs", 2, "snapshot_kind"), "composite", r'expected "job", got', "$.jobs[2].snapshot_kind"),
    (("jobs", 2, "history"), {}, "expected an array, got object", "$.jobs[2].history"),
    (("jobs", 0, "history", 1, "kind"), "warn", r'"kind" to be .*string', "$.jobs[0].history[1]"),
    (
        ("jobs", 0, "history", 1, "kind"),
        _DELETE,
        r'"kind" to be .*got null',
        "$.jobs[0].history[1]",
    ),
    (
        ("jobs", 0, "history"),
        _APPEND,
        r'expected an object, got string "run"',
        "$.jobs[0].history[3]",
    ),
    (("jobs", 0, "history", 0, "received"), "soon", "ISO 8601", "$.jobs[0].history[0].received"),
    (("jobs", 0, "history", 2, "data"), [], "expected an object", "$.jobs[0].history[2].data"),
    (
        ("jobs", 1, "history", 0, "error_code"),
        "5",
        "an integer, got string",
        "$.jobs[1].history[0].error_code",
    ),
    (
        ("jobs", 1, "history", 0, "error_code"),
        True,
        "an integer, got true",
        "$.jobs[1].history[0].error_code",
    ),
    (
        ("jobs", 1, "history", 0, "task_id"),
        5,
        "a UUID string, got integer",
        "$.jobs[1].history[0].task_id",
    ),
    (("jobs", 0, "result"), {"kind": "error"}, r'expected "result", got', "$.jobs[0].result.kind"),
    (("jobs", 0, "error"), "boom", r'expected an object, got string "boom"', "$.jobs[0].error"),
    (("jobs",), {"0": {}}, "expected an array, got object", "$.jobs"),
]


@pytest.mark.parametrize(
    ("keys", "value", "message", "path"),
    [pytest.param(*case, id=case[-1]) for case in LOAD_ERRORS],
)
def test_load_validation_errors_name_file_and_field_path(
    tmp_path: Path, keys: tuple[Any, ...], value: Any, message: str, path: str
) -> None:
    data: Any = _composite_dict()
    parent = data
    for key in keys[:-1]:
        parent = parent[key]
    if value is _DELETE:
        del parent[keys[-1]]
    elif value is _APPEND:
        parent[keys[-1]].append("run")
    else:
        parent[keys[-1]] = value
    with pytest.raises(ValueError, match=r"in\.json: not a valid snapshot:\n  - ") as info:
        load_snapshot(_write(tmp_path, data))
    problems = str(info.value).splitlines()[1:]
    assert len(problems) == 1, problems
    assert problems[0].endswith(f" @ {path}"), problems[0]
    assert info.match(message)


def test_every_faulty_field_is_listed(tmp_path: Path) -> None:
    data = _composite_dict()
    data["jobs"][0]["task_id"] = "x"
    data["jobs"][4]["fetch_diagnostics"] = None
    with pytest.raises(ValueError) as info:
        load_snapshot(_write(tmp_path, data))
    lines = str(info.value).splitlines()[1:]
    assert len(lines) == 2
    assert lines[0].endswith("@ $.jobs[0].task_id")
    assert lines[1].endswith("@ $.jobs[4].fetch_diagnostics")


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    composite = _composite()
    data = snapshot_to_dict(composite)
    data["written_by"] = "oqc-trio 9.0"
    data["jobs"][0]["priority"] = 3
    data["jobs"][0]["history"][0]["shots_used"] = 1000
    data["jobs"][1]["result"] = data["jobs"][1]["result"] or {"kind": "result"}
    data["jobs"][1]["result"]["extra"] = {"nested": True}
    loaded = load_snapshot(_write(tmp_path, data))
    assert loaded.jobs[0] == composite.jobs[0]  # type: ignore[union-attr]


def test_minimal_official_style_document_loads() -> None:
    loaded = snapshot_from_dict(
        {"schema_version": "1", "snapshot_kind": "job", "program": "p", "qpu_id": "q"},
        source="mini",
    )
    assert loaded == JobSnapshot(program="p", qpu_id="q")
    loaded = snapshot_from_dict({"schema_version": "1", "snapshot_kind": "composite"})
    assert loaded == CompositeJobSnapshot()


def test_source_defaults_to_memory() -> None:
    with pytest.raises(ValueError, match=r"^<memory>: a snapshot must be a JSON object"):
        snapshot_from_dict([])
    with pytest.raises(ValueError, match=r"^here: unrecognised"):
        snapshot_from_dict({"schema_version": "1"}, source="here")


def test_to_dict_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="not JobResultSnapshot"):
        snapshot_to_dict(JobResultSnapshot())  # type: ignore[arg-type]
