"""The poll scheduler: one timer queue for every in-flight task of an execute call.

Instead of one polling loop per job (the official SDK's design, which polls all jobs in
lock-step), a single dispatcher owns a heap of due times and hands polls to a fixed pool of
workers. Each QPU's tasks form a lane in submission order, polled in *waves* sized from the
lane's measured completion rate (see :class:`PollPolicy`), so a batch costs about one status
request per task whatever its size or queue time. Tasks no wave has reached get rare safety
polls. A ``Retry-After`` pauses the whole schedule. Results go to each job's actor over its
memory channel; the scheduler never touches job state.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import math
import random
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

_RATE_MEMORY = 0.5  # weight of the newest wave in the lane's completion-rate estimate


@attrs.frozen
class ObserveFailure:
    """Event for an actor: its task cannot be observed (404, auth, contract violation).

    The task is *not* failed: the job keeps its ID and state, and may be resumed later.
    """

    error: OqcError


class _Watch:
    """One task being polled."""

    __slots__ = (
        "done",
        "in_flight",
        "lane",
        "safety_interval",
        "send",
        "seq",
        "task_base",
        "task_id",
        "urgent",
        "version",
    )

    def __init__(self, task_id: str, task_base: str | None, lane: _Lane, seq: int, send: Any):
        # ``seq`` orders the lane: the task's (likely) place in the QPU's queue.
        self.task_id = task_id
        self.task_base = task_base
        self.lane = lane
        self.seq = seq
        self.send = send
        self.done = False
        self.in_flight = False
        self.safety_interval = 0.0
        self.urgent = False
        self.version = 0


class _Lane:
    """One QPU's in-flight tasks in submission order, and its wave state.

    ``order`` is a list sorted by ``seq`` with lazy deletion (finished watches stay until
    the head passes them): appends are the common case, so insertion is cheap.
    """

    __slots__ = (
        "active",
        "found",
        "found_since",
        "head",
        "idle_interval",
        "last_progress",
        "last_wave_at",
        "order",
        "outstanding",
        "polled",
        "prev_wave_at",
        "rate",
        "steady_since",
        "version",
        "wave_scheduled",
        "wave_size",
    )

    def __init__(self, policy: PollPolicy) -> None:
        self.active: dict[str, _Watch] = {}
        self.order: list[tuple[int, _Watch]] = []
        self.head = 0
        self.rate: float | None = None
        self.wave_size = policy.front
        self.idle_interval = policy.first_poll_s
        self.last_wave_at = 0.0
        self.steady_since: float | None = None
        self.last_progress = -math.inf
        self.found_since = 0
        self.prev_wave_at = 0.0
        self.outstanding = 0
        self.polled = 0
        self.found = 0
        self.version = 0
        self.wave_scheduled = False

    def add(self, watch: _Watch) -> None:
        self.active[watch.task_id] = watch
        if not self.order or self.order[-1][0] <= watch.seq:
            self.order.append((watch.seq, watch))
        else:
            bisect.insort(self.order, (watch.seq, watch), lo=self.head, key=lambda e: e[0])

    def oldest(self, count: int) -> list[_Watch]:
        order = self.order
        while self.head < len(order) and order[self.head][1].done:
            self.head += 1
        if self.head > 4096 and self.head * 2 > len(order):
            del order[: self.head]
            self.head = 0
        picked: list[_Watch] = []
        for _, watch in itertools.islice(order, self.head, None):
            if len(picked) >= count:
                break
            if not watch.done and not watch.in_flight:
                picked.append(watch)
        return picked


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
        deadline: float = math.inf,
        rng: random.Random | None = None,
    ) -> None:
        self._send = send
        self._api = api
        self._policy = policy
        self._deadline = deadline
        self._rng = rng or random.Random()
        # (due, tiebreak, version, target): target is a _Lane (a wave) or a _Watch (one poll)
        self._heap: list[tuple[float, int, int, Any]] = []
        self._lanes: dict[str, _Lane] = {}
        self._watches: dict[str, _Watch] = {}
        self._seq = itertools.count()
        self._changed = trio.Event()
        self._paused_until = 0.0
        self.polls = 0

    # -- called by actors (synchronous: no await, so no interleaving) ------------------------
    def watch(
        self, task_id: str, task_base: str | None, qpu_key: str, send: Any, order: int
    ) -> None:
        """Start polling ``task_id``; its events go to ``send`` (a memory channel).

        ``order`` is the task's place in the QPU's queue as far as we know (lower is older).
        """
        if task_id in self._watches:
            raise RuntimeError(f"task {task_id} is already being polled")
        lane = self._lanes.get(qpu_key)
        if lane is None:
            lane = self._lanes[qpu_key] = _Lane(self._policy)
        watch = _Watch(task_id, task_base, lane, order, send)
        self._watches[task_id] = watch
        lane.add(watch)
        watch.safety_interval = self._policy.parked_interval_s
        self._push(watch, trio.current_time() + self._jitter(watch.safety_interval))
        if not lane.wave_scheduled and not lane.outstanding:
            self._schedule_wave(lane, self._policy.first_poll_s)

    def unwatch(self, task_id: str) -> None:
        """Stop polling ``task_id`` (its actor is leaving)."""
        watch = self._watches.pop(task_id, None)
        if watch is not None:
            self._finish(watch)

    def poll_soon(self, task_ids: Iterable[str]) -> None:
        """Poll these tasks now (e.g. right after asking the server to cancel them)."""
        now = trio.current_time()
        for task_id in task_ids:
            watch = self._watches.get(task_id)
            if watch is not None and not watch.done:
                watch.urgent = True
                self._push(watch, now)

    # -- the service -------------------------------------------------------------------------
    async def run(self) -> None:
        """Dispatch due polls to a fixed pool of workers until cancelled."""
        send_work, receive_work = trio.open_memory_channel[tuple[_Watch, bool]](0)
        async with trio.open_nursery() as nursery:
            for _ in range(self._policy.concurrency):
                nursery.start_soon(self._worker, receive_work.clone())
            receive_work.close()
            async with send_work:
                while True:
                    target = await self._next_due()
                    if isinstance(target, _Lane):
                        for watch in self._start_wave(target):
                            await send_work.send((watch, True))
                    elif not target.in_flight:
                        if not target.urgent and self._progressing(target.lane):
                            # The lane's waves are finding finished tasks: on a FIFO QPU this
                            # one cannot be done yet, so its safety poll waits.
                            self._defer_safety(target)
                            continue
                        target.urgent = False
                        target.in_flight = True
                        await send_work.send((target, False))

    async def _next_due(self) -> _Lane | _Watch:
        while True:
            now = trio.current_time()
            if self._paused_until > now:
                wake_at = self._paused_until
            elif self._heap:
                due, _, version, target = self._heap[0]
                if version != target.version or getattr(target, "done", False):
                    heapq.heappop(self._heap)
                    continue
                if due <= now:
                    heapq.heappop(self._heap)
                    return target
                wake_at = due
            else:
                wake_at = math.inf
            self._changed = trio.Event()
            with trio.move_on_at(wake_at):
                await self._changed.wait()

    async def _worker(self, receive: trio.MemoryReceiveChannel[tuple[_Watch, bool]]) -> None:
        async with receive:
            async for watch, in_wave in receive:
                found_done = False
                try:
                    if not watch.done:
                        found_done = await self._poll(watch)
                finally:
                    watch.in_flight = False
                    if in_wave:
                        self._wave_poll_done(watch.lane, found_done)

    async def _poll(self, watch: _Watch) -> bool:
        """One status request; True when the task turned out to be finished."""
        request = self._api.all_info(watch.task_base, watch.task_id)
        self.polls += 1
        try:
            response = await self._send(request, deadline=self._deadline)
            info = _wire.parse_task_info(response.json(), watch.task_id)
        except RateLimited as exc:
            self._pause(exc.retry_after or self._policy.first_poll_s)
            return False
        except (NotFoundError, AuthenticationError, ProtocolViolation) as exc:
            self._deliver(watch, ObserveFailure(exc))
            self._finish(watch)
            return False
        except (TransportError, ConnectionFailureException) as exc:
            # Failure to observe is not failure of the task: the lane backs off and retries.
            if isinstance(exc, ConnectionFailureException) and exc.retry_after:
                self._pause(exc.retry_after)
            log.warning("status of task %s not observed (%s); will retry", watch.task_id, exc)
            return False
        self._deliver(watch, info)
        if info.ended:
            self._finish(watch)
            return True
        self._defer_safety(watch)
        return False

    def _defer_safety(self, watch: _Watch) -> None:
        """Move the task's next safety poll further out (doubling, capped)."""
        watch.safety_interval = min(watch.safety_interval * 2, self._policy.max_parked_interval_s)
        self._push(watch, trio.current_time() + self._jitter(watch.safety_interval))

    def _progressing(self, lane: _Lane) -> bool:
        """True while the lane's waves keep finding finished tasks at about its usual pace."""
        patience = self._policy.parked_interval_s
        if lane.rate:
            patience = max(patience, 3.0 / lane.rate)
        return trio.current_time() - lane.last_progress < patience

    # -- waves -------------------------------------------------------------------------------
    def _start_wave(self, lane: _Lane) -> list[_Watch]:
        lane.wave_scheduled = False
        picked = lane.oldest(lane.wave_size)
        if not picked:
            # Every task is being polled by someone else right now: try again later rather
            # than leave the lane without a wave.
            if lane.active:
                self._schedule_wave(lane, self._jitter(lane.idle_interval))
            return []
        lane.prev_wave_at, lane.last_wave_at = lane.last_wave_at, trio.current_time()
        lane.outstanding = len(picked)
        lane.polled = len(picked)
        lane.found = 0
        for watch in picked:
            watch.in_flight = True
        return picked

    def _wave_poll_done(self, lane: _Lane, found_done: bool) -> None:
        lane.found += found_done
        lane.outstanding -= 1
        if lane.outstanding == 0 and lane.active:
            self._plan_next_wave(lane)

    def _plan_next_wave(self, lane: _Lane) -> None:
        policy = self._policy
        polled, found = lane.polled, lane.found
        now = trio.current_time()
        duration = now - lane.last_wave_at
        if lane.steady_since is not None:
            lane.found_since += found
        if found:
            lane.last_progress = now
        if polled and found == polled:
            # Everything asked about was done: we are behind. Ask about more, at once:
            # what finished during this wave, plus a quarter more to catch up.
            if lane.rate is None:
                grown = max(2 * polled, policy.front)
            else:
                grown = math.ceil(lane.rate * duration) + max(1, polled // 4)
            lane.wave_size = min(policy.max_wave, grown)
            self._schedule_wave(lane, 0.0)
            return
        if found == 0:
            lane.idle_interval = min(
                max(lane.idle_interval * 2, policy.first_poll_s), policy.max_interval_s
            )
            if lane.rate is not None:
                lane.wave_size = max(1, math.ceil(lane.rate * lane.idle_interval))
            else:
                # Nothing has finished yet: while the oldest are still running, fewer asks.
                lane.wave_size = max(1, polled // 2)
            self._schedule_wave(lane, self._jitter(lane.idle_interval))
            return
        # Caught up with the lane's frontier: estimate its throughput over the whole time
        # we have been caught up (robust to how waves happen to slice it).
        if lane.steady_since is None:
            lane.steady_since, lane.found_since = lane.last_wave_at, found
        span = now - lane.steady_since
        window = now - lane.prev_wave_at if lane.prev_wave_at else duration + lane.idle_interval
        lane.rate = lane.found_since / span if span > 0.25 else found / max(window, 1e-3)
        delay = min(max(policy.wave_target / lane.rate, policy.first_poll_s), policy.max_interval_s)
        lane.idle_interval = delay
        # Expected completions by the next wave, plus the one poll that finds the frontier
        # (when less than one completion is expected, the oldest task alone is enough).
        expected = lane.rate * (delay + duration)
        extra = 1 if expected >= 1 else 0
        lane.wave_size = min(policy.max_wave, max(1, math.ceil(expected)) + extra)
        self._schedule_wave(lane, self._jitter(delay))

    def _schedule_wave(self, lane: _Lane, delay: float) -> None:
        lane.wave_scheduled = True
        self._push(lane, trio.current_time() + delay)

    # -- bookkeeping -------------------------------------------------------------------------
    def _push(self, target: _Lane | _Watch, due: float) -> None:
        target.version += 1
        heapq.heappush(self._heap, (due, next(self._seq), target.version, target))
        if self._heap[0][3] is target:
            self._changed.set()

    def _jitter(self, delay: float) -> float:
        return delay * (0.8 + 0.2 * self._rng.random())

    def _deliver(self, watch: _Watch, event: Any) -> None:
        try:
            watch.send.send_nowait(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._finish(watch)

    def _pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, trio.current_time() + seconds)
        self._changed.set()

    def _finish(self, watch: _Watch) -> None:
        if watch.done:
            return
        watch.done = True
        watch.version += 1
        self._watches.pop(watch.task_id, None)
        lane = watch.lane
        lane.active.pop(watch.task_id, None)
        if lane.active and not lane.wave_scheduled and not lane.outstanding:
            # The lane had stopped (all its tasks were in flight elsewhere): restart it.
            self._schedule_wave(lane, self._policy.first_poll_s)
