"""JobOutputProxy: sequence protocol, accessors, error checks, counts, attribute policies."""

from __future__ import annotations

import copy
import pickle
import uuid
import warnings

import pytest

from oqc_trio.dataarray_utils import Endianness
from oqc_trio.exceptions import JobFailed
from oqc_trio.job_like import JobLike
from oqc_trio.job_output import JobError, JobOutput, JobResult
from oqc_trio.job_output_proxy import AttrPolicy, JobOutputProxy

TASK = uuid.UUID("aaaaaaaa-0000-4000-8000-000000000001")


def ok(counts: dict[str, int] | None = None, qpu: str = "qpu:a") -> JobResult:
    return JobResult({"c": counts or {"0": 1}}, qpu, uuid.uuid4())


def fail(code: int | None = 500, message: str = "boom", task_id=TASK) -> JobError:
    return JobError(code, message, "qpu:b", task_id)


# --- construction and sequence protocol ----------------------------------------------------


def test_accepts_nothing_one_output_a_list_or_any_iterable():
    a, b = ok(), fail()
    assert list(JobOutputProxy()) == []
    assert list(JobOutputProxy(a)) == [a]
    assert list(JobOutputProxy([a, b])) == [a, b]
    assert list(JobOutputProxy(x for x in (b, a))) == [b, a]
    assert list(JobOutputProxy((a,))) == [a]


def test_a_given_list_is_copied():
    items: list[JobOutput] = [ok()]
    proxy: JobOutputProxy[JobOutput] = JobOutputProxy(items)
    proxy.append(fail())
    assert len(items) == 1
    assert len(proxy) == 2


def test_indexing_slicing_prepend_append():
    a, b, c = ok(), ok(), fail()
    proxy: JobOutputProxy[JobOutput] = JobOutputProxy([b], attr_policy=AttrPolicy.FIRST)
    proxy.prepend(a)
    proxy.append(c)
    assert (proxy[0], proxy[1], proxy[-1]) == (a, b, c)
    tail = proxy[1:]
    assert isinstance(tail, JobOutputProxy)
    assert list(tail) == [b, c]
    assert tail.attr_policy is AttrPolicy.FIRST
    with pytest.raises(IndexError):
        proxy[3]


def test_first_last_and_empty():
    a, b = ok(), fail()
    proxy = JobOutputProxy([a, b])
    assert (proxy.first, proxy.last) == (a, b)
    for name in ("first", "last"):
        with pytest.raises(IndexError, match="No outputs"):
            getattr(JobOutputProxy(), name)


def test_one_is_a_property_and_its_error_says_dot_one():
    a = ok()
    assert JobOutputProxy(a).one is a
    for items in ([], [a, ok()]):
        with pytest.raises(ValueError, match=r"\.one needs exactly 1 output") as info:
            JobOutputProxy(items).one  # noqa: B018
        assert ".one()" not in str(info.value)


def test_is_single_instance():
    assert JobOutputProxy(ok()).is_single_instance
    assert not JobOutputProxy().is_single_instance
    assert not JobOutputProxy([ok(), ok()]).is_single_instance


def test_all_map_filter_errors_results():
    a, b, c = ok(qpu="x"), fail(), ok(qpu="y")
    proxy = JobOutputProxy([a, b, c], attr_policy=AttrPolicy.WARN_FIRST)
    everything = proxy.all()
    everything.clear()
    assert len(proxy) == 3
    assert proxy.map(lambda o: o.qpu_id) == ["x", "qpu:b", "y"]
    kept = proxy.filter(lambda o: o.qpu_id != "qpu:b")
    assert list(kept) == [a, c] and kept.attr_policy is AttrPolicy.WARN_FIRST
    assert list(proxy.errors()) == [b] and proxy.errors().attr_policy is AttrPolicy.WARN_FIRST
    assert list(proxy.results()) == [a, c]


def test_repr_matches_the_official_shape():
    output = JobOutput("q", TASK)
    assert repr(JobOutputProxy(output, AttrPolicy.FIRST)) == (
        f"JobOutputProxy([JobOutput(task_id={TASK}, qpu_id='q')], attr_policy=FIRST)"
    )


def test_copy_and_pickle_do_not_recurse_through_delegation():
    proxy = JobOutputProxy([JobError(1, "m")], attr_policy=AttrPolicy.FIRST)
    assert list(copy.copy(proxy)) == list(proxy)
    clone = pickle.loads(pickle.dumps(proxy))
    assert clone.attr_policy is AttrPolicy.FIRST
    assert clone.one == proxy.one


# --- error checks --------------------------------------------------------------------------


def test_any_error_and_all_ok_follow_truthiness():
    assert not JobOutputProxy().any_error and JobOutputProxy().all_ok
    assert not JobOutputProxy([ok(), fail(code=None)]).any_error
    assert JobOutputProxy([ok(), fail(code=None)]).all_ok
    mixed = JobOutputProxy([ok(), fail()])
    assert mixed.any_error and not mixed.all_ok


def test_raise_for_error_returns_self_when_nothing_failed():
    proxy = JobOutputProxy([ok(), fail(code=None)])
    assert proxy.raise_for_error() is proxy


def test_raise_for_error_raises_job_failed_for_the_first_error():
    proxy = JobOutputProxy([ok(), fail(code=None), fail(401, "denied"), fail(500, "later")])
    with pytest.raises(JobFailed) as info:
        proxy.raise_for_error()
    error = info.value
    assert (error.task_id, error.qpu_id, error.code, error.details) == (
        str(TASK),
        "qpu:b",
        401,
        "denied",
    )
    assert isinstance(error, RuntimeError)


