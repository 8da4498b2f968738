"""The submitter service: gathers submit requests from many job actors and sends them as few,
size-bounded batches, IDs first.

Per QPU: ``POST /tasks`` reserves task IDs, an optional hook persists them (the runner's
journal), then ``POST /tasks/submit`` sends the tasks carrying those IDs. One reservation
covers a *block* of up to 8 submit chunks (1,000 tasks): a journaling caller then writes one
durable record per block, not one per ~100 KB chunk (the official SDK reserves per chunk).
A submit that fails ambiguously (timeout, connection lost, 5xx/429 after the IDs exist) is
*reconciled*: the server is asked about each ID and only the ones it reports as never
submitted (CREATED) are sent again. A task the server may already hold is never sent twice
(official weakness #8).
"""

from __future__ import annotations

import itertools
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence, Sized
from typing import Any, TypeVar

import attrs
import trio
import trio.lowlevel

from .. import _wire
from ..exceptions import (
    AuthenticationError,
    ConnectionFailureException,
    NotFoundError,
    OqcError,
    RequestTooLarge,
    ServerException,
    TransportError,
)

__all__ = ["RESERVE_MAX_CHUNKS", "RESERVE_MAX_TASKS", "SubmitTicket", "Submitter", "blocks"]

log = logging.getLogger("oqc_trio.submit")

_TRANSIENT = (TransportError, ConnectionFailureException)
_GATHER_ROUNDS = 3
_MAX_BATCH = 50_000
# One ID reservation covers at most this many tasks and submit chunks. The chunk cap bounds
# the encoded bodies held while a block is submitted (8 x 128 KB); the task cap keeps the
# reservation's request and answer small (a v4 body repeats the QPU and tag per task).
RESERVE_MAX_TASKS = 1000
RESERVE_MAX_CHUNKS = 8
_SIZE_REFUSALS = frozenset({400, 413, 422})

_C = TypeVar("_C", bound=Sized)


def blocks(chunks: Iterable[_C]) -> Iterator[list[_C]]:
    """Group consecutive submit chunks into reservation blocks (what one ``POST /tasks``
    covers): up to :data:`RESERVE_MAX_CHUNKS` chunks and :data:`RESERVE_MAX_TASKS` tasks,
    or a single larger chunk. Lazy, like the chunks it reads."""
    block: list[_C] = []
    tasks = 0
    for chunk in chunks:
        if block and (tasks + len(chunk) > RESERVE_MAX_TASKS or len(block) == RESERVE_MAX_CHUNKS):
            yield block
            block, tasks = [], 0
        block.append(chunk)
        tasks += len(chunk)
    if block:
        yield block


@attrs.define(eq=False)
class SubmitTicket:
    """One job's submit request. The submitter writes the outcome; the job's actor reads it.

    ``task_id`` is set as soon as an ID is reserved (before the submit POST); ``confirmed``
    once the server accepted the task; ``error`` is the server's refusal ``(code, message)``;
    ``failure`` an error that stops the whole call (authentication), never a task failure.
    ``encode`` builds the task's body (without its ID) when the submitter gets to it, and
    ``encoded`` holds it only while its chunk is being sent, so a batch of 100,000 jobs never
    holds 100,000 encoded tasks at once. ``owner`` is the job the ticket is for (opaque
    here; hooks use it). ``order`` is the task's place in the sequence of submissions this
    submitter sent (its likely place in the QPU's queue), used by the poll scheduler to poll
    the oldest first. ``abandoned`` is set by an actor that left before its ticket settled
    (``settled``).
    """

    qpu_id: str
    task_base: str | None
    encode: Callable[[], bytes]
    task_id: str | None = None
    encoded: bytes | None = None
    confirmed: bool = False
    error: tuple[int, str] | None = None
    failure: OqcError | None = None
    owner: Any = None
    order: int | None = None
    abandoned: bool = False
    settled: bool = False
    # The actor parks on the ticket itself, not on a trio.Event (whose parking lot costs
    # ~0.9 KB) or a mailbox: 100,000 tickets are waited on at once when a large batch starts.
    _waiter: trio.lowlevel.Task | None = attrs.field(default=None, init=False, repr=False)

    def settle(self) -> None:
        """Mark the outcome final and wake the waiting actor (once)."""
        if not self.settled:
            self.settled = True
            waiter, self._waiter = self._waiter, None
            if waiter is not None:
                trio.lowlevel.reschedule(waiter)

    async def wait_settled(self) -> None:
        """Wait until the submitter has settled this ticket (cancellable; one waiter)."""
        if not self.settled:
            self._waiter = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)

    def _abort(self, _: Any) -> trio.lowlevel.Abort:
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED


