"""oqc-trio under trio: ``N`` jobs in one CompositeJob (or in batches), one job at a time
(``single``), or a FIFO queue with completion lags (``fetch_diagnostics``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import trio
from _common import Section, emit, epoch, lag_stats, spec

from oqc_trio.client import OqcSdk


def _pairs(jobs) -> list[tuple[float, float]]:
    pairs = []
    for job in jobs:
        out = job.result
        timings = job.timings or {}
        true = timings.get("finished_epoch") or epoch(timings.get("finished"))
        if out is not None and true is not None:
            pairs.append((true, out.received.timestamp()))
    return pairs


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
    n, qpu, program = s["n"], s["qpu"], s["program"]
    result: dict = {"client": "ours", "n": n}
    timeout = s.get("timeout_s")
    diag = bool(s.get("lags"))
    options = s.get("sdk_options") or {}
    if "poll_policy" in options:
        from oqc_trio._actors.policy import PollPolicy

        options["poll_policy"] = PollPolicy(**options["poll_policy"])
    async with OqcSdk(s["url"], authentication_token=s["token"], **options) as sdk:
        before = sdk.statistics().requests
        if s.get("mode") == "single":
            latencies = []
            with Section() as section:
                for _ in range(n):
                    job = sdk.create_job(program=program, qpu_id=qpu)
                    t0 = time.perf_counter()
                    await job.execute(timeout_s=timeout)
                    latencies.append(time.perf_counter() - t0)
                    assert job.completed, job
            result["latencies_s"] = latencies
            completed = n
        else:
            batch = s.get("batch") or n
            completed = 0
            jobs_all = []
            memory = _PeakMemory(int(s["tracemalloc"])) if s.get("tracemalloc") else None
            with Section() as section, _Profile(s.get("cprofile")):
                async with trio.open_nursery() as nursery:
                    if memory is not None:
                        nursery.start_soon(memory.run)
                    for start in range(0, n, batch):
                        size = min(batch, n - start)
                        composite = sdk.create_job(
                            program=[program] * size, qpu_id=qpu, fetch_diagnostics=diag
                        )
                        await composite.execute(timeout_s=timeout)
                        completed += len(composite.completed_jobs)
                        if diag:
                            jobs_all.extend(composite.jobs)
                    nursery.cancel_scope.cancel()
            if diag:
                result.update(lag_stats(_pairs(jobs_all)))
            if memory is not None:
                result["tracemalloc"] = memory.report()
        after = sdk.statistics().requests
    result["client_requests"] = {
        k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)
    }
    result.update(completed=completed, wall_s=section.wall, cpu_s=section.cpu)
    return result


if __name__ == "__main__":
    _spec = spec()
    if _spec.get("tracemalloc"):
        import tracemalloc

        tracemalloc.start(6)
    emit(trio.run(run, _spec))
