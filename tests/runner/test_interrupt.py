"""SIGINT: the first stops the run and applies ``on_interrupt``; the second exits at once.
Either way the same command resumes and every task is submitted exactly once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from runner_support import (
    EventWatcher,
    emulator_process,
    journal_task_ids,
    run_cli,
    start_cli,
    sweep_batch,
)

from oqc_trio.runner.journal import iter_attempts, read_journal

POINTS = 25  # x 2 QPUs, 0.1 s each on one worker per QPU: 2.5 s of queue per QPU


def _interrupt(batch: Path, cwd: Path, events: Path, *, twice: bool = False) -> tuple[int, str]:
    watcher = EventWatcher(events)
    process = start_cli([str(batch), "--events", str(events), "-q"], cwd)
    try:
        assert watcher.wait_for(process, "reserved", 2 * POINTS, timeout=30)
        time.sleep(0.3)  # a few complete, most are still queued
        process.send_signal(signal.SIGINT)
        if twice:
            process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, stderr


@pytest.mark.parametrize("mode", ["detach", "cancel"])
def test_sigint_applies_on_interrupt_then_resume_completes(tmp_path: Path, mode: str) -> None:
    with emulator_process(tmp_path, execution_time_s=0.1) as emulator:
        batch = sweep_batch(
            tmp_path / "batch.toml", emulator.url, points=POINTS, limits=f'on_interrupt = "{mode}"'
        )
        events = tmp_path / "events.jsonl"
        status, stderr = _interrupt(batch, tmp_path, events)
        assert status == 3, stderr
        assert "interrupted" in stderr

        state = read_journal(tmp_path / "out")
        in_flight = state.in_flight()
        if mode == "cancel":
            # The runner journals the server's word on each cancelled task: CANCELLED, or
            # COMPLETED when it finished before the cancel arrived; none is left in flight.
            asked = [a for a in iter_attempts(state) if a.cancel]
            assert asked, "the interrupt should cancel unfinished tasks"
            remote = {a.id: emulator.status(a.qpu, str(a.id)) for a in asked}
            assert {a.id: a.state for a in asked} == remote
            assert "CANCELLED" in remote.values()
            assert in_flight == []
        else:
            assert in_flight, "the interrupt should leave tasks unfinished"
            remote = {a.id: emulator.status(a.qpu, str(a.id)) for a in in_flight}
            assert not any(a.cancel for a in in_flight)
            assert "CANCELLED" not in remote.values()

        again = run_cli([str(batch), "--events", str(events), "-q"], tmp_path)
        assert again.returncode == 0, again.stderr
        counters = emulator.counters()

    assert counters["duplicate_submissions"] == {}
    journal = journal_task_ids(tmp_path / "out")
    completed = {task for task, state in journal.items() if state == "COMPLETED"}
    assert len(completed) == 2 * POINTS
    submitted = set(counters["submissions"])
    assert completed <= submitted
    if mode == "cancel":
        # The cancelled attempts were replaced by new ones, linked to the same jobs.
        cancelled = {task for task, state in journal.items() if state == "CANCELLED"}
        assert cancelled and submitted - completed <= cancelled
        state = read_journal(tmp_path / "out")
        assert any(len(attempts) == 2 for attempts in state.attempts)
    else:
        assert submitted == completed


def test_second_sigint_exits_at_once_and_the_journal_resumes(tmp_path: Path) -> None:
    with emulator_process(tmp_path, execution_time_s=0.1) as emulator:
        batch = sweep_batch(
            tmp_path / "batch.toml", emulator.url, points=POINTS, limits='on_interrupt = "cancel"'
        )
        events = tmp_path / "events.jsonl"
        status, stderr = _interrupt(batch, tmp_path, events, twice=True)
        assert status == 3, stderr
        again = run_cli([str(batch), "-q"], tmp_path)
        assert again.returncode == 0, again.stderr
        counters = emulator.counters()
    assert counters["duplicate_submissions"] == {}
    state = read_journal(tmp_path / "out")
    assert state.counts() == {"COMPLETED": 2 * POINTS}
