"""Serve the emulator on a socket with hypercorn's trio worker, as an async context manager.

::

    async with open_emulator(executor="instant") as emu:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{emu.url}/admin/qpu", headers={"Authentication-Token": emu.token})

The server, the QPU queues and the executor all live in a nursery opened by
:func:`open_emulator`, inside the caller's task: leaving the block stops them all.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from functools import partial
from typing import Literal

import attrs
import hypercorn.config
import hypercorn.trio
import trio

from .._wire import TaskStatus
from .app import build_app
from .config import EmulatorConfig
from .executor import open_executor
from .scheduler import Scheduler, StatusWatch
from .state import EmulatorState, Task

__all__ = ["RunningEmulator", "hypercorn_config", "open_emulator"]

#: hypercorn closes a connection after 1000 requests by default, which cuts long-lived
#: HTTP/2 clients mid-stream; the emulator effectively never does.
KEEP_ALIVE_MAX_REQUESTS = 1_000_000


@attrs.frozen
class RunningEmulator:
    """A serving emulator: where it is, how to authenticate, and its state (for tests).

    ``url`` is the base URL (no trailing slash), ``token`` a user token (the first one
    configured), ``admin_token`` the administrator's token.
    """

    url: str
    token: str
    admin_token: str
    state: EmulatorState
    _watch: StatusWatch = attrs.field(repr=False, alias="watch")

    @property
    def config(self) -> EmulatorConfig:
        """The configuration being served."""
        return self.state.config

    @property
    def qpu_ids(self) -> list[str]:
        """Ids of the catalogue's QPUs, in configuration order."""
        return [q.id for q in self.state.config.qpus]

    def qpu_url(self, qpu_id: str) -> str:
        """The legacy task URL of a QPU (what its ``/admin/qpu`` record says)."""
        spec = self.state.qpu(qpu_id)
        return f"{self.url}/qpu/{spec.short}" if self.state.config.qpu_paths else self.url

    async def wait_for_status(self, task_id: str, *statuses: TaskStatus | str) -> Task:
        """Wait until the task's status is one of ``statuses`` and return it."""
        return await self._watch.wait_for(task_id, statuses)


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
) -> AsyncIterator[RunningEmulator]:
    """Serve an emulator on ``host:port`` (port 0: an ephemeral port) until the block ends.

    ``config`` defaults to :meth:`EmulatorConfig.default` (two QPUs, a development user with
    a random token). ``executor`` is ``"aer"`` (real simulation in worker processes, ~1 s to
    warm up) or ``"instant"`` (no simulation: all-zeros counts, for HTTP-level tests).
    """
    cfg = config if config is not None else EmulatorConfig.default()
    state = EmulatorState(cfg)
    watch = StatusWatch(state)
    scheduler = Scheduler(state)
    app = build_app(state, scheduler)
    hconfig = hypercorn_config(host, port, access_log=access_log)
    async with (
        open_executor(
            executor, workers=cfg.executor_workers, task_timeout_s=cfg.task_timeout_s
        ) as runner,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(scheduler.run, runner)
        serve = partial(hypercorn.trio.serve, app, hconfig, mode="asgi")  # type: ignore[arg-type]
        binds = await nursery.start(serve)
        try:
            yield RunningEmulator(
                url=_client_url(binds),
                token=cfg.first_token,
                admin_token=cfg.admin_token,
                state=state,
                watch=watch,
            )
        finally:
            nursery.cancel_scope.cancel()
