"""How the runner's process uses Python's cyclic garbage collector.

- Paused around phases that allocate many objects but no garbage cycles: expanding a batch
  (10,000 logical jobs), writing the output files (which also imports h5py). Left running,
  the collector walks those objects again and again (at 10,000 jobs: ~0.03 s while
  expanding, ~0.06 s of full collections while writing) and finds nothing to free.
- During a run, the old generation is collected on a clock (every minute) instead of by
  allocation counts. A run's heap is mostly long-lived jobs and results, and almost all of
  its cyclic garbage dies young (10,000 jobs: ~3,200 objects, every one found by the young
  collections), so the full collections the counts trigger walk the whole heap to free
  nothing (~0.04 s at 10,000 jobs). The clock still frees old cycles in a long run.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import trio

__all__ = ["collect_old_generation", "collection_paused", "old_generation_by_clock"]

FULL_COLLECTION_S = 60.0
_NEVER = 2**31 - 1


@contextmanager
def collection_paused() -> Iterator[None]:
    """Disable automatic collection inside the block (restored after, if it was enabled)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def old_generation_by_clock() -> Iterator[None]:
    """Inside the block, automatic collection covers the young generations only; run
    :func:`collect_old_generation` alongside for the old one. Thresholds restored after."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, _NEVER)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)


async def collect_old_generation(every_s: float = FULL_COLLECTION_S) -> NoReturn:
    """A full collection every ``every_s`` seconds, until cancelled."""
    while True:
        await trio.sleep(every_s)
        gc.collect()
