"""The documents the emulator serves about its QPUs: catalogue records, feature sets,
calibrations (benchmarks), system status and execution windows. Pure functions of the
configuration, a date and queue figures; no I/O.

Calibrations are synthetic but deterministic: the same QPU and date always give the same
numbers, so tests can compare documents fetched at different times.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from typing import Any

from .config import QpuSpec, Window

__all__ = [
    "calibration",
    "features",
    "next_window",
    "qpu_record",
    "system_status",
    "utc_iso",
    "window_doc",
    "window_history",
]

_WINDOW_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_iso(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with an explicit offset, e.g. ``2026-01-01T10:00:00.123456+00:00``."""
    return moment.astimezone(dt.UTC).isoformat()


def features(qpu: QpuSpec) -> dict[str, Any]:
    """The feature set of a QPU (legacy ``feature_set``, v4 ``data``)."""
    return {
        "qpu_id": qpu.id,
        "name": qpu.name,
        "qubit_count": qpu.qubits,
        "max_shots": qpu.max_shots,
        "max_entangled_measurements": qpu.qubits,
        "gate_set": list(qpu.gate_set),
        "connectivity": [list(pair) for pair in qpu.couplers],
        "languages": ["OPENQASM 2.0", "OPENQASM 3.0"],
        "results_formats": ["BinaryCount"],
        "emulated": True,
    }


def qpu_record(qpu: QpuSpec, url: str | None) -> dict[str, Any]:
    """A catalogue record: legacy ``/admin/qpu`` items carry ``url``; v4 ``/qpus`` items
    do not (pass ``url=None``)."""
    record: dict[str, Any] = {
        "id": qpu.id,
        "name": qpu.name,
        "active": qpu.active,
        "generation": qpu.id.split(":")[2] if qpu.id.count(":") >= 3 else None,
        "region": qpu.id.split(":")[1] if qpu.id.count(":") >= 2 else None,
        "feature_set": features(qpu),
    }
    if url is not None:
        record["url"] = url
    return record


def calibration(qpu: QpuSpec, day: dt.date) -> dict[str, Any]:
    """A deterministic calibration document of ``qpu`` for ``day``."""
    rng = random.Random(f"{qpu.id}|{day.isoformat()}")
    qubits = {}
    for q in range(qpu.qubits):
        t1 = rng.uniform(40.0, 120.0)
        qubits[str(q)] = {
            "t1_us": round(t1, 3),
            "t2_us": round(rng.uniform(0.5, 1.5) * t1, 3),
            "readout_fidelity": round(rng.uniform(0.93, 0.995), 5),
            "single_qubit_gate_fidelity": round(rng.uniform(0.998, 0.9997), 6),
            "frequency_ghz": round(rng.uniform(4.0, 5.5), 6),
        }
    couplers = {
        f"{a}-{b}": {"two_qubit_gate_fidelity": round(rng.uniform(0.95, 0.992), 5)}
        for a, b in qpu.couplers
    }
    return {
        "qpu_id": qpu.id,
        "date": day.isoformat(),
        "calibrated_at": f"{day.isoformat()}T06:00:00+00:00",
        "qubits": qubits,
        "couplers": couplers,
    }


def system_status(qpu: QpuSpec, *, queued: int, running: int, now: dt.datetime) -> dict[str, Any]:
    """The status document of one QPU: availability and queue figures."""
    return {
        "qpu_id": qpu.id,
        "name": qpu.name,
        "status": "ONLINE" if qpu.active else "OFFLINE",
        "active": qpu.active,
        "queued_tasks": queued,
        "running_tasks": running,
        "updated_at": utc_iso(now),
    }


def window_doc(qpu_id: str, window: Window) -> dict[str, Any]:
    """A window as the service spells it: ``starting`` in ``YYYY-MM-DDTHH:MM:SSZ``."""
    return {
        "qpu_id": qpu_id,
        "starting": window.starting.astimezone(dt.UTC).strftime(_WINDOW_FORMAT),
        "ending": window.ending.astimezone(dt.UTC).strftime(_WINDOW_FORMAT),
    }


def next_window(
    qpus: Iterable[QpuSpec], windows: dict[str, list[Window]], now: dt.datetime
) -> dict[str, Any]:
    """``{"next_window": {...}}`` for the earliest window not yet over, or ``{}`` (never
    ``null``: the official SDK would crash on it)."""
    upcoming = [(w, q.id) for q in qpus for w in windows.get(q.id, []) if w.ending > now]
    if not upcoming:
        return {}
    window, qpu_id = min(upcoming, key=lambda item: item[0].starting)
    return {"next_window": window_doc(qpu_id, window)}


def window_history(
    qpus: Iterable[QpuSpec], windows: dict[str, list[Window]], now: dt.datetime, *, latest: bool
) -> list[dict[str, Any]]:
    """Windows that have started, most recent first; only the most recent with ``latest``."""
    past = sorted(
        ((w, q.id) for q in qpus for w in windows.get(q.id, []) if w.starting <= now),
        key=lambda item: item[0].starting,
        reverse=True,
    )
    docs = [window_doc(qpu_id, w) for w, qpu_id in past]
    return docs[:1] if latest else docs
