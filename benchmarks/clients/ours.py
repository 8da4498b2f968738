"""oqc-trio under trio: ``N`` jobs in one CompositeJob (or in batches), one job at a time
(``single``), or a FIFO queue with completion lags (``fetch_diagnostics``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import trio
from _common import Section, emit, execute_jobs, spec, timed_result

from oqc_trio.client import OqcSdk


class _PeakMemory:
    """tracemalloc sampler: keeps the snapshot taken nearest the peak of traced memory."""

    def __init__(self, top: int) -> None:
        self.top = top
        self.best = 0
        self.snapshot = None

    def sample(self) -> None:
        import tracemalloc

        current, _ = tracemalloc.get_traced_memory()
        if current > self.best * 1.15:
            self.best = current
            self.snapshot = tracemalloc.take_snapshot()

    async def run(self) -> None:
        while True:
            self.sample()
            await trio.sleep(1.0)

    def report(self) -> dict:
        import tracemalloc

        self.sample()
        _, peak = tracemalloc.get_traced_memory()
        lines = []
        for entry in self.snapshot.statistics("traceback")[: self.top]:
            frames = list(entry.traceback)
            inner = frames[-1]
            ours = next((f for f in reversed(frames) if "oqc_trio" in f.filename), None)
            lines.append(
                {
                    "where": _short(inner.filename, inner.lineno),
                    "via": _short(ours.filename, ours.lineno) if ours and ours is not inner else "",
                    "mb": entry.size / 2**20,
                    "count": entry.count,
                }
            )
        return {"sampled_peak_mb": self.best / 2**20, "peak_mb": peak / 2**20, "top": lines}


def _short(filename: str, lineno: int) -> str:
    return "/".join(Path(filename).parts[-2:]) + f":{lineno}"


class _Profile:
    """cProfile of the timed section only (not imports or open())."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.profiler = None

    def __enter__(self) -> None:
        if self.path:
            import cProfile

            self.profiler = cProfile.Profile()
            self.profiler.enable()

    def __exit__(self, *exc: object) -> None:
        if self.profiler is not None:
            self.profiler.disable()
            self.profiler.dump_stats(self.path)


async def run(s: dict) -> dict:
    options = s.get("sdk_options") or {}
    if "poll_policy" in options:
        from oqc_trio._actors.policy import PollPolicy

        options["poll_policy"] = PollPolicy(**options["poll_policy"])
    memory = _PeakMemory(int(s["tracemalloc"])) if s.get("tracemalloc") else None
    async with OqcSdk(s["url"], authentication_token=s["token"], **options) as sdk:
        before = sdk.statistics().requests
        with Section() as section, _Profile(s.get("cprofile")):
            async with trio.open_nursery() as nursery:
                if memory is not None:
                    nursery.start_soon(memory.run)
                fields, jobs = await execute_jobs(sdk, s, timeout_s=s.get("timeout_s"))
                nursery.cancel_scope.cancel()
        after = sdk.statistics().requests
        if memory is not None:
            fields["tracemalloc"] = memory.report()
    fields["client_requests"] = {
        k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)
    }
    return timed_result("ours", s, section, fields, jobs)


if __name__ == "__main__":
    _spec = spec()
    if _spec.get("tracemalloc"):
        import tracemalloc

        tracemalloc.start(6)
    emit(trio.run(run, _spec))
