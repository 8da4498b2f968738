"""The batch file: structuring, line numbers, sweeps, expansion, keys and the batch hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from runner_support import QPU_A, QPU_B, RX

from oqc_trio.config import ExperimentalConfig
from oqc_trio.runner.expand import expand_text
from oqc_trio.runner.schema import BatchError, Sweep, key_lines, parse_batch_text


def test_defaults_of_an_almost_empty_file() -> None:
    batch = parse_batch_text(f'[[jobs]]\nqpu = "{QPU_A}"\nprogram = "OPENQASM 2.0;"\n', "b.toml")
    assert batch.server.embedded and batch.server.emulator.executor == "aer"
    assert batch.limits.on_interrupt == "detach" and batch.limits.max_retries == 2
    assert batch.output.formats == ["snapshot", "csv", "hdf5"]
    assert batch.jobs[0].qpu == [QPU_A]  # a scalar is a list of one


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ('"90s"', 90.0),
        ('"15m"', 900.0),
        ('"2h"', 7200.0),
        ('"1h30m"', 5400.0),
        ('"1d"', 86400.0),
        ("0.5", 0.5),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    batch = parse_batch_text(f"[limits]\ndeadline = {text}\n", "b.toml")
    assert batch.limits.deadline == seconds


def test_every_error_is_reported_with_its_line() -> None:
    text = '[server]\nurl = 3\n\n[[jobs]]\nshots = "x"\n\n[[jobs]]\nwhat = 1\n'
    with pytest.raises(BatchError) as caught:
        parse_batch_text(text, "b.toml")
    assert [str(p) for p in caught.value.problems] == [
        "b.toml:2: server.url: expected a string, got 3",
        "b.toml:5: jobs[0].shots: expected an integer, got 'x'",
        "b.toml:8: jobs[1].what: unknown key (expected one of: results_format, "
        "repetition_period, passive_reset_time, noise, bond_dimension, tag, name, program, "
        "program_file, programs, qpu, shots, params)",
    ]


def test_key_lines_handles_arrays_of_tables_dotted_keys_and_multiline_strings() -> None:
    text = (
        "[[jobs]]\n"  # 1
        'program = """\n'  # 2
        "fake = 1\n"  # 3: inside a string
        '"""\n'  # 4
        "params.theta = [1]\n"  # 5
        "[[jobs]]\n"  # 6
        "[jobs.params]\n"  # 7
        "phi = { start = 0, stop = 1, num = 2 }\n"  # 8
    )
    lines = key_lines(text)
    assert lines[("jobs", 0)] == 1
    assert lines[("jobs", 0, "program")] == 2
    assert ("jobs", 0, "fake") not in lines
    assert lines[("jobs", 0, "params", "theta")] == 5
    assert lines[("jobs", 1)] == 6
    assert lines[("jobs", 1, "params")] == 7
    assert lines[("jobs", 1, "params", "phi")] == 8


@given(
    start=st.floats(-10, 10, allow_nan=False),
    width=st.floats(0.001, 10),
    num=st.integers(1, 200),
)
def test_a_num_range_has_num_points_and_both_ends(start: float, width: float, num: int) -> None:
    points = Sweep(start=start, stop=start + width, num=num).points()
    assert len(points) == num
    assert points[0] == pytest.approx(start, abs=1e-9)
    if num > 1:
        assert points[-1] == pytest.approx(start + width, abs=1e-9)
        assert points == sorted(points)


def test_a_step_range_includes_a_reached_stop() -> None:
    assert Sweep(start=0.0, stop=0.3, step=0.1).points() == [0.0, 0.1, 0.2, 0.3]
    assert Sweep(start=1.0, stop=0.0, step=-0.5).points() == [1.0, 0.5, 0.0]
    assert Sweep(start=0.0, stop=0.25, step=0.1).points() == [0.0, 0.1, 0.2]


def _sweep_text(points: int = 3, program: str = RX) -> str:
    return (
        f'[defaults]\nqpu = ["{QPU_A}", "{QPU_B}"]\nshots = [10, 20]\n'
        f'[[jobs]]\nname = "rx"\nprogram = """{program}"""\n'
        f"[jobs.params]\ntheta = {{start = 0.0, stop = 1.0, num = {points}}}\n"
        f'label = ["a", "b"]\n'
    ).replace("rx({theta})", "rx({theta}) q[0]; // {label}\nbarrier")


