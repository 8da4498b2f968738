"""Program handling for oqc-emulator: language detection, parsing, and OQC bit order.

Nothing here imports qiskit at module level: the cheap helpers (:func:`detect_language`,
:func:`declared_registers`) run in the server process, and only :func:`parse_program`
pulls qiskit in (inside the worker processes).

Positions in error messages are ``line L, column C`` with both numbers **1-based** (as
editors show them); qiskit's parsers report 0-based columns, which are converted here.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

__all__ = [
    "ERROR_CONNECTIVITY",
    "ERROR_EXECUTION",
    "ERROR_INVALID_SHOTS",
    "ERROR_PARSE",
    "ERROR_TIMEOUT",
    "ERROR_TOO_MANY_QUBITS",
    "ERROR_UNSUPPORTED_LANGUAGE",
    "Language",
    "ProgramError",
    "RegisterLayout",
    "binary_counts",
    "declared_registers",
    "detect_language",
    "has_measurement",
    "parse_program",
    "register_layout",
]

#: The program is not valid OpenQASM (syntax error, undefined gate, bad index...).
ERROR_PARSE = 1001
#: The program declares more qubits than the QPU has.
ERROR_TOO_MANY_QUBITS = 1002
#: ``shots`` is below 1 or above the QPU's maximum.
ERROR_INVALID_SHOTS = 1003
#: The program is not OpenQASM 2 or 3 (QIR, unknown version, no header).
ERROR_UNSUPPORTED_LANGUAGE = 1004
#: The simulator failed, or its worker process died.
ERROR_EXECUTION = 1005
#: The simulation ran longer than the executor's per-task timeout and was killed.
ERROR_TIMEOUT = 1006
#: A two-qubit gate joins qubits the QPU does not couple (and the QPU does not route).
ERROR_CONNECTIVITY = 1007

Language = Literal["openqasm2", "openqasm3"]

#: One BinaryCount entry: the register (or scalar bit) name and its clbit indices in the
#: circuit, element 0 first (element 0 is the leftmost character of the bitstring).
RegisterLayout = list[tuple[str, list[int]]]


class ProgramError(Exception):
    """A program that must make its task FAIL with ``code`` and a human-readable ``message``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_HEADER = re.compile(r"\A\s*OPENQASM\s+(\d+)(?:\.\d+)?\s*;")
_LLVM_DEFINE = re.compile(r"^\s*define\s", re.M)
# LLVM bitcode magic numbers (plain and wrapper), raw or base64-encoded.
_BITCODE_PREFIXES = ("BC\xc0\xde", "\xde\xc0\x17\x0b", "QkPA3", "3sAXCw")
# Classical declarations, in program order. Groups: (creg name, size), (bit[size], name),
# scalar bit name, scalar creg name.
_CLASSICAL_DECL = re.compile(
    r"\bcreg\s+(?P<creg>[A-Za-z_]\w*)\s*\[\s*(?P<cregn>\d+)\s*\]"
    r"|\bbit\s*\[\s*(?P<bitn>\d+)\s*\]\s*(?P<bit>[A-Za-z_]\w*)"
    r"|\bbit\s+(?P<sbit>[A-Za-z_]\w*)\s*[;=]"
    r"|\bcreg\s+(?P<screg>[A-Za-z_]\w*)\s*;"
)
_QASM_POSITION = re.compile(r"^(?:<input>:)?(\d+),(\d+):\s*(.*)$", re.S)


def _strip_comments(program: str) -> str:
    return _COMMENTS.sub(" ", program)


def _looks_like_qir(program: str) -> bool:
    head = program.lstrip()
    return (
        head.startswith("; ModuleID")
        or head.startswith(_BITCODE_PREFIXES)
        or _LLVM_DEFINE.search(program) is not None
    )


