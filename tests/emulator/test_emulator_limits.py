"""Per-user limits: request rate, concurrent requests and active tasks, each refused with 429
and ``Retry-After``; administrators are never limited."""

from __future__ import annotations

import httpx
import pytest
import trio
from emulator_support import ADMIN, ALICE, BELL, BOB, LUCY, auth, make_config

from oqc_trio.emulator.config import ConfigError, EmulatorConfig
from oqc_trio.emulator.limits import LimitTracker, UserLimits, format_retry_after
from oqc_trio.emulator.server import open_emulator

USERS = [
    {"email": "alice@example.com", "tokens": [ALICE], "limits": {"requests_per_s": 5, "burst": 2}},
    {"email": "bob@example.com", "tokens": [BOB]},
]


async def test_the_request_rate_is_limited_per_user(http: httpx.AsyncClient) -> None:
    config = make_config(users=USERS, limits={"max_active_tasks": 100})
    async with open_emulator(config, executor="instant") as emu:
        url = f"{emu.url}/admin/qpu"
        first = [(await http.get(url, headers=auth())).status_code for _ in range(2)]
        refused = await http.get(url, headers=auth())
        assert first == [200, 200] and refused.status_code == 429
        wait = float(refused.headers["retry-after"])
        assert 0 < wait <= 0.2
        assert "too many requests" in refused.json()["response"]["errors"][0]
        # Bob has the default limits (none on the rate); the admin is never limited.
        assert all([(await http.get(url, headers=auth(BOB))).status_code == 200 for _ in range(5)])
        assert (await http.get(url, headers=auth(ADMIN))).status_code == 200
        await trio.sleep(wait)
        assert (await http.get(url, headers=auth())).status_code == 200


async def test_concurrent_requests_are_limited(http: httpx.AsyncClient) -> None:
    latency = {"kind": "latency", "routes": ["GET /qpus"], "delay_s": 0.5}
    config = make_config(
        limits={"max_concurrent_requests": 1, "retry_after_s": 3}, faults={"rules": [latency]}
    )
    async with open_emulator(config, executor="instant") as emu:
        results: dict[str, httpx.Response] = {}

        async def slow() -> None:
            results["slow"] = await http.get(f"{emu.url}/qpus", headers=auth())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            await trio.sleep(0.2)  # the slow request is being answered
            results["fast"] = await http.get(f"{emu.url}/admin/qpu", headers=auth())
        assert results["slow"].status_code == 200
        refused = results["fast"]
        assert refused.status_code == 429 and refused.headers["retry-after"] == "3"
        assert (await http.get(f"{emu.url}/admin/qpu", headers=auth())).status_code == 200


async def test_active_tasks_are_limited(http: httpx.AsyncClient) -> None:
    past = {"starting": "2020-01-01T00:00:00Z", "ending": "2020-01-02T00:00:00Z"}
    qpus = [{"id": LUCY, "windows": [past]}]  # closed for good: tasks stay queued
    config = make_config(qpus=qpus, limits={"max_active_tasks": 2, "retry_after_s": 7})
    async with open_emulator(config, executor="instant") as emu:
        url = f"{emu.url}/tasks/submit"
        task = {"program": BELL, "qpu_id": LUCY}
        assert (
            await http.post(url, json={"tasks": [task, task]}, headers=auth())
        ).status_code == 200
        refused = await http.post(url, json={"tasks": [task]}, headers=auth())
        assert refused.status_code == 429 and refused.headers["retry-after"] == "7"
        assert "too many active tasks" in refused.text
        counters = await http.get(f"{emu.url}/admin/emulator/counters", headers=auth(ADMIN))
        assert len(counters.json()["submissions"]) == 2  # the refused body queued nothing
        assert (await http.post(url, json={"tasks": [task]}, headers=auth(BOB))).status_code == 200


def test_limit_tracker_and_configuration() -> None:
    tracker = LimitTracker()
    limits = UserLimits(max_concurrent_requests=1, retry_after_s=2.0)
    assert tracker.admit(1, limits, 0.0) is None
    assert tracker.admit(1, limits, 0.0) == 2.0
    tracker.release(1)
    assert tracker.admit(1, limits, 0.0) is None
    assert [format_retry_after(s) for s in (0.05, 0.25, 1.0, 1.2, 0)] == [
        "0.05",
        "0.25",
        "1",
        "2",
        "0",
    ]

    config = EmulatorConfig.from_mapping(
        {
            "limits": {"requests_per_s": 10},
            "users": [{**USERS[0], "limits": {"max_active_tasks": 3}}],
        }
    )
    alice = config.limits_of("alice@example.com")
    assert (alice.requests_per_s, alice.burst, alice.max_active_tasks) == (10.0, 10, 3)
    assert config.limits_of("nobody@example.com") == config.limits
    with pytest.raises(ConfigError, match=r"limits\.burst"):
        EmulatorConfig.from_mapping({"limits": {"requests_per_s": 1, "burst": 0}})
