"""The poll scheduler: one timer queue for every in-flight task of an execute call.

Instead of one polling loop per job (the official SDK's design, which polls all jobs in
lock-step), a single dispatcher owns a heap of due times and hands due tasks to a fixed pool of
poll workers. Per QPU, only the oldest ``front`` tasks are on the fast schedule; when one
finishes, the next oldest is polled at once ("a neighbour finished") and a parked task enters
the front. A ``Retry-After`` pauses the whole schedule. Results go to each job's actor over its
memory channel; the scheduler never touches job state.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
from collections import deque
from collections.abc import Iterable
from typing import Any

import attrs
import trio

from .. import _wire
from ..exceptions import (
    AuthenticationError,
    ConnectionFailureException,
    NotFoundError,
    OqcError,
    ProtocolViolation,
    RateLimited,
    TransportError,
)
from .policy import PollPolicy

__all__ = ["ObserveFailure", "PollScheduler"]

log = logging.getLogger("oqc_trio.poll")


@attrs.frozen
class ObserveFailure:
    """Event for an actor: its task cannot be observed (404, auth, contract violation).

    The task is *not* failed: the job keeps its ID and state, and may be resumed later.
    """

    error: OqcError


class _Watch:
    __slots__ = (
        "done",
        "due",
        "front",
        "interval",
        "qpu_key",
        "send",
        "seq",
        "task_base",
        "task_id",
        "version",
    )

    def __init__(self, task_id: str, task_base: str | None, qpu_key: str, seq: int, send: Any):
        self.task_id = task_id
        self.task_base = task_base
        self.qpu_key = qpu_key
        self.seq = seq
        self.send = send
        self.interval = 0.0
        self.due = 0.0
        self.version = 0
        self.front = False
        self.done = False


class _QpuLane:
    """Ordering of one QPU's in-flight tasks: a front polled on schedule, the rest parked."""

    __slots__ = ("front", "parked")

    def __init__(self) -> None:
        self.front: dict[int, _Watch] = {}
        self.parked: deque[_Watch] = deque()


