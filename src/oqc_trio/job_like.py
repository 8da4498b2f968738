"""The structural type shared by :class:`~oqc_trio.job.Job` and
:class:`~oqc_trio.job.CompositeJob`.

Annotate with :class:`JobLike` to accept either without branching on the concrete type.
Same members as the official SDK's protocol; ``execute`` here runs under trio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .job_output_proxy import JobOutputProxy

__all__ = ["JobLike"]


@runtime_checkable
class JobLike(Protocol):
    """Anything that can be executed, cancelled and asked for its outputs.

    ``isinstance(x, JobLike)`` checks that the members exist (not their signatures).
    """

    async def execute(self, *, timeout_s: float | None = None) -> JobOutputProxy:
        """Run to completion (or until ``timeout_s``) and return the outputs."""
        ...

    async def cancel(self) -> object:
        """Cancel the remote task(s)."""
        ...

    async def cancel_if_active(self) -> object:
        """Cancel the remote task(s) that have not ended yet."""
        ...

    @property
    def completed(self) -> bool:
        """True when every task completed without error."""
        ...

    @property
    def outputs(self) -> JobOutputProxy:
        """The outputs of the latest run."""
        ...
