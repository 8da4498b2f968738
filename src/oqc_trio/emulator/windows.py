"""Execution windows: when a QPU takes work. Pure functions; the scheduler does the waiting.

A QPU configured with windows runs tasks only inside one (a task started inside a window
runs to completion); outside, its tasks stay queued. A QPU configured without windows is
always open: windows added later through ``POST /windows/one-off-window`` are reported by
``/windows/next`` but do not close it.

Windows come in two forms in the TOML:

* absolute: ``{ starting = "2030-01-01T09:00:00Z", ending = "2030-01-01T17:00:00Z" }``,
  wall-clock times, never scaled;
* relative to the server's start, in emulated seconds multiplied by ``time_scale``:
  ``{ start_in_s = 3600, duration_s = 1800, every_s = 7200, repeat = 3 }`` opens 1 h after
  start for 30 min, three times, 2 h apart. With ``time_scale = 0.001`` that is 3.6 s after
  start for 1.8 s, every 7.2 s. A restarted server counts from its new start.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .validate import (
    ConfigError,
    datetime_value,
    int_key,
    number_key,
    opt_number_key,
    reject_unknown,
    table,
)

__all__ = [
    "MAX_REPEAT",
    "RelativeWindow",
    "Window",
    "is_open",
    "next_start",
    "parse_windows",
    "resolve",
    "start_estimate",
]

#: Upper bound on ``repeat`` of a relative window (the schedule is expanded at start-up).
MAX_REPEAT = 10_000


@attrs.frozen
class Window:
    """A dedicated execution window of a QPU (timezone-aware UTC datetimes)."""

    starting: dt.datetime
    ending: dt.datetime


@attrs.frozen
class RelativeWindow:
    """A window relative to the server's start, in emulated seconds (scaled by
    ``time_scale``), optionally repeated ``repeat`` times every ``every_s``."""

    start_in_s: float
    duration_s: float
    every_s: float | None = None
    repeat: int = 1


def parse_windows(
    items: Sequence[Any], where: str
) -> tuple[tuple[Window, ...], tuple[RelativeWindow, ...]]:
    """Validate a QPU's ``windows`` list: absolute windows sorted by start, relative ones."""
    absolute: list[Window] = []
    relative: list[RelativeWindow] = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        data = table(item, at)
        if "start_in_s" in data or "duration_s" in data:
            relative.append(_relative(data, at))
            continue
        reject_unknown(data, {"starting", "ending"}, at)
        start = datetime_value(data.get("starting"), f"{at}.starting")
        end = datetime_value(data.get("ending"), f"{at}.ending")
        if end <= start:
            raise ConfigError(f"{at}: ending must be after starting")
        absolute.append(Window(start, end))
    return tuple(sorted(absolute, key=lambda w: w.starting)), tuple(relative)


def _relative(data: Mapping[str, Any], at: str) -> RelativeWindow:
    reject_unknown(data, {"start_in_s", "duration_s", "every_s", "repeat"}, at)
    duration = number_key(data, "duration_s", 0.0, minimum=0.0, where=at)
    if duration <= 0:
        raise ConfigError(f"{at}.duration_s: expected a number > 0")
    every = opt_number_key(data, "every_s", minimum=0.0, exclusive=True, where=at)
    repeat = int_key(data, "repeat", 1 if every is None else MAX_REPEAT, minimum=1, where=at)
    if repeat > MAX_REPEAT:
        raise ConfigError(f"{at}.repeat: at most {MAX_REPEAT}")
    if repeat > 1 and every is None:
        raise ConfigError(f"{at}: repeat needs every_s")
    if every is not None and every < duration:
        raise ConfigError(f"{at}.every_s: must be at least duration_s (windows cannot overlap)")
    return RelativeWindow(
        start_in_s=number_key(data, "start_in_s", 0.0, minimum=0.0, where=at),
        duration_s=duration,
        every_s=every,
        repeat=repeat,
    )


def resolve(
    relative: Iterable[RelativeWindow], start: dt.datetime, time_scale: float
) -> list[Window]:
    """The wall-clock windows of ``relative`` for a server started at ``start``."""
    windows = []
    for spec in relative:
        for n in range(spec.repeat):
            offset = spec.start_in_s + n * (spec.every_s or 0.0)
            opening = start + dt.timedelta(seconds=offset * time_scale)
            windows.append(
                Window(opening, opening + dt.timedelta(seconds=spec.duration_s * time_scale))
            )
    return windows


def is_open(windows: Sequence[Window], now: dt.datetime) -> bool:
    """Whether ``now`` falls inside one of ``windows``."""
    return any(w.starting <= now < w.ending for w in windows)


def next_start(windows: Sequence[Window], now: dt.datetime) -> dt.datetime | None:
    """``now`` if a window is open, else the start of the next one, else None."""
    upcoming = [w.starting for w in windows if w.ending > now]
    if not upcoming:
        return None
    return max(now, min(upcoming))


def start_estimate(
    windows: Sequence[Window] | None, now: dt.datetime, work_s: float
) -> dt.datetime | None:
    """When a task starts if ``work_s`` seconds of QPU time are ahead of it.

    ``windows`` (sorted by start) None means always open. Otherwise the QPU only works
    inside windows: the work is spread over their open time from ``now`` on. None when the
    schedule runs out first.
    """
    if windows is None:
        return now + dt.timedelta(seconds=work_s)
    cursor, remaining = now, work_s
    for window in windows:
        if window.ending <= cursor:
            continue
        begin = max(cursor, window.starting)
        available = (window.ending - begin).total_seconds()
        if remaining < available:
            return begin + dt.timedelta(seconds=remaining)
        remaining -= available
        cursor = window.ending
    return None
