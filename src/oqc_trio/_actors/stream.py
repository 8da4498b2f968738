"""A long-lived streaming runner: jobs in over one memory channel, finished jobs out over
another, with the same batching, polling and failure semantics as ``execute``.

For hybrid loops inside a trio application: submit the next programs while earlier ones run,
and react to each result as soon as it lands. Everything lives in the caller's nursery scope:
leaving the ``async with`` stops the services (remote tasks keep running, resumable).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from .runtime import Runtime
from .supervisor import Drive, ReservedHook

if TYPE_CHECKING:
    from ..exceptions import OqcError
    from ..job import Job

__all__ = ["JobStream", "open_stream"]


class JobStream:
    """Handle of a running stream.

    ``await stream.send(job)`` hands a job in (waits while ``max_in_flight`` jobs are being
    driven); ``await stream.close_input()`` says no more jobs will come; ``async for job in
    stream`` yields each job once it is settled (ended, or unobservable: see ``errors``) and
    stops after the input is closed and every job has come out.
    """

    def __init__(
        self,
        send: trio.MemorySendChannel[Job],
        receive: trio.MemoryReceiveChannel[Job],
        drive: Drive,
    ) -> None:
        self._send = send
        self._receive = receive
        self._drive = drive

    async def send(self, job: Job) -> None:
        """Hand one job to the stream."""
        await self._send.send(job)

    async def close_input(self) -> None:
        """No more jobs: iteration ends once the ones in flight are settled."""
        await self._send.aclose()

    @property
    def errors(self) -> list[tuple[Job, OqcError]]:
        """Jobs whose tasks could not be observed (not failed: resumable), with the reason."""
        return self._drive.observe_errors

    def __aiter__(self) -> AsyncIterator[Job]:
        return self._receive.__aiter__()


@asynccontextmanager
async def open_stream(
    runtime: Runtime, *, max_in_flight: int = 1000, on_reserved: ReservedHook | None = None
) -> AsyncIterator[JobStream]:
    """Run a stream's services (submitter, poll scheduler, actors) for the ``async with``.

    ``on_reserved`` is awaited (shielded) with each batch of reserved task IDs before they
    are submitted, e.g. to journal them.
    """
    if max_in_flight < 1:
        raise ValueError("max_in_flight must be >= 1")
    drive = Drive(runtime, math.inf, on_reserved)
    in_send, in_receive = trio.open_memory_channel["Job"](0)
    out_send, out_receive = trio.open_memory_channel["Job"](math.inf)
    limiter = trio.CapacityLimiter(max_in_flight)
    positions = itertools.count()

    async def run_one(job: Job) -> None:
        try:
            await drive.actor(job, poll=True, on_finished=None, position=next(positions))
        finally:
            limiter.release_on_behalf_of(job)
            out_send.send_nowait(job)

    async def feed() -> None:
        async with in_receive, out_send, trio.open_nursery() as actors:
            async for job in in_receive:
                await limiter.acquire_on_behalf_of(job)
                actors.start_soon(run_one, job)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drive.submitter.run)
        nursery.start_soon(drive.scheduler.run)
        nursery.start_soon(feed)
        try:
            yield JobStream(in_send, out_receive, drive)
        finally:
            nursery.cancel_scope.cancel()
