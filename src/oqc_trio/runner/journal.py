"""The journal: the runner's write-ahead state in ``OUT/journal/``.

Layout (every file written atomically: temp file, fsync, rename, directory fsync)::

    batch.json           the expanded batch: hash, non-secret server settings, logical jobs
                         (one array per field: a 10,000-job batch is 2.4 MB, not 3.4, and
                         encodes twice as fast), configs. Written once when the journal is
                         created. (Version 1 journals, one object per job, are still read.)
    state.json           every attempt as of segment ``through`` (rewritten by compaction)
    seg-00000042.jsonl   the records of one flush, applied in order after state.json
    lock                 flock()ed by the running runner; holds its pid
    emulator.sqlite      the embedded emulator's tasks (batches run on the embedded emulator)

Records (one JSON object a line): ``{"r": "a", "j": job, "n": attempt, "id": task_id, "q":
qpu, "t": time}`` an attempt's task ID was reserved; ``"s"`` the server accepted it; ``"e"``
it ended (``"s"``: COMPLETED/FAILED/CANCELLED, with ``data`` or ``code``/``msg``); ``"c"`` a
cancel was requested; ``"run"`` a runner started; ``"end"`` it stopped (why, and what
``on_interrupt``/``on_deadline`` did: kept as the ``"end"`` of that run's entry in ``runs``).

Each flush writes one new segment, so the cost of a flush is the size of what changed, not
of the batch. A segment either exists whole or not at all: ``kill -9`` at any instant leaves
a readable journal. Compaction folds segments into ``state.json`` (``through`` = the last
folded segment) before deleting them, so readers that race with it just read again; it runs
once the segments hold as many bytes as ``state.json``, so its total cost stays linear.
"""

from __future__ import annotations

import contextlib
import copy as _copy
import errno
import fcntl
import functools
import json
import json.encoder
import operator
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import trio

from .expand import ConfigRecord, ExpandedBatch, LogicalJob
from .jsonenc import make_encoder

__all__ = [
    "Attempt",
    "Journal",
    "JournalError",
    "JournalLocked",
    "JournalMismatch",
    "JournalState",
    "atomic_write",
    "atomic_write_pieces",
    "journal_dir",
    "lock_holder",
    "read_journal",
]

FORMAT = "oqc-run-journal"
VERSION = 2
_READABLE = (1, 2)
ENDED = ("COMPLETED", "FAILED", "CANCELLED")
_SEGMENT_RE = re.compile(r"^seg-(\d{8,})\.jsonl$")
_COMPACT_SEGMENTS = 256
_COMPACT_BYTES = 32 * 1024 * 1024
_WRITE_BUFFER = 1 << 20


class JournalError(Exception):
    """The journal cannot be used (missing, unreadable, another batch)."""


class JournalLocked(JournalError):
    """Another runner holds the output directory."""


class JournalMismatch(JournalError):
    """The output directory holds the journal of a different batch."""


@attrs.define(eq=False, slots=True)
class Attempt:
    """One try of a logical job: a task ID on a QPU and how it ended.

    ``state`` is ``reserved`` (ID journaled, maybe not yet submitted), ``submitted`` (the
    server accepted it), or COMPLETED / FAILED / CANCELLED. ``cancel`` is set once a cancel
    was requested for it.
    """

    job: int
    n: int
    id: str | None
    qpu: str
    state: str = "reserved"
    reserved: float = 0.0
    ended: float | None = None
    code: int | None = None
    message: str | None = None
    data: dict[str, Any] | None = None
    cancel: bool = False

    @property
    def done(self) -> bool:
        """True once the server reported an end."""
        return self.state in ENDED


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, directory fsync."""
    atomic_write_pieces(path, (data,))


def atomic_write_pieces(path: Path, pieces: Iterable[bytes]) -> None:
    """Like :func:`atomic_write`, with the content given as pieces written as they come."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb", buffering=_WRITE_BUFFER) as handle:
            handle.writelines(pieces)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def journal_dir(out: Path) -> Path:
    """Where the journal of output directory ``out`` lives."""
    return Path(out) / "journal"


