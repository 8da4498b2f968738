"""The reliability figure: a 2,000-job CompositeJob through our SDK against the emulator with
10 % of requests answered 429 or 503 and 2 % of connections dropped, every job completing
with no task submitted twice, and what the faults cost in extra requests."""

from __future__ import annotations

from typing import Any

import attrs
import httpx
import pytest
import trio

pytest.importorskip("hypercorn")

from oqc_trio._actors.policy import PollPolicy
from oqc_trio._transport import RetryPolicy
from oqc_trio.client import OqcSdk
from oqc_trio.emulator.config import EmulatorConfig
from oqc_trio.emulator.faults import parse_plan
from oqc_trio.emulator.server import RunningEmulator, open_emulator
from oqc_trio.job import CompositeJob

JOBS = 2_000
BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""
FAULTS = {
    "seed": 2024,
    "rules": [
        {"kind": "status", "status": [429, 503], "probability": 0.10, "retry_after_s": 0.05},
        {"kind": "drop", "probability": 0.02},
    ],
}


def emulator_config(faults: dict[str, Any] | None) -> EmulatorConfig:
    """The default catalogue, QPUs without simulated execution time, ``faults`` injected."""
    base = EmulatorConfig.default()
    qpus = tuple(attrs.evolve(q, execution_time_s=0.0) for q in base.qpus)
    return base.evolve(qpus=qpus, faults=parse_plan(faults, None))


async def counters(emu: RunningEmulator) -> dict[str, Any]:
    """The emulator's admin counters."""
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{emu.url}/admin/emulator/counters", headers={"Authentication-Token": emu.admin_token}
        )
        return response.json()


async def run_batch(faults: dict[str, Any] | None) -> dict[str, Any]:
    """Run the batch through our SDK; return it with the server's and client's counters."""
    async with open_emulator(emulator_config(faults), executor="instant") as emu:
        sdk = OqcSdk(
            emu.url,
            authentication_token=emu.token,
            poll_policy=PollPolicy(first_poll_s=0.02, max_interval_s=0.5),
            retry=RetryPolicy(max_attempts=10, base_delay=0.02, max_delay=0.5),
        )
        started = trio.current_time()
        async with sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            composite = sdk.create_job(program=[BELL] * JOBS, qpu_id=qpu)
            assert isinstance(composite, CompositeJob)
            with trio.fail_after(50):
                await composite.execute(timeout_s=None)
            elapsed = trio.current_time() - started
            client = sdk.statistics()
        server = await counters(emu)
    return {
        "composite": composite,
        "elapsed_s": elapsed,
        "server": server,
        "client": client,
    }


@pytest.mark.slow
async def test_reliability_figure() -> None:
    clean = await run_batch(None)
    faulty = await run_batch(FAULTS)
    for run in (clean, faulty):
        composite = run["composite"]
        assert composite.completed and not composite.failed_jobs, composite
        assert len(run["server"]["submissions"]) == JOBS
        assert run["server"]["duplicate_submissions"] == {}
    injected = faulty["server"]["faults_injected"]
    assert injected.get("drop", 0) > 0 and injected.get("status:429", 0) > 0
    assert injected.get("status:503", 0) > 0

    base, hit = clean["server"]["total_requests"], faulty["server"]["total_requests"]
    lines = [
        f"reliability figure: {JOBS} jobs, 10% 429/503 + 2% dropped connections",
        f"  clean run: {base} requests in {clean['elapsed_s']:.1f} s",
        f"  faulty run: {hit} requests in {faulty['elapsed_s']:.1f} s "
        f"(+{hit - base}, +{100 * (hit - base) / base:.1f}%)",
        f"  faults injected: {dict(sorted(injected.items()))}",
        f"  requests by route (faulty): {faulty['server']['requests']}",
        f"  client retries: {faulty['client'].retries}, 429 seen: {faulty['client'].rate_limited}",
        "  every job completed; duplicate submissions: 0",
    ]
    print("\n" + "\n".join(lines))
