"""A job actor's inbox: one consumer, producers that never block, no buffer limit.

A memory channel per job costs about 2 KB (channel state, two ends, statistics); at 100,000
jobs that is the largest part of the runtime's memory. An actor only ever needs "wake me
with the next event", which trio's low-level parking does in a few dozen bytes.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import outcome
import trio

__all__ = ["Mailbox"]


class Mailbox:
    """Events for one actor. ``send_nowait`` never blocks; ``receive`` waits for the next."""

    __slots__ = ("_closed", "_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._waiter: trio.lowlevel.Task | None = None
        self._closed = False

    def send_nowait(self, item: Any) -> None:
        """Deliver ``item``; raises ``trio.ClosedResourceError`` once the actor has left."""
        if self._closed:
            raise trio.ClosedResourceError("the actor has left")
        if self._waiter is not None:
            task, self._waiter = self._waiter, None
            trio.lowlevel.reschedule(task, outcome.Value(item))
            return
        if self._items is None:
            self._items = deque()
        self._items.append(item)

    async def receive(self) -> Any:
        """The next item (a checkpoint: cancellable while waiting)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._items:
            item = self._items.popleft()
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item
        self._waiter = trio.lowlevel.current_task()
        return await trio.lowlevel.wait_task_rescheduled(self._abort)

    def _abort(self, _: Any) -> trio.lowlevel.Abort:
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    def close(self) -> None:
        """No more deliveries: later ``send_nowait`` calls raise ``ClosedResourceError``."""
        self._closed = True
        self._items = None
