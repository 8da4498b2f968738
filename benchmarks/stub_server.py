"""A minimal, fast stub of the QCaaS legacy contract, for benchmarking clients.

Why: the emulator (Starlette on hypercorn) spends ~1 ms of server CPU per request, so at
10,000+ jobs it, not the client, would set the pace. This stub is a hand-written HTTP/1.1
server on asyncio (stdlib only, keep-alive, ``Content-Length`` bodies) that answers the routes
both SDKs need in a few tens of microseconds. ``run.py`` measures and reports its cost.

Routes (the QPU's ``url`` is the base URL):

- ``GET /admin/version``, ``GET /healthz`` (no auth), ``GET /admin/qpu``, ``GET /admin/qpu/{id}``
- ``POST /tasks`` (reserve IDs), ``POST /tasks/submit``, ``GET /tasks/{id}/all_info``,
  ``GET /tasks/{id}/status``, ``POST /tasks/cancel_many``
- ``GET /admin/emulator/counters`` (requests per route, as the emulator names them, plus the
  stub's own CPU seconds), ``POST /admin/emulator/reset-counters``,
  ``POST /admin/stub/reset`` (forget every task), ``POST /admin/stub/config``
  (``{"mode": "delay"|"fifo", "delay_s": 0.05, "exec_s": 0.01}``),
  ``GET /admin/stub/finished`` (true completion time of every finished task, epoch seconds),
  ``GET /admin/stub/polls`` (every task's submit/start/finish times and every status request).

Completion models:

- ``delay``: every task completes ``delay_s`` after its submission (no queue);
- ``fifo``: one worker per QPU runs tasks in submission order, ``exec_s`` each.

Status is computed lazily from the clock when asked, so the model is exact whatever the load.
Every request needs an ``Authentication-Token`` header except the health routes.

    python benchmarks/stub_server.py --port 0 --mode delay --delay 0.05
    # prints "READY http://127.0.0.1:PORT" once listening
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import sys
import time
import uuid
from collections import Counter
from typing import Any

QPU_ID = "qpu:uk:2:d865b5a184"
VERSION = "stub-1.0"

_dumps = json.JSONEncoder(separators=(",", ":")).encode
_loads = json.loads

_REASONS = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 404: b"Not Found"}

CREATED, SUBMITTED, RUNNING, COMPLETED, CANCELLED = (
    "CREATED",
    "SUBMITTED",
    "RUNNING",
    "COMPLETED",
    "CANCELLED",
)

FEATURES = {
    "qubits": 8,
    "max_shots": 10_000,
    "gate_set": ["rz", "sx", "x", "ecr", "cx", "h", "measure", "reset", "barrier"],
}


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


class Task:
    __slots__ = ("cancelled", "created", "finish", "id", "program", "start", "submitted", "tag")

    def __init__(self, task_id: str, created: float, tag: Any) -> None:
        self.id = task_id
        self.created = created
        self.tag = tag
        self.program: str | None = None
        self.submitted: float | None = None
        self.start: float | None = None
        self.finish: float | None = None
        self.cancelled: float | None = None

    def status(self, now: float) -> str:
        if self.cancelled is not None:
            return CANCELLED
        if self.submitted is None:
            return CREATED
        if now >= self.finish:  # type: ignore[operator]
            return COMPLETED
        if now >= self.start:  # type: ignore[operator]
            return RUNNING
        return SUBMITTED


class Stub:
    def __init__(self, mode: str, delay_s: float, exec_s: float) -> None:
        self.mode = mode
        self.delay_s = delay_s
        self.exec_s = exec_s
        self.tasks: dict[str, Task] = {}
        self.busy_until = 0.0
        self.requests: Counter[str] = Counter()
        #: (time, task_id, status) of every status request, for poll-schedule analysis.
        self.polls: list[tuple[float, str, str]] = []
        self.base = ""
        self.cpu0 = time.process_time()

    # -- the model ---------------------------------------------------------------------------
    def reset(self) -> None:
        self.tasks.clear()
        self.busy_until = 0.0
        self.requests.clear()
        self.polls.clear()

    def _schedule(self, task: Task, now: float) -> None:
        task.submitted = now
        if self.mode == "fifo":
            task.start = max(now, self.busy_until)
            task.finish = task.start + self.exec_s
            self.busy_until = task.finish
        else:
            task.start = now
            task.finish = now + self.delay_s

    def qpu_record(self) -> dict[str, Any]:
        return {
            "id": QPU_ID,
            "name": "Stub QPU",
            "active": True,
            "generation": "2",
            "region": "uk",
            "url": self.base,
            "feature_set": FEATURES,
        }

    def all_info(self, task: Task, now: float) -> dict[str, Any]:
        status = task.status(now)
        done = status == COMPLETED
        metadata = {
            "config": None,
            "created_at": _iso(task.created),
            "id": task.id,
            "qpu_id": QPU_ID,
            "tag": task.tag,
        }
        return {
            **metadata,
            "status": status,
            "results": {"c": {"00": 1000}} if done else None,
            "task_error": None,
            "timings": {
                "received": _iso(task.submitted),
                "queued": _iso(task.submitted),
                "started": _iso(task.start) if status in (RUNNING, COMPLETED) else None,
                "finished": _iso(task.finish) if done else None,
                "finished_epoch": task.finish if done else None,
            },
            "execution_metadata": {"executor": "stub"} if done else {},
            "metadata": metadata,
        }

    # -- routing -----------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        path = path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        now = time.time()
        if method == "GET" and path in ("/admin/version", "/healthz"):
            self.requests[f"GET {path}"] += 1
            return 200, {"version": VERSION, "service": "stub"}
        if not headers.get("authentication-token"):
            return 401, {"response": {"errors": ["missing token"]}, "detail": "missing token"}
        if parts[0] == "tasks":
            if len(parts) == 3 and method == "GET":
                route = f"GET /tasks/{{task_id}}/{parts[2]}"
                self.requests[route] += 1
                task = self.tasks.get(parts[1])
                if task is None:
                    return 404, {"response": {"errors": ["no such task"]}, "detail": "no such task"}
                if parts[2] == "all_info":
                    info = self.all_info(task, now)
                    self.polls.append((now, task.id, info["status"]))
                    return 200, info
                if parts[2] == "status":
                    return 200, {"status": task.status(now)}
                info = self.all_info(task, now)
                return 200, {parts[2]: info.get(parts[2])}
            if method == "POST" and len(parts) == 1:
                self.requests["POST /tasks"] += 1
                data = _loads(body)
                count = int(data.get("task_count", 1))
                tag = data.get("tag")
                ids = []
                for _ in range(count):
                    task_id = str(uuid.uuid4())
                    self.tasks[task_id] = Task(task_id, now, tag)
                    ids.append(task_id)
                return 200, ids
            if method == "POST" and parts[1:] == ["submit"]:
                self.requests["POST /tasks/submit"] += 1
                data = _loads(body)
                out = []
                for item in data["tasks"]:
                    task_id = item.get("task_id")
                    task = self.tasks.get(task_id) if task_id else None
                    if task is None:
                        task_id = task_id or str(uuid.uuid4())
                        task = self.tasks[task_id] = Task(task_id, now, item.get("tag"))
                    if task.submitted is None:
                        task.program = item.get("program")
                        self._schedule(task, now)
                    out.append({"task_id": task_id})
                return 200, out
            if method == "POST" and parts[1:] == ["cancel_many"]:
                self.requests["POST /tasks/cancel_many"] += 1
                for task_id in _loads(body).get("tasks", []):
                    task = self.tasks.get(task_id)
                    if task is not None and task.status(now) not in (COMPLETED, CANCELLED):
                        task.cancelled = now
                return 200, "OK"
        if parts[:2] == ["admin", "qpu"]:
            if len(parts) == 2 and method == "GET":
                self.requests["GET /admin/qpu"] += 1
                return 200, {"items": [self.qpu_record()], "total": 1, "page": 1, "per_page": 1000}
            if len(parts) == 3 and method == "GET":
                self.requests["GET /admin/qpu/{qpu_id}"] += 1
                if parts[2] != QPU_ID:
                    return 404, {"response": {"errors": ["no such QPU"]}, "detail": "no such QPU"}
                return 200, self.qpu_record()
        if parts[:2] == ["admin", "emulator"]:
            if parts[2:] == ["counters"]:
                return 200, self.counters()
            if parts[2:] == ["reset-counters"] and method == "POST":
                self.requests.clear()
                return 200, self.counters()
        if parts[:2] == ["admin", "stub"]:
            if parts[2:] == ["reset"] and method == "POST":
                self.reset()
                return 200, self.counters()
            if parts[2:] == ["config"] and method == "POST":
                data = _loads(body)
                self.mode = data.get("mode", self.mode)
                self.delay_s = float(data.get("delay_s", self.delay_s))
                self.exec_s = float(data.get("exec_s", self.exec_s))
                return 200, {"mode": self.mode, "delay_s": self.delay_s, "exec_s": self.exec_s}
            if parts[2:] == ["polls"]:
                # Every task's submit/start/finish and every status request, for analysis.
                return 200, {
                    "tasks": {t.id: [t.submitted, t.start, t.finish] for t in self.tasks.values()},
                    "polls": self.polls,
                }
            if parts[2:] == ["finished"]:
                return 200, {
                    t.id: t.finish for t in self.tasks.values() if t.status(now) == COMPLETED
                }
        return 404, {"response": {"errors": [f"no route {method} {path}"]}, "detail": "no route"}

    def counters(self) -> dict[str, Any]:
        by_status = Counter(t.status(time.time()) for t in self.tasks.values())
        return {
            "requests": dict(sorted(self.requests.items())),
            "total_requests": sum(self.requests.values()),
            "tasks": {"total": len(self.tasks), "by_status": dict(sorted(by_status.items()))},
            "cpu_s": time.process_time() - self.cpu0,
        }


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive; one request at a time per connection (no pipelining needed,
    but pipelined requests are answered in order)."""

    def __init__(self, stub: Stub) -> None:
        self.stub = stub
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = self.buffer[end + 4 : total]
            self.buffer = self.buffer[total:]
            method, target, _ = head[0].split(" ", 2)
            try:
                status, payload = self.stub.handle(method, target, headers, body)
            except Exception as exc:  # a bad request must not kill the stub
                status, payload = 400, {"response": {"errors": [repr(exc)]}, "detail": repr(exc)}
            out = _dumps(payload).encode()
            close = headers.get("connection", "").lower() == "close"
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
                % (
                    status,
                    _REASONS.get(status, b"Error"),
                    len(out),
                    b"connection: close\r\n" if close else b"",
                )
                + out
            )
            if close:
                self.transport.close()
                return


async def serve(host: str, port: int, stub: Stub) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(stub), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()
    stub.base = f"http://{host}:{bound[1]}"
    print(f"READY {stub.base}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=("delay", "fifo"), default="delay")
    parser.add_argument("--delay", type=float, default=0.05, help="delay mode: seconds to finish")
    parser.add_argument("--exec", type=float, default=0.01, help="fifo mode: seconds per task")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("stub_server: loopback only", file=sys.stderr)
        return 2
    stub = Stub(args.mode, args.delay, args.exec)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, stub))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
