"""The poll scheduler's protection of the service (#3): no lock-step polling, jittered and
capped intervals, and a ``Retry-After`` that pauses the whole schedule.

The official SDK polls every job on its own unjittered schedule (0, 0.2, 0.6, 1.4 ... then
every 10 s), so N jobs submitted together are polled N at a time, forever, and a 429 is
retried on a fixed schedule. Our scheduler's documented design (``_actors/scheduler.py``,
``PollPolicy``): each QPU lane is polled in *waves* of its oldest tasks (the first wave at
most ``front`` tasks), wave delays and safety polls are jittered, gaps between waves are at
most ``max_interval_s``, and a ``RateLimited`` with ``retry_after`` pauses every poll.

Driven directly against a fake QPU on trio's autojump clock with seeded random generators
(deterministic, instant); requests cost no virtual time, so any two polls at the same
instant were *scheduled* at the same instant.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from typing import Any

import trio

from oqc_trio import _wire
from oqc_trio._actors.policy import PollPolicy
from oqc_trio._actors.scheduler import PollScheduler
from oqc_trio.exceptions import RateLimited


class _Answer:
    def __init__(self, payload: dict[str, Any]) -> None:
        self._payload = payload

    def json(self) -> dict[str, Any]:
        return self._payload


class RecordingQpu:
    """Answers ``all_info`` like the service and records ``(time, task_id)`` of each poll.

    ``rate_limit_first`` makes the first poll answer 429 with that ``Retry-After``.
    """

    def __init__(self, finish_at: dict[str, float], rate_limit_first: float | None = None):
        self.finish_at = finish_at
        self.polls: list[tuple[float, str]] = []
        self.rate_limit_first = rate_limit_first
        self.limited_at: float | None = None

    async def send(self, request: _wire.Request, *, deadline: float = math.inf) -> _Answer:
        task_id = request.url.rsplit("/", 2)[-2]
        now = trio.current_time()
        self.polls.append((now, task_id))
        await trio.lowlevel.checkpoint()
        if self.rate_limit_first is not None and self.limited_at is None:
            self.limited_at = now
            raise RateLimited("slow down", 429, retry_after=self.rate_limit_first)
        if now >= self.finish_at[task_id]:
            return _Answer({"status": "COMPLETED", "results": {"c": {"0": 1}}})
        return _Answer({"status": "RUNNING"})


async def follow(
    qpu: RecordingQpu,
    ids: list[str],
    policy: PollPolicy,
    *,
    seed: int,
    lanes: int = 1,
    observe_for: float | None = None,
) -> dict[str, float]:
    """Watch every task (all registered at the same instant, ``lanes`` QPUs round-robin)
    until each is seen finished, or for ``observe_for`` seconds; return when each ended."""
    scheduler = PollScheduler(
        qpu.send, _wire.Api("http://127.0.0.1:1"), policy, rng=random.Random(seed)
    )
    seen: dict[str, float] = {}

    async def actor(task_id: str, position: int) -> None:
        send, receive = trio.open_memory_channel[Any](math.inf)
        scheduler.watch(task_id, None, f"qpu-{position % lanes}", send, position)
        async with receive:
            async for info in receive:
                if info.ended:
                    seen[task_id] = trio.current_time()
                    return

    with trio.move_on_after(math.inf if observe_for is None else observe_for):
        async with trio.open_nursery() as services:
            services.start_soon(scheduler.run)
            async with trio.open_nursery() as actors:
                for position, task_id in enumerate(ids):
                    actors.start_soon(actor, task_id, position)
            services.cancel_scope.cancel()
    return seen


def busiest_instant(polls: list[tuple[float, str]]) -> int:
    """The largest number of polls sent at one single instant."""
    return max(Counter(t for t, _ in polls).values())


async def test_many_tasks_due_together_are_not_polled_together(autojump_clock: Any) -> None:
    """200 tasks submitted at the same instant that run for longer than we watch: the first
    wave asks about at most ``front`` of them, and the safety polls that reach every task
    are spread out by jitter (unjittered, all 200 would fall on one instant)."""
    policy = PollPolicy()
    start = trio.current_time()
    ids = [f"t{i:03d}" for i in range(200)]
    qpu = RecordingQpu(dict.fromkeys(ids, start + 10_000.0))
    await follow(qpu, ids, policy, seed=1, observe_for=3 * policy.parked_interval_s)
    assert {task for _, task in qpu.polls} == set(ids)  # every task was looked at...
    assert busiest_instant(qpu.polls) <= policy.front, busiest_instant(qpu.polls)
    # ...at many different instants, not a handful of synchronised bursts.
    assert len({t for t, _ in qpu.polls}) >= 150
    first_poll = min(t for t, _ in qpu.polls)
    assert sum(1 for t, _ in qpu.polls if t == first_poll) <= policy.front


async def test_tasks_on_several_qpus_are_not_polled_in_lock_step(autojump_clock: Any) -> None:
    """Four QPU lanes of 50 tasks each, all submitted together: after the first waves, the
    lanes' schedules drift apart (each wave delay is jittered on its own)."""
    policy = PollPolicy(max_interval_s=2.0)
    start = trio.current_time()
    ids = [f"t{i:03d}" for i in range(200)]
    qpu = RecordingQpu(dict.fromkeys(ids, start + 10_000.0))
    await follow(qpu, ids, policy, seed=2, lanes=4, observe_for=40.0)
    lanes_at: dict[float, set[int]] = {}
    for t, task in qpu.polls:
        if t > start + 1.0:
            lanes_at.setdefault(t, set()).add(int(task[1:]) % 4)
    assert len(lanes_at) > 40
    shared = [t for t, lanes in lanes_at.items() if len(lanes) > 1]
    # Unjittered, the four lanes would be polled at the very same instants throughout.
    assert len(shared) <= 0.05 * len(lanes_at), (len(shared), len(lanes_at))
    assert busiest_instant(qpu.polls) <= 4 * policy.front