class PollScheduler:
    """Owns the poll timer queue; run it with ``nursery.start_soon(scheduler.run)``.

    ``send`` performs one request and ``api`` builds it; both come from the supervisor so
    this module stays free of transport details.
    """

    def __init__(
        self,
        send: Any,
        api: _wire.Api,
        policy: PollPolicy,
        *,
        deadline: float = float("inf"),
        rng: random.Random | None = None,
    ) -> None:
        self._send = send
        self._api = api
        self._policy = policy
        self._deadline = deadline
        self._rng = rng or random.Random()
        self._heap: list[tuple[float, int, int, _Watch]] = []
        self._lanes: dict[str, _QpuLane] = {}
        self._watches: dict[str, _Watch] = {}
        self._seq = itertools.count()
        self._changed = trio.Event()
        self._paused_until = 0.0
        self.polls = 0

    # -- called by actors (synchronous: no await, so no interleaving) ------------------------
    def watch(self, task_id: str, task_base: str | None, qpu_key: str, send: Any) -> None:
        """Start polling ``task_id``; its events go to ``send`` (a memory channel)."""
        if task_id in self._watches:
            raise RuntimeError(f"task {task_id} is already being polled")
        watch = _Watch(task_id, task_base, qpu_key, next(self._seq), send)
        self._watches[task_id] = watch
        lane = self._lanes.setdefault(qpu_key, _QpuLane())
        if len(lane.front) < self._policy.front:
            self._enter_front(lane, watch, self._policy.first_poll_s)
        else:
            lane.parked.append(watch)
            self._schedule(watch, self._policy.parked_interval_s, jitter=True)

    def unwatch(self, task_id: str) -> None:
        """Stop polling ``task_id`` (its actor is leaving)."""
        watch = self._watches.pop(task_id, None)
        if watch is not None:
            self._finish(watch)

    def poll_soon(self, task_ids: Iterable[str]) -> None:
        """Poll these tasks now (e.g. right after asking the server to cancel them)."""
        for task_id in task_ids:
            watch = self._watches.get(task_id)
            if watch is not None and not watch.done:
                watch.interval = self._policy.first_poll_s
                self._schedule(watch, 0.0)

    # -- the service -------------------------------------------------------------------------
    async def run(self) -> None:
        """Dispatch due polls to a fixed pool of workers until cancelled."""
        send_work, receive_work = trio.open_memory_channel[_Watch](0)
        async with trio.open_nursery() as nursery:
            for _ in range(self._policy.concurrency):
                nursery.start_soon(self._worker, receive_work.clone())
            receive_work.close()
            async with send_work:
                while True:
                    watch = await self._next_due()
                    await send_work.send(watch)

    async def _next_due(self) -> _Watch:
        while True:
            now = trio.current_time()
            if self._paused_until > now:
                wake_at = self._paused_until
            elif self._heap:
                due, _, version, watch = self._heap[0]
                if watch.done or version != watch.version:
                    heapq.heappop(self._heap)
                    continue
                if due <= now:
                    heapq.heappop(self._heap)
                    return watch
                wake_at = due
            else:
                wake_at = float("inf")
            self._changed = trio.Event()
            with trio.move_on_at(wake_at):
                await self._changed.wait()

    async def _worker(self, receive: trio.MemoryReceiveChannel[_Watch]) -> None:
        async with receive:
            async for watch in receive:
                if not watch.done:
                    await self._poll(watch)

    async def _poll(self, watch: _Watch) -> None:
        request = self._api.all_info(watch.task_base, watch.task_id)
        self.polls += 1
        try:
            response = await self._send(request, deadline=self._deadline)
            info = _wire.parse_task_info(response.json(), watch.task_id)
        except RateLimited as exc:
            self._pause(exc.retry_after)
            self._backoff(watch)
            return
        except (NotFoundError, AuthenticationError, ProtocolViolation) as exc:
            self._deliver(watch, ObserveFailure(exc))
            self._finish(watch)
            return
        except (TransportError, ConnectionFailureException) as exc:
            # Failure to observe is not failure of the task: try again later.
            if isinstance(exc, ConnectionFailureException) and exc.retry_after:
                self._pause(exc.retry_after)
            log.warning("status of task %s not observed (%s); will retry", watch.task_id, exc)
            self._backoff(watch)
            return
        self._deliver(watch, info)
        if info.ended:
            self._finish(watch)
        else:
            self._backoff(watch)

    # -- bookkeeping -------------------------------------------------------------------------
    def _deliver(self, watch: _Watch, event: Any) -> None:
        try:
            watch.send.send_nowait(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._finish(watch)

    def _schedule(self, watch: _Watch, delay: float, *, jitter: bool = False) -> None:
        if jitter:
            delay *= 0.5 + self._rng.random() / 2
        watch.due = trio.current_time() + delay
        watch.version += 1
        heapq.heappush(self._heap, (watch.due, watch.seq, watch.version, watch))
        if self._heap[0][3] is watch:
            self._changed.set()

    def _backoff(self, watch: _Watch) -> None:
        if watch.front:
            watch.interval = min(
                max(watch.interval * 2, self._policy.first_poll_s), self._policy.max_interval_s
            )
            self._schedule(watch, watch.interval, jitter=True)
        else:
            self._schedule(watch, self._policy.parked_interval_s, jitter=True)

    def _pause(self, seconds: float | None) -> None:
        if seconds:
            self._paused_until = max(self._paused_until, trio.current_time() + seconds)

    def _enter_front(self, lane: _QpuLane, watch: _Watch, delay: float) -> None:
        watch.front = True
        watch.interval = self._policy.first_poll_s
        lane.front[watch.seq] = watch
        self._schedule(watch, delay)

    def _finish(self, watch: _Watch) -> None:
        if watch.done:
            return
        watch.done = True
        self._watches.pop(watch.task_id, None)
        lane = self._lanes.get(watch.qpu_key)
        if lane is None or not watch.front:
            return
        del lane.front[watch.seq]
        # A neighbour finished: on a FIFO QPU the next oldest task is the likely next to end.
        if lane.front:
            oldest = next(iter(lane.front.values()))
            if oldest.due > trio.current_time():
                oldest.interval = self._policy.first_poll_s
                self._schedule(oldest, 0.0)
        while lane.parked and len(lane.front) < self._policy.front:
            parked = lane.parked.popleft()
            if not parked.done:
                self._enter_front(lane, parked, 0.0)
