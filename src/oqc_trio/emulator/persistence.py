"""Persistence (``--db PATH``): users, tokens, tasks (with their results, errors, timings and
submission counts), the queue order and one-off windows, in an sqlite file (stdlib
``sqlite3``), so a restarted emulator resumes its queue and serves old results.

The store is the state's :class:`~oqc_trio.emulator.records.Journal`: the state tells it
what changed, which costs a dictionary insert. One writer task turns whatever changed
since its last write into one transaction, serialised in the event loop and written in a
worker thread (``trio.to_thread``), so the loop never waits on the disk; changes that
arrive meanwhile make up the next transaction (group commit). Requests that create
something (submissions, task IDs, tokens, users) answer only once their changes are
committed (:meth:`Store.flush`): a server killed at any moment still knows every task it
accepted. Status changes are not waited for: a crash can lose the last few, in which case
a task that had finished runs again after the restart (with a ``seed``, to the same
result). The database uses WAL journaling with ``synchronous=NORMAL``: durable across a
process crash (``SIGKILL``), not necessarily across a power cut.

What is not kept: request counters, fault rules and limits state (they describe a run,
not the service), and windows from the configuration (read again at start; relative
windows count from the new start).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

import trio

from .._wire import TaskStatus
from .records import Task, Token, User
from .state import EmulatorState
from .windows import Window

__all__ = ["SCHEMA_VERSION", "Kept", "Store", "StoreError"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (email TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    value TEXT PRIMARY KEY, email TEXT NOT NULL, expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS windows (
    qpu_id TEXT NOT NULL, starting TEXT NOT NULL, ending TEXT NOT NULL
);
"""

_TIMES = ("created_at", "received", "queued", "started", "finished")
#: Tasks serialised between two checkpoints of the writer (~4 ms of work).
_SLICE = 256


class StoreError(RuntimeError):
    """The database cannot be used (unreadable, or written by an incompatible version)."""


