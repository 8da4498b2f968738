"""Tests of the emulator's execution engine (parsing, OQC bit order, Aer workers)."""

from __future__ import annotations

import math
import time

import pytest
import trio

pytest.importorskip("qiskit_aer")
pytest.importorskip("trio_parallel")

from oqc_trio.emulator.executor import (
    ERROR_INVALID_SHOTS,
    ERROR_PARSE,
    ERROR_TIMEOUT,
    ERROR_TOO_MANY_QUBITS,
    ERROR_UNSUPPORTED_LANGUAGE,
    ExecutionOutcome,
    QpuLimits,
    execute_program,
    open_executor,
)

LIMITS = QpuLimits(max_qubits=8, max_shots=10_000)
SHOTS = 50

QASM2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
QASM3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'

# a[0]=1, a[1]=0, b[0]=0, b[1]=1, b[2]=1: qiskit would print '110 01'.
ASYMMETRIC_QASM2 = QASM2 + (
    "qreg q[5];\ncreg a[2];\ncreg b[3];\n"
    "x q[0];\nx q[3];\nx q[4];\n"
    "measure q[0] -> a[0];\nmeasure q[1] -> a[1];\n"
    "measure q[2] -> b[0];\nmeasure q[3] -> b[1];\nmeasure q[4] -> b[2];\n"
)
ASYMMETRIC_QASM3 = QASM3 + (
    "qubit[5] q;\nbit[2] a;\nbit[3] b;\n"
    "x q[0];\nx q[3];\nx q[4];\n"
    "a[0] = measure q[0];\na[1] = measure q[1];\n"
    "b[0] = measure q[2];\nb[1] = measure q[3];\nb[2] = measure q[4];\n"
)
# Never terminates: nothing in the loop body changes c[0].
RUNAWAY_QASM3 = QASM3 + (
    "qubit[1] q;\nbit[1] c;\nc[0] = measure q[0];\nwhile (c[0] == false) { x q[0]; }\n"
    # Aer drops operations after the last measurement, so measure once more.
    "c[0] = measure q[0];\n"
)


def _ok(outcome: ExecutionOutcome) -> dict[str, dict[str, int]]:
    assert outcome.error_code is None, outcome.error_message
    assert outcome.results is not None
    return outcome.results


def _failed(outcome: ExecutionOutcome, code: int) -> str:
    assert outcome.results is None
    assert outcome.error_code == code, outcome
    assert outcome.error_message
    return outcome.error_message


@pytest.mark.parametrize("program", [ASYMMETRIC_QASM2, ASYMMETRIC_QASM3], ids=["qasm2", "qasm3"])
def test_register_bit_order_is_oqc_order(program: str) -> None:
    results = _ok(execute_program(program, SHOTS, LIMITS, seed=1))
    assert results == {"a": {"10": SHOTS}, "b": {"011": SHOTS}}


def test_metadata_describes_the_circuit() -> None:
    outcome = execute_program(ASYMMETRIC_QASM2, SHOTS, LIMITS, seed=1)
    metadata = outcome.execution_metadata
    assert metadata["gate_counts"] == {"x": 3, "measure": 5}
    assert metadata["depth"] == 2
    assert metadata["qubits_used"] == 5
    assert metadata["clbits"] == 5
    assert metadata["shots"] == SHOTS
    assert metadata["language"] == "openqasm2"
    assert metadata["executor"] == "aer"
    assert metadata["simulation_ms"] > 0


def test_qasm3_scalar_bits_are_reported_under_their_own_names() -> None:
    program = QASM3 + (
        "qubit[3] q;\nbit flag;\nbit[2] c;\nbit other;\n"
        "x q[0];\nx q[2];\n"
        "flag = measure q[0];\nc[0] = measure q[1];\nc[1] = measure q[2];\n"
        "other = measure q[1];\n"
    )
    results = _ok(execute_program(program, SHOTS, LIMITS, seed=1))
    assert results == {"flag": {"1": SHOTS}, "c": {"01": SHOTS}, "other": {"0": SHOTS}}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [("if(c==1) x q[1];", "11"), ("if(c==2) x q[1];", "10")],
    ids=["taken", "not-taken"],
)
def test_qasm2_mid_circuit_measurement_and_condition(condition: str, expected: str) -> None:
    program = QASM2 + (
        f"qreg q[2];\ncreg c[2];\nx q[0];\nmeasure q[0] -> c[0];\n{condition}\n"
        "measure q[1] -> c[1];\n"
    )
    assert _ok(execute_program(program, SHOTS, LIMITS, seed=1)) == {"c": {expected: SHOTS}}


