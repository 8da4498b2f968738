"""Signals sent to the runner's whole process group, on the embedded emulator (aer executor).

Batch schedulers, ``docker stop`` and ``kill -TERM -- -PGID`` signal every process of the
group, and a terminal's Ctrl-C does too: the emulator's worker processes (its children, in
the runner's group) receive the signal as well as the runner. They must leave it to the
runner, which stops them itself: the run ends like one interrupted by a signal to the
runner alone (exit 3, "interrupted", the summary), with no traceback from the runner or a
worker, and the same command then finishes it, submitting every task once.

Both runs are real: ``python -m oqc_trio run`` in its own session (so its process group is
its own), serving the embedded emulator on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runner_support import QPU_A, QPU_B, RX, EventWatcher, emulator_toml

from oqc_trio.runner.journal import read_journal

pytest.importorskip("qiskit_aer")

POINTS = 15  # x 2 QPUs, 0.1 s each on one worker per QPU: 1.5 s of queue per QPU
JOBS = 2 * POINTS
WAIT_S = 60.0  # the bound on every wait of these tests


def _batch(directory: Path) -> Path:
    """A sweep on the embedded emulator (aer executor, QPUs slow enough to interrupt)."""
    (directory / "emu.toml").write_text(emulator_toml(execution_time_s=0.1))
    path = directory / "batch.toml"
    path.write_text(
        '[server]\n[server.emulator]\nexecutor = "aer"\nconfig = "emu.toml"\n\n'
        "[defaults]\nshots = 10\n\n"
        f'[[jobs]]\nname = "rx"\nqpu = ["{QPU_A}", "{QPU_B}"]\nprogram = """{RX}"""\n'
        f"[jobs.params]\ntheta = {{start = 0.0, stop = 1.0, num = {POINTS}}}\n\n"
        '[output]\ndir = "out"\nformats = ["snapshot", "csv"]\n'
    )
    return path


def _command(batch: Path, events: Path, *, quiet: bool = False) -> list[str]:
    run = [sys.executable, "-m", "oqc_trio", "run", str(batch), "--events", str(events)]
    return [*run, "-q"] if quiet else run


@contextlib.contextmanager
def _session(batch: Path, events: Path) -> Iterator[subprocess.Popen[str]]:
    """The runner in a new session (its pid is its process group's id); on the way out,
    whatever still lives in that group (the runner, its workers) is killed."""
    process = subprocess.Popen(
        _command(batch, events),
        cwd=batch.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=WAIT_S)
        if process.poll() is None:  # pragma: no cover - the kill above failed
            process.kill()
            process.communicate()


def _children(pid: int) -> list[tuple[int, str]]:
    """``(pid, command line)`` of the live children of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def _workers(pid: int) -> list[int]:
    """The pids of the multiprocessing (spawn) worker processes of ``pid``."""
    return [child for child, cmdline in _children(pid) if "multiprocessing.spawn" in cmdline]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _until(predicate: Callable[[], object], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise AssertionError(f"the run ended (status {process.returncode}) before {what}")
        time.sleep(0.005)
    raise TimeoutError(f"no {what} after {WAIT_S} s")


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=WAIT_S)
    return process.returncode, stdout, stderr


def _assert_interrupted_cleanly(status: int, stdout: str, stderr: str) -> None:
    assert status == 3, stderr
    assert "oqc-run: interrupted" in stderr
    assert "Traceback" not in stderr, stderr
    assert "KeyboardInterrupt" not in stderr, stderr
    assert "BrokenWorker" not in stderr, stderr
    # The summary table, then the reason and the exit status.
    assert "total" in stdout and "unfinished" in stdout, stdout
    assert "run the same command to resume (exit status 3)" in stdout, stdout


def _assert_resumes_submitting_each_task_once(batch: Path, events: Path) -> None:
    again = subprocess.run(
        _command(batch, events, quiet=True),
        cwd=batch.parent,
        capture_output=True,
        text=True,
        timeout=WAIT_S * 2,
        start_new_session=True,
    )
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr, again.stderr
    out = batch.parent / "out"
    state = read_journal(out)
    assert state.counts() == {"COMPLETED": JOBS}
    # One attempt per job: what was submitted before the signal was resumed, not resent.
    assert [len(attempts) for attempts in state.attempts] == [1] * JOBS
    completed = {str(attempts[0].id) for attempts in state.attempts}
    assert len(completed) == JOBS
    # The embedded emulator's own record (kept across runs in the journal directory): one
    # task per job, the job's one attempt, submitted once.
    database = (out / "journal" / "emulator.sqlite").as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(database, uri=True)) as db:
        rows = db.execute("SELECT id, status, doc FROM tasks").fetchall()
    assert {task for task, _, _ in rows} == completed
    assert {status for _, status, _ in rows} == {"COMPLETED"}
    assert {json.loads(doc)["submissions"] for _, _, doc in rows} == {1}


def test_sigterm_to_the_process_group_interrupts_cleanly_then_resumes(tmp_path: Path) -> None:
    batch = _batch(tmp_path)
    events = tmp_path / "events.jsonl"
    watcher = EventWatcher(events)
    with _session(batch, events) as process:
        # Every ID reserved and the first task done: all are submitted, the workers are
        # warm (idle, or simulating), most tasks are still queued.
        _until(lambda: watcher.poll().get("reserved", 0) >= JOBS, process, "every reservation")
        _until(lambda: watcher.poll().get("completed", 0) >= 1, process, "a completion")
        workers = _workers(process.pid)
        assert workers, _children(process.pid)
        os.killpg(process.pid, signal.SIGTERM)
        status, stdout, stderr = _finish(process)
    _assert_interrupted_cleanly(status, stdout, stderr)
    assert not [pid for pid in workers if _alive(pid)]
    state = read_journal(tmp_path / "out")
    assert state.in_flight(), "the signal should leave tasks unfinished"
    assert state.counts().get("FAILED", 0) == 0, state.counts()  # no task lost its worker
    _assert_resumes_submitting_each_task_once(batch, events)


def test_early_sigint_to_the_process_group_while_workers_start(tmp_path: Path) -> None:
    batch = _batch(tmp_path)
    events = tmp_path / "events.jsonl"
    watcher = EventWatcher(events)
    with _session(batch, events) as process:
        # Ctrl-C while the emulator's worker processes are still starting (their
        # interpreter imports, ~0.5 s each), before anything is submitted.
        _until(lambda: _workers(process.pid), process, "a worker process")
        os.killpg(process.pid, signal.SIGINT)
        workers = _workers(process.pid)
        status, stdout, stderr = _finish(process)
    _assert_interrupted_cleanly(status, stdout, stderr)
    assert not [pid for pid in workers if _alive(pid)]
    assert watcher.poll().get("reserved", 0) == 0, "interrupted before the first submission"
    _assert_resumes_submitting_each_task_once(batch, events)
