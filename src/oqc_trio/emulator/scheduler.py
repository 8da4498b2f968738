"""Runs queued tasks: one FIFO queue per QPU, served by that QPU's worker tasks.

A worker takes the oldest queued task, waits until the QPU is inside an execution window
(if it works in windows), marks the task RUNNING, waits the QPU's simulated execution time
(``execution_time_s * time_scale``), then runs the program on the executor with the QPU's
connectivity and the calibration in force that day. Each run sits in its own cancel scope,
so cancelling a RUNNING task really stops it: its simulated wait ends and its executor run
is cancelled (the aer executor kills the worker process). A task cancelled while queued is
simply skipped when its turn comes. Waiting for a window is a wait on a deadline or on a
change of the QPU's windows (a one-off window), whichever comes first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import trio

from .._wire import TaskStatus
from . import windows as schedule
from .calibration import Calibration, in_force
from .config import QpuSpec
from .executor import Executor, QpuLimits
from .state import EmulatorState, Task

__all__ = ["Scheduler", "StatusWatch"]

logger = logging.getLogger(__name__)

_SEED_MODULUS = 2**31 - 1


class Scheduler:
    """Per-QPU FIFO queues and their workers. :meth:`enqueue` may be called before
    :meth:`run` starts: queued IDs wait in the channel buffers."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._scopes: dict[str, trio.CancelScope] = {}
        self._window_changes: dict[str, trio.Event] = {
            q.id: trio.Event() for q in state.config.qpus
        }
        state.on_windows_change = self._windows_changed
        self.reset()

    def reset(self) -> None:
        """Empty every queue (after a restart; call it while :meth:`run` is not running)."""
        self._channels: dict[
            str, tuple[trio.MemorySendChannel[str], trio.MemoryReceiveChannel[str]]
        ] = {q.id: trio.open_memory_channel[str](math.inf) for q in self._state.config.qpus}

    async def run(
        self, executor: Executor, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve every QPU's queue with ``executor`` until cancelled."""
        async with trio.open_nursery() as nursery:
            for spec in self._state.config.qpus:
                _, receive = self._channels[spec.id]
                for _ in range(spec.workers):
                    nursery.start_soon(self._worker, spec.id, receive.clone(), executor)
            task_status.started()

    def enqueue(self, tasks: Iterable[Task]) -> None:
        """Put newly SUBMITTED tasks at the back of their QPU's queue."""
        for task in tasks:
            send, _ = self._channels[task.qpu_id]
            send.send_nowait(task.id)

    def stop(self, tasks: Iterable[Task]) -> None:
        """Stop the runs of tasks that were just cancelled while RUNNING."""
        for task in tasks:
            scope = self._scopes.get(task.id)
            if scope is not None:
                scope.cancel()

    def _windows_changed(self, qpu_id: str) -> None:
        self._window_changes[qpu_id].set()
        self._window_changes[qpu_id] = trio.Event()

    async def _until_open(self, qpu_id: str) -> None:
        """Return once the QPU is inside one of its windows (at once if it has none)."""
        state = self._state
        while True:
            windows = state.gating_windows(qpu_id)
            if windows is None:
                return
            now = state.clock()
            opening = schedule.next_start(windows, now)
            if opening is not None and opening <= now:
                return
            changed = self._window_changes[qpu_id]
            if opening is None:
                await changed.wait()
                continue
            # A millisecond late rather than early: the wall clock decides, not trio's.
            with trio.move_on_after((opening - now).total_seconds() + 1e-3):
                await changed.wait()

    async def _worker(
        self, qpu_id: str, receive: trio.MemoryReceiveChannel[str], executor: Executor
    ) -> None:
        async with receive:
            async for task_id in receive:
                task = self._state.tasks.get(task_id)
                if task is None or task.status is not TaskStatus.SUBMITTED:
                    continue  # cancelled while queued, or forgotten by a restart
                await self._until_open(qpu_id)
                if not self._state.start(task):
                    continue  # cancelled while waiting for a window
                with trio.CancelScope() as scope:
                    self._scopes[task_id] = scope
                    try:
                        await self._execute(task, executor)
                    finally:
                        del self._scopes[task_id]

    def calibration_for(self, spec: QpuSpec) -> Calibration | None:
        """The calibration a task starting now runs under: the one in force today, or the
        earliest one before the first calibration's date; None for an ideal QPU."""
        if not spec.calibrations:
            return None
        return in_force(spec.calibrations, self._state.clock().date()) or spec.calibrations[0]

    async def _execute(self, task: Task, executor: Executor) -> None:
        state = self._state
        config = state.config
        spec = state.qpu(task.qpu_id)
        delay = spec.execution_time_s * config.time_scale
        if delay > 0:
            await trio.sleep(delay)
        fault = state.injector.for_task(spec.id)
        if fault is not None:
            state.complete(
                task,
                results=None,
                execution_metadata={"qpu_id": spec.id, "injected_fault": fault.kind},
                error_code=fault.error_code,
                error_message=fault.message,
            )
            return
        seed = None if config.seed is None else (config.seed + task.seq) % _SEED_MODULUS
        limits = QpuLimits(
            max_qubits=spec.qubits,
            max_shots=spec.max_shots,
            couplers=spec.couplers,
            route=spec.routes,
        )
        try:
            outcome = await executor.run(
                task.program or "",
                task.shots or 1,
                limits,
                seed=seed,
                calibration=self.calibration_for(spec),
            )
        except Exception as exc:
            # The executor promises not to raise for bad programs: this is our bug or a
            # broken worker pool. Fail the task, keep the QPU serving.
            logger.exception("executor failed on task %s", task.id)
            self._state.fail_internal(task, f"emulator error: {type(exc).__name__}: {exc}")
            return
        metadata = {
            **outcome.execution_metadata,
            "qpu_id": spec.id,
            "simulated_execution_s": delay,
        }
        self._state.complete(
            task,
            results=outcome.results,
            execution_metadata=metadata,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
        )


class StatusWatch:
    """Lets trio code wait for a task to reach a status (tests use it instead of polling).

    Installs itself as the state's ``on_change`` callback.
    """

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._waiters: dict[str, list[tuple[frozenset[TaskStatus], trio.Event]]] = {}
        state.on_change = self._changed

    async def wait_for(self, task_id: str, statuses: Iterable[TaskStatus | str]) -> Task:
        """Return the task once its status is one of ``statuses`` (at once if it already is)."""
        wanted = frozenset(TaskStatus(s) for s in statuses)
        task = self._state.tasks[task_id]
        if task.status not in wanted:
            event = trio.Event()
            self._waiters.setdefault(task_id, []).append((wanted, event))
            await event.wait()
        return task

    def _changed(self, task: Task) -> None:
        waiters = self._waiters.get(task.id)
        if not waiters:
            return
        remaining = []
        for wanted, event in waiters:
            if task.status in wanted:
                event.set()
            else:
                remaining.append((wanted, event))
        if remaining:
            self._waiters[task.id] = remaining
        else:
            del self._waiters[task.id]
