"""``oqc-run``: the command line of the batch runner (``python -m oqc_trio`` is the same).

::

    oqc-run [run] BATCH.toml [--out DIR] [--fresh] [--events FILE.jsonl] [-q]
    oqc-run plan BATCH.toml
    oqc-run status DIR [--json]
    oqc-run cancel DIR
    oqc-run results DIR [--csv | --json | --plot FILE.png]
    oqc-run --version

Exit status: 0 every job completed; 1 some failed (the server's word); 2 usage or input error;
3 interrupted, or the deadline passed, with tasks still unfinished (run the same command to
resume); 4 the server is unreachable, refused the credentials or broke the contract.

The first Ctrl-C (or SIGTERM) stops submitting and polling, flushes the journal (shielded)
and applies ``[limits] on_interrupt`` (``detach``: leave the tasks running; ``cancel``: one
``cancel_many`` per QPU, then each task's outcome as the server reports it is journaled); the
second exits at once, the journal being consistent at every instant. The summary's verdict
says why a run stopped (interrupt or deadline) and what the policy did. Each command does its
work in one function and prints in another.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..exceptions import OqcError
from .collector import collect_old_generation, collection_paused, old_generation_by_clock
from .console import lazy_console
from .engine import (
    Engine,
    ServerFailure,
    check_against_server,
    connect,
    credentials,
    default_out_dir,
    leaf_exceptions,
    server_meta,
)
from .expand import ExpandedBatch, load_and_expand
from .journal import (
    Journal,
    JournalError,
    JournalLocked,
    JournalState,
    lock_holder,
    read_journal,
)
from .plan import check_features, describe_plan, server_checks
from .progress import EventLog, Progress
from .results import (
    CSV_NAME,
    HDF5_NAME,
    SNAPSHOT_NAME,
    ResultWriter,
    csv_text,
    failures,
    snapshot_text,
    summary_rows,
)
from .schema import BatchError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SERVER",
    "EXIT_USAGE",
    "console_main",
    "exit_status",
    "main",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 3
EXIT_SERVER = 4
_COMMANDS = ("run", "plan", "status", "cancel", "results")


class _Usage(Exception):
    """A one-line usage error (exit 2)."""


def _version() -> str:
    """The version of the installed ``oqc-trio`` distribution."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("oqc-trio")
    except PackageNotFoundError:  # running from a source tree that was never installed
        from .. import __version__

        return __version__


