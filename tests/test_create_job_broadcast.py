"""``create_job`` with lists builds children holding plain ``str`` values (#26).

The official SDK broadcasts its inputs with ``numpy.broadcast``: lists of equal length are
zipped and every child's ``program`` and ``qpu_id`` is a ``numpy.str_`` (equality with ``str``
holds, but ``type(x) is str``, JSON encoders, ``repr`` and some hashing users do not). oqc-trio
builds every combination (program outermost, then QPU, then config) from plain Python values.
Numpy inputs (``numpy.str_`` scalars or elements, arrays of str) must never leak into a job.
``create_job`` does no I/O, so no server is needed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from oqc_trio.client import OqcSdk
from oqc_trio.job import CompositeJob, Job

PROGRAM_A = "OPENQASM 2.0;\nqreg q[1];\ncreg c[1];\nmeasure q -> c;\n"
PROGRAM_B = "OPENQASM 2.0;\nqreg q[2];\ncreg c[2];\nmeasure q -> c;\n"
QPU_1 = "qpu:uk:2:d865b5a184"
QPU_2 = "qpu:uk:3:9829a5504f"


@pytest.fixture
def sdk() -> OqcSdk:
    return OqcSdk("http://127.0.0.1:9", authentication_token="tok")  # never opened


def children(made: Job | CompositeJob) -> list[Job]:
    assert isinstance(made, CompositeJob)
    return made.jobs


def assert_plain(jobs: list[Job]) -> None:
    for job in jobs:
        assert type(job.program) is str, type(job.program)
        assert type(job.qpu_id) is str, type(job.qpu_id)


def test_two_lists_give_every_combination_of_plain_str(sdk: OqcSdk) -> None:
    jobs = children(sdk.create_job(program=[PROGRAM_A, PROGRAM_B], qpu_id=[QPU_1, QPU_2]))
    # All four combinations, program outermost (numpy would zip them into two).
    assert [(j.program, j.qpu_id) for j in jobs] == [
        (PROGRAM_A, QPU_1),
        (PROGRAM_A, QPU_2),
        (PROGRAM_B, QPU_1),
        (PROGRAM_B, QPU_2),
    ]
    assert_plain(jobs)
    # Plain values behave as plain values: JSON, repr, hashing, identity of type.
    assert json.loads(json.dumps([j.program for j in jobs])) == [j.program for j in jobs]
    assert "np.str_" not in repr([j.qpu_id for j in jobs])
    assert len({j.qpu_id for j in jobs}) == 2


def test_one_list_and_one_scalar_give_plain_str(sdk: OqcSdk) -> None:
    jobs = children(sdk.create_job(program=[PROGRAM_A, PROGRAM_B, PROGRAM_A], qpu_id=QPU_2))
    assert [j.qpu_id for j in jobs] == [QPU_2] * 3
    assert_plain(jobs)
    jobs = children(sdk.create_job(program=PROGRAM_B, qpu_id=(QPU_1, QPU_2)))
    assert [j.program for j in jobs] == [PROGRAM_B] * 2
    assert_plain(jobs)


def test_numpy_str_elements_are_turned_into_plain_str(sdk: OqcSdk) -> None:
    """Values that already are ``numpy.str_`` (e.g. taken from an array) come out as ``str``."""
    programs = list(np.array([PROGRAM_A, PROGRAM_B]))
    qpus = list(np.array([QPU_1, QPU_2]))
    assert type(programs[0]) is np.str_ and type(qpus[0]) is np.str_
    jobs = children(sdk.create_job(program=programs, qpu_id=qpus))
    assert len(jobs) == 4
    assert_plain(jobs)
    assert [j.qpu_id for j in jobs] == [QPU_1, QPU_2, QPU_1, QPU_2]


def test_numpy_str_scalars_give_a_single_job_of_plain_str(sdk: OqcSdk) -> None:
    job = sdk.create_job(program=np.str_(PROGRAM_A), qpu_id=np.str_(QPU_1))
    assert isinstance(job, Job)
    assert_plain([job])
    assert (job.program, job.qpu_id) == (PROGRAM_A, QPU_1)


def test_default_qpu_is_used_as_plain_str(sdk: OqcSdk) -> None:
    sdk.set_default_qpu(np.str_(QPU_2))  # type: ignore[arg-type]
    jobs = children(sdk.create_job(program=[PROGRAM_A, PROGRAM_B]))
    assert [j.qpu_id for j in jobs] == [QPU_2, QPU_2]
    assert_plain(jobs)


def test_a_numpy_array_of_programs_never_leaks_numpy_values(sdk: OqcSdk) -> None:
    """An array of programs is either refused with a ``TypeError`` or taken like a list, its
    children holding plain ``str``."""
    try:
        made = sdk.create_job(program=np.array([PROGRAM_A, PROGRAM_B]), qpu_id=QPU_1)
    except TypeError as exc:
        assert "program" in str(exc)
        return
    jobs = children(made)
    assert [j.program for j in jobs] == [PROGRAM_A, PROGRAM_B]
    assert_plain(jobs)


@pytest.mark.parametrize("qpus", [[QPU_1], [QPU_1, QPU_2]], ids=["one", "two"])
def test_a_numpy_array_of_qpu_ids_is_a_list_or_a_type_error(sdk: OqcSdk, qpus: list[str]) -> None:
    try:
        made = sdk.create_job(program=PROGRAM_A, qpu_id=np.array(qpus))
    except TypeError as exc:
        assert "qpu_id" in str(exc)
        return
    jobs = made.jobs if isinstance(made, CompositeJob) else [made]
    assert [j.qpu_id for j in jobs] == qpus
    assert_plain(jobs)
