"""Task lifecycle over HTTP: real counts, statuses and timings, cancellation, idempotent
resubmission and the admin counters."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import trio
from emulator_support import (
    ADMIN,
    ALICE,
    BELL,
    BOB,
    LUCY,
    TOSHIKO,
    auth,
    compiler_config,
    make_config,
    submit_one,
)

from oqc_trio.emulator.server import RunningEmulator, open_emulator

ASYMMETRIC = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[5];
creg a[2];
creg b[3];
x q[0];
x q[3];
x q[4];
measure q[0] -> a[0];
measure q[1] -> a[1];
measure q[2] -> b[0];
measure q[3] -> b[1];
measure q[4] -> b[2];
"""

BROKEN = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[1];
h q[0]
creg c[1];
"""


async def all_info(
    http: httpx.AsyncClient, emu: RunningEmulator, task_id: str, token: str = ALICE
) -> dict:
    response = await http.get(f"{emu.qpu_url(LUCY)}/tasks/{task_id}/all_info", headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


async def test_programs_run_for_real_on_aer(http: httpx.AsyncClient) -> None:
    async with open_emulator(make_config(seed=7), executor="aer") as emu:
        bell = await submit_one(http, emu, BELL, config=compiler_config(1000))
        asym = await submit_one(http, emu, ASYMMETRIC, config=compiler_config(64))
        broken = await submit_one(http, emu, BROKEN)
        with trio.fail_after(30):
            for task_id in (bell, asym, broken):
                await emu.wait_for_status(task_id, "COMPLETED", "FAILED")

        info = await all_info(http, emu, bell)
        assert info["status"] == "COMPLETED"
        counts = info["results"]["c"]
        assert set(counts) <= {"00", "11"} and sum(counts.values()) == 1000
        assert 350 < counts["00"] < 650
        assert info["execution_metadata"]["gate_counts"]["cx"] == 1
        assert info["execution_metadata"]["qubits_used"] == 2

        # reg[0] is the leftmost character of each register's bitstring.
        assert (await all_info(http, emu, asym))["results"] == {
            "a": {"10": 64},
            "b": {"011": 64},
        }

        failed = await all_info(http, emu, broken)
        assert failed["status"] == "FAILED" and failed["results"] is None
        assert "line" in failed["task_error"]["error_message"]
        assert isinstance(failed["task_error"]["error_code"], int)


async def test_lifecycle_statuses_timings_and_metadata(http: httpx.AsyncClient) -> None:
    async with open_emulator(make_config(execution_time_s=0.2), executor="instant") as emu:
        created = await http.post(
            f"{emu.qpu_url(LUCY)}/tasks",
            json={"qpu_id": LUCY, "task_count": 1, "tag": "t1"},
            headers=auth(),
        )
        (task_id,) = created.json()
        assert (await all_info(http, emu, task_id))["status"] == "CREATED"
        task = {"program": BELL, "qpu_id": LUCY, "config": compiler_config(10), "task_id": task_id}
        response = await http.post(
            f"{emu.qpu_url(LUCY)}/tasks/submit", json={"tasks": [task]}, headers=auth()
        )
        assert response.json() == [{"task_id": task_id}]
        assert (await all_info(http, emu, task_id))["status"] in {"SUBMITTED", "RUNNING"}
        with trio.fail_after(5):
            await emu.wait_for_status(task_id, "RUNNING")
            assert (await all_info(http, emu, task_id))["status"] == "RUNNING"
            await emu.wait_for_status(task_id, "COMPLETED")

        info = await all_info(http, emu, task_id)
        assert info["results"] == {"c": {"00": 10}}
        timings = info["timings"]
        moments = [
            dt.datetime.fromisoformat(timings[k]) for k in ("received", "started", "finished")
        ]
        assert moments == sorted(moments)
        assert timings["execution_seconds"] >= 0.2
        assert info["metadata"] == {
            "config": compiler_config(10),
            "created_at": info["created_at"],
            "id": task_id,
            "qpu_id": LUCY,
            "tag": "t1",
        }
        assert info["execution_metadata"]["simulated_execution_s"] == 0.2


async def test_bad_config_fails_the_task_not_the_request(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    for config, fragment in (
        ("{not json", "not JSON"),
        ('{"$data": {"repeats": "many"}}', "'repeats' must be an integer"),
        ('{"$data": {"repeats": 0}}', "at least 1"),
        ("[1, 2]", "JSON object"),
    ):
        task_id = await submit_one(http, emu, config=config)
        info = await all_info(http, emu, task_id)
        assert info["status"] == "FAILED", config
        assert fragment in info["task_error"]["error_message"]


async def test_null_repeats_and_erado_envelope_give_shots(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    erado = '{"$type": "<class \'x.EradoConfig\'>", "$dataclass": true, "$data": {"repeats": 7}}'
    default = await submit_one(http, emu, config=compiler_config(None))
    dataclass = await submit_one(http, emu, config=erado)
    with trio.fail_after(5):
        for task_id in (default, dataclass):
            await emu.wait_for_status(task_id, "COMPLETED")
    assert (await all_info(http, emu, default))["results"] == {"c": {"00": 1000}}
    assert (await all_info(http, emu, dataclass))["results"] == {"c": {"00": 7}}


async def test_cancel_while_queued_and_while_running(http: httpx.AsyncClient) -> None:
    async with open_emulator(make_config(execution_time_s=30.0), executor="instant") as emu:
        running = await submit_one(http, emu)
        queued = await submit_one(http, emu)
        with trio.fail_after(5):
            await emu.wait_for_status(running, "RUNNING")
        assert (await all_info(http, emu, queued))["status"] == "SUBMITTED"

        cancel_url = f"{emu.qpu_url(LUCY)}/tasks/cancel_many"
        response = await http.post(cancel_url, json={"tasks": [queued]}, headers=auth())
        assert response.status_code == 200 and response.json() == "OK"
        assert (await all_info(http, emu, queued))["status"] == "CANCELLED"
        assert (await all_info(http, emu, running))["status"] == "RUNNING"

        await http.post(cancel_url, json={"tasks": [running]}, headers=auth())
        info = await all_info(http, emu, running)
        assert info["status"] == "CANCELLED" and info["results"] is None
        # The run was really stopped: the QPU's only worker takes the next task at once
        # instead of finishing a 30 s simulated execution.
        follower = await submit_one(http, emu)
        with trio.fail_after(5):
            await emu.wait_for_status(follower, "RUNNING")

        # Cancelling unknown or finished tasks is a harmless 200.
        unknown = str(uuid.uuid4())
        response = await http.post(cancel_url, json={"tasks": [unknown, queued]}, headers=auth())
        assert response.status_code == 200
        assert (await all_info(http, emu, queued))["status"] == "CANCELLED"


async def test_cancelling_a_finished_task_changes_nothing(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    task_id = await submit_one(http, emu)
    with trio.fail_after(5):
        await emu.wait_for_status(task_id, "COMPLETED")
    await http.post(f"{emu.url}/tasks/cancel_many", json={"tasks": [task_id]}, headers=auth())
    info = await all_info(http, emu, task_id)
    assert info["status"] == "COMPLETED" and info["results"] == {"c": {"00": 1000}}


async def test_resubmission_is_idempotent_and_counted(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    base = emu.qpu_url(TOSHIKO)
    ids = (
        await http.post(
            f"{base}/tasks", json={"qpu_id": TOSHIKO, "task_count": 3, "tag": None}, headers=auth()
        )
    ).json()
    assert len(ids) == 3 and all(uuid.UUID(i) for i in ids)
    tasks = [
        {"program": BELL, "qpu_id": TOSHIKO, "config": compiler_config(5), "task_id": i}
        for i in ids
    ]
    first = await http.post(f"{base}/tasks/submit", json={"tasks": tasks}, headers=auth())
    assert first.status_code == 200
    with trio.fail_after(5):
        for task_id in ids:
            await emu.wait_for_status(task_id, "COMPLETED")
    again = await http.post(f"{base}/tasks/submit", json={"tasks": tasks[:2]}, headers=auth())
    assert again.status_code == 200
    assert again.json() == [{"task_id": i} for i in ids[:2]]
    info = (await http.get(f"{base}/tasks/{ids[0]}/all_info", headers=auth())).json()
    assert info["status"] == "COMPLETED" and info["results"] == {"c": {"00": 5}}

    counters = (await http.get(f"{emu.url}/admin/emulator/counters", headers=auth(ADMIN))).json()
    assert counters["submissions"] == {ids[0]: 2, ids[1]: 2, ids[2]: 1}
    assert counters["duplicate_submissions"] == {ids[0]: 2, ids[1]: 2}
    assert counters["requests"]["POST /tasks/submit"] == 2
    assert counters["requests"]["POST /tasks"] == 1
    assert counters["requests"]["GET /tasks/{task_id}/all_info"] == 1
    assert counters["tasks"]["by_status"] == {"COMPLETED": 3}

    reset = await http.post(f"{emu.url}/admin/emulator/reset-counters", headers=auth(ADMIN))
    assert reset.status_code == 200
    assert reset.json()["submissions"] == {} and reset.json()["requests"] == {}
    # Reading the counters is not itself counted.
    again_counters = await http.get(f"{emu.url}/admin/emulator/counters", headers=auth(ADMIN))
    assert again_counters.json()["total_requests"] == 0


async def test_counters_are_admin_only(emu: RunningEmulator, http: httpx.AsyncClient) -> None:
    url = f"{emu.url}/admin/emulator/counters"
    assert (await http.get(url)).status_code == 401
    assert (await http.get(url, headers=auth(ALICE))).status_code == 403
    assert (await http.post(f"{emu.url}/admin/emulator/reset-counters")).status_code == 401


async def test_submitting_unknown_or_foreign_ids_is_a_clear_error(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    url = f"{emu.url}/tasks/submit"
    (alices,) = (
        await http.post(f"{emu.url}/tasks", json={"qpu_id": LUCY, "task_count": 1}, headers=auth())
    ).json()
    for task_id, token in ((str(uuid.uuid4()), ALICE), (alices, BOB)):
        task = {"program": BELL, "qpu_id": LUCY, "config": compiler_config(), "task_id": task_id}
        response = await http.post(url, json={"tasks": [task]}, headers=auth(token))
        assert response.status_code == 400
        assert "unknown task ID" in response.json()["response"]["errors"][0]
    # Nothing of a rejected batch is accepted: the valid first task stays CREATED.
    good = {"program": BELL, "qpu_id": LUCY, "config": compiler_config(), "task_id": alices}
    bad = {**good, "task_id": str(uuid.uuid4())}
    response = await http.post(url, json={"tasks": [good, bad]}, headers=auth())
    assert response.status_code == 400
    info = (await http.get(f"{emu.url}/tasks/{alices}/all_info", headers=auth())).json()
    assert info["status"] == "CREATED"


async def test_a_batch_without_ids_gets_fresh_ids_in_order(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    tasks = [
        {"program": BELL, "qpu_id": LUCY, "config": compiler_config(n), "tag": f"n{n}"}
        for n in (1, 2, 3)
    ]
    response = await http.post(f"{emu.url}/tasks/submit", json={"tasks": tasks}, headers=auth())
    ids = [item["task_id"] for item in response.json()]
    with trio.fail_after(5):
        for task_id in ids:
            await emu.wait_for_status(task_id, "COMPLETED")
    for n, task_id in zip((1, 2, 3), ids):
        info = await all_info(http, emu, task_id)
        assert info["results"] == {"c": {"00": n}} and info["tag"] == f"n{n}"


async def test_fifo_order_on_one_qpu(http: httpx.AsyncClient) -> None:
    async with open_emulator(make_config(execution_time_s=0.05), executor="instant") as emu:
        ids = [await submit_one(http, emu) for _ in range(4)]
        with trio.fail_after(5):
            await emu.wait_for_status(ids[-1], "COMPLETED")
        starts = [emu.state.tasks[i].started for i in ids]
        assert starts == sorted(starts)
        assert all(emu.state.tasks[i].status.value == "COMPLETED" for i in ids)


async def test_create_app_runs_its_queues_in_the_lifespan(http: httpx.AsyncClient) -> None:
    import hypercorn.trio

    from oqc_trio.emulator.app import create_app
    from oqc_trio.emulator.scheduler import StatusWatch
    from oqc_trio.emulator.server import hypercorn_config

    app = create_app(make_config(), executor="instant")
    async with trio.open_nursery() as nursery:
        (url,) = await nursery.start(hypercorn.trio.serve, app, hypercorn_config("127.0.0.1", 0))
        watch = StatusWatch(app.state.emulator)
        task = {"program": BELL, "qpu_id": LUCY, "config": compiler_config(4)}
        response = await http.post(f"{url}/tasks/submit", json={"tasks": [task]}, headers=auth())
        task_id = response.json()[0]["task_id"]
        with trio.fail_after(5):
            await watch.wait_for(task_id, ["COMPLETED"])
        info = (await http.get(f"{url}/tasks/{task_id}/all_info", headers=auth())).json()
        assert info["results"] == {"c": {"00": 4}}
        nursery.cancel_scope.cancel()
