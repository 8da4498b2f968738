"""Package metadata (#25): the SDK installs neither scipp, numpy nor pip; scipp comes with the
``scipp`` and ``hdf5`` extras, and the counts helpers name the extra when it is missing."""

from __future__ import annotations

import re
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from oqc_trio.dataarray_utils import bits, results_to_counts_dataarray
from oqc_trio.job_output import JobResult


def _requirements() -> list[Requirement]:
    return [Requirement(line) for line in metadata.requires("oqc-trio") or []]


def test_scipp_numpy_and_pip_are_not_runtime_dependencies() -> None:
    unconditional = {req.name.lower() for req in _requirements() if req.marker is None}
    assert "trio" in unconditional  # the metadata was read
    assert not unconditional & {"scipp", "numpy", "pip"}


@pytest.mark.parametrize("extra", ["scipp", "hdf5"])
def test_scipp_comes_with_its_extras(extra: str) -> None:
    assert any(
        req.name == "scipp" and req.marker is not None and req.marker.evaluate({"extra": extra})
        for req in _requirements()
    )


def test_counts_arrays_without_scipp_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipp", None)  # makes `import scipp` fail
    result = JobResult({"c": {"00": 3, "11": 5}})
    with pytest.raises(ImportError, match=re.escape("pip install 'oqc-trio[scipp]'")):
        results_to_counts_dataarray([result], "c")
    with pytest.raises(ImportError, match=re.escape("oqc-trio[scipp]")):
        bits("01")
