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
