"""Runs queued tasks: one FIFO queue per QPU, served by that QPU's worker tasks.

A worker takes the oldest queued task, marks it RUNNING, waits the QPU's simulated execution
time (``execution_time_s * time_scale``), then runs the program on the executor. Each run
sits in its own cancel scope, so cancelling a RUNNING task really stops it: its simulated
wait ends and its executor run is cancelled (the aer executor kills the worker process).
A task cancelled while queued is simply skipped when its turn comes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import trio

from .._wire import TaskStatus
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
        self._channels: dict[
            str, tuple[trio.MemorySendChannel[str], trio.MemoryReceiveChannel[str]]
        ] = {q.id: trio.open_memory_channel[str](math.inf) for q in state.config.qpus}
        self._scopes: dict[str, trio.CancelScope] = {}

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

    async def _worker(
        self, qpu_id: str, receive: trio.MemoryReceiveChannel[str], executor: Executor
    ) -> None:
        async with receive:
            async for task_id in receive:
                task = self._state.tasks[task_id]
                if not self._state.start(task):
                    continue  # cancelled while queued
                with trio.CancelScope() as scope:
                    self._scopes[task_id] = scope
                    try:
                        await self._execute(task, executor)
                    finally:
                        del self._scopes[task_id]

    async def _execute(self, task: Task, executor: Executor) -> None:
        config = self._state.config
        spec = self._state.qpu(task.qpu_id)
        delay = spec.execution_time_s * config.time_scale
        if delay > 0:
            await trio.sleep(delay)
        seed = None if config.seed is None else (config.seed + task.seq) % _SEED_MODULUS
        limits = QpuLimits(max_qubits=spec.qubits, max_shots=spec.max_shots)
        try:
            outcome = await executor.run(task.program or "", task.shots or 1, limits, seed=seed)
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
