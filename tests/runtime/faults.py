"""A fault-injecting httpx transport in front of a real emulator (loopback only).

Used through ``OqcSdk(..., transport_factory=...)``: every request still reaches the real
server unless a rule answers (or breaks) it first, so the server's counters stay the truth.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import trio
from runtime_support import FAST_POLL

from oqc_trio._transport import RetryPolicy
from oqc_trio.client import OqcSdk

Rule = Callable[[httpx.Request], "str | None"]


class FaultyTransport(httpx.AsyncBaseTransport):
    """Forward to the real server, injecting faults chosen by ``decide(request)``:

    - ``"429"`` / ``"503"``: answer without forwarding (429 carries ``Retry-After``);
    - ``"drop"``: raise a connection error without forwarding (a restart, a dropped link);
    - ``"accept-then-timeout"``: forward, let the server act, then raise ``ReadTimeout``
      (the ambiguous case: did the submission happen?);
    - ``None``: forward normally.
    """

    def __init__(self, decide: Rule, *, retry_after: str = "0.05") -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._decide = decide
        self._retry_after = retry_after
        self.injected: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault = self._decide(request)
        if fault is not None:
            self.injected[fault] += 1
        if fault == "429":
            return httpx.Response(
                429,
                json={"response": {"errors": ["slow down"]}},
                headers={"Retry-After": self._retry_after},
            )
        if fault == "503":
            return httpx.Response(503, text="unavailable")
        if fault == "drop":
            raise httpx.ConnectError("injected: connection refused", request=request)
        response = await self._inner.handle_async_request(request)
        if fault == "accept-then-timeout":
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("injected: answer lost", request=request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def storm(rate: float, seed: int = 7) -> Rule:
    """429 or 503 on a fraction ``rate`` of GETs and of ID reservations (never on submit)."""
    rng = random.Random(seed)

    def decide(request: httpx.Request) -> str | None:
        path = request.url.path
        if request.method == "POST" and not path.endswith("/tasks"):
            return None
        if "/admin/" in path:
            return None
        roll = rng.random()
        if roll < rate / 2:
            return "429"
        if roll < rate:
            return "503"
        return None

    return decide


def first_submits_ambiguous(count: int) -> Rule:
    """The first ``count`` submit POSTs reach the server but their answers are lost."""
    remaining = [count]

    def decide(request: httpx.Request) -> str | None:
        is_submit = request.method == "POST" and request.url.path.endswith("/tasks/submit")
        if is_submit and remaining[0] > 0:
            remaining[0] -= 1
            return "accept-then-timeout"
        return None

    return decide


def outage(start_after_polls: int, duration_s: float) -> Rule:
    """After ``start_after_polls`` status requests, every request fails to connect for
    ``duration_s`` seconds: what a client sees while the server restarts."""
    seen = [0]
    until = [0.0]

    def decide(request: httpx.Request) -> str | None:
        now = trio.current_time()
        if now < until[0]:
            return "drop"
        if request.url.path.endswith("/all_info"):
            seen[0] += 1
            if seen[0] == start_after_polls:
                until[0] = now + duration_s
                return "drop"
        return None

    return decide


FAST_RETRY = RetryPolicy(max_attempts=8, base_delay=0.02, max_delay=0.2)


def faulty_sdk(emu: Any, faults: FaultyTransport, **options: Any) -> OqcSdk:
    """An SDK on ``emu`` whose every request goes through ``faults``, polling and retrying
    fast."""
    return OqcSdk(
        emu.url,
        authentication_token=emu.token,
        poll_policy=FAST_POLL,
        retry=FAST_RETRY,
        transport_factory=lambda: faults,
        **options,
    )