class JournalState:
    """The journal in memory: batch metadata, logical jobs and their attempts."""

    def __init__(self, meta: dict[str, Any], jobs: list[LogicalJob], configs: list[ConfigRecord]):
        self.meta = meta
        self.jobs = jobs
        self.configs = configs
        self.attempts: list[list[Attempt]] = [[] for _ in jobs]
        self.runs: list[dict[str, Any]] = []
        self.through = 0

    @property
    def hash(self) -> str:
        """Content hash of the batch this journal belongs to."""
        return str(self.meta["hash"])

    def latest(self, job: int) -> Attempt | None:
        """The most recent attempt of a logical job."""
        attempts = self.attempts[job]
        return attempts[-1] if attempts else None

    def apply(self, record: dict[str, Any]) -> Attempt | None:
        """Apply one record; returns the attempt it touched."""
        kind = record["r"]
        if kind == "run":
            self.runs.append({k: v for k, v in record.items() if k != "r"})
            return None
        if kind == "end":
            if self.runs:
                self.runs[-1]["end"] = {k: v for k, v in record.items() if k != "r"}
            return None
        attempts = self.attempts[record["j"]]
        number = record["n"]
        if kind == "a":
            attempt = Attempt(
                record["j"], number, record.get("id"), record["q"], reserved=record["t"]
            )
            attempts.append(attempt)
            return attempt
        attempt = next(a for a in reversed(attempts) if a.n == number)
        if kind == "s":
            if attempt.state == "reserved":
                attempt.state = "submitted"
        elif kind == "e":
            attempt.state = record["s"]
            attempt.ended = record.get("t")
            attempt.data = record.get("data")
            attempt.code = record.get("code")
            attempt.message = record.get("msg")
        elif kind == "c":
            attempt.cancel = True
        return attempt

    @property
    def server(self) -> dict[str, Any]:
        """The server settings of the latest run (the batch file may have changed them)."""
        for run in reversed(self.runs):
            if "server" in run:
                return dict(run["server"])
        return dict(self.meta["server"])

    def counts(self) -> dict[str, int]:
        """Logical jobs by the state of their latest attempt (``pending``: none yet)."""
        tally: dict[str, int] = {}
        for attempts in self.attempts:
            state = attempts[-1].state if attempts else "pending"
            tally[state] = tally.get(state, 0) + 1
        return tally

    def in_flight(self) -> list[Attempt]:
        """Latest attempts holding a task ID the server may still be running."""
        return [a[-1] for a in self.attempts if a and not a[-1].done and a[-1].id is not None]

    def frozen(self) -> JournalState:
        """A copy whose attempts no longer change (for writers in worker threads)."""
        copy = JournalState(self.meta, self.jobs, self.configs)
        copy.attempts = [[_copy.copy(a) for a in per_job] for per_job in self.attempts]
        copy.runs = list(self.runs)
        copy.through = self.through
        return copy

    def state_document(self) -> dict[str, Any]:
        """Every attempt, for ``state.json``."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "through": self.through,
            "runs": self.runs,
            "attempts": [_attempt_fields(a) for per in self.attempts for a in per],
        }


def _segments(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for entry in os.scandir(directory):
        match = _SEGMENT_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), Path(entry.path)))
    return sorted(found)


def _read_json(path: Path) -> Any:
    with open(path, "rb") as handle:
        return json.loads(handle.read())


def _load(directory: Path) -> tuple[JournalState, int]:
    """Read batch.json, state.json and the newer segments; returns the state and the number
    of the last segment seen."""
    batch_file = directory / "batch.json"
    if not batch_file.exists():
        raise JournalError(f"{directory.parent} holds no oqc-run journal")
    for _ in range(10):
        try:
            meta = _read_json(batch_file)
            if meta.get("format") != FORMAT or meta.get("version") not in _READABLE:
                raise JournalError(
                    f"{batch_file}: not an oqc-run journal of version "
                    f"{' or '.join(map(str, _READABLE))}"
                )
            jobs = _jobs_from(meta.pop("jobs"))
            configs = [ConfigRecord(*item) for item in meta.pop("configs")]
            state = JournalState(meta, jobs, configs)
            state_file = directory / "state.json"
            if state_file.exists():
                document = _read_json(state_file)
                state.through = document["through"]
                state.runs = document.get("runs", [])
                for item in document["attempts"]:
                    state.attempts[item["job"]].append(Attempt(**item))
            last = state.through
            for number, path in _segments(directory):
                if number <= state.through:
                    continue
                with open(path, "rb") as handle:
                    for line in handle:
                        if line.strip():
                            state.apply(json.loads(line))
                last = number
            return state, last
        except FileNotFoundError:
            continue  # compaction removed a segment under us: read again
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise JournalError(f"{directory}: damaged journal ({exc})") from exc
    raise JournalError(f"{directory}: journal keeps changing under the reader")


def read_journal(out: Path) -> JournalState:
    """Read the journal of output directory ``out`` without locking it (``status``,
    ``results``): safe while a runner writes it, or after a crash."""
    return _load(journal_dir(out))[0]


def lock_holder(out: Path) -> int | None:
    """The pid of the runner holding ``out``, or None when no runner is running there."""
    lock = journal_dir(out) / "lock"
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _take_lock(directory: Path) -> int:
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    for attempt in range(5):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if attempt == 4:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise JournalLocked(
                    f"another oqc-run (pid {holder}) is running on {directory.parent}"
                ) from None
            time.sleep(0.05)  # a reader's brief shared lock (``oqc-run status``)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


# The index of a job is its position: not stored.
_JOB_COLUMNS = tuple(f.name for f in attrs.fields(LogicalJob) if f.name != "index")
_ATTEMPT_FIELDS = tuple(field.name for field in attrs.fields(Attempt))


def _job_columns(jobs: list[LogicalJob]) -> dict[str, list[Any]]:
    return {name: list(map(operator.attrgetter(name), jobs)) for name in _JOB_COLUMNS}


def _jobs_from(stored: Any) -> list[LogicalJob]:
    """The logical jobs of batch.json: one array per field (version 2) or one object per
    job (version 1)."""
    if isinstance(stored, list):
        return [LogicalJob(**item) for item in stored]
    columns = [stored[name] for name in _JOB_COLUMNS]
    if len({len(column) for column in columns}) > 1:
        raise ValueError("the job arrays of batch.json differ in length")
    return [
        LogicalJob(index=index, **dict(zip(_JOB_COLUMNS, values, strict=True)))
        for index, values in enumerate(zip(*columns, strict=True))
    ]


def _attempt_fields(attempt: Attempt) -> dict[str, Any]:
    return {name: getattr(attempt, name) for name in _ATTEMPT_FIELDS}


def _batch_document(batch: ExpandedBatch, server: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "hash": batch.hash,
        "created": time.time(),
        "batch_file": str(batch.path.resolve()),
        "server": server,
        "param_names": batch.param_names,
        "entries": batch.entries,
        "configs": [attrs.astuple(c) for c in batch.configs],
        "jobs": _job_columns(batch.jobs),
    }


class Journal:
    """The journal of one output directory, opened for writing by one runner.

    Records go to memory at once (``reserve``, ``submitted``, ``ended``, ``cancel_requested``)
    and to disk at :meth:`flush`, which writes them as one atomic segment. The runner calls
    it before submitting reserved IDs (mandatory), periodically, and at the end.
    """

    def __init__(self, directory: Path, state: JournalState, last_segment: int, lock_fd: int):
        self.directory = directory
        self.state = state
        self._next = last_segment + 1
        self._lock_fd = lock_fd
        self._pending: list[str] = []  # encoded records, one line each
        self._flush_lock = trio.Lock()
        self._segment_count = len(_segments(directory))
        self._segment_bytes = 0
        state_file = directory / "state.json"
        self._state_bytes = state_file.stat().st_size if state_file.exists() else 0
        self.flushes = 0

    @classmethod
    def open(
        cls, out: Path, batch: ExpandedBatch, server: dict[str, Any], *, fresh: bool = False
    ) -> Journal:
        """Lock ``out`` and open (or create) its journal for ``batch``.

        Raises :class:`JournalLocked` if another runner holds it, :class:`JournalMismatch` if
        it belongs to another batch (unless ``fresh``, which starts over).
        """
        directory = journal_dir(out)
        directory.mkdir(parents=True, exist_ok=True)
        fd = _take_lock(directory)
        try:
            for leftover in directory.glob(".*.tmp"):
                leftover.unlink(missing_ok=True)
            if (directory / "batch.json").exists() and not fresh:
                state, last = _load(directory)
                if state.hash == batch.hash:
                    return cls(directory, state, last, fd)
                if any(state.attempts):
                    raise JournalMismatch(
                        f"{out} holds the journal of another batch ({state.meta['batch_file']},"
                        f" hash {state.hash[:12]}); use --fresh to start over there, or "
                        "another output directory"
                    )
                # That batch never reserved a task ID (e.g. refused by the server's checks,
                # then edited): nothing of it can be lost, so this batch starts over here.
                fresh = True
            if fresh:
                for item in directory.iterdir():
                    if item.name != "lock":
                        shutil.rmtree(item) if item.is_dir() else item.unlink()
            document = _batch_document(batch, server)
            atomic_write(directory / "batch.json", _dumps(document))
            meta = {k: v for k, v in document.items() if k not in ("jobs", "configs")}
            return cls(directory, JournalState(meta, batch.jobs, batch.configs), 0, fd)
        except BaseException:
            os.close(fd)
            raise

    @property
    def emulator_db(self) -> Path:
        """Where the embedded emulator keeps its tasks between runs of this batch."""
        return self.directory / "emulator.sqlite"

    @classmethod
    def open_existing(cls, out: Path) -> Journal:
        """Lock and open the journal of ``out`` whatever its batch (``oqc-run cancel``)."""
        directory = journal_dir(out)
        if not (directory / "batch.json").exists():
            raise JournalError(f"{out} holds no oqc-run journal")
        fd = _take_lock(directory)
        try:
            state, last = _load(directory)
        except BaseException:
            os.close(fd)
            raise
        return cls(directory, state, last, fd)

    def close(self) -> None:
        """Write what is pending and release the lock. (Compaction happens as segments pile
        up, not here: closing stays cheap whatever the size of the batch.)"""
        try:
            if self._pending:
                _, path, data = self._next_segment()
                atomic_write(path, data)
        finally:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)

    # -- records (applied to memory at once, written at the next flush) -----------------------
    def run_started(self, **info: Any) -> None:
        """Note that a runner started (for ``status``)."""
        record = {"r": "run", "pid": os.getpid(), "t": time.time(), **info}
        self._pending.append(_encode(record) + "\n")
        self.state.apply(record)

    def run_ended(self, **info: Any) -> None:
        """Note how the current run stopped (``reason``, the policy applied, counts): kept
        as ``runs[-1]["end"]`` for ``status`` and the summary."""
        record = {"r": "end", "t": time.time(), **info}
        self._pending.append(_encode(record) + "\n")
        self.state.apply(record)

    def reserve(self, job: int, task_id: str | None, qpu: str) -> Attempt:
        """A new attempt of ``job`` holding ``task_id`` (None: refused before an ID)."""
        attempts = self.state.attempts[job]
        now = time.time()
        attempt = Attempt(job, len(attempts) + 1, task_id, qpu, reserved=now)
        attempts.append(attempt)
        self._pending.append(
            f'{{"r":"a","j":{job},"n":{attempt.n},"id":{_string(task_id)},"q":{_word(qpu)},'
            f'"t":{now!r}}}\n'
        )
        return attempt

    def submitted(self, attempt: Attempt) -> None:
        """The server accepted the attempt's task."""
        if attempt.state == "reserved":
            attempt.state = "submitted"
            self._pending.append(f'{{"r":"s","j":{attempt.job},"n":{attempt.n}}}\n')

    def ended(
        self,
        attempt: Attempt,
        state: str,
        *,
        data: dict[str, Any] | None = None,
        code: int | None = None,
        message: str | None = None,
    ) -> None:
        """The server reported the attempt's end."""
        now = time.time()
        attempt.state, attempt.ended, attempt.data = state, now, data
        attempt.code, attempt.message = code, message
        line = f'{{"r":"e","j":{attempt.job},"n":{attempt.n},"s":{_word(state)},"t":{now!r}'
        if data is not None:
            line += f',"data":{_encode(data)}'
        if code is not None or message is not None:
            line += f',"code":{_encode(code)},"msg":{_encode(message)}'
        self._pending.append(line + "}\n")

    def cancel_requested(self, attempt: Attempt) -> None:
        """A cancel was sent for the attempt's task."""
        attempt.cancel = True
        self._pending.append(f'{{"r":"c","j":{attempt.job},"n":{attempt.n}}}\n')

    # -- persistence ---------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write the pending records as one atomic segment (shielded: a flush that started
        always finishes). Compacts when segments pile up."""
        with trio.CancelScope(shield=True):
            async with self._flush_lock:
                if not self._pending:
                    return
                number, path, data = self._next_segment()
                document = None
                if self._compaction_due(len(data)):
                    # Taken now, before any await: exactly the records up to this segment.
                    document = self.state.state_document() | {"through": number}
                await trio.to_thread.run_sync(atomic_write, path, data)
                self.flushes += 1
                self._segment_count += 1
                self._segment_bytes += len(data)
                if document is not None:
                    await trio.to_thread.run_sync(self._compact, document)

    def _next_segment(self) -> tuple[int, Path, bytes]:
        """Take the pending records as the next segment: its number, path and content."""
        pending, self._pending = self._pending, []
        number, self._next = self._next, self._next + 1
        return number, self.directory / f"seg-{number:08d}.jsonl", "".join(pending).encode()

    def _compaction_due(self, adding: int) -> bool:
        """Compact once the segments hold as many bytes as ``state.json`` and number 256 or
        hold 32 MB. Each compaction rewrites every attempt: with a fixed trigger a batch's
        compactions would cost O(jobs²) in all (3 of them, 0.9 s, at 100,000 jobs; ~30 at a
        million); growing with ``state.json`` keeps the total O(jobs)."""
        pending = self._segment_bytes + adding
        return pending >= max(_COMPACT_BYTES, self._state_bytes) or (
            self._segment_count + 1 >= _COMPACT_SEGMENTS and pending >= self._state_bytes
        )

    def _compact(self, document: dict[str, Any]) -> None:
        data = _dumps(document)
        atomic_write(self.directory / "state.json", data)
        self._state_bytes = len(data)
        for number, path in _segments(self.directory):
            if number <= document["through"]:
                path.unlink(missing_ok=True)
        self._segment_count = len(_segments(self.directory))
        self._segment_bytes = 0


_encode = make_encoder(ensure_ascii=False, separators=(",", ":"))
_encode_str = json.encoder.encode_basestring  # what the encoder calls for a str


def _string(value: str | None) -> str:
    """:func:`_encode` of a string or None, without the encoder's per-call set-up."""
    return "null" if value is None else _encode_str(value)


#: :func:`_encode` of values that recur in records (QPU ids, states), memoised.
_word = functools.lru_cache(maxsize=1024)(_encode)


def _dumps(value: Any) -> bytes:
    return _encode(value).encode()


def iter_attempts(state: JournalState) -> Iterator[Attempt]:
    """Every attempt of every logical job, in job order."""
    for per_job in state.attempts:
        yield from per_job


def is_disk_full(exc: OSError) -> bool:
    """True for 'no space left' errors (reported distinctly by the command line)."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)
