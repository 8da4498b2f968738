"""The runner's Job objects: a batch has a handful of distinct configs but thousands of jobs.

:meth:`Job._encoded_task` serialises the job's ``CompilerConfig`` every time a task is encoded
(``to_json`` walks the whole config: about 30 µs, a third of the runner's own CPU per job
at 10,000 jobs). A batch job carries its config's wire form, computed once per batch config
by :class:`WireConfigs`, and encodes exactly what ``Job`` would.
"""

from __future__ import annotations

from typing import Any

from .. import _wire
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

    def _encoded_task(self) -> bytes:
        config, external = self._wire_config
        return _wire.encode_task(
            _wire.task_dict(
                program=str(self.program),
                qpu_id=str(self.qpu_id),
                config=config,
                tag=self.tag,
                hybrid_marker=self.hybrid_marker,
                external_config=external,
            )
        )
