"""Fault injection, each kind observed by a plain httpx client exactly as configured."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from emulator_support import ADMIN, ALICE, BELL, LUCY, auth, make_config, submit_one

from oqc_trio.emulator.cli import banner, main
from oqc_trio.emulator.config import ConfigError, EmulatorConfig
from oqc_trio.emulator.faults import FaultRule, parse_cli_fault
from oqc_trio.emulator.server import RunningEmulator, open_emulator

SUBMIT = "POST /tasks/submit"
QPUS = "GET /admin/qpu"


async def add_faults(http: httpx.AsyncClient, emu: RunningEmulator, *rules: dict[str, Any]) -> Any:
    response = await http.post(
        f"{emu.url}/admin/emulator/faults", json={"rules": list(rules)}, headers=auth(ADMIN)
    )
    assert response.status_code == 200, response.text
    return response.json()


async def counters(http: httpx.AsyncClient, emu: RunningEmulator) -> dict[str, Any]:
    response = await http.get(f"{emu.url}/admin/emulator/counters", headers=auth(ADMIN))
    return response.json()


def submit_body(program: str = BELL) -> dict[str, Any]:
    return {"tasks": [{"program": program, "qpu_id": LUCY}]}


async def test_status_faults_in_sequence_with_retry_after(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    statuses = [429, 500, 502, 503, 504]
    await add_faults(
        http,
        emu,
        *({"routes": [QPUS], "status": s, "times": 1, "retry_after_s": 2} for s in statuses),
    )
    seen = [await http.get(f"{emu.url}/admin/qpu", headers=auth()) for _ in range(6)]
    assert [r.status_code for r in seen] == [*statuses, 200]
    assert [r.headers.get("retry-after") for r in seen[:5]] == ["2", None, None, "2", None]
    assert seen[0].json()["response"]["errors"] == ["injected fault"]
    # Other routes were never touched.
    assert (await http.get(f"{emu.url}/qpus", headers=auth())).status_code == 200
    injected = (await counters(http, emu))["faults_injected"]
    assert injected == {f"status:{s}": 1 for s in statuses}


async def test_probabilities_are_deterministic_with_a_seed(http: httpx.AsyncClient) -> None:
    rule = {"routes": [QPUS], "status": [429, 503], "probability": 0.3}

    async def observe(seed: int) -> list[int]:
        config = make_config(faults={"seed": seed, "rules": [rule]})
        async with open_emulator(config, executor="instant") as emu:
            return [
                (await http.get(f"{emu.url}/admin/qpu", headers=auth())).status_code
                for _ in range(60)
            ]

    first, again, other = await observe(4), await observe(4), await observe(5)
    assert first == again != other
    assert set(first) == {200, 429, 503}
    assert 6 <= sum(s != 200 for s in first) <= 30


async def test_latency_delays_the_answer(emu: RunningEmulator, http: httpx.AsyncClient) -> None:
    await add_faults(http, emu, {"kind": "latency", "routes": [QPUS], "delay_s": 0.3, "times": 1})
    started = time.monotonic()
    response = await http.get(f"{emu.url}/admin/qpu", headers=auth())
    assert response.status_code == 200 and time.monotonic() - started >= 0.3


async def test_slow_answers_arrive_past_the_client_timeout_but_the_work_is_done(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    await add_faults(http, emu, {"kind": "slow", "routes": [SUBMIT], "delay_s": 2.0, "times": 1})
    with pytest.raises(httpx.ReadTimeout):
        await http.post(f"{emu.url}/tasks/submit", json=submit_body(), headers=auth(), timeout=0.3)
    stats = await counters(http, emu)
    assert len(stats["submissions"]) == 1  # the server acted on the request it answered late


async def test_dropped_connections_close_without_an_answer(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    await add_faults(
        http,
        emu,
        {"kind": "drop", "routes": [SUBMIT], "times": 1},
        {"kind": "drop", "phase": "after", "routes": [SUBMIT], "sequence": "01"},
    )
    url = f"{emu.url}/tasks/submit"
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await http.post(url, json=submit_body(), headers=auth())
    assert (await counters(http, emu))["submissions"] == {}  # dropped before handling
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(url, json=submit_body(), headers=auth())
    assert len((await counters(http, emu))["submissions"]) == 1  # dropped after handling
    assert (await http.post(url, json=submit_body(), headers=auth())).status_code == 200
    assert (await counters(http, emu))["faults_injected"] == {"drop": 1, "drop-after": 1}


async def test_accepted_then_500_records_the_submission(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    await add_faults(http, emu, {"kind": "accept_then_500", "routes": [SUBMIT], "times": 1})
    response = await http.post(f"{emu.url}/tasks/submit", json=submit_body(), headers=auth())
    assert response.status_code == 500
    (task_id,) = (await counters(http, emu))["submissions"]
    with trio.fail_after(5):
        await emu.wait_for_status(task_id, "COMPLETED")
    listing = (await http.get(f"{emu.url}/tasks", headers=auth())).json()
    assert [t["id"] for t in listing] == [task_id]


async def test_tasks_fail_with_the_configured_error(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    rule = {
        "kind": "task_error",
        "qpus": [LUCY],
        "sequence": "01",
        "error_code": 42,
        "message": "drift",
    }
    await add_faults(http, emu, rule)
    first, second, third = [await submit_one(http, emu) for _ in range(3)]
    with trio.fail_after(5):
        for task_id in (first, second, third):
            await emu.wait_for_status(task_id, "COMPLETED", "FAILED")
    infos = [
        (await http.get(f"{emu.url}/tasks/{t}/all_info", headers=auth())).json()
        for t in (first, second, third)
    ]
    assert [i["status"] for i in infos] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert infos[1]["task_error"] == {"error_code": 42, "error_message": "drift"}


async def test_a_restart_fault_loses_the_in_memory_state(http: httpx.AsyncClient) -> None:
    rule = {"kind": "restart", "routes": [QPUS], "downtime_s": 0.3, "times": 1}
    async with open_emulator(make_config(faults={"rules": [rule]}), executor="instant") as emu:
        task_id = await submit_one(http, emu)
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(f"{emu.url}/admin/qpu", headers=auth())
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{emu.url}/admin/version")  # down for 0.3 s
        with trio.fail_after(5):
            await emu.wait_restarted(1)
        lost = await http.get(f"{emu.url}/tasks/{task_id}/all_info", headers=auth())
        assert lost.status_code == 404
        assert (await http.get(f"{emu.url}/admin/qpu", headers=auth())).status_code == 200


async def test_fault_admin_is_admin_only_and_checks_patterns(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    url = f"{emu.url}/admin/emulator/faults"
    rule = {"kind": "drop", "routes": [QPUS]}
    assert (await http.post(url, json=rule, headers=auth(ALICE))).status_code == 403
    typo = await http.post(
        url, json={"kind": "drop", "routes": ["GET /admin/qpus"]}, headers=auth(ADMIN)
    )
    assert typo.status_code == 400 and "matches no endpoint" in typo.text
    bad = await http.post(url, json={"kind": "explode"}, headers=auth(ADMIN))
    assert bad.status_code == 400 and "not a fault kind" in bad.text
    assert (await http.post(url, json=rule, headers=auth(ADMIN))).status_code == 200
    listed = (await http.get(url, headers=auth(ADMIN))).json()
    assert [r["kind"] for r in listed["faults"]] == ["drop"]
    assert (await http.delete(url, headers=auth(ADMIN))).json() == {"faults": []}
    # The admin routes themselves are never faulted.
    await add_faults(http, emu, {"status": 503})
    assert (await http.get(url, headers=auth(ADMIN))).status_code == 200
    assert (await http.get(f"{emu.url}/admin/qpu", headers=auth())).status_code == 503


def test_command_line_and_toml_fault_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = parse_cli_fault("status:status=429|503,probability=0.1,retry_after_s=0.05")
    assert rule == FaultRule(kind="status", status=(429, 503), probability=0.1, retry_after_s=0.05)
    drop = parse_cli_fault("drop:probability=0.02,routes=POST /tasks/submit|POST /tasks")
    assert drop.routes == ("POST /tasks/submit", "POST /tasks") and drop.probability == 0.02
    slow = parse_cli_fault('{"kind": "slow", "delay_s": 40}')
    assert (slow.kind, slow.phase, slow.delay_s) == ("delay", "after", 40.0)
    task = parse_cli_fault("task_error:error_code=7,message=drift,sequence=0|1")
    assert task.sequence == (False, True) and task.error_code == 7
    with pytest.raises(ConfigError, match="probability or sequence"):
        parse_cli_fault("drop:probability=0.5,sequence=01")
    assert main(["serve", "--fault", "meltdown"]) == 2
    assert "not a fault kind" in capsys.readouterr().err

    path = tmp_path / "faults.toml"
    path.write_text(
        "seed = 3\n[faults]\n"
        "rules = [{ kind = 'accept_then_500', routes = ['POST /tasks/submit'] }]\n"
    )
    config = EmulatorConfig.from_toml(path)
    assert config.faults.seed == 3
    assert config.faults.rules[0].status == (500,) and config.faults.rules[0].phase == "after"
    assert json.loads(json.dumps(config.faults.rules[0].doc()))["kind"] == "status"
    shown = banner("http://h:1", config, executor="instant")
    assert "fault: status on POST /tasks/submit (every matching request)" in shown
