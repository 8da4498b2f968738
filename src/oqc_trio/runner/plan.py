"""``oqc-run plan``: what a batch would do, checked without submitting anything.

Offline: jobs, shots and an estimate of the HTTP requests per ``[[jobs]]`` entry and per QPU
(two per submit chunk of up to 128 KB, IDs then tasks, plus at least one status request per
job). When the server is reachable (the embedded emulator always is): every QPU exists and is
active, no job asks for more shots than its QPU allows or uses more qubits than it has.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import attrs

from .._actors.submitter import RESERVE_MAX_CHUNKS, RESERVE_MAX_TASKS, blocks
from .._wire import MAX_REQUEST_BYTES
from .engine import ServerFailure, check_against_server, connect, server_meta
from .expand import ExpandedBatch, LogicalJob
from .schema import BatchError, Problem

__all__ = ["PlanReport", "count_qubits", "describe_plan", "server_checks"]

_QREG2 = re.compile(r"\bqreg\s+\w+\s*\[\s*(\d+)\s*\]")
_QUBIT3 = re.compile(r"\bqubit\s*(?:\[\s*(\d+)\s*\])?\s+\w+\s*;")
_PHYSICAL = re.compile(r"\$(\d+)")
# Bytes of one task in a submit body besides its program and config (keys, tag, task ID).
_TASK_ENVELOPE = 160


@attrs.define
class PlanReport:
    """Result of the server checks: lines to print, problems (exit 2) or a fatal error (4)."""

    lines: list[str] = attrs.Factory(list)
    problems: list[Problem] = attrs.Factory(list)
    fatal: str | None = None


def count_qubits(program: str) -> int | None:
    """Qubits an OpenQASM program declares (or the highest physical ``$n`` + 1)."""
    declared = sum(int(n) for n in _QREG2.findall(program))
    declared += sum(int(n) if n else 1 for n in _QUBIT3.findall(program))
    physical = [int(n) for n in _PHYSICAL.findall(program)]
    if physical:
        declared = max(declared, max(physical) + 1)
    return declared or None


def _chunks(jobs: list[LogicalJob], batch: ExpandedBatch) -> list[int]:
    """The number of tasks in each submit chunk (an estimate of the submitter's sizes)."""
    limit = MAX_REQUEST_BYTES - 2048
    chunks: list[int] = []
    used = limit
    for job in jobs:
        size = len(job.program.encode()) + len(batch.configs[job.config].json) + _TASK_ENVELOPE
        if used + size > limit:
            chunks.append(0)
            used = 0
        used += size
        chunks[-1] += 1
    return chunks


def describe_plan(batch: ExpandedBatch) -> str:
    """A plain-text table of the expansion and the request estimate."""
    by_entry: dict[str, list[LogicalJob]] = defaultdict(list)
    by_qpu: dict[str, list[LogicalJob]] = defaultdict(list)
    for job in batch.jobs:
        by_entry[job.entry].append(job)
        by_qpu[job.qpu].append(job)
    lines = [f"batch {batch.path} (hash {batch.hash[:12]})", ""]
    lines.append(f"{'entry':<24} {'jobs':>8} {'shots':>12}  example key")
    for entry, jobs in by_entry.items():
        shots = sum(j.shots for j in jobs)
        lines.append(f"{entry:<24} {len(jobs):>8,} {shots:>12,}  {jobs[0].key}")
    lines.append(f"{'total':<24} {len(batch.jobs):>8,} {batch.total_shots:>12,}")
    lines.append("")
    requests = 0
    lines.append(f"{'qpu':<28} {'jobs':>8} {'chunks':>7} {'requests >=':>12}")
    for qpu, jobs in sorted(by_qpu.items()):
        chunks = _chunks(jobs, batch)
        reservations = sum(1 for _ in blocks([range(n) for n in chunks]))
        estimate = len(chunks) + reservations + len(jobs)
        requests += estimate
        lines.append(f"{qpu:<28} {len(jobs):>8,} {len(chunks):>7,} {estimate:>12,}")
    lines.append(
        f"at least {requests:,} HTTP requests (tasks per chunk of <= 128 KB, IDs per "
        f"{RESERVE_MAX_CHUNKS} chunks or {RESERVE_MAX_TASKS:,} tasks, then one status request "
        "per job or more while queued)"
    )
    limits = batch.spec.limits
    if limits.deadline:
        lines.append(f"deadline {limits.deadline:g} s; on_deadline = {limits.on_deadline}")
    lines.append(
        f"on_interrupt = {limits.on_interrupt}; retries: up to {limits.max_retries} on codes "
        f"{', '.join(map(str, limits.retry_codes)) or 'none'}"
    )
    return "\n".join(lines)


def _feature_problems(batch: ExpandedBatch, features: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    reported: set[tuple[str, str, str]] = set()
    for job in batch.jobs:
        feature = features.get(job.qpu)
        if not isinstance(feature, dict):
            continue
        where = batch.entry_path(job.entry)
        max_shots = feature.get("max_shots")
        if (
            isinstance(max_shots, int)
            and job.shots > max_shots
            and (job.entry, job.qpu, "s") not in reported
        ):
            reported.add((job.entry, job.qpu, "s"))
            problems.append(
                batch.problem(
                    (*where, "shots"),
                    f"{job.shots:,} shots; {job.qpu} allows at most {max_shots:,}",
                )
            )
        qubits = feature.get("qubit_count")
        used = count_qubits(job.program)
        if (
            isinstance(qubits, int)
            and used
            and used > qubits
            and (job.entry, job.qpu, "q") not in reported
        ):
            reported.add((job.entry, job.qpu, "q"))
            problems.append(
                batch.problem(where, f"{job.key} uses {used} qubits; {job.qpu} has {qubits}")
            )
    return problems


async def server_checks(batch: ExpandedBatch) -> PlanReport:
    """Check the batch against the server's catalogue and QPU features, if reachable."""
    report = PlanReport()
    meta = server_meta(batch.spec.server)
    spec = batch.spec
    if meta["embedded"]:
        # No simulation is needed to read the catalogue.
        spec = attrs.evolve(
            spec,
            server=attrs.evolve(
                spec.server, emulator=attrs.evolve(spec.server.emulator, executor="instant")
            ),
        )
        batch = attrs.evolve(batch, spec=spec)
    try:
        async with connect(batch, meta) as conn:
            check_against_server(batch, conn.sdk)
            features = {}
            for qpu in sorted({job.qpu for job in batch.jobs}):
                features[qpu] = await conn.sdk.get_features(qpu)
            report.problems = _feature_problems(batch, features)
            where = "the embedded emulator" if meta["embedded"] else conn.url
            report.lines.append(
                f"checked against {where}: {len(features)} QPU(s) "
                + ("ok" if not report.problems else "with problems")
            )
    except BatchError as exc:
        report.problems = exc.problems
    except ServerFailure as exc:
        if exc.auth:
            report.fatal = str(exc)
        else:
            report.lines.append(f"server not reachable, QPU checks skipped: {exc}")
    return report
