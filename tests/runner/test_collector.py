"""The runner's collector policy: young generations by allocation counts, the old one on a
clock, everything restored afterwards."""

from __future__ import annotations

import gc

import pytest
import trio

from oqc_trio.runner import collector


def test_old_generation_by_clock_disables_only_automatic_full_collections() -> None:
    before = gc.get_threshold()
    with collector.old_generation_by_clock():
        young, middle, old = gc.get_threshold()
        assert (young, middle) == before[:2]
        assert old >= 2**31 - 1
        # Young collections still run and still free cycles.
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect(0) + gc.collect(1) >= 1
    assert gc.get_threshold() == before


def test_thresholds_restored_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), collector.old_generation_by_clock():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before


def test_collection_paused_restores_the_enabled_state() -> None:
    assert gc.isenabled()
    with collector.collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector.collection_paused():
            pass
        assert not gc.isenabled()  # it was off before: left off
    finally:
        gc.enable()


async def test_full_collection_once_a_minute(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[float, tuple[int, ...]]] = []
    monkeypatch.setattr(collector.gc, "collect", lambda *a: calls.append((trio.current_time(), a)))
    with trio.move_on_after(collector.FULL_COLLECTION_S * 3.5):
        await collector.collect_old_generation()
    assert [round(t) for t, _ in calls] == [60, 120, 180]
    assert all(args in ((), (2,)) for _, args in calls)
