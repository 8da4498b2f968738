"""Helpers of the runner tests: emulators (in a thread or a subprocess), batch files, CLI runs."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import attrs
import httpx
import trio

from oqc_trio.emulator.config import EmulatorConfig, QpuSpec, UserSpec
from oqc_trio.emulator.server import RunningEmulator, open_emulator

QPU_A = "qpu:uk:2:d865b5a184"
QPU_B = "qpu:uk:3:9829a5504f"
TOKEN = "runner-test-token"
ADMIN = "runner-test-admin"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

RX = """
OPENQASM 2.0;
include "qelib1.inc";
qreg q[1];
creg c[1];
rx({theta}) q[0];
measure q[0] -> c[0];
"""
BELL = """
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0], q[1];
measure q -> c;
"""


def emulator_config(execution_time_s: float = 0.002, workers: int = 1) -> EmulatorConfig:
    """Two QPUs with a short simulated execution time and one fixed-token user."""
    return EmulatorConfig(
        qpus=(
            QpuSpec(id=QPU_A, name="A", execution_time_s=execution_time_s, workers=workers),
            QpuSpec(
                id=QPU_B, name="B", qubits=16, execution_time_s=execution_time_s, workers=workers
            ),
        ),
        users=(UserSpec(email="runner@example.com", tokens=(TOKEN,)),),
        admin_token=ADMIN,
    )


def emulator_toml(execution_time_s: float, workers: int = 1) -> str:
    """The same configuration as :func:`emulator_config`, as an emulator TOML file."""
    qpus = "".join(
        f'[[qpus]]\nid = "{qpu}"\nname = "{name}"\nqubits = {qubits}\n'
        f"execution_time_s = {execution_time_s}\nworkers = {workers}\n"
        for qpu, name, qubits in ((QPU_A, "A", 8), (QPU_B, "B", 16))
    )
    return (
        f'admin_token = "{ADMIN}"\n{qpus}'
        f'[[users]]\nemail = "runner@example.com"\ntokens = ["{TOKEN}"]\n'
    )


@contextlib.contextmanager
def emulator_in_thread(
    config: EmulatorConfig | None = None, executor: Literal["aer", "instant"] = "instant"
) -> Iterator[RunningEmulator]:
    """An emulator in its own thread and trio run, for tests calling ``main(argv)``."""
    ready: queue.Queue[Any] = queue.Queue()

    async def serve() -> None:
        with trio.CancelScope() as scope:
            async with open_emulator(config or emulator_config(), executor=executor) as emu:
                ready.put((emu, trio.lowlevel.current_trio_token(), scope))
                await trio.sleep_forever()

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    emu, token, scope = ready.get(timeout=30)
    try:
        yield emu
    finally:
        trio.from_thread.run_sync(scope.cancel, trio_token=token)
        thread.join(timeout=30)


@attrs.define
class EmulatorProcess:
    """An ``oqc-emulator serve`` subprocess on a loopback port."""

    process: subprocess.Popen[str]
    url: str

    def counters(self) -> dict[str, Any]:
        """The admin counters document."""
        response = httpx.get(
            f"{self.url}/admin/emulator/counters", headers={"Authentication-Token": ADMIN}
        )
        response.raise_for_status()
        return response.json()

    def status(self, qpu: str, task_id: str) -> str:
        """A task's status as the server reports it."""
        short = qpu.rsplit(":", 1)[-1]
        response = httpx.get(
            f"{self.url}/qpu/{short}/tasks/{task_id}/status",
            headers={"Authentication-Token": TOKEN},
        )
        response.raise_for_status()
        return str(response.json()["status"])


@contextlib.contextmanager
def emulator_process(directory: Path, execution_time_s: float) -> Iterator[EmulatorProcess]:
    """Start ``python -m oqc_trio.emulator serve`` (instant executor) and yield its URL."""
    config = directory / "emulator.toml"
    config.write_text(emulator_toml(execution_time_s))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oqc_trio.emulator",
            "serve",
            "--port",
            "0",
            "--executor",
            "instant",
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("oqc-emulator serving "), first
        yield EmulatorProcess(process, first.split()[2])
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sweep_batch(
    path: Path,
    url: str,
    *,
    points: int,
    qpus: tuple[str, ...] = (QPU_A, QPU_B),
    limits: str = "",
    output: str = 'dir = "out"\nformats = ["snapshot", "csv"]',
    shots: int = 10,
) -> Path:
    """A batch of ``points`` x ``len(qpus)`` rx jobs against ``url`` (token from EMU_TOKEN)."""
    qpu_list = ", ".join(f'"{q}"' for q in qpus)
    path.write_text(
        f'[server]\nurl = "{url}"\ntoken_env = "EMU_TOKEN"\n\n'
        f"[defaults]\nshots = {shots}\n\n"
        f'[[jobs]]\nname = "rx"\nqpu = [{qpu_list}]\nprogram = """{RX}"""\n'
        f"[jobs.params]\ntheta = {{start = 0.0, stop = 1.0, num = {points}}}\n\n"
        f"[limits]\n{limits}\n\n[output]\n{output}\n"
    )
    return path


def run_cli(
    args: list[str], cwd: Path, *, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m oqc_trio ARGS`` in ``cwd``, to the end."""
    return subprocess.run(
        [sys.executable, "-m", "oqc_trio", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "EMU_TOKEN": TOKEN, **(env or {})},
    )


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """``python -m oqc_trio ARGS`` in ``cwd``, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "oqc_trio", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EMU_TOKEN": TOKEN},
    )


class EventWatcher:
    """Reads a ``--events`` file as it grows, counting events of the current run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.counts: dict[str, int] = {}
        self._partial = ""

    def poll(self) -> dict[str, int]:
        """Read what was appended since the last call."""
        if self.path.exists():
            with open(self.path, encoding="utf-8") as handle:
                handle.seek(self.offset)
                text = handle.read()
            self.offset += len(text.encode())
            text = self._partial + text
            lines = text.split("\n")
            self._partial = lines.pop()
            for line in lines:
                event = json.loads(line)["event"]
                self.counts[event] = self.counts.get(event, 0) + 1
        return self.counts

    def wait_for(
        self, process: subprocess.Popen[str], event: str, count: int, timeout: float = 60
    ) -> bool:
        """Wait until ``count`` ``event`` events arrived (True) or the process ended (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.poll().get(event, 0) >= count:
                return True
            if process.poll() is not None:
                return self.poll().get(event, 0) >= count
            time.sleep(0.01)
        raise TimeoutError(f"no {count} {event!r} events after {timeout} s: {self.counts}")


def journal_task_ids(out: Path) -> dict[str, str]:
    """``task_id -> state`` of every attempt in an output directory's journal."""
    from oqc_trio.runner.journal import iter_attempts, read_journal

    return {a.id: a.state for a in iter_attempts(read_journal(out)) if a.id is not None}
