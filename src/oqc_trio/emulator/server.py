"""Serve the emulator on a socket with hypercorn's trio worker, as an async context manager.

::

    async with open_emulator(executor="instant") as emu:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{emu.url}/admin/qpu", headers={"Authentication-Token": emu.token})

The server, the QPU queues, the executor and the database writer all live in a nursery
opened by :func:`open_emulator`, inside the caller's task: leaving the block stops them all.

A restart (:meth:`RunningEmulator.restart`, the admin route or a ``restart`` fault) stops
the socket server and the queues, keeps the port closed for the downtime, then serves again
on the same port. Without a database the state starts afresh (tasks, API-created users and
tokens are lost, configured users and tokens come back); with ``db`` it is read back and
the queue resumes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import attrs
import hypercorn.config
import trio

from .._wire import TaskStatus
from .app import build_app
from .asgi import ServerHooks
from .config import EmulatorConfig
from .executor import Executor, open_executor
from .persistence import Store
from .scheduler import Scheduler, StatusWatch
from .serving import Connections, serve
from .state import EmulatorState, Task

__all__ = ["RunningEmulator", "hypercorn_config", "open_emulator"]

#: hypercorn closes a connection after 1000 requests by default, which cuts long-lived
#: HTTP/2 clients mid-stream; the emulator effectively never does.
KEEP_ALIVE_MAX_REQUESTS = 1_000_000

logger = logging.getLogger(__name__)


class _Server:
    """The parts of a serving emulator, and its restart loop."""

    def __init__(
        self,
        state: EmulatorState,
        executor: Executor,
        hconfig: hypercorn.config.Config,
        store: Store | None,
    ) -> None:
        self.state = state
        self.executor = executor
        self.hconfig = hconfig
        self.store = store
        self.scheduler = Scheduler(state)
        self.connections = Connections()
        self.restarts = 0
        self._restart = trio.Event()
        self._downtime = 0.0
        self._restarted = trio.Event()
        hooks = ServerHooks(
            drop=self.connections.drop,
            restart=self.request_restart,
            flush=store.flush if store is not None else ServerHooks().flush,
        )
        self.app = build_app(state, self.scheduler, hooks=hooks)

    def request_restart(self, downtime_s: float) -> None:
        """Restart soon (after the current request is answered), down ``downtime_s``."""
        self._downtime = max(self._downtime, downtime_s)
        self._restart.set()

    async def wait_restarted(self, count: int) -> None:
        """Return once ``count`` restarts have completed."""
        while self.restarts < count:
            await self._restarted.wait()

    async def _load(self) -> None:
        if self.store is None:
            return
        self.state.journal = None
        kept = await trio.to_thread.run_sync(self.store.read)
        requeue = self.state.load(*kept)
        self.state.journal = self.store
        self.scheduler.enqueue(requeue)

    async def run(
        self, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve, restarting on request, until cancelled; ``task_status`` gets the URLs."""
        await self._load()
        first = True
        while True:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.scheduler.run, self.executor)
                if self.store is not None:
                    await nursery.start(self.store.run)
                binds = await nursery.start(serve, self.app, self.hconfig, self.connections)
                if first:
                    first = False
                    # Come back on the same port after a restart.
                    self.hconfig.bind = [_bind_of(next(iter(binds)))]
                    task_status.started(binds)
                await self._restart.wait()
                nursery.cancel_scope.cancel()
            self._restart = trio.Event()
            downtime, self._downtime = self._downtime, 0.0
            await trio.sleep(downtime)
            self.state.reset()
            self.scheduler.reset()
            await self._load()
            self.restarts += 1
            logger.info("emulator restarted (%d)", self.restarts)
            self._restarted.set()
            self._restarted = trio.Event()


def _bind_of(url: str) -> str:
    return url.split("://", 1)[1].rstrip("/")


