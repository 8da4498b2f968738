"""A table of bad inputs: each gives exit status 2 (input) or 4 (server), no traceback, and a
message whose first line names the place (file, line, field)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_support import QPU_A, TOKEN, emulator_in_thread

from oqc_trio.emulator.server import RunningEmulator
from oqc_trio.runner.cli import main

GOOD_PROGRAM = (
    'program = """\nOPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\n'
    'measure q -> c;\n"""'
)
GOOD_JOB = f'[[jobs]]\nqpu = "{QPU_A}"\n{GOOD_PROGRAM}\n'

# (id, batch text with {url}, environment, exit status, start of the first stderr line)
CASES = [
    ("toml-syntax", '[server\nurl = "emulator"\n', {}, 2, "bad.toml:1: invalid TOML"),
    ("unknown-top-key", f'colour = "blue"\n{GOOD_JOB}', {}, 2, "bad.toml:1: colour: unknown key"),
    (
        "unknown-server-key",
        f'[server]\nurl = "emulator"\nport = 1\n{GOOD_JOB}',
        {},
        2,
        "bad.toml:3: server.port: unknown key",
    ),
    (
        "unknown-job-key",
        f'[[jobs]]\nqpu = "{QPU_A}"\nprogramme = "x"\n',
        {},
        2,
        "bad.toml:3: jobs[0].programme: unknown key",
    ),
    (
        "shots-wrong-type",
        f'{GOOD_JOB}shots = "many"\n',
        {},
        2,
        "bad.toml:10: jobs[0].shots: expected an integer",
    ),
    (
        "qpu-wrong-type",
        f"[defaults]\nqpu = 7\n{GOOD_JOB}",
        {},
        2,
        "bad.toml:2: defaults.qpu: expected a string",
    ),
    (
        "limits-wrong-type",
        f"{GOOD_JOB}[limits]\nmax_retries = 1.5\n",
        {},
        2,
        "bad.toml:11: limits.max_retries: expected an integer",
    ),
    (
        "on-interrupt-literal",
        f'{GOOD_JOB}[limits]\non_interrupt = "explode"\n',
        {},
        2,
        "bad.toml:11: limits.on_interrupt: expected one of 'detach', 'cancel'",
    ),
    (
        "no-program",
        f'[[jobs]]\nqpu = "{QPU_A}"\n',
        {},
        2,
        "bad.toml:1: jobs[0]: needs one of program, program_file or programs",
    ),
    (
        "two-programs",
        f'{GOOD_JOB}program_file = "x.qasm"\n',
        {},
        2,
        "bad.toml:10: jobs[0].program_file: needs one of",
    ),
    (
        "missing-program-file",
        f'[[jobs]]\nqpu = "{QPU_A}"\nprogram_file = "nope.qasm"\n',
        {},
        2,
        "bad.toml:3: jobs[0].program_file: no such file",
    ),
    (
        "empty-glob",
        f'[[jobs]]\nqpu = "{QPU_A}"\nprograms = ["none/*.qasm"]\n',
        {},
        2,
        "bad.toml:3: jobs[0].programs[0]: glob 'none/*.qasm' matches no file",
    ),
    (
        "not-qasm",
        f'[[jobs]]\nqpu = "{QPU_A}"\nprogram = "h q[0];"\n',
        {},
        2,
        "bad.toml:3: jobs[0].program: not an OpenQASM program",
    ),
    (
        "placeholder-without-param",
        f'[[jobs]]\nqpu = "{QPU_A}"\nprogram = "OPENQASM 2.0; rx({{t}}) q;"\n',
        {},
        2,
        "bad.toml:3: jobs[0].program: placeholder {t} has no value",
    ),
    (
        "param-unused",
        f"{GOOD_JOB}[jobs.params]\ntheta = [0.1]\n",
        {},
        2,
        "bad.toml:11: jobs[0].params.theta: no program uses {theta}",
    ),
    (
        "range-num-and-step",
        f"{GOOD_JOB}params.t = {{start = 0, stop = 1, num = 2, step = 1}}\n",
        {},
        2,
        "bad.toml:10: jobs[0].params.t: a range needs exactly one of 'num' or 'step'",
    ),
    (
        "bad-duration",
        f'{GOOD_JOB}[limits]\ndeadline = "soon"\n',
        {},
        2,
        "bad.toml:11: limits.deadline: expected seconds or a duration",
    ),
    (
        "no-qpu",
        f"[[jobs]]\n{GOOD_PROGRAM}\n",
        {},
        2,
        "bad.toml:1: jobs[0].qpu: no QPU: set qpu here or in [defaults]",
    ),
    (
        "shot-budget",
        f"{GOOD_JOB}shots = 5000\n[limits]\nmax_total_shots = 100\n",
        {},
        2,
        "bad.toml:12: limits.max_total_shots: the batch asks for 5,000 shots",
    ),
    ("no-jobs", '[server]\nurl = "emulator"\n', {}, 2, "bad.toml: jobs: no [[jobs]] entry"),
    (
        "duplicate-names",
        f'{GOOD_JOB}name = "a"\n{GOOD_JOB}name = "a"\n',
        {},
        2,
        "bad.toml:20: jobs[1].name: the name 'a' is used twice",
    ),
    (
        "bad-format",
        f'{GOOD_JOB}[output]\nformats = ["csv", "xlsx"]\n',
        {},
        2,
        "bad.toml:11: output.formats[1]: expected one of",
    ),
    (
        "url-not-http",
        f'[server]\nurl = "ftp://x"\ntoken_env = "T"\n{GOOD_JOB}',
        {},
        2,
        "bad.toml:2: server.url: expected an http(s) URL",
    ),
    (
        "token-env-unset",
        f'[server]\nurl = "{{url}}"\ntoken_env = "OQC_RUN_TEST_UNSET"\n{GOOD_JOB}',
        {},
        2,
        "bad.toml:3: server.token_env: environment variable OQC_RUN_TEST_UNSET is not set",
    ),
    (
        "no-credentials",
        f'[server]\nurl = "{{url}}"\n{GOOD_JOB}',
        {},
        2,
        "bad.toml:1: server.token_env: no credentials",
    ),
    (
        "unknown-qpu",
        f'[server]\nurl = "{{url}}"\ntoken_env = "T"\n[[jobs]]\nqpu = "qpu:nowhere"\n'
        f"{GOOD_PROGRAM}\n",
        {"T": TOKEN},
        2,
        "bad.toml:5: jobs[0].qpu: unknown or inactive QPU",
    ),
    (
        "unknown-qpu-embedded-emulator",
        f'[server.emulator]\nexecutor = "instant"\n[[jobs]]\nqpu = "qpu:nowhere"\n{GOOD_PROGRAM}\n',
        {},
        2,
        "bad.toml:4: jobs[0].qpu: unknown or inactive QPU",
    ),
    (
        "sweep-step-too-fine",
        f'[[jobs]]\nqpu = "{QPU_A}"\nprogram = "OPENQASM 2.0; qreg q[1]; rx({{{{t}}}}) q[0];"\n'
        "params.t = { start = 0.0, stop = 1.0, step = 1e-12 }\n",
        {},
        2,
        "bad.toml:4: jobs[0].params.t: 1,000,000,000,001 values; a batch may expand to at most",
    ),
    (
        "unreachable-server",
        f'[server]\nurl = "http://127.0.0.1:9"\ntoken_env = "T"\n{GOOD_JOB}',
        {"T": TOKEN},
        4,
        "oqc-run: cannot reach http://127.0.0.1:9",
    ),
    (
        "wrong-token",
        f'[server]\nurl = "{{url}}"\ntoken_env = "T"\n{GOOD_JOB}',
        {"T": "wrong"},
        4,
        "oqc-run: http://127.0.0.1:",
    ),
    (
        "sweep-value-twice",
        f"{GOOD_JOB}[jobs.params]\ntheta = [0.5, 0.5]\n",
        {},
        2,
        "bad.toml:11: jobs[0].params.theta: item 1: 0.5 repeats item 0",
    ),
    (
        "sweep-start-nan",
        f"{GOOD_JOB}[jobs.params]\ntheta = {{ start = nan, stop = 1.0, num = 3 }}\n",
        {},
        2,
        "bad.toml:11: jobs[0].params.theta: start: expected a finite number, got nan",
    ),
    (
        "sweep-value-inf",
        f"{GOOD_JOB}[jobs.params]\ntheta = [inf, 1.0]\n",
        {},
        2,
        "bad.toml:11: jobs[0].params.theta: item 0: expected a finite number, got inf",
    ),
    (
        "jobs-as-a-table",
        f'[defaults]\nqpu = "{QPU_A}"\n[jobs]\n{GOOD_PROGRAM}\n',
        {},
        2,
        "bad.toml:3: jobs: must be an array of tables, written [[jobs]] (one per entry), "
        "got a table",
    ),
    (
        "array-of-tables-misspelt",
        f'{GOOD_JOB}[[job]]\nqpu = "{QPU_A}"\n',
        {},
        2,
        "bad.toml:10: job: unknown key",
    ),
    (
        "token-env-empty",
        f'[server]\nurl = "{{url}}"\ntoken_env = "T"\n{GOOD_JOB}',
        {"T": ""},
        2,
        "bad.toml:3: server.token_env: environment variable T is empty",
    ),
    (
        "emulator-settings-with-a-remote-url",
        f'[server]\nurl = "{{url}}"\ntoken_env = "T"\n[server.emulator]\nexecutor = "instant"\n'
        f"{GOOD_JOB}",
        {"T": TOKEN},
        2,
        "bad.toml:4: server.emulator: [server.emulator] applies only to the embedded emulator",
    ),
    (
        "emulator-dotted-key-with-a-remote-url",
        f'[server]\nurl = "{{url}}"\ntoken_env = "T"\nemulator.config = "emu.toml"\n{GOOD_JOB}',
        {"T": TOKEN},
        2,
        "bad.toml:4: server.emulator: [server.emulator] applies only to the embedded emulator",
    ),
    (
        "insecure-http-names-the-batch-key",
        f'[server]\nurl = "http://192.0.2.1:8080"\ntoken_env = "T"\n{GOOD_JOB}',
        {"T": TOKEN},
        2,
        "bad.toml:2: server.url: refusing plain http:// to '192.0.2.1': the token would travel "
        "unencrypted. Use https://, or set allow_insecure_http = true in [server]",
    ),
    (
        "name-not-ascii",
        f'{GOOD_JOB}name = "\u03b8"\n',
        {},
        2,
        "bad.toml:10: jobs[0].name: expected ASCII letters (A-Z, a-z), digits or _.:+- only, "
        "got '\u03b8'",
    ),
    (
        "default-name-taken-by-an-earlier-entry",
        f'{GOOD_JOB}name = "job2"\n{GOOD_JOB}',
        {},
        2,
        "bad.toml:11: jobs[1].name: the name 'job2' is used twice: this entry has no name, so "
        "it is named 'job2' by default (unnamed entries are named job<N> after their position "
        "N), and jobs[0] is given that name",
    ),
    (
        "given-name-is-an-earlier-default-name",
        f'{GOOD_JOB}{GOOD_JOB}name = "job1"\n',
        {},
        2,
        "bad.toml:19: jobs[1].name: the name 'job1' is used twice: jobs[0] has no name, so it "
        "is named 'job1' by default",
    ),
]


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with emulator_in_thread() as emu:
        yield emu


