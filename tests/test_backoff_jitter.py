"""Retry backoff of the transport is jittered, capped and honours ``Retry-After`` (#3).

The official SDK retries after a fixed 1, 2, 4, 8 s, identical for every request, and
ignores ``Retry-After``: many clients failing together retry together (a thundering herd).
These tests fail if :class:`RetryPolicy` or :class:`Transport` regress to that. Fake servers
are ``httpx.MockTransport``s (no network); waits run on trio's autojump clock; every random
generator is seeded, so each run draws the same values.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
import trio

from oqc_trio import _wire
from oqc_trio._transport import RetryPolicy, Transport
from oqc_trio.auth import Credentials

BASE = "http://127.0.0.1:9"  # never contacted: every request goes to a MockTransport
API = _wire.Api(BASE)


def cap(policy: RetryPolicy, retry_number: int) -> float:
    """The documented ceiling of retry ``retry_number``'s wait."""
    return min(policy.max_delay, policy.base_delay * 2.0 ** (retry_number - 1))


@pytest.mark.parametrize("retry_number", [1, 2, 3, 5, 8, 20, 200])
def test_backoff_draws_differ_and_stay_within_their_cap(retry_number: int) -> None:
    policy = RetryPolicy(base_delay=0.25, max_delay=16.0, rng=random.Random(retry_number))
    ceiling = cap(policy, retry_number)
    draws = [policy.backoff(retry_number) for _ in range(500)]
    assert all(0.0 <= d <= ceiling for d in draws), (min(draws), max(draws), ceiling)
    # Not a fixed schedule: the values differ...
    assert len(set(draws)) > 400
    # ...and spread over the whole range ("full jitter"), not a narrow band near the cap.
    assert min(draws) < 0.1 * ceiling and max(draws) > 0.9 * ceiling


def test_backoff_never_exceeds_max_delay_even_for_huge_retry_numbers() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=3.0, rng=random.Random(3))
    assert all(policy.backoff(n) <= 3.0 for n in (10, 64, 65, 1000, 10**6))


def test_retry_after_is_a_minimum_wait_above_the_jitter() -> None:
    policy = RetryPolicy(base_delay=0.25, max_delay=16.0, rng=random.Random(11))
    assert all(policy.backoff(1, retry_after=5.0) >= 5.0 for _ in range(200))
    # A Retry-After below the drawn delay does not shorten it below the jitter's own range.
    draws = [policy.backoff(8, retry_after=0.01) for _ in range(200)]
    assert all(0.01 <= d <= cap(policy, 8) for d in draws)
    assert len(set(draws)) > 150


async def test_concurrent_retries_after_a_shared_503_are_not_in_lock_step(
    autojump_clock: Any,
) -> None:
    """Twenty GETs all answered 503 at the same instant: their resends are spread over
    ``[0, base_delay]`` instead of all arriving together one backoff step later."""
    arrivals: list[tuple[float, int]] = []  # (time, attempt number of that request)
    attempts: dict[str, int] = {}

    def server(request: httpx.Request) -> httpx.Response:
        key = request.url.path
        attempts[key] = attempts.get(key, 0) + 1
        arrivals.append((trio.current_time(), attempts[key]))
        if attempts[key] == 1:
            return httpx.Response(503, text="busy")
        return httpx.Response(200, json={"status": "RUNNING"})

    policy = RetryPolicy(base_delay=1.0, max_delay=16.0, rng=random.Random(2024))
    transport = Transport(
        BASE,
        Credentials(token="tok"),
        max_concurrency=64,
        retry=policy,
        transport_factory=lambda: httpx.MockTransport(server),
    )
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(transport.send, API.all_info(None, f"task-{i}"))
    await transport.aclose()
    first = [t for t, n in arrivals if n == 1]
    resent = [t - start for t, n in arrivals if n == 2]
    assert len(first) == 20 and set(first) == {start}  # the herd arrives together...
    assert len(resent) == 20
    assert all(0.0 <= r <= 1.0 for r in resent), resent  # ...within the first step's cap...
    assert len(set(resent)) == 20  # ...but is not resent together
    assert max(resent) - min(resent) > 0.5
