"""Execution engine of oqc-emulator: runs OpenQASM programs for real on qiskit-aer.

Two executors share one interface (:class:`Executor`), obtained from :func:`open_executor`:

* ``"aer"`` parses and simulates each program with :func:`execute_program` in a pool of
  warm worker processes (``trio_parallel``). Aer holds the GIL for a whole simulation, so
  running it in a thread would freeze the event loop; a process can also be killed, which
  is how per-task timeouts and cancellation stop a runaway simulation. The workers ignore
  SIGINT and SIGTERM (see :data:`WORKER_IGNORED_SIGNALS`): a Ctrl-C or a ``kill -TERM`` to
  the whole process group is for the process that owns the emulator, which then stops its
  workers itself.
* ``"instant"`` does **not** simulate anything. It exists to benchmark the HTTP path: it
  finds the declared classical registers with a regular expression and reports every shot
  on the all-zeros bitstring of each of them.

Results are OQC BinaryCount: ``{register: {bitstring: count}}``, one entry per classical
register (and per QASM3 scalar bit, under the bit's own name), each bitstring written
``reg[0] reg[1] ... reg[n-1]`` (element 0 leftmost, the reverse of qiskit's order), fixed
width. A program that measures nothing gets ``{}``. Failures carry one of the ``ERROR_*``
codes re-exported here from :mod:`oqc_trio.emulator.qasm`.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from multiprocessing import resource_tracker
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio
import trio_parallel

from oqc_trio.emulator.calibration import Calibration
from oqc_trio.emulator.noise import describe, fit_to_device, noise_model, to_noise_basis
from oqc_trio.emulator.qasm import (
    ERROR_CONNECTIVITY,
    ERROR_EXECUTION,
    ERROR_INVALID_SHOTS,
    ERROR_PARSE,
    ERROR_TIMEOUT,
    ERROR_TOO_MANY_QUBITS,
    ERROR_UNSUPPORTED_LANGUAGE,
    Language,
    ProgramError,
    binary_counts,
    declared_registers,
    detect_language,
    has_measurement,
    parse_program,
    register_layout,
)

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit_aer import AerSimulator

__all__ = [
    "ERROR_CONNECTIVITY",
    "ERROR_EXECUTION",
    "ERROR_INVALID_SHOTS",
    "ERROR_PARSE",
    "ERROR_TIMEOUT",
    "ERROR_TOO_MANY_QUBITS",
    "ERROR_UNSUPPORTED_LANGUAGE",
    "WORKER_IGNORED_SIGNALS",
    "AerExecutor",
    "ExecutionOutcome",
    "Executor",
    "InstantExecutor",
    "QpuLimits",
    "execute_program",
    "instant_outcome",
    "open_executor",
]


logger = logging.getLogger(__name__)

try:  # trio_parallel's stock worker, to start ours differently (see _SignalSafeWorker).
    from trio_parallel._proc import SpawnProcWorker as _SpawnProcWorker
except ImportError:  # pragma: no cover - another trio_parallel layout: init-only protection
    _SpawnProcWorker = None

#: Signals the worker processes ignore. They share the process group (and the session) of
#: the process running the emulator, so a terminal's Ctrl-C, ``kill -TERM -- -PGID``, a
#: batch scheduler or ``docker stop`` signals them too. Left to the default, SIGTERM killed
#: idle workers (the pool's shutdown then raised ``BrokenWorkerProcessError``) and busy ones
#: (their tasks FAILED), and a SIGINT during a worker's start-up printed a
#: ``KeyboardInterrupt`` traceback. The parent stops the workers when it stops: it closes
#: their pipes, or kills them (SIGKILL) on cancellation or timeout.
WORKER_IGNORED_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_HAVE_SIGMASK = hasattr(signal, "pthread_sigmask")


@attrs.frozen
class ExecutionOutcome:
    """What running one program produced.

    ``results`` is BinaryCount (``None`` on failure). ``execution_metadata`` holds
    ``gate_counts`` (top-level operations of the parsed circuit, by name), ``depth``,
    ``qubits_used`` (qubits touched by at least one operation), ``clbits``, ``shots``,
    ``language``, ``simulation_ms`` and ``executor`` (``"aer"`` or ``"instant"``); it may be
    ``{}`` on failure. ``error_code``/``error_message`` are set when the task must FAIL.
    """

    results: dict[str, dict[str, int]] | None
    execution_metadata: dict[str, Any]
    error_code: int | None = None
    error_message: str | None = None

    @classmethod
    def failure(cls, code: int, message: str) -> ExecutionOutcome:
        """An outcome that makes the task FAIL with ``code`` and ``message``."""
        return cls(results=None, execution_metadata={}, error_code=code, error_message=message)


@attrs.frozen
class QpuLimits:
    """What a program must respect on the emulated QPU: its size, its shot limit and, when
    ``couplers`` is given, its connectivity (two-qubit gates only between coupled qubits,
    unless ``route``: then SWAPs are inserted). ``couplers`` None: all-to-all."""

    max_qubits: int
    max_shots: int
    couplers: tuple[tuple[int, int], ...] | None = None
    route: bool = True


def _check_shots(shots: int, limits: QpuLimits) -> None:
    if shots < 1:
        raise ProgramError(ERROR_INVALID_SHOTS, f"shots must be at least 1, got {shots}")
    if shots > limits.max_shots:
        raise ProgramError(
            ERROR_INVALID_SHOTS,
            f"too many shots: {shots} requested, this QPU allows at most {limits.max_shots}",
        )


@lru_cache(maxsize=1)
def _simulator() -> AerSimulator:
    from qiskit_aer import AerSimulator

    # One OpenMP thread: Aer's default of one per core costs ~6x on small circuits, and
    # the parallelism comes from the worker processes anyway.
    return AerSimulator(method="automatic", max_parallel_threads=1)


@lru_cache(maxsize=1)
def _aer_operations() -> tuple[frozenset[str], list[str]]:
    """Operations Aer runs as they are, and the basis to transpile anything else into."""
    from qiskit.circuit import CONTROL_FLOW_OP_NAMES
    from qiskit.circuit.library import get_standard_gate_name_mapping

    # configuration() takes ~2 ms per call, hence the cache.
    native = frozenset(_simulator().configuration().basis_gates) | {"measure", "barrier"}
    # transpile(basis_gates=...) accepts standard gates and control flow only.
    basis = sorted(native & (set(get_standard_gate_name_mapping()) | CONTROL_FLOW_OP_NAMES))
    return native, basis


def _operation_names(circuit: QuantumCircuit) -> set[str]:
    names: set[str] = set()
    for instruction in circuit.data:
        names.add(instruction.operation.name)
        for block in getattr(instruction.operation, "blocks", ()):
            names |= _operation_names(block)
    return names


def _metadata(circuit: QuantumCircuit, shots: int, language: Language) -> dict[str, Any]:
    touched = {qubit for instruction in circuit.data for qubit in instruction.qubits}
    return {
        "gate_counts": {name: int(count) for name, count in circuit.count_ops().items()},
        "depth": circuit.depth(),
        "qubits_used": len(touched),
        "clbits": circuit.num_clbits,
        "shots": shots,
        "language": language,
        "simulation_ms": 0.0,
        "executor": "aer",
    }


def _execute(
    program: str,
    shots: int,
    limits: QpuLimits,
    seed: int | None,
    calibration: Calibration | None,
) -> ExecutionOutcome:
    _check_shots(shots, limits)
    language = detect_language(program)
    circuit = parse_program(program, language)
    if circuit.num_qubits > limits.max_qubits:
        raise ProgramError(
            ERROR_TOO_MANY_QUBITS,
            f"too many qubits: the program uses {circuit.num_qubits}, "
            f"this QPU has {limits.max_qubits}",
        )
    metadata = _metadata(circuit, shots, language)
    if not has_measurement(circuit):
        return ExecutionOutcome(results={}, execution_metadata=metadata)

    simulator = _simulator()
    native, basis = _aer_operations()
    runnable = circuit
    if limits.couplers is not None:
        runnable, swaps = fit_to_device(
            circuit,
            limits.couplers,
            route=limits.route,
            basis=basis,
            seed=seed,
            qubits=limits.max_qubits,
        )
        metadata["swaps_inserted"] = swaps
    model = noise_model(calibration) if calibration is not None else None
    if model is not None and calibration is not None and calibration.gate_noise:
        runnable = to_noise_basis(runnable)
    elif not _operation_names(runnable) <= native:
        from qiskit import transpile

        # Only for custom gates, u0 and the like. Level 0 unrolls without reordering and
        # keeps the clbits; a basis list is ~2 ms where transpile(circuit, simulator)
        # costs ~130 ms (it rebuilds Aer's target every call).
        runnable = transpile(runnable, basis_gates=basis, optimization_level=0)
    metadata.update(describe(calibration))
    options: dict[str, Any] = {"shots": shots, "memory": True}
    if model is not None:
        options["noise_model"] = model
    if seed is not None:
        options["seed_simulator"] = seed
    started = time.perf_counter()
    result = simulator.run(runnable, **options).result()
    metadata["simulation_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
    if not result.success:
        status = result.results[0].status if result.results else result.status
        raise ProgramError(ERROR_EXECUTION, f"simulation failed: {status}")
    # Raw hex memory, not get_counts()/get_memory(): qiskit's formatter garbles registers
    # when a circuit has loose (scalar) clbits.
    memory = result.data(0)["memory"]
    results = binary_counts(memory, register_layout(runnable, program))
    return ExecutionOutcome(results=results, execution_metadata=metadata)


def execute_program(
    program: str,
    shots: int,
    limits: QpuLimits,
    seed: int | None = None,
    calibration: Calibration | None = None,
) -> ExecutionOutcome:
    """Parse ``program`` (OpenQASM 2 or 3), simulate ``shots`` shots on Aer, return counts.

    Synchronous and module-level so that ``trio_parallel`` can run it in a worker process.
    It never raises for a bad program: parse errors (with ``line L, column C``, 1-based),
    unsupported languages (QIR), too many qubits or shots, gates between uncoupled qubits
    on a QPU that does not route, and simulator failures come back as an outcome with
    ``error_code``/``error_message``. ``seed`` makes sampling reproducible.
    ``calibration`` makes the simulation noisy (see :mod:`oqc_trio.emulator.noise`); its
    noise model is built once per worker process and cached.
    """
    try:
        return _execute(program, shots, limits, seed, calibration)
    except ProgramError as exc:
        return ExecutionOutcome.failure(exc.code, exc.message)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        # BaseException too: a Rust panic inside qiskit surfaces as pyo3's PanicException.
        return ExecutionOutcome.failure(
            ERROR_EXECUTION, f"execution error: {type(exc).__name__}: {exc}"
        )


def instant_outcome(program: str, shots: int, limits: QpuLimits) -> ExecutionOutcome:
    """The instant executor's answer: correctly shaped counts, **no simulation**.

    Every shot lands on the all-zeros bitstring of each declared ``creg``/``bit[n]``
    register (and scalar bit), found with a regular expression. Shots, language and QIR
    are checked as the real executor does; qubit counts are not.
    """
    try:
        _check_shots(shots, limits)
        language = detect_language(program)
    except ProgramError as exc:
        return ExecutionOutcome.failure(exc.code, exc.message)
    registers = declared_registers(program)
    return ExecutionOutcome(
        results={name: {"0" * width: shots} for name, width in registers},
        execution_metadata={
            "gate_counts": {},
            "depth": 0,
            "qubits_used": 0,
            "clbits": sum(width for _, width in registers),
            "shots": shots,
            "language": language,
            "simulation_ms": 0.0,
            "executor": "instant",
        },
    )


class Executor:
    """Runs programs for the emulator; obtain one from :func:`open_executor`."""

    kind: str = "abstract"

    async def run(
        self,
        program: str,
        shots: int,
        limits: QpuLimits,
        seed: int | None = None,
        calibration: Calibration | None = None,
    ) -> ExecutionOutcome:
        """Execute ``program``; bad programs give an outcome with ``error_code``, never raise."""
        raise NotImplementedError


class InstantExecutor(Executor):
    """Answers at once with :func:`instant_outcome`. It does **not** simulate."""

    kind = "instant"

    async def run(
        self,
        program: str,
        shots: int,
        limits: QpuLimits,
        seed: int | None = None,
        calibration: Calibration | None = None,
    ) -> ExecutionOutcome:
        """Return all-zeros counts for each declared register (see :func:`instant_outcome`);
        connectivity and noise are ignored."""
        await trio.lowlevel.checkpoint()
        return instant_outcome(program, shots, limits)


_WARM_PROGRAM = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""
_WARM_PROGRAM_3 = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
c[0] = measure q[0];
if (c[0]) x q[1];
c[1] = measure q[1];
"""


