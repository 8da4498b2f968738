#!/usr/bin/env python
"""Benchmarks: oqc-trio against OQC's official SDK and against the protocol's floor.

    python benchmarks/run.py --scenario all --reps 3      # the published table (~20 min)
    python benchmarks/run.py --scenario instant --n 10000
    python benchmarks/run.py --scenario single --quick    # smoke run: small N, 1 rep

Scenarios: ``server`` (per-request cost of the stub vs the emulator), ``instant``, ``queue``,
``single``, ``runner``, ``emulator``, ``import``, ``profile``; ``all`` runs them in that order.

How it measures:

- the server (``stub_server.py``, or ``oqc-emulator``) runs in its own process pinned with
  ``taskset`` to one core, each client in its own process pinned to the other; the harness
  itself sits on the server's core and sleeps;
- every client process is reaped with ``os.wait4``: its peak RSS and total CPU come from the
  kernel's accounting of the finished process; the client reports the wall and CPU time of
  its timed section (create the jobs, execute them) itself;
- requests per job by endpoint come from the server's counters, reset before each client;
- clients alternate within each repetition (A, B, C, then B, C, A, ...); tables show the
  median and the min-max spread over the repetitions.

Results: raw JSON per scenario in ``benchmarks/results/`` and the tables in
``benchmarks/RESULTS.md`` (with ``--quick``: ``benchmarks/.quick/``). OQC's official SDK
``oqc-qcaas-sdk==0.1.24`` (+ ``sniffio``) is installed on first use into
``benchmarks/.venvs/official``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLIENTS = HERE / "clients"
OFFICIAL_VENV = HERE / ".venvs" / "official"
OFFICIAL_REQUIREMENTS = ("oqc-qcaas-sdk==0.1.24", "sniffio")
QPU = "qpu:uk:2:d865b5a184"
TOKEN = "bench-token"
ADMIN_TOKEN = "bench-admin"
SCENARIOS = ("server", "instant", "queue", "single", "runner", "emulator", "import", "profile")

sys.path.insert(0, str(CLIENTS))
from _common import BELL  # noqa: E402

#: Endpoints that cost requests per job (the others are per-session setup).
TASK_ENDPOINTS = frozenset({"all_info", "create_ids", "submit", "status", "cancel_many"})
#: Server route -> endpoint label (the SDK's request labels).
ROUTE_LABELS = {
    "GET /tasks/{task_id}/all_info": "all_info",
    "POST /tasks": "create_ids",
    "POST /tasks/submit": "submit",
    "POST /tasks/cancel_many": "cancel_many",
    "GET /tasks/{task_id}/status": "status",
    "GET /admin/version": "health",
    "GET /healthz": "health",
    "GET /admin/qpu": "qpus",
    "GET /admin/qpu/{qpu_id}": "features",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- cores -------------------------------------------------------------------------------------


def _cores() -> tuple[int | None, int | None]:
    cores = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") and len(cores) >= 2:
        return cores[0], cores[-1]
    return None, None


CLIENT_CORE, SERVER_CORE = _cores()


def pinned(core: int | None, argv: list[Any]) -> list[str]:
    argv = [str(a) for a in argv]
    return ["taskset", "-c", str(core), *argv] if core is not None else argv


# -- the official SDK's venv -------------------------------------------------------------------


def official_python() -> Path:
    """The official SDK's interpreter, creating its venv on first use."""
    python = OFFICIAL_VENV / "bin" / "python"
    marker = OFFICIAL_VENV / ".installed"
    wanted = " ".join(OFFICIAL_REQUIREMENTS)
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        log(f"installing {wanted} into {OFFICIAL_VENV} (first run only)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(OFFICIAL_VENV)], check=True)
        pip = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *OFFICIAL_REQUIREMENTS,
            ],
            capture_output=True,
            text=True,
        )
        if pip.returncode != 0:
            raise RuntimeError(f"pip install {wanted} failed:\n{pip.stdout}\n{pip.stderr}")
        marker.write_text(wanted)
    return python


def _versions(python: str | Path, packages: list[str]) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        f"for p in {packages!r}:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout) if done.returncode == 0 else {}


# -- servers -----------------------------------------------------------------------------------


