"""Fixtures of the emulator tests: an emulator on a real loopback socket and an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from emulator_support import make_config

from oqc_trio.emulator.server import RunningEmulator, open_emulator


@pytest.fixture
async def emu() -> AsyncIterator[RunningEmulator]:
    """An instant-executor emulator (no simulation) with users alice and bob."""
    async with open_emulator(make_config(), executor="instant") as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client (not our SDK)."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client
