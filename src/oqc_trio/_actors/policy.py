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

    Each QPU's in-flight tasks form a *lane* in submission order. The scheduler polls a lane
    in *waves*: the oldest unfinished tasks, as many as it expects to have finished since the
    last wave (from the lane's measured completion rate), about every ``wave_target``
    completions. A wave that finds all its tasks done means the scheduler is behind: the
    next wave follows at once and is twice as large. A wave that finds nothing done backs off
    exponentially. Tasks deeper in the lane are polled only by a slow safety schedule, so a
    server that finishes tasks out of order is still noticed. The official SDK, by
    contrast, polls every job on its own unjittered 0.2 s-doubling schedule, in lock-step.

    - ``first_poll_s``: delay of a lane's first wave after its first submission.
    - ``max_interval_s``: longest gap between two waves of a lane (bounds the lag between a
      task finishing and the client seeing it).
    - ``front``: size of a lane's first wave, before any completion rate is known.
    - ``wave_target``: completions a wave aims to collect once the rate is known (the poll
      that finds the next task unfinished is the overhead: about 1 / wave_target).
    - ``max_wave``: the largest wave.
    - ``parked_interval_s`` / ``max_parked_interval_s``: first and longest interval of the
      safety polls of tasks no wave has reached (doubling in between).
    - ``concurrency``: status requests in flight at once (the transport's own cap also applies).
    """

    first_poll_s: float = attrs.field(default=0.05, validator=_positive)
    max_interval_s: float = attrs.field(default=10.0, validator=_positive)
    front: int = attrs.field(default=8, validator=_positive)
    wave_target: int = attrs.field(default=16, validator=_positive)
    max_wave: int = attrs.field(default=512, validator=_positive)
    parked_interval_s: float = attrs.field(default=60.0, validator=_positive)
    max_parked_interval_s: float = attrs.field(default=1800.0, validator=_positive)
    concurrency: int = attrs.field(default=8, validator=_positive)
