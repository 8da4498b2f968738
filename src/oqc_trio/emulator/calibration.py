"""Calibration data of a noisy QPU: per-qubit T1, T2, readout errors and one-qubit gate error
and duration, per-coupler two-qubit gate error and duration, dated.

One TOML table per calibration (``[[qpus.calibrations]]``)::

    [[qpus.calibrations]]
    date = 2024-05-27               # in force from this day until the next calibration
    source = "where the figures come from"
    # Defaults for every qubit and coupler of this calibration (all optional):
    t1_us = 100.0                   # omit T1 and T2 together for no relaxation
    t2_us = 80.0                    # at most 2 * T1
    readout_p01 = 0.02              # P(read 1 | prepared 0)
    readout_p10 = 0.04              # P(read 0 | prepared 1)
    error_1q = 3e-4                 # average gate infidelity of sx and x (rz is virtual)
    duration_1q_ns = 35.6
    error_2q = 8e-3                 # average gate infidelity of cx and ecr
    duration_2q_ns = 300.0
    # Per qubit: a list with one table per qubit, or a table keyed by qubit index.
    qubits = [{ t1_us = 89.1, t2_us = 15.8 }, ...]
    # Per coupler (a pair of the QPU's connectivity, either order):
    couplers = [{ qubits = [0, 1], error_2q = 8.6e-3, duration_2q_ns = 266.7 }]

These objects are plain, frozen and hashable: the executor ships a :class:`Calibration` to
its worker processes as is and caches the noise model built from it there
(:mod:`oqc_trio.emulator.noise`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .validate import (
    ConfigError,
    date_value,
    list_key,
    number_key,
    opt_number_key,
    probability_key,
    reject_unknown,
    str_key,
    table,
)

__all__ = [
    "DEFAULT_DURATION_1Q_NS",
    "DEFAULT_DURATION_2Q_NS",
    "Calibration",
    "CouplerCalibration",
    "QubitCalibration",
    "in_force",
    "parse_calibrations",
]

#: One-qubit gate duration when a calibration gives none (typical of transmons).
DEFAULT_DURATION_1Q_NS = 50.0
#: Two-qubit gate duration when a calibration gives none.
DEFAULT_DURATION_2Q_NS = 300.0

_QUBIT_KEYS = {"t1_us", "t2_us", "readout_p01", "readout_p10", "error_1q", "duration_1q_ns"}
_COUPLER_KEYS = {"error_2q", "duration_2q_ns"}


@attrs.frozen
class QubitCalibration:
    """Figures of one qubit. ``t1_us``/``t2_us`` None: no relaxation. ``readout_p01`` is the
    probability of reading 1 from a qubit prepared in 0, ``readout_p10`` of reading 0 from 1."""

    t1_us: float | None = None
    t2_us: float | None = None
    readout_p01: float = 0.0
    readout_p10: float = 0.0
    error_1q: float = 0.0
    duration_1q_ns: float = DEFAULT_DURATION_1Q_NS

    @property
    def gate_noise(self) -> bool:
        """Whether one-qubit gates on this qubit are noisy."""
        return self.error_1q > 0 or (self.t1_us is not None and self.duration_1q_ns > 0)

    @property
    def readout_noise(self) -> bool:
        """Whether measuring this qubit can flip the outcome."""
        return self.readout_p01 > 0 or self.readout_p10 > 0


@attrs.frozen
class CouplerCalibration:
    """Figures of the two-qubit gates (``cx``, ``ecr``) between ``qubits``, either direction."""

    qubits: tuple[int, int]
    error_2q: float = 0.0
    duration_2q_ns: float = DEFAULT_DURATION_2Q_NS


@attrs.frozen
class Calibration:
    """One dated calibration of a QPU: in force from ``date`` until the next one."""

    date: dt.date
    qubits: tuple[QubitCalibration, ...]
    couplers: tuple[CouplerCalibration, ...]
    source: str = ""

    @property
    def noisy(self) -> bool:
        """Whether simulating under this calibration differs from an ideal simulation."""
        return self.gate_noise or any(q.readout_noise for q in self.qubits)

    @property
    def gate_noise(self) -> bool:
        """Whether any gate is noisy (readout-only noise keeps Aer's fast sampling path)."""
        return any(q.gate_noise for q in self.qubits) or any(
            c.error_2q > 0
            or (c.duration_2q_ns > 0 and any(self.qubits[q].t1_us is not None for q in c.qubits))
            for c in self.couplers
        )

    def coupler(self, a: int, b: int) -> CouplerCalibration | None:
        """The coupler between ``a`` and ``b`` (either order), if there is one."""
        for coupler in self.couplers:
            if coupler.qubits in ((a, b), (b, a)):
                return coupler
        return None


def in_force(calibrations: Sequence[Calibration], day: dt.date) -> Calibration | None:
    """The latest calibration dated on or before ``day`` (``calibrations`` sorted by date)."""
    found = None
    for calibration in calibrations:
        if calibration.date > day:
            break
        found = calibration
    return found


# -- parsing ---------------------------------------------------------------------------------


def _qubit_figures(data: Mapping[str, Any], base: QubitCalibration, where: str) -> QubitCalibration:
    t1 = opt_number_key(data, "t1_us", minimum=0.0, exclusive=True, where=where)
    t2 = opt_number_key(data, "t2_us", minimum=0.0, exclusive=True, where=where)
    if (t1 is None) != (t2 is None):
        if t1 is None and base.t1_us is not None:
            t1 = base.t1_us
        elif t2 is None and base.t2_us is not None:
            t2 = base.t2_us
        else:
            raise ConfigError(f"{where}: give t1_us and t2_us together (or neither)")
    if t1 is None:
        t1, t2 = base.t1_us, base.t2_us
    if t1 is not None and t2 is not None and t2 > 2 * t1:
        raise ConfigError(f"{where}: t2_us ({t2:g}) cannot exceed 2 * t1_us ({2 * t1:g})")
    return QubitCalibration(
        t1_us=t1,
        t2_us=t2,
        readout_p01=probability_key(data, "readout_p01", base.readout_p01, where),
        readout_p10=probability_key(data, "readout_p10", base.readout_p10, where),
        error_1q=probability_key(data, "error_1q", base.error_1q, where),
        duration_1q_ns=number_key(
            data, "duration_1q_ns", base.duration_1q_ns, minimum=0.0, where=where
        ),
    )


def _coupler_figures(
    data: Mapping[str, Any], pair: tuple[int, int], base: CouplerCalibration, where: str
) -> CouplerCalibration:
    return CouplerCalibration(
        qubits=pair,
        error_2q=probability_key(data, "error_2q", base.error_2q, where),
        duration_2q_ns=number_key(
            data, "duration_2q_ns", base.duration_2q_ns, minimum=0.0, where=where
        ),
    )


def _per_qubit(
    raw: Any, defaults: QubitCalibration, qubits: int, where: str
) -> tuple[QubitCalibration, ...]:
    figures = [defaults] * qubits
    if raw is None:
        return tuple(figures)
    if isinstance(raw, list):
        if len(raw) != qubits:
            raise ConfigError(f"{where}: expected one table per qubit ({qubits}), got {len(raw)}")
        items = list(enumerate(raw))
    elif isinstance(raw, Mapping):
        items = []
        for key, value in raw.items():
            if not (isinstance(key, str) and key.isdigit() and int(key) < qubits):
                raise ConfigError(f"{where}.{key}: expected a qubit index below {qubits}")
            items.append((int(key), value))
    else:
        raise ConfigError(f"{where}: expected a list of tables or a table keyed by qubit index")
    for index, value in items:
        at = f"{where}[{index}]"
        entry = table(value, at)
        reject_unknown(entry, _QUBIT_KEYS, at)
        figures[index] = _qubit_figures(entry, defaults, at)
    return tuple(figures)


def _per_coupler(
    raw: Sequence[Any],
    defaults: Mapping[str, Any],
    couplers: Sequence[tuple[int, int]],
    where: str,
) -> tuple[CouplerCalibration, ...]:
    base = _coupler_figures(defaults, (0, 0), CouplerCalibration((0, 0)), where)
    figures = {pair: attrs.evolve(base, qubits=pair) for pair in couplers}
    for i, item in enumerate(raw):
        at = f"{where}.couplers[{i}]"
        entry = table(item, at)
        reject_unknown(entry, _COUPLER_KEYS | {"qubits"}, at)
        pair = entry.get("qubits")
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(q, int) and not isinstance(q, bool) for q in pair)
        ):
            raise ConfigError(f"{at}.qubits: expected a pair of qubit indices")
        a, b = pair
        key = (a, b) if (a, b) in figures else (b, a)
        if key not in figures:
            raise ConfigError(f"{at}.qubits: {a}-{b} is not in the QPU's connectivity")
        figures[key] = _coupler_figures(entry, key, base, at)
    return tuple(figures[pair] for pair in couplers)


def parse_calibrations(
    items: Sequence[Any], *, qubits: int, couplers: Sequence[tuple[int, int]], where: str
) -> tuple[Calibration, ...]:
    """Validate ``[[qpus.calibrations]]`` tables of a QPU; sorted by date, dates unique."""
    parsed = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        data = table(item, at)
        reject_unknown(
            data, {"date", "source", "qubits", "couplers"} | _QUBIT_KEYS | _COUPLER_KEYS, at
        )
        if "date" not in data:
            raise ConfigError(f"{at}.date: required (the day the calibration comes into force)")
        defaults = _qubit_figures(data, QubitCalibration(), at)
        parsed.append(
            Calibration(
                date=date_value(data["date"], f"{at}.date"),
                qubits=_per_qubit(data.get("qubits"), defaults, qubits, f"{at}.qubits"),
                couplers=_per_coupler(list_key(data, "couplers", at), data, couplers, at),
                source=str_key(data, "source", "", at),
            )
        )
    parsed.sort(key=lambda c: c.date)
    dates = [c.date for c in parsed]
    if len(set(dates)) != len(dates):
        raise ConfigError(f"{where}: two calibrations share a date")
    return tuple(parsed)
