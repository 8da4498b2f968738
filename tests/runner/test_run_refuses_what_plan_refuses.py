"""``oqc-run run`` refuses, before it reserves a single task ID, every batch whose jobs
``oqc-run plan`` finds its QPUs' features refuse (too many shots, too many qubits), with
plan's very lines (``file:line: field: message``, exit 2); when the features cannot be read
the run goes on without that check. Qubits are counted once per program template unless the
sweep writes into a declaration. Sweep values that would make two jobs of one point, or that
are not finite, are input errors naming the parameter.

Every batch goes through ``main(argv)`` against the embedded emulator (instant executor) or
an emulator in a thread, and refused batches leave the emulator without any task.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from runner_support import (
    QPU_A,
    QPU_B,
    TOKEN,
    emulator_config,
    emulator_in_thread,
    journal_task_ids,
    sweep_batch,
)

import oqc_trio.emulator.server as emulator_server
from oqc_trio.client import OqcSdk
from oqc_trio.emulator.faults import FaultPlan, FaultRule
from oqc_trio.emulator.server import RunningEmulator
from oqc_trio.exceptions import OqcError
from oqc_trio.runner import plan
from oqc_trio.runner.cli import main
from oqc_trio.runner.journal import read_journal

EMBEDDED = '[server.emulator]\nexecutor = "instant"\n\n'
TASK_ROUTES = ("POST /tasks", "POST /tasks/submit")


def program(qubits: int | str, param: str = "theta") -> str:
    return (
        f'"""\nOPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{qubits}];\ncreg c[1];\n'
        f'rx({{{param}}}) q[0];\nmeasure q[0] -> c[0];\n"""'
    )


def entry(name: str, qpu: str, shots: int, qubits: int | str, params: str) -> str:
    return (
        f'[[jobs]]\nname = "{name}"\nqpu = "{qpu}"\nshots = {shots}\n'
        f"program = {program(qubits)}\n[jobs.params]\n{params}\n\n"
    )


THETA = "theta = [0.5, 1.0]"

# (id, batch entries, the lines both plan and run print on stderr)
REFUSED = [
    (
        "too-many-shots",
        entry("a", QPU_A, 100_000, 1, THETA),
        [f"b.toml:7: jobs[0].shots: 100,000 shots; {QPU_A} allows at most 10,000"],
    ),
    (
        "too-many-qubits",
        entry("a", QPU_A, 100, 12, THETA),
        [f"b.toml:4: jobs[0]: a/theta=0.5 uses 12 qubits; {QPU_A} has 8"],
    ),
    (
        "both-in-two-entries",
        entry("ok", QPU_B, 100, 5, THETA)
        + entry("a", QPU_A, 20_000, 2, THETA)
        + entry("b", QPU_B, 100, 20, "theta = { start = 0.0, stop = 1.0, num = 50 }"),
        [
            f"b.toml:22: jobs[1].shots: 20,000 shots; {QPU_A} allows at most 10,000",
            f"b.toml:34: jobs[2]: b/theta=0.0 uses 20 qubits; {QPU_B} has 7",
        ],
    ),
    (
        "sweep-in-a-declaration",
        # Only the n=12 point is too wide: qubits are counted per program for this template.
        '[[jobs]]\nname = "w"\nqpu = "qpu:uk:2:d865b5a184"\nshots = 100\n'
        f"program = {program('{n}')}\n[jobs.params]\nn = [2, 12, 4]\ntheta = [0.5, 1.0]\n",
        [f"b.toml:4: jobs[0]: w/n=12/theta=0.5 uses 12 qubits; {QPU_A} has 8"],
    ),
]


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[RunningEmulator]:
    """Every embedded emulator the runner opens, kept for a look at its counters."""
    opened: list[RunningEmulator] = []
    original = emulator_server.open_emulator

    @contextlib.asynccontextmanager
    async def recording(*args: Any, **kwargs: Any) -> AsyncIterator[RunningEmulator]:
        async with original(*args, **kwargs) as emu:
            opened.append(emu)
            yield emu

    monkeypatch.setattr(emulator_server, "open_emulator", recording)
    return opened


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with emulator_in_thread() as emu:
        yield emu


def no_task(emu: RunningEmulator) -> None:
    counters = emu.state.counters()
    assert counters["tasks"]["total"] == 0, counters
    for route in TASK_ROUTES:
        assert counters["requests"].get(route, 0) == 0, counters


def task_requests(emu: RunningEmulator) -> dict[str, int]:
    requests = emu.state.counters()["requests"]
    return {route: requests.get(route, 0) for route in TASK_ROUTES}


