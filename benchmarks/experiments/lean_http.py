"""Experiment: how cheap can one status request be under trio without httpx?

Not part of ``run.py --scenario all``. It runs the floor's protocol (reserve IDs and submit in
chunks, then ``GET all_info`` per task) over a hand-written HTTP/1.1 keep-alive client on
``trio`` sockets: 8 connections, one worker task each, no connection pool, no per-request
socket liveness check. Its CPU per job bounds what an SDK could reach by replacing
httpx/httpcore with a lean transport.

    python benchmarks/stub_server.py --port 18777 &      # on another core
    python benchmarks/experiments/lean_http.py http://127.0.0.1:18777 10000        # hand-rolled
    python benchmarks/experiments/lean_http.py http://127.0.0.1:18777 10000 h11    # over h11
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients"))
from _common import BELL

QPU = "qpu:uk:2:d865b5a184"


class Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, stream: trio.SocketStream, host: str, token: str) -> None:
        self.stream = stream
        self.buffer = b""
        self.prefix = f"Host: {host}\r\nAuthentication-Token: {token}\r\n".encode()

    async def request(self, method: str, path: str, body: bytes | None = None) -> object:
        head = f"{method} {path} HTTP/1.1\r\n".encode() + self.prefix
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        await self.stream.send_all(head + b"\r\n" + (body or b""))
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self.buffer += await self.stream.receive_some(65536)
        header = self.buffer[:end].lower() + b"\r\n"
        start = header.find(b"content-length:") + 15
        length = int(header[start : header.find(b"\r\n", start)])
        total = end + 4 + length
        while len(self.buffer) < total:
            self.buffer += await self.stream.receive_some(65536)
        payload, self.buffer = self.buffer[end + 4 : total], self.buffer[total:]
        if not header.startswith(b"http/1.1 200"):
            raise RuntimeError(f"{method} {path}: {header[:40]!r}")
        return json.loads(payload)


class H11Connection:
    """The same over ``h11`` (full HTTP/1.1 parsing and validation, as httpcore uses)."""

    def __init__(self, stream: trio.SocketStream, host: str, token: str) -> None:
        import h11

        self.h11 = h11
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)
        self.headers = [("Host", host), ("Authentication-Token", token)]

    async def request(self, method: str, path: str, body: bytes | None = None) -> object:
        h11 = self.h11
        headers = self.headers
        if body is not None:
            headers = [
                *headers,
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
            ]
        out = self.conn.send(h11.Request(method=method, target=path, headers=headers))
        if body is not None:
            out += self.conn.send(h11.Data(data=body))
        out += self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(out)
        chunks = []
        status = 0
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        self.conn.start_next_cycle()
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status}")
        return json.loads(b"".join(chunks))


async def main(url: str, n: int, kind: str = "raw") -> dict:
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    from oqc_trio.config import config_to_wire  # the same 682-byte default config as the SDKs

    config = config_to_wire(None)[0]
    template = {"program": BELL, "qpu_id": QPU, "config": config}
    per_chunk = 100
    done = 0
    all_done = trio.Event()
    work_send, work_receive = trio.open_memory_channel(float("inf"))
    factory = H11Connection if kind == "h11" else Connection
    connections = [
        factory(await trio.open_tcp_stream(host, int(port)), f"{host}:{port}", "t")
        for _ in range(8)
    ]

    async def worker(conn: Connection) -> None:
        nonlocal done
        async for item in work_receive:
            kind, value = item
            if kind == "chunk":
                ids = await conn.request(
                    "POST", "/tasks", json.dumps({"qpu_id": QPU, "task_count": value}).encode()
                )
                tasks = [{**template, "task_id": i} for i in ids]
                await conn.request("POST", "/tasks/submit", json.dumps({"tasks": tasks}).encode())
                due = trio.current_time() + 0.05
                for task_id in ids:
                    work_send.send_nowait(("poll", (due, task_id)))
            else:
                due, task_id = value
                await trio.sleep_until(due)
                info = await conn.request("GET", f"/tasks/{task_id}/all_info")
                if info["status"] == "COMPLETED":
                    done += 1
                    if done == n:
                        all_done.set()
                else:
                    work_send.send_nowait(("poll", (trio.current_time() + 0.05, task_id)))

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, wall0 = usage.ru_utime + usage.ru_stime, time.perf_counter()
    async with trio.open_nursery() as nursery:
        left = n
        while left:
            work_send.send_nowait(("chunk", min(per_chunk, left)))
            left -= per_chunk
        for conn in connections:
            nursery.start_soon(worker, conn)
        await all_done.wait()
        nursery.cancel_scope.cancel()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu0
    wall = time.perf_counter() - wall0
    return {
        "client": kind,
        "n": n,
        "wall_s": wall,
        "jobs_per_s": n / wall,
        "cpu_ms_per_job": 1000 * cpu / n,
    }


if __name__ == "__main__":
    kind = sys.argv[3] if len(sys.argv) > 3 else "raw"
    print(json.dumps(trio.run(main, sys.argv[1], int(sys.argv[2]), kind)))
