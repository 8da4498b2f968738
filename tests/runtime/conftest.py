"""Fixtures: an emulator on a real loopback socket, and an SDK opened against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from runtime_support import FAST_POLL, config, open_emulator

from oqc_trio.client import OqcSdk


@pytest.fixture
async def emu() -> AsyncIterator[Any]:
    async with open_emulator(config(), executor="instant") as server:
        yield server


@pytest.fixture
async def sdk(emu: Any) -> AsyncIterator[OqcSdk]:
    async with OqcSdk(emu.url, authentication_token=emu.token, poll_policy=FAST_POLL) as client:
        yield client


@pytest.fixture
async def aer_sdk() -> AsyncIterator[OqcSdk]:
    """An SDK against an emulator that really simulates (qiskit-aer workers)."""
    async with open_emulator(config(), executor="aer") as server:
        async with OqcSdk(
            server.url, authentication_token=server.token, poll_policy=FAST_POLL
        ) as client:
            yield client
