"""The actor inbox: ordering, waking, cancellation, closing."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from oqc_trio._actors.mailbox import Mailbox


async def test_items_come_out_in_order_whether_queued_or_awaited() -> None:
    box = Mailbox()
    box.send_nowait(1)
    box.send_nowait(2)
    assert await box.receive() == 1
    assert await box.receive() == 2
    got: list[int] = []

    async def consumer() -> None:
        got.append(await box.receive())
        got.append(await box.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        box.send_nowait(3)
        await trio.testing.wait_all_tasks_blocked()
        box.send_nowait(4)
    assert got == [3, 4]


async def test_a_waiting_receive_is_cancellable_and_loses_nothing() -> None:
    box = Mailbox()
    with trio.move_on_after(0.01) as scope:
        await box.receive()
    assert scope.cancelled_caught
    box.send_nowait("late")
    assert await box.receive() == "late"


async def test_closed_box_refuses_deliveries() -> None:
    box = Mailbox()
    box.close()
    with pytest.raises(trio.ClosedResourceError):
        box.send_nowait(1)
