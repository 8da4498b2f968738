"""counts.h5 is written with h5py alone, in the layout scipp's ``save_hdf5`` gives the
DataGroup of ``build_datagroup``: scipp loads it back identical, and a run never imports scipp."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from runner_support import QPU_A, QPU_B

from oqc_trio.runner import results
from oqc_trio.runner.expand import expand_text
from oqc_trio.runner.journal import Journal, JournalState
from oqc_trio.runner.results import build_datagroup, save_hdf5, write_hdf5

h5py = pytest.importorskip("h5py")
sc = pytest.importorskip("scipp")

SWEPT = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c{s}[1];\nrx({theta}) q[0];\n'
PLAIN = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\n'
BATCH = (
    f'[defaults]\nqpu = ["{QPU_A}", "{QPU_B}"]\n'
    f'[[jobs]]\nname = "rx"\nprogram = """{SWEPT}"""\n'
    'params.theta = [0.5, 1.5]\nparams.s = ["x", "y"]\n'
    # No sweep here: its theta is NaN and its s empty.
    f'[[jobs]]\nname = "plain"\nprogram = """{PLAIN}"""\n'
)


def make_state(tmp_path: Path, data: list[dict[str, Any] | None]) -> JournalState:
    """The batch above (10 jobs), job ``i`` completed with ``data[i]``, or failed for None."""
    batch = expand_text(BATCH, "b.toml")
    assert len(batch.jobs) == len(data) == 10
    journal = Journal.open(tmp_path / "out", batch, {"url": "emulator", "embedded": True})
    for job, result in zip(batch.jobs, data, strict=True):
        attempt = journal.reserve(
            job.index, f"{job.index:08d}-0000-4000-8000-000000000000", job.qpu
        )
        if result is None:
            journal.ended(attempt, "FAILED", code=500, message="flaky")
        else:
            journal.ended(attempt, "COMPLETED", data=result)
    journal.close()
    return journal.state


TWO_REGISTERS = {"c": {"0": 7, "1": 3}, "b": {"10": 1, "1": 2, "11": 0}}
STATES = {
    "registers and failures": [TWO_REGISTERS, TWO_REGISTERS, None] * 3 + [{"c": {"1": 5}}],
    "no completed job": [None] * 10,
    # Programs giving register c 1 and 3 bits: one table per width, nothing padded.
    "mixed widths": [{"c": {"1": 4, "0": 6}}, {"c": {"100": 10}}, {"c": {}}, None] * 2
    + [{"c": {"011": 1}}, {"b": {"1": 1}}],
    "odd registers": [
        {"c.x/é": {"0": 1}, "empty": {}, "qpus": {"1": 2}, "not counts": {"0": 0.5}},
        {"empty": {}},
        *[None] * 8,
    ],
}


@pytest.fixture(autouse=True)
def any_scipp_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """Write directly whatever scipp is installed, so that these tests tell whether its
    layout is still the one ``write_hdf5`` writes (the range that it is stays in results.py)."""
    monkeypatch.setattr(results, "_SCIPP_LAYOUT", ((0, 0), (10**6, 0)))


@pytest.fixture(params=list(STATES))
def state(request: pytest.FixtureRequest, tmp_path: Path) -> JournalState:
    """A state with float and string sweeps, several registers and failed jobs; one with no
    completed job; one with registers that test the file's naming and scipp's quirks."""
    return make_state(tmp_path, STATES[request.param])


def test_scipp_loads_the_direct_file_as_the_datagroup(state: JournalState, tmp_path: Path) -> None:
    path = tmp_path / "counts.h5"
    write_hdf5(state, path)
    loaded = sc.io.load_hdf5(path)
    expected = build_datagroup(state)
    assert sc.identical(loaded, expected, equal_nan=True)
    for name, item in expected.items():  # identical() aside, the details a reader sees
        assert type(loaded[name]) is type(item)
        for key, variable in getattr(item, "coords", {}).items():
            assert loaded[name].coords[key].dtype == variable.dtype
            assert loaded[name].coords[key].unit == variable.unit


def layout(path: Path) -> list[tuple[Any, ...]]:
    """Every group and dataset of an HDF5 file: name, attributes, dtype, shape, storage, values."""

    def attributes(item: Any) -> dict[str, tuple[str, Any, Any]]:
        return {
            key: (repr(item.attrs[key]), item.attrs.get_id(key).dtype, item.attrs.get_id(key).shape)
            for key in item.attrs
        }

    found: list[tuple[Any, ...]] = []

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            kind = (item.dtype, h5py.check_string_dtype(item.dtype), item.shape)
            storage = (item.chunks, item.compression)
            found.append((name, repr(item[()]), kind, storage, attributes(item)))
        else:
            found.append((name, attributes(item)))

    with h5py.File(path, "r") as handle:
        found.append(("/", attributes(handle)))
        handle.visititems(visit)
    return found


def test_the_file_has_the_layout_scipp_writes(state: JournalState, tmp_path: Path) -> None:
    write_hdf5(state, tmp_path / "direct.h5")
    save_hdf5(build_datagroup(state), tmp_path / "scipp.h5")
    assert layout(tmp_path / "direct.h5") == layout(tmp_path / "scipp.h5")


def test_an_unknown_scipp_release_saves_through_scipp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = make_state(tmp_path, STATES["registers and failures"])
    monkeypatch.setattr(results, "_SCIPP_LAYOUT", ((0, 0), (0, 1)))
    assert results._scipp_layout_version() is None
    saved: list[Path] = []
    monkeypatch.setattr(results, "save_hdf5", lambda group, path: saved.append(path))
    write_hdf5(state, tmp_path / "counts.h5")
    assert saved == [tmp_path / "counts.h5"]


def test_writing_the_outputs_does_not_import_scipp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the range in results.py, as a run has it
    if results._scipp_layout_version() is None:
        pytest.skip("the installed scipp is outside _SCIPP_LAYOUT: counts.h5 is saved by scipp")
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from oqc_trio.runner.expand import expand_text
        from oqc_trio.runner.journal import Journal
        from oqc_trio.runner.results import HDF5_NAME, ResultWriter

        out = Path({str(tmp_path)!r}) / "out"
        batch = expand_text({BATCH!r}, "b.toml")
        journal = Journal.open(out, batch, {{"url": "emulator", "embedded": True}})
        for job in batch.jobs:
            attempt = journal.reserve(job.index, f"{{job.index:08d}}-0000-4000-8000-0", job.qpu)
            journal.ended(attempt, "COMPLETED", data={TWO_REGISTERS!r})
        journal.close()
        writer = ResultWriter(out, journal.state, ["csv", "snapshot", "hdf5"])
        writer._write_all(journal.state)
        assert (out / HDF5_NAME).stat().st_size > 0 and not writer.warnings
        assert "h5py" in sys.modules and "scipp" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def test_without_scipp_installed_the_run_skips_hdf5_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scipp is an extra (#25): with h5py alone the layout to write is unknown and the file
    # could not be read back, so the run writes the other formats and warns.
    find_spec = results.importlib.util.find_spec
    monkeypatch.setattr(
        results.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "scipp" else find_spec(name, *args),
    )
    state = make_state(tmp_path, STATES["registers and failures"])
    out = tmp_path / "out"
    writer = results.ResultWriter(out, state, ["csv", "snapshot", "hdf5"])
    writer._write_all(state)
    assert writer.warnings == [results.HDF5_MISSING]
    assert "oqc-trio[hdf5]" in results.HDF5_MISSING
    assert not (out / results.HDF5_NAME).exists()
    assert (out / results.CSV_NAME).stat().st_size > 0
    assert (out / results.SNAPSHOT_NAME).stat().st_size > 0


def test_a_register_of_several_widths_gets_one_table_per_width(tmp_path: Path) -> None:
    tables = results._counts_tables(make_state(tmp_path, STATES["mixed widths"]))
    assert sorted(tables) == ["b", "c:1", "c:3", "entries", "qpus"]
    narrow, wide = tables["c:1"], tables["c:3"]
    assert isinstance(narrow, results._Table) and isinstance(wide, results._Table)
    assert list(narrow.coords["bitstring"].values) == ["0", "1"]
    assert list(wide.coords["bitstring"].values) == ["011", "100"]
    # The jobs with empty counts for c (2 and 6) join the narrowest table, in job order.
    assert list(narrow.coords["job"].values) == [0, 2, 4, 6]
    assert list(wide.coords["job"].values) == [1, 5, 8]
    assert narrow.data.values.tolist() == [[6, 4], [0, 0], [6, 4], [0, 0]]
    assert wide.data.values.tolist() == [[0, 10], [0, 10], [1, 0]]