ReservedHook = Callable[[Sequence[SubmitTicket]], Awaitable[None]]


class Submitter:
    """Batching submit service; run it with ``nursery.start_soon(submitter.run)``."""

    def __init__(
        self,
        send: Any,
        api: _wire.Api,
        *,
        max_body_bytes: int,
        concurrency: int = 4,
        deadline: float = float("inf"),
        on_reserved: ReservedHook | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._send = send
        self._api = api
        self._max_body = max_body_bytes
        self._slots = trio.Semaphore(concurrency)
        self._deadline = deadline
        self._on_reserved = on_reserved
        self._rng = rng or random.Random()
        self._inbox_send, self._inbox = trio.open_memory_channel[SubmitTicket](float("inf"))
        self._order = itertools.count()
        self.requests = 0
        # Set once the server refused a reservation for a whole block as too large.
        self.reserve_per_chunk = False

    def enqueue(self, ticket: SubmitTicket) -> None:
        """Queue a ticket; its actor then waits with :meth:`SubmitTicket.wait_settled`."""
        self._inbox_send.send_nowait(ticket)

    async def run(self) -> None:
        """Gather tickets into batches per QPU and submit them until cancelled."""
        async with trio.open_nursery() as nursery:
            async for first in self._inbox:
                batch = [first]
                # Let the other actors started in the same tick queue their tickets too.
                for _ in range(_GATHER_ROUNDS):
                    await trio.lowlevel.checkpoint()
                    while len(batch) < _MAX_BATCH:
                        try:
                            batch.append(self._inbox.receive_nowait())
                        except trio.WouldBlock:
                            break
                groups: dict[tuple[str, str | None], list[SubmitTicket]] = defaultdict(list)
                for ticket in batch:
                    groups[(ticket.qpu_id, ticket.task_base)].append(ticket)
                for tickets in groups.values():
                    for block in blocks(self._chunks(tickets)):
                        reservation = _Reservation(block, per_chunk=self.reserve_per_chunk)
                        for chunk in block:
                            await self._slots.acquire()
                            nursery.start_soon(self._settle_chunk, chunk, reservation)

    def _chunks(self, tickets: list[SubmitTicket]) -> Iterator[list[SubmitTicket]]:
        """Encode tickets one by one into size-bounded chunks; a task too large to be sent
        at all settles its ticket with :class:`RequestTooLarge` (nothing is sent for it)."""
        for chunk in _wire.chunk_tasks(
            ((ticket, ticket.encode()) for ticket in tickets),
            max_body_bytes=self._max_body,
            too_large=_refuse,
        ):
            for ticket, encoded in chunk:
                ticket.encoded = encoded
            yield [ticket for ticket, _ in chunk]

    async def _settle_chunk(self, tickets: list[SubmitTicket], reservation: _Reservation) -> None:
        try:
            await self._submit_chunk(tickets, reservation)
        except _TRANSIENT:
            # Out of time while the outcome is unknown: the tickets keep their reserved IDs,
            # unconfirmed, and the next execute reconciles them. Never a task failure.
            pass
        except AuthenticationError as exc:
            for ticket in tickets:
                ticket.failure = exc
        except ServerException as exc:
            for ticket in tickets:
                if not ticket.confirmed:
                    ticket.error = (exc.server_error_code, exc.message)
        finally:
            self._slots.release()
            for ticket in tickets:
                ticket.encoded = None
                ticket.settle()

    async def _request(self, request: _wire.Request) -> Any:
        self.requests += 1
        return await self._send(request, deadline=self._deadline)

    async def _backoff(self, attempt: int, exc: Exception) -> None:
        delay = min(8.0, 0.25 * 2**attempt) * self._rng.random()
        if isinstance(exc, ConnectionFailureException) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        if trio.current_time() + delay >= self._deadline:
            # Wait out the deadline: the caller's cancel scope fires at that very moment and
            # reports the timeout; raising early would end the call silently unsubmitted.
            await trio.sleep_until(self._deadline)
            raise exc
        await trio.sleep(delay)

    async def _submit_chunk(self, tickets: list[SubmitTicket], reservation: _Reservation) -> None:
        base = tickets[0].task_base
        pending = await self._reconcile([t for t in tickets if reservation.held_before(t)])
        await reservation.reserve(self, tickets)
        # A ticket whose actor has left (cancelled) is not sent: nobody would follow it. If
        # its ID was reserved, the job holds it unconfirmed, and the next call reconciles it.
        pending.extend(t for t in tickets if reservation.reserved(t) and not t.abandoned)
        attempt = 0
        while pending:
            body = _wire.submit_body(
                [_wire.with_task_id(t.encoded or b"", t.task_id or "") for t in pending]
            )
            try:
                await self._request(self._api.submit(base, body))
            except _TRANSIENT as exc:
                log.warning("submit of %d tasks is ambiguous (%s): reconciling", len(pending), exc)
                await self._backoff(attempt, exc)
                attempt += 1
                pending = await self._reconcile(pending)
                continue
            except AuthenticationError:
                raise
            except ServerException:
                # A refusal after an earlier ambiguous attempt (or a 409) may concern tasks
                # the server already holds: ask before calling anything failed.
                if attempt == 0:
                    raise
                pending = await self._reconcile(pending)
                if pending:
                    raise
                return
            self._confirm(pending)
            return

    def _confirm(self, tickets: list[SubmitTicket]) -> None:
        # Ordered by when the server acknowledged them: with several chunks in flight, that
        # is closer to its queue order than the order they were sent in.
        for ticket in tickets:
            ticket.confirmed = True
            if ticket.order is None:
                ticket.order = next(self._order)

    async def _reserve(self, qpu_id: str, base: str | None, tickets: list[SubmitTicket]) -> None:
        """Reserve an ID for each ticket (in as few requests as fit the body limit: a v4 body
        names the QPU once per ID), then hand them all to the hook at once."""
        ids: list[str] = []
        while len(ids) < len(tickets):
            count = len(tickets) - len(ids)
            request = self._api.create_task_ids(qpu_id, base, count)
            while count > 1 and len(request.body or b"") > self._max_body:
                count //= 2
                request = self._api.create_task_ids(qpu_id, base, count)
            # Retrying an ID reservation is safe: at worst the server keeps unused
            # placeholders, which never run and are never billed.
            attempt = 0
            while True:
                try:
                    response = await self._request(request)
                    ids += _wire.parse_task_ids(response.json(), self._api.dialect, count)
                    break
                except _TRANSIENT as exc:
                    await self._backoff(attempt, exc)
                    attempt += 1
        for ticket, task_id in zip(tickets, ids, strict=True):
            ticket.task_id = task_id
        if self._on_reserved is not None:
            with trio.CancelScope(shield=True):
                await self._on_reserved(tickets)

    async def _reconcile(self, tickets: list[SubmitTicket]) -> list[SubmitTicket]:
        """Ask the server about each reserved ID; return those it has never seen submitted.

        IDs whose status cannot be read are asked again (with backoff), never resubmitted.
        """
        unsent: list[SubmitTicket] = []
        unknown = list(tickets)
        attempt = 0
        while unknown:
            errors: list[Exception] = []
            still_unknown: list[SubmitTicket] = []
            async with trio.open_nursery() as nursery:
                for ticket in unknown:
                    nursery.start_soon(self._classify, ticket, unsent, still_unknown, errors)
            unknown = still_unknown
            if unknown:
                await self._backoff(attempt, errors[-1])
                attempt += 1
        return unsent

    async def _classify(
        self,
        ticket: SubmitTicket,
        unsent: list[SubmitTicket],
        unknown: list[SubmitTicket],
        errors: list[Exception],
    ) -> None:
        assert ticket.task_id is not None
        try:
            response = await self._request(
                self._api.task_field(ticket.task_base, ticket.task_id, "status")
            )
        except NotFoundError:
            unsent.append(ticket)  # reserved, then forgotten by the server: safe to send
            return
        except _TRANSIENT as exc:
            errors.append(exc)
            unknown.append(ticket)
            return
        payload = response.json()
        status = payload.get("status") if isinstance(payload, dict) else None
        if _wire.map_status(status) is _wire.JobState.CREATED:
            unsent.append(ticket)
        else:
            self._confirm([ticket])


class _Reservation:
    """The task IDs of one block of chunks, reserved once by whichever chunk comes first.

    Tickets that already held an ID when the block was formed (from an earlier call) are
    reconciled by their chunk instead. A failed reservation fails every chunk of the block
    the same way, as each chunk's own reservation would have; except that a server refusing
    the size of the request (400, 413, 422: its limit on IDs per request is not documented)
    makes each chunk reserve its own IDs, as the official SDK does.
    """

    __slots__ = ("_error", "_fresh", "_held", "_lock", "_per_chunk", "_qpu", "_several", "done")

    def __init__(self, block: list[list[SubmitTicket]], *, per_chunk: bool = False) -> None:
        self._held = {t for chunk in block for t in chunk if t.task_id is not None}
        self._fresh = [t for chunk in block for t in chunk if t.task_id is None]
        self._qpu = (block[0][0].qpu_id, block[0][0].task_base)
        self._several = len(block) > 1
        self._lock = trio.Lock()
        self._error: BaseException | None = None
        self._per_chunk = per_chunk
        self.done = False

    def held_before(self, ticket: SubmitTicket) -> bool:
        """The ticket had an ID from an earlier call (its task may exist: reconcile)."""
        return ticket in self._held

    def reserved(self, ticket: SubmitTicket) -> bool:
        """The ticket got its ID from this reservation."""
        return ticket.task_id is not None and ticket not in self._held

    async def reserve(self, submitter: Submitter, chunk: list[SubmitTicket]) -> None:
        """Make sure ``chunk``'s tickets have their IDs: the block's reservation, made once
        (later callers wait for it or see its error), or the chunk's own after a refusal."""
        async with self._lock:
            if self._error is not None:
                raise self._error
            if not self.done and not self._per_chunk:
                # A ticket whose actor has left by now gets no ID: nobody would record it.
                fresh = [t for t in self._fresh if not t.abandoned]
                try:
                    if fresh:
                        await submitter._reserve(*self._qpu, fresh)
                except ServerException as exc:
                    if not (self._several and _refuses_size(exc)):
                        self._error = exc
                        raise
                    log.warning(
                        "ID reservation for %d tasks refused (%s): per chunk from now on",
                        len(fresh),
                        exc,
                    )
                    self._per_chunk = submitter.reserve_per_chunk = True
                except BaseException as exc:
                    if not isinstance(exc, trio.Cancelled):
                        self._error = exc
                    raise
                else:
                    self.done = True
                    self._fresh = []
        if self._per_chunk:
            fresh = [t for t in chunk if t.task_id is None and not t.abandoned]
            if fresh:
                await submitter._reserve(*self._qpu, fresh)


def _refuses_size(error: ServerException) -> bool:
    """A refusal that a smaller request might not get (not an authentication failure)."""
    return not isinstance(error, AuthenticationError) and error.server_error_code in _SIZE_REFUSALS


def _refuse(ticket: SubmitTicket, error: RequestTooLarge) -> None:
    ticket.failure = error
    ticket.settle()