def _init_worker() -> None:
    """The first thing a worker runs once ``trio_parallel`` has set it up."""
    _ignore_group_signals()
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _ignore_group_signals() -> None:
    """Ignore :data:`WORKER_IGNORED_SIGNALS` in this (worker) process, then unblock them.

    Workers are started with these signals blocked (:func:`_start_with_signals_blocked`),
    so one sent while the interpreter was starting is still pending here: ignoring a
    pending signal discards it (POSIX), and only then are they unblocked. The same dance
    as CPython's own multiprocessing resource tracker.
    """
    for signum in WORKER_IGNORED_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    if _HAVE_SIGMASK:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_IGNORED_SIGNALS)


def _start_with_signals_blocked(process: Any) -> None:
    """``process.start()`` with :data:`WORKER_IGNORED_SIGNALS` blocked in this thread.

    The signal mask survives fork and exec, so the new interpreter starts with them blocked
    and cannot act on one (a ``KeyboardInterrupt`` in ``import site``, death by SIGTERM)
    before :func:`_init_worker` ignores them. Runs in a worker thread (trio's thread cache):
    the event loop's thread keeps its mask, and signals still reach the runner.
    """
    # A spawn start launches multiprocessing's resource tracker first if it is not running,
    # and that launch *unblocks* SIGINT and SIGTERM in the calling thread when done (it
    # blocks them around its own spawn): launch it now, before blocking.
    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_IGNORED_SIGNALS)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


