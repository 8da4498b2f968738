"""Every public name of the official SDK exists in oqc_trio at the mirrored dotted path."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

OFFICIAL_ALL = {
    "OqcSdk",
    "Endianness",
    "bits",
    "Job",
    "CompositeJob",
    "JobState",
    "JobFailed",
    "JobLike",
    "JobSnapshot",
    "CompositeJobSnapshot",
    "ExperimentalConfig",
}

# (module, name) pairs from official-sdk-behaviour.md §a, with oqc_qcaas_sdk -> oqc_trio.
OFFICIAL_NAMES = [
    ("oqc_trio", name)
    for name in [*sorted(OFFICIAL_ALL), "EradoConfig", "ErasureModel", "IdlingErrorConfig"]
] + [
    ("oqc_trio.client", "OqcSdk"),
    ("oqc_trio.job", "Job"),
    ("oqc_trio.job", "CompositeJob"),
    ("oqc_trio.job", "JobState"),
    ("oqc_trio.job_output", "JobOutput"),
    ("oqc_trio.job_output", "JobResult"),
    ("oqc_trio.job_output", "JobError"),
    ("oqc_trio.job_output_proxy", "JobOutputProxy"),
    ("oqc_trio.job_output_proxy", "AttrPolicy"),
    ("oqc_trio.exceptions", "ServerException"),
    ("oqc_trio.exceptions", "JobFailed"),
    ("oqc_trio.dataarray_utils", "results_to_counts_dataarray"),
    ("oqc_trio.dataarray_utils", "filter_counts_dataarray"),
    ("oqc_trio.dataarray_utils", "Endianness"),
    ("oqc_trio.dataarray_utils", "bits"),
    ("oqc_trio.job_like", "JobLike"),
    ("oqc_trio.job_snapshot", "JobSnapshot"),
    ("oqc_trio.job_snapshot", "CompositeJobSnapshot"),
    ("oqc_trio.job_snapshot", "JobResultSnapshot"),
    ("oqc_trio.job_snapshot", "JobErrorSnapshot"),
    ("oqc_trio.job_snapshot", "JobOutputSnapshot"),
    ("oqc_trio.job_snapshot", "CURRENT_SCHEMA_VERSION"),
    ("oqc_trio.auth", "TokenCredential"),
    ("oqc_trio.auth", "AuthenticationError"),
]


JOB_MEMBERS = [
    "submit",
    "execute",
    "refresh",
    "wait",
    "cancel",
    "cancel_if_active",
    "reconfigure",
    "raise_for_status",
    "history",
    "outputs",
    "save",
    "to_snapshot",
    "state",
    "result",
    "error",
    "ended",
    "completed",
    "task_id",
    "tag",
    "hybrid_marker",
    "timings",
    "metrics",
    "metadata",
    "program",
    "qpu_id",
    "config",
]
COMPOSITE_MEMBERS = [
    "jobs",
    "add",
    "completed",
    "completed_jobs",
    "failed_jobs",
    "active_jobs",
    "terminal_jobs",
    "outputs",
    "execute",
    "cancel",
    "cancel_if_active",
    "to_snapshot",
    "save",
]
SDK_MEMBERS = [
    "open",
    "close",
    "default_qpu_id",
    "set_default_qpu",
    "list_qpus",
    "get_features",
    "get_system_status",
    "get_calibration",
    "get_next_window",
    "create_job",
    "from_snapshot",
    "load",
]


@pytest.mark.parametrize(("module", "name"), OFFICIAL_NAMES)
def test_official_name_exists_at_the_mirrored_path(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name)


def test_top_level_all_is_the_official_list() -> None:
    import oqc_trio

    assert set(oqc_trio.__all__) == OFFICIAL_ALL


def test_poll_policy_is_reachable_for_the_oqcsdk_option() -> None:
    from oqc_trio import OqcSdk, PollPolicy

    sdk = OqcSdk("http://127.0.0.1:1", poll_policy=PollPolicy(first_poll_s=0.005))
    assert sdk.poll_policy.first_poll_s == 0.005


@pytest.mark.parametrize(
    ("cls", "members"),
    [
        ("oqc_trio.job:Job", JOB_MEMBERS),
        ("oqc_trio.job:CompositeJob", COMPOSITE_MEMBERS),
        ("oqc_trio.client:OqcSdk", SDK_MEMBERS),
    ],
)
def test_runtime_classes_have_the_official_members(cls: str, members: list[str]) -> None:
    module, name = cls.split(":")
    target = getattr(importlib.import_module(module), name)
    missing = [m for m in members if not hasattr(target, m) and m not in _INSTANCE_ATTRS]
    assert not missing


_INSTANCE_ATTRS = {"task_id", "tag", "hybrid_marker", "timings", "metrics", "metadata", "program"}
_INSTANCE_ATTRS |= {"qpu_id", "config", "jobs"}


def test_job_and_composite_satisfy_joblike() -> None:
    from oqc_trio.job import CompositeJob, Job
    from oqc_trio.job_like import JobLike

    assert isinstance(Job("p", "q"), JobLike)
    assert isinstance(CompositeJob([]), JobLike)


def test_import_is_light() -> None:
    code = (
        "import sys, oqc_trio, oqc_trio.job_output, oqc_trio.job_output_proxy;"
        "heavy = [m for m in ('scipp', 'numpy', 'qiskit', 'qiskit_aer') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