class Kept(NamedTuple):
    """What a database holds, read back: the arguments of :meth:`EmulatorState.load`."""

    users: list[User]
    tokens: list[tuple[str, str, dt.datetime]]
    tasks: list[tuple[Task, str, int]]
    windows: list[tuple[str, Window]]


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _time(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _task_doc(task: Task, submissions: int) -> str:
    doc: dict[str, Any] = {
        "id": task.id,
        "seq": task.seq,
        "owner": task.owner.email,
        "qpu_id": task.qpu_id,
        "tag": task.tag,
        "status": task.status.value,
        "program": task.program,
        "config": task.config,
        "external_config": task.external_config,
        "hybrid_marker": task.hybrid_marker,
        "shots": task.shots,
        "results": task.results,
        "task_error": task.task_error,
        "execution_metadata": task.execution_metadata,
        "queue_seq": task.queue_seq,
        "submissions": submissions,
    }
    for name in _TIMES:
        doc[name] = _iso(getattr(task, name))
    return json.dumps(doc, separators=(",", ":"))


def _task_from(doc: dict[str, Any], placeholder: User) -> tuple[Task, str, int]:
    task = Task(
        id=doc["id"],
        seq=doc["seq"],
        owner=placeholder,
        qpu_id=doc["qpu_id"],
        tag=doc["tag"],
        created_at=_time(doc["created_at"]) or dt.datetime.now(dt.UTC),
        status=TaskStatus(doc["status"]),
        program=doc["program"],
        config=doc["config"],
        external_config=doc["external_config"],
        hybrid_marker=doc["hybrid_marker"],
        shots=doc["shots"],
        results=doc["results"],
        task_error=doc["task_error"],
        execution_metadata=doc["execution_metadata"] or {},
        received=_time(doc["received"]),
        queued=_time(doc["queued"]),
        started=_time(doc["started"]),
        finished=_time(doc["finished"]),
        queue_seq=doc["queue_seq"],
    )
    return task, doc["owner"], int(doc.get("submissions") or 0)


def _user_doc(user: User) -> str:
    return json.dumps(
        {
            "email": user.email,
            "password": user.password,
            "admin": user.admin,
            "name": user.name,
            "password_expires_at": _iso(user.password_expires_at),
            "login_token": user.login_token,
        }
    )


def _user_from(doc: dict[str, Any]) -> User:
    return User(
        id=0,
        email=doc["email"],
        password=doc["password"],
        admin=bool(doc["admin"]),
        name=doc["name"],
        password_expires_at=_time(doc["password_expires_at"]) or dt.datetime.now(dt.UTC),
        login_token=doc["login_token"],
    )


class Store:
    """The sqlite file of one emulator, and its single writer. :meth:`open` and :meth:`read`
    block (call them from a thread); load what :meth:`read` returns into the state, make the
    store the state's journal, run :meth:`run` in a nursery, and :meth:`close` at the end."""

    def __init__(self, path: str | Path, state: EmulatorState) -> None:
        self.path = Path(path)
        self._state = state
        self._connection: sqlite3.Connection | None = None
        self._tasks: dict[str, Task] = {}
        self._users: dict[str, User] = {}
        self._tokens: dict[str, Token | None] = {}
        self._windows: list[tuple[str, Window]] = []
        self._marked = 0
        self._committed = 0
        self._wake = trio.Event()
        self._written = trio.Event()
        #: Transactions written so far (for tests and statistics).
        self.transactions = 0

    # -- opening and reading -----------------------------------------------------------------
    def open(self) -> None:
        """Open (or create) the database file. Blocking."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            row = connection.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot use {self.path} as the emulator's database: {exc}") from exc
        if row is None:
            connection.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            connection.close()
            raise StoreError(
                f"{self.path} holds emulator data of schema {row[0]}, this emulator reads "
                f"schema {SCHEMA_VERSION}"
            )
        self._connection = connection

    def read(self) -> Kept:
        """Everything kept, as objects not yet attached to the state. Blocking (run it in a
        thread); pass the result to :meth:`EmulatorState.load` in the event loop."""
        connection = self._require()
        users = [
            _user_from(json.loads(doc)) for (doc,) in connection.execute("SELECT doc FROM users")
        ]
        tokens = [
            (value, email, dt.datetime.fromisoformat(expires))
            for value, email, expires in connection.execute(
                "SELECT value, email, expires_at FROM tokens"
            )
        ]
        placeholder = self._state.admin
        tasks = [
            _task_from(json.loads(doc), placeholder)
            for (doc,) in connection.execute("SELECT doc FROM tasks ORDER BY seq")
        ]
        windows = [
            (qpu_id, Window(dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)))
            for qpu_id, start, end in connection.execute(
                "SELECT qpu_id, starting, ending FROM windows"
            )
        ]
        return Kept(users, tokens, tasks, windows)

    def close(self) -> None:
        """Close the file (pending changes are lost: write them first)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _require(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreError("the store is not open")
        return self._connection

    # -- the journal -------------------------------------------------------------------------
    def _mark(self) -> None:
        self._marked += 1
        self._wake.set()

    def task(self, task: Task) -> None:
        """Keep ``task`` (at the next write)."""
        self._tasks[task.id] = task
        self._mark()

    def user(self, user: User) -> None:
        """Keep ``user``."""
        self._users[user.email.lower()] = user
        self._mark()

    def token(self, token: Token) -> None:
        """Keep ``token``."""
        self._tokens[token.value] = token
        self._mark()

    def token_deleted(self, value: str) -> None:
        """Forget the token ``value``."""
        self._tokens[value] = None
        self._mark()

    def window(self, qpu_id: str, window: Window) -> None:
        """Keep a one-off window."""
        self._windows.append((qpu_id, window))
        self._mark()

    # -- writing -----------------------------------------------------------------------------
    async def _take(self) -> tuple[int, list[tuple[str, tuple[Any, ...]]]]:
        """Serialise what changed (in the event loop: the objects are live), in slices with
        checkpoints between them, so that a burst of thousands of tasks does not stall the
        loop. Changes made meanwhile go to the next transaction."""
        generation = self._marked
        tasks, users, tokens, windows = self._tasks, self._users, self._tokens, self._windows
        self._tasks, self._users, self._tokens, self._windows = {}, {}, {}, []
        statements: list[tuple[str, tuple[Any, ...]]] = []
        submissions = self._state.submissions
        for count, task in enumerate(tasks.values(), 1):
            statements.append(
                (
                    "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?)",
                    (task.id, task.seq, task.status.value, _task_doc(task, submissions[task.id])),
                )
            )
            if count % _SLICE == 0:
                await trio.lowlevel.checkpoint()
        for email, user in users.items():
            statements.append(
                ("INSERT OR REPLACE INTO users VALUES (?, ?)", (email, _user_doc(user)))
            )
        for value, token in tokens.items():
            if token is None:
                statements.append(("DELETE FROM tokens WHERE value = ?", (value,)))
            else:
                statements.append(
                    (
                        "INSERT OR REPLACE INTO tokens VALUES (?, ?, ?)",
                        (value, token.user.email, token.expires_at.isoformat()),
                    )
                )
        for qpu_id, window in windows:
            statements.append(
                (
                    "INSERT INTO windows VALUES (?, ?, ?)",
                    (qpu_id, window.starting.isoformat(), window.ending.isoformat()),
                )
            )
        return generation, statements

    def _write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        connection = self._require()
        connection.execute("BEGIN")
        try:
            for sql, params in statements:
                connection.execute(sql, params)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    async def write_pending(self) -> None:
        """Write what changed since the last write, now (one transaction, in a thread)."""
        generation, statements = await self._take()
        if statements:
            await trio.to_thread.run_sync(self._write, statements)
            self.transactions += 1
        self._committed = generation
        self._written.set()
        self._written = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer: one transaction per wake-up, until cancelled; on cancellation, what
        is pending is still written (shielded)."""
        task_status.started()
        try:
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                await self.write_pending()
        finally:
            with trio.CancelScope(shield=True):
                await self.write_pending()

    async def flush(self) -> None:
        """Return once every change reported so far is committed."""
        target = self._marked
        while self._committed < target:
            await self._written.wait()
