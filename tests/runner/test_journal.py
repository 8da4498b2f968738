"""The journal: atomic segments, compaction, reading while written, locking, mismatch."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from runner_support import BELL, QPU_A, QPU_B, RX

from oqc_trio.runner import journal as journal_module
from oqc_trio.runner.expand import ExpandedBatch, expand_text
from oqc_trio.runner.journal import (
    Attempt,
    Journal,
    JournalError,
    JournalLocked,
    JournalMismatch,
    journal_dir,
    lock_holder,
    read_journal,
)

SERVER = {"url": "emulator", "embedded": True}


def _batch(points: int = 4) -> ExpandedBatch:
    return expand_text(
        f'[[jobs]]\nqpu = "{QPU_A}"\nprogram = """{RX}"""\n'
        f"params.theta = {{start = 0, stop = 1, num = {points}}}\n",
        "b.toml",
    )


async def test_records_survive_a_reopen(tmp_path: Path) -> None:
    batch = _batch()
    journal = Journal.open(tmp_path, batch, SERVER)
    first = journal.reserve(0, "11111111-1111-1111-1111-111111111111", QPU_A)
    journal.submitted(first)
    journal.ended(first, "FAILED", code=500, message="boom")
    second = journal.reserve(0, "22222222-2222-2222-2222-222222222222", QPU_A)
    journal.ended(second, "COMPLETED", data={"c": {"0": 10}})
    third = journal.reserve(1, "33333333-3333-3333-3333-333333333333", QPU_A)
    journal.cancel_requested(third)
    await journal.flush()
    # Read-only view while the writer still holds the lock (segments, no state.json yet).
    state = read_journal(tmp_path)
    assert [a.state for a in state.attempts[0]] == ["FAILED", "COMPLETED"]
    assert state.attempts[0][0].code == 500 and state.attempts[0][1].data == {"c": {"0": 10}}
    assert state.attempts[1][0].cancel and state.attempts[1][0].state == "reserved"
    assert state.counts() == {"COMPLETED": 1, "reserved": 1, "pending": 2}
    assert [a.id for a in state.in_flight()] == [third.id]
    journal.close()

    again = Journal.open(tmp_path, batch, SERVER)
    try:
        assert [a.state for a in again.state.attempts[0]] == ["FAILED", "COMPLETED"]
        assert again.reserve(2, None, QPU_A).n == 1
        assert again.reserve(0, "44444444-4444-4444-4444-444444444444", QPU_A).n == 3
    finally:
        again.close()


def test_batch_json_holds_the_jobs_by_field_and_reads_them_back(tmp_path: Path) -> None:
    batch = expand_text(
        f'[[jobs]]\nname = "a"\nqpu = ["{QPU_A}", "{QPU_B}"]\nshots = [10, 20]\ntag = "t"\n'
        f'program = """{RX}"""\nparams.theta = [0.5, "x", 2]\n'
        f'[[jobs]]\nname = "b"\nqpu = "{QPU_A}"\nprogram = """{BELL}"""\n',
        "b.toml",
    )
    Journal.open(tmp_path, batch, SERVER).close()
    stored = json.loads((journal_dir(tmp_path) / "batch.json").read_text())
    assert stored["version"] == 2
    assert set(stored["jobs"]) == {f.name for f in attrs.fields(type(batch.jobs[0]))} - {"index"}
    assert read_journal(tmp_path).jobs == batch.jobs


def test_a_version_1_journal_is_still_read(tmp_path: Path) -> None:
    batch = _batch()
    journal = Journal.open(tmp_path, batch, SERVER)
    journal.reserve(1, "11111111-1111-1111-1111-111111111111", QPU_A)
    journal.close()
    path = journal_dir(tmp_path) / "batch.json"
    stored = json.loads(path.read_text())
    stored["version"] = 1
    stored["jobs"] = [attrs.asdict(job) for job in batch.jobs]  # one object per job
    path.write_text(json.dumps(stored))
    state = read_journal(tmp_path)
    assert state.jobs == batch.jobs
    assert [a.id for a in state.attempts[1]] == ["11111111-1111-1111-1111-111111111111"]
    stored["version"] = 3
    path.write_text(json.dumps(stored))
    with pytest.raises(JournalError, match="version 1 or 2"):
        read_journal(tmp_path)


async def test_unflushed_records_are_lost_but_nothing_else(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, _batch(), SERVER)
    journal.reserve(0, "11111111-1111-1111-1111-111111111111", QPU_A)
    await journal.flush()
    journal.reserve(1, "22222222-2222-2222-2222-222222222222", QPU_A)  # never flushed
    # A crash: the lock goes with the process, nothing else is written.
    import os

    os.close(journal._lock_fd)
    state = read_journal(tmp_path)
    assert state.counts() == {"reserved": 1, "pending": 3}


async def test_compaction_folds_segments_and_readers_keep_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "_COMPACT_SEGMENTS", 5)
    batch = _batch(points=40)
    journal = Journal.open(tmp_path, batch, SERVER)
    for index in range(40):
        attempt = journal.reserve(index, f"{index:08d}-0000-0000-0000-000000000000", QPU_A)
        journal.ended(attempt, "COMPLETED", data={"c": {"0": index}})
        await journal.flush()
        state = read_journal(tmp_path)
        assert state.counts().get("COMPLETED") == index + 1
    directory = journal_dir(tmp_path)
    segments = list(directory.glob("seg-*"))
    state_file = directory / "state.json"
    assert json.loads(state_file.read_text())["through"] >= 5
    # Not due yet: fewer than 5 segments, or fewer bytes in them than in state.json.
    assert len(segments) < 5 or sum(s.stat().st_size for s in segments) < state_file.stat().st_size
    journal.close()
    assert [a[0].data for a in read_journal(tmp_path).attempts] == [
        {"c": {"0": i}} for i in range(40)
    ]


async def test_compactions_stay_linear_in_a_long_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each compaction rewrites every attempt: a fixed trigger (every 5 segments here) would
    # rewrite the state 60 times over 300 flushes, O(jobs²) bytes in all.
    monkeypatch.setattr(journal_module, "_COMPACT_SEGMENTS", 5)
    jobs = 300
    journal = Journal.open(tmp_path, _batch(points=jobs), SERVER)
    written: list[int] = []
    compact = journal._compact

    def counting(document: dict) -> None:
        compact(document)
        written.append(journal._state_bytes)

    monkeypatch.setattr(journal, "_compact", counting)
    for index in range(jobs):
        attempt = journal.reserve(index, f"{index:08d}-0000-0000-0000-000000000000", QPU_A)
        journal.ended(attempt, "COMPLETED", data={"c": {"0": index}})
        await journal.flush()
    journal.close()
    assert 3 <= len(written) <= 12
    assert sum(written) <= 4 * written[-1]
    state = read_journal(tmp_path)
    assert [a[0].data for a in state.attempts] == [{"c": {"0": i}} for i in range(jobs)]


async def test_stale_segments_and_temp_files_are_ignored(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, _batch(), SERVER)
    journal.reserve(0, "11111111-1111-1111-1111-111111111111", QPU_A)
    await journal.flush()
    document = journal.state.state_document() | {"through": 1}
    journal._compact(document)  # state.json through segment 1
    journal.close()
    directory = journal_dir(tmp_path)
    # A compaction that crashed before deleting its segments, and a half-written temp file.
    (directory / "seg-00000001.jsonl").write_text('{"r":"a","j":0,"n":1,"id":"x","q":"q","t":0}\n')
    (directory / ".seg-00000002.jsonl.abcd.tmp").write_text('{"r":"a","j":1')
    state = read_journal(tmp_path)
    assert len(state.attempts[0]) == 1 and state.counts()["pending"] == 3
    Journal.open(tmp_path, _batch(), SERVER).close()
    assert not list(directory.glob(".*.tmp"))


def test_lock_mismatch_and_fresh(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, _batch(), SERVER)
    try:
        journal.reserve(0, "11111111-1111-1111-1111-111111111111", QPU_A)
        assert lock_holder(tmp_path) is not None
        with pytest.raises(JournalLocked):
            Journal.open(tmp_path, _batch(), SERVER)
    finally:
        journal.close()
    assert lock_holder(tmp_path) is None
    with pytest.raises(JournalMismatch, match="use --fresh"):
        Journal.open(tmp_path, _batch(points=5), SERVER)
    Journal.open(tmp_path, _batch(points=5), SERVER, fresh=True).close()
    assert len(read_journal(tmp_path).jobs) == 5


def test_a_journal_that_never_reserved_an_id_gives_way_to_another_batch(
    tmp_path: Path,
) -> None:
    Journal.open(tmp_path, _batch(), SERVER).close()
    Journal.open(tmp_path, _batch(points=5), SERVER).close()
    assert len(read_journal(tmp_path).jobs) == 5


def test_reading_a_directory_without_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="holds no oqc-run journal"):
        read_journal(tmp_path)


async def test_flush_is_shielded_from_cancellation(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, _batch(), SERVER)
    journal.reserve(0, "11111111-1111-1111-1111-111111111111", QPU_A)
    with trio.CancelScope() as scope:
        scope.cancel()
        await journal.flush()
    assert read_journal(tmp_path).counts()["reserved"] == 1
    journal.close()


_text = st.text(max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_ending = st.one_of(
    st.tuples(
        st.just("COMPLETED"), st.dictionaries(_text, _json, max_size=3), st.none(), st.none()
    ),
    st.tuples(
        st.just("FAILED"), st.none(), st.none() | st.integers(-(2**40), 2**40), st.none() | _text
    ),
    st.tuples(st.just("CANCELLED"), st.none(), st.none(), st.none()),
)
_operation = st.tuples(
    st.integers(0, 3),
    st.none() | _text,
    _text,
    st.booleans(),
    st.booleans(),
    st.none() | _ending,
)


@settings(max_examples=60, deadline=None)
@given(operations=st.lists(_operation, max_size=8))
def test_records_round_trip(tmp_path_factory: pytest.TempPathFactory, operations: list) -> None:
    """Whatever IDs, QPU names, results and messages hold, the records read back the same."""
    out = tmp_path_factory.mktemp("journal")
    journal = Journal.open(out, _batch(), SERVER)
    try:
        journal.run_started(jobs=4, note='"quoted"\n')
        for job, task_id, qpu, submitted, cancel, ending in operations:
            attempt = journal.reserve(job, task_id, qpu)
            if submitted:
                journal.submitted(attempt)
            if cancel:
                journal.cancel_requested(attempt)
            if ending is not None:
                state, data, code, message = ending
                journal.ended(attempt, state, data=data, code=code, message=message)
        trio.run(journal.flush)
        for segment in journal_dir(out).glob("seg-*.jsonl"):
            lines = segment.read_bytes().split(b"\n")
            assert lines.pop() == b""
            assert all(isinstance(json.loads(line), dict) for line in lines)
        expected = [[_fields(a) for a in per_job] for per_job in journal.state.attempts]
        assert [[_fields(a) for a in per_job] for per_job in read_journal(out).attempts] == (
            expected
        )
        assert read_journal(out).runs == journal.state.runs
    finally:
        journal.close()


def _fields(attempt: Attempt) -> tuple:
    fields = [getattr(attempt, f.name) for f in attrs.fields(Attempt) if f.name != "ended"]
    return (*fields, attempt.ended is not None)