def detect_language(program: str) -> Language:
    """Return the program's language from its ``OPENQASM`` header, or raise :class:`ProgramError`.

    A program without a header counts as OpenQASM 2 when it includes ``qelib1.inc``. QIR
    (LLVM IR text or bitcode) and anything else unrecognised raise
    :data:`ERROR_UNSUPPORTED_LANGUAGE`.
    """
    stripped = _strip_comments(program)
    header = _HEADER.match(stripped)
    if header is not None:
        major = header.group(1)
        if major == "2":
            return "openqasm2"
        if major == "3":
            return "openqasm3"
        raise ProgramError(
            ERROR_UNSUPPORTED_LANGUAGE,
            f"unsupported program language: OpenQASM version {major} is not supported "
            "(expected 2 or 3)",
        )
    if _looks_like_qir(program):
        raise ProgramError(
            ERROR_UNSUPPORTED_LANGUAGE,
            "unsupported program language: QIR is not supported by oqc-emulator",
        )
    if 'include "qelib1.inc"' in stripped:
        return "openqasm2"
    if not stripped.strip():
        raise ProgramError(ERROR_PARSE, "empty program")
    raise ProgramError(
        ERROR_UNSUPPORTED_LANGUAGE,
        "unsupported program language: expected an 'OPENQASM 2.0;' or 'OPENQASM 3.0;' header",
    )


def declared_registers(program: str) -> list[tuple[str, int]]:
    """Classical registers and scalar bits declared in ``program``, in order, with widths.

    A cheap regular-expression scan (no parsing), used by the instant executor and to
    name QASM3 scalar bits. Scalar ``bit flag;`` / ``creg flag;`` have width 1.
    """
    found: list[tuple[str, int]] = []
    for match in _CLASSICAL_DECL.finditer(_strip_comments(program)):
        if match["creg"]:
            found.append((match["creg"], int(match["cregn"])))
        elif match["bit"]:
            found.append((match["bit"], int(match["bitn"])))
        else:
            found.append((match["sbit"] or match["screg"], 1))
    return found


def _scalar_bit_names(program: str) -> list[str]:
    return [
        match["sbit"] or match["screg"]
        for match in _CLASSICAL_DECL.finditer(_strip_comments(program))
        if match["sbit"] or match["screg"]
    ]


def _positioned(message: str) -> str:
    """Rewrite qiskit's ``L,C: msg`` (0-based column) as ``line L, column C+1: msg``."""
    match = _QASM_POSITION.match(message.strip())
    if match is None:
        return message
    line, column, text = match.groups()
    return f"line {line}, column {int(column) + 1}: {text}"


def _error_text(exc: Exception) -> str:
    # QiskitError's str() is the repr of its message, quotes included.
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) else str(exc)


def _qasm3_syntax_message(exc: BaseException) -> str:
    """Build a message for ``openqasm3``'s ANTLR errors, whose own message is empty.

    The position lives on the ANTLR exception found as ``exc.__cause__.args[0]``.
    """
    antlr = _antlr_error(exc)
    if antlr is None:
        return f"syntax error: {exc}" if str(exc) else "syntax error"
    token = antlr.offendingToken
    where = f"line {token.line}, column {token.column + 1}"
    if token.text == "<EOF>":
        message = f"{where}: unexpected end of program"
    else:
        message = f"{where}: syntax error at {token.text!r}"
    with contextlib.suppress(Exception):
        expected = antlr.getExpectedTokens()
        names = expected.toString(antlr.recognizer.literalNames, antlr.recognizer.symbolicNames)
        # A long alternative list ("{'bool', 'bit', ...}") helps nobody.
        if 0 < len(expected) <= 4:
            message += f", expected {names}"
    return message


def _antlr_error(exc: BaseException) -> Any:
    """The ANTLR recognition error (with ``offendingToken``) in ``exc``'s cause chain."""
    cause: BaseException | None = exc
    while cause is not None:
        candidate = cause.args[0] if cause.args else None
        if getattr(candidate, "offendingToken", None) is not None:
            return candidate
        cause = cause.__cause__ or cause.__context__
    return None


