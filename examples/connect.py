"""Where the examples run: the service named by OQC_URL / OQC_TOKEN, else a local emulator.

``async with connect() as sdk:`` yields an opened :class:`oqc_trio.OqcSdk`. Without
``OQC_URL`` it serves ``oqc-emulator`` on an ephemeral loopback port inside the caller's
nursery (real qiskit-aer simulation) and points the SDK at it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from oqc_trio import OqcSdk


@asynccontextmanager
async def connect() -> AsyncIterator[OqcSdk]:
    """An opened SDK: against OQC_URL when set, else against an embedded emulator."""
    url = os.environ.get("OQC_URL")
    if url:
        async with OqcSdk(url, authentication_token=os.environ.get("OQC_TOKEN")) as sdk:
            yield sdk
        return
    from oqc_trio.emulator import open_emulator

    async with open_emulator() as emu, OqcSdk(emu.url, authentication_token=emu.token) as sdk:
        yield sdk