if _SpawnProcWorker is not None and _HAVE_SIGMASK:

    class _SignalSafeWorker(_SpawnProcWorker):
        """trio_parallel's spawn worker, started with the group signals blocked.

        ``SpawnProcWorker.start`` (trio_parallel 1.3) is ``proc.start()`` in a thread, then
        closing the child's ends of the pipes; this does the same around
        :func:`_start_with_signals_blocked`.
        """

        async def start(self) -> None:
            await trio.to_thread.run_sync(_start_with_signals_blocked, self.proc)
            self._child_send_pipe.close()
            self._child_recv_pipe.close()


def _use_signal_safe_workers(context: trio_parallel.WorkerContext) -> None:
    """Make ``context`` start :class:`_SignalSafeWorker` processes, when it can.

    trio_parallel has no public hook for how a worker is started; a context keeps its
    worker class in ``_worker_class`` (set once, in ``__attrs_post_init__``). When that is
    not the stock spawn worker (another trio_parallel), the workers still ignore the
    signals from :func:`_init_worker` on, just not during their start-up.
    """
    if _SpawnProcWorker is None or not _HAVE_SIGMASK:
        return
    if context.__dict__.get("_worker_class") is not _SpawnProcWorker:
        logger.debug("unexpected trio_parallel worker class: workers start unprotected")
        return
    context.__dict__["_worker_class"] = _SignalSafeWorker


