"""The floor: a plain httpx client under trio, 8 requests in flight, no SDK.

It does the minimum any client of this protocol must do: ``POST /tasks`` (reserve IDs) and
``POST /tasks/submit`` per chunk of tasks under the 128 KB limit, then ``GET all_info`` per task
until it is completed. It is an *oracle* floor: it knows the server's completion delay and
polls each task no earlier than that after its submission (re-polling every ``repoll_s`` if
it is not done yet), so on the instant scenario it spends one status request per job.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import httpx
import trio
from _common import Section, emit, spec


async def run(s: dict) -> dict:
    n = s["n"]
    url = s["url"]
    qpu = s["qpu"]
    task_template = {"program": s["program"], "qpu_id": qpu, "config": s["config"]}
    per_task = len(json.dumps(task_template)) + 60
    per_chunk = max(1, (s.get("chunk_bytes", 100_000) - 20) // per_task)
    limiter = trio.CapacityLimiter(s.get("concurrency", 8))
    expect_s = s.get("expect_s", 0.05)
    repoll_s = s.get("repoll_s", 0.05)
    requests: dict[str, int] = {}
    done = 0
    all_done = trio.Event()
    send, receive = trio.open_memory_channel(math.inf)

    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    headers = {"Authentication-Token": s["token"]}
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as client:

        async def post(label: str, path: str, body: object) -> object:
            async with limiter:
                requests[label] = requests.get(label, 0) + 1
                r = await client.post(url + path, json=body)
            r.raise_for_status()
            return r.json()

        async def submit_chunk(count: int) -> None:
            ids = await post(
                "create_ids", "/tasks", {"qpu_id": qpu, "task_count": count, "tag": None}
            )
            tasks = [{**task_template, "task_id": task_id} for task_id in ids]
            await post("submit", "/tasks/submit", {"tasks": tasks})
            due = trio.current_time() + expect_s
            for task_id in ids:
                send.send_nowait((due, task_id))

        async def poller() -> None:
            nonlocal done
            async for due, task_id in receive:
                await trio.sleep_until(due)
                async with limiter:
                    requests["all_info"] = requests.get("all_info", 0) + 1
                    r = await client.get(f"{url}/tasks/{task_id}/all_info")
                r.raise_for_status()
                info = r.json()
                if info["status"] == "COMPLETED":
                    done += 1
                    if done == n:
                        all_done.set()
                else:
                    send.send_nowait((trio.current_time() + repoll_s, task_id))

        with Section() as section:
            with trio.move_on_after(s.get("timeout_s") or 600):
                async with trio.open_nursery() as nursery:
                    for _ in range(s.get("concurrency", 8)):
                        nursery.start_soon(poller)
                    left = n
                    while left:
                        count = min(per_chunk, left)
                        nursery.start_soon(submit_chunk, count)
                        left -= count
                    await all_done.wait()
                    nursery.cancel_scope.cancel()
    return {
        "client": "floor",
        "n": n,
        "completed": done,
        "wall_s": section.wall,
        "cpu_s": section.cpu,
        "client_requests": requests,
    }


if __name__ == "__main__":
    emit(trio.run(run, spec()))
