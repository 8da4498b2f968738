"""The SDK inside a larger trio application: a hybrid loop that keeps a few jobs in flight,
reacts to each result as it lands, and runs beside an unrelated task in the same nursery.

    python examples/embed_in_trio_app.py
"""

from __future__ import annotations

import math

import trio
from connect import connect

TEMPLATE = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[1];
creg c[1];
ry({theta}) q[0];
measure q[0] -> c[0];
"""


async def heartbeat(done: trio.Event) -> None:
    """Some other work of the application, sharing the event loop with the SDK."""
    beats = 0
    while not done.is_set():
        beats += 1
        with trio.move_on_after(0.5):
            await done.wait()
    print(f"heartbeat ran {beats} times alongside the quantum jobs")


async def main() -> None:
    done = trio.Event()
    async with connect() as sdk, trio.open_nursery() as nursery:
        nursery.start_soon(heartbeat, done)
        qpu = sdk.default_qpu_id or (await sdk.list_qpus())[0]["id"]
        thetas = [i * math.pi / 8 for i in range(9)]
        estimates: dict[float, float] = {}
        async with sdk.stream(max_in_flight=3) as stream:

            async def feed() -> None:
                for theta in thetas:
                    job = sdk.create_job(program=TEMPLATE.format(theta=theta), qpu_id=qpu)
                    job.tag = f"{theta:.6f}"
                    await stream.send(job)
                await stream.close_input()

            nursery.start_soon(feed)
            async for job in stream:
                counts = job.outputs.one.data["c"]
                shots = sum(counts.values())
                estimates[float(job.tag)] = counts.get("1", 0) / shots
                print(f"theta={float(job.tag):.3f}  P(1)={estimates[float(job.tag)]:.3f}")
        done.set()
    worst = max(abs(p - math.sin(t / 2) ** 2) for t, p in estimates.items())
    print(f"largest deviation from sin^2(theta/2): {worst:.3f}")
    assert len(estimates) == len(thetas) and worst < 0.1


if __name__ == "__main__":
    trio.run(main)
