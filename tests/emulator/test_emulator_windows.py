"""Execution windows: tasks wait for them, the schedule is reported, estimates account for
queue length and windows, and a new window wakes a waiting QPU."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
import trio
from emulator_support import ADMIN, LUCY, TOSHIKO, auth, make_config, submit_one

from oqc_trio.emulator.config import ConfigError, EmulatorConfig
from oqc_trio.emulator.server import open_emulator
from oqc_trio.emulator.state import EmulatorState
from oqc_trio.emulator.windows import Window, start_estimate

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


async def info(http: httpx.AsyncClient, url: str, task_id: str) -> dict[str, Any]:
    return (await http.get(f"{url}/tasks/{task_id}/all_info", headers=auth())).json()


async def test_a_task_outside_a_window_waits_and_runs_when_it_opens(
    http: httpx.AsyncClient,
) -> None:
    # One emulated hour of waiting, a 2-hour window: 0.6 s and 1.2 s at this time scale.
    window = {"start_in_s": 3600, "duration_s": 7200}
    qpus = [{"id": LUCY, "windows": [window], "execution_time_s": 1.0}, {"id": TOSHIKO}]
    async with open_emulator(
        make_config(qpus=qpus, time_scale=1 / 6000), executor="instant"
    ) as emu:
        opening = emu.state.windows[LUCY][0].starting
        task_id = await submit_one(http, emu)
        other = await submit_one(http, emu, qpu_id=TOSHIKO)  # always open
        with trio.fail_after(5):
            await emu.wait_for_status(other, "COMPLETED")
        assert (await info(http, emu.url, task_id))["status"] == "SUBMITTED"

        status = (await http.get(f"{emu.url}/qpus/{LUCY}/status", headers=auth())).json()
        assert status["windowed"] and not status["in_window"]
        waits = await http.post(
            f"{emu.url}/monitoring/task_wait_time", json={"task_ids": [task_id]}, headers=auth()
        )
        wait = waits.json()["task_wait_times"][0]["wait_time_s"]
        assert 0.3 < wait <= 0.6

        with trio.fail_after(5):
            await emu.wait_for_status(task_id, "COMPLETED")
        started = dt.datetime.fromisoformat(
            (await info(http, emu.url, task_id))["timings"]["started"]
        )
        assert started >= opening


async def test_windows_next_and_history_report_the_relative_schedule(
    http: httpx.AsyncClient,
) -> None:
    window = {"start_in_s": 0, "duration_s": 10, "every_s": 3600, "repeat": 3}
    qpus = [{"id": LUCY, "windows": [window]}, {"id": TOSHIKO}]
    async with open_emulator(make_config(qpus=qpus, time_scale=1.0), executor="instant") as emu:
        start = emu.state.started_at
        history = await http.get(f"{emu.qpu_url(LUCY)}/windows/history", headers=auth())
        assert [w["starting"] for w in history.json()] == [start.strftime(FORMAT)]
        nxt = (await http.get(f"{emu.qpu_url(LUCY)}/windows/next", headers=auth())).json()
        # The first window is open now, so it is the next one not yet over.
        assert nxt["next_window"]["starting"] == start.strftime(FORMAT)
        assert len(emu.state.windows[LUCY]) == 3
        assert emu.state.windows[LUCY][2].starting == start + dt.timedelta(hours=2)


async def test_a_new_window_wakes_a_qpu_whose_windows_are_over(http: httpx.AsyncClient) -> None:
    now = dt.datetime.now(dt.UTC)
    past = {
        "starting": (now - dt.timedelta(days=2)).isoformat(),
        "ending": (now - dt.timedelta(days=1)).isoformat(),
    }
    qpus = [{"id": LUCY, "windows": [past]}, {"id": TOSHIKO}]
    async with open_emulator(make_config(qpus=qpus), executor="instant") as emu:
        task_id = await submit_one(http, emu)
        waits = await http.post(
            f"{emu.url}/monitoring/qpu_wait_time", json={"targets": [LUCY]}, headers=auth()
        )
        assert waits.json()["qpu_wait_times"][0]["wait_time_s"] is None  # no window left
        await trio.sleep(0.1)
        assert (await info(http, emu.url, task_id))["status"] == "SUBMITTED"
        body = {
            "qpu_id": LUCY,
            "start_time": now.isoformat(),
            "end_time": (now + dt.timedelta(hours=1)).isoformat(),
        }
        added = await http.post(f"{emu.url}/windows/one-off-window", json=body, headers=auth(ADMIN))
        assert added.status_code == 200
        with trio.fail_after(5):
            await emu.wait_for_status(task_id, "COMPLETED")


def test_wait_estimates_spread_the_queue_over_the_windows() -> None:
    now = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
    windows = [
        Window(now + dt.timedelta(seconds=10), now + dt.timedelta(seconds=12)),
        Window(now + dt.timedelta(seconds=20), now + dt.timedelta(seconds=30)),
    ]
    # 3 s of work ahead: 2 s in the first window, 1 s into the second.
    assert start_estimate(windows, now, 3.0) == now + dt.timedelta(seconds=21)
    assert start_estimate(windows, now, 0.0) == now + dt.timedelta(seconds=10)
    assert start_estimate(windows, now, 12.0) is None
    assert start_estimate(None, now, 3.0) == now + dt.timedelta(seconds=3)

    config = make_config(
        qpus=[
            {
                "id": LUCY,
                "execution_time_s": 1.0,
                "workers": 2,
                "windows": [
                    {"start_in_s": 10, "duration_s": 2},
                    {"start_in_s": 20, "duration_s": 10},
                ],
            }
        ]
    )
    state = EmulatorState(config, clock=lambda: now)
    spec = state.qpu(LUCY)
    assert state.wait_estimate_s(spec, 0) == 10.0
    assert state.wait_estimate_s(spec, 6) == 21.0  # 6 tasks on 2 workers: 3 s of work


@pytest.mark.parametrize(
    ("window", "fragment"),
    [
        ({"start_in_s": 0, "duration_s": 0}, "duration_s"),
        ({"start_in_s": 0, "duration_s": 5, "repeat": 2}, "repeat needs every_s"),
        ({"start_in_s": 0, "duration_s": 5, "every_s": 2}, "at least duration_s"),
        (
            {"starting": "2030-01-01T00:00:00", "ending": "2030-01-01T01:00:00", "x": 1},
            "unknown key",
        ),
    ],
)
def test_window_errors_name_the_key(window: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as error:
        EmulatorConfig.from_mapping({"qpus": [{"id": "q:1", "windows": [window]}]})
    assert fragment in str(error.value) and "qpus[0].windows[0]" in str(error.value)
    relative = {"qpus": [{"id": "q:1", "windows": [{"start_in_s": 1, "duration_s": 1}]}]}
    with pytest.raises(ConfigError, match="time_scale"):
        EmulatorConfig.from_mapping({**relative, "time_scale": 0})
