"""Counts helpers: layout, validation, endianness, padding, filtering, lazy scipp import."""

from __future__ import annotations

import enum
import subprocess
import sys
import textwrap

import pytest
import scipp as sc
from compiler_config.config import CompilerConfig, QuantumResultsFormat
from hypothesis import given
from hypothesis import strategies as st

from oqc_trio.dataarray_utils import (
    Endianness,
    bits,
    filter_counts_dataarray,
    results_to_counts_dataarray,
)
from oqc_trio.job_output import JobResult


def results(*counts: dict[str, int], creg: str = "c") -> list[JobResult]:
    return [JobResult(data={creg: c}) for c in counts]


def labels(da: sc.DataArray) -> list[str]:
    return [str(x) for x in da.coords["bitstring"].values]


def test_endianness_is_a_plain_enum_like_the_official():
    assert issubclass(Endianness, enum.Enum)
    assert not issubclass(Endianness, str)
    assert Endianness.BIG.value == "big"
    assert Endianness.LITTLE.value == "little"
    assert Endianness("little") is Endianness.LITTLE


def test_layout_union_of_columns_sorted_by_integer_value_absent_is_zero():
    da = results_to_counts_dataarray(results({"11": 5, "01": 2}, {"00": 7}), "c")
    assert da.dims == ("result", "bit")
    assert labels(da) == ["00", "01", "11"]
    assert list(da.coords["bit"].values) == [0, 1, 3]
    assert list(da.coords["result"].values) == [0, 1]
    assert da.values.tolist() == [[0, 2, 5], [7, 0, 0]]
    assert da.unit is None


def test_little_endian_changes_labels_not_bit_values():
    da = results_to_counts_dataarray(results({"001": 4, "110": 1}), "c", Endianness.LITTLE)
    assert labels(da) == ["100", "011"]
    assert list(da.coords["bit"].values) == [1, 6]
    assert da.values.tolist() == [[4, 1]]


def test_register_selection_ignores_other_registers():
    data = [JobResult(data={"a": {"0": 1}, "b": {"10": 3}})]
    da = results_to_counts_dataarray(data, "b")
    assert labels(da) == ["10"]
    assert da.values.tolist() == [[3]]


def test_register_missing_from_some_results_gives_zero_rows():
    data = [JobResult(data={"c": {"1": 2}}), JobResult(data={"other": {"1": 9}})]
    assert results_to_counts_dataarray(data, "c").values.tolist() == [[2], [0]]


def test_empty_input_is_rejected():
    with pytest.raises(ValueError, match="no results"):
        results_to_counts_dataarray([], "c")


@pytest.mark.parametrize("policy", ["ignore", "PAD", ""])
def test_unknown_length_policy_is_rejected(policy):
    with pytest.raises(ValueError, match="on_length_mismatch"):
        results_to_counts_dataarray(results({"0": 1}), "c", on_length_mismatch=policy)


def test_register_absent_everywhere_is_a_key_error():
    with pytest.raises(KeyError, match="'q'"):
        results_to_counts_dataarray(results({"0": 1}), "q")


def test_mixed_lengths_raise_by_default():
    with pytest.raises(ValueError, match=r"\[1, 3\]"):
        results_to_counts_dataarray(results({"1": 1}, {"101": 1}), "c")


def test_pad_left_pads_and_merges_counts_that_coincide():
    da = results_to_counts_dataarray(
        results({"1": 3, "001": 4, "110": 1}, {"10": 2}), "c", on_length_mismatch="pad"
    )
    assert labels(da) == ["001", "010", "110"]
    assert da.values.tolist() == [[7, 0, 1], [0, 2, 0]]


def test_config_without_binary_count_is_rejected():
    plain = CompilerConfig(results_format=QuantumResultsFormat().binary())
    data = [JobResult(data={"c": {"0": 1}}), JobResult(data={"c": {"0": 1}}, compiler_config=plain)]
    with pytest.raises(ValueError, match=r"result 1 .*BinaryCount"):
        results_to_counts_dataarray(data, "c")


def test_config_with_binary_count_and_no_config_both_pass():
    counted = CompilerConfig(results_format=QuantumResultsFormat().binary_count())
    data = [
        JobResult(data={"c": {"0": 1}}, compiler_config=counted),
        JobResult(data={"c": {"1": 2}}),
    ]
    assert results_to_counts_dataarray(data, "c").values.tolist() == [[1, 0], [0, 2]]


