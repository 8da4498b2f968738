"""The runner's Job objects: a batch has a handful of distinct configs but thousands of jobs.

:meth:`Job._encoded_task` serialises the job's ``CompilerConfig`` every time a task is encoded
(``to_json`` walks the whole config: about 30 µs, a third of the runner's own CPU per job
at 10,000 jobs). A batch job carries its config's wire form, computed once per batch config
by :class:`WireConfigs`, so it encodes exactly what ``Job`` would without that cost.
"""

from __future__ import annotations

from typing import Any

from ..config import config_to_wire
from ..job import Job

__all__ = ["BatchJob", "WireConfigs"]


class WireConfigs:
    """``config_to_wire`` of each config object of a batch, computed on first use."""

    def __init__(self, objects: list[Any]) -> None:
        self._objects = objects
        self._wire: list[tuple[str, dict[str, Any] | None] | None] = [None] * len(objects)

    def __getitem__(self, index: int) -> tuple[str, dict[str, Any] | None]:
        wire = self._wire[index]
        if wire is None:
            wire = self._wire[index] = config_to_wire(self._objects[index])
        return wire


class BatchJob(Job):
    """A :class:`~oqc_trio.job.Job` whose config's wire form was computed once for the batch.

    The config must not change while the job exists (the runner never reconfigures).
    """

    _wire_config: tuple[str, dict[str, Any] | None]

    def _config_on_wire(self) -> tuple[str, dict[str, Any] | None]:
        return self._wire_config
