"""The actor inbox: ordering, waking, cancellation, closing."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from oqc_trio._actors.mailbox import Mailbox
from oqc_trio._actors.submitter import SubmitTicket


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


# -- a submit ticket parks its actor the same way ------------------------------------------
def _ticket() -> SubmitTicket:
    return SubmitTicket(qpu_id="q", task_base=None, encode=lambda: b"{}")


async def test_ticket_settled_before_the_wait_returns_at_once() -> None:
    ticket = _ticket()
    ticket.settle()
    ticket.settle()  # idempotent
    await ticket.wait_settled()
    assert ticket.settled


async def test_ticket_wakes_its_waiter_once_settled() -> None:
    ticket = _ticket()
    woke: list[bool] = []

    async def actor() -> None:
        await ticket.wait_settled()
        woke.append(ticket.settled)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(actor)
        await trio.testing.wait_all_tasks_blocked()
        assert woke == []
        ticket.settle()
    assert woke == [True]


async def test_a_cancelled_wait_leaves_the_ticket_settleable() -> None:
    ticket = _ticket()
    with trio.move_on_after(0.01) as scope:
        await ticket.wait_settled()
    assert scope.cancelled_caught
    ticket.settle()  # nobody waits any more: must not try to wake the departed task
    assert ticket.settled
