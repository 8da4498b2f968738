"""Bad input gets 400/404/405/413 in the contract's error shape, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from emulator_support import ADMIN, BELL, LUCY, auth, compiler_config

from oqc_trio.emulator.server import RunningEmulator


def error_of(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    (message,) = body["response"]["errors"]
    assert isinstance(message, str) and message
    return message


def task(**changes: object) -> dict[str, object]:
    return {"program": BELL, "qpu_id": LUCY, "config": compiler_config(), **changes}


def ids_body(count: str) -> str:
    return '{"qpu_id": "%s", "task_count": %s}' % (LUCY, count)  # noqa: UP031


BAD_BODIES: list[tuple[str, bytes | str, str]] = [
    ("/tasks/submit", b"", "empty"),
    ("/tasks/submit", b"{not json", "not valid JSON"),
    ("/tasks/submit", b"\xff\xfe{}", "UTF-8"),
    ("/tasks/submit", "[1, 2]", "expected a JSON object"),
    ("/tasks/submit", '{"tasks": {}}', "'tasks' must be an array"),
    ("/tasks/submit", '{"tasks": []}', "must not be empty"),
    ("/tasks/submit", '{"tasks": [42]}', "tasks[0]: expected a JSON object"),
    ("/tasks/submit", json.dumps({"tasks": [task(program=5)]}), "'program' must be a string"),
    ("/tasks/submit", json.dumps({"tasks": [task(qpu_id=None)]}), "'qpu_id' is required"),
    ("/tasks/submit", json.dumps({"tasks": [task(qpu_id="qpu:x")]}), "unknown QPU"),
    ("/tasks/submit", json.dumps({"tasks": [task(task_id=-1)]}), "UUID"),
    ("/tasks/submit", json.dumps({"tasks": [task(task_id="abc")]}), "not a task ID"),
    ("/tasks/submit", json.dumps({"tasks": [task(config=12)]}), "'config' must be a string"),
    ("/tasks/submit", json.dumps({"tasks": [task(tag=["x"])]}), "'tag' must be a string"),
    ("/tasks/submit", '{"tasks": [{"program": "x", "qpu_id": NaN}]}', "NaN"),
    ("/tasks/submit", '{"tasks": [{"program": "\\ud800", "qpu_id": "q"}]}', "Unicode"),
    ("/tasks/submit", "[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ("/tasks", ids_body('"3"'), "'task_count' must be an integer"),
    ("/tasks", ids_body("0"), "between 1 and"),
    ("/tasks", ids_body("1000000"), "between 1 and"),
    ("/tasks", ids_body("1e3"), "must be an integer"),
    ("/tasks", '{"tasks": [{"tag": null}]}', "'qpu_id' is required"),
    ("/tasks", '{"tasks": "many"}', "must be an array"),
    ("/tasks/cancel_many", '{"tasks": "x"}', "must be an array"),
    ("/tasks/cancel_many", '{"tasks": [1]}', "UUID"),
    ("/tasks/cancel_many", "null", "expected a JSON object"),
    ("/monitoring/task_wait_time", '{"task_ids": [1]}', "strings only"),
    ("/monitoring/qpu_wait_time", '{"targets": null}', "must be an array"),
    ("/admin/login", '{"email": 1, "password": "x"}', "'email' must be a string"),
]


@pytest.mark.parametrize(("path", "body", "fragment"), BAD_BODIES)
async def test_malformed_bodies_get_400_with_a_readable_message(
    emu: RunningEmulator, http: httpx.AsyncClient, path: str, body: bytes | str, fragment: str
) -> None:
    response = await http.post(
        emu.url + path,
        content=body,
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert fragment in error_of(response)


BAD_QUERIES = [
    "/admin/qpu?per_page=0",
    "/admin/qpu?per_page=abc",
    "/admin/qpu?page=-1",
    "/admin/qpu?per_page=%C2%B2",
    "/tasks?start_date=31/12/2025",
    "/tasks?end_date=%00",
    f"/monitoring/calibrations?qpu_id={LUCY}&date=tomorrow",
    f"/qpus/{LUCY}/benchmarks/search?start_date=2025-02-01&end_date=2025-01-01",
    f"/qpus/{LUCY}/benchmarks/search?start_date=2020-01-01&end_date=2025-01-01",
]


@pytest.mark.parametrize("path", BAD_QUERIES)
async def test_bad_query_parameters_get_400(
    emu: RunningEmulator, http: httpx.AsyncClient, path: str
) -> None:
    response = await http.get(emu.url + path, headers=auth())
    assert response.status_code == 400, response.text
    error_of(response)


async def test_bodies_over_128_kb_get_413(emu: RunningEmulator, http: httpx.AsyncClient) -> None:
    big = json.dumps({"tasks": [task(program="x" * 140_000)]}).encode()
    response = await http.post(f"{emu.url}/tasks/submit", content=big, headers=auth())
    assert response.status_code == 413
    assert "131072" in error_of(response)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 4096  # no Content-Length: only the streamed size tells

    streamed = await http.post(f"{emu.url}/tasks/submit", content=chunks(), headers=auth())
    assert streamed.status_code == 413

    # Exactly at the limit is fine (and then merely malformed).
    at_limit = b" " * (131_072 - 2) + b"{}"
    response = await http.post(f"{emu.url}/tasks/submit", content=at_limit, headers=auth())
    assert response.status_code == 400
    # The server is still healthy.
    assert (await http.get(f"{emu.url}/admin/version")).status_code == 200


async def test_413_over_http2_leaves_the_server_running(emu: RunningEmulator) -> None:
    # hypercorn 0.18 crashes on data for an answered h2 stream: the guard reads it all first.
    async with httpx.AsyncClient(http1=False, http2=True, timeout=10.0) as h2:
        for content in (b"x" * 1_000_000, b"{}" + b" " * 200_000):
            response = await h2.post(f"{emu.url}/tasks/submit", content=content, headers=auth())
            assert response.status_code == 413 and response.http_version == "HTTP/2"
        assert (await h2.get(f"{emu.url}/admin/version")).status_code == 200


async def test_unknown_routes_and_methods(emu: RunningEmulator, http: httpx.AsyncClient) -> None:
    missing = await http.get(f"{emu.url}/no/such/route", headers=auth())
    assert missing.status_code == 404 and "no such endpoint" in error_of(missing)
    wrong_method = await http.put(f"{emu.url}/tasks/submit", json={}, headers=auth())
    assert wrong_method.status_code == 405
    error_of(wrong_method)
    unknown_task = await http.get(f"{emu.url}/tasks/not-a-uuid/all_info", headers=auth())
    assert unknown_task.status_code == 404


async def test_injected_faults(emu: RunningEmulator, http: httpx.AsyncClient) -> None:
    fault = {"route": "GET /admin/qpu", "status": 503, "times": 2, "message": "maintenance"}
    added = await http.post(f"{emu.url}/admin/emulator/faults", json=fault, headers=auth(ADMIN))
    assert added.status_code == 200
    url = f"{emu.url}/admin/qpu"
    statuses = [(await http.get(url, headers=auth())).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    bad = await http.post(
        f"{emu.url}/admin/emulator/faults", json={**fault, "status": 200}, headers=auth(ADMIN)
    )
    assert bad.status_code == 400