@pytest.mark.parametrize(
    ("text", "env", "status", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(
    text: str,
    env: dict[str, str],
    status: int,
    expected: str,
    emulator: RunningEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    Path("bad.toml").write_text(text.replace("{url}", emulator.url))
    assert main(["bad.toml", "-q"]) == status
    err = capsys.readouterr().err
    first = err.strip().splitlines()[0]
    assert first.startswith(expected), err
    assert "Traceback" not in err
    if status == 4 and "wrong" in text:
        assert "authentication failed" in first


def test_there_are_twenty_or_more_bad_inputs() -> None:
    assert len(CASES) >= 20


def test_missing_batch_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "absent.toml")]) == 2
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'absent.toml'}: no such file")


def test_a_directory_instead_of_a_batch_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "x.toml", "--colour"]) == 2
    assert "unrecognized arguments: --colour" in capsys.readouterr().err


def test_status_of_a_directory_without_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", str(tmp_path)]) == 2
    assert "holds no oqc-run journal" in capsys.readouterr().err


def test_a_locked_output_directory_refuses_a_second_runner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("b.toml").write_text(GOOD_JOB)
    (tmp_path / "b.out" / "journal").mkdir(parents=True)
    fd = os.open(tmp_path / "b.out" / "journal" / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"4242")
        assert main(["b.toml"]) == 2
    finally:
        os.close(fd)
    assert "another oqc-run (pid 4242) is running on b.out" in capsys.readouterr().err


def test_a_batch_refused_before_any_reservation_can_be_edited_and_rerun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its journal holds no task ID, so the edited batch (another hash) starts over there
    # instead of being refused as "another batch".
    monkeypatch.chdir(tmp_path)
    head = '[server.emulator]\nexecutor = "instant"\n[[jobs]]\n'
    Path("b.toml").write_text(f'{head}qpu = "qpu:nowhere"\n{GOOD_PROGRAM}\n')
    assert main(["b.toml", "-q"]) == 2
    assert "unknown or inactive QPU" in capsys.readouterr().err
    Path("b.toml").write_text(f'{head}qpu = "{QPU_A}"\n{GOOD_PROGRAM}\n')
    assert main(["b.toml", "-q"]) == 0, capsys.readouterr().err
