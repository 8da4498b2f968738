"""How often the poll scheduler asks about in-flight tasks."""

from __future__ import annotations

import attrs

__all__ = ["PollPolicy"]


def _positive(_: object, attribute: attrs.Attribute, value: float) -> None:
    if not value > 0:
        raise ValueError(f"PollPolicy.{attribute.name} must be > 0, got {value!r}")


@attrs.frozen(kw_only=True)
class PollPolicy:
    """The poll schedule shared by all in-flight tasks of one execute call.

    - ``first_poll_s``: delay between a confirmed submission and its first status request.
    - ``max_interval_s``: cap of the jittered exponential backoff while a task is queued or
      running (the official SDK polls every job on a fixed, unjittered 0.2 s-doubling schedule
      capped at 10 s, all in lock-step).
    - ``front``: per QPU, how many of the oldest in-flight tasks are polled on that schedule.
      The others are *parked*: on a FIFO QPU they cannot finish before the ones ahead of them,
      so they enter the front as it drains and cost no requests meanwhile.
    - ``parked_interval_s``: parked tasks are still polled this rarely, so a server that does
      not run tasks in order is noticed.
    - ``concurrency``: status requests in flight at once (the transport's own cap also applies).
    """

    first_poll_s: float = attrs.field(default=0.05, validator=_positive)
    max_interval_s: float = attrs.field(default=10.0, validator=_positive)
    front: int = attrs.field(default=8, validator=_positive)
    parked_interval_s: float = attrs.field(default=60.0, validator=_positive)
    concurrency: int = attrs.field(default=8, validator=_positive)
