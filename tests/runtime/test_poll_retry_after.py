"""A ``Retry-After`` on a status poll, end to end: SDK -> transport -> emulator (#3).

The emulator answers the first ``GET .../all_info`` with 429 and ``Retry-After: 5``. The
scheduler's documented design (``_actors/scheduler.py``: "A ``Retry-After`` pauses the whole
schedule"; architecture: "honour ``Retry-After``") means that no status request of this
execute call reaches the server during those 5 s. The official SDK treats 429 like 503 on a
fixed schedule and keeps polling every other job meanwhile.

A recording httpx transport (loopback only) notes when each request leaves and what the
server answered; times are trio's autojump clock (the emulator's clock too).
"""

from __future__ import annotations

from typing import Any

import httpx
import trio
from runtime_support import BELL, config, counters, open_emulator

from oqc_trio._actors.policy import PollPolicy
from oqc_trio.client import OqcSdk
from oqc_trio.emulator.faults import FaultPlan, FaultRule
from oqc_trio.job import CompositeJob

RETRY_AFTER_S = 5.0


class RecordingTransport(httpx.AsyncBaseTransport):
    """Forward to the real server; record ``(time, method, path, status)`` per request."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.log: list[tuple[float, str, str, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent_at = trio.current_time()
        response = await self._inner.handle_async_request(request)
        self.log.append((sent_at, request.method, request.url.path, response.status_code))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def rate_limit_first_poll() -> FaultPlan:
    rule = FaultRule(
        kind="status",
        routes=("GET /tasks/*/all_info",),
        status=(429,),
        retry_after_s=RETRY_AFTER_S,
        times=1,
    )
    return FaultPlan(rules=(rule,))


async def test_no_status_request_during_retry_after_of_a_429_poll(autojump_clock: Any) -> None:
    recorder = RecordingTransport()
    async with open_emulator(
        config(execution_time_s=2.0, faults=rate_limit_first_poll()), executor="instant"
    ) as emu:
        async with OqcSdk(
            emu.url,
            authentication_token=emu.token,
            poll_policy=PollPolicy(first_poll_s=0.05, max_interval_s=0.5),
            transport_factory=lambda: recorder,
        ) as sdk:
            qpus = [q["id"] for q in await sdk.list_qpus()]
            composite = sdk.create_job(program=[BELL] * 4, qpu_id=qpus)
            assert isinstance(composite, CompositeJob)
            await composite.execute(timeout_s=60)
            assert composite.completed
        assert (await counters(emu))["faults_injected"] == {"status:429": 1}
    polls = [(t, status) for t, method, path, status in recorder.log if path.endswith("/all_info")]
    limited_at = next(t for t, status in polls if status == 429)
    during = [round(t - limited_at, 3) for t, _ in polls if limited_at < t < limited_at + 5.0]
    assert during == [], f"status requests {during} s after a 429 with Retry-After: 5"
