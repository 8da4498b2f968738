"""Both dialects of the contract: catalogue, features, task routes at base and per-QPU URLs,
monitoring, calibrations, windows and the task listing."""

from __future__ import annotations

import datetime as dt
import urllib.parse
import uuid

import httpx
import pytest
import trio
from emulator_support import ALICE, LUCY, TOSHIKO, auth, compiler_config, make_config, submit_one

from oqc_trio.emulator.server import RunningEmulator, open_emulator

TASK_FIELDS = {
    "status": "status",
    "results": "results",
    "error": "task_error",
    "metadata": "metadata",
    "timings": "timings",
    "execution_metadata": "execution_metadata",
}


async def test_health_of_both_dialects_needs_no_token(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    for path in ("/admin/version", "/healthz"):
        response = await http.get(emu.url + path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert isinstance(response.json()["version"], str)


async def test_legacy_catalogue_points_at_per_qpu_urls(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{emu.url}/admin/qpu?per_page=1000", headers=auth())
    items = response.json()["items"]
    assert [q["id"] for q in items] == [LUCY, TOSHIKO]
    assert all(q["active"] is True for q in items)
    assert items[0]["url"] == f"{emu.url}/qpu/d865b5a184" == emu.qpu_url(LUCY)
    page = (await http.get(f"{emu.url}/admin/qpu?per_page=1&page=2", headers=auth())).json()
    assert [q["id"] for q in page["items"]] == [TOSHIKO] and page["total"] == 2

    details = (await http.get(f"{emu.url}/admin/qpu/{LUCY}", headers=auth())).json()
    assert details["feature_set"]["qubit_count"] == 8
    assert details["feature_set"]["max_shots"] == 10_000
    assert [0, 1] in details["feature_set"]["connectivity"]
    missing = await http.get(f"{emu.url}/admin/qpu/qpu:uk:9:nope", headers=auth())
    assert missing.status_code == 404


async def test_qpu_urls_can_all_be_the_base_url(http: httpx.AsyncClient) -> None:
    async with open_emulator(make_config(qpu_paths=False), executor="instant") as emu:
        items = (await http.get(f"{emu.url}/admin/qpu", headers=auth())).json()["items"]
        assert {q["url"] for q in items} == {emu.url}


async def test_v4_catalogue_features_status_and_benchmarks(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    bearer = {"Authorization": f"Bearer {ALICE}"}
    qpus = (await http.get(f"{emu.url}/qpus", headers=bearer)).json()
    assert [q["id"] for q in qpus] == [LUCY, TOSHIKO] and "url" not in qpus[0]
    features = (await http.get(f"{emu.url}/qpus/{TOSHIKO}/features", headers=bearer)).json()
    assert features["qpu_id"] == TOSHIKO and features["data"]["qubit_count"] == 16
    status = (await http.get(f"{emu.url}/qpus/{LUCY}/status", headers=bearer)).json()
    assert status["qpu_id"] == LUCY and status["status"] == "ONLINE"
    bench = (await http.get(f"{emu.url}/qpus/{LUCY}/benchmarks", headers=bearer)).json()
    assert bench["data"]["qpu_id"] == LUCY and len(bench["data"]["qubits"]) == 8

    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=2)
    search = await http.get(
        f"{emu.url}/qpus/{LUCY}/benchmarks/search",
        params={"start_date": f"{start}T00:00:00", "end_date": f"{today}T23:59:59"},
        headers=bearer,
    )
    assert [d["date"] for d in search.json()["data"]] == [
        str(start + dt.timedelta(days=n)) for n in range(3)
    ]
    for path in ("features", "status", "benchmarks"):
        response = await http.get(f"{emu.url}/qpus/qpu:uk:0:unknown/{path}", headers=bearer)
        assert response.status_code == 404


@pytest.mark.parametrize("prefixed", [True, False])
async def test_task_routes_answer_at_qpu_url_and_base(
    emu: RunningEmulator, http: httpx.AsyncClient, prefixed: bool
) -> None:
    base = emu.qpu_url(LUCY) if prefixed else emu.url
    task_id = await submit_one(http, emu, base=base)
    with trio.fail_after(5):
        await emu.wait_for_status(task_id, "COMPLETED")
    info = (await http.get(f"{base}/tasks/{task_id}/all_info", headers=auth())).json()
    for field, key in TASK_FIELDS.items():
        response = await http.get(f"{base}/tasks/{task_id}/{field}", headers=auth())
        assert response.status_code == 200
        assert response.json() == {key: info[key]}
    # The other route family sees the same task.
    other = emu.url if prefixed else emu.qpu_url(LUCY)
    assert (await http.get(f"{other}/tasks/{task_id}/status", headers=auth())).json() == {
        "status": "COMPLETED"
    }
    unknown = await http.get(f"{emu.url}/qpu/nope/tasks/{task_id}/all_info", headers=auth())
    assert unknown.status_code == 404


async def test_bulk_ids_in_both_dialects(emu: RunningEmulator, http: httpx.AsyncClient) -> None:
    legacy = await http.post(
        f"{emu.qpu_url(LUCY)}/tasks",
        json={"qpu_id": LUCY, "task_count": 2, "tag": None},
        headers=auth(),
    )
    assert isinstance(legacy.json(), list) and len(legacy.json()) == 2
    v4 = await http.post(
        f"{emu.url}/tasks",
        json={"tasks": [{"qpu_id": TOSHIKO, "tag": None}, {"qpu_id": LUCY, "tag": "x"}]},
        headers={"Authorization": f"Bearer {ALICE}"},
    )
    ids = v4.json()["tasks"]
    assert len(ids) == 2 and all(uuid.UUID(i) for i in ids)
    second = (await http.get(f"{emu.url}/tasks/{ids[1]}/all_info", headers=auth())).json()
    assert second["qpu_id"] == LUCY and second["tag"] == "x" and second["status"] == "CREATED"


async def test_monitoring_statuses_and_wait_times(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    at_qpu = (await http.get(f"{emu.qpu_url(LUCY)}/monitoring/statuses", headers=auth())).json()
    assert [s["qpu_id"] for s in at_qpu] == [LUCY]
    at_base = (await http.get(f"{emu.url}/monitoring/statuses", headers=auth())).json()
    assert [s["qpu_id"] for s in at_base] == [LUCY, TOSHIKO]

    task_id = await submit_one(http, emu)
    with trio.fail_after(5):
        await emu.wait_for_status(task_id, "COMPLETED")
    waits = await http.post(
        f"{emu.url}/monitoring/task_wait_time",
        json={"task_ids": [task_id], "qpu_id": LUCY},
        headers=auth(),
    )
    assert waits.json()["task_wait_times"][0]["wait_time_s"] == 0.0
    qpu_waits = await http.post(
        f"{emu.url}/monitoring/qpu_wait_time", json={"targets": [LUCY, "nope"]}, headers=auth()
    )
    assert [w["qpu_id"] for w in qpu_waits.json()["qpu_wait_times"]] == [LUCY]


async def test_calibrations_with_and_without_a_date(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    url = f"{emu.qpu_url(LUCY)}/monitoring/calibrations"
    today = dt.datetime.now(dt.UTC).date()
    latest = (await http.get(url, params={"qpu_id": LUCY}, headers=auth())).json()
    assert latest["date"] == str(today) and latest["qpu_id"] == LUCY

    day = "2025-03-04"
    first = await http.get(url, params={"qpu_id": LUCY, "date": day}, headers=auth())
    again = await http.get(url, params={"qpu_id": LUCY, "date": day}, headers=auth())
    assert first.status_code == 200 and first.json()["date"] == day
    assert first.json() == again.json() != latest
    assert set(first.json()["qubits"]["0"]) >= {"t1_us", "t2_us", "readout_fidelity"}

    future = str(today + dt.timedelta(days=3))
    response = await http.get(url, params={"qpu_id": LUCY, "date": future}, headers=auth())
    assert response.status_code == 404
    bad = await http.get(url, params={"qpu_id": LUCY, "date": "04/03/2025"}, headers=auth())
    assert bad.status_code == 400 and "not a date" in bad.json()["response"]["errors"][0]
    # At the shared base URL the QPU must be named.
    assert (await http.get(f"{emu.url}/monitoring/calibrations", headers=auth())).status_code == 400


async def test_windows_next_is_an_empty_object_when_there_is_none(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{emu.qpu_url(LUCY)}/windows/next", headers=auth())
    assert response.status_code == 200 and response.json() == {}
    history = await http.get(f"{emu.qpu_url(LUCY)}/windows/history?latest=true", headers=auth())
    assert history.json() == []


async def test_windows_next_and_history(http: httpx.AsyncClient) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    windows = [
        {
            "starting": (now - dt.timedelta(days=2)).isoformat(),
            "ending": (now - dt.timedelta(days=1)).isoformat(),
        },
        {
            "starting": (now - dt.timedelta(hours=5)).isoformat(),
            "ending": (now - dt.timedelta(hours=4)).isoformat(),
        },
        {
            "starting": (now + dt.timedelta(hours=3)).isoformat(),
            "ending": (now + dt.timedelta(hours=4)).isoformat(),
        },
    ]
    qpus = [{"id": LUCY, "windows": windows}, {"id": TOSHIKO}]
    async with open_emulator(make_config(qpus=qpus), executor="instant") as emu:
        nxt = (await http.get(f"{emu.qpu_url(LUCY)}/windows/next", headers=auth())).json()
        starting = dt.datetime.strptime(nxt["next_window"]["starting"], "%Y-%m-%dT%H:%M:%SZ")
        assert starting == (now + dt.timedelta(hours=3)).replace(tzinfo=None)
        assert (await http.get(f"{emu.qpu_url(TOSHIKO)}/windows/next", headers=auth())).json() == {}
        history = await http.get(f"{emu.qpu_url(LUCY)}/windows/history", headers=auth())
        assert len(history.json()) == 2
        latest = await http.get(
            f"{emu.qpu_url(LUCY)}/windows/history", params={"latest": "true"}, headers=auth()
        )
        assert [w["starting"] for w in latest.json()] == [history.json()[0]["starting"]]


async def test_task_summary_listing_filters_by_date(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
    ids = [await submit_one(http, emu, qpu_id=q) for q in (LUCY, TOSHIKO)]
    after = before + dt.timedelta(minutes=5)
    # The official client builds the query by hand from str(datetime) (a space inside).
    query = f"start_date={before}&end_date={after}"
    listing = (await http.get(f"{emu.url}/tasks?{query}", headers=auth())).json()
    assert [t["id"] for t in listing] == ids
    assert set(listing[0]) >= {"id", "qpu_id", "status", "created_at"}
    at_lucy = (await http.get(f"{emu.qpu_url(LUCY)}/tasks", headers=auth())).json()
    assert [t["id"] for t in at_lucy] == ids[:1]
    old = urllib.parse.quote(str(before - dt.timedelta(days=1)))
    empty = await http.get(f"{emu.url}/tasks?end_date={old}", headers=auth())
    assert empty.json() == []
    bad = await http.get(f"{emu.url}/tasks?start_date=yesterday", headers=auth())
    assert bad.status_code == 400


async def test_v4_all_info_carries_top_level_metadata_fields(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    task_id = await submit_one(http, emu, config=compiler_config(3), base=emu.url)
    info = (await http.get(f"{emu.url}/tasks/{task_id}/all_info", headers=auth())).json()
    for key in ("config", "created_at", "id", "qpu_id", "tag"):
        assert info[key] == info["metadata"][key]
    assert info["id"] == task_id


async def test_one_off_window_is_admin_only_and_becomes_next(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    body = {
        "qpu_id": LUCY,
        "start_time": start.isoformat(),
        "end_time": (start + dt.timedelta(hours=1)).isoformat(),
        "lease_type": "dedicated",
    }
    url = f"{emu.url}/windows/one-off-window"
    assert (await http.post(url, json=body, headers=auth())).status_code == 403
    assert (await http.post(url, json=body, headers=auth("admin-token"))).status_code == 200
    nxt = (await http.get(f"{emu.qpu_url(LUCY)}/windows/next", headers=auth())).json()
    assert nxt["next_window"]["starting"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
