"""oqc-trio: run quantum programs on OQC QCaaS at volume, natively under trio.

The public names mirror OQC's official ``oqc_qcaas_sdk`` package (same names, same dotted
paths with ``oqc_qcaas_sdk`` replaced by ``oqc_trio``). They are imported lazily, so
``import oqc_trio`` is cheap and never imports scipp, numpy or qiskit.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "CompositeJob",
    "CompositeJobSnapshot",
    "Endianness",
    "ExperimentalConfig",
    "Job",
    "JobFailed",
    "JobLike",
    "JobSnapshot",
    "JobState",
    "OqcSdk",
    "bits",
]

# name -> module holding it. EradoConfig & co. are reachable as in the official package, but
# (as there) not listed in __all__; so is PollPolicy, our own option of OqcSdk.
_LAZY = {
    "OqcSdk": "oqc_trio.client",
    "PollPolicy": "oqc_trio._actors.policy",
    "Endianness": "oqc_trio.dataarray_utils",
    "bits": "oqc_trio.dataarray_utils",
    "Job": "oqc_trio.job",
    "CompositeJob": "oqc_trio.job",
    "JobState": "oqc_trio.job",
    "JobFailed": "oqc_trio.exceptions",
    "JobLike": "oqc_trio.job_like",
    "JobSnapshot": "oqc_trio.job_snapshot",
    "CompositeJobSnapshot": "oqc_trio.job_snapshot",
    "ExperimentalConfig": "oqc_trio.config",
    "EradoConfig": "compiler_config.experimental.erado.config",
    "ErasureModel": "compiler_config.experimental.erado.config",
    "IdlingErrorConfig": "compiler_config.experimental.erado.config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'oqc_trio' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:
    from compiler_config.experimental.erado.config import (  # noqa: F401
        EradoConfig,
        ErasureModel,
        IdlingErrorConfig,
    )

    from ._actors.policy import PollPolicy  # noqa: F401  (reachable, not in __all__)
    from .client import OqcSdk
    from .config import ExperimentalConfig
    from .dataarray_utils import Endianness, bits
    from .exceptions import JobFailed
    from .job import CompositeJob, Job, JobState
    from .job_like import JobLike
    from .job_snapshot import CompositeJobSnapshot, JobSnapshot
