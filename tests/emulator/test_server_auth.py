"""Authentication and isolation: login, tokens, 401/403/404, users."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import trio
from emulator_support import ADMIN, ALICE, BOB, LUCY, auth, submit_one

from oqc_trio.emulator.server import RunningEmulator

AUTHENTICATED = [
    ("GET", "/admin/qpu"),
    ("GET", f"/admin/qpu/{LUCY}"),
    ("GET", "/qpus"),
    ("GET", f"/qpus/{LUCY}/features"),
    ("POST", "/tasks"),
    ("POST", "/tasks/submit"),
    ("POST", "/qpu/d865b5a184/tasks/submit"),
    ("GET", "/tasks/00000000-0000-0000-0000-000000000000/all_info"),
    ("POST", "/tasks/cancel_many"),
    ("GET", "/monitoring/statuses"),
    ("GET", "/windows/next"),
    ("GET", "/admin/auth_tokens/abc"),
]


def errors(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/json"
    return response.json()["response"]["errors"]


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
async def test_401_without_or_with_a_bad_token(
    emu: RunningEmulator, http: httpx.AsyncClient, method: str, path: str
) -> None:
    for headers in ({}, auth("not-a-token"), {"Authorization": "Bearer nope"}):
        response = await http.request(method, emu.url + path, json={}, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert errors(response)


async def test_login_gives_a_working_token(emu: RunningEmulator, http: httpx.AsyncClient) -> None:
    assert (await http.post(f"{emu.url}/admin/logout", json={})).status_code == 200
    response = await http.post(
        f"{emu.url}/admin/login?include_auth_token=true",
        json={"email": "Alice@Example.com", "password": "alice-pw"},
    )
    assert response.status_code == 200
    token = response.json()["response"]["user"]["authentication_token"]
    assert (await http.get(f"{emu.url}/admin/qpu", headers=auth(token))).status_code == 200
    # Logging in again gives the same session token.
    again = await http.post(
        f"{emu.url}/admin/login?include_auth_token=true",
        json={"email": "alice@example.com", "password": "alice-pw"},
    )
    assert again.json()["response"]["user"]["authentication_token"] == token
    # A task submitted with the login token belongs to alice: her fixed token sees it.
    task_id = await submit_one(http, emu, token=token)
    assert (
        await http.get(f"{emu.url}/tasks/{task_id}/status", headers=auth(ALICE))
    ).status_code == 200


async def test_bad_credentials_are_refused_readably(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    for body in (
        {"email": "alice@example.com", "password": "wrong"},
        {"email": "nobody@example.com", "password": "x"},
    ):
        response = await http.post(f"{emu.url}/admin/login?include_auth_token=true", json=body)
        assert response.status_code == 400
        assert errors(response) == ["Invalid email or password"]
    missing = await http.post(f"{emu.url}/admin/login", json={"email": "alice@example.com"})
    assert missing.status_code == 400 and "'password' is required" in errors(missing)[0]


async def test_users_only_see_their_own_tasks(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    task_id = await submit_one(http, emu, token=ALICE)
    with trio.fail_after(5):
        await emu.wait_for_status(task_id, "COMPLETED")
    base = emu.qpu_url(LUCY)
    for field in ("all_info", "status", "results", "error", "metadata", "timings"):
        response = await http.get(f"{base}/tasks/{task_id}/{field}", headers=auth(BOB))
        assert response.status_code == 404
        assert "not found" in errors(response)[0]
    # Bob cannot cancel it either (silently ignored, as for unknown IDs)...
    cancel = await http.post(
        f"{base}/tasks/cancel_many", json={"tasks": [task_id]}, headers=auth(BOB)
    )
    assert cancel.status_code == 200
    # ...nor list it.
    assert (await http.get(f"{emu.url}/tasks", headers=auth(BOB))).json() == []
    listing = (await http.get(f"{emu.url}/tasks", headers=auth(ALICE))).json()
    assert [t["id"] for t in listing] == [task_id]
    waits = await http.post(
        f"{emu.url}/monitoring/task_wait_time", json={"task_ids": [task_id]}, headers=auth(BOB)
    )
    assert waits.json()["task_wait_times"][0]["status"] is None


async def test_token_endpoints(emu: RunningEmulator, http: httpx.AsyncClient) -> None:
    info = await http.get(f"{emu.url}/admin/auth_tokens/{ALICE}", headers=auth(ALICE))
    expires = dt.datetime.strptime(info.json()["expires_at"], "%Y-%m-%dT%H:%M:%S")
    assert expires > dt.datetime.now() + dt.timedelta(days=300)
    # Someone else's token is not found.
    assert (
        await http.get(f"{emu.url}/admin/auth_tokens/{BOB}", headers=auth(ALICE))
    ).status_code == 404

    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    created = await http.post(
        f"{emu.url}/admin/users/current_user/auth_tokens",
        json={"expires_at": future},
        headers=auth(ALICE),
    )
    token = created.json()["token"]
    assert created.json()["expires_at"] == future
    assert (await http.get(f"{emu.url}/admin/qpu", headers=auth(token))).status_code == 200
    deleted = await http.delete(f"{emu.url}/auth_tokens/{token}", headers=auth(ALICE))
    assert deleted.json() == {"token": token}
    assert (await http.get(f"{emu.url}/admin/qpu", headers=auth(token))).status_code == 401

    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    expired = (
        await http.post(
            f"{emu.url}/admin/users/current_user/auth_tokens",
            json={"expires_at": past},
            headers=auth(ALICE),
        )
    ).json()["token"]
    response = await http.get(f"{emu.url}/admin/qpu", headers=auth(expired))
    assert response.status_code == 401 and "expired" in response.json()["detail"]


async def test_admin_creates_users_who_can_log_in(
    emu: RunningEmulator, http: httpx.AsyncClient
) -> None:
    body = {"first_name": "Carol", "last_name": "C", "email": "carol@example.com", "password": "pw"}
    assert (
        await http.post(f"{emu.url}/admin/users", json=body, headers=auth(ALICE))
    ).status_code == 403
    created = await http.post(f"{emu.url}/admin/users", json=body, headers=auth(ADMIN))
    assert created.status_code == 200 and created.json()["email"] == "carol@example.com"
    duplicate = await http.post(f"{emu.url}/admin/users", json=body, headers=auth(ADMIN))
    assert duplicate.status_code == 409
    login = await http.post(
        f"{emu.url}/admin/login?include_auth_token=true",
        json={"email": "carol@example.com", "password": "pw"},
    )
    token = login.json()["response"]["user"]["authentication_token"]
    found = (
        await http.get(f"{emu.url}/admin/users?q=carol@example.com", headers=auth(token))
    ).json()
    assert found["total"] == 1
    user_id = found["items"][0]["id"]
    assert (
        "password_expires_at"
        in (await http.get(f"{emu.url}/admin/users/{user_id}", headers=auth(token))).json()
    )
    changed = await http.post(
        f"{emu.url}/admin/users/{user_id}/update_password",
        json={"password": "new", "password_confirm": "new"},
        headers=auth(token),
    )
    assert changed.status_code == 200
    # Alice does not see Carol.
    assert (
        await http.get(f"{emu.url}/admin/users/{user_id}", headers=auth(ALICE))
    ).status_code == 404
    reset = await http.post(
        f"{emu.url}/password_reset",
        content=b"email=carol%40example.com",
        headers={"Content-Type": "application/json"},
    )
    assert reset.status_code == 200
