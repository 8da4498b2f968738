"""Shared by every benchmark client (stdlib only: the official SDK's venv imports it too).

A client is started as ``python clients/NAME.py SPEC_JSON`` and prints one line
``RESULT {...}`` on stdout. The orchestrator measures the whole process from the outside
(``os.wait4`` rusage: CPU, peak RSS); the client measures its own timed section.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time
from collections.abc import Iterable
from typing import Any

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


def spec() -> dict[str, Any]:
    """The JSON spec given as the only argument."""
    return json.loads(sys.argv[1])


def cpu_s() -> float:
    """user+sys CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Section:
    """Wall and CPU time of the timed section."""

    def __enter__(self) -> Section:
        self.wall0, self.cpu0 = time.perf_counter(), cpu_s()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = cpu_s() - self.cpu0


async def execute_jobs(
    sdk: Any, s: dict[str, Any], *, timeout_s: float | None, progress: bool = False
) -> tuple[dict[str, Any], list[Any]]:
    """Execute the spec's ``n`` jobs with either SDK (both have the same job API); the caller
    times it with a :class:`Section`.

    ``mode`` "single": one job at a time, the latency of each ``execute()`` kept. Otherwise
    composites of ``batch`` jobs (all ``n`` in one when 0 or absent), with a ``PROGRESS`` line
    after each when ``progress``. Returns the result fields (``completed``, ``latencies_s``)
    and, when the spec asks for ``lags``, the jobs to take them from (see :func:`timed_result`).
    """
    n, qpu, program = s["n"], s["qpu"], s["program"]
    if s.get("mode") == "single":
        latencies = []
        for _ in range(n):
            job = sdk.create_job(program=program, qpu_id=qpu)
            t0 = time.perf_counter()
            await job.execute(timeout_s=timeout_s)
            latencies.append(time.perf_counter() - t0)
            assert job.completed, job
        return {"completed": n, "latencies_s": latencies}, []
    diag = bool(s.get("lags"))
    batch = s.get("batch") or n
    completed = 0
    jobs: list[Any] = []
    for start in range(0, n, batch):
        composite = sdk.create_job(
            program=[program] * min(batch, n - start), qpu_id=qpu, fetch_diagnostics=diag
        )
        await composite.execute(timeout_s=timeout_s)
        completed += len(composite.completed_jobs)
        if progress:
            print(f"PROGRESS {completed}", flush=True)
        if diag:
            jobs.extend(composite.jobs)
    return {"completed": completed}, jobs


def timed_result(
    client: str, s: dict[str, Any], section: Section, fields: dict[str, Any], jobs: list[Any]
) -> dict[str, Any]:
    """The result to :func:`emit`: ``fields``, the timed section's wall and CPU time, and the
    completion lags of ``jobs`` (computed here, outside the timed section)."""
    return {
        "client": client,
        "n": s["n"],
        **fields,
        **lag_stats(completion_pairs(jobs)),
        "wall_s": section.wall,
        "cpu_s": section.cpu,
    }


def emit(result: dict[str, Any]) -> None:
    """Print the result line (and the peak RSS as the process sees it)."""
    result.setdefault("self_maxrss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print("RESULT " + json.dumps(result), flush=True)


def epoch(value: Any) -> float | None:
    """Epoch seconds of an ISO timestamp (naive means local time) or a datetime."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        return value.timestamp()  # naive datetimes are taken as local time
    return None


def completion_pairs(jobs: Iterable[Any]) -> list[tuple[float, float]]:
    """(true completion on the server, output received by the client) epoch pairs of the jobs
    that have both."""
    pairs = []
    for job in jobs:
        out = job.result
        timings = job.timings or {}
        true = timings.get("finished_epoch") or epoch(timings.get("finished"))
        if out is not None and true is not None:
            pairs.append((true, epoch(out.received)))
    return pairs


def lag_stats(pairs: list[tuple[float, float]]) -> dict[str, Any]:
    """From (true completion, observed completion) epoch pairs: lag statistics in seconds."""
    if not pairs:
        return {}
    lags = sorted(seen - true for true, seen in pairs)
    last_true = max(true for true, _ in pairs)
    last_seen = max(seen for _, seen in pairs)

    def q(p: float) -> float:
        return lags[min(len(lags) - 1, int(p * len(lags)))]

    return {
        "lag_median_s": q(0.5),
        "lag_p95_s": q(0.95),
        "lag_max_s": lags[-1],
        "last_seen_after_last_done_s": last_seen - last_true,
        "matched": len(pairs),
    }
