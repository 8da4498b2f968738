"""Hypothesis throws malformed requests at one emulator: never a 5xx, healthy afterwards."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_support import ALICE, BELL, LUCY, TOSHIKO, make_config, serve_in_thread
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oqc_trio.emulator.server import RunningEmulator

ROUTES = [
    "/admin/version",
    "/healthz",
    "/admin/login",
    "/admin/logout",
    "/admin/qpu",
    "/admin/qpu/{qpu}",
    "/admin/users",
    "/admin/users/{any}",
    "/admin/users/current_user/auth_tokens",
    "/admin/users/{any}/update_password",
    "/admin/auth_tokens/{any}",
    "/auth_tokens/{any}",
    "/password_reset",
    "/windows/one-off-window",
    "/qpus",
    "/qpus/{qpu}/features",
    "/qpus/{qpu}/status",
    "/qpus/{qpu}/benchmarks",
    "/qpus/{qpu}/benchmarks/search",
    "/admin/emulator/counters",
    "/admin/emulator/reset-counters",
    "/tasks",
    "/tasks/submit",
    "/tasks/cancel_many",
    "/tasks/{task}/all_info",
    "/tasks/{task}/status",
    "/tasks/{task}/results",
    "/tasks/{task}/error",
    "/tasks/{task}/metadata",
    "/tasks/{task}/timings",
    "/tasks/{task}/execution_metadata",
    "/monitoring/statuses",
    "/monitoring/calibrations",
    "/monitoring/task_wait_time",
    "/monitoring/qpu_wait_time",
    "/windows/next",
    "/windows/history",
]
QUERY_NAMES = [
    "per_page",
    "page",
    "q",
    "qpu_id",
    "date",
    "start_date",
    "end_date",
    "latest",
    "include_auth_token",
]
FIELDS = [
    "tasks",
    "program",
    "qpu_id",
    "config",
    "tag",
    "task_id",
    "task_count",
    "task_ids",
    "targets",
    "email",
    "password",
    "expires_at",
    "external_config",
    "hybrid_marker",
    "start_time",
    "end_time",
]

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
segment = st.one_of(
    text.filter(bool),
    st.uuids().map(str),
    st.sampled_from([LUCY, TOSHIKO, "qpu:uk:0:none", "..", "%2F", "current_user"]),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
    | st.uuids().map(str)
    | st.sampled_from([LUCY, BELL, '{"$data": {"repeats": 3}}']),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | text, inner, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def near_valid_task(draw: st.DrawFn) -> dict[str, Any]:
    """A task object with some fields swapped for random JSON."""
    task: dict[str, Any] = {
        "program": BELL,
        "qpu_id": draw(st.sampled_from([LUCY, TOSHIKO])),
        "config": '{"$data": {"repeats": 5}}',
    }
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        task[key] = draw(json_values)
    return task


bodies = st.one_of(
    st.none(),
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(near_valid_task(), min_size=1, max_size=3).map(
        lambda tasks: json.dumps({"tasks": tasks}).encode()
    ),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4).map(
        lambda d: json.dumps(d).encode()
    ),
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes | None]:
    route = draw(st.sampled_from(ROUTES))
    path = "/".join(
        urllib.parse.quote(draw(segment), safe=":") if part.startswith("{") else part
        for part in route.split("/")
    )
    if draw(st.booleans()):
        path = f"/qpu/{draw(st.sampled_from(['d865b5a184', '9829a5504f', 'nope']))}{path}"
    query = draw(st.dictionaries(st.sampled_from(QUERY_NAMES), text, max_size=3))
    if query:
        path += "?" + urllib.parse.urlencode(query)
    headers: dict[str, str] = {}
    token = draw(st.sampled_from([ALICE, "admin-token", "bogus", None]))
    if token is not None:
        headers["Authentication-Token"] = token
    if draw(st.booleans()):
        headers["Content-Type"] = draw(st.sampled_from(["application/json", "text/plain"]))
    method = draw(st.sampled_from(["GET", "POST", "POST", "PUT", "DELETE"]))
    return method, path, headers, draw(bodies)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningEmulator]:
    with serve_in_thread(make_config()) as emu:
        yield emu


@pytest.fixture(scope="module", params=["HTTP/1.1", "HTTP/2"])
def client(server: RunningEmulator, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    http2 = request.param == "HTTP/2"
    with httpx.Client(base_url=server.url, timeout=10.0, http1=not http2, http2=http2) as http:
        yield http


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests())
def test_malformed_requests_never_get_a_5xx(
    client: httpx.Client, request: tuple[str, str, dict[str, str], bytes | None]
) -> None:
    method, path, headers, body = request
    response = client.request(method, path, headers=headers, content=body)
    assert response.status_code < 500, (method, path, body, response.text)
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    if response.status_code != 200:
        assert isinstance(payload["response"]["errors"][0], str)


def test_server_is_healthy_after_the_fuzzing(client: httpx.Client) -> None:
    assert client.get("/admin/version").status_code == 200
    qpus = client.get("/admin/qpu", headers={"Authentication-Token": ALICE})
    assert qpus.status_code == 200 and len(qpus.json()["items"]) == 2