@asynccontextmanager
async def _worker_context() -> AsyncIterator[trio_parallel.WorkerContext]:
    """The aer executor's ``trio_parallel`` context: warm workers that never time out,
    started with the group signals blocked and ignoring them for good.

    Closing it waits up to 5 s for the workers to exit, then kills them. A worker that
    exits badly then (killed by a signal sent to it alone, say) makes trio_parallel raise
    ``BrokenWorkerError``; that is logged, not raised: it must not replace how the block
    ended (an interrupted run, a cancellation), and the emulator is stopping anyway.
    """
    body_error: BaseException | None = None
    shutdown_error: trio_parallel.BrokenWorkerError
    try:
        async with trio_parallel.open_worker_context(
            idle_timeout=math.inf, init=_init_worker, grace_period=5.0
        ) as context:
            _use_signal_safe_workers(context)
            try:
                yield context
            except BaseException as exc:
                body_error = exc
                raise
    except trio_parallel.BrokenWorkerError as exc:
        if exc is body_error:
            raise
        shutdown_error = exc
    else:
        return
    logger.warning("emulator worker processes did not exit cleanly: %s", shutdown_error.args[0])
    if body_error is not None:
        raise body_error


def _warm_worker() -> None:
    """Pay the import and first-run costs (~1 s) of both parsers and Aer in a fresh worker."""
    limits = QpuLimits(max_qubits=2, max_shots=10)
    execute_program(_WARM_PROGRAM, 10, limits, seed=0)
    execute_program(_WARM_PROGRAM_3, 10, limits, seed=0)