def _http(url: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authentication-Token": ADMIN_TOKEN, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def emulator_toml(*, execution_time_s: float, workers: int, executor_workers: int = 1) -> str:
    return f"""admin_token = "{ADMIN_TOKEN}"
executor_workers = {executor_workers}
qpu_paths = false
seed = 1
task_timeout_s = 60.0

[[qpus]]
id = "{QPU}"
name = "Benchmark QPU"
qubits = 8
execution_time_s = {execution_time_s}
workers = {workers}

[[users]]
email = "bench@example.com"
tokens = ["{TOKEN}"]
"""


class Server:
    """A server process pinned to the server core: the stub or the emulator."""

    def __init__(self, kind: str, **options: Any) -> None:
        self.kind = kind
        self.options = options
        self.url = ""
        self._tmp = tempfile.TemporaryDirectory(prefix="oqc-bench-")
        self._stderr = open(Path(self._tmp.name) / "server.err", "w+b")  # noqa: SIM115
        if kind == "stub":
            argv: list[Any] = [
                sys.executable,
                HERE / "stub_server.py",
                "--port",
                "0",
                "--mode",
                options.get("mode", "delay"),
                "--delay",
                options.get("delay_s", 0.05),
                "--exec",
                options.get("exec_s", 0.01),
            ]
            ready = re.compile(r"READY (\S+)")
        else:
            config = Path(self._tmp.name) / "emulator.toml"
            config.write_text(emulator_toml(**options["config"]))
            argv = [
                sys.executable,
                "-m",
                "oqc_trio.emulator",
                "serve",
                "--port",
                "0",
                "--executor",
                options.get("executor", "instant"),
                "--config",
                config,
            ]
            ready = re.compile(r"serving (\S+)")
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
        self.proc = subprocess.Popen(
            pinned(SERVER_CORE, argv),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=REPO,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 90
        seen = b""
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if readable:
                line = self.proc.stdout.readline()
                seen += line
                match = ready.search(line.decode(errors="replace"))
                if match:
                    self.url = match.group(1).rstrip("/")
                    break
            if self.proc.poll() is not None:
                break
        if not self.url:
            self.stop()
            raise RuntimeError(f"{kind} server did not start: {seen!r} {self.stderr_tail()}")
        if kind == "emulator" and options.get("executor") == "aer":
            time.sleep(2.0)  # the simulator's worker processes warm up at start
        log(f"{kind} server at {self.url} (pid {self.proc.pid}, core {SERVER_CORE})")

    def stderr_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode(errors="replace")

    def configure(self, **settings: Any) -> None:
        """Stub only: change the completion model."""
        _http(self.url + "/admin/stub/config", "POST", settings)

    def reset(self) -> None:
        """Zero the request counters (the stub also forgets its tasks)."""
        if self.kind == "stub":
            _http(self.url + "/admin/stub/reset", "POST", {})
        else:
            _http(self.url + "/admin/emulator/reset-counters", "POST", {})

    def requests(self) -> dict[str, int]:
        counters = _http(self.url + "/admin/emulator/counters")
        out: dict[str, int] = {}
        for route, count in counters.get("requests", {}).items():
            label = ROUTE_LABELS.get(route, route)
            out[label] = out.get(label, 0) + count
        return out

    def finished_epochs(self) -> dict[str, float]:
        """Stub only: the true completion time of every finished task."""
        return _http(self.url + "/admin/stub/finished")

    def cpu(self) -> tuple[float, float]:
        """CPU seconds of the server process, and of its live child processes (simulators)."""
        main = _proc_cpu(self.proc.pid)
        children = 0.0
        for pid in _descendants(self.proc.pid):
            with contextlib.suppress(OSError):
                children += _proc_cpu(pid)
        return main, children

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._stderr.close()
        self._tmp.cleanup()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- clients -----------------------------------------------------------------------------------


def client_argv(client: str) -> list[Any]:
    if client == "official":
        return [official_python(), CLIENTS / "official.py"]
    return [sys.executable, CLIENTS / f"{client}.py"]


def run_process(
    argv: list[Any], *, cap_s: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run one pinned client process to completion (or kill it at ``cap_s``) and account it."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            pinned(CLIENT_CORE, argv), stdout=out, stderr=err, env=env, cwd=REPO
        )
        capped = False
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() - start > cap_s:
                    proc.kill()
                    pid, status, usage = os.wait4(proc.pid, 0)
                    capped = True
                    break
                time.sleep(0.02)
        except BaseException:
            proc.kill()  # interrupted: never leave a client behind
            os.wait4(proc.pid, 0)
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    return {
        "returncode": proc.returncode,
        "capped": capped,
        "proc_wall_s": wall,
        "proc_cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_mb": usage.ru_maxrss / 1024,
        "stdout": stdout,
        "stderr": stderr,
    }


def run_client(
    server: Server,
    client: str,
    spec: dict[str, Any],
    *,
    cap_s: float,
    env_extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One client run against ``server``: the client's own report plus the OS's and the
    server's accounting."""
    full = {"url": server.url, "token": TOKEN, "qpu": QPU, "program": BELL, **spec}
    env = dict(os.environ, PYTHONHASHSEED="0", **(env_extra or {}))
    server.reset()
    cpu0 = server.cpu()
    proc = run_process([*client_argv(client), json.dumps(full)], cap_s=cap_s, env=env)
    cpu1 = server.cpu()
    requests = server.requests()
    result: dict[str, Any] = {}
    progress = 0
    for line in proc["stdout"].splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
        elif line.startswith("PROGRESS "):
            progress = int(line.split()[1])
    n = spec["n"]
    run: dict[str, Any] = {
        "client": client,
        "n": n,
        "ok": bool(result) and proc["returncode"] == 0,
        "stalled": proc["capped"],
        "cap_s": cap_s,
        "proc_wall_s": proc["proc_wall_s"],
        "proc_cpu_s": proc["proc_cpu_s"],
        "maxrss_mb": proc["maxrss_mb"],
        "requests": requests,
        "total_requests": sum(requests.values()),
        "task_requests": sum(v for k, v in requests.items() if k in TASK_ENDPOINTS),
        "server_cpu_s": cpu1[0] - cpu0[0],
        "server_children_cpu_s": cpu1[1] - cpu0[1],
    }
    if result:
        run.update({k: v for k, v in result.items() if k not in ("client", "n")})
    else:
        run["completed"] = progress
        run["wall_s"] = proc["proc_wall_s"]
        if not proc["capped"]:
            run["error"] = (proc["stderr"] or proc["stdout"])[-1500:]
            log(f"  {client} failed (exit {proc['returncode']}): {run['error'][-300:]}")
    completed = run.get("completed") or 0
    if run["ok"] and completed:
        run["jobs_per_s"] = completed / run["wall_s"]
        if "cpu_s" in run:
            run["cpu_ms_per_job"] = 1000 * run["cpu_s"] / completed
    elif run["stalled"]:
        run["jobs_per_s"] = completed / cap_s  # what it managed before the cap
    # A failed run has no throughput: it is reported as failed, not as 0 jobs/s.
    # Per job: the task endpoints; the session's setup (health check, QPU list) is left out.
    run["req_per_job"] = run["task_requests"] / n
    if run["total_requests"]:
        run["server_us_per_request"] = 1e6 * run["server_cpu_s"] / run["total_requests"]
    state = "STALLED" if run["stalled"] else ("ok" if run["ok"] else "FAILED")
    log(
        f"  {client:<8} n={n:<6} {state:<7} {run.get('jobs_per_s', float('nan')):8.1f} jobs/s  "
        f"cpu {run.get('cpu_ms_per_job', float('nan')):.3f} ms/job  "
        f"req/job {run['req_per_job']:.3f}  rss {run['maxrss_mb']:.0f} MB"
    )
    return run


# -- aggregation -------------------------------------------------------------------------------


def stat(runs: list[dict[str, Any]], key: str) -> dict[str, float] | None:
    values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = {
        k
        for r in runs
        for k, v in r.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    summary: dict[str, Any] = {k: stat(runs, k) for k in sorted(keys)}
    endpoints = sorted({e for r in runs for e in r.get("requests", {})})
    summary["per_endpoint"] = {
        e: statistics.median(r.get("requests", {}).get(e, 0) / r["n"] for r in runs)
        for e in endpoints
    }
    summary["stalled"] = sum(1 for r in runs if r.get("stalled"))
    summary["failed"] = sum(1 for r in runs if not r.get("ok") and not r.get("stalled"))
    summary["reps"] = len(runs)
    return summary


class Group:
    """The repetitions of one client configuration."""

    def __init__(
        self,
        key: str,
        label: str,
        n: int,
        run: Callable[[], dict[str, Any]],
        *,
        stop_if_stalled: bool = False,
    ):
        self.key, self.label, self.n = key, label, n
        self._run = run
        self.stop_if_stalled = stop_if_stalled
        self.runs: list[dict[str, Any]] = []

    def step(self) -> None:
        if self.stop_if_stalled and any(r.get("stalled") for r in self.runs):
            return  # a stalled configuration is not repeated: it would only stall again
        self.runs.append(self._run())

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "n": self.n,
            "runs": self.runs,
            "summary": summarize(self.runs) if self.runs else {},
        }


def alternate(groups: list[Group], reps: int) -> None:
    """Rep 1: A B C; rep 2: B C A; ... so no client always runs first or last."""
    for rep in range(reps):
        shift = rep % len(groups) if groups else 0
        order = groups[shift:] + groups[:shift]
        log(f" repetition {rep + 1}/{reps}")
        for group in order:
            group.step()


# -- scenarios ---------------------------------------------------------------------------------


def _config_json() -> str:
    from oqc_trio.config import config_to_wire

    return config_to_wire(None)[0]


def _cap(n: int) -> float:
    return 60 + n * 0.004


def scenario_server(args: argparse.Namespace) -> dict[str, Any]:
    """Per-request server CPU: the stub against the emulator (instant executor), same floor
    client, same 2,000 jobs completing 50 ms after submission."""
    n = args.n[0] if args.n else (500 if args.quick else 2000)
    spec = {"n": n, "config": _config_json(), "expect_s": 0.05}
    groups: list[dict[str, Any]] = []
    emu_config = {"execution_time_s": 0.05, "workers": 1000}
    with (
        Server("stub", mode="delay", delay_s=0.05) as stub,
        Server("emulator", executor="instant", config=emu_config) as emu,
    ):
        g_stub = Group(
            "floor-stub", "floor @ stub", n, lambda: run_client(stub, "floor", spec, cap_s=_cap(n))
        )
        g_emu = Group(
            "floor-emulator",
            "floor @ emulator (instant)",
            n,
            lambda: run_client(emu, "floor", spec, cap_s=_cap(n) * 4),
        )
        alternate([g_stub, g_emu], args.reps)
        groups = [g_stub.as_dict(), g_emu.as_dict()]
    return {"groups": groups, "params": {"n": n, "completion_s": 0.05}}


def scenario_instant(args: argparse.Namespace) -> dict[str, Any]:
    """N jobs, each completing 50 ms after its submission (no queue), on the stub."""
    sizes = args.n or ([1000] if args.quick else [1000, 10_000, 100_000])
    config = _config_json()
    out: list[dict[str, Any]] = []
    with Server("stub", mode="delay", delay_s=0.05) as server:
        for n in sizes:
            log(f"instant: N = {n}")
            cap = _cap(n)

            def ours(n: int = n, cap: float = cap) -> dict[str, Any]:
                return run_client(server, "ours", {"n": n, "timeout_s": None}, cap_s=cap)

            def floor(n: int = n, cap: float = cap) -> dict[str, Any]:
                return run_client(
                    server, "floor", {"n": n, "config": config, "expect_s": 0.05}, cap_s=cap
                )

            def official_one(n: int = n) -> dict[str, Any]:
                return run_client(
                    server,
                    "official",
                    {"n": n, "batch": 0},
                    cap_s=120.0,
                    env_extra={"OQC_SDK_MAX_BROADCAST_JOBS": str(n)},
                )

            def official_200(n: int = n, cap: float = cap) -> dict[str, Any]:
                return run_client(server, "official", {"n": n, "batch": 200}, cap_s=cap * 3)

            groups = [
                Group("ours", "oqc-trio, one CompositeJob", n, ours),
                Group("floor", "httpx floor (8 in flight)", n, floor),
            ]
            if n <= 10_000:
                groups += [
                    Group(
                        "official-one",
                        "official 0.1.24, one composite (cap 120 s)",
                        n,
                        official_one,
                        stop_if_stalled=True,
                    ),
                    Group("official-200", "official 0.1.24, 200-job composites", n, official_200),
                ]
            alternate(groups, args.reps)
            out += [g.as_dict() for g in groups]
    return {"groups": out, "params": {"sizes": sizes, "completion_s": 0.05}}


def poll_analysis(server: Server, exec_s: float, n: int) -> dict[str, float]:
    """Stub only: every status request classified by what the task was doing at that moment,
    per job. ``queued_ahead_k`` counts polls of tasks with k or more tasks still ahead."""
    data = _http(server.url + "/admin/stub/polls")
    tasks = data["tasks"]
    seen_final: set[str] = set()
    out = {
        "completed_first": 0,
        "completed_again": 0,
        "running": 0,
        "queued_1_ahead": 0,
        "queued_2_8_ahead": 0,
        "queued_9plus_ahead": 0,
    }
    for when, task_id, status in data["polls"]:
        if status == "COMPLETED":
            key = "completed_again" if task_id in seen_final else "completed_first"
            seen_final.add(task_id)
        elif status == "RUNNING":
            key = "running"
        else:
            start = tasks[task_id][1] or when
            ahead = max(1, round((start - when) / exec_s)) if exec_s else 1
            key = (
                "queued_1_ahead"
                if ahead <= 1
                else ("queued_2_8_ahead" if ahead <= 8 else "queued_9plus_ahead")
            )
        out[key] += 1
    return {k: v / n for k, v in out.items()}


def scenario_queue(args: argparse.Namespace) -> dict[str, Any]:
    """N tasks on a FIFO QPU (one worker, 10 ms per task): requests per job and the lag from
    each task's true completion (the server's clock) to the client seeing it."""
    n = args.n[0] if args.n else (500 if args.quick else 2000)
    exec_s = 0.01
    cap = 60 + n * exec_s * 3
    with Server("stub", mode="fifo", exec_s=exec_s) as server:

        def analysed(run: dict[str, Any]) -> dict[str, Any]:
            run["polls_per_job"] = poll_analysis(server, exec_s, n)
            return run

        groups = [
            Group(
                "ours",
                "oqc-trio, one CompositeJob",
                n,
                lambda: analysed(
                    run_client(server, "ours", {"n": n, "timeout_s": None, "lags": True}, cap_s=cap)
                ),
            ),
            Group(
                "official-one",
                "official 0.1.24, one composite",
                n,
                lambda: analysed(
                    run_client(
                        server,
                        "official",
                        {"n": n, "batch": 0, "lags": True},
                        cap_s=cap,
                        env_extra={"OQC_SDK_MAX_BROADCAST_JOBS": str(n)},
                    )
                ),
                stop_if_stalled=True,
            ),
        ]
        alternate(groups, args.reps)
    return {
        "groups": [g.as_dict() for g in groups],
        "params": {"n": n, "exec_s": exec_s, "queue_s": n * exec_s},
    }


def scenario_single(args: argparse.Namespace) -> dict[str, Any]:
    """One job's ``execute`` latency, jobs one after another, on a server completing each task
    50 ms after submission, and at once (0 ms)."""
    k = args.n[0] if args.n else (5 if args.quick else 20)
    out = []
    with Server("stub", mode="delay", delay_s=0.05) as server:
        for delay in (0.05, 0.0):
            server.configure(mode="delay", delay_s=delay)
            log(f"single: completion {delay * 1000:.0f} ms after submit, {k} jobs per process")
            groups = [
                Group(
                    f"ours-{delay}",
                    f"oqc-trio, completion +{delay * 1000:.0f} ms",
                    k,
                    lambda: run_client(
                        server, "ours", {"n": k, "mode": "single", "timeout_s": 30}, cap_s=60
                    ),
                ),
                Group(
                    f"official-{delay}",
                    f"official 0.1.24, completion +{delay * 1000:.0f} ms",
                    k,
                    lambda: run_client(
                        server, "official", {"n": k, "mode": "single", "timeout_s": 30}, cap_s=60
                    ),
                ),
            ]
            alternate(groups, args.reps)
            for group in groups:
                for run in group.runs:
                    lat = sorted(run.get("latencies_s") or [])
                    if lat:
                        run["latency_median_ms"] = 1000 * statistics.median(lat)
                        run["latency_p90_ms"] = 1000 * lat[min(len(lat) - 1, int(0.9 * len(lat)))]
                        run["latency_first_ms"] = 1000 * run["latencies_s"][0]
            out += [g.as_dict() for g in groups]
    return {"groups": out, "params": {"jobs_per_process": k}}


RUNNER_BATCH = """# generated by benchmarks/run.py: {n} jobs, rz(theta) sweep before a Bell pair
[server]
url = "{url}"
token_env = "OQC_BENCH_TOKEN"

[defaults]
qpu = "{qpu}"
shots = 1000

[[jobs]]
name = "bench"
program = '''
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
rz({{theta}}) q[0];
h q[0];
cx q[0],q[1];
measure q -> c;
'''

[jobs.params]
theta = {{ start = 0.0, stop = 1.0, num = {n} }}
"""


def runner_available() -> str | None:
    """None if ``oqc_trio.runner.cli.main`` is importable, else why not."""
    try:
        spec = importlib.util.find_spec("oqc_trio.runner.cli")
    except ModuleNotFoundError as exc:
        return f"oqc_trio.runner is not importable ({exc})"
    if spec is None:
        return "oqc_trio.runner.cli does not exist yet"
    done = subprocess.run(
        [sys.executable, "-c", "from oqc_trio.runner.cli import main; print(callable(main))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.stdout.strip() != "True":
        return f"oqc_trio.runner.cli.main is not usable: {done.stderr.strip()[-300:]}"
    return None


def scenario_runner(args: argparse.Namespace) -> dict[str, Any]:
    """``oqc-run batch.toml`` on N jobs against the bare SDK (one CompositeJob), whole-process
    CPU of each (the runner also journals, writes results and shows progress)."""
    n = args.n[0] if args.n else (1000 if args.quick else 10_000)
    why = runner_available()
    if why is not None:
        log(f"runner: pending: {why}")
        return {"groups": [], "pending": why, "params": {"n": n}}
    work = Path(tempfile.mkdtemp(prefix="oqc-bench-runner-"))
    try:
        with Server("stub", mode="delay", delay_s=0.05) as server:
            batch = work / "batch.toml"
            batch.write_text(RUNNER_BATCH.format(url=server.url, qpu=QPU, n=n))
            env = dict(os.environ, OQC_BENCH_TOKEN=TOKEN, PYTHONHASHSEED="0")
            plan = subprocess.run(
                [sys.executable, "-m", "oqc_trio", "plan", str(batch)],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                cwd=work,
            )
            if plan.returncode != 0:
                message = (plan.stderr or plan.stdout).strip()[-500:]
                why = f"`oqc-run plan` rejected the benchmark batch file: {message}"
                log(f"runner: pending: {why}")
                return {"groups": [], "pending": why, "params": {"n": n}}

            counter = iter(range(10**6))
            # The same batch writing no result file: what the journal and the run loop cost
            # apart from the snapshot, CSV and HDF5 outputs.
            journal_only = work / "journal-only.toml"
            journal_only.write_text(batch.read_text() + "\n[output]\nformats = []\n")
            # And without counts.h5 alone: HDF5 is the one format with a fixed cost (importing
            # numpy and h5py), so each format's share of the overhead shows in one run.
            no_hdf5 = work / "no-hdf5.toml"
            no_hdf5.write_text(batch.read_text() + '\n[output]\nformats = ["snapshot", "csv"]\n')

            def runner(batch: Path = batch, client: str = "runner") -> dict[str, Any]:
                out_dir = work / f"out-{next(counter)}"
                server.reset()
                cpu0 = server.cpu()
                proc = run_process(
                    [
                        sys.executable,
                        "-m",
                        "oqc_trio",
                        "run",
                        batch,
                        "--out",
                        out_dir,
                        "--fresh",
                        "-q",
                    ],
                    cap_s=_cap(n) * 2,
                    env=env,
                )
                cpu1 = server.cpu()
                requests = server.requests()
                task_requests = sum(v for k, v in requests.items() if k in TASK_ENDPOINTS)
                run = {
                    "client": client,
                    "n": n,
                    "ok": proc["returncode"] == 0,
                    "stalled": proc["capped"],
                    "proc_wall_s": proc["proc_wall_s"],
                    "proc_cpu_s": proc["proc_cpu_s"],
                    "maxrss_mb": proc["maxrss_mb"],
                    "requests": requests,
                    "total_requests": sum(requests.values()),
                    "req_per_job": task_requests / n,
                    "server_cpu_s": cpu1[0] - cpu0[0],
                    "jobs_per_s": n / proc["proc_wall_s"],
                    "proc_cpu_ms_per_job": 1000 * proc["proc_cpu_s"] / n,
                }
                if not run["ok"]:
                    run["error"] = (proc["stderr"] or proc["stdout"])[-1500:]
                log(
                    f"  {client}   n={n} exit {proc['returncode']} "
                    f"cpu {run['proc_cpu_ms_per_job']:.3f} ms/job (process)"
                )
                return run

            def bare() -> dict[str, Any]:
                run = run_client(server, "ours", {"n": n, "timeout_s": None}, cap_s=_cap(n))
                run["proc_cpu_ms_per_job"] = 1000 * run["proc_cpu_s"] / n
                return run

            groups = [
                Group("runner", "oqc-run batch.toml", n, runner),
                Group(
                    "runner-no-hdf5",
                    'oqc-run, snapshot and CSV only (formats = ["snapshot", "csv"])',
                    n,
                    lambda: runner(no_hdf5, "runner-no-hdf5"),
                ),
                Group(
                    "runner-journal",
                    "oqc-run, no result files (formats = [])",
                    n,
                    lambda: runner(journal_only, "runner-journal"),
                ),
                Group("bare", "bare SDK, one CompositeJob", n, bare),
            ]
            alternate(groups, args.reps)
            return {"groups": [g.as_dict() for g in groups], "params": {"n": n}}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scenario_emulator(args: argparse.Namespace) -> dict[str, Any]:
    """Bell, 1,000 shots, simulated by qiskit-aer in the emulator, end to end."""
    n = args.n[0] if args.n else (100 if args.quick else 1000)
    emu_config = {"execution_time_s": 0.0, "workers": 2, "executor_workers": 1}
    with Server("emulator", executor="aer", config=emu_config) as server:
        cap = 120 + n * 0.1
        groups = [
            Group(
                "ours",
                "oqc-trio, one CompositeJob",
                n,
                lambda: run_client(server, "ours", {"n": n, "timeout_s": None}, cap_s=cap),
            ),
            Group(
                "official-one",
                "official 0.1.24, one composite",
                n,
                lambda: run_client(
                    server,
                    "official",
                    {"n": n, "batch": 0},
                    cap_s=cap,
                    env_extra={"OQC_SDK_MAX_BROADCAST_JOBS": str(n)},
                ),
                stop_if_stalled=True,
            ),
        ]
        alternate(groups, args.reps)
    for group in groups:
        for run in group.runs:
            if run.get("completed"):
                run["sim_cpu_ms_per_task"] = 1000 * run["server_children_cpu_s"] / run["completed"]
    return {
        "groups": [g.as_dict() for g in groups],
        "params": {"n": n, "shots": 1000, "executor": "aer"},
    }


_IMPORT_CODE = (
    "import resource, sys, time\n"
    "before = set(sys.modules)\n"
    "w, c = time.perf_counter(), time.process_time()\n"
    "{statement}\n"
    "w, c = time.perf_counter() - w, time.process_time() - c\n"
    "print('IMPORT', w, c, len(set(sys.modules) - before))\n"
)


def _import_run(python: Path | str, statement: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = run_process([python, "-c", _IMPORT_CODE.format(statement=statement)], cap_s=120, env=env)
    line = next((x for x in proc["stdout"].splitlines() if x.startswith("IMPORT ")), "")
    if proc["returncode"] != 0 or not line:
        return {"ok": False, "error": proc["stderr"][-500:]}
    wall, cpu, modules = line.split()[1:]
    return {
        "ok": True,
        "import_ms": 1000 * float(wall),
        "import_cpu_ms": 1000 * float(cpu),
        "modules": int(modules),
        "proc_wall_ms": 1000 * proc["proc_wall_s"],
        "maxrss_mb": proc["maxrss_mb"],
    }


def scenario_import(args: argparse.Namespace) -> dict[str, Any]:
    """Import cost in a fresh interpreter (bytecode caches warm): ``import oqc_trio`` (lazy),
    ``from oqc_trio import OqcSdk`` (what submitting work needs) and ``import oqc_qcaas_sdk``
    (which imports its OqcSdk eagerly)."""
    reps = 2 if args.quick else max(5, args.reps)
    official = official_python()
    targets = {
        "ours-package": (sys.executable, "import oqc_trio"),
        "ours-sdk": (sys.executable, "from oqc_trio import OqcSdk"),
        "official": (official, "import oqc_qcaas_sdk"),
        "python": (sys.executable, "pass"),
    }
    for python, statement in targets.values():  # warm the bytecode caches
        _import_run(python, statement)
    labels = {
        "ours-package": "`import oqc_trio` (lazy)",
        "ours-sdk": "`from oqc_trio import OqcSdk`",
        "official": "`import oqc_qcaas_sdk` (imports its OqcSdk)",
        "python": "bare interpreter (`pass`)",
    }
    groups = [
        Group(key, labels[key], 1, lambda p=python, st=statement: _import_run(p, st))
        for key, (python, statement) in targets.items()
    ]
    alternate(groups, reps)
    result = [g.as_dict() for g in groups]
    log(
        "import: "
        + ", ".join(
            f"{g['label']}: {g['summary']['import_ms']['median']:.0f} ms"
            for g in result
            if g["summary"].get("import_ms")
        )
    )
    return {"groups": result, "params": {"reps": reps}}


def scenario_profile(args: argparse.Namespace) -> dict[str, Any]:
    """Where ours spends its client CPU at N jobs (cProfile; the shares matter, not the
    absolute times, which cProfile inflates), and what holds its memory (tracemalloc)."""
    n = args.n[0] if args.n else (2000 if args.quick else 10_000)
    work = Path(tempfile.mkdtemp(prefix="oqc-bench-profile-"))
    try:
        with Server("stub", mode="delay", delay_s=0.05) as server:
            prof = work / "ours.prof"
            spec = {
                "url": server.url,
                "token": TOKEN,
                "qpu": QPU,
                "program": BELL,
                "n": n,
                "timeout_s": None,
            }
            server.reset()
            proc = run_process(
                [sys.executable, CLIENTS / "ours.py", json.dumps({**spec, "cprofile": str(prof)})],
                cap_s=_cap(n) * 4,
            )
            if proc["returncode"] != 0 or not prof.exists():
                return {"groups": [], "error": proc["stderr"][-1500:], "params": {"n": n}}
            functions, packages, total = _profile_tables(prof)
            server.reset()
            # tracemalloc slows the client ~10x: a smaller N gives the same per-job picture.
            mem_n = min(n, 5000)
            mem_spec = json.dumps({**spec, "n": mem_n, "tracemalloc": 20})
            mem = run_process(
                [sys.executable, CLIENTS / "ours.py", mem_spec], cap_s=_cap(mem_n) * 12
            )
            memory = {}
            for line in mem["stdout"].splitlines():
                if line.startswith("RESULT "):
                    memory = json.loads(line[7:]).get("tracemalloc", {})
            memory["maxrss_mb"] = mem["maxrss_mb"]
            memory["n"] = mem_n
            if not memory.get("top"):
                memory["error"] = (mem["stderr"] or mem["stdout"])[-800:]
            sampled = _pyspy_profiles(server, n, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "groups": [],
        "params": {"n": n},
        "profile": {"total_s": total, "functions": functions, "packages": packages},
        "pyspy": sampled,
        "memory": memory,
    }


def _pyspy() -> str | None:
    found = shutil.which("py-spy")
    local = Path(sys.executable).parent / "py-spy"
    return found or (str(local) if local.exists() else None)


#: Sample categories, first match wins (substring of the collapsed stack, its root frame
#: removed so that the client script's ``<module>`` does not match everything).
_CATEGORIES = (
    ("startup: imports", ("importlib._bootstrap",)),
    ("startup: open()/health/QPUs", ("OqcSdk.open", "OqcSdk.__aenter__")),
    (
        "HTTP exchange: HTTP client (httpx or oqc-trio's _http1), h11, socket",
        ("AsyncClient.send", "AsyncClient.post", "AsyncClient.get", "oqc_trio/_http1.py"),
    ),
    ("HTTP: building requests, parsing JSON", ("build_request", "Response.json", "_parse_json")),
    ("oqc-trio: transport (retries, auth, rate budget)", ("oqc_trio/_transport.py",)),
    ("oqc-trio: poll scheduler", ("PollScheduler",)),
    ("oqc-trio: submitter", ("Submitter",)),
    ("oqc-trio: job actors, supervisor", ("Drive.", "drive (", "Job._")),
    (
        "oqc-trio: create_job, composite, outputs",
        ("create_job", "CompositeJob", "run_jobs", "JobOutputProxy"),
    ),
    ("floor: its own code (and the trio calls it makes)", ("floor.py",)),
    ("idle worker threads", ("WorkerThread._work",)),
    ("trio run loop: scheduling, timers, I/O wait", ("trio/_core",)),
)


def _categorise(stack: str) -> str:
    body = stack.split(";", 1)[-1]
    for name, needles in _CATEGORIES:
        if any(needle in body for needle in needles):
            return name
    return "other"


def _pyspy_profiles(server: Server, n: int, work: Path) -> dict[str, Any]:
    """Sample ours and the floor with py-spy (no instrumentation overhead), whole process;
    ms/job by category, startup excluded from the per-job figures."""
    pyspy = _pyspy()
    if pyspy is None:
        return {"missing": "py-spy not installed (pip install py-spy): only cProfile below"}
    rate = 250
    out: dict[str, Any] = {"rate_hz": rate, "clients": {}}
    for client in ("ours", "floor"):
        raw = work / f"{client}.raw"
        spec = {
            "url": server.url,
            "token": TOKEN,
            "qpu": QPU,
            "program": BELL,
            "n": n,
            "timeout_s": None,
            "config": _config_json(),
            "expect_s": 0.05,
        }
        server.reset()
        argv = [
            pyspy,
            "record",
            "-r",
            str(rate),
            "--format",
            "raw",
            "-o",
            str(raw),
            "--",
            *pinned(CLIENT_CORE, [*client_argv(client), json.dumps(spec)]),
        ]
        done = subprocess.run(
            pinned(SERVER_CORE, argv), capture_output=True, text=True, timeout=_cap(n) * 3, cwd=REPO
        )
        if not raw.exists() or done.returncode != 0:
            out["clients"][client] = {"error": (done.stderr or done.stdout)[-500:]}
            log(f"  py-spy {client} failed: {(done.stderr or done.stdout)[-300:]}")
            continue
        categories: dict[str, int] = {}
        leaves: dict[str, int] = {}
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            total += count
            category = _categorise(stack)
            categories[category] = categories.get(category, 0) + count
            if not category.startswith(("startup", "idle")):
                leaf = stack.rsplit(";", 1)[-1]
                leaves[leaf] = leaves.get(leaf, 0) + count
        per_job = 1000 / rate / n  # ms per job per sample
        working = sum(v for k, v in categories.items() if not k.startswith(("startup", "idle")))
        out["clients"][client] = {
            "samples": total,
            "ms_per_job": working * per_job,
            "categories": {
                k: {
                    "samples": v,
                    "ms_per_job": v * per_job,
                    "pct": 100 * v / working if working else 0,
                }
                for k, v in sorted(categories.items(), key=lambda kv: -kv[1])
            },
            "leaves": [
                {"function": k, "pct": 100 * v / working if working else 0}
                for k, v in sorted(leaves.items(), key=lambda kv: -kv[1])[:20]
            ],
        }
    return out


def _package_of(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    if "src" in parts and "oqc_trio" in parts:
        i = parts.index("oqc_trio")
        return "oqc_trio." + parts[i + 1].removesuffix(".py") if i + 1 < len(parts) else "oqc_trio"
    if "benchmarks" in parts:
        return "benchmark client"
    return "stdlib:" + Path(filename).stem


def _profile_tables(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    import pstats

    stats = pstats.Stats(str(path))
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in raw.values())
    rows = []
    by_package: dict[str, float] = {}
    for (filename, line, name), (_cc, nc, tt, ct, _) in raw.items():
        package = _package_of(filename)
        if package == "builtins (C)":
            # Attribute C functions to the builtin's name (json encode/decode, select...).
            package = f"C: {name.strip('<>').split(' of ')[0]}"
        by_package[package] = by_package.get(package, 0.0) + tt
        rows.append(
            {
                "function": f"{Path(filename).name}:{line}({name})" if line else name,
                "package": package,
                "calls": nc,
                "tottime_s": tt,
                "cumtime_s": ct,
                "self_pct": 100 * tt / total if total else 0,
                "cum_pct": 100 * ct / total if total else 0,
            }
        )
    rows.sort(key=lambda r: r["tottime_s"], reverse=True)
    packages = sorted(
        (
            {"package": p, "self_s": s, "self_pct": 100 * s / total if total else 0}
            for p, s in by_package.items()
        ),
        key=lambda r: r["self_s"],
        reverse=True,
    )
    return rows[:30], packages[:25], total


RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "server": scenario_server,
    "instant": scenario_instant,
    "queue": scenario_queue,
    "single": scenario_single,
    "runner": scenario_runner,
    "emulator": scenario_emulator,
    "import": scenario_import,
    "profile": scenario_profile,
}


# -- metadata and report -----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=REPO,
        ).stdout.strip()
    )
    ours = {
        p: importlib.metadata.version(p)
        for p in ("oqc-trio", "httpx", "httpcore", "h11", "trio", "anyio")
        if _has(p)
    }
    official = (
        _versions(
            official_python(),
            [
                "oqc-qcaas-sdk",
                "httpx",
                "httpcore",
                "h11",
                "anyio",
                "sniffio",
                "numpy",
                "scipp",
                "pydantic",
            ],
        )
        if (OFFICIAL_VENV / "bin" / "python").exists()
        else {}
    )
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pinning": f"client core {CLIENT_CORE}, server core {SERVER_CORE} (taskset)"
        if CLIENT_CORE is not None
        else "none (taskset unavailable or one core)",
        "git": commit + (" (dirty)" if dirty else ""),
        "ours": ours,
        "official": official,
    }


def _has(package: str) -> bool:
    try:
        importlib.metadata.version(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


#: The parts of the package each scenario runs (the SDK itself is everything else).
_SCENARIO_AREAS = {"runner": ("runner",), "emulator": ("emulator",), "server": ("emulator",)}


def source_fingerprint(scenario: str) -> str:
    """A digest (path, size, mtime) of the package files the scenario runs: shows the code
    under test changed while it ran (other work in the same checkout)."""
    import hashlib

    root = REPO / "src" / "oqc_trio"
    areas = _SCENARIO_AREAS.get(scenario, ())
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        part = path.relative_to(root).parts[0]
        if part in ("runner", "emulator") and part not in areas:
            continue
        st = path.stat()
        digest.update(f"{path.relative_to(REPO)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()[:12]


def results_dir(quick: bool) -> Path:
    return HERE / (".quick" if quick else "results")


def save(name: str, data: dict[str, Any], quick: bool, args_line: str) -> Path:
    folder = results_dir(quick)
    folder.mkdir(parents=True, exist_ok=True)
    data = {"scenario": name, "command": args_line, "machine": machine(), **data}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, default=str))
    return path


def load_all(quick: bool) -> dict[str, dict[str, Any]]:
    folder = results_dir(quick)
    out = {}
    for name in SCENARIOS:
        path = folder / f"{name}.json"
        if path.exists():
            out[name] = json.loads(path.read_text())
    return out


def precompile() -> None:
    """Byte-compile oqc_trio's sources, as an installed package is, before measuring.

    An editable install under ``PYTHONDONTWRITEBYTECODE=1`` (set on this machine) is never
    byte-compiled, so every client process would compile our ~70 modules from source (about
    40 ms for the runner) while the official SDK, installed by pip, loads its ``.pyc`` files.
    Users' processes load cached bytecode from the second run on; so do ours here."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("oqc_trio")
    if spec is None or not spec.submodule_search_locations:
        return
    for location in spec.submodule_search_locations:
        compileall.compile_dir(location, quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario",
        required=True,
        choices=(*SCENARIOS, "all", "report"),
        help="'report' only re-renders RESULTS.md from the saved JSON",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions per client (default 3)")
    parser.add_argument(
        "--n",
        type=lambda s: [int(x.replace("_", "")) for x in s.split(",")],
        help="job count(s), comma-separated (instant: sizes; others: one N)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small N, 1 repetition; results in benchmarks/.quick/"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.reps = 1
    if args.reps < 1:
        parser.error("--reps must be >= 1")
    if SERVER_CORE is not None:
        # The harness sleeps on the server's core, away from the client being measured.
        os.sched_setaffinity(0, {SERVER_CORE})
    # SIGTERM unwinds like Ctrl-C, so servers and clients are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    from report import render  # local module, next to this file

    names = (
        list(SCENARIOS)
        if args.scenario == "all"
        else ([] if args.scenario == "report" else [args.scenario])
    )
    args_line = "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.monotonic()
    if names:
        precompile()
    for name in names:
        t0 = time.monotonic()
        log(f"== scenario {name}")
        load_before = os.getloadavg()
        source_before = source_fingerprint(name)
        data = RUNNERS[name](args)
        data["source"] = {"before": source_before, "after": source_fingerprint(name)}
        data["elapsed_s"] = time.monotonic() - t0
        # Other work on the machine skews the figures: keep the load averages with them.
        data["loadavg"] = {"before": load_before, "after": os.getloadavg()}
        path = save(name, data, args.quick, args_line)
        log(f"== {name} done in {data['elapsed_s']:.0f} s -> {path.relative_to(REPO)}")
    out = results_dir(args.quick).parent / ("RESULTS.md" if not args.quick else ".quick/RESULTS.md")
    results = load_all(args.quick)
    if args.quick and names:
        # A smoke run shows what it just ran, not older quick results lying around.
        results = {name: data for name, data in results.items() if name in names}
    text = render(results)
    out.write_text(text)
    if names:
        log(f"all done in {time.monotonic() - started:.0f} s; report: {out.relative_to(REPO)}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
