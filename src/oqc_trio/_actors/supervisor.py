"""The supervisor: one nursery per execute call holding the submitter, the poll scheduler and
one actor per job. Nothing it starts outlives the call.

An actor is the only task that changes its job's state while the job is driven: it asks the
submitter for a task ID and submission, then receives status events from the scheduler in
its own mailbox and applies them. Failure to observe a task (transport errors, 404,
contract violations) never marks the task FAILED.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from ..exceptions import OqcError, RequestTooLarge, UnknownQpuError
from .mailbox import Mailbox
from .runtime import Runtime
from .scheduler import ObserveFailure, PollScheduler
from .submitter import Submitter, SubmitTicket

if TYPE_CHECKING:
    from ..job import Job

__all__ = ["Drive", "drive", "sole_error"]

FinishedHook = Callable[["Job"], Any]
_RESUMED_ORDER = -(10**12)
ReservedHook = Callable[[Sequence[SubmitTicket]], Awaitable[None]]


class Drive:
    """One execute call in progress: lets handles cancel or re-poll while actors own state."""

    def __init__(self, runtime: Runtime, deadline: float, on_reserved: ReservedHook | None):
        self.runtime = runtime
        self.scheduler = PollScheduler(runtime.send, runtime.api, runtime.policy, deadline=deadline)
        self.submitter = Submitter(
            runtime.send,
            runtime.api,
            max_body_bytes=runtime.max_body_bytes,
            concurrency=runtime.submit_concurrency,
            deadline=deadline,
            on_reserved=on_reserved,
        )
        self.observe_errors: list[tuple[Job, OqcError]] = []

    async def actor(
        self, job: Job, *, poll: bool, on_finished: FinishedHook | None, position: int = 0
    ) -> None:
        """Drive one job: submit if needed, then apply status events until it ends.

        ``position`` (the job's index in its batch) orders tasks submitted by an earlier call,
        whose place in the QPU queue is unknown, ahead of this call's submissions. Following
        the task is inlined here: one frame less per in-flight job is ~50 MB at 100,000."""
        job._attach(self)
        inbox: Mailbox | None = None
        try:
            if job._task_base is None and job.task_id is not None:
                # Restored from a snapshot: the QPU's task URL is not saved there.
                try:
                    job._task_base = self.runtime.task_base(job.qpu_id)
                except UnknownQpuError as exc:
                    self.observe_errors.append((job, exc))  # the other jobs carry on
                    return
            if job.state.ended:
                job._start_new_run()
            order = _RESUMED_ORDER + position
            if not job._confirmed:
                submitted_as = await self._submit(job)
                if job._confirmed and job._cancel_requested:
                    # cancel() came while the task was being submitted.
                    await self.cancel_remote([job])
                if not job._confirmed or not poll:
                    return
                order = order if submitted_as is None else submitted_as
            inbox = Mailbox()
            self.scheduler.watch(str(job.task_id), job._task_base, job.qpu_id, inbox, order)
            while True:
                event = await inbox.receive()
                if isinstance(event, ObserveFailure):
                    self.observe_errors.append((job, event.error))
                    return
                job._apply_info(event)
                if job.state.ended:
                    return
        finally:
            if inbox is not None:
                inbox.close()
                self.scheduler.unwatch(str(job.task_id))
            job._detach(self)
            if on_finished is not None and job.state.ended:
                on_finished(job)

    async def _submit(self, job: Job) -> int | None:
        """Hand the job to the submitter; return its place in the submission order."""
        base = self.runtime.task_base(job.qpu_id)
        ticket = SubmitTicket(
            qpu_id=job.qpu_id,
            task_base=base,
            encode=job._encoded_task,
            task_id=str(job.task_id) if job.task_id is not None else None,
            owner=job,
        )
        # enqueue + wait rather than ``submitter.submit``: one coroutine frame less per job
        # waiting for its submission (all of them, at the start of a large batch).
        self.submitter.enqueue(ticket)
        try:
            await ticket.wait_settled()
        finally:
            if not ticket.settled:
                ticket.abandoned = True
            job._apply_ticket(ticket, base)
        if isinstance(ticket.failure, RequestTooLarge):
            # This job alone can never be sent; the others carry on, and the call raises
            # at the end (as the official SDK's ValueError, nothing was sent for it).
            self.observe_errors.append((job, ticket.failure))
        elif ticket.failure is not None:
            raise ticket.failure
        return ticket.order

    async def cancel_remote(self, jobs: Sequence[Job]) -> None:
        """One ``cancel_many`` per QPU URL for the given jobs, then poll them at once."""
        groups: dict[str | None, list[str]] = {}
        for job in jobs:
            if job.task_id is not None and not job.state.ended:
                groups.setdefault(job._task_base, []).append(str(job.task_id))
        for base, ids in groups.items():
            await self.runtime.send(self.runtime.api.cancel_many(base, ids))
            self.scheduler.poll_soon(ids)


async def drive(
    jobs: Sequence[Job],
    runtime: Runtime,
    *,
    poll: bool = True,
    deadline: float = float("inf"),
    on_reserved: ReservedHook | None = None,
    on_finished: FinishedHook | None = None,
) -> list[tuple[Job, OqcError]]:
    """Run the supervisor nursery over ``jobs`` until each is settled (or the caller's cancel
    scope fires). Returns the jobs whose tasks could not be observed, with the reason."""
    state = Drive(runtime, deadline, on_reserved)
    try:
        async with trio.open_nursery() as services:
            services.start_soon(state.submitter.run)
            if poll:
                services.start_soon(state.scheduler.run)
            async with trio.open_nursery() as actors:
                for position, job in enumerate(jobs):
                    actors.start_soon(
                        partial(
                            state.actor,
                            job,
                            poll=poll,
                            on_finished=on_finished,
                            position=position,
                        )
                    )
            services.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise sole_error(group) from None
    return state.observe_errors


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def sole_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """Users see one error, not nested groups: the first leaf, preferring a
    KeyboardInterrupt, then an OqcError; the group itself when the leaves are of
    unrelated kinds (a bug, kept whole for its tracebacks)."""
    leaves = _leaves(group)
    for kind in (KeyboardInterrupt, OqcError):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0] if len({type(leaf) for leaf in leaves}) == 1 else group
