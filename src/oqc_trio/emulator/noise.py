"""Fitting a circuit to a QPU and building its noise model. Runs in the executor's worker
processes; qiskit is imported lazily.

**Connectivity.** A two-qubit gate between qubits that share no coupler either fails the
task (:data:`ERROR_CONNECTIVITY`) or, on a QPU that routes, is routed with SWAPs by qiskit's
transpiler (trivial initial layout, so program qubit ``i`` starts on QPU qubit ``i``).

**Noise** (as in ``emulator-notes.md``, and as qiskit-aer's own ``NoiseModel.from_backend``
builds it from the same kind of figures):

* ``sx`` and ``x`` on qubit ``q``: a depolarizing error composed with thermal relaxation
  (``T1``, ``T2`` over the gate's duration). The depolarizing strength is chosen so that the
  composition's average gate infidelity equals the calibrated ``error_1q``; when
  relaxation alone already exceeds it, relaxation alone is applied. ``rz`` is virtual: no
  error, no duration (as on IBM and OQC hardware).
* ``cx`` and ``ecr`` on a coupler, either direction: a two-qubit depolarizing error
  composed with both qubits' relaxation over the two-qubit gate's duration, matched to
  ``error_2q`` the same way.
* measurement: a readout error with ``P(1|0) = readout_p01`` and ``P(0|1) = readout_p10``.

Programs are translated to ``rz, sx, x, cx, ecr`` (plus measure, reset, delay and control
flow) before a gate-noisy simulation, so that every physical gate pays its error. A
calibration with readout errors only needs no translation and keeps Aer's fast sampling.
Idle qubits do not decohere (no delay noise is modelled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .calibration import Calibration, QubitCalibration
from .qasm import ERROR_CONNECTIVITY, ProgramError

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit_aer.noise import NoiseModel, QuantumError

__all__ = ["NOISE_BASIS", "describe", "fit_to_device", "noise_model", "to_noise_basis"]

#: The gates a gate-noisy simulation runs (control flow is added at run time).
NOISE_BASIS = ("rz", "sx", "x", "cx", "ecr", "measure", "reset", "delay")
_ONE_QUBIT_NOISY = ("sx", "x")
_TWO_QUBIT_NOISY = ("cx", "ecr")
_NOT_GATES = frozenset({"barrier", "measure", "reset", "delay", "store"})


def _basis_with_control_flow(gates: Sequence[str]) -> list[str]:
    from qiskit.circuit import CONTROL_FLOW_OP_NAMES

    return [*gates, *sorted(CONTROL_FLOW_OP_NAMES)]


def to_noise_basis(circuit: QuantumCircuit) -> QuantumCircuit:
    """``circuit`` translated to :data:`NOISE_BASIS` (no layout, no routing, ~2-5 ms)."""
    from qiskit import transpile

    return transpile(
        circuit, basis_gates=_basis_with_control_flow(NOISE_BASIS), optimization_level=0
    )


def _gate_pairs(
    circuit: QuantumCircuit, outer: Sequence[int] | None = None
) -> list[tuple[str, tuple[int, ...]]]:
    """Every gate acting on 2+ qubits, with QPU qubit indices, control-flow bodies included."""
    found = []
    for instruction in circuit.data:
        indices = tuple(
            circuit.find_bit(q).index if outer is None else outer[circuit.find_bit(q).index]
            for q in instruction.qubits
        )
        operation = instruction.operation
        for block in getattr(operation, "blocks", ()):
            # A block's qubits are, in order, the qubits of the instruction holding it.
            found += _gate_pairs(block, indices)
        if (
            operation.name not in _NOT_GATES
            and not getattr(operation, "blocks", ())
            and len(indices) >= 2
        ):
            found.append((operation.name, indices))
    return found


def _first_uncoupled(
    circuit: QuantumCircuit, allowed: set[frozenset[int]]
) -> tuple[str, tuple[int, ...]] | None:
    for name, qubits in _gate_pairs(circuit):
        if len(qubits) != 2 or frozenset(qubits) not in allowed:
            return name, qubits
    return None


def fit_to_device(
    circuit: QuantumCircuit,
    couplers: Sequence[tuple[int, int]],
    *,
    route: bool,
    basis: Sequence[str],
    seed: int | None,
    qubits: int,
) -> tuple[QuantumCircuit, int]:
    """``circuit`` with every two-qubit gate on a coupler, and the SWAPs that took.

    ``basis`` must contain ``swap`` (Aer's basis does), so that inserted SWAPs can be
    counted. Gates on three or more qubits are first decomposed into ``basis``. Raises
    :class:`ProgramError` (:data:`ERROR_CONNECTIVITY`) when a gate joins uncoupled qubits
    and ``route`` is false, or when routing is impossible.
    """
    allowed = {frozenset(pair) for pair in couplers}
    offending = _first_uncoupled(circuit, allowed)
    if offending is None:
        return circuit, 0
    from qiskit import transpile
    from qiskit.circuit.library import get_standard_gate_name_mapping

    # Routing refuses a basis with gates on three or more qubits.
    standard = get_standard_gate_name_mapping()
    basis = [g for g in basis if g not in standard or standard[g].num_qubits <= 2]
    if len(offending[1]) > 2:
        circuit = transpile(circuit, basis_gates=list(basis), optimization_level=0)
        offending = _first_uncoupled(circuit, allowed)
        if offending is None:
            return circuit, 0
    assert offending is not None
    name, (a, b) = offending[0], offending[1][:2]
    pairs = ", ".join(f"{x}-{y}" for x, y in couplers) or "none"
    if not route:
        raise ProgramError(
            ERROR_CONNECTIVITY,
            f"two-qubit gate {name} on qubits {a} and {b}, which are not coupled on this QPU "
            f"(couplers: {pairs}); this QPU does not route programs: use coupled qubits",
        )
    from qiskit.transpiler import CouplingMap

    coupling = CouplingMap()
    for q in range(qubits):
        coupling.add_physical_qubit(q)
    for x, y in couplers:
        coupling.add_edge(x, y)
        coupling.add_edge(y, x)
    try:
        routed = transpile(
            circuit,
            coupling_map=coupling,
            basis_gates=list(basis),
            optimization_level=0,
            initial_layout=list(range(circuit.num_qubits)),
            seed_transpiler=seed if seed is not None else 0,
        )
    except Exception as exc:
        raise ProgramError(
            ERROR_CONNECTIVITY,
            f"cannot route two-qubit gate {name} on qubits {a} and {b} over the couplers "
            f"{pairs}: {exc}",
        ) from exc
    swaps = routed.count_ops().get("swap", 0) - circuit.count_ops().get("swap", 0)
    return routed, max(int(swaps), 0)


def _relaxation(qubit: QubitCalibration, duration_ns: float) -> QuantumError | None:
    if qubit.t1_us is None or qubit.t2_us is None or duration_ns <= 0:
        return None
    from qiskit_aer.noise import thermal_relaxation_error

    return thermal_relaxation_error(qubit.t1_us * 1e3, qubit.t2_us * 1e3, duration_ns)


def _identity_relaxation() -> QuantumError:
    from qiskit_aer.noise import thermal_relaxation_error

    return thermal_relaxation_error(math.inf, math.inf, 0.0)


def _gate_error(
    gate_error: float, relaxation: QuantumError | None, qubits: int
) -> QuantumError | None:
    """Depolarizing composed with ``relaxation``, with total average infidelity
    ``gate_error`` (qiskit-aer's ``_device_depolarizing_error`` formula)."""
    import qiskit.quantum_info as qi
    from qiskit_aer.noise import depolarizing_error

    dim = 2**qubits
    relax_fidelity = 1.0 if relaxation is None else qi.average_gate_fidelity(relaxation)
    relax_infidelity = 1.0 - relax_fidelity
    strength = 0.0
    if gate_error > relax_infidelity:
        strength = dim * (gate_error - relax_infidelity) / (dim * relax_fidelity - 1)
        strength = min(strength, 4**qubits / (4**qubits - 1))
    if strength <= 0:
        return relaxation
    depolarizing = depolarizing_error(strength, qubits)
    return depolarizing if relaxation is None else depolarizing.compose(relaxation)


@lru_cache(maxsize=16)
def noise_model(calibration: Calibration) -> NoiseModel | None:
    """The Aer noise model of ``calibration`` (cached per worker), None if it is ideal."""
    if not calibration.noisy:
        return None
    from qiskit_aer.noise import NoiseModel, ReadoutError

    model = NoiseModel(basis_gates=list(NOISE_BASIS))
    for index, qubit in enumerate(calibration.qubits):
        error = _gate_error(qubit.error_1q, _relaxation(qubit, qubit.duration_1q_ns), 1)
        if error is not None:
            model.add_quantum_error(error, list(_ONE_QUBIT_NOISY), [index])
        if qubit.readout_noise:
            p01, p10 = qubit.readout_p01, qubit.readout_p10
            model.add_readout_error(ReadoutError([[1 - p01, p01], [p10, 1 - p10]]), [index])
    for coupler in calibration.couplers:
        a, b = coupler.qubits
        relax = {
            q: _relaxation(calibration.qubits[q], coupler.duration_2q_ns) or _identity_relaxation()
            for q in (a, b)
        }
        for first, second in ((a, b), (b, a)):
            # expand: the receiver acts on the error's qubit 0, i.e. on `first`.
            both = relax[first].expand(relax[second])
            has_relaxation = (
                any(calibration.qubits[q].t1_us is not None for q in (a, b))
                and coupler.duration_2q_ns > 0
            )
            error = _gate_error(coupler.error_2q, both if has_relaxation else None, 2)
            if error is not None:
                model.add_quantum_error(error, list(_TWO_QUBIT_NOISY), [first, second])
    return model


def describe(calibration: Calibration | None) -> dict[str, Any]:
    """What the execution metadata says about the noise a task ran under."""
    if calibration is None or not calibration.noisy:
        return {"noise_model": None}
    return {
        "noise_model": "depolarizing+thermal_relaxation+readout"
        if calibration.gate_noise
        else "readout",
        "calibration_date": calibration.date.isoformat(),
    }
