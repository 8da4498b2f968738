"""What the actors need from the SDK, bundled so they never import the client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from .. import _wire
from .policy import PollPolicy

__all__ = ["Runtime"]


@attrs.frozen
class Runtime:
    """The SDK's services as seen by actors: send a request, build requests, where a QPU's
    task endpoints live, the poll policy and the largest submit body allowed."""

    send: Callable[..., Awaitable[Any]]
    api: _wire.Api
    task_base: Callable[[str], str | None]
    policy: PollPolicy
    max_body_bytes: int
    submit_concurrency: int = 4