@attrs.frozen
class RunningEmulator:
    """A serving emulator: where it is, how to authenticate, and its state (for tests).

    ``url`` is the base URL (no trailing slash), ``token`` a user token (the first one
    configured), ``admin_token`` the administrator's token. The URL stays the same across
    restarts.
    """

    url: str
    token: str
    admin_token: str
    state: EmulatorState
    _watch: StatusWatch = attrs.field(repr=False, alias="watch")
    _server: _Server | None = attrs.field(default=None, repr=False, alias="server")

    @property
    def config(self) -> EmulatorConfig:
        """The configuration being served."""
        return self.state.config

    @property
    def qpu_ids(self) -> list[str]:
        """Ids of the catalogue's QPUs, in configuration order."""
        return [q.id for q in self.state.config.qpus]

    @property
    def store(self) -> Store | None:
        """The database, when serving with one."""
        return None if self._server is None else self._server.store

    @property
    def restarts(self) -> int:
        """Restarts so far."""
        return 0 if self._server is None else self._server.restarts

    def qpu_url(self, qpu_id: str) -> str:
        """The legacy task URL of a QPU (what its ``/admin/qpu`` record says)."""
        spec = self.state.qpu(qpu_id)
        return f"{self.url}/qpu/{spec.short}" if self.state.config.qpu_paths else self.url

    async def wait_for_status(self, task_id: str, *statuses: TaskStatus | str) -> Task:
        """Wait until the task's status is one of ``statuses`` and return it."""
        return await self._watch.wait_for(task_id, statuses)

    async def restart(self, downtime_s: float = 0.0) -> None:
        """Restart the server (down for ``downtime_s``) and return once it serves again."""
        if self._server is None:
            raise RuntimeError("this emulator cannot restart")
        target = self._server.restarts + 1
        self._server.request_restart(downtime_s)
        await self._server.wait_restarted(target)

    async def wait_restarted(self, count: int = 1) -> None:
        """Return once the server has restarted ``count`` times in all (by any cause)."""
        if self._server is None:
            raise RuntimeError("this emulator cannot restart")
        await self._server.wait_restarted(count)


def hypercorn_config(host: str, port: int, *, access_log: bool = False) -> hypercorn.config.Config:
    """hypercorn settings of the emulator: one bind, raised keep-alive request limit, logs
    silenced unless ``access_log``."""
    config = hypercorn.config.Config()
    bind_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    config.bind = [f"{bind_host}:{port}"]
    config.keep_alive_max_requests = KEEP_ALIVE_MAX_REQUESTS
    if access_log:
        config.accesslog = "-"
        config.errorlog = "-"
    else:
        config.accesslog = None
        quiet = logging.getLogger("oqc_trio.emulator.hypercorn")
        if not quiet.handlers:
            quiet.addHandler(logging.NullHandler())
            quiet.propagate = False
        config.errorlog = quiet
    return config


def _client_url(binds: Iterable[str]) -> str:
    url = next(iter(binds)).rstrip("/")
    # A wildcard bind is not an address to connect to: advertise loopback instead.
    return url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")


@asynccontextmanager
async def open_emulator(
    config: EmulatorConfig | None = None,
    *,
    executor: Literal["aer", "instant"] = "aer",
    host: str = "127.0.0.1",
    port: int = 0,
    access_log: bool = False,
    db: str | Path | None = None,
) -> AsyncIterator[RunningEmulator]:
    """Serve an emulator on ``host:port`` (port 0: an ephemeral port) until the block ends.

    ``config`` defaults to :meth:`EmulatorConfig.default` (an ideal and a noisy QPU, a
    development user with a random token). ``executor`` is ``"aer"`` (real simulation in
    worker processes, ~1 s to warm up) or ``"instant"`` (no simulation: all-zeros counts,
    for HTTP-level tests). ``db`` is an sqlite file keeping users, tokens and tasks across
    restarts (created if missing; see :mod:`oqc_trio.emulator.persistence`).
    """
    cfg = config if config is not None else EmulatorConfig.default()
    state = EmulatorState(cfg)
    watch = StatusWatch(state)
    store = None
    if db is not None:
        store = Store(db, state)
        await trio.to_thread.run_sync(store.open)
    hconfig = hypercorn_config(host, port, access_log=access_log)
    try:
        async with (
            open_executor(
                executor, workers=cfg.executor_workers, task_timeout_s=cfg.task_timeout_s
            ) as runner,
            trio.open_nursery() as nursery,
        ):
            server = _Server(state, runner, hconfig, store)
            binds = await nursery.start(server.run)
            try:
                yield RunningEmulator(
                    url=_client_url(binds),
                    token=cfg.first_token,
                    admin_token=cfg.admin_token,
                    state=state,
                    watch=watch,
                    server=server,
                )
            finally:
                nursery.cancel_scope.cancel()
    finally:
        if store is not None:
            store.close()