def test_raise_for_error_names_unsubmitted_tasks_and_is_caught_as_runtime_error():
    with pytest.raises(RuntimeError) as info:
        JobOutputProxy(fail(7, "never ran", task_id=None)).raise_for_error()
    assert isinstance(info.value, JobFailed)
    assert info.value.task_id == "<unsubmitted>"
    assert str(info.value) == "JobFailed(task_id=<unsubmitted>, qpu_id=qpu:b, code=7, never ran)"


# --- counts --------------------------------------------------------------------------------


def test_to_counts_dataarray_skips_errors_with_a_warning_at_the_caller():
    proxy = JobOutputProxy([ok({"01": 2}), fail(), ok({"11": 3})])
    with pytest.warns(UserWarning, match="1 output") as record:
        da = proxy.to_counts_dataarray("c", Endianness.LITTLE)
    assert record[0].filename == __file__
    assert da.values.tolist() == [[2, 0], [0, 3]]
    assert list(da.coords["bitstring"].values) == ["10", "11"]


def test_to_counts_dataarray_does_not_warn_without_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        da = JobOutputProxy([ok({"1": 1})]).to_counts_dataarray("c")
    assert da.values.tolist() == [[1]]


def test_to_counts_dataarray_of_only_errors_is_a_value_error():
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no results"):
        JobOutputProxy([fail()]).to_counts_dataarray("c")


def test_to_counts_dataarray_passes_the_length_policy():
    proxy = JobOutputProxy([ok({"1": 1}), ok({"011": 2})])
    with pytest.raises(ValueError, match="different lengths"):
        proxy.to_counts_dataarray("c")
    padded = proxy.to_counts_dataarray("c", on_length_mismatch="pad")
    assert padded.values.tolist() == [[1, 0], [0, 2]]
    assert list(padded.coords["bitstring"].values) == ["001", "011"]


def test_like_filters_by_pattern_in_the_requested_endianness():
    proxy = JobOutputProxy([ok({"001": 5, "100": 6, "101": 7}), fail()])
    with pytest.warns(UserWarning) as record:
        big = proxy.like("1**", "c")
    assert record[0].filename == __file__
    assert list(big.coords["bitstring"].values) == ["100", "101"]
    assert big.values.tolist() == [[6, 7]]
    with pytest.warns(UserWarning):
        little = proxy.like("1**", "c", Endianness.LITTLE)
    assert list(little.coords["bitstring"].values) == ["100", "101"]
    assert list(little.coords["bit"].values) == [1, 5]


def test_like_pattern_must_match_the_padded_width():
    proxy = JobOutputProxy([ok({"1": 1, "110": 2})])
    assert proxy.like("**1", "c", on_length_mismatch="pad").values.tolist() == [[1]]
    with pytest.raises(ValueError, match="has 1 characters"):
        proxy.like("1", "c", on_length_mismatch="pad")


# --- attribute delegation ------------------------------------------------------------------


def test_empty_proxy_has_no_output_attributes():
    with pytest.raises(AttributeError, match="no attribute 'qpu_id'"):
        JobOutputProxy().qpu_id  # noqa: B018


def test_single_item_lends_its_attributes_whatever_the_policy():
    error = fail(403, "forbidden")
    for policy in AttrPolicy:
        proxy = JobOutputProxy(error, attr_policy=policy)
        assert (proxy.error_code, proxy.short, proxy.is_error) == (403, "(403)forbidden", True)
    with pytest.raises(AttributeError):
        JobOutputProxy(error).data  # noqa: B018


def test_raise_policy_refuses_ambiguous_and_unknown_attributes():
    proxy = JobOutputProxy([ok(), ok()])
    with pytest.raises(AttributeError, match=r"ambiguous.*2 outputs.*Use \.one,") as info:
        proxy.data  # noqa: B018
    assert ".one()" not in str(info.value)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        proxy.nonsense  # noqa: B018


def test_warn_first_policy_warns_and_returns_the_first_value():
    a, b = ok({"0": 1}), ok({"1": 2})
    proxy = JobOutputProxy([a, b], attr_policy=AttrPolicy.WARN_FIRST)
    with pytest.warns(UserWarning, match="data read with 2 items") as record:
        assert proxy.data is a.data
    assert record[0].filename == __file__


def test_first_policy_is_silent_and_the_policy_can_be_changed():
    a, b = ok(qpu="one"), ok(qpu="two")
    proxy = JobOutputProxy([a, b])
    proxy.attr_policy = AttrPolicy.FIRST
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert proxy.qpu_id == "one"
    proxy.attr_policy = AttrPolicy.RAISE
    with pytest.raises(AttributeError):
        proxy.qpu_id  # noqa: B018


def test_own_members_are_not_delegated():
    proxy = JobOutputProxy([JobError(1, "a"), JobError(2, "b")])
    assert proxy.first.error_code == 1
    assert proxy.any_error
    assert proxy.attr_policy is AttrPolicy.RAISE


# --- JobLike -------------------------------------------------------------------------------


class _Runnable:
    async def execute(self, *, timeout_s: float | None = None) -> JobOutputProxy:
        return JobOutputProxy()

    async def cancel(self) -> object:
        return self

    async def cancel_if_active(self) -> object:
        return self

    @property
    def completed(self) -> bool:
        return True

    @property
    def outputs(self) -> JobOutputProxy:
        return JobOutputProxy()


class _NotCancellable:
    async def execute(self, *, timeout_s: float | None = None) -> JobOutputProxy:
        return JobOutputProxy()

    completed = True
    outputs: JobOutputProxy[JobOutput] = JobOutputProxy()


def test_job_like_is_a_runtime_checkable_protocol():
    assert isinstance(_Runnable(), JobLike)
    assert not isinstance(_NotCancellable(), JobLike)
    assert not isinstance(JobResult(), JobLike)
