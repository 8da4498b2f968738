"""Outputs built from a journal: the snapshot is the canonical official form, CSV and HDF5
hold the counts with the sweep, the summary counts attempts."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runner_support import QPU_A, QPU_B, RX

from oqc_trio.client import OqcSdk
from oqc_trio.job import JobState
from oqc_trio.job_snapshot import snapshot_from_dict, snapshot_to_dict
from oqc_trio.runner.expand import LogicalJob, expand_text
from oqc_trio.runner.journal import Attempt, Journal, JournalState
from oqc_trio.runner.results import (
    _CsvLines,
    _received,
    _received_json,
    build_datagroup,
    csv_text,
    snapshot_document,
    snapshot_text,
    summary_rows,
)


@pytest.fixture
def state(tmp_path: Path) -> JournalState:
    """Four jobs: completed; failed then completed; failed for good; reserved."""
    batch = expand_text(
        f'[defaults]\nqpu = ["{QPU_A}", "{QPU_B}"]\ntag = "t"\n'
        f'[[jobs]]\nname = "rx"\nprogram = """{RX}"""\nparams.theta = [0.5, 1.5]\n',
        "b.toml",
    )
    journal = Journal.open(tmp_path, batch, {"url": "emulator", "embedded": True})
    ids = iter(f"{n:08d}-0000-4000-8000-000000000000" for n in range(10))
    a = journal.reserve(0, next(ids), QPU_A)
    journal.ended(a, "COMPLETED", data={"c": {"0": 7, "1": 3}})
    b = journal.reserve(1, next(ids), QPU_A)
    journal.ended(b, "FAILED", code=500, message="flaky")
    b2 = journal.reserve(1, next(ids), QPU_A)
    journal.ended(b2, "COMPLETED", data={"c": {"1": 10}})
    c = journal.reserve(2, next(ids), QPU_B)
    journal.ended(c, "FAILED", code=1001, message="parse error\nat line 3")
    d = journal.reserve(3, next(ids), QPU_B)
    journal.submitted(d)
    journal.close()
    return journal.state


def test_the_snapshot_is_the_canonical_official_form(state: JournalState) -> None:
    document = snapshot_document(state)
    canonical = snapshot_to_dict(snapshot_from_dict(document), compatible=True)
    assert json.loads(json.dumps(canonical)) == document
    assert json.loads(snapshot_text(state)) == document
    assert snapshot_text(state) == json.dumps(document)


def test_the_snapshot_loads_into_jobs(state: JournalState, tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(snapshot_text(state))
    composite = OqcSdk("http://127.0.0.1:1").load(path)
    states = [job.state for job in composite.jobs]
    assert states == [JobState.COMPLETED, JobState.COMPLETED, JobState.FAILED, JobState.SUBMITTED]
    retried = composite.jobs[1]
    assert [type(o).__name__ for o in retried.history] == ["JobError", "JobResult"]
    assert retried.result.data == {"c": {"1": 10}}
    assert composite.jobs[2].error.error_code == 1001
    assert composite.jobs[0].tag == "t" and composite.jobs[0].config.repeats == 1000


def test_csv_has_one_row_per_register_and_bitstring(state: JournalState) -> None:
    lines = csv_text(state).splitlines()
    assert lines[0] == "job,entry,program,qpu,shots,theta,register,bitstring,count"
    assert lines[1:] == [
        f"rx/qpu={QPU_A}/theta=0.5,rx,inline,{QPU_A},1000,0.5,c,0,7",
        f"rx/qpu={QPU_A}/theta=0.5,rx,inline,{QPU_A},1000,0.5,c,1,3",
        f"rx/qpu={QPU_A}/theta=1.5,rx,inline,{QPU_A},1000,1.5,c,1,10",
    ]


def test_datagroup_has_the_sweep_as_coordinates(state: JournalState) -> None:
    group = build_datagroup(state)
    counts = group["c"]
    assert counts.dims == ("job", "bit")
    assert counts.coords["theta"].values.tolist() == [0.5, 1.5]
    assert list(counts.coords["bitstring"].values) == ["0", "1"]
    assert counts.values.tolist() == [[7, 3], [0, 10]]
    assert group["qpus"].values[counts.coords["qpu"].values[0]] == QPU_A


def test_summary_counts_jobs_and_retries(state: JournalState) -> None:
    total = summary_rows(state)[-1]
    assert total == {
        "entry": "total",
        "jobs": 4,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
        "unfinished": 1,
        "shots": 2000,
        "retries": 1,
    }


_field = st.text(alphabet=st.sampled_from('ab,"\r\n \t\x85é'), max_size=6)


@settings(max_examples=150, deadline=None)
@given(
    key=_field,
    params=st.lists(
        st.one_of(_field, st.floats(), st.integers(), st.booleans(), st.none()), max_size=2
    ),
    data=st.dictionaries(_field, st.dictionaries(_field, st.integers(0, 99), max_size=3)),
)
def test_csv_lines_are_what_csv_writer_writes(key: str, params: list, data: dict) -> None:
    names = [f"p{i}" for i in range(len(params))]
    job = LogicalJob(
        index=0,
        key=key,
        entry="e",
        program="p",
        source=key[::-1],
        qpu="q",
        shots=10,
        config=0,
        tag=None,
        sweep=dict(zip(names, params, strict=True)),
    )
    attempt = Attempt(0, 1, "id", "q", state="COMPLETED", data=data)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for register, counts in data.items():
        for bitstring, count in sorted(counts.items()):
            writer.writerow([key, "e", key[::-1], "q", 10, *params, register, bitstring, count])
    assert _CsvLines(names).lines(job, attempt) == buffer.getvalue()


def test_plain_csv_fields_are_joined_without_csv_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    formatter = _CsvLines(["theta", "name"])
    job = LogicalJob(
        index=0,
        key="rx/theta=0.5",
        entry="rx",
        program="p",
        source="inline",
        qpu="q",
        shots=10,
        config=0,
        tag=None,
        sweep={"theta": 0.5, "name": "a b"},
    )
    attempt = Attempt(0, 1, "id", "q", state="COMPLETED", data={"c": {"1": 2, "0": 1}})
    for value in ("c", "0", "1"):  # registers and bitstrings are quoted once, by csv.writer
        formatter._quote(value)

    def refuse(fields: list) -> str:
        raise AssertionError(f"csv.writer used for {fields}")

    monkeypatch.setattr(formatter, "_row", refuse)
    expected = (
        "rx/theta=0.5,rx,inline,q,10,0.5,a b,c,0,1\nrx/theta=0.5,rx,inline,q,10,0.5,a b,c,1,2\n"
    )
    assert formatter.lines(job, attempt) == expected


@settings(max_examples=300, deadline=None)
@given(
    ended=st.one_of(
        st.floats(min_value=0, max_value=4e9, allow_nan=False),
        st.integers(0, 4_000_000_000).map(lambda s: s + 0.9999995),  # carries to the next second
        st.integers(0, 4_000_000_000).map(lambda s: s + 0.0000005),  # near a half microsecond
        st.integers(0, 4_000_000_000),
        st.none(),
    )
)
def test_received_json_is_the_encoded_timestamp(ended: float | None) -> None:
    attempt = Attempt(0, 1, "id", "q", state="COMPLETED", ended=ended)
    assert _received_json(ended, _SECONDS) == json.dumps(_received(attempt))


_SECONDS: dict[float, str] = {}  # shared by the examples, as by the jobs of a snapshot


def test_a_plot_says_which_completed_jobs_it_leaves_out(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from oqc_trio.runner.plots import plot_counts

    batch = expand_text(
        f'[defaults]\nqpu = "{QPU_A}"\n[[jobs]]\nname = "rx"\nprogram = """{RX}"""\n'
        "params.theta = [0.5, 1.5, 2.5]\n",
        "b.toml",
    )
    journal = Journal.open(tmp_path / "out", batch, {"url": "emulator", "embedded": True})
    for job, data in zip(batch.jobs, [{"c": {"0": 3}}, {"c": {"1": 3}}, {"b": {"1": 3}}]):
        attempt = journal.reserve(job.index, f"{job.index:08d}-0000-4000-8000-000000000000", QPU_A)
        journal.ended(attempt, "COMPLETED", data=data)
    journal.close()
    what = plot_counts(journal.state, tmp_path / "p.png")
    assert what.endswith("; 1 completed job(s) without counts in register 'c' not drawn")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
