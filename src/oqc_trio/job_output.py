"""What a finished task left behind: :class:`JobResult` (counts) or :class:`JobError`.

Both are :class:`JobOutput` records with the official SDK's fields, constructor, ``repr``,
``to_dict`` keys and JSON form, so files written by either SDK load in the other.

How we differ from the official SDK:

- ``received`` is a timezone-aware UTC datetime (the official one is naive local time).
  Naive datetimes, given to the constructor or read from old JSON files, are taken as UTC.
- ``reexecute()`` never orphans a task: when the job already holds a task that has not
  ended (e.g. one started by ``resubmit()``), it waits for that task instead of
  reconfiguring the job and submitting another one.
- Equality compares every field except ``received`` and the ``job`` back-reference (the
  official compares only ``qpu_id``, ``task_id``, ``program`` and, for results, ``data``);
  compiler configs are compared by their JSON form.
- ``task_id`` also accepts a UUID string, and diagnostics (``timings``, ``metrics``,
  ``metadata``) may be given to the constructor as keywords.
- Without a job, ``resubmit()`` and ``reexecute()`` raise a clear ``RuntimeError``.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, Self

import attrs

from .dataarray_utils import Endianness, LengthMismatchPolicy

if TYPE_CHECKING:
    import scipp as sc
    from compiler_config.config import CompilerConfig

    from .job_output_proxy import JobOutputProxy

__all__ = ["JobError", "JobOutput", "JobResult"]

_UTC = datetime.UTC


class _JobHandle(Protocol):
    """What an output needs from the job it came from (satisfied by :class:`oqc_trio.job.Job`)."""

    @property
    def program(self) -> Any: ...

    @property
    def qpu_id(self) -> Any: ...

    @property
    def config(self) -> Any: ...

    @property
    def task_id(self) -> uuid.UUID | None: ...

    @property
    def ended(self) -> bool: ...

    def reconfigure(self, memento: JobOutput | None = None, **kwargs: Any) -> None: ...

    async def submit(self) -> Any: ...

    async def execute(self) -> Any: ...


def _utc(value: datetime.datetime | None) -> datetime.datetime:
    """``received`` as an aware UTC datetime: now when None, naive values taken as UTC."""
    if value is None:
        return datetime.datetime.now(_UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC)


def _task_uuid(value: uuid.UUID | str | None) -> uuid.UUID | None:
    """``task_id`` as a UUID (strings are parsed; None stays None)."""
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def _config_key(config: Any) -> Any:
    """Compare configs by what the service would receive: their JSON (identity otherwise)."""
    to_json = getattr(config, "to_json", None)
    return to_json() if callable(to_json) else config


def _iso(value: datetime.datetime | None) -> str | None:
    """ISO 8601 text of a datetime, None for None."""
    return value.isoformat() if value is not None else None


@attrs.define(init=False, repr=False, slots=False)
class JobOutput:
    """The outcome of one run of a job: the base of :class:`JobResult` and :class:`JobError`.

    ``qpu_id``, ``task_id``, ``compiler_config`` and ``program`` default to the values of
    ``job`` when one is given. ``received`` is when the output arrived (aware UTC; now by
    default). ``timings``, ``metrics`` and ``metadata`` hold diagnostics when the job fetched
    them. ``job`` refers back to the live job (not compared, not in ``repr``).

    ``await output`` returns the output itself, so code may treat outputs and coroutines
    alike, as with the official SDK.
    """

    qpu_id: str | None
    task_id: uuid.UUID | None = attrs.field(converter=_task_uuid)
    compiler_config: CompilerConfig | None = attrs.field(eq=_config_key)
    program: str | None
    received: datetime.datetime = attrs.field(converter=_utc, eq=False)
    timings: dict[str, Any] | None
    metrics: dict[str, Any] | None
    metadata: dict[str, Any] | None
    job: _JobHandle | None = attrs.field(eq=False)

    def __init__(
        self,
        qpu_id: str | None = None,
        task_id: uuid.UUID | str | None = None,
        compiler_config: CompilerConfig | None = None,
        program: str | None = None,
        received: datetime.datetime | None = None,
        job: _JobHandle | None = None,
        *,
        timings: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.__attrs_init__(
            **_base_fields(
                qpu_id, task_id, compiler_config, program, received, job, timings, metrics, metadata
            )
        )

    @property
    def ok(self) -> bool:
        """True unless this output is an error (``not bool(self)``)."""
        return not self

    @property
    def is_error(self) -> bool:
        """True when this output is an error (``bool(self)``)."""
        return bool(self)

    def _require_job(self, action: str) -> _JobHandle:
        """The job this output came from, or a ``RuntimeError`` naming ``action``."""
        if self.job is None:
            raise RuntimeError(
                f"cannot {action}: this {type(self).__name__} is not attached to a job "
                "(pass job= when creating or loading it)"
            )
        return self.job

    async def resubmit(self) -> Any:
        """Reconfigure the job from this output, submit it again and return the job.

        Does not wait for the new task; ``await output.reexecute()`` (or the job's
        ``execute()``) collects it. Raises ``RuntimeError`` without a job.
        """
        job = self._require_job("resubmit")
        job.reconfigure(memento=self)
        return await job.submit()

    async def reexecute(self) -> JobOutputProxy[Any]:
        """Run the job again from this output and return its outputs (``job.execute()``).

        Differs from the official SDK: if the job already holds a task that has not ended
        (for instance one started by :meth:`resubmit`), that task is waited for instead of
        being abandoned for a fresh submission. Otherwise the job is reconfigured from this
        output first. Raises ``RuntimeError`` without a job.
        """
        job = self._require_job("reexecute")
        if job.task_id is None or job.ended:
            job.reconfigure(memento=self)
        return await job.execute()

    def __await__(self) -> Generator[Any, None, Self]:
        """``await output`` evaluates to the output itself, without suspending."""
        return self
        yield  # pragma: no cover - makes this a generator function

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (official keys; ``task_id`` a string, ``received`` ISO)."""
        return {
            "qpu_id": self.qpu_id,
            "task_id": str(self.task_id) if self.task_id else None,
            "compiler_config": self.compiler_config,
            "program": self.program,
            "received": _iso(self.received),
            "timings": self.timings,
            "metrics": self.metrics,
            "metadata": self.metadata,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text, without ``compiler_config`` (as the official SDK)."""
        data = self.to_dict()
        del data["compiler_config"]
        return json.dumps(data)

    @classmethod
    def from_json(cls, json_str: str, job: _JobHandle | None = None) -> Self:
        """Rebuild an output from :meth:`to_json` text, optionally attached to ``job``.

        A naive ``received`` (as written by the official SDK) is read as UTC. Keys this
        class does not know are ignored; ``compiler_config`` comes from ``job`` if given.
        """
        data = json.loads(json_str)
        received = data.get("received")
        own = {name: data.get(name) for name in cls._own_json_keys()}
        return cls(
            qpu_id=data.get("qpu_id"),
            task_id=data.get("task_id") or None,
            program=data.get("program"),
            received=datetime.datetime.fromisoformat(received) if received else None,
            job=job,
            timings=data.get("timings"),
            metrics=data.get("metrics"),
            metadata=data.get("metadata"),
            **own,
        )

    @classmethod
    def _own_json_keys(cls) -> tuple[str, ...]:
        """Keys a subclass adds to :meth:`to_dict` and reads back in :meth:`from_json`."""
        return ()

    def __repr__(self) -> str:
        return f"JobOutput(task_id={self.task_id}, qpu_id={self.qpu_id!r})"


def _base_fields(
    qpu_id: str | None,
    task_id: uuid.UUID | str | None,
    compiler_config: CompilerConfig | None,
    program: str | None,
    received: datetime.datetime | None,
    job: _JobHandle | None,
    timings: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    """The base fields, with qpu_id/task_id/program/config taken from ``job`` when None."""
    if job is not None:
        qpu_id = qpu_id if qpu_id is not None else job.qpu_id
        task_id = task_id if task_id is not None else getattr(job, "task_id", None)
        program = program if program is not None else job.program
        compiler_config = compiler_config if compiler_config is not None else job.config
    return {
        "qpu_id": qpu_id,
        "task_id": task_id,
        "compiler_config": compiler_config,
        "program": program,
        "received": received,
        "timings": timings,
        "metrics": metrics,
        "metadata": metadata,
        "job": job,
    }


@attrs.define(init=False, repr=False, slots=False)
class JobResult(JobOutput):
    """A completed task's output: ``data`` is the server's ``results`` mapping.

    ``data`` maps each classical register to its ``{bitstring: count}`` mapping (with the
    default BinaryCount format). A result is always falsy (it is not an error), so
    ``result.ok`` is True. Equality also compares ``data``.
    """

    data: Mapping[str, Any] = attrs.field(factory=dict)

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        qpu_id: str | None = None,
        task_id: uuid.UUID | str | None = None,
        compiler_config: CompilerConfig | None = None,
        program: str | None = None,
        received: datetime.datetime | None = None,
        job: _JobHandle | None = None,
        *,
        timings: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.__attrs_init__(
            data=data if data is not None else {},
            **_base_fields(
                qpu_id, task_id, compiler_config, program, received, job, timings, metrics, metadata
            ),
        )

    @classmethod
    def from_job(cls, data: Mapping[str, Any], job: _JobHandle) -> Self:
        """A result holding ``data``, with qpu_id, task_id, program and config from ``job``."""
        return cls(data=data, job=job)

    @classmethod
    def _own_json_keys(cls) -> tuple[str, ...]:
        return ("data",)

    def __bool__(self) -> bool:
        """Always False: a result is not an error."""
        return False

    def to_dict(self) -> dict[str, Any]:
        """The base fields plus ``data``."""
        return {**super().to_dict(), "data": self.data}

    def to_counts_dataarray(
        self,
        creg: str,
        endianness: Endianness = Endianness.BIG,
        on_length_mismatch: LengthMismatchPolicy = "raise",
    ) -> sc.DataArray:
        """This result's counts of register ``creg`` as a one-row scipp DataArray.

        See :func:`oqc_trio.dataarray_utils.results_to_counts_dataarray` for the layout,
        ``endianness`` and ``on_length_mismatch``. Needs the BinaryCount results format
        (the SDK default). Imports scipp on first use; unlike the official SDK's, scipp is an
        extra here (``pip install 'oqc-trio[scipp]'``), and an ImportError names it.
        """
        from .dataarray_utils import results_to_counts_dataarray

        return results_to_counts_dataarray(
            [self], creg, endianness=endianness, on_length_mismatch=on_length_mismatch
        )

    def __repr__(self) -> str:
        keys = list(self.data.keys()) if self.data else []
        return (
            f"JobResult(task_id={self.task_id}, qpu_id={self.qpu_id!r}, "
            f"data_keys={keys}, received={_iso(self.received)!r})"
        )


@attrs.define(init=False, repr=False, slots=False)
class JobError(JobOutput):
    """A failed task's output: the server's ``error_code`` and ``error_message``.

    An error is truthy when it has a code (``bool(error)`` is ``error_code is not None``),
    so ``error.is_error`` is True for a real failure.
    """

    error_code: int | None = None
    error_message: str | None = None

    def __init__(
        self,
        error_code: int | None = None,
        error_message: str | None = None,
        qpu_id: str | None = None,
        task_id: uuid.UUID | str | None = None,
        compiler_config: CompilerConfig | None = None,
        program: str | None = None,
        received: datetime.datetime | None = None,
        job: _JobHandle | None = None,
        *,
        timings: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.__attrs_init__(
            error_code=error_code,
            error_message=error_message,
            **_base_fields(
                qpu_id, task_id, compiler_config, program, received, job, timings, metrics, metadata
            ),
        )

    @classmethod
    def from_job(
        cls,
        error_code: int | None = None,
        error_message: str | None = None,
        job: _JobHandle | None = None,
    ) -> Self:
        """An error with this code and message, with the other fields from ``job``."""
        return cls(error_code=error_code, error_message=error_message, job=job)

    @classmethod
    def _own_json_keys(cls) -> tuple[str, ...]:
        return ("error_code", "error_message")

    def __bool__(self) -> bool:
        """True when the error has a code."""
        return self.error_code is not None

    @property
    def short(self) -> str:
        """A compact ``"(code)message"`` form."""
        return f"({self.error_code}){self.error_message}"

    def to_dict(self) -> dict[str, Any]:
        """The base fields plus ``error_code`` and ``error_message``."""
        return {
            **super().to_dict(),
            "error_code": self.error_code,
            "error_message": self.error_message,
        }

    def __repr__(self) -> str:
        return (
            f"JobError(code={self.error_code}, message={self.error_message!r}, "
            f"task_id={self.task_id}, qpu_id={self.qpu_id!r}, received={_iso(self.received)!r})"
        )
