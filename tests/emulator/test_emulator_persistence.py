"""Persistence with ``--db``: a restarted emulator knows its users, tokens and tasks, serves
old results and finishes its queue, even after ``SIGKILL``."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from emulator_support import ADMIN, BELL, LUCY, auth, compiler_config, make_config, submit_one

from oqc_trio.emulator.cli import main
from oqc_trio.emulator.persistence import Store, StoreError
from oqc_trio.emulator.server import open_emulator
from oqc_trio.emulator.state import EmulatorState

TOKEN = "kill-test-token"
QPU = "qpu:uk:9:killtest01"
CONFIG = f"""
admin_token = "kill-test-admin"
[[qpus]]
id = "{QPU}"
execution_time_s = 0.01
[[users]]
email = "k@example.com"
tokens = ["{TOKEN}"]
"""


async def test_tasks_tokens_and_windows_survive_a_restart(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    db = tmp_path / "emulator.sqlite"
    config = make_config(execution_time_s=0.0)
    async with open_emulator(config, executor="instant", db=db) as emu:
        done = await submit_one(http, emu, config=compiler_config(7))
        with trio.fail_after(5):
            await emu.wait_for_status(done, "COMPLETED")
        created = await http.post(
            f"{emu.url}/tasks", json={"qpu_id": LUCY, "task_count": 1}, headers=auth()
        )
        (reserved,) = created.json()
        token = await http.post(
            f"{emu.url}/admin/users/current_user/auth_tokens", json={}, headers=auth()
        )
        api_token = token.json()["token"]
        start = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
        window = {
            "qpu_id": LUCY,
            "start_time": start.isoformat(),
            "end_time": (start + dt.timedelta(hours=1)).isoformat(),
        }
        assert (
            await http.post(f"{emu.url}/windows/one-off-window", json=window, headers=auth(ADMIN))
        ).status_code == 200

    async with open_emulator(config, executor="instant", db=db) as emu:
        info = (await http.get(f"{emu.url}/tasks/{done}/all_info", headers=auth(api_token))).json()
        assert info["status"] == "COMPLETED" and info["results"] == {"c": {"00": 7}}
        assert info["timings"]["finished"] is not None
        # The reserved ID can still be submitted, once; resubmitting is a duplicate.
        task = {"program": BELL, "qpu_id": LUCY, "task_id": reserved, "config": compiler_config(3)}
        for _ in range(2):
            response = await http.post(
                f"{emu.url}/tasks/submit", json={"tasks": [task]}, headers=auth()
            )
            assert response.status_code == 200
        with trio.fail_after(5):
            await emu.wait_for_status(reserved, "COMPLETED")
        counters = (
            await http.get(f"{emu.url}/admin/emulator/counters", headers=auth(ADMIN))
        ).json()
        assert counters["duplicate_submissions"] == {reserved: 2}
        assert counters["submissions"][done] == 1
        nxt = (await http.get(f"{emu.qpu_url(LUCY)}/windows/next", headers=auth())).json()
        assert nxt["next_window"]["starting"] == "2031-01-01T00:00:00Z"


async def test_an_admin_restart_with_a_db_keeps_the_queue(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    config = make_config(execution_time_s=0.05)
    async with open_emulator(config, executor="instant", db=tmp_path / "e.sqlite") as emu:
        ids = [await submit_one(http, emu) for _ in range(10)]
        response = await http.post(
            f"{emu.url}/admin/emulator/restart", json={"downtime_s": 0.1}, headers=auth(ADMIN)
        )
        assert response.json() == {"restarting": True, "downtime_s": 0.1}
        with trio.fail_after(5):
            await emu.wait_restarted(1)
            for task_id in ids:
                await emu.wait_for_status(task_id, "COMPLETED")
        assert emu.store is not None and emu.store.transactions > 0


def test_a_database_of_another_schema_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        connection.execute("INSERT INTO meta VALUES ('schema', '99')")
    store = Store(path, EmulatorState(make_config()))
    with pytest.raises(StoreError, match="schema 99"):
        store.open()
    assert main(["serve", "--port", "0", "--executor", "instant", "--db", str(path)]) == 2
    assert "schema 99" in capsys.readouterr().err


@asynccontextmanager
async def serve_process(config: Path, db: Path) -> AsyncIterator[tuple[str, trio.Process]]:
    command = [sys.executable, "-m", "oqc_trio.emulator", "serve", "--port", "0"]
    command += ["--executor", "instant", "--config", str(config), "--db", str(db)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    async with trio.open_nursery() as nursery:
        run = partial(trio.run_process, command, stdout=subprocess.PIPE, env=env, check=False)
        process: trio.Process = await nursery.start(run)
        try:
            assert process.stdout is not None
            seen = b""
            with trio.fail_after(30):
                while b"admin token" not in seen:
                    chunk = await process.stdout.receive_some()
                    assert chunk, seen
                    seen += chunk
            yield seen.decode().split("serving ", 1)[1].split()[0], process
        finally:
            if process.returncode is None:
                process.kill()


async def all_info(http: httpx.AsyncClient, url: str, task_id: str) -> dict[str, Any]:
    response = await http.get(
        f"{url}/tasks/{task_id}/all_info", headers={"Authentication-Token": TOKEN}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_killed_server_restarted_with_its_db_answers_for_every_accepted_task(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    config = tmp_path / "emulator.toml"
    config.write_text(CONFIG)
    db = tmp_path / "emulator.sqlite"
    headers = {"Authentication-Token": TOKEN}
    accepted: list[str] = []
    async with serve_process(config, db) as (url, process):
        for _ in range(3):
            created = await http.post(
                f"{url}/tasks", json={"qpu_id": QPU, "task_count": 100}, headers=headers
            )
            ids = created.json()
            tasks = [
                {"program": BELL, "qpu_id": QPU, "task_id": i, "config": compiler_config(5)}
                for i in ids
            ]
            submitted = await http.post(
                f"{url}/tasks/submit", json={"tasks": tasks}, headers=headers
            )
            assert submitted.status_code == 200
            accepted += ids
        single = await http.post(
            f"{url}/tasks/submit",
            json={"tasks": [{"program": BELL, "qpu_id": QPU}]},
            headers=headers,
        )
        accepted.append(single.json()[0]["task_id"])
        process.kill()  # SIGKILL: no chance to write anything more
        await process.wait()
    assert process.returncode == -9

    async with serve_process(config, db) as (url, _):
        first = [await all_info(http, url, task_id) for task_id in accepted]
        waiting = [i["id"] for i in first if i["status"] != "COMPLETED"]
        assert {i["status"] for i in first} <= {"SUBMITTED", "RUNNING", "COMPLETED"}
        assert waiting, "the queue should not have drained before the kill"
        with trio.fail_after(20):
            for task_id in waiting:
                # The server is another process: asking again is the only way to know.
                while (info := await all_info(http, url, task_id))["status"] != "COMPLETED":  # noqa: ASYNC110
                    await trio.sleep(0.05)
                assert info["results"] == {"c": {"00": 5 if task_id != accepted[-1] else 1000}}
        counters = await http.get(
            f"{url}/admin/emulator/counters", headers={"Authentication-Token": "kill-test-admin"}
        )
        stats = counters.json()
        assert stats["duplicate_submissions"] == {}
        assert set(accepted) <= set(stats["submissions"])
