"""Counts analysis: turn :class:`~oqc_trio.job_output.JobResult` counts into scipp arrays.

The layout is the official SDK's, so analysis code moves over unchanged: a 2-D
``DataArray`` with dims ``("result", "bit")``, one row per result and one column per
observed bitstring, plus three coordinates:

* ``result``: the row index;
* ``bit``: the bitstring's integer value read big-endian (OQC's physical order), whatever
  endianness was requested, so :func:`bits` selects the same column either way;
* ``bitstring``: the column label, written in the requested :class:`Endianness`.

How we differ from the official SDK: scipp (with numpy, about 175 MB) is an optional extra,
``pip install 'oqc-trio[scipp]'``, where the official SDK always installs it; without it,
building an array raises an ``ImportError`` that names the extra. Importing this module
does not import scipp or numpy: they are imported the first time an array is built, so code
that never analyses counts never pays for them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import scipp as sc

    from .job_output import JobResult

__all__ = [
    "Endianness",
    "bits",
    "filter_counts_dataarray",
    "results_to_counts_dataarray",
]

LengthMismatchPolicy = Literal["raise", "pad"]


class Endianness(enum.Enum):
    """How a bitstring's characters map to bit significance.

    ``BIG`` ("big") is OQC's native order: the leftmost character is the most significant
    bit. ``LITTLE`` ("little") is Qiskit's convention: the same bits written right to left.
    A plain :class:`enum.Enum`, as in the official SDK (not a ``str`` enum).
    """

    BIG = "big"
    LITTLE = "little"


def _in_endianness(big_endian: str, endianness: Endianness) -> str:
    """Write a big-endian bitstring in ``endianness`` (reversing is its own inverse)."""
    return big_endian[::-1] if endianness is Endianness.LITTLE else big_endian


def _matches(bitstring: str, pattern: str) -> bool:
    """True when every ``0``/``1`` of ``pattern`` equals ``bitstring`` there (``*``: any)."""
    return all(p in ("*", b) for p, b in zip(pattern, bitstring))


def _require_binary_counts(results: Sequence[Any]) -> None:
    """Reject any result whose compiler config does not ask for ``{bitstring: count}``.

    A result without a config passes: the SDK's default config counts bitstrings.
    """
    from compiler_config.config import ResultsFormatting

    for index, result in enumerate(results):
        results_format = getattr(getattr(result, "compiler_config", None), "results_format", None)
        if results_format is None:
            continue
        if ResultsFormatting.BinaryCount not in results_format:
            raise ValueError(
                f"result {index} was not produced with ResultsFormatting.BinaryCount, so its "
                "counts are not a {bitstring: count} mapping; build the CompilerConfig with "
                "results_format=QuantumResultsFormat().binary_count(), or pass no config to "
                "use the SDK default"
            )


def _register_counts(result: Any, creg: str) -> Mapping[str, int]:
    """The ``{bitstring: count}`` mapping of register ``creg`` in one result (empty if absent)."""
    counts = result.data.get(creg)
    return counts if counts else {}


def _column_width(bitstrings: Iterable[str], creg: str, on_length_mismatch: str) -> int:
    """The common bitstring width, or the widest one when ``on_length_mismatch`` is "pad"."""
    lengths = {len(b) for b in bitstrings}
    if len(lengths) > 1 and on_length_mismatch == "raise":
        raise ValueError(
            f"register {creg!r} holds bitstrings of different lengths {sorted(lengths)}; "
            "pass on_length_mismatch='pad' to left-pad them with zeros to the widest (for "
            "servers that drop leading zeros)"
        )
    return max(lengths)


def _padded_counts(counts: Mapping[str, int], width: int) -> dict[str, int]:
    """Left-pad every bitstring to ``width``, adding up counts that become the same key."""
    merged: dict[str, int] = {}
    for bitstring, count in counts.items():
        key = bitstring.zfill(width)
        merged[key] = merged.get(key, 0) + count
    return merged


def _scipp() -> Any:
    """The scipp module, or an ImportError naming the extra that installs it."""
    try:
        import scipp
    except ImportError as exc:
        raise ImportError(
            "counts as scipp arrays need scipp, an optional extra of oqc-trio: "
            "pip install 'oqc-trio[scipp]'"
        ) from exc
    return scipp


def _counts_array(
    rows: Any,
    bit_values: list[int],
    labels: list[str],
    result_coord: sc.Variable | None = None,
) -> sc.DataArray:
    """Assemble the ``("result", "bit")`` DataArray with its three coordinates.

    ``rows`` is anything numpy reads as a ``(n_results, n_columns)`` table of counts.
    """
    sc = _scipp()
    import numpy as np  # installed with scipp

    n_rows = len(rows)
    values = np.asarray(rows, dtype=np.int64).reshape(n_rows, len(bit_values))
    if result_coord is None:
        result_coord = sc.arange("result", n_rows, unit=None, dtype="int64")
    return sc.DataArray(
        data=sc.array(dims=["result", "bit"], values=values, unit=None),
        coords={
            "result": result_coord,
            "bit": sc.array(dims=["bit"], values=np.asarray(bit_values, dtype=np.int64), unit=None),
            "bitstring": sc.array(dims=["bit"], values=np.asarray(labels, dtype=str), unit=None),
        },
    )


def results_to_counts_dataarray(
    results: Sequence[JobResult],
    creg: str,
    endianness: Endianness = Endianness.BIG,
    on_length_mismatch: LengthMismatchPolicy = "raise",
) -> sc.DataArray:
    """Build the 2-D counts DataArray of register ``creg`` over ``results``.

    One row per result, one column per bitstring seen in any of them, columns sorted by
    integer value, and 0 where a result never saw a bitstring. ``endianness`` only changes
    the ``bitstring`` labels; the ``bit`` coordinate stays big-endian.

    ``on_length_mismatch`` decides what happens when the register's bitstrings differ in
    length: "raise" (default) raises ``ValueError``; "pad" left-pads them with zeros to the
    widest and adds up the counts of strings that then coincide.

    Raises ``ValueError`` for an empty ``results``, an unknown ``on_length_mismatch``, a
    result whose config does not request BinaryCount, or mixed lengths under "raise";
    ``KeyError`` when no result has register ``creg``.
    """
    if on_length_mismatch not in ("raise", "pad"):
        raise ValueError(f"on_length_mismatch must be 'raise' or 'pad', not {on_length_mismatch!r}")
    if not results:
        raise ValueError(
            "no results to convert; if they came from a JobOutputProxy, every job may have "
            "failed (see any_error / raise_for_error()) or the proxy may be empty"
        )
    _require_binary_counts(results)
    per_result = [_register_counts(result, creg) for result in results]
    seen = {bitstring for counts in per_result for bitstring in counts}
    if not seen:
        raise KeyError(f"classical register {creg!r} is in none of the results")
    width = _column_width(seen, creg, on_length_mismatch)
    columns = sorted({b.zfill(width) for b in seen}, key=lambda b: int(b, 2))
    padded = [_padded_counts(counts, width) for counts in per_result]
    rows = [[counts.get(column, 0) for column in columns] for counts in padded]
    return _counts_array(
        rows,
        bit_values=[int(column, 2) for column in columns],
        labels=[_in_endianness(column, endianness) for column in columns],
    )


def bits(s: str, endianness: Endianness = Endianness.BIG) -> sc.Variable:
    """A unit-less scipp scalar holding the big-endian integer value of bitstring ``s``.

    Use it to select a column by label: ``da["bit", bits("011")]``. ``s`` is read in
    ``endianness``, so ``bits("011")`` and ``bits("110", Endianness.LITTLE)`` are both 3.
    Raises ``ValueError`` for an empty string or one with characters other than 0 and 1.
    """
    if not s:
        raise ValueError("bitstring must not be empty")
    if set(s) - {"0", "1"}:
        raise ValueError(f"not a bitstring (only '0' and '1' allowed): {s!r}")
    return _scipp().scalar(int(_in_endianness(s, endianness), 2), unit=None)


def _check_pattern(pattern: str, labels: Sequence[str]) -> None:
    """Reject an empty pattern, characters other than 0/1/*, or a length unlike the labels."""
    if not pattern:
        raise ValueError("pattern must not be empty")
    bad = sorted(set(pattern) - {"0", "1", "*"})
    if bad:
        raise ValueError(f"pattern {pattern!r} may only contain '0', '1' and '*', not {bad}")
    if labels and len(pattern) != len(labels[0]):
        raise ValueError(
            f"pattern {pattern!r} has {len(pattern)} characters but the bitstrings have "
            f"{len(labels[0])}"
        )


def filter_counts_dataarray(da: sc.DataArray, pattern: str) -> sc.DataArray:
    """Keep the columns of a counts DataArray whose ``bitstring`` label matches ``pattern``.

    ``pattern`` uses ``0`` and ``1`` for exact bits and ``*`` for either, is written in the
    endianness the array was built with, and must be as long as its labels. When nothing
    matches the result has zero columns. Raises ``ValueError`` for an empty pattern, other
    characters, or a length mismatch.
    """
    labels = [str(label) for label in da.coords["bitstring"].values]
    _check_pattern(pattern, labels)
    keep = [i for i, label in enumerate(labels) if _matches(label, pattern)]
    bit_values = da.coords["bit"].values
    return _counts_array(
        rows=da.values[:, keep],
        bit_values=[int(bit_values[i]) for i in keep],
        labels=[labels[i] for i in keep],
        result_coord=da.coords["result"].copy(),
    )