def test_qasm3_mid_circuit_measurement_and_condition() -> None:
    program = QASM3 + (
        "qubit[3] q;\nbit[2] c;\nbit[1] d;\nx q[0];\nc[0] = measure q[0];\n"
        "if (c[0]) x q[1];\nif (c[1]) x q[2];\nc[1] = measure q[1];\nd[0] = measure q[2];\n"
    )
    results = _ok(execute_program(program, SHOTS, LIMITS, seed=1))
    assert results == {"c": {"11": SHOTS}, "d": {"0": SHOTS}}


def test_ecr_and_custom_gates_run() -> None:
    program = QASM2 + (
        "gate flip a { u0(1) a; x a; }\nqreg q[2];\ncreg c[2];\n"
        "flip q[0];\necr q[0],q[1];\nmeasure q -> c;\n"
    )
    results = _ok(execute_program(program, 400, LIMITS, seed=3))
    # ECR on |10> (q0=1) gives an equal superposition on q1 with q0 flipped to 0.
    assert set(results["c"]) == {"00", "01"}
    assert sum(results["c"].values()) == 400


def test_program_without_measurement_gives_empty_results() -> None:
    outcome = execute_program(QASM2 + "qreg q[2];\ncreg c[2];\nh q[0];\n", SHOTS, LIMITS)
    assert _ok(outcome) == {}
    assert outcome.execution_metadata["gate_counts"] == {"h": 1}


def test_header_missing_but_qelib_included_is_qasm2() -> None:
    program = 'include "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\nmeasure q -> c;\n'
    assert _ok(execute_program(program, SHOTS, LIMITS)) == {"c": {"1": SHOTS}}


def test_qasm2_syntax_error_gives_line_and_column() -> None:
    # Line 4 is "h q[0]; $": the stray '$' is the 9th character.
    message = _failed(execute_program(QASM2 + "qreg q[2];\nh q[0]; $\n", 10, LIMITS), ERROR_PARSE)
    assert message.startswith("line 4, column 9:")
    message = _failed(
        execute_program(QASM2 + "qreg q[2];\n   foo q[0];\n", 10, LIMITS), ERROR_PARSE
    )
    assert message.startswith("line 4, column 4:")
    assert "foo" in message


def test_qasm3_syntax_error_gives_line_and_column() -> None:
    # Line 4 is "  h q[0];  cx q[0] q[1];": the parser trips on the second 'q', column 20.
    program = QASM3 + "qubit[2] q;\n  h q[0];  cx q[0] q[1];\n"
    message = _failed(execute_program(program, 10, LIMITS), ERROR_PARSE)
    assert message.startswith("line 4, column 20:")
    assert "'q'" in message
    # Missing ';' at the end: reported at the end of the program.
    message = _failed(execute_program(QASM3 + "qubit[2] q;\nh q[0]\n", 10, LIMITS), ERROR_PARSE)
    assert message.startswith("line 5, column 1:")
    assert "end of program" in message


def test_qasm3_semantic_error_gives_line_and_column() -> None:
    program = QASM3 + "qubit[2] q;\nfoo q[0];\n"
    message = _failed(execute_program(program, 10, LIMITS), ERROR_PARSE)
    assert message.startswith("line 4, column 1:")
    assert "foo" in message


def test_too_many_qubits() -> None:
    program = QASM2 + "qreg q[9];\ncreg c[1];\nmeasure q[0] -> c[0];\n"
    message = _failed(execute_program(program, 10, LIMITS), ERROR_TOO_MANY_QUBITS)
    assert "9" in message and "8" in message


@pytest.mark.parametrize("shots", [0, -1, LIMITS.max_shots + 1])
def test_invalid_shots(shots: int) -> None:
    _failed(execute_program(ASYMMETRIC_QASM2, shots, LIMITS), ERROR_INVALID_SHOTS)


@pytest.mark.parametrize(
    "program",
    [
        "; ModuleID = 'bell'\nsource_filename = \"bell\"\n",
        "%Qubit = type opaque\ndefine void @main() #0 {\nentry:\n  ret void\n}\n",
        "BC\xc0\xde\x35\x14\x00\x00",
    ],
    ids=["module-id", "define", "bitcode"],
)
def test_qir_is_unsupported(program: str) -> None:
    message = _failed(execute_program(program, 10, LIMITS), ERROR_UNSUPPORTED_LANGUAGE)
    assert "QIR is not supported" in message


@pytest.mark.parametrize(
    "program", ["OPENQASM 4.0;\nqubit q;\n", "qreg q[1];\n"], ids=["version", "no-header"]
)
def test_other_languages_are_unsupported(program: str) -> None:
    _failed(execute_program(program, 10, LIMITS), ERROR_UNSUPPORTED_LANGUAGE)


