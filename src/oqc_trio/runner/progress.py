"""What the runner tells people and machines while it works.

- :class:`Tally`: counters the engine updates (finished jobs, retries, throughput window);
- :class:`EventLog`: ``--events FILE.jsonl``, one JSON object per line (``start``,
  ``reserved``, ``completed``, ``failed``, ``retry``, ``cancelled``, ``unobserved``,
  ``cancel_sent``, ``cancel_failed``, ``end``; see docs/batch-toml.md), appended, flushed
  with the journal;
- :class:`Progress`: a rich live display on a terminal, plain log lines every few seconds
  otherwise, nothing with ``-q``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs
import trio

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["EventLog", "LiveCounts", "Progress", "Tally", "format_duration"]

_RATE_WINDOW_S = 30.0


@attrs.define
class LiveCounts:
    """Logical jobs by where they are right now."""

    pending: int = 0
    reserved: int = 0
    queued: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0


@attrs.define
class Tally:
    """Counters of one run. ``carried_*`` are jobs already finished by earlier runs."""

    total: int
    carried_completed: int = 0
    carried_failed: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    retries: int = 0
    unobserved: int = 0
    started: float = attrs.field(factory=time.monotonic)
    _finished: deque[float] = attrs.field(factory=deque)

    def finished(self, state: str) -> None:
        """Count a job that reached ``state`` in this run."""
        if state == "COMPLETED":
            self.completed += 1
        elif state == "FAILED":
            self.failed += 1
        else:
            self.cancelled += 1
        self._finished.append(time.monotonic())

    def rate(self) -> float:
        """Jobs finished per second over the last 30 s."""
        now = time.monotonic()
        while self._finished and self._finished[0] < now - _RATE_WINDOW_S:
            self._finished.popleft()
        span = min(_RATE_WINDOW_S, now - self.started)
        return len(self._finished) / span if span > 0.5 else 0.0

    def eta(self, remaining: int) -> float | None:
        """Seconds until ``remaining`` jobs finish at the current rate."""
        rate = self.rate()
        return remaining / rate if rate > 0 and remaining else None


def format_duration(seconds: float | None) -> str:
    """``3725`` -> ``1:02:05``; None -> ``?``."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class EventLog:
    """Machine-readable events, one JSON object per line, appended to a file (or nowhere)."""

    def __init__(self, path: Path | None) -> None:
        self._handle: IO[str] | None = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    @property
    def enabled(self) -> bool:
        """True when events are being written."""
        return self._handle is not None

    def emit(self, event: str, **fields: Any) -> None:
        """Queue one event (written at the next :meth:`flush`)."""
        if self._handle is not None:
            record = {"t": round(time.time(), 3), "event": event, **fields}
            self._handle.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")

    def flush(self) -> None:
        """Push the events to the file."""
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        """Flush and close."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class Progress:
    """Shows the run: live on a terminal, a log line every ``interval`` seconds otherwise.

    ``counts`` returns the current :class:`LiveCounts`; ``requests`` the number of HTTP
    requests so far; ``windows`` maps QPUs to their next execution window.
    """

    def __init__(
        self,
        tally: Tally,
        counts: Callable[[], LiveCounts],
        *,
        console: Console,
        quiet: bool = False,
        interval: float = 10.0,
        title: str = "oqc-run",
        requests: Callable[[], int] | None = None,
    ) -> None:
        self.tally = tally
        self.counts = counts
        self.console = console
        self.quiet = quiet
        self.interval = interval
        self.title = title
        self.requests = requests
        self.windows: dict[str, dt.datetime] = {}

    @property
    def live(self) -> bool:
        """True when drawing a live display (a terminal and not quiet)."""
        return not self.quiet and self.console.is_terminal

    async def run(self) -> None:
        """Draw until cancelled."""
        if self.quiet:
            await trio.sleep_forever()
        if not self.console.is_terminal:
            while True:
                await trio.sleep(self.interval)
                self.console.print(self.line(), highlight=False, soft_wrap=True)
        from rich.live import Live
        from rich.text import Text

        with Live(self.render(), console=self.console, auto_refresh=False, transient=True) as live:
            try:
                while True:
                    await trio.sleep(0.5)
                    live.update(self.render(), refresh=True)
            finally:
                live.update(Text(""), refresh=True)

    def _remaining(self, counts: LiveCounts) -> int:
        return counts.pending + counts.reserved + counts.queued + counts.running

    def line(self) -> str:
        """One plain progress line."""
        c = self.counts()
        done = c.completed + c.failed + c.cancelled
        remaining = self._remaining(c)
        text = (
            f"{self.title}: {done}/{self.tally.total} done (completed {c.completed}, failed "
            f"{c.failed}, cancelled {c.cancelled}); {c.queued} queued, {c.running} running, "
            f"{c.reserved} reserved, {c.pending} pending; retries {self.tally.retries}; "
            f"{self.tally.rate():.1f} jobs/s, ETA {format_duration(self.tally.eta(remaining))}"
        )
        if self.windows:
            text += "; next window " + ", ".join(
                f"{qpu} {when:%Y-%m-%d %H:%M} UTC" for qpu, when in self.windows.items()
            )
        return text

    def render(self) -> Any:
        """The live display."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        c = self.counts()
        done = c.completed + c.failed + c.cancelled
        cells = [
            ("pending", c.pending, "dim"),
            ("reserved", c.reserved, "cyan"),
            ("queued", c.queued, "blue"),
            ("running", c.running, "magenta"),
            ("completed", c.completed, "green"),
            ("failed", c.failed, "red"),
            ("cancelled", c.cancelled, "yellow"),
            ("retries", self.tally.retries, "yellow"),
        ]
        counts = Text("  ").join(
            Text(f"{name} {value}", style=style) for name, value, style in cells
        )
        elapsed = time.monotonic() - self.tally.started
        status = (
            f"{done}/{self.tally.total}  {self.tally.rate():.1f} jobs/s  elapsed "
            f"{format_duration(elapsed)}  ETA {format_duration(self.tally.eta(self._remaining(c)))}"
        )
        if self.requests is not None:
            status += f"  requests {self.requests()}"
        bar_line = Table.grid(padding=(0, 2))
        bar_line.add_row(
            ProgressBar(total=max(self.tally.total, 1), completed=done, width=40), Text(status)
        )
        parts: list[Any] = [
            Text(self.title, style="bold"),
            counts,
            bar_line,
        ]
        for qpu, when in self.windows.items():
            parts.append(Text(f"next execution window of {qpu}: {when:%Y-%m-%d %H:%M} UTC"))
        return Group(*parts)