class _PrintVersion(argparse.Action):
    """``--version``: looks the version up only when asked (reading the package metadata
    costs ~40 ms, which every run would otherwise pay at start-up)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"oqc-run {_version()}")
        parser.exit()


def _positive_seconds(text: str) -> float:
    """A finite number of seconds > 0 (argparse type: anything else is a usage error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oqc-run",
        description="Run batches of quantum programs on OQC QCaaS (or the embedded emulator), "
        "crash-safe and resumable.",
        epilog="exit status: 0 all completed, 1 some failed, 2 usage or input error, "
        "3 interrupted or deadline with tasks unfinished (resumable), 4 server or auth failure",
    )
    parser.add_argument(
        "-V", "--version", action=_PrintVersion, help="print the version of oqc-trio and exit"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run or resume a batch (the default command)")
    run.add_argument("batch", type=Path, help="the batch file (TOML)")
    run.add_argument("--out", type=Path, help="output directory (default: [output] dir)")
    run.add_argument("--fresh", action="store_true", help="discard the journal and start over")
    run.add_argument("--events", type=Path, help="append machine-readable events (JSON lines)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary")
    run.add_argument(
        "--progress-interval",
        type=_positive_seconds,
        default=10.0,
        help="seconds between log lines when not on a terminal (default: 10)",
    )
    plan = commands.add_parser("plan", help="validate and expand a batch without submitting")
    plan.add_argument("batch", type=Path)
    status = commands.add_parser("status", help="the state of a batch (read-only)")
    status.add_argument("dir", type=Path)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    cancel = commands.add_parser("cancel", help="cancel a batch's unfinished tasks remotely")
    cancel.add_argument("dir", type=Path)
    results = commands.add_parser("results", help="summary, CSV, snapshot JSON or a plot")
    results.add_argument("dir", type=Path)
    mode = results.add_mutually_exclusive_group()
    mode.add_argument("--csv", action="store_true", help="the long CSV on stdout")
    mode.add_argument("--json", action="store_true", help="the composite snapshot on stdout")
    mode.add_argument("--plot", type=Path, metavar="FILE", help="draw the counts into FILE")
    return parser


# -- run ------------------------------------------------------------------------------------------


@attrs.define
class RunReport:
    """What a run came to: the fatal server error, input problems, or neither."""

    fatal: str | None = None
    problems: list[Any] = attrs.Factory(list)
    unobserved: int = 0


def exit_status(state: JournalState, report: RunReport) -> int:
    """The exit status of a run from the journal and the report (4 > 2 > 3 > 1 > 0)."""
    if report.fatal:
        return EXIT_SERVER
    if report.problems:
        return EXIT_USAGE
    counts = state.counts()
    unfinished = sum(n for s, n in counts.items() if s not in ("COMPLETED", "FAILED"))
    if unfinished:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if counts.get("FAILED") else EXIT_OK


async def _watch_signals(
    engine: Engine,
    body: trio.CancelScope,
    err: Console,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        seen = 0
        async for _ in signals:
            seen += 1
            if seen == 1:
                err.print("oqc-run: interrupted: stopping (press Ctrl-C again to exit at once)")
                engine.interrupt()
                if not engine.started:
                    body.cancel()
            else:
                sys.stderr.write(
                    "oqc-run: exiting now; the journal is consistent: run the same command to "
                    "resume\n"
                )
                sys.stderr.flush()
                os._exit(EXIT_INTERRUPTED)


async def _next_windows(sdk: Any, batch: ExpandedBatch, progress: Progress) -> None:
    with trio.move_on_after(15):
        for qpu in sorted({job.qpu for job in batch.jobs}):
            try:
                when = await sdk.get_next_window(qpu)
            except (NotImplementedError, OqcError, ValueError):
                continue
            if when is not None:
                progress.windows[qpu] = when


async def run_batch(
    batch: ExpandedBatch,
    journal: Journal,
    writer: ResultWriter,
    events: EventLog,
    *,
    err: Console,
    quiet: bool,
    progress_interval: float,
    title: str,
) -> RunReport:
    """Connect, check, run; never raises for server or input problems (see the report)."""
    report = RunReport()
    engine = Engine(batch, journal, writer, events)
    async with trio.open_nursery() as nursery:
        body = trio.CancelScope()
        await nursery.start(_watch_signals, engine, body, err)
        nursery.start_soon(collect_old_generation)
        with body:
            if not engine.work_left():
                await engine.finish_offline()
                nursery.cancel_scope.cancel()
                return report
            try:
                async with connect(
                    batch, server_meta(batch.spec.server), emulator_db=journal.emulator_db
                ) as conn:
                    check_against_server(batch, conn.sdk)
                    if not any(journal.state.attempts):
                        # What `oqc-run plan` refuses (shots, qubits), refused before any ID
                        # is reserved. Not on a resume: tasks already sent are followed
                        # whatever the QPU's features say now.
                        await check_features(batch, conn.sdk)
                    progress = Progress(
                        engine.tally,
                        engine.live_counts,
                        console=err,
                        quiet=quiet,
                        interval=progress_interval,
                        title=title,
                        requests=lambda: conn.sdk.statistics().total_requests,
                    )
                    nursery.start_soon(progress.run)
                    nursery.start_soon(_next_windows, conn.sdk, batch, progress)
                    await engine.run(conn.sdk)
            # except*: raised inside the embedded emulator's nursery, they come in a group.
            except* BatchError as group:
                leaves = leaf_exceptions(group)
                report.problems = [
                    p for e in leaves if isinstance(e, BatchError) for p in e.problems
                ]
            except* ServerFailure as group:
                report.fatal = str(leaf_exceptions(group)[0])
        nursery.cancel_scope.cancel()
    report.fatal = report.fatal or engine.fatal
    report.unobserved = len(engine.unobserved)
    return report


def _cmd_run(args: argparse.Namespace, out_console: Console, err: Console) -> int:
    if args.batch.is_dir():
        raise _Usage(
            f"{args.batch} is a directory; a batch file is expected (for an output directory "
            f"see 'oqc-run status {args.batch}' or 'oqc-run results {args.batch}')"
        )
    with collection_paused():
        batch = load_and_expand(args.batch)
        out = args.out or (Path(batch.spec.output.dir) if batch.spec.output.dir else None)
        out = out or default_out_dir(batch.path)
        journal = Journal.open(out, batch, server_meta(batch.spec.server), fresh=args.fresh)
        runs_before = len(journal.state.runs)
        # The expanded batch and the journal live as long as the run: keep the collector
        # from walking them at every full collection (~0.1 s at 10,000 jobs), or even once.
        gc.freeze()
    try:
        if args.fresh:
            for name in (SNAPSHOT_NAME, CSV_NAME, HDF5_NAME):
                (out / name).unlink(missing_ok=True)
        writer = ResultWriter(out, journal.state, batch.spec.output.formats)
        events = EventLog(args.events)
        try:
            # Positional arguments, not a closure: trio's own objects (cyclic garbage once
            # the run is over) would keep the batch and the journal alive until a full
            # collection.
            with old_generation_by_clock():
                report = trio.run(
                    functools.partial(
                        run_batch,
                        err=err,
                        quiet=args.quiet,
                        progress_interval=args.progress_interval,
                        title=f"oqc-run {batch.path.name} -> {out}",
                    ),
                    batch,
                    journal,
                    writer,
                    events,
                )
        finally:
            events.close()
        status = exit_status(journal.state, report)
    finally:
        gc.unfreeze()
        journal.close()
    for problem in report.problems:
        err.print(str(problem), highlight=False, markup=False, soft_wrap=True)
    if report.fatal:
        err.print(f"oqc-run: {report.fatal}", highlight=False, markup=False, soft_wrap=True)
    for warning in writer.warnings:
        err.print(f"oqc-run: {warning}", highlight=False, markup=False)
    if report.unobserved:
        err.print(
            f"oqc-run: {report.unobserved} task(s) could not be observed (see the 'unobserved' "
            "events); they were not resubmitted: run the same command to try again",
            highlight=False,
            markup=False,
        )
    if not args.quiet and not report.problems:
        # How this run stopped (the engine notes it in the journal), if it ran at all.
        this_run = journal.state.runs[runs_before:]
        stop = this_run[-1].get("end") if this_run else None
        _print_summary(out_console, journal.state, out, status, stop)
    return status


_SUMMARY_COLUMNS = (
    "entry",
    "jobs",
    "completed",
    "failed",
    "cancelled",
    "unfinished",
    "shots",
    "retries",
)


def _summary_table(state: JournalState, title: str) -> Table:
    """One row per batch entry and a bold total."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in _SUMMARY_COLUMNS:
        table.add_column(column, justify="left" if column == "entry" else "right")
    for row in summary_rows(state):
        table.add_row(
            *(str(row[c]) for c in _SUMMARY_COLUMNS),
            style="bold" if row["entry"] == "total" else None,
        )
    return table


def _print_summary(
    console: Console,
    state: JournalState,
    out: Path,
    status: int,
    stop: dict[str, Any] | None = None,
) -> None:
    console.print(_summary_table(state, f"oqc-run: {out}"))
    for line in failures(state):
        console.print(f"  failed: {line}", highlight=False, markup=False, soft_wrap=True)
    verdict = {
        EXIT_OK: "all jobs completed",
        EXIT_FAILED: "finished; some jobs failed",
        EXIT_INTERRUPTED: f"{describe_stop(stop)}: run the same command to resume",
        EXIT_SERVER: "stopped by a server failure: run the same command to resume",
    }.get(status, "")
    console.print(f"{verdict} (exit status {status})", highlight=False, soft_wrap=True)


def describe_stop(stop: dict[str, Any] | None) -> str:
    """Why a run stopped with jobs unfinished and what ``on_interrupt``/``on_deadline``
    did, from the ``end`` the engine journals (``runs[-1]["end"]``)."""
    reason = (stop or {}).get("reason")
    if stop is None or reason not in ("interrupted", "deadline"):
        if reason == "server":
            return "stopped by a server failure"
        return "stopped with jobs unfinished"
    if reason == "deadline":
        limit = stop.get("deadline")
        head = "deadline reached" + (f" ({limit:g} s)" if isinstance(limit, int | float) else "")
        key = "on_deadline"
    else:
        head, key = "interrupted", "on_interrupt"
    head += " with jobs unfinished"
    in_flight = int(stop.get("in_flight") or 0)
    if stop.get("policy") != "cancel":
        return f'{head}; {key} = "detach": {in_flight} task(s) left running on the server'
    parts = [f"{stop.get('cancelled', 0)} task(s) cancelled"]
    if stop.get("finished_first"):
        parts.append(f"{stop['finished_first']} finished before the cancel arrived")
    if in_flight:
        parts.append(f"{in_flight} still in flight (outcome not confirmed)")
    return f'{head}; {key} = "cancel": ' + ", ".join(parts)


# -- plan ------------------------------------------------------------------------------------------


def _cmd_plan(args: argparse.Namespace, out_console: Console, err: Console) -> int:
    batch = load_and_expand(args.batch)
    out_console.print(describe_plan(batch), highlight=False, markup=False, soft_wrap=True)
    report = trio.run(server_checks, batch)
    for line in report.lines:
        out_console.print(line, highlight=False, markup=False, soft_wrap=True)
    for problem in report.problems:
        err.print(str(problem), highlight=False, markup=False, soft_wrap=True)
    if report.fatal:
        err.print(f"oqc-run: {report.fatal}", highlight=False, markup=False, soft_wrap=True)
        return EXIT_SERVER
    return EXIT_USAGE if report.problems else EXIT_OK


# -- status, cancel, results -----------------------------------------------------------------------


def status_document(out: Path) -> dict[str, Any]:
    """What ``oqc-run status`` shows, as data (read-only)."""
    state = read_journal(out)
    holder = lock_holder(out)
    counts = state.counts()
    retries = sum(max(0, len(a) - 1) for a in state.attempts)
    server = state.server
    return {
        "dir": str(out),
        "batch_file": state.meta["batch_file"],
        "hash": state.hash,
        "server": "embedded emulator" if server.get("embedded") else server.get("url"),
        "runner_pid": holder,
        "running": holder is not None,
        "runs": len(state.runs),
        "jobs": len(state.jobs),
        # One spelling for every state, the server's (COMPLETED): the journal's own states
        # (pending, reserved, submitted) are lower case there.
        "states": {name.upper(): n for name, n in counts.items()},
        "in_flight": len(state.in_flight()),
        "retries": retries,
        # How the latest run stopped: None while it runs, after a crash or a finished run.
        "last_stop": state.runs[-1].get("end") if state.runs else None,
    }


def _cmd_status(args: argparse.Namespace, out_console: Console, err: Console) -> int:
    doc = status_document(args.dir)
    if args.json:
        out_console.print_json(json.dumps(doc))
        return EXIT_OK
    runner = f"running (pid {doc['runner_pid']})" if doc["running"] else "not running"
    lines = [
        f"batch   {doc['batch_file']} (hash {doc['hash'][:12]})",
        f"server  {doc['server']}",
        f"runner  {runner}; {doc['runs']} run(s) so far",
        f"jobs    {doc['jobs']}: "
        + ", ".join(f"{state.lower()} {n}" for state, n in sorted(doc["states"].items())),
        f"tasks   {doc['in_flight']} in flight, {doc['retries']} retries",
    ]
    if doc["last_stop"] is not None:
        lines.append(f"stop    {describe_stop(doc['last_stop'])} (the latest run)")
    for line in lines:
        out_console.print(line, highlight=False, markup=False, soft_wrap=True)
    return EXIT_OK


async def cancel_tasks(state: JournalState, environ: Any) -> tuple[int, int]:
    """Send one ``cancel_many`` per QPU URL (per 2,000 IDs) for the journal's unfinished
    tasks; returns ``(tasks, requests)``."""
    from ..client import OqcSdk

    meta = state.server
    found = credentials(meta, environ)
    attempts = state.in_flight()
    sent = 0
    async with OqcSdk(
        meta["url"],
        credential=found,
        dialect=meta.get("dialect"),
        allow_insecure_http=bool(meta.get("allow_insecure_http")),
    ) as sdk:
        runtime = sdk._runtime()
        groups: dict[str | None, list[str]] = {}
        for attempt in attempts:
            groups.setdefault(runtime.task_base(attempt.qpu), []).append(str(attempt.id))
        for base, ids in groups.items():
            for start in range(0, len(ids), 2000):
                await runtime.send(runtime.api.cancel_many(base, ids[start : start + 2000]))
                sent += 1
    return len(attempts), sent


def _cmd_cancel(args: argparse.Namespace, out_console: Console, err: Console) -> int:
    state = read_journal(args.dir)
    if state.server.get("embedded"):
        raise _Usage(
            f"{args.dir} ran on the embedded emulator, which lives inside its runner: stop the "
            'runner with Ctrl-C (with [limits] on_interrupt = "cancel")'
        )
    if not state.in_flight():
        out_console.print("nothing to cancel: no task is in flight", highlight=False)
        return EXIT_OK
    try:
        tasks, requests = trio.run(cancel_tasks, state, os.environ)
    except LookupError as exc:
        raise _Usage(f"server.{exc.args[0]}: {exc.args[1]}") from None
    except OqcError as exc:
        err.print(f"oqc-run: cancel failed: {exc}", highlight=False, markup=False)
        return EXIT_SERVER
    marked = ""
    if lock_holder(args.dir) is None:
        try:
            journal = Journal.open_existing(args.dir)
        except JournalLocked:
            pass
        else:
            try:
                for attempt in journal.state.in_flight():
                    journal.cancel_requested(attempt)
                trio.run(journal.flush)
            finally:
                journal.close()
            marked = "; the next run resubmits them"
    out_console.print(
        f"cancel requested for {tasks} task(s) in {requests} request(s){marked}", highlight=False
    )
    return EXIT_OK


def _cmd_results(args: argparse.Namespace, out_console: Console, err: Console) -> int:
    state = read_journal(args.dir)
    if args.csv:
        sys.stdout.write(csv_text(state))
        return EXIT_OK
    if args.json:
        sys.stdout.write(snapshot_text(state, indent=2) + "\n")
        return EXIT_OK
    if args.plot is not None:
        from .plots import PLOT_MISSING, plot_counts

        try:
            what = plot_counts(state, args.plot)
        except ImportError:
            raise _Usage(PLOT_MISSING) from None
        except ValueError as exc:
            raise _Usage(str(exc)) from None
        out_console.print(f"{args.plot}: {what}", highlight=False, markup=False)
        return EXIT_OK
    out_console.print(_summary_table(state, f"{args.dir}"))
    for line in failures(state):
        out_console.print(f"  failed: {line}", highlight=False, markup=False, soft_wrap=True)
    return EXIT_OK


# -- entry points ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (never raises for bad input)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] not in (*_COMMANDS, "-h", "--help", "-V", "--version"):
        arguments.insert(0, "run")
    err = lazy_console(stderr=True, highlight=False)
    out_console = lazy_console(highlight=False)
    try:
        args = _parser().parse_args(arguments)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    handler = {
        "run": _cmd_run,
        "plan": _cmd_plan,
        "status": _cmd_status,
        "cancel": _cmd_cancel,
        "results": _cmd_results,
    }[args.command]
    try:
        return handler(args, out_console, err)
    except BatchError as exc:
        for problem in exc.problems:
            err.print(str(problem), highlight=False, markup=False, soft_wrap=True)
        return EXIT_USAGE
    except (JournalError, _Usage) as exc:
        err.print(f"oqc-run: {exc}", highlight=False, markup=False, soft_wrap=True)
        return EXIT_USAGE
    except OSError as exc:
        err.print(f"oqc-run: {exc}", highlight=False, markup=False, soft_wrap=True)
        return EXIT_USAGE


def console_main() -> None:
    """Entry point of the ``oqc-run`` script and of ``python -m oqc_trio``."""
    # numpy is imported only to write counts.h5 (no linear algebra), yet OpenBLAS starts a
    # thread per core when numpy loads: importing numpy and h5py took ~0.18 s of CPU on a
    # 2-core machine, ~0.09 s with one thread. The user's own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
