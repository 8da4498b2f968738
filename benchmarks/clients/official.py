"""OQC's official ``oqc-qcaas-sdk==0.1.24`` under asyncio (run with its own venv's python).

``batch`` = 0: all N jobs in one CompositeJob (``OQC_SDK_MAX_BROADCAST_JOBS`` is raised to N
by the orchestrator); ``batch`` = 200: sequential 200-job composites, its default cap.
``mode`` = ``single``: one job at a time. The orchestrator kills the process at its cap
(a stalled composite never returns); it prints progress lines so the last count is known.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import Section, emit, execute_jobs, spec, timed_result
from oqc_qcaas_sdk import OqcSdk

logging.disable(logging.WARNING)


async def run(s: dict) -> dict:
    timeout_s = s.get("timeout_s") or 1e9  # None means 120 s in the official SDK
    async with OqcSdk(s["url"], authentication_token=s["token"]) as sdk:
        with Section() as section:
            fields, jobs = await execute_jobs(sdk, s, timeout_s=timeout_s, progress=True)
    return timed_result("official", s, section, fields, jobs)


if __name__ == "__main__":
    emit(asyncio.run(run(spec())))
