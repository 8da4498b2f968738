"""Rough edges of ``oqc-run`` found by exploratory testing: ``--version``, the progress
interval, one line for ``[jobs]``, batch files with a byte order mark or not in UTF-8, one
casing of the states in ``status --json``, and the SDK's own insecure-http message."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
import trio
from runner_support import QPU_A, run_cli

from oqc_trio.client import OqcSdk
from oqc_trio.exceptions import InsecureURLError
from oqc_trio.runner.cli import main
from oqc_trio.runner.expand import expand_text
from oqc_trio.runner.journal import Journal

PROGRAM = (
    'program = """\nOPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\n'
    'measure q -> c;\n"""\n'
)
BATCH = f'[server.emulator]\nexecutor = "instant"\n[[jobs]]\nqpu = "{QPU_A}"\n{PROGRAM}'


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_distribution_version(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([flag]) == 0
    assert capsys.readouterr().out == f"oqc-run {version('oqc-trio')}\n"


def test_python_m_oqc_trio_version(tmp_path: Path) -> None:
    done = run_cli(["--version"], tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"oqc-run {version('oqc-trio')}\n"


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "soon"])
def test_progress_interval_must_be_a_positive_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "b.toml", "--progress-interval", value]) == 2
    err = capsys.readouterr().err
    assert "argument --progress-interval: expected a number of seconds" in err
    assert repr(value) in err and "Traceback" not in err


def test_a_jobs_table_instead_of_an_array_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("k.toml").write_text(f'[defaults]\nqpu = "{QPU_A}"\n[jobs]\n{PROGRAM}')
    assert main(["k.toml", "-q"]) == 2
    assert capsys.readouterr().err == (
        "k.toml:3: jobs: must be an array of tables, written [[jobs]] (one per entry), "
        "got a table\n"
    )


def test_a_batch_file_with_a_byte_order_mark_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bom.toml").write_bytes(b"\xef\xbb\xbf" + BATCH.encode())
    assert main(["bom.toml", "-q"]) == 0, capsys.readouterr().err


def test_errors_of_a_batch_file_with_a_byte_order_mark_keep_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bom.toml").write_bytes(b"\xef\xbb\xbf" + f'colour = "blue"\n{BATCH}'.encode())
    assert main(["bom.toml", "-q"]) == 2
    assert capsys.readouterr().err.startswith("bom.toml:1: colour: unknown key")


def test_a_batch_file_not_in_utf8_names_the_line_of_the_first_bad_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("latin1.toml").write_bytes(f"# {QPU_A}\n# caf\u00e9\n{BATCH}".encode("latin-1"))
    assert main(["latin1.toml", "-q"]) == 2
    assert capsys.readouterr().err == (
        "latin1.toml:2: not UTF-8: byte 0xe9 at column 6 (save the batch file as UTF-8)\n"
    )


def test_status_json_spells_every_state_in_upper_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = expand_text(
        f'[[jobs]]\nqpu = "{QPU_A}"\n{PROGRAM}params.theta = [1, 2, 3, 4]\n'.replace(
            "measure", "// {theta}\nmeasure"
        ),
        tmp_path / "b.toml",
    )
    journal = Journal.open(tmp_path, batch, {"url": "emulator", "embedded": True})
    try:
        done = journal.reserve(0, "11111111-1111-1111-1111-111111111111", QPU_A)
        journal.submitted(done)
        journal.ended(done, "COMPLETED", data={"c": {"0": 10}})
        journal.submitted(journal.reserve(1, "22222222-2222-2222-2222-222222222222", QPU_A))
        journal.reserve(2, "33333333-3333-3333-3333-333333333333", QPU_A)
        trio.run(journal.flush)
    finally:
        journal.close()

    assert main(["status", str(tmp_path), "--json"]) == 0
    states = json.loads(capsys.readouterr().out)["states"]
    assert states == {"COMPLETED": 1, "SUBMITTED": 1, "RESERVED": 1, "PENDING": 1}
    assert main(["status", str(tmp_path)]) == 0
    assert "completed 1, pending 1, reserved 1, submitted 1" in capsys.readouterr().out


def test_the_sdk_keeps_its_python_spelling_of_allow_insecure_http() -> None:
    with pytest.raises(InsecureURLError, match=r"pass allow_insecure_http=True"):
        OqcSdk("http://192.0.2.1:8080", authentication_token="t")
