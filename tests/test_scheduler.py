"""The poll scheduler against a simulated FIFO QPU, on trio's autojump clock (instant and
deterministic): requests per task, lag, and robustness to out-of-order completion."""

from __future__ import annotations

import math
import random
from typing import Any

import trio

from oqc_trio import _wire
from oqc_trio._actors.policy import PollPolicy
from oqc_trio._actors.scheduler import PollScheduler


class _Answer:
    def __init__(self, payload: dict[str, Any]) -> None:
        self._payload = payload

    def json(self) -> dict[str, Any]:
        return self._payload


class FakeQpu:
    """Tasks finish at given times; ``send`` answers ``all_info`` like the service."""

    def __init__(self, finish_at: dict[str, float], request_cost_s: float = 0.002) -> None:
        self.finish_at = finish_at
        self.request_cost_s = request_cost_s
        self.polls: dict[str, int] = dict.fromkeys(finish_at, 0)

    async def send(self, request: _wire.Request, *, deadline: float = math.inf) -> _Answer:
        task_id = request.url.rsplit("/", 2)[-2]
        self.polls[task_id] += 1
        await trio.sleep(self.request_cost_s)
        if trio.current_time() >= self.finish_at[task_id]:
            return _Answer({"status": "COMPLETED", "results": {"c": {"0": 1}}})
        return _Answer({"status": "RUNNING"})


async def follow_all(qpu: FakeQpu, order: list[str], policy: PollPolicy) -> dict[str, float]:
    """Watch every task (in ``order``) and return when each was seen finished."""
    scheduler = PollScheduler(qpu.send, _wire.Api("http://127.0.0.1:1"), policy)
    seen: dict[str, float] = {}

    async def actor(task_id: str, position: int) -> None:
        send, receive = trio.open_memory_channel[Any](4)
        scheduler.watch(task_id, None, "qpu", send, position)
        async with receive:
            async for info in receive:
                if info.ended:
                    seen[task_id] = trio.current_time()
                    return

    async with trio.open_nursery() as services:
        services.start_soon(scheduler.run)
        async with trio.open_nursery() as actors:
            for position, task_id in enumerate(order):
                actors.start_soon(actor, task_id, position)
        services.cancel_scope.cancel()
    return seen


async def test_fifo_queue_costs_about_one_poll_per_task(autojump_clock: Any) -> None:
    start = trio.current_time()
    ids = [f"t{i:05d}" for i in range(2000)]
    finish = {task_id: start + 0.010 * (i + 1) for i, task_id in enumerate(ids)}
    qpu = FakeQpu(finish)
    seen = await follow_all(qpu, ids, PollPolicy())
    assert len(seen) == 2000
    polls = sum(qpu.polls.values())
    assert polls <= 1.25 * 2000, polls
    lag = max(seen[t] - finish[t] for t in ids)
    assert lag < 1.0, lag
    assert seen[ids[-1]] - finish[ids[-1]] < 1.0


async def test_instant_batch_costs_one_poll_per_task(autojump_clock: Any) -> None:
    start = trio.current_time()
    ids = [f"t{i:05d}" for i in range(5000)]
    qpu = FakeQpu(dict.fromkeys(ids, start + 0.05))
    seen = await follow_all(qpu, ids, PollPolicy())
    assert len(seen) == 5000
    assert sum(qpu.polls.values()) <= 1.02 * 5000


async def test_long_queue_costs_few_polls(autojump_clock: Any) -> None:
    """200 tasks of one minute each (3h20 of queue): polls stay a small multiple of tasks
    (a poller per job every 10 s, the official SDK's cap, would send about 240,000)."""
    start = trio.current_time()
    ids = [f"t{i:03d}" for i in range(200)]
    finish = {task_id: start + 60.0 * (i + 1) for i, task_id in enumerate(ids)}
    qpu = FakeQpu(finish)
    seen = await follow_all(qpu, ids, PollPolicy(max_interval_s=30.0))
    assert len(seen) == 200
    assert sum(qpu.polls.values()) <= 6 * 200, sum(qpu.polls.values())
    assert max(seen[t] - finish[t] for t in ids) <= 31.0


async def test_out_of_order_completion_is_still_seen(autojump_clock: Any) -> None:
    """A server that finishes tasks in random order: every task is seen, and the safety
    polls bound the lag of tasks no wave reached."""
    rng = random.Random(5)
    start = trio.current_time()
    ids = [f"t{i:03d}" for i in range(300)]
    finish = {task_id: start + rng.uniform(0.0, 30.0) for task_id in ids}
    qpu = FakeQpu(finish)
    seen = await follow_all(qpu, ids, PollPolicy(parked_interval_s=5.0, max_interval_s=2.0))
    assert len(seen) == 300
    assert sum(qpu.polls.values()) <= 10 * 300