class AerExecutor(Executor):
    """Runs :func:`execute_program` in ``trio_parallel`` worker processes."""

    kind = "aer"

    def __init__(
        self, context: trio_parallel.WorkerContext, workers: int, task_timeout_s: float | None
    ) -> None:
        self._context = context
        self._workers = workers
        self._timeout = math.inf if task_timeout_s is None else task_timeout_s
        # Queueing for a worker happens on _slots, outside the timeout, so the timeout
        # measures execution only. _limiter is never contended; it just keeps trio_parallel
        # off its process-wide default limiter.
        self._slots = trio.CapacityLimiter(workers)
        self._limiter = trio.CapacityLimiter(workers)

    async def warm(self) -> None:
        """Start every worker and run a tiny circuit in each, concurrently."""
        async with trio.open_nursery() as nursery:
            for _ in range(self._workers):
                nursery.start_soon(self._run_in_worker, _warm_worker)

    async def _run_in_worker(self, fn: Any, *args: Any) -> Any:
        return await self._context.run_sync(fn, *args, kill_on_cancel=True, limiter=self._limiter)

    async def run(
        self,
        program: str,
        shots: int,
        limits: QpuLimits,
        seed: int | None = None,
        calibration: Calibration | None = None,
    ) -> ExecutionOutcome:
        """Simulate in a worker; past ``task_timeout_s`` the worker is killed (ERROR_TIMEOUT).

        Cancelling this call kills the worker too. A killed worker is replaced on demand:
        the first task that finds no warm worker idle pays a cold start (~1 s).
        """
        async with self._slots:
            with trio.move_on_after(self._timeout):
                try:
                    outcome: ExecutionOutcome = await self._run_in_worker(
                        execute_program, program, shots, limits, seed, calibration
                    )
                except trio_parallel.BrokenWorkerError as exc:
                    return ExecutionOutcome.failure(
                        ERROR_EXECUTION, f"simulation worker died: {exc}"
                    )
                return outcome
        return ExecutionOutcome.failure(ERROR_TIMEOUT, f"execution exceeded {self._timeout:g} s")


@asynccontextmanager
async def open_executor(
    kind: Literal["aer", "instant"] = "aer",
    *,
    workers: int = 2,
    task_timeout_s: float | None = 60.0,
) -> AsyncIterator[Executor]:
    """Open an executor: ``"aer"`` (real simulation) or ``"instant"`` (no simulation).

    For ``"aer"``, ``workers`` processes are started and warmed before this yields, at most
    ``workers`` programs run at once (others wait their turn), and a run longer than
    ``task_timeout_s`` (``None``: no limit) is killed. Leaving the block stops the workers.
    """
    if kind == "instant":
        yield InstantExecutor()
        return
    if kind != "aer":
        raise ValueError(f"unknown executor kind {kind!r} (expected 'aer' or 'instant')")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    async with _worker_context() as context:
        executor = AerExecutor(context, workers, task_timeout_s)
        await executor.warm()
        yield executor
