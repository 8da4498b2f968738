"""What a run that stops early reports: the outcomes of the tasks it cancelled, why it stopped,
and the ``start``/``end`` events.

- ``on_deadline``/``on_interrupt = "cancel"``: after its ``cancel_many`` the runner asks the
  server how each task ended and journals the answer (CANCELLED, or COMPLETED with the result
  when the task finished before the cancel arrived); the summary, ``status`` and the events
  count them; what it could not confirm stays in flight and is reported as such.
- The verdict of a stopped run says why it stopped (the deadline or an interrupt) and what
  the policy did.
- ``--events``: a re-run of a finished batch writes ``start`` and ``end``; the ``end`` event's
  ``retries`` is the number of ``retry`` events of that run.

Tasks are kept queued by the emulator's ``execution_time_s`` (one worker per QPU); nothing
asserts on wall-clock durations.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from runner_support import (
    QPU_A,
    EventWatcher,
    emulator_config,
    emulator_in_thread,
    start_cli,
    sweep_batch,
)

from oqc_trio.emulator.faults import FaultPlan, FaultRule
from oqc_trio.emulator.server import RunningEmulator
from oqc_trio.runner import engine as engine_module
from oqc_trio.runner.cli import main
from oqc_trio.runner.journal import iter_attempts, read_journal


@pytest.fixture
def queued_emulator() -> Iterator[RunningEmulator]:
    """5 s per task, one worker per QPU: the tasks of a short run stay queued."""
    with emulator_in_thread(emulator_config(execution_time_s=5.0)) as emu:
        yield emu


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _status(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["status", "out", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _total_row(out: str) -> list[str]:
    """The cells of the summary table's total row (columns as in ``_SUMMARY_COLUMNS``)."""
    line = next(line for line in out.splitlines() if re.search(r"\btotal\b", line))
    return [cell.strip() for cell in line.split("│")[1:-1]]


def _server_states(emu: RunningEmulator) -> dict[str, str]:
    return {task_id: task.status.value for task_id, task in emu.state.tasks.items()}


