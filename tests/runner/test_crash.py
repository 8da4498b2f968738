"""Kill -9 at random points, re-run until done: every task is submitted exactly once and every
result is in the outputs. Both processes are real: ``oqc-emulator serve`` on loopback and
``python -m oqc_trio``."""

from __future__ import annotations

import csv
import os
import random
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

from oqc_trio.client import OqcSdk
from oqc_trio.job import JobState

POINTS = 1000  # x 2 QPUs = 2,000 jobs


def _kill_when(
    batch: Path, cwd: Path, events: Path, event: str, count: int, delay: float
) -> tuple[int | None, dict[str, int]]:
    """Start a run, SIGKILL it once ``count`` ``event`` events were seen (plus ``delay``).

    Returns the exit status if the run ended by itself first (else None) and the counts.
    """
    watcher = EventWatcher(events)
    process = start_cli([str(batch), "--events", str(events), "-q"], cwd)
    try:
        reached = watcher.wait_for(process, event, count)
        if reached and delay:
            time.sleep(delay)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return None, watcher.poll()
        return process.returncode, watcher.poll()
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_submits_each_task_once(tmp_path: Path) -> None:
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    with emulator_process(tmp_path, execution_time_s=0.002) as emulator:
        batch = sweep_batch(tmp_path / "batch.toml", emulator.url, points=POINTS)
        events = tmp_path / "events.jsonl"
        # IDs are reserved ~900 at a time (a block of submit chunks): the first runs reserve
        # them all, so the mid-submission kill comes first, while IDs are still to reserve.
        plan = [
            ("reserved", rng.randint(1, 900), 0.0),  # mid-submission of the first block
            ("start", 1, 0.0),  # during reconciliation or ID creation
            ("start", 1, rng.uniform(0.0, 0.03)),  # during ID creation or submission
            ("completed", rng.randint(100, 700), 0.0),  # mid-polling
            ("start", 1, rng.uniform(0.1, 1.0)),  # anywhere
        ]
        kills = []
        for event, count, delay in plan:
            status, seen = _kill_when(batch, tmp_path, events, event, count, delay)
            kills.append((event, count, round(delay, 3), status, dict(seen)))
        for _ in range(3):
            final = run_cli([str(batch), "--events", str(events), "-q"], tmp_path)
            if final.returncode == 0:
                break
        assert final.returncode == 0, (seed, kills, final.stderr)

        counters = emulator.counters()
    context = (seed, kills)
    out = tmp_path / "out"
    submissions = counters["submissions"]
    assert counters["duplicate_submissions"] == {}, context
    assert set(submissions.values()) == {1}, context
    journal = journal_task_ids(out)
    completed = {task for task, state in journal.items() if state == "COMPLETED"}
    assert len(completed) == 2 * POINTS, context
    # Every completed task was submitted once; nothing else was ever submitted.
    assert set(submissions) == completed, context

    with open(out / "counts.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len({row["job"] for row in rows}) == 2 * POINTS
    assert all(int(row["count"]) == 10 for row in rows)

    loaded = OqcSdk("http://127.0.0.1:1").load(out / "results.json")
    assert len(loaded.jobs) == 2 * POINTS
    assert all(job.state is JobState.COMPLETED for job in loaded.jobs)
    assert {str(job.task_id) for job in loaded.jobs} == completed
    # At least one kill landed in each phase (reservations without any completion, and
    # completions without the end).
    assert any(s is None and seen.get("reserved") for _, _, _, s, seen in kills), context
    assert any(s is None and seen.get("completed") for _, _, _, s, seen in kills), context
