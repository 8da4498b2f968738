"""The documents the emulator serves about its QPUs: catalogue records, feature sets,
calibrations (benchmarks), system status and execution windows. Pure functions of the
configuration, a date and queue figures; no I/O.

A QPU configured with calibrations serves them: the document of a day is the calibration in
force that day (the latest dated on or before it), with exactly the figures its noise model
is built from. A QPU without calibrations is an ideal simulator; it serves synthetic but
deterministic figures (the same QPU and date always give the same numbers) marked
``"noise_applied": false``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from typing import Any

from . import windows as schedule
from .calibration import Calibration, in_force
from .config import QpuSpec, Window

__all__ = [
    "calibration",
    "calibration_doc",
    "calibration_on",
    "calibrations_between",
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
        "noisy": any(c.noisy for c in qpu.calibrations),
        "routes_uncoupled_gates": qpu.routes,
        "windowed": qpu.windowed,
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


def calibration_doc(qpu: QpuSpec, cal: Calibration) -> dict[str, Any]:
    """The document of a configured calibration: its date and figures (``None`` T1/T2
    means no relaxation), plus fidelities derived from them."""
    qubits = {}
    for index, q in enumerate(cal.qubits):
        qubits[str(index)] = {
            "t1_us": q.t1_us,
            "t2_us": q.t2_us,
            "readout_p01": q.readout_p01,
            "readout_p10": q.readout_p10,
            "readout_fidelity": round(1.0 - (q.readout_p01 + q.readout_p10) / 2, 6),
            "single_qubit_gate_error": q.error_1q,
            "single_qubit_gate_fidelity": round(1.0 - q.error_1q, 8),
            "single_qubit_gate_time_ns": q.duration_1q_ns,
        }
    couplers = {
        f"{c.qubits[0]}-{c.qubits[1]}": {
            "two_qubit_gate_error": c.error_2q,
            "two_qubit_gate_fidelity": round(1.0 - c.error_2q, 8),
            "two_qubit_gate_time_ns": c.duration_2q_ns,
        }
        for c in cal.couplers
    }
    return {
        "qpu_id": qpu.id,
        "date": cal.date.isoformat(),
        "calibrated_at": f"{cal.date.isoformat()}T00:00:00+00:00",
        "source": cal.source,
        "noise_applied": cal.noisy,
        "connectivity": [list(pair) for pair in qpu.couplers],
        "qubits": qubits,
        "couplers": couplers,
    }


def calibration_on(qpu: QpuSpec, day: dt.date) -> dict[str, Any] | None:
    """The document in force on ``day``: the configured calibration (None before the
    first one), or the synthetic figures of an ideal QPU."""
    if not qpu.calibrations:
        return calibration(qpu, day)
    found = in_force(qpu.calibrations, day)
    return None if found is None else calibration_doc(qpu, found)


def calibrations_between(qpu: QpuSpec, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    """Every document in force at some day of ``[start, end]`` (one per day for an ideal
    QPU, one per configured calibration otherwise), oldest first."""
    if not qpu.calibrations:
        return [
            calibration(qpu, start + dt.timedelta(days=n)) for n in range((end - start).days + 1)
        ]
    first = in_force(qpu.calibrations, start)
    chosen = [c for c in qpu.calibrations if start < c.date <= end]
    if first is not None:
        chosen.insert(0, first)
    return [calibration_doc(qpu, c) for c in chosen]


def calibration(qpu: QpuSpec, day: dt.date) -> dict[str, Any]:
    """The synthetic, deterministic calibration document of an ideal ``qpu`` for ``day``."""
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
        "source": "synthetic (ideal simulator: these figures are not applied)",
        "noise_applied": False,
        "qubits": qubits,
        "couplers": couplers,
    }


def system_status(
    qpu: QpuSpec,
    *,
    queued: int,
    running: int,
    now: dt.datetime,
    windows: list[Window] | None = None,
) -> dict[str, Any]:
    """The status document of one QPU: availability, queue figures and, for a QPU that
    works in windows (``windows`` given), whether one is open and when the next opens."""
    doc: dict[str, Any] = {
        "qpu_id": qpu.id,
        "name": qpu.name,
        "status": "ONLINE" if qpu.active else "OFFLINE",
        "active": qpu.active,
        "queued_tasks": queued,
        "running_tasks": running,
        "updated_at": utc_iso(now),
        "windowed": windows is not None,
    }
    if windows is not None:
        opening = schedule.next_start(windows, now)
        doc["in_window"] = schedule.is_open(windows, now)
        doc["next_window_start"] = None if opening is None else utc_iso(opening)
    return doc


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
