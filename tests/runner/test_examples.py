"""The examples run against the embedded emulator (real simulation), through a real
subprocess (``python -m oqc_trio``) and through ``main(argv)``."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from runner_support import EXAMPLES, run_cli

from oqc_trio.runner.cli import main
from oqc_trio.runner.journal import read_journal

pytest.importorskip("qiskit_aer")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_bell_example_through_python_m(tmp_path: Path) -> None:
    result = run_cli([str(EXAMPLES / "bell.toml")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "all jobs completed (exit status 0)" in result.stdout
    rows = _rows(tmp_path / "bell.out" / "counts.csv")
    assert {r["bitstring"] for r in rows} <= {"00", "11"}
    assert sum(int(r["count"]) for r in rows) == 1000


def test_python_m_help_lists_the_subcommands(tmp_path: Path) -> None:
    result = run_cli(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("run", "plan", "status", "cancel", "results"):
        assert command in result.stdout


def test_sweep_example_over_two_qpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    # (This test failed twice in full-suite runs, never alone: the messages say how.)
    code = main([str(EXAMPLES / "sweep.toml"), "-q"])
    assert code == 0, capsys.readouterr()
    rows = _rows(tmp_path / "sweep.out" / "counts.csv")
    assert len({r["job"] for r in rows}) == 22, rows
    ones = {(r["qpu"], float(r["theta"])): int(r["count"]) for r in rows if r["bitstring"] == "1"}
    for qpu in {r["qpu"] for r in rows}:
        # rx(0)|0> is |0> and rx(pi)|0> is |1>, up to the emulated QPUs' noise.
        assert ones.get((qpu, 0.0), 0) < 50, ones
        assert ones[(qpu, 3.14159265359)] > 450, ones
        assert ones[(qpu, 1.570796326795)] == pytest.approx(250, abs=60), ones


def test_glob_example_with_two_registers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([str(EXAMPLES / "glob.toml"), "-q", "--out", "g"]) == 0
    rows = _rows(tmp_path / "g" / "counts.csv")
    assert {r["program"] for r in rows} == {
        "programs/bell.qasm",
        "programs/ghz3.qasm",
        "programs/two_registers.qasm",
    }
    best: dict[tuple[str, str], tuple[int, str]] = {}
    for r in rows:
        if "two_registers" in r["program"]:
            key = (r["job"], r["register"])
            best[key] = max(best.get(key, (0, "")), (int(r["count"]), r["bitstring"]))
    # The most frequent outcome (the emulated QPUs are noisy); bit 0 of each register left.
    assert {(reg, bits) for (_, reg), (_, bits) in best.items()} == {("a", "10"), ("b", "011")}


def test_invalid_qasm_fails_its_task_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(EXAMPLES / "programs", tmp_path / "programs")
    (tmp_path / "programs" / "broken.qasm").write_text(
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nfrobnicate q[0];\n'
    )
    (tmp_path / "b.toml").write_text(
        '[defaults]\nqpu = "qpu:uk:2:d865b5a184"\nshots = 100\n'
        '[[jobs]]\nprograms = ["programs/*.qasm"]\n'
    )
    assert main(["b.toml"]) == 1
    out = capsys.readouterr().out
    assert "failed: job1/program=programs/broken.qasm: error 1001:" in out
    assert read_journal(tmp_path / "b.out").counts() == {"COMPLETED": 3, "FAILED": 1}


def test_an_interrupted_embedded_batch_resumes_its_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded emulator keeps its tasks in the journal directory: a batch stopped by its
    deadline finds its queued tasks again, instead of losing them with the emulator."""
    from runner_support import emulator_toml

    monkeypatch.chdir(tmp_path)
    (tmp_path / "emu.toml").write_text(emulator_toml(execution_time_s=0.15))
    text = (
        '[server]\nurl = "emulator"\n[server.emulator]\nexecutor = "instant"\n'
        'config = "emu.toml"\n[defaults]\nqpu = "qpu:uk:2:d865b5a184"\n'
        '[[jobs]]\nprogram = """OPENQASM 2.0;\nqreg q[1];\ncreg c[1];\nmeasure q -> c;\n"""\n'
        "shots = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n[limits]\ndeadline = 0.8\n"
    )
    (tmp_path / "b.toml").write_text(text)
    assert main(["b.toml", "-q"]) == 3
    state = read_journal(tmp_path / "b.out")
    assert state.in_flight()
    (tmp_path / "b.toml").write_text(text.replace("deadline = 0.8", ""))
    assert main(["b.toml", "-q"]) == 0
    state = read_journal(tmp_path / "b.out")
    assert [len(attempts) for attempts in state.attempts] == [1] * 10  # resumed, not resent
    assert state.counts() == {"COMPLETED": 10}


def test_resume_walkthrough_batch_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``examples/sweep_400.toml`` (the batch of ``resume_after_crash.md``) runs to the end;
    the kill-and-resume part is proved by ``test_crash.py``."""
    monkeypatch.chdir(tmp_path)
    assert main([str(EXAMPLES / "sweep_400.toml"), "-q"]) == 0
    rows = _rows(tmp_path / "sweep_400.out" / "counts.csv")
    assert len({r["job"] for r in rows}) == 400