def test_sampled_counts_fit_exact_probabilities() -> None:
    """Chi-square goodness of fit; wrong bit order or angles give a statistic in the 1000s."""
    p0, p1 = 0.2, 0.7  # P(measure 1) for q[0] and q[1]
    theta0, theta1 = 2 * math.asin(math.sqrt(p0)), 2 * math.asin(math.sqrt(p1))
    program = QASM2 + (
        f"qreg q[2];\ncreg c[2];\nry({theta0!r}) q[0];\nry({theta1!r}) q[1];\nmeasure q -> c;\n"
    )
    shots = 4000
    counts = _ok(execute_program(program, shots, LIMITS, seed=12345))["c"]
    expected = {
        f"{b0}{b1}": shots * (p0 if b0 else 1 - p0) * (p1 if b1 else 1 - p1)
        for b0 in (0, 1)
        for b1 in (0, 1)
    }
    assert set(counts) <= set(expected)
    assert sum(counts.values()) == shots
    statistic = sum((counts.get(k, 0) - e) ** 2 / e for k, e in expected.items())
    # 3 degrees of freedom: P(chi2 > 21.1) = 1e-4.
    assert statistic < 21.1, (statistic, counts)


def test_seed_makes_sampling_reproducible() -> None:
    program = QASM2 + "qreg q[3];\ncreg c[3];\nh q;\nmeasure q -> c;\n"
    first = execute_program(program, 200, LIMITS, seed=7)
    assert first.results == execute_program(program, 200, LIMITS, seed=7).results


async def test_aer_executor_runs_programs_concurrently() -> None:
    programs = [ASYMMETRIC_QASM2, ASYMMETRIC_QASM3] * 3
    outcomes: list[ExecutionOutcome | None] = [None] * len(programs)

    async def run_one(index: int, program: str) -> None:
        outcomes[index] = await executor.run(program, SHOTS, LIMITS, seed=index)

    async with open_executor("aer", workers=2, task_timeout_s=30.0) as executor:
        async with trio.open_nursery() as nursery:
            for index, program in enumerate(programs):
                nursery.start_soon(run_one, index, program)
        bad = await executor.run(QASM3 + "qubit[2] q;\nh q[0]\n", 10, LIMITS)
    for outcome in outcomes:
        assert outcome is not None
        assert _ok(outcome) == {"a": {"10": SHOTS}, "b": {"011": SHOTS}}
    assert bad.error_code == ERROR_PARSE


async def test_aer_executor_kills_a_run_past_its_timeout() -> None:
    async with open_executor("aer", workers=1, task_timeout_s=1.0) as executor:
        started = time.monotonic()
        outcome = await executor.run(RUNAWAY_QASM3, 1, LIMITS)
        assert time.monotonic() - started < 10
        assert "execution exceeded 1 s" in _failed(outcome, ERROR_TIMEOUT)
        # The killed worker is replaced.
        assert _ok(await executor.run(ASYMMETRIC_QASM2, SHOTS, LIMITS))["a"] == {"10": SHOTS}


async def test_cancelling_a_run_kills_it_promptly_without_blocking_the_loop() -> None:
    max_lag = 0.0

    async def watch_loop_lag() -> None:
        nonlocal max_lag
        while True:
            before = trio.current_time()
            await trio.sleep(0.01)
            max_lag = max(max_lag, trio.current_time() - before - 0.01)

    async with (
        open_executor("aer", workers=1, task_timeout_s=None) as executor,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(watch_loop_lag)
        started = time.monotonic()
        with trio.move_on_after(1.0) as scope:
            await executor.run(RUNAWAY_QASM3, 1, LIMITS)
        assert scope.cancelled_caught
        assert time.monotonic() - started < 10
        nursery.cancel_scope.cancel()
    # Generous: the point is that the simulation does not hold the event loop.
    assert max_lag < 0.5


async def test_instant_executor_shape_without_simulation() -> None:
    program = QASM3 + "qubit[3] q;\nbit flag;\nbit[2] c;\n// bit[9] commented;\nh q[0];\n"
    async with open_executor("instant") as executor:
        outcome = await executor.run(program, 123, LIMITS)
        assert _ok(outcome) == {"flag": {"0": 123}, "c": {"00": 123}}
        assert outcome.execution_metadata["executor"] == "instant"
        assert outcome.execution_metadata["clbits"] == 3
        assert _ok(await executor.run(ASYMMETRIC_QASM2, 5, LIMITS)) == {
            "a": {"00": 5},
            "b": {"000": 5},
        }
        qir = await executor.run("; ModuleID = 'x'\n", 5, LIMITS)
        assert qir.error_code == ERROR_UNSUPPORTED_LANGUAGE
        shots = await executor.run(ASYMMETRIC_QASM2, 0, LIMITS)
        assert shots.error_code == ERROR_INVALID_SHOTS


async def test_open_executor_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown executor kind"):
        async with open_executor("gpu"):  # type: ignore[arg-type]
            pass