def test_deadline_cancel_journals_each_outcome_and_keeps_results_of_tasks_that_finished_first(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The cancel request is held 3 s by the server before it is carried out: tasks executed
    # meanwhile (0.3 s each) complete before the cancel arrives, the others are cancelled.
    delay = FaultRule(kind="delay", routes=("POST /tasks/cancel_many",), delay_s=3.0)
    config = attrs.evolve(emulator_config(execution_time_s=0.3), faults=FaultPlan(rules=(delay,)))
    with emulator_in_thread(config) as emu:
        batch = sweep_batch(
            workdir / "b.toml",
            emu.url,
            points=40,
            qpus=(QPU_A,),
            limits='deadline = 1\non_deadline = "cancel"\npoll_max_interval = 60',
        )
        assert main([str(batch), "--events", "ev.jsonl"]) == 3
        out = capsys.readouterr().out
        server = _server_states(emu)

    state = read_journal(workdir / "out")
    assert state.in_flight() == []  # every outcome was confirmed
    asked = [a for a in iter_attempts(state) if a.cancel]
    assert asked
    for attempt in asked:  # never CANCELLED without the server's word, results kept
        assert attempt.state == server[str(attempt.id)]
        if attempt.state == "COMPLETED":
            assert attempt.data == {"c": {"0": 10}}
    cancelled = sum(1 for a in asked if a.state == "CANCELLED")
    finished_first = sum(1 for a in asked if a.state == "COMPLETED")
    assert cancelled and finished_first
    counts = state.counts()
    assert counts["CANCELLED"] == cancelled and sum(counts.values()) == 40

    assert "interrupted" not in out
    assert (
        f'deadline reached (1 s) with jobs unfinished; on_deadline = "cancel": {cancelled} '
        f"task(s) cancelled, {finished_first} finished before the cancel arrived: run the "
        "same command to resume (exit status 3)"
    ) in " ".join(out.split())
    total = _total_row(out)
    assert total[:6] == ["total", "40", str(counts["COMPLETED"]), "0", str(cancelled), "0"]

    status = _status(capsys)
    assert status["states"] == counts and status["in_flight"] == 0
    assert status["last_stop"]["reason"] == "deadline"
    assert status["last_stop"]["policy"] == "cancel"
    assert status["last_stop"]["cancelled"] == cancelled
    assert main(["status", "out"]) == 0
    text = capsys.readouterr().out
    assert f"cancelled {cancelled}" in text and "tasks   0 in flight" in text
    assert "deadline reached (1 s)" in text

    events = _events(workdir / "ev.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert sum(e["tasks"] for e in events if e["event"] == "cancel_sent") == len(asked)
    assert kinds.count("cancelled") == cancelled
    end = events[-1]
    assert end["reason"] == "deadline" and end["cancelled"] == cancelled
    assert end["unfinished"] == 0 and end["finished_first"] == finished_first


def test_outcomes_not_confirmed_stay_in_flight_and_the_resume_counts_its_retries(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = engine_module.confirm_cancelled
    answered: set[Any] = set()

    async def confirm_half(jobs: Any, runtime: Any) -> None:
        # The server answers for half of the tasks only (the others: no word at all).
        if not answered:
            answered.update(list(jobs)[: len(jobs) // 2])
        await real([job for job in jobs if job in answered], runtime)

    monkeypatch.setattr(engine_module, "confirm_cancelled", confirm_half)
    monkeypatch.setattr(engine_module, "_CONFIRM_AGAIN_S", 0.5)
    # 1 s per task, one worker per QPU: at the deadline the tasks are queued or running.
    with emulator_in_thread(emulator_config(execution_time_s=1.0)) as emu:
        batch = sweep_batch(
            workdir / "b.toml", emu.url, points=4, limits='deadline = 0.3\non_deadline = "cancel"'
        )
        assert main([str(batch), "--events", "first.jsonl"]) == 3
        out = " ".join(capsys.readouterr().out.split())
        server = _server_states(emu)

        state = read_journal(workdir / "out")
        in_flight = state.in_flight()
        asked = [a for a in iter_attempts(state) if a.cancel]
        cancelled = [a for a in asked if a.state == "CANCELLED"]
        assert cancelled and len(cancelled) == len(answered)
        assert all(server[str(a.id)] == "CANCELLED" for a in cancelled)
        # Not confirmed: still in flight (resumable), marked as asked to cancel, although
        # the server did cancel them.
        assert in_flight and len(in_flight) == len(asked) - len(cancelled)
        assert all(a.cancel and not a.done for a in in_flight)
        assert {server[str(a.id)] for a in in_flight} == {"CANCELLED"}
        assert (
            f'on_deadline = "cancel": {len(cancelled)} task(s) cancelled, {len(in_flight)} '
            "still in flight (outcome not confirmed): run the same command to resume"
        ) in out
        status = _status(capsys)
        assert status["in_flight"] == len(in_flight)
        assert status["states"]["CANCELLED"] == len(cancelled)
        end = _events(workdir / "first.jsonl")[-1]
        assert end["event"] == "end" and end["cancelled"] == len(cancelled)
        assert end["unfinished"] == len(in_flight) + 8 - len(asked)

        # The resume: the journaled CANCELLED ones are resubmitted at once, the others once
        # polling shows them cancelled: one retry event each, and the end event counts them.
        monkeypatch.setattr(engine_module, "confirm_cancelled", real)
        sweep_batch(workdir / "b.toml", emu.url, points=4)
        assert main([str(batch), "-q", "--events", "second.jsonl"]) == 0
    events = _events(workdir / "second.jsonl")
    retries = [e for e in events if e["event"] == "retry"]
    assert len(retries) == len(asked)
    assert {e["reason"] for e in retries} == {"cancelled earlier"}
    assert events[0]["event"] == "start" and events[-1]["event"] == "end"
    assert events[-1]["retries"] == len(retries)
    assert _status(capsys)["retries"] == len(retries)


def test_deadline_detach_says_the_deadline_was_reached(
    queued_emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = sweep_batch(workdir / "b.toml", queued_emulator.url, points=3, limits="deadline = 0.5")
    assert main([str(batch)]) == 3
    out = " ".join(capsys.readouterr().out.split())
    assert (
        'deadline reached (0.5 s) with jobs unfinished; on_deadline = "detach": 6 task(s) '
        "left running on the server: run the same command to resume (exit status 3)"
    ) in out
    assert "interrupted" not in out
    status = _status(capsys)
    assert status["in_flight"] == 6
    assert status["last_stop"]["reason"] == "deadline"
    assert status["last_stop"]["policy"] == "detach"


def test_ctrl_c_with_cancel_reports_the_cancelled_tasks(
    queued_emulator: RunningEmulator, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = sweep_batch(
        workdir / "b.toml", queued_emulator.url, points=5, limits='on_interrupt = "cancel"'
    )
    events = workdir / "ev.jsonl"
    watcher = EventWatcher(events)
    process = start_cli([str(batch), "--events", str(events), "--progress-interval", "60"], workdir)
    try:
        assert watcher.wait_for(process, "reserved", 10, timeout=30)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 3, stderr
    server = _server_states(queued_emulator)
    state = read_journal(workdir / "out")
    assert state.in_flight() == []
    attempts = list(iter_attempts(state))
    assert len(attempts) == 10
    assert all(a.cancel and a.state == server[str(a.id)] for a in attempts)
    assert state.counts() == {"CANCELLED": 10}  # 5 s per task: none finished first
    assert (
        'interrupted with jobs unfinished; on_interrupt = "cancel": 10 task(s) cancelled: run '
        "the same command to resume (exit status 3)"
    ) in " ".join(stdout.split())
    assert _total_row(stdout)[:6] == ["total", "10", "0", "0", "10", "0"]
    status = _status(capsys)
    assert status["states"] == {"CANCELLED": 10} and status["in_flight"] == 0
    end = _events(events)[-1]
    assert end["event"] == "end" and end["reason"] == "interrupted" and end["cancelled"] == 10


def test_rerunning_a_finished_batch_writes_start_and_end(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with emulator_in_thread() as emu:
        batch = sweep_batch(workdir / "b.toml", emu.url, points=2)
        assert main([str(batch), "-q"]) == 0
        assert main([str(batch), "-q", "--events", "again.jsonl"]) == 0
    events = _events(workdir / "again.jsonl")
    assert [e["event"] for e in events] == ["start", "end"]
    assert events[0]["to_run"] == 0 and events[0]["jobs"] == 4
    end = events[1]
    assert end["reason"] == "done" and end["retries"] == 0 and end["requests"] == 0
    assert end["unfinished"] == 0