def test_bits_gives_the_big_endian_value_whatever_the_input_order():
    assert bits("011").value == 3
    assert bits("110", Endianness.LITTLE).value == 3
    assert bits("011").unit is None


def test_bits_selects_a_column_by_label():
    da = results_to_counts_dataarray(results({"01": 2, "10": 9}), "c", Endianness.LITTLE)
    assert da["bit", bits("10", Endianness.LITTLE)].values.tolist() == [2]


@pytest.mark.parametrize("bad", ["", "012", "1 0", "abc"])
def test_bits_rejects_non_bitstrings(bad):
    with pytest.raises(ValueError):
        bits(bad)


def test_filter_keeps_matching_columns_with_their_coords():
    da = results_to_counts_dataarray(results({"000": 1, "101": 2, "111": 3}, {"100": 4}), "c")
    kept = filter_counts_dataarray(da, "1*1")
    assert labels(kept) == ["101", "111"]
    assert list(kept.coords["bit"].values) == [5, 7]
    assert kept.values.tolist() == [[2, 3], [0, 0]]
    assert list(kept.coords["result"].values) == [0, 1]


def test_filter_without_match_gives_zero_width_array():
    da = results_to_counts_dataarray(results({"00": 1}, {"01": 1}), "c")
    empty = filter_counts_dataarray(da, "11")
    assert empty.sizes == {"result": 2, "bit": 0}
    assert labels(empty) == []


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("", "empty"), ("1x", "may only contain"), ("1", "has 1 characters"), ("***", "has 3")],
)
def test_filter_rejects_bad_patterns(pattern, message):
    da = results_to_counts_dataarray(results({"00": 1}), "c")
    with pytest.raises(ValueError, match=message):
        filter_counts_dataarray(da, pattern)


bitstrings4 = st.text(alphabet="01", min_size=4, max_size=4)
counts4 = st.dictionaries(bitstrings4, st.integers(1, 1000), min_size=1, max_size=8)


@given(st.lists(counts4, min_size=1, max_size=4), st.sampled_from(list(Endianness)))
def test_conversion_preserves_every_count(rows, endianness):
    da = results_to_counts_dataarray(results(*rows), "c", endianness)
    values = list(da.coords["bit"].values)
    assert values == sorted(values)
    for row_index, counts in enumerate(rows):
        for column, label in enumerate(labels(da)):
            big = label[::-1] if endianness is Endianness.LITTLE else label
            assert da.values[row_index, column] == counts.get(big, 0)
            assert int(big, 2) == values[column]
        assert da.values[row_index].sum() == sum(counts.values())


ragged = st.dictionaries(
    st.text(alphabet="01", min_size=1, max_size=5), st.integers(1, 50), min_size=1, max_size=8
)


@given(st.lists(ragged, min_size=1, max_size=3))
def test_padding_keeps_totals_and_integer_values(rows):
    da = results_to_counts_dataarray(results(*rows), "c", on_length_mismatch="pad")
    assert {len(label) for label in labels(da)} == {max(len(b) for r in rows for b in r)}
    assert da.values.sum(axis=1).tolist() == [sum(r.values()) for r in rows]
    assert sorted({int(b, 2) for r in rows for b in r}) == list(da.coords["bit"].values)


@given(st.lists(counts4, min_size=1, max_size=3), st.text(alphabet="01*", min_size=4, max_size=4))
def test_filter_agrees_with_a_plain_match(rows, pattern):
    da = results_to_counts_dataarray(results(*rows), "c")
    expected = [b for b in labels(da) if all(p in ("*", c) for p, c in zip(pattern, b))]
    assert labels(filter_counts_dataarray(da, pattern)) == expected


def test_importing_the_output_modules_does_not_import_scipp_or_numpy():
    code = textwrap.dedent(
        """
        import sys
        import oqc_trio.dataarray_utils, oqc_trio.job_output
        import oqc_trio.job_output_proxy, oqc_trio.job_like
        heavy = sorted(m for m in ("scipp", "numpy") if m in sys.modules)
        print(",".join(heavy) or "clean")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "clean"
