# ruff: noqa: RUF001, RUF002, E501  (Markdown tables: long lines and typographic characters)
"""Render the saved benchmark results (``benchmarks/results/*.json``) as ``RESULTS.md``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TARGETS_NOTE = (
    "Targets from the runtime issue (#4) and the benchmarks issue (#7). ≥ 3× the official "
    "SDK's jobs/s is judged against the official SDK's best configuration that finishes "
    "(its single composite stalls at 10,000 jobs)."
)


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def fmt(summary: dict[str, Any], key: str, digits: int = 0, scale: float = 1.0) -> str:
    """'median (min–max)' over the repetitions, or just the value for one repetition."""
    stat = summary.get(key)
    if not stat:
        return "—"
    med = _num(stat["median"] * scale, digits)
    if stat["n"] <= 1 or stat["min"] == stat["max"]:
        return med
    return f"{med} ({_num(stat['min'] * scale, digits)}–{_num(stat['max'] * scale, digits)})"


def med(summary: dict[str, Any], key: str) -> float | None:
    stat = summary.get(key)
    return stat["median"] if stat else None


def endpoints(summary: dict[str, Any]) -> str:
    per = summary.get("per_endpoint") or {}
    main = ["all_info", "create_ids", "submit", "status", "cancel_many"]
    return ", ".join(f"{e} {per[e]:.3f}" for e in main if per.get(e))


def _groups(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    return (data or {}).get("groups", [])


def _find(data: dict[str, Any] | None, key: str, n: int | None = None) -> dict[str, Any] | None:
    for group in _groups(data):
        if group["key"] == key and (n is None or group["n"] == n):
            return group
    return None


def _row(*cells: str) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(cells) + " |"


def _group_rows(
    data: dict[str, Any], cells: Callable[[dict[str, Any]], list[str]], *, notes: bool = False
) -> list[str]:
    """One table row per result group: its label, ``cells(summary)``, then its notes."""
    return [
        _row(group["label"], *cells(group["summary"]), *([_status(group)] if notes else []))
        for group in _groups(data)
    ]


def _status(group: dict[str, Any]) -> str:
    s = group["summary"]
    notes = []
    if s.get("stalled"):
        runs = [r for r in group["runs"] if r.get("stalled")]
        done = max((r.get("completed") or 0) for r in runs)
        notes.append(
            f"**stalled**: killed at the {runs[0]['cap_s']:.0f} s cap, {done:,} jobs seen done"
        )
    if s.get("failed"):
        errors = [
            r.get("error", "") for r in group["runs"] if not r.get("ok") and not r.get("stalled")
        ]
        last = (
            next(
                (
                    line.strip(" |")
                    for line in reversed(errors[0].splitlines())
                    if line.strip(" |+-")
                ),
                "",
            )
            if errors and errors[0]
            else ""
        )
        notes.append(
            f"**{s['failed']} of {s['reps']} failed**" + (f": `{last[:120]}`" if last else "")
        )
    return "; ".join(notes)


def header(results: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(results.values()))
    m = first["machine"]
    ours = ", ".join(f"{k} {v}" for k, v in m["ours"].items())
    official = ", ".join(f"{k} {v}" for k, v in m["official"].items())
    dates = sorted({d["machine"]["date"] for d in results.values()})
    loads = [x for d in results.values() for x in (d.get("loadavg") or {}).values()]
    changed = [
        f"- **Warning**: the source under test changed while `{name}` ran (figures may mix versions)"
        for name, d in results.items()
        if d.get("source") and d["source"]["before"] != d["source"]["after"]
    ]
    commits = {d["machine"]["git"] for d in results.values()}
    if len(commits) > 1:
        changed.append(
            "- Scenarios by commit: "
            + "; ".join(
                f"{c}: {', '.join(n for n, d in results.items() if d['machine']['git'] == c)}"
                for c in sorted(commits)
            )
        )
    load_line = (
        f"- Load average (1 min) at the start and end of each scenario: "
        f"{min(x[0] for x in loads):.2f}–{max(x[0] for x in loads):.2f} on {m['nproc']} CPUs "
        "(the harness itself keeps about 1.0 busy; more means other work was running)"
        if loads
        else ""
    )
    commands = sorted({d.get("command", "") for d in results.values()})
    return [
        "# Benchmark results",
        "",
        "Reproduce with `python benchmarks/run.py --scenario all --reps 3` (about 20 minutes on "
        "2 cores; `--quick` for a smoke run). Method: `benchmarks/run.py` (module docstring). "
        "Each client runs in its own process, pinned to one core, against a server pinned to the "
        "other; medians over the repetitions with the min–max spread in brackets; clients "
        "alternate within each repetition. Client CPU is the user+sys time of the timed section "
        "(create the jobs and execute them; imports and `open()` excluded); peak RSS is the "
        "kernel's `ru_maxrss` of the finished client process; requests are counted by the server, "
        "and requests/job counts the task endpoints (the session's one-off health check and QPU "
        "list are left out).",
        "",
        f"- Date: {dates[0]}" + (f" to {dates[-1]}" if len(dates) > 1 else ""),
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}; "
        f"pinning: {m['pinning']}",
        f"- oqc-trio: git {', '.join(sorted({d['machine']['git'] for d in results.values()}))}; {ours}",
        *changed,
        f"- official: {official}",
        f"- Command(s): {'; '.join(f'`{c}`' for c in commands if c)}",
        *([load_line] if load_line else []),
        "",
    ]


def targets(results: dict[str, dict[str, Any]]) -> list[str]:
    rows: list[tuple[str, str, str]] = []
    instant = results.get("instant")

    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else ("**met**" if ok else "**not met**")

    ours10 = _find(instant, "ours", 10_000)
    if ours10:
        s = ours10["summary"]
        jps = med(s, "jobs_per_s")
        best = None
        for key in ("official-200", "official-one"):
            g = _find(instant, key, 10_000)
            if g and not g["summary"].get("stalled") and med(g["summary"], "jobs_per_s"):
                value = med(g["summary"], "jobs_per_s")
                if best is None or value > best[1]:
                    best = (g["label"], value)
        if jps and best:
            ratio = jps / best[1]
            rows.append(
                (
                    "≥ 3× official jobs/s at 10k",
                    f"{ratio:.2f}× ({jps:,.0f} vs {best[1]:,.0f} jobs/s, {best[0]}); "
                    "vs its single composite: stalled",
                    verdict(ratio >= 3),
                )
            )
        rpj = med(s, "req_per_job")
        rows.append(
            (
                "≤ 1.05 requests/job at 10k",
                f"{rpj:.3f}" if rpj else "—",
                verdict(rpj <= 1.05 if rpj else None),
            )
        )
        cpu = med(s, "cpu_ms_per_job")
        rows.append(
            (
                "≤ 1.2 ms client CPU/job at 10k",
                f"{cpu:.3f} ms" if cpu else "—",
                verdict(cpu <= 1.2 if cpu else None),
            )
        )
        rss = med(s, "maxrss_mb")
        rows.append(
            (
                "≤ 100 MB peak RSS at 10k",
                f"{rss:.0f} MB" if rss else "—",
                verdict(rss <= 100 if rss else None),
            )
        )
    ours100 = _find(instant, "ours", 100_000)
    if ours100:
        s = ours100["summary"]
        rss = med(s, "maxrss_mb")
        note = f" ({_status(ours100)})" if _status(ours100) else ""
        rows.append(
            (
                "≤ 400 MB peak RSS at 100k",
                (f"{rss:.0f} MB" if rss else "—") + note,
                verdict(rss <= 400 if rss else None),
            )
        )
        j10, j100 = (med(ours10["summary"], "jobs_per_s") if ours10 else None), med(s, "jobs_per_s")
        c10, c100 = (
            (med(ours10["summary"], "cpu_ms_per_job") if ours10 else None),
            med(s, "cpu_ms_per_job"),
        )
        if j10 and j100 and c10 and c100:
            ratio = j10 / j100
            rows.append(
                (
                    "100k within 1.1× of linear (time per job, 100k ÷ 10k)",
                    f"wall {ratio:.2f}×, CPU {c100 / c10:.2f}×",
                    verdict(ratio <= 1.1),
                )
            )
        else:
            rows.append(
                ("100k within 1.1× of linear", _status(ours100) or "no data", verdict(False))
            )
    queue = _find(results.get("queue"), "ours")
    if queue:
        s = queue["summary"]
        qp = results["queue"]["params"]
        fifo = f"FIFO {qp['n']:,} × {qp['exec_s'] * 1000:.0f} ms"
        rpj = med(s, "req_per_job")
        last = med(s, "last_seen_after_last_done_s")
        rows.append(
            (
                f"{fifo}: ≤ 1.5 requests/job",
                f"{rpj:.3f}" if rpj else "—",
                verdict(rpj <= 1.5 if rpj else None),
            )
        )
        rows.append(
            (
                f"{fifo}: last completion seen within 1 s",
                f"{last:.3f} s" if last is not None else "—",
                verdict(last <= 1.0 if last is not None else None),
            )
        )
    runner = results.get("runner")
    if runner:
        if runner.get("pending"):
            rows.append(
                (
                    "runner overhead ≤ 10 % client CPU at 10k jobs",
                    f"pending: {runner['pending']}",
                    "—",
                )
            )
        else:
            r = _find(runner, "runner")
            b = _find(runner, "bare")
            if r and b:
                rc, bc = med(r["summary"], "proc_cpu_s"), med(b["summary"], "proc_cpu_s")
                over = (rc / bc - 1) * 100 if rc and bc else None
                rows.append(
                    (
                        f"runner overhead ≤ 10 % client CPU at {runner['params']['n']:,} jobs (whole process)",
                        f"{over:+.1f} % ({rc:.2f} s vs {bc:.2f} s)" if over is not None else "—",
                        verdict(over <= 10 if over is not None else None),
                    )
                )
                references = (
                    (
                        "runner-no-hdf5",
                        "(for reference) the same batch without `counts.h5` "
                        '(`formats = ["snapshot", "csv"]`)',
                    ),
                    (
                        "runner-journal",
                        "(for reference) the runner's machinery alone (journal, expansion, "
                        "run loop): the same batch writing no result file (`formats = []`)",
                    ),
                )
                for name, label in references:
                    group = _find(runner, name)
                    cpu = med(group["summary"], "proc_cpu_s") if group else None
                    if cpu and bc:
                        rows.append(
                            (
                                label,
                                f"{(cpu / bc - 1) * 100:+.1f} % ({cpu:.2f} s vs {bc:.2f} s)",
                                "within 10 %" if cpu / bc <= 1.10 else "over 10 %",
                            )
                        )
    if not rows:
        return []
    out = [
        "## Targets",
        "",
        TARGETS_NOTE,
        "",
        "| Target | Measured (oqc-trio) | |",
        "|---|---|---|",
    ]
    out += [_row(*row) for row in rows]
    return [*out, ""]


def instant_table(data: dict[str, Any]) -> list[str]:
    out = [
        "## Instant: every task completes 50 ms after submission",
        "",
        "Stub server (see *Server cost*); ours runs all N jobs in **one** CompositeJob. "
        "Ratios compare the median jobs/s of oqc-trio with the row's client.",
        "",
        "| N | Client | Jobs/s | Client CPU ms/job | Requests/job (by endpoint) | Peak RSS MB | oqc-trio ÷ this (jobs/s) | Notes |",
        "|---:|---|---:|---:|---|---:|---:|---|",
    ]
    for n in data["params"]["sizes"]:
        ours = _find(data, "ours", n)
        ours_jps = med(ours["summary"], "jobs_per_s") if ours else None
        for group in [g for g in _groups(data) if g["n"] == n]:
            s = group["summary"]
            jps = med(s, "jobs_per_s")
            ratio = (
                f"{ours_jps / jps:.2f}×"
                if ours_jps and jps and group["key"] != "ours"
                else ("—" if group["key"] != "ours" else "1")
            )
            if s.get("stalled"):
                ratio = "∞ (stalled)"
            out.append(
                _row(
                    f"{n:,}",
                    group["label"],
                    fmt(s, "jobs_per_s"),
                    fmt(s, "cpu_ms_per_job", 3),
                    f"{fmt(s, 'req_per_job', 3)} ({endpoints(s)})",
                    fmt(s, "maxrss_mb"),
                    ratio,
                    _status(group),
                )
            )
    return [*out, ""]


def server_table(data: dict[str, Any]) -> list[str]:
    return [
        "## Server cost: the stub against the emulator",
        "",
        f"The same floor client, {data['params']['n']:,} jobs completing 50 ms after submission. "
        "Server CPU per request is the server process's CPU during the client's run divided by "
        "the requests it served. The emulator (Starlette on hypercorn, instant executor) costs "
        "about as much per request as the client does, so it would set the pace of every "
        "scenario: the instant, queue, single and runner scenarios use `benchmarks/stub_server.py`.",
        "",
        "| Server | Server CPU µs/request | Floor jobs/s | Floor client CPU ms/job |",
        "|---|---:|---:|---:|",
        *_group_rows(
            data,
            lambda s: [
                fmt(s, "server_us_per_request"),
                fmt(s, "jobs_per_s"),
                fmt(s, "cpu_ms_per_job", 3),
            ],
        ),
        "",
    ]


def queue_table(data: dict[str, Any]) -> list[str]:
    p = data["params"]
    out = [
        f"## Queue: {p['n']:,} tasks on a FIFO QPU, {p['exec_s'] * 1000:.0f} ms per task",
        "",
        f"One worker; the queue drains in {p['queue_s']:.0f} s. Lag = when the client built the "
        "job's output minus the task's true completion time on the server; *last* = the last "
        "output seen minus the last true completion.",
        "",
        "| Client | Requests/job (by endpoint) | Lag median s | Lag p95 s | Lag max s | Last seen after last done s | Wall s | Client CPU ms/job | Notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
        *_group_rows(
            data,
            lambda s: [
                f"{fmt(s, 'req_per_job', 3)} ({endpoints(s)})",
                *(fmt(s, key, 3) for key in ("lag_median_s", "lag_p95_s", "lag_max_s")),
                fmt(s, "last_seen_after_last_done_s", 3),
                fmt(s, "wall_s", 1),
                fmt(s, "cpu_ms_per_job", 3),
            ],
            notes=True,
        ),
    ]
    kinds = [
        ("completed_first", "the one that finds it completed"),
        ("completed_again", "again after completion"),
        ("running", "while it runs"),
        ("queued_1_ahead", "queued, next in line"),
        ("queued_2_8_ahead", "queued, 2–8 ahead of it"),
        ("queued_9plus_ahead", "queued, 9+ ahead of it"),
    ]
    analysed = [g for g in _groups(data) if any(r.get("polls_per_job") for r in g["runs"])]
    if analysed:
        out += [
            "",
            "Status requests per job, by what the task was doing when asked (median over repetitions):",
            "",
            _row("Poll of a task…", *(g["label"] for g in analysed)),
            "|---|" + "---:|" * len(analysed),
        ]
        for key, label in kinds:
            cells = []
            for g in analysed:
                values = sorted(
                    r["polls_per_job"][key] for r in g["runs"] if r.get("polls_per_job")
                )
                cells.append(f"{values[len(values) // 2]:.3f}" if values else "—")
            out.append(_row(label, *cells))
    return [*out, ""]


def single_table(data: dict[str, Any]) -> list[str]:
    return [
        "## Single: one job's `execute()` latency",
        "",
        f"{data['params']['jobs_per_process']} jobs one after another per process; latency of "
        "each `await job.execute()`.",
        "",
        "| Client, server completion | Latency median ms | p90 ms | First job ms | Requests/job (by endpoint) |",
        "|---|---:|---:|---:|---|",
        *_group_rows(
            data,
            lambda s: [
                *(fmt(s, f"latency_{key}_ms", 1) for key in ("median", "p90", "first")),
                f"{fmt(s, 'req_per_job', 2)} ({endpoints(s)})",
            ],
        ),
        "",
    ]


def runner_table(data: dict[str, Any]) -> list[str]:
    out = [f"## Runner: `oqc-run` on {data['params']['n']:,} jobs against the bare SDK", ""]
    if data.get("pending"):
        return [*out, f"**Pending**: {data['pending']}", ""]
    return [
        *out,
        "Whole-process CPU and peak RSS (the runner also journals, writes results and reports "
        "progress); same stub server, completion 50 ms after submission.",
        "",
        "| Client | Jobs/s (process wall) | Process CPU s | Process CPU ms/job | Requests/job | Peak RSS MB | Notes |",
        "|---|---:|---:|---:|---|---:|---|",
        *_group_rows(
            data,
            lambda s: [
                fmt(s, "jobs_per_s"),
                fmt(s, "proc_cpu_s", 1),
                fmt(s, "proc_cpu_ms_per_job", 3),
                f"{fmt(s, 'req_per_job', 3)} ({endpoints(s)})",
                fmt(s, "maxrss_mb"),
            ],
            notes=True,
        ),
        "",
    ]


def emulator_table(data: dict[str, Any]) -> list[str]:
    p = data["params"]
    return [
        f"## Emulator: Bell, {p['shots']:,} shots, real qiskit-aer simulation, {p['n']:,} jobs",
        "",
        "`oqc-emulator` with the aer executor (one simulator process, on the server's core). "
        "Server CPU per request counts the HTTP server process only; simulation CPU per task "
        "counts the simulator process.",
        "",
        "| Client | Tasks/s end to end | Client CPU ms/job | Requests/job (by endpoint) | Server CPU µs/request | Simulation CPU ms/task | Peak RSS MB | Notes |",
        "|---|---:|---:|---|---:|---:|---:|---|",
        *_group_rows(
            data,
            lambda s: [
                fmt(s, "jobs_per_s"),
                fmt(s, "cpu_ms_per_job", 3),
                f"{fmt(s, 'req_per_job', 3)} ({endpoints(s)})",
                fmt(s, "server_us_per_request"),
                fmt(s, "sim_cpu_ms_per_task", 2),
                fmt(s, "maxrss_mb"),
            ],
            notes=True,
        ),
        "",
    ]


def import_table(data: dict[str, Any]) -> list[str]:
    return [
        "## Import",
        "",
        f"A fresh interpreter per run, bytecode caches warm, {data['params']['reps']} runs each, "
        "alternating. *Import* is the wall time of the statement inside the process; *process* "
        "the whole `python -c ...` run, interpreter start-up included.",
        "",
        "| Statement | Import ms | Import CPU ms | Modules loaded | Process wall ms | Peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
        *_group_rows(
            data,
            lambda s: [
                fmt(s, key)
                for key in ("import_ms", "import_cpu_ms", "modules", "proc_wall_ms", "maxrss_mb")
            ],
        ),
        "",
    ]


def profile_section(data: dict[str, Any]) -> list[str]:
    n = data["params"]["n"]
    out = [f"## Profile of oqc-trio at {n:,} jobs (instant)", ""]
    if data.get("error"):
        return [*out, f"Profiling failed: `{data['error'][-300:]}`", ""]
    spy = data.get("pyspy") or {}
    if spy.get("missing"):
        out += [f"py-spy: {spy['missing']}", ""]
    elif spy.get("clients"):
        clients = spy["clients"]
        names = [c for c in ("ours", "floor") if "categories" in clients.get(c, {})]
        cats = []
        for c in names:
            for k in clients[c]["categories"]:
                if k not in cats:
                    cats.append(k)
        out += [
            f"Sampled with py-spy at {spy['rate_hz']} Hz (no instrumentation overhead), whole "
            "process, each sample filed under the first matching category (top of the table "
            "first); start-up is left out of the per-job figures. Client CPU per job by "
            "category, oqc-trio beside the httpx floor:",
            "",
            "| Category | "
            + " | ".join(f"{'oqc-trio' if c == 'ours' else 'floor'} ms/job (%)" for c in names)
            + " |",
            "|---|" + "---:|" * len(names),
        ]
        for k in cats:
            cells = []
            for c in names:
                v = clients[c]["categories"].get(k)
                cells.append(
                    f"{v['ms_per_job']:.3f} ({v['pct']:.0f} %)"
                    if v and not k.startswith("startup")
                    else (f"{v['ms_per_job']:.3f} (start-up)" if v else "—")
                )
            out.append(_row(k, *cells))
        out.append(
            _row(
                "**total (start-up excluded)**",
                *(f"**{clients[c]['ms_per_job']:.3f}**" for c in names),
            )
        )
        if "ours" in names:
            out += [
                "",
                "oqc-trio's hottest leaf functions (self time, share of the non-start-up samples):",
                "",
                "| Function | % |",
                "|---|---:|",
            ]
            out += [
                f"| `{r['function']}` | {r['pct']:.1f} |" for r in clients["ours"]["leaves"][:15]
            ]
        out.append("")
    prof = data["profile"]
    out += [
        f"cProfile of the timed section ({prof['total_s']:.1f} s profiled; cProfile "
        "inflates the absolute times, the shares are what matter). Self time grouped by "
        "package (oqc_trio by module):",
        "",
        "| Package | Self % |",
        "|---|---:|",
    ]
    out += [f"| {r['package']} | {r['self_pct']:.1f} |" for r in prof["packages"][:18]]
    out += [
        "",
        "Top functions by self time:",
        "",
        "| Function | Package | Calls | Self % | Cumulative % |",
        "|---|---|---:|---:|---:|",
    ]
    out += [
        f"| `{r['function']}` | {r['package']} | {r['calls']:,} | {r['self_pct']:.1f} | {r['cum_pct']:.1f} |"
        for r in prof["functions"][:20]
    ]
    mem = data.get("memory") or {}
    if mem.get("error"):
        out += ["", f"Memory profile failed: `{mem['error'][-300:]}`"]
    if mem.get("top"):
        out += [
            "",
            f"Memory at {mem.get('n', n):,} jobs (tracemalloc, snapshot nearest the peak of traced memory): traced peak "
            f"{mem['peak_mb']:.1f} MB, snapshot at {mem['sampled_peak_mb']:.1f} MB; process peak RSS "
            f"{mem['maxrss_mb']:.0f} MB (tracemalloc's own overhead included). Largest allocation "
            "sites (*via*: the innermost oqc_trio frame that led there):",
            "",
            "| Where | Via | MB | Blocks |",
            "|---|---|---:|---:|",
        ]
        out += [
            f"| `{r['where']}` | `{r['via']}` | {r['mb']:.1f} | {r['count']:,} |"
            if r["via"]
            else f"| `{r['where']}` | | {r['mb']:.1f} | {r['count']:,} |"
            for r in mem["top"][:15]
        ]
    return [*out, ""]


def render(results: dict[str, dict[str, Any]]) -> str:
    if not results:
        return "# Benchmark results\n\nNo results yet: run `python benchmarks/run.py --scenario all`.\n"
    lines = header(results)
    try:
        lines += targets(results)
    except Exception as exc:
        lines += ["## Targets", "", f"(could not evaluate: {exc!r})", ""]
    sections = {
        "instant": instant_table,
        "queue": queue_table,
        "single": single_table,
        "runner": runner_table,
        "emulator": emulator_table,
        "import": import_table,
        "server": server_table,
        "profile": profile_section,
    }
    for name, render_section in sections.items():
        if name in results:
            try:
                lines += render_section(results[name])
            except Exception as exc:  # one bad section must not lose the others
                lines += [f"## {name}", "", f"(could not render: {exc!r})", ""]
    lines.append("See `benchmarks/PROFILE.md` for the analysis of where the client time goes.")
    return "\n".join(lines) + "\n"
