"""Per-user limits, to rehearse throttling: a request rate, concurrent requests, and tasks
queued or running at once. Each refusal is a 429 with ``Retry-After``.

TOML: a top-level ``[limits]`` table applies to every user; a user's ``limits`` table
overrides it key by key::

    [limits]
    requests_per_s = 50.0        # sustained rate (GCRA), bursts of `burst` allowed
    burst = 100
    max_concurrent_requests = 20
    max_active_tasks = 5000      # SUBMITTED + RUNNING tasks of one user
    retry_after_s = 1.0          # Retry-After of concurrency and active-task refusals

    [[users]]
    email = "ci@example.com"
    tokens = ["ci-token"]
    limits = { requests_per_s = 5.0 }

Administrators are never limited. A submission that would take a user past
``max_active_tasks`` is refused whole (nothing is queued).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs

from .validate import (
    int_key,
    number_key,
    opt_int_key,
    opt_number_key,
    reject_unknown,
    table,
)

__all__ = ["LimitTracker", "UserLimits", "format_retry_after", "parse_limits"]

_KEYS = {"requests_per_s", "burst", "max_concurrent_requests", "max_active_tasks", "retry_after_s"}


@attrs.frozen
class UserLimits:
    """The limits of one user; None means unlimited. ``burst`` requests may arrive at once
    before ``requests_per_s`` applies."""

    requests_per_s: float | None = None
    burst: int = 1
    max_concurrent_requests: int | None = None
    max_active_tasks: int | None = None
    retry_after_s: float = 1.0

    @property
    def unlimited(self) -> bool:
        """True when nothing is limited."""
        return (
            self.requests_per_s is None
            and self.max_concurrent_requests is None
            and self.max_active_tasks is None
        )


def parse_limits(raw: Any, where: str, base: UserLimits | None = None) -> UserLimits:
    """A ``limits`` table over ``base`` (keys not given keep ``base``'s values)."""
    start = base or UserLimits()
    if raw is None:
        return start
    data: Mapping[str, Any] = table(raw, where)
    reject_unknown(data, _KEYS, where)
    rate = opt_number_key(data, "requests_per_s", minimum=0.0, exclusive=True, where=where)
    rate = start.requests_per_s if rate is None else rate
    default_burst = start.burst if "requests_per_s" not in data else max(1, math.ceil(rate or 1))
    concurrent = opt_int_key(data, "max_concurrent_requests", where, minimum=1)
    active = opt_int_key(data, "max_active_tasks", where, minimum=1)
    return UserLimits(
        requests_per_s=rate,
        burst=int_key(data, "burst", default_burst, minimum=1, where=where),
        max_concurrent_requests=start.max_concurrent_requests if concurrent is None else concurrent,
        max_active_tasks=start.max_active_tasks if active is None else active,
        retry_after_s=number_key(
            data, "retry_after_s", start.retry_after_s, minimum=0.0, where=where
        ),
    )


def format_retry_after(seconds: float) -> str:
    """The ``Retry-After`` value: whole seconds (rounded up) as HTTP defines it, except
    below one second, where a decimal is sent so that tests can run fast (our SDK reads it;
    clients that only parse integers fall back to their own backoff)."""
    if seconds <= 0:
        return "0"
    if seconds >= 1:
        return str(math.ceil(seconds - 1e-9))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


class LimitTracker:
    """Request-rate and concurrency accounting per user (sans I/O: the caller passes the
    time, in seconds of any monotonic clock)."""

    def __init__(self) -> None:
        self._arrival: dict[int, float] = {}
        self._in_flight: Counter[int] = Counter()

    def admit(self, user_id: int, limits: UserLimits, now: float) -> float | None:
        """Take one request of ``user_id``: None if admitted (then :meth:`release` it when
        answered), else the seconds the client should wait."""
        cap = limits.max_concurrent_requests
        if cap is not None and self._in_flight[user_id] >= cap:
            return limits.retry_after_s
        if limits.requests_per_s is not None:
            # GCRA: `arrival` is the theoretical arrival time of the next request; up to
            # `burst` requests may come early by the tolerance.
            interval = 1.0 / limits.requests_per_s
            tolerance = (limits.burst - 1) * interval
            arrival = max(self._arrival.get(user_id, now), now)
            if arrival - now > tolerance:
                return max(arrival - tolerance - now, 1e-3)
            self._arrival[user_id] = arrival + interval
        self._in_flight[user_id] += 1
        return None

    def release(self, user_id: int) -> None:
        """An admitted request was answered."""
        self._in_flight[user_id] -= 1
        if self._in_flight[user_id] <= 0:
            del self._in_flight[user_id]

    def in_flight(self, user_id: int) -> int:
        """Requests of ``user_id`` being answered now."""
        return self._in_flight[user_id]
