"""``oqc-run results DIR --plot FILE``: a picture of the counts (matplotlib, the ``plot`` extra).

- When the batch sweeps a numeric parameter, a heat map per series (jobs that differ only in
  that parameter): the parameter along x, the bitstrings along y, the probability as colour.
- Otherwise a histogram per job (the first 24).

Only one classical register is drawn (the one most jobs have); the title names it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from .expand import LogicalJob
from .journal import JournalState
from .results import completed_counts, register_counts

__all__ = ["PLOT_MISSING", "plot_counts"]

PLOT_MISSING = "plotting needs matplotlib: pip install 'oqc-trio[plot]'"
_MAX_HISTOGRAMS = 24
_MAX_SERIES = 12


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _sweep_parameter(rows: list[tuple[LogicalJob, dict[str, int]]]) -> str | None:
    """The numeric parameter with the most distinct values (at least two), if any."""
    best, best_count = None, 1
    names = {name for job, _ in rows for name in job.sweep}
    for name in sorted(names):
        values = [job.sweep.get(name) for job, _ in rows if name in job.sweep]
        if values and all(_numeric(v) for v in values) and len(set(values)) > best_count:
            best, best_count = name, len(set(values))
    return best


def _rows(
    done: list[tuple[LogicalJob, Any]],
) -> tuple[str | None, list[tuple[LogicalJob, dict[str, int]]]]:
    seen: dict[str, int] = {}
    for _, attempt in done:
        for name, _ in register_counts(attempt.data):
            seen[name] = seen.get(name, 0) + 1
    if not seen:
        return None, []
    register = min(seen, key=lambda name: (-seen[name], name))  # in most jobs, then by name
    rows = []
    for job, attempt in done:
        counts = dict(register_counts(attempt.data)).get(register)
        if counts:
            rows.append((job, counts))
    return register, rows


def plot_counts(state: JournalState, path: Path) -> str:
    """Draw the counts of ``state`` into ``path``; returns what was drawn (one line).

    Raises ImportError without matplotlib and ValueError when nothing completed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = list(completed_counts(state))
    register, rows = _rows(done)
    if register is None or not rows:
        raise ValueError("no completed job with counts to plot")
    parameter = _sweep_parameter(rows)
    if parameter is not None:
        figure, what = _heat_maps(plt, rows, register, parameter)
    else:
        figure, what = _histograms(plt, rows, register)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    if len(done) > len(rows):
        what += (
            f"; {len(done) - len(rows)} completed job(s) without counts in register "
            f"{register!r} not drawn"
        )
    return what


def _grid(count: int) -> tuple[int, int]:
    columns = min(count, 4 if count > 6 else 3 if count > 2 else count)
    return math.ceil(count / columns), columns


def _heat_maps(
    plt: Any, rows: list[tuple[LogicalJob, dict[str, int]]], register: str, parameter: str
) -> tuple[Any, str]:
    import numpy as np

    series: dict[str, list[tuple[LogicalJob, dict[str, int]]]] = defaultdict(list)
    for job, counts in rows:
        if parameter not in job.sweep:
            continue
        rest = [f"{k}={v}" for k, v in job.sweep.items() if k != parameter]
        label = " ".join([job.entry, job.qpu.rsplit(":", 1)[-1], f"shots={job.shots}", *rest])
        if job.source != "inline":
            label += f" {job.source}"
        series[label].append((job, counts))
    labels = list(series)[:_MAX_SERIES]
    n_rows, n_cols = _grid(len(labels))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(5 * n_cols, 3.6 * n_rows), squeeze=False)
    image = None
    for ax, label in zip(axes.flat, labels, strict=False):
        points = sorted(series[label], key=lambda item: item[0].sweep[parameter])
        width = max(len(b) for _, counts in points for b in counts)
        bitstrings = sorted(
            {b.zfill(width) for _, counts in points for b in counts}, key=lambda b: int(b, 2)
        )
        grid = np.zeros((len(bitstrings), len(points)))
        for column, (_, counts) in enumerate(points):
            total = sum(counts.values()) or 1
            for bitstring, count in counts.items():
                grid[bitstrings.index(bitstring.zfill(width)), column] += count / total
        xs = [job.sweep[parameter] for job, _ in points]
        image = ax.imshow(
            grid,
            aspect="auto",
            origin="lower",
            vmin=0.0,
            vmax=1.0,
            cmap="viridis",
            extent=(-0.5, len(xs) - 0.5, -0.5, len(bitstrings) - 0.5),
        )
        step = max(1, math.ceil(len(xs) / 6))
        ax.set_xticks(range(0, len(xs), step), [f"{x:.3g}" for x in xs[::step]])
        ax.set_yticks(range(len(bitstrings)), bitstrings, fontsize=7 if len(bitstrings) > 16 else 9)
        ax.set_xlabel(parameter)
        ax.set_title(label, fontsize=9)
    for ax in list(axes.flat)[len(labels) :]:
        ax.set_visible(False)
    if image is not None:
        figure.colorbar(image, ax=axes.ravel().tolist(), label="probability")
    figure.suptitle(f"register {register!r} over {parameter}")
    return figure, f"heat map of register {register!r} over {parameter} ({len(labels)} series)"


def _histograms(
    plt: Any, rows: list[tuple[LogicalJob, dict[str, int]]], register: str
) -> tuple[Any, str]:
    shown = rows[:_MAX_HISTOGRAMS]
    n_rows, n_cols = _grid(len(shown))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.2 * n_rows), squeeze=False)
    for ax, (job, counts) in zip(axes.flat, shown, strict=False):
        width = max(len(b) for b in counts)
        items = sorted(((b.zfill(width), c) for b, c in counts.items()), key=lambda i: int(i[0], 2))
        ax.bar([b for b, _ in items], [c for _, c in items], color="tab:blue")
        ax.set_title(job.key, fontsize=8)
        ax.tick_params(axis="x", labelrotation=90 if len(items) > 8 else 0, labelsize=7)
        ax.set_ylabel("count")
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_visible(False)
    figure.suptitle(f"register {register!r}")
    figure.tight_layout()
    more = f" (first {len(shown)} of {len(rows)})" if len(rows) > len(shown) else ""
    return figure, f"histograms of register {register!r} for {len(shown)} job(s){more}"