def test_expansion_is_the_cartesian_product_with_stable_keys() -> None:
    batch = expand_text(_sweep_text(), "b.toml")
    assert len(batch.jobs) == 2 * 2 * 3 * 2
    assert batch.param_names == ["theta", "label"]
    first = batch.jobs[0]
    assert first.key == f"rx/qpu={QPU_A}/shots=10/theta=0.0/label=a"
    assert "rx(0.0) q[0]; // a" in first.program
    assert len({job.key for job in batch.jobs}) == len(batch.jobs)
    assert [j.index for j in batch.jobs] == list(range(len(batch.jobs)))
    assert batch.total_shots == 6 * 10 * 2 + 6 * 20 * 2
    assert len(batch.configs) == 2  # one per shot count
    assert batch.jobs[1].sweep == {"theta": 0.0, "label": "b"}


def test_the_hash_changes_with_what_is_sent_and_only_with_it() -> None:
    base = expand_text(_sweep_text(), "b.toml").hash
    assert expand_text(_sweep_text(), "elsewhere/b.toml").hash == base
    assert expand_text(_sweep_text() + "[limits]\nmax_retries = 5\n", "b.toml").hash == base
    assert expand_text(_sweep_text(points=4), "b.toml").hash != base
    assert expand_text(_sweep_text(program=RX.replace("q[1]", "q[2]")), "b.toml").hash != base


def test_the_hash_is_that_of_one_json_line_per_job() -> None:
    """The documented definition, so journals of earlier versions keep resuming."""
    batch = expand_text(
        _sweep_text().replace("[defaults]\n", '[defaults]\ntag = "t\\u00e9"\n'), "b.toml"
    )
    digest = hashlib.sha256()
    for job in batch.jobs:
        config = batch.configs[job.config]
        record = [job.key, job.program, job.qpu, [config.json, config.type], job.tag]
        digest.update(json.dumps(record, separators=(",", ":")).encode() + b"\n")
    assert batch.jobs[0].tag == "t\u00e9"
    assert batch.hash == digest.hexdigest()


def test_config_options_build_the_configs() -> None:
    text = (
        f'[defaults]\nqpu = "{QPU_A}"\npassive_reset_time = 0.0002\n'
        '[[jobs]]\nprogram = "OPENQASM 2.0;"\nshots = 7\nnoise = true\nbond_dimension = 4\n'
    )
    batch = expand_text(text, "b.toml")
    config = batch.config_objects[0]
    assert isinstance(config, ExperimentalConfig)
    assert config.repeats == 7 and config.passive_reset_time == 0.0002
    assert config.external_config == {"noise_enabled": True, "bond_dimension": 4}
    assert batch.configs[0].type == "ExperimentalConfig"


def test_program_files_are_relative_to_the_batch_file(tmp_path: Path) -> None:
    (tmp_path / "progs").mkdir()
    for name in ("b.qasm", "a.qasm"):
        (tmp_path / "progs" / name).write_text("OPENQASM 3;\nqubit q;\n")
    (tmp_path / "progs" / "notes.txt").write_text("not a program")
    text = f'[[jobs]]\nqpu = "{QPU_A}"\nprograms = ["progs/*.qasm", "progs/a.*"]\n'
    batch = expand_text(text, tmp_path / "b.toml")
    assert [job.source for job in batch.jobs] == ["progs/a.qasm", "progs/b.qasm"]
    assert batch.jobs[0].key == "job1/program=progs/a.qasm"


def test_braces_of_openqasm_3_blocks_are_not_placeholders() -> None:
    program = "OPENQASM 3;\\nqubit q; bit c;\\nif (c) { x q; }\\ngate g a { h a; }"
    batch = expand_text(f'[[jobs]]\nqpu = "{QPU_A}"\nprogram = "{program}"\n', "b.toml")
    assert "{ x q; }" in batch.jobs[0].program