def _qasm2_custom_instructions() -> tuple[Any, ...]:
    from qiskit import qasm2
    from qiskit.circuit.library import ECRGate

    # As OQC's compiler does: qiskit's legacy qelib1 gate set plus a built-in ``ecr``.
    ecr = qasm2.CustomInstruction("ecr", 0, 2, ECRGate, builtin=True)
    return (*qasm2.LEGACY_CUSTOM_INSTRUCTIONS, ecr)


def parse_program(program: str, language: Language) -> QuantumCircuit:
    """Parse ``program`` into a circuit, or raise :class:`ProgramError` (:data:`ERROR_PARSE`)."""
    if language == "openqasm2":
        from qiskit import qasm2

        try:
            return qasm2.loads(program, custom_instructions=_qasm2_custom_instructions())
        except qasm2.QASM2ParseError as exc:
            raise ProgramError(ERROR_PARSE, _positioned(_error_text(exc))) from exc
        except Exception as exc:
            raise ProgramError(ERROR_PARSE, f"invalid OpenQASM 2 program: {exc}") from exc

    from qiskit import qasm3

    try:
        # ANTLR prints some syntax errors on stderr as well as raising them.
        with contextlib.redirect_stderr(io.StringIO()):
            return qasm3.loads(program)
    except qasm3.QASM3ImporterError as exc:
        raise ProgramError(ERROR_PARSE, _positioned(_error_text(exc))) from exc
    except Exception as exc:
        if type(exc).__name__ == "QASM3ParsingError":
            raise ProgramError(ERROR_PARSE, _qasm3_syntax_message(exc)) from exc
        detail = str(exc) or type(exc).__name__
        raise ProgramError(ERROR_PARSE, f"invalid OpenQASM 3 program: {detail}") from exc


def has_measurement(circuit: QuantumCircuit) -> bool:
    """Whether ``circuit`` measures anything, including inside control-flow blocks."""
    for instruction in circuit.data:
        operation = instruction.operation
        if operation.name == "measure":
            return True
        if any(has_measurement(block) for block in getattr(operation, "blocks", ())):
            return True
    return False


def register_layout(circuit: QuantumCircuit, program: str) -> RegisterLayout:
    """Map each classical register (and QASM3 scalar bit) to its clbit indices.

    Every clbit goes through ``circuit.find_bit(clbit).registers``. A clbit in no register
    is a QASM3 scalar (``bit flag;``), which qiskit keeps as a loose, nameless clbit; its
    name is recovered from the program's scalar declarations, which qiskit turns into
    clbits in declaration order. Entries come in the order their first clbit appears.
    """
    scalar_names = iter(_scalar_bit_names(program))
    bits_by_name: dict[str, list[int | None]] = {}
    for index, clbit in enumerate(circuit.clbits):
        registers = circuit.find_bit(clbit).registers
        if not registers:
            name = next(scalar_names, None) or f"clbit_{index}"
            bits_by_name[name] = [index]
            continue
        for register, position in registers:
            slots = bits_by_name.setdefault(register.name, [None] * register.size)
            slots[position] = index
    return [
        (name, [index for index in slots if index is not None])
        for name, slots in bits_by_name.items()
    ]


def binary_counts(memory: Iterable[str], layout: RegisterLayout) -> dict[str, dict[str, int]]:
    """Turn Aer's per-shot hex memory into OQC's BinaryCount ``{register: {bitstring: n}}``.

    Bit ``i`` of each hex value is clbit ``i`` of the circuit. Each register's bitstring is
    ``reg[0] reg[1] ... reg[n-1]`` (element 0 leftmost), always ``n`` characters.
    """
    results: dict[str, dict[str, int]] = {name: {} for name, _ in layout}
    for hex_value, count in Counter(memory).items():
        value = int(hex_value, 16)
        for name, indices in layout:
            bitstring = "".join("1" if value >> index & 1 else "0" for index in indices)
            counts = results[name]
            counts[bitstring] = counts.get(bitstring, 0) + count
    return results
