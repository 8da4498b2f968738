"""The command line through ``main(argv)``, against an emulator serving in a thread."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from runner_support import (
    BELL,
    QPU_A,
    QPU_B,
    TOKEN,
    emulator_config,
    emulator_in_thread,
    journal_task_ids,
    sweep_batch,
)

from oqc_trio.client import OqcSdk
from oqc_trio.emulator.faults import FaultPlan, FaultRule
from oqc_trio.emulator.server import RunningEmulator
from oqc_trio.runner.cli import main
from oqc_trio.runner.journal import Journal, iter_attempts, lock_holder, read_journal


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with emulator_in_thread() as emu:
        yield emu


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[RunningEmulator]:
    """0.2 s per task, one worker per QPU: tasks queue."""
    with emulator_in_thread(emulator_config(execution_time_s=0.2)) as emu:
        yield emu


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_status_results_and_rerun(
    emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = sweep_batch(
        workdir / "b.toml",
        emulator.url,
        points=5,
        output='dir = "out"\nformats = ["snapshot", "csv", "hdf5"]',
    )
    assert main([str(batch), "--events", "ev.jsonl"]) == 0
    out = capsys.readouterr().out
    assert "all jobs completed (exit status 0)" in out
    assert "│ rx    │   10 │        10 │" in out

    events = _events(workdir / "ev.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.count("reserved") == kinds.count("completed") == 10

    assert main(["status", "out", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["states"] == {"COMPLETED": 10}
    assert status["running"] is False and status["runs"] == 1

    assert main(["results", "out", "--csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert {r["qpu"] for r in rows} == {QPU_A, QPU_B}
    assert sorted({float(r["theta"]) for r in rows}) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert (workdir / "out" / "counts.csv").read_text().splitlines()[1:] == [
        ",".join(r.values()) for r in rows
    ]

    assert main(["results", "out", "--json"]) == 0
    snapshot = json.loads(capsys.readouterr().out)
    assert snapshot["snapshot_kind"] == "composite" and len(snapshot["jobs"]) == 10

    loaded = OqcSdk(emulator.url).load(workdir / "out" / "results.json")
    assert [job.result.data["c"] for job in loaded.jobs] == [{"0": 10}] * 10

    import scipp as sc

    counts = sc.io.load_hdf5(workdir / "out" / "counts.h5")["c"]
    assert counts.dims == ("job", "bit") and counts.sizes["job"] == 10
    assert list(counts.coords["theta"].values[:5]) == [0.0, 0.25, 0.5, 0.75, 1.0]

    # A second run has nothing to do: no request reaches the server.
    before = emulator.state.counters()["total_requests"]
    assert main([str(batch), "-q"]) == 0
    assert emulator.state.counters()["total_requests"] == before
    assert read_journal(workdir / "out").runs[-1]["jobs"] == 10  # the offline run adds none


def test_fresh_starts_over_and_another_batch_is_refused(
    emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = sweep_batch(workdir / "b.toml", emulator.url, points=2)
    assert main([str(batch), "-q"]) == 0
    first = set(journal_task_ids(workdir / "out"))
    sweep_batch(workdir / "b.toml", emulator.url, points=3)
    assert main([str(batch), "-q"]) == 2
    assert "holds the journal of another batch" in capsys.readouterr().err
    assert main([str(batch), "-q", "--fresh"]) == 0
    second = set(journal_task_ids(workdir / "out"))
    assert len(second) == 6 and not first & second


def test_transient_failures_are_retried_as_new_attempts(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The server fails every task with code 1003 (an injected task error: a batch over the
    # QPU's shot limit would be refused before anything is sent).
    faults = FaultPlan(rules=(FaultRule(kind="task_error", error_code=1003, message="busy"),))
    with emulator_in_thread(attrs.evolve(emulator_config(), faults=faults)) as emu:
        batch = sweep_batch(
            workdir / "b.toml",
            emu.url,
            points=2,
            qpus=(QPU_A,),
            limits="retry_codes = [1003]\nmax_retries = 2",
        )
        assert main([str(batch), "--events", "ev.jsonl"]) == 1
        out = capsys.readouterr().out
        assert "failed: rx/theta=0.0: error 1003:" in out
        state = read_journal(workdir / "out")
        assert [[a.state for a in attempts] for attempts in state.attempts] == [["FAILED"] * 3] * 2
        assert all(len({a.id for a in attempts}) == 3 for attempts in state.attempts)
        kinds = [e["event"] for e in _events(workdir / "ev.jsonl")]
        assert kinds.count("retry") == 4 and kinds.count("failed") == 2
        # Failed for good: the next run neither retries nor contacts the server.
        before = emu.state.counters()["total_requests"]
        assert main([str(batch), "-q"]) == 1
        assert emu.state.counters()["total_requests"] == before


def test_max_in_flight_bounds_the_tasks_in_flight(emulator: RunningEmulator, workdir: Path) -> None:
    batch = sweep_batch(workdir / "b.toml", emulator.url, points=10, limits="max_in_flight = 3")
    assert main([str(batch), "-q", "--events", "ev.jsonl"]) == 0
    in_flight = peak = 0
    for event in _events(workdir / "ev.jsonl"):
        in_flight += {"reserved": 1, "completed": -1}.get(event["event"], 0)
        peak = max(peak, in_flight)
    assert peak <= 3


def test_deadline_leaves_tasks_running_and_resume_polls_them(
    slow_emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = sweep_batch(workdir / "b.toml", slow_emulator.url, points=8, limits="deadline = 0.6")
    assert main([str(batch)]) == 3
    assert "run the same command to resume" in capsys.readouterr().out
    state = read_journal(workdir / "out")
    assert state.in_flight() and not any(a.cancel for a in state.in_flight())
    submitted = {a.id for a in state.in_flight() if a.state == "submitted"}
    assert submitted
    sweep_batch(workdir / "b.toml", slow_emulator.url, points=8, limits="deadline = 60")
    # Different limits, same jobs: the same journal resumes.
    assert main([str(batch), "-q"]) == 0
    counters = slow_emulator.state.counters()
    assert all(counters["submissions"][task] == 1 for task in journal_task_ids(workdir / "out"))


def test_deadline_with_cancel_then_cancel_command(
    slow_emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = sweep_batch(
        workdir / "b.toml",
        slow_emulator.url,
        points=8,
        limits='deadline = 0.5\non_deadline = "cancel"',
    )
    assert main([str(batch), "-q"]) == 3
    state = read_journal(workdir / "out")
    # The server's word on each cancelled task is journaled: nothing is left in flight.
    asked = [a for a in iter_attempts(state) if a.cancel]
    assert asked and state.in_flight() == []
    pairs = [(a.state, slow_emulator.state.tasks[str(a.id)].status.value) for a in asked]
    assert all(journaled == remote for journaled, remote in pairs)
    assert ("CANCELLED", "CANCELLED") in pairs

    # Resume (no deadline): the cancelled tasks get new attempts.
    sweep_batch(workdir / "b.toml", slow_emulator.url, points=8)
    assert main([str(batch), "-q"]) == 0
    state = read_journal(workdir / "out")
    assert state.counts() == {"COMPLETED": 16}
    assert any(len(a) == 2 and a[0].state == "CANCELLED" for a in state.attempts)


def test_cancel_command_cancels_in_flight_tasks_in_one_request_per_qpu(
    slow_emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = sweep_batch(workdir / "b.toml", slow_emulator.url, points=8, limits="deadline = 0.5")
    assert main([str(batch), "-q"]) == 3
    before = slow_emulator.state.counters()["requests"].get("POST /tasks/cancel_many", 0)
    assert main(["cancel", "out"]) == 0
    assert "the next run resubmits them" in capsys.readouterr().out
    after = slow_emulator.state.counters()["requests"]["POST /tasks/cancel_many"]
    assert after - before == 2  # two QPUs
    state = read_journal(workdir / "out")
    assert all(a.cancel for a in state.in_flight())
    assert main(["cancel", "out"]) == 0  # idempotent: cancelling again is harmless


def test_status_sees_a_running_runner(
    emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from oqc_trio.runner.engine import server_meta
    from oqc_trio.runner.expand import load_and_expand

    batch = load_and_expand(sweep_batch(workdir / "b.toml", emulator.url, points=2))
    journal = Journal.open(workdir / "out", batch, server_meta(batch.spec.server))
    try:
        assert lock_holder(workdir / "out") is not None
        assert main(["status", "out"]) == 0
        assert "running (pid" in capsys.readouterr().out
        assert main([str(workdir / "b.toml")]) == 2
        assert "another oqc-run" in capsys.readouterr().err
    finally:
        journal.close()
    assert lock_holder(workdir / "out") is None


def test_plan(emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch = sweep_batch(workdir / "b.toml", emulator.url, points=50)
    before = emulator.state.counters()["requests"]
    assert main(["plan", str(batch)]) == 0
    out = capsys.readouterr().out
    assert "rx" in out and "100" in out and "checked against http://" in out
    after = emulator.state.counters()["requests"]
    for route in ("POST /tasks", "POST /tasks/submit"):
        assert after.get(route, 0) == before.get(route, 0)  # nothing submitted
    sweep_batch(workdir / "b.toml", emulator.url, points=2, shots=50_000)
    assert main(["plan", str(batch)]) == 2
    err = capsys.readouterr().err
    assert (
        "b.toml:" in err
        and "jobs[0].shots: 50,000 shots; qpu:uk:2:d865b5a184 allows at most 10,000" in err
    )


def test_plan_of_an_embedded_batch_needs_no_server(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("b.toml").write_text(f'[[jobs]]\nqpu = "{QPU_A}"\nprogram = """{BELL}"""\n')
    assert main(["plan", "b.toml"]) == 0
    assert "checked against the embedded emulator: 1 QPU(s) ok" in capsys.readouterr().out


def test_plain_progress_lines_when_not_a_terminal(
    slow_emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = sweep_batch(workdir / "b.toml", slow_emulator.url, points=3)
    assert main([str(batch), "--progress-interval", "0.2"]) == 0
    err = capsys.readouterr().err
    assert "done (completed" in err and "jobs/s" in err


def test_quiet_prints_nothing(
    emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = sweep_batch(workdir / "b.toml", emulator.url, points=2)
    assert main([str(batch), "-q", "--progress-interval", "0.01"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_results_plot_and_summary(
    emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    batch = sweep_batch(workdir / "b.toml", emulator.url, points=4)
    assert main([str(batch), "-q"]) == 0
    assert main(["results", "out", "--plot", "heat.png"]) == 0
    assert "heat map of register 'c' over theta (2 series)" in capsys.readouterr().out
    assert (workdir / "heat.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["results", "out"]) == 0
    assert "│ total │    8 │" in capsys.readouterr().out


def test_progress_shows_the_next_execution_window(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import datetime as dt

    from oqc_trio.emulator.config import Window

    start = dt.datetime(2031, 5, 6, 9, 0, tzinfo=dt.UTC)
    config = emulator_config(execution_time_s=0.2)
    qpus = (attrs.evolve(config.qpus[0], windows=(Window(start, start + dt.timedelta(hours=2)),)),)
    with emulator_in_thread(attrs.evolve(config, qpus=qpus)) as emu:
        # The QPU runs only in its window (in 2031): the tasks wait, the deadline passes.
        batch = sweep_batch(
            workdir / "b.toml", emu.url, points=3, qpus=(QPU_A,), limits="deadline = 1"
        )
        assert main([str(batch), "--progress-interval", "0.2"]) == 3
    assert f"next window {QPU_A} 2031-05-06 09:00 UTC" in capsys.readouterr().err


def test_reserved_ids_are_reconciled_by_id_never_resent_blindly(
    emulator: RunningEmulator, workdir: Path
) -> None:
    """A crash between journaling the IDs and noting the submission: one task reached the
    server, the other did not. The resume submits only the second, under its own ID."""
    import trio

    from oqc_trio import _wire
    from oqc_trio.job import Job
    from oqc_trio.runner.engine import server_meta
    from oqc_trio.runner.expand import load_and_expand

    batch = load_and_expand(sweep_batch(workdir / "b.toml", emulator.url, points=2, qpus=(QPU_A,)))

    async def reserve_and_submit_first() -> list[str]:
        async with OqcSdk(emulator.url, authentication_token=TOKEN) as sdk:
            runtime = sdk._runtime()
            base = runtime.task_base(QPU_A)
            response = await runtime.send(runtime.api.create_task_ids(QPU_A, base, 2))
            ids = _wire.parse_task_ids(response.json(), sdk.dialect, 2)
            job = Job(batch.jobs[0].program, QPU_A, batch.config_objects[0], _client=sdk)
            body = _wire.submit_body([_wire.with_task_id(job._encoded_task(), ids[0])])
            await runtime.send(runtime.api.submit(base, body))
            return list(ids)

    ids = trio.run(reserve_and_submit_first)
    journal = Journal.open(workdir / "out", batch, server_meta(batch.spec.server))
    journal.reserve(0, ids[0], QPU_A)
    journal.reserve(1, ids[1], QPU_A)
    journal.close()
    before = emulator.state.counters()["requests"].get("GET /tasks/{task_id}/status", 0)

    assert main([str(workdir / "b.toml"), "-q"]) == 0
    counters = emulator.state.counters()
    assert counters["submissions"][ids[0]] == 1 and counters["submissions"][ids[1]] == 1
    assert counters["requests"]["GET /tasks/{task_id}/status"] - before == 2  # reconciled
    state = read_journal(workdir / "out")
    assert [[(a.id, a.state) for a in attempts] for attempts in state.attempts] == [
        [(ids[0], "COMPLETED")],
        [(ids[1], "COMPLETED")],
    ]


def test_the_batch_file_says_where_the_server_is_on_every_run(
    emulator: RunningEmulator,
    slow_emulator: RunningEmulator,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The server is not part of the batch hash: moving it (a new port) resumes the journal
    against the new address, and ``status``/``cancel`` follow the latest run."""
    batch = sweep_batch(workdir / "b.toml", slow_emulator.url, points=2, limits="deadline = 0.3")
    assert main([str(batch), "-q"]) == 3
    sweep_batch(workdir / "b.toml", emulator.url, points=2, limits="deadline = 0.3")
    assert main(["status", "out", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["server"] == slow_emulator.url
    main([str(batch), "-q"])  # unknown tasks on this server: not resubmitted
    assert main(["status", "out", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["server"] == emulator.url
    submitted = set(emulator.state.counters()["submissions"])
    assert not submitted & set(journal_task_ids(workdir / "out"))


def test_the_summary_is_not_cut_at_80_columns_when_not_a_terminal(
    emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "rabi_oscillation_calibration_run_for_qubit_zero_of_the_2026_device"
    Path("b.toml").write_text(
        f'[server]\nurl = "{emulator.url}"\ntoken_env = "EMU_TOKEN"\n'
        f'[[jobs]]\nname = "{name}"\nqpu = "{QPU_A}"\n'
        'program = "OPENQASM 2.0; qreg q[1]; creg c[1]; measure q[0] -> c[0];"\n'
    )
    assert main(["b.toml"]) == 0
    out = capsys.readouterr().out
    assert f"│ {name} │" in out
    assert "…" not in out  # no header or cell cut short
