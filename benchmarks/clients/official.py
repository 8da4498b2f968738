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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import Section, emit, epoch, lag_stats, spec
from oqc_qcaas_sdk import OqcSdk

logging.disable(logging.WARNING)


def _pairs(jobs) -> list[tuple[float, float]]:
    pairs = []
    for job in jobs:
        out = job.result
        timings = job.timings or {}
        true = timings.get("finished_epoch") or epoch(timings.get("finished"))
        if out is not None and true is not None:
            pairs.append((true, epoch(out.received)))
    return pairs


async def run(s: dict) -> dict:
    n, qpu, program = s["n"], s["qpu"], s["program"]
    result: dict = {"client": "official", "n": n}
    timeout = s.get("timeout_s") or 1e9  # None means 120 s in the official SDK
    diag = bool(s.get("lags"))
    async with OqcSdk(s["url"], authentication_token=s["token"]) as sdk:
        if s.get("mode") == "single":
            latencies = []
            with Section() as section:
                for _ in range(n):
                    job = sdk.create_job(program=program, qpu_id=qpu)
                    t0 = time.perf_counter()
                    await job.execute(timeout_s=timeout)
                    latencies.append(time.perf_counter() - t0)
                    assert job.completed, job
            result["latencies_s"] = latencies
            completed = n
        else:
            batch = s.get("batch") or n
            completed = 0
            jobs_all = []
            with Section() as section:
                for start in range(0, n, batch):
                    size = min(batch, n - start)
                    composite = sdk.create_job(
                        program=[program] * size, qpu_id=qpu, fetch_diagnostics=diag
                    )
                    await composite.execute(timeout_s=timeout)
                    completed += len(composite.completed_jobs)
                    print(f"PROGRESS {completed}", flush=True)
                    if diag:
                        jobs_all.extend(composite.jobs)
            if diag:
                result.update(lag_stats(_pairs(jobs_all)))
    result.update(completed=completed, wall_s=section.wall, cpu_s=section.cpu)
    return result


if __name__ == "__main__":
    emit(asyncio.run(run(spec())))
