"""Shared pieces of the emulator's HTTP tests: configs, programs and small request helpers."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import trio

from oqc_trio.emulator.config import EmulatorConfig
from oqc_trio.emulator.server import RunningEmulator, open_emulator

__all__ = [
    "ADMIN",
    "ALICE",
    "BELL",
    "BOB",
    "LUCY",
    "TOSHIKO",
    "auth",
    "compiler_config",
    "make_config",
    "serve_in_thread",
    "submit_one",
]

LUCY = "qpu:uk:2:d865b5a184"
TOSHIKO = "qpu:uk:3:9829a5504f"
ALICE = "alice-token"
BOB = "bob-token"
ADMIN = "admin-token"

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


def make_config(
    *, execution_time_s: float = 0.0, time_scale: float = 1.0, **extra: Any
) -> EmulatorConfig:
    """Two QPUs, users alice and bob (token and password each), a fixed admin token."""
    qpus = extra.pop(
        "qpus",
        [
            {"id": LUCY, "name": "Lucy", "qubits": 8, "execution_time_s": execution_time_s},
            {"id": TOSHIKO, "name": "Toshiko", "qubits": 16, "execution_time_s": execution_time_s},
        ],
    )
    return EmulatorConfig.from_mapping(
        {
            "admin_token": ADMIN,
            "time_scale": time_scale,
            "users": [
                {"email": "alice@example.com", "password": "alice-pw", "tokens": [ALICE]},
                {"email": "bob@example.com", "password": "bob-pw", "tokens": [BOB]},
            ],
            "qpus": qpus,
            **extra,
        }
    )


def auth(token: str = ALICE) -> dict[str, str]:
    """The legacy authentication header."""
    return {"Authentication-Token": token}


def compiler_config(shots: int | None = 1000) -> str:
    """A minimal CompilerConfig JSON string with ``repeats``."""
    return json.dumps(
        {"$type": "<class 'compiler_config.config.CompilerConfig'>", "$data": {"repeats": shots}}
    )


async def submit_one(
    http: httpx.AsyncClient,
    emu: RunningEmulator,
    program: str = BELL,
    *,
    qpu_id: str = LUCY,
    config: str | None = None,
    token: str = ALICE,
    base: str | None = None,
) -> str:
    """Submit one task the way the single-task path does; return its ID."""
    url = (base if base is not None else emu.qpu_url(qpu_id)) + "/tasks/submit"
    task = {"program": program, "qpu_id": qpu_id, "config": config or compiler_config()}
    response = await http.post(url, json={"tasks": [task]}, headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()[0]["task_id"]


@contextlib.contextmanager
def serve_in_thread(
    config: EmulatorConfig, executor: Literal["aer", "instant"] = "instant"
) -> Iterator[RunningEmulator]:
    """Run an emulator in its own thread and trio run, for synchronous tests (hypothesis)."""
    ready: queue.Queue[tuple[RunningEmulator, trio.lowlevel.TrioToken, trio.CancelScope]] = (
        queue.Queue()
    )

    async def main() -> None:
        with trio.CancelScope() as scope:
            async with open_emulator(config, executor=executor) as emu:
                ready.put((emu, trio.lowlevel.current_trio_token(), scope))
                await trio.sleep_forever()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    emu, token, scope = ready.get(timeout=30)
    try:
        yield emu
    finally:
        trio.from_thread.run_sync(scope.cancel, trio_token=token)
        thread.join(timeout=30)