def stderr_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()


@pytest.mark.parametrize(
    ("entries", "expected"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_run_on_the_embedded_emulator_refuses_what_plan_refuses(
    entries: str,
    expected: list[str],
    workdir: Path,
    embedded: list[RunningEmulator],
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("b.toml").write_text(EMBEDDED + entries)
    assert main(["plan", "b.toml"]) == 2
    planned = stderr_lines(capsys)
    assert planned == expected
    assert main(["run", "b.toml", "--out", "out"]) == 2
    assert stderr_lines(capsys) == planned
    assert len(embedded) == 2  # plan's, then run's: neither got a task ID request
    for emu in embedded:
        no_task(emu)
    assert journal_task_ids(workdir / "out") == {}


def test_run_against_a_server_refuses_what_plan_refuses(
    workdir: Path, emulator: RunningEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    server = f'[server]\nurl = "{emulator.url}"\ntoken_env = "EMU_TOKEN"\n\n'
    Path("b.toml").write_text(
        server + entry("a", QPU_A, 100_000, 1, THETA) + entry("b", QPU_B, 10, 17, THETA)
    )
    before = task_requests(emulator)
    assert main(["plan", "b.toml"]) == 2
    planned = stderr_lines(capsys)
    assert main(["b.toml", "-q", "--out", "out"]) == 2
    assert (
        stderr_lines(capsys)
        == planned
        == [
            f"b.toml:8: jobs[0].shots: 100,000 shots; {QPU_A} allows at most 10,000",
            f"b.toml:20: jobs[1]: b/theta=0.5 uses 17 qubits; {QPU_B} has 16",
        ]
    )
    assert task_requests(emulator) == before
    assert journal_task_ids(workdir / "out") == {}
    # Fixed, the batch runs in the same directory (no ID was ever reserved there).
    Path("b.toml").write_text(
        server + entry("a", QPU_A, 10_000, 1, THETA) + entry("b", QPU_B, 10, 16, THETA)
    )
    assert main(["b.toml", "-q", "--out", "out"]) == 0, capsys.readouterr().err
    assert len(journal_task_ids(workdir / "out")) == 4


def test_qubits_are_counted_once_per_template(
    workdir: Path,
    embedded: list[RunningEmulator],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counted: list[str] = []
    original = plan.count_qubits

    def counting(text: str) -> int | None:
        counted.append(text)
        return original(text)

    monkeypatch.setattr(plan, "count_qubits", counting)
    sweep = "theta = { start = 0.0, stop = 1.0, num = 10000 }"
    Path("b.toml").write_text(EMBEDDED + entry("a", QPU_A, 20_000, 2, sweep))
    started = time.process_time()
    assert main(["b.toml", "-q", "--out", "out"]) == 2
    # The check itself takes milliseconds (the old job-by-job one took seconds).
    assert time.process_time() - started < 2
    assert stderr_lines(capsys) == [
        f"b.toml:7: jobs[0].shots: 20,000 shots; {QPU_A} allows at most 10,000"
    ]
    assert len(counted) == 1
    no_task(embedded[0])
    # A placeholder in the declaration: one count per distinct program (3 x 100 of them).
    counted.clear()
    Path("c.toml").write_text(
        EMBEDDED
        + '[[jobs]]\nname = "w"\nqpu = "qpu:uk:2:d865b5a184"\nshots = 100_000\n'
        + f"program = {program('{n}')}\n[jobs.params]\nn = [2, 3, 4]\n"
        + "theta = { start = 0.0, stop = 1.0, num = 100 }\n"
    )
    assert main(["plan", "c.toml"]) == 2
    assert len(stderr_lines(capsys)) == 1
    assert len(counted) == 300


class _Refused(OqcError):
    pass


@pytest.mark.parametrize("error", [NotImplementedError, _Refused])
def test_run_goes_on_when_the_sdk_cannot_read_features(
    error: type[Exception],
    workdir: Path,
    embedded: list[RunningEmulator],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    async def unavailable(self: OqcSdk, qpu_id: str | None = None) -> Any:
        asked.append(str(qpu_id))
        raise error("no features here")

    monkeypatch.setattr(OqcSdk, "get_features", unavailable)
    Path("b.toml").write_text(EMBEDDED + entry("a", QPU_A, 100, 2, THETA))
    assert main(["plan", "b.toml"]) == 0
    assert f"features of {QPU_A} not available" in capsys.readouterr().out
    assert main(["b.toml", "-q", "--out", "out"]) == 0, capsys.readouterr().err
    assert asked == [QPU_A, QPU_A]
    assert len(journal_task_ids(workdir / "out")) == 2


def test_run_goes_on_against_a_v4_server_without_features(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = ("GET /qpus/*/features", "GET /admin/qpu/*")
    faults = FaultPlan(rules=(FaultRule(kind="status", routes=routes, status=(404,)),))
    with emulator_in_thread(attrs.evolve(emulator_config(), faults=faults)) as emu:
        Path("b.toml").write_text(
            f'[server]\nurl = "{emu.url}"\ndialect = "v4"\ntoken_env = "EMU_TOKEN"\n\n'
            + entry("a", QPU_A, 100, 2, THETA)
        )
        assert main(["b.toml", "-q", "--out", "out"]) == 0, capsys.readouterr().err
        requests = emu.state.counters()["requests"]
        assert requests.get("GET /qpus/{qpu_id}/features") == 1, requests
        assert requests.get("POST /tasks/submit", 0) >= 1, requests
    assert len(journal_task_ids(workdir / "out")) == 2


# (id, the parameter's line, the start of the message after "b.toml:N: jobs[0].params.theta: ")
BAD_SWEEPS = [
    ("repeated-value", "theta = [0.5, 0.5]", "item 1: 0.5 repeats item 0"),
    ("repeated-number", "theta = [1, 1.0]", "item 1: 1.0 repeats item 0"),
    ("repeated-text", 'theta = ["1", 1]', "item 1: 1 repeats item 0"),
    ("nan-start", "theta = { start = nan, stop = 1.0, num = 3 }", "start: expected a finite"),
    ("inf-stop", "theta = { start = 0.0, stop = inf, step = 0.5 }", "stop: expected a finite"),
    ("nan-step", "theta = { start = 0.0, stop = 1.0, step = nan }", "step: expected a finite"),
    ("inf-in-list", "theta = [inf, 1.0]", "item 0: expected a finite number, got inf"),
    ("nan-in-list", "theta = [0.5, -nan]", "item 1: expected a finite number, got nan"),
    (
        "range-repeats",
        "theta = { start = 1.0, stop = 1.0, num = 3 }",
        "the range gives a value more than once",
    ),
    (
        "range-repeats-after-rounding",
        "theta = { start = 0.0, stop = 1e-13, num = 2 }",
        "the range gives a value more than once",
    ),
]


@pytest.mark.parametrize(
    ("line", "message"), [c[1:] for c in BAD_SWEEPS], ids=[c[0] for c in BAD_SWEEPS]
)
def test_a_sweep_value_twice_or_not_finite_is_an_input_error(
    line: str,
    message: str,
    workdir: Path,
    embedded: list[RunningEmulator],
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = EMBEDDED + entry("a", QPU_A, 100, 1, line)
    Path("b.toml").write_text(text)
    number = text.splitlines().index(line) + 1
    for command in ("plan", "run"):
        assert main([command, "b.toml"]) == 2
        lines = stderr_lines(capsys)
        assert len(lines) == 1
        assert lines[0].startswith(f"b.toml:{number}: jobs[0].params.theta: {message}"), lines
    assert embedded == []  # refused before any emulator started


def test_a_resume_follows_its_tasks_even_if_the_qpu_limits_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The features are checked before the first reservation only: tasks already sent are
    # followed to their end whatever the QPU's limits say by the time the batch resumes.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMU_TOKEN", TOKEN)
    with emulator_in_thread(emulator_config(execution_time_s=0.3)) as emu:
        limits = "deadline = 0.2"
        batch = sweep_batch(tmp_path / "b.toml", emu.url, points=3, qpus=(QPU_A,), limits=limits)
        assert main([str(batch), "-q"]) == 3  # the deadline left tasks running
        assert read_journal(tmp_path / "out").in_flight()
        lowered = tuple(attrs.evolve(q, max_shots=5) for q in emu.state.config.qpus)
        emu.state.config = emu.state.config.evolve(qpus=lowered)
        sweep_batch(tmp_path / "b.toml", emu.url, points=3, qpus=(QPU_A,))  # no deadline
        # Not refused (exit 2): followed to their end, the server's word (the emulator checks
        # shots again when a queued task runs, so those fail with 1003: exit 1).
        assert main([str(batch), "-q"]) == 1
        state = read_journal(tmp_path / "out")
        assert state.in_flight() == [] and all(len(a) == 1 for a in state.attempts)
        assert {a[0].state for a in state.attempts} <= {"COMPLETED", "FAILED"}
        counters = emu.state.counters()
        assert len(counters["submissions"]) == 3 and counters["duplicate_submissions"] == {}
