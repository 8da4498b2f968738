"""Shared pieces of the runtime tests: programs, emulator configs, counters."""

from __future__ import annotations

from typing import Any

import attrs
import httpx
import pytest

from oqc_trio._actors.policy import PollPolicy

pytest.importorskip("qiskit_aer")
from oqc_trio.emulator.config import EmulatorConfig
from oqc_trio.emulator.server import open_emulator

__all__ = ["BELL", "FAST_POLL", "config", "counters", "open_emulator"]

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""

FAST_POLL = PollPolicy(first_poll_s=0.02, max_interval_s=0.5, parked_interval_s=5.0)


def config(**changes: Any) -> Any:
    """The default emulator catalogue with fast QPUs unless told otherwise."""
    base = EmulatorConfig.default()
    execution_time_s = changes.pop("execution_time_s", 0.0)
    qpus = tuple(attrs.evolve(q, execution_time_s=execution_time_s) for q in base.qpus)
    return base.evolve(qpus=qpus, **changes)


async def counters(emu: Any) -> dict[str, Any]:
    """The emulator's admin counters (requests per route, submissions per task ID)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(
            emu.url + "/admin/emulator/counters",
            headers={"Authentication-Token": emu.admin_token},
        )
        response.raise_for_status()
        return response.json()