async def test_wave_intervals_are_jittered_and_capped(autojump_clock: Any) -> None:
    """A lane whose oldest task runs for 120 s: the waves back off up to ``max_interval_s``
    and never beyond; at the cap the gaps still vary (the official SDK: exactly 10 s)."""
    policy = PollPolicy(max_interval_s=2.0, parked_interval_s=600.0)
    start = trio.current_time()
    ids = [f"t{i:02d}" for i in range(10)]
    qpu = RecordingQpu({task: start + 120.0 + i for i, task in enumerate(ids)})
    seen = await follow(qpu, ids, policy, seed=3)
    assert set(seen) == set(ids)
    oldest = [t for t, task in qpu.polls if task == ids[0]]
    gaps = [b - a for a, b in itertools.pairwise(oldest)]
    assert len(gaps) > 40
    assert max(gaps) <= policy.max_interval_s + 1e-9, max(gaps)
    at_cap = gaps[len(gaps) // 2 :]
    assert len({round(g, 9) for g in at_cap}) > len(at_cap) // 2, at_cap
    assert min(at_cap) < 0.95 * policy.max_interval_s
    # Seen within one interval of finishing.
    assert seen[ids[0]] - (start + 120.0) <= policy.max_interval_s


async def test_two_seeds_give_two_different_schedules(autojump_clock: Any) -> None:
    """The same workload under two random seeds is polled at different instants: the
    schedule is randomised, not a fixed function of the submission time."""
    schedules = []
    for seed in (10, 11):
        start = trio.current_time()
        ids = [f"t{i:02d}" for i in range(30)]
        qpu = RecordingQpu(dict.fromkeys(ids, start + 60.0))
        await follow(qpu, ids, PollPolicy(max_interval_s=5.0), seed=seed)
        schedules.append([round(t - start, 9) for t, _ in qpu.polls])
    assert schedules[0] != schedules[1]


async def test_retry_after_pauses_every_poll_of_the_schedule(autojump_clock: Any) -> None:
    """A poll answered 429 with ``Retry-After: 5`` (after the transport's own retries):
    no poll of any task is sent during the next 5 s; then polling resumes and every task
    is still seen finished."""
    start = trio.current_time()
    ids = [f"t{i:02d}" for i in range(40)]
    qpu = RecordingQpu(
        {task: start + 1.0 + 0.25 * i for i, task in enumerate(ids)}, rate_limit_first=5.0
    )
    seen = await follow(qpu, ids, PollPolicy(first_poll_s=0.05, max_interval_s=0.5), seed=4)
    assert set(seen) == set(ids)
    limited_at = qpu.limited_at
    assert limited_at is not None
    during = [t for t, _ in qpu.polls if limited_at < t < limited_at + 5.0]
    assert during == [], during
    assert any(t >= limited_at + 5.0 for t, _ in qpu.polls)
