"""Conversion between live jobs and the snapshot models of :mod:`oqc_trio.job_snapshot`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._wire.status import JobState
from .config import config_from_snapshot, config_to_snapshot
from .job import CompositeJob, Job
from .job_output import JobError, JobOutput, JobResult
from .job_snapshot import (
    CURRENT_SCHEMA_VERSION,
    CompositeJobSnapshot,
    JobErrorSnapshot,
    JobResultSnapshot,
    JobSnapshot,
)

if TYPE_CHECKING:
    from .client import OqcSdk

__all__ = ["composite_to_snapshot", "from_snapshot", "job_to_snapshot"]


def _output_to_snapshot(output: JobOutput) -> JobResultSnapshot | JobErrorSnapshot:
    config_json, config_type = config_to_snapshot(output.compiler_config)
    common: dict[str, Any] = {
        "qpu_id": output.qpu_id,
        "task_id": output.task_id,
        "program": output.program,
        "received": output.received,
        "config_json": config_json,
        "config_type": config_type,
        "timings": output.timings,
        "metrics": output.metrics,
        "metadata": output.metadata,
    }
    if isinstance(output, JobResult):
        return JobResultSnapshot(data=dict(output.data), **common)
    if isinstance(output, JobError):
        return JobErrorSnapshot(
            error_code=output.error_code, error_message=output.error_message, **common
        )
    raise TypeError(f"cannot snapshot output of type {type(output).__name__}")


def job_to_snapshot(job: Job) -> JobSnapshot:
    """The job's whole state. A reserved but unconfirmed task ID is saved with state CREATED,
    so loading it reconciles with the server before anything is sent again."""
    config_json, config_type = config_to_snapshot(job.config)
    state = job.state
    if job.task_id is not None and not job._confirmed and not job.ended:
        state = JobState.CREATED
    history = [_output_to_snapshot(output) for output in job._history]
    return JobSnapshot(
        program=str(job.program),
        qpu_id=str(job.qpu_id),
        config_json=config_json,
        config_type=config_type,
        tag=job.tag,
        hybrid_marker=job.hybrid_marker,
        timings=job.timings,
        metrics=job.metrics,
        metadata=job.metadata,
        task_id=job.task_id,
        state=state,
        raise_on_error=job.raise_on_error,
        fetch_diagnostics=job.fetch_diagnostics,
        result=_output_to_snapshot(job.result) if job.result is not None else None,  # type: ignore[arg-type]
        error=_output_to_snapshot(job.error) if job.error is not None else None,  # type: ignore[arg-type]
        history=history,
    )


def composite_to_snapshot(composite: CompositeJob) -> CompositeJobSnapshot:
    """Every child's snapshot, in order."""
    return CompositeJobSnapshot(jobs=[job_to_snapshot(job) for job in composite.jobs])


def _output_from_snapshot(item: JobResultSnapshot | JobErrorSnapshot, job: Job) -> JobOutput:
    common: dict[str, Any] = {
        "qpu_id": item.qpu_id,
        "task_id": item.task_id,
        "program": item.program,
        "received": item.received,
        "compiler_config": config_from_snapshot(item.config_json, item.config_type),
        "job": job,
        "timings": item.timings,
        "metrics": item.metrics,
        "metadata": item.metadata,
    }
    if isinstance(item, JobResultSnapshot):
        return JobResult(data=item.data, **common)
    return JobError(error_code=item.error_code, error_message=item.error_message, **common)


def _job_from_snapshot(snapshot: JobSnapshot, sdk: OqcSdk | None) -> Job:
    job = Job(
        snapshot.program,
        snapshot.qpu_id,
        config_from_snapshot(snapshot.config_json, snapshot.config_type),
        task_id=snapshot.task_id,
        tag=snapshot.tag,
        hybrid_marker=snapshot.hybrid_marker,
        fetch_diagnostics=snapshot.fetch_diagnostics,
        _client=sdk,
    )
    job.timings, job.metrics, job.metadata = snapshot.timings, snapshot.metrics, snapshot.metadata
    job.raise_on_error = snapshot.raise_on_error
    job._state = snapshot.state
    job._confirmed = snapshot.task_id is not None and snapshot.state is not JobState.CREATED
    job._history = [_output_from_snapshot(item, job) for item in snapshot.history]
    last = job._history[-1] if job._history else None
    if snapshot.result is not None:
        restored = _output_from_snapshot(snapshot.result, job)
        job._result = last if isinstance(last, JobResult) and last == restored else restored  # type: ignore[assignment]
    if snapshot.error is not None:
        restored = _output_from_snapshot(snapshot.error, job)
        job._error = last if isinstance(last, JobError) and last == restored else restored  # type: ignore[assignment]
    return job


def from_snapshot(snapshot: Any, sdk: OqcSdk | None) -> Job | CompositeJob:
    """Rebuild a Job or CompositeJob bound to ``sdk``; submitted jobs resume by polling."""
    version = getattr(snapshot, "schema_version", None)
    if version != CURRENT_SCHEMA_VERSION:
        raise ValueError(
            f"unsupported snapshot schema_version {version!r}; "
            f"supported: {CURRENT_SCHEMA_VERSION!r}"
        )
    if isinstance(snapshot, CompositeJobSnapshot):
        return CompositeJob([_job_from_snapshot(child, sdk) for child in snapshot.jobs])
    if isinstance(snapshot, JobSnapshot):
        return _job_from_snapshot(snapshot, sdk)
    raise TypeError(
        f"expected a JobSnapshot or CompositeJobSnapshot, got {type(snapshot).__name__}"
    )
