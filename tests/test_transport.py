"""Tests of the transport: retries, deadlines, auth, limits and secrets, against fake servers.

Every fake server is an ``httpx.MockTransport`` injected through ``transport_factory`` (one
test uses respx); timing tests run on trio's autojump clock, so they are instant and exact.
"""

from __future__ import annotations

import email.utils
import gc
import json
import logging
import random
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
import trio

from oqc_trio import _wire
from oqc_trio._transport import HttpClient, Response, RetryPolicy, Transport
from oqc_trio.auth import AuthenticationError as AuthErrorReexport
from oqc_trio.auth import Credentials, TokenCredential
from oqc_trio.exceptions import (
    AuthenticationError,
    ConnectionFailureException,
    InsecureURLError,
    ProtocolViolation,
    RateLimited,
    RequestTimeout,
    RequestTooLarge,
    ServerUnreachable,
    TransportError,
)

BASE = "https://qcaas.example"
TOKEN = "tok-SECRET-1234567890"
PASSWORD = "pw-SECRET-987"
API = _wire.Api(BASE)

Handler = Callable[[httpx.Request], Any]


def ok(payload: object = None, **kwargs: object) -> httpx.Response:
    return httpx.Response(200, json={} if payload is None else payload, **kwargs)  # type: ignore[arg-type]


def make(handler: Handler, credentials: Credentials | None = None, **options) -> Transport:
    options.setdefault("retry", RetryPolicy(rng=random.Random(1234)))
    return Transport(
        BASE,
        Credentials(token=TOKEN) if credentials is None else credentials,
        transport_factory=lambda: httpx.MockTransport(handler),
        **options,
    )


class Script:
    """A fake server answering from a list of answers (the last one repeats)."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        self.times.append(trio.current_time())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


# -- the happy path ----------------------------------------------------------------------------
async def test_get_sends_exact_headers_and_returns_payload() -> None:
    server = Script(ok({"version": "3.9.0"}))
    transport = make(server)
    answer = await transport.send(API.health())
    assert isinstance(answer, Response)
    assert answer.json() == {"version": "3.9.0"}
    assert answer.status == 200 and answer.attempts == 1
    assert answer.content_type == "application/json"
    (sent,) = server.seen
    assert sent.headers["user-agent"].startswith("oqc-trio/")
    assert "authentication-token" not in sent.headers  # health is unauthenticated
    assert "content-type" not in sent.headers


async def test_post_sends_token_content_type_and_exact_body() -> None:
    server = Script(ok(["a"]))
    transport = make(server)
    request = API.cancel_many(None, ["id-1"])
    await transport.send(request)
    (sent,) = server.seen
    assert sent.headers["authentication-token"] == TOKEN
    assert sent.headers["content-type"] == "application/json"
    assert sent.content == request.body == b'{"tasks":["id-1"]}'


async def test_query_parameters_are_sent() -> None:
    server = Script(ok([]))
    await make(server).send(API.list_qpus())
    assert server.seen[0].url.params["per_page"] == "1000"


async def test_non_json_200_is_fine_until_json_is_asked_for() -> None:
    transport = make(Script(httpx.Response(200, text="OK")))
    answer = await transport.send(API.cancel_many(None, ["x"]))
    assert not answer.is_json
    assert answer.content == b"OK"
    with pytest.raises(ProtocolViolation, match="POST /tasks/cancel_many"):
        answer.json()


async def test_informational_messages_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="oqc_trio")
    payload = {"message": "Warning: QPU busy", "messages": ["maintenance at 5", ""]}
    await make(Script(ok(payload))).send(API.list_qpus())
    levels = {(r.levelno, r.getMessage()) for r in caplog.records}
    assert (logging.WARNING, "Warning: QPU busy") in levels
    assert (logging.INFO, "maintenance at 5") in levels


async def test_non_200_maps_through_exception_for_status() -> None:
    body = _wire.error_body("Invalid program")
    transport = make(Script(httpx.Response(400, json=body)))
    with pytest.raises(Exception) as info:
        await transport.send(API.submit(None, b"{}"))
    assert info.value.server_error_code == 400  # type: ignore[attr-defined]
    assert info.value.message == "Invalid program"  # type: ignore[attr-defined]


# -- retries and deadlines ---------------------------------------------------------------------
async def test_429_with_retry_after_seconds_waits_at_least_that(autojump_clock) -> None:
    server = Script(httpx.Response(429, headers={"Retry-After": "7"}), ok({"x": 1}))
    transport = make(server)
    start = trio.current_time()
    answer = await transport.send(API.all_info(None, "t"))
    assert answer.json() == {"x": 1}
    assert server.times[1] - start >= 7
    assert answer.attempts == 2
    stats = transport.statistics()
    assert stats.rate_limited == 1 and stats.retries == 1


async def test_429_with_retry_after_http_date(autojump_clock) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    server = Script(httpx.Response(429, headers={"Retry-After": when}), ok())
    start = trio.current_time()
    await make(server).send(API.all_info(None, "t"))
    assert server.times[1] - start >= 29  # the date has one-second resolution


async def test_retry_after_past_the_deadline_raises_at_once(autojump_clock) -> None:
    server = Script(httpx.Response(429, headers={"Retry-After": "60"}), ok())
    start = trio.current_time()
    with pytest.raises(RateLimited) as info:
        await make(server).send(API.all_info(None, "t"), deadline=start + 10)
    assert info.value.retry_after == 60
    assert trio.current_time() == start and len(server.seen) == 1


async def test_503_backoff_stays_within_the_deadline(autojump_clock) -> None:
    server = Script(httpx.Response(503, text="busy"))
    policy = RetryPolicy(max_attempts=100, base_delay=1.0, max_delay=16.0)
    transport = make(server, retry=policy)
    deadline = trio.current_time() + 20
    with pytest.raises(ConnectionFailureException) as info:
        await transport.send(API.all_info(None, "t"), deadline=deadline)
    assert info.value.server_error_code == 503
    assert trio.current_time() <= deadline
    assert 2 < len(server.seen) < 100
    gaps = [b - a for a, b in zip(server.times, server.times[1:])]
    assert all(0 <= g <= 16 for g in gaps)


async def test_503_gives_up_after_max_attempts(autojump_clock) -> None:
    server = Script(httpx.Response(503))
    transport = make(server, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(ConnectionFailureException):
        await transport.send(API.all_info(None, "t"))
    assert len(server.seen) == 3
    assert transport.statistics().retries == 2


async def test_503_on_post_is_not_retried(autojump_clock) -> None:
    server = Script(httpx.Response(503), ok())
    with pytest.raises(ConnectionFailureException):
        await make(server).send(API.submit(None, b"{}"))
    assert len(server.seen) == 1


async def test_read_timeout_is_retried_on_get(autojump_clock) -> None:
    server = Script(httpx.ReadTimeout("slow"), ok({"ok": True}))
    answer = await make(server).send(API.all_info(None, "t"))
    assert answer.json() == {"ok": True} and len(server.seen) == 2


async def test_read_timeout_is_not_retried_on_post(autojump_clock) -> None:
    server = Script(httpx.ReadTimeout("slow"), ok())
    with pytest.raises(RequestTimeout, match="POST /tasks/submit") as info:
        await make(server).send(API.submit(None, b"{}"))
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert len(server.seen) == 1


async def test_connect_error_becomes_server_unreachable_after_retries(autojump_clock) -> None:
    server = Script(httpx.ConnectError("refused"))
    transport = make(server, retry=RetryPolicy(max_attempts=4))
    with pytest.raises(ServerUnreachable, match="GET /admin/version") as info:
        await transport.send(API.health())
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(server.seen) == 4


async def test_connect_error_on_post_is_retried_as_nothing_was_sent(autojump_clock) -> None:
    server = Script(httpx.ConnectError("refused"), ok())
    await make(server).send(API.submit(None, b"{}"))
    assert len(server.seen) == 2


async def test_remote_protocol_error_is_retried_on_get(autojump_clock) -> None:
    server = Script(httpx.RemoteProtocolError("ConnectionTerminated error_code:0"), ok())
    await make(server).send(API.all_info(None, "t"))
    assert len(server.seen) == 2


async def test_remote_protocol_error_on_post_raises_transport_error(autojump_clock) -> None:
    server = Script(httpx.RemoteProtocolError("ConnectionTerminated"), ok())
    with pytest.raises(TransportError, match="POST /tasks/submit"):
        await make(server).send(API.submit(None, b"{}"))
    assert len(server.seen) == 1


async def test_deadline_bounds_a_hung_exchange(autojump_clock) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await trio.sleep(1000)
        return ok()

    start = trio.current_time()
    with pytest.raises(RequestTimeout, match="deadline"):
        await make(hang).send(API.all_info(None, "t"), deadline=start + 5)
    assert trio.current_time() == pytest.approx(start + 5)


# -- authentication ----------------------------------------------------------------------------
class LoginServer:
    """Logout/login endpoints issuing tok-1, tok-2, ...; other paths run ``check(token)``."""

    def __init__(self, valid: Callable[[str | None], bool], *, refuse: bool = False) -> None:
        self.valid = valid
        self.refuse = refuse
        self.calls: list[str] = []
        self.logins = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(path)
        await trio.sleep(0.01)
        if path == "/admin/logout":
            return ok()
        if path == "/admin/login":
            assert json.loads(request.content) == {"email": "a@b.c", "password": PASSWORD}
            if self.refuse:
                return httpx.Response(401, json=_wire.error_body("bad password " + PASSWORD))
            self.logins += 1
            user = {"authentication_token": f"tok-{self.logins}"}
            return ok({"response": {"user": user}})
        if path == "/admin/version" or self.valid(request.headers.get("authentication-token")):
            return ok({"path": path})
        return httpx.Response(401, json={"detail": "token expired"})


def email_credentials() -> Credentials:
    return Credentials(email="a@b.c", password=PASSWORD)


async def test_email_password_logs_in_lazily_then_relogs_once_on_401(autojump_clock) -> None:
    server = LoginServer(lambda token: token == "tok-2")
    transport = make(server, email_credentials())
    answer = await transport.send(API.list_qpus())
    assert answer.json() == {"path": "/admin/qpu"}
    assert server.calls == ["/admin/logout", "/admin/login", "/admin/qpu"] * 2
    stats = transport.statistics()
    assert (stats.logins, stats.relogins) == (2, 1)
    assert stats.requests == {"logout": 2, "login": 2, "qpus": 2}


async def test_post_is_resent_once_after_relogin(autojump_clock) -> None:
    server = LoginServer(lambda token: token == "tok-2")
    answer = await make(server, email_credentials()).send(API.submit(None, b"{}"))
    assert answer.attempts == 2
    assert server.calls.count("/tasks/submit") == 2


async def test_concurrent_401s_share_one_relogin(autojump_clock) -> None:
    server = LoginServer(lambda token: token == "tok-2")
    transport = make(server, email_credentials())
    await transport.send(API.health())  # unauthenticated: no login
    assert server.logins == 0
    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(transport.send, API.all_info(None, f"t{i}"))
    assert server.logins == 2  # the lazy first login, then one re-login for all 20
    assert transport.statistics().relogins == 1


async def test_second_401_raises_authentication_error(autojump_clock) -> None:
    server = LoginServer(lambda token: False)
    transport = make(server, email_credentials())
    with pytest.raises(AuthenticationError) as info:
        await transport.send(API.list_qpus())
    assert info.value.server_error_code == 401
    assert server.logins == 2


async def test_token_credential_never_logs_in(autojump_clock) -> None:
    server = LoginServer(lambda token: False)
    transport = make(server, TokenCredential(authentication_token=TOKEN))
    with pytest.raises(AuthenticationError):
        await transport.send(API.list_qpus())
    assert server.calls == ["/admin/qpu"]


async def test_refused_login_is_an_authentication_error_without_the_password(
    autojump_clock,
) -> None:
    server = LoginServer(lambda token: True, refuse=True)
    transport = make(server, email_credentials())
    with pytest.raises(AuthenticationError, match="login refused") as info:
        await transport.send(API.list_qpus())
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in json.dumps(info.value.metadata)


async def test_concurrent_requests_share_a_refused_login(autojump_clock) -> None:
    server = LoginServer(lambda token: True, refuse=True)
    transport = make(server, email_credentials())
    failures: list[BaseException] = []

    async def one(i: int) -> None:
        try:
            await transport.send(API.all_info(None, f"t{i}"))
        except AuthenticationError as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(one, i)
    assert len(failures) == 10
    assert server.calls.count("/admin/login") == 1


def test_credentials_validation_and_compat_names() -> None:
    with pytest.raises(ValueError, match="together"):
        Credentials(email="a@b.c")
    with pytest.raises(ValueError, match="mutually exclusive"):
        TokenCredential(authentication_token="t", email="a", password="p")
    assert Credentials().header() == {}
    assert TokenCredential(authentication_token="t").header() == {"Authentication-Token": "t"}
    assert TokenCredential(email="a", password="p").can_relogin
    assert not Credentials(token="t").can_relogin
    assert AuthErrorReexport is AuthenticationError


async def test_anonymous_credentials_send_no_header() -> None:
    server = Script(ok())
    await make(server, Credentials()).send(API.list_qpus())
    assert "authentication-token" not in server.seen[0].headers


# -- limits ------------------------------------------------------------------------------------
async def test_oversized_request_is_refused_before_anything_is_sent() -> None:
    server = Script(ok())
    transport = make(server)
    with pytest.raises(RequestTooLarge, match="128KB"):
        await transport.send(API.submit(None, b"x" * (_wire.MAX_REQUEST_BYTES + 1)))
    # headers count too: a body that alone fits is refused once headers are added
    body = b"x" * (_wire.MAX_REQUEST_BYTES - 10)
    with pytest.raises(RequestTooLarge):
        await transport.send(API.submit(None, body))
    assert server.seen == []
    await transport.send(API.submit(None, b"x" * (_wire.MAX_REQUEST_BYTES - 1000)))
    assert len(server.seen) == 1


async def test_oversized_request_does_not_trigger_a_login() -> None:
    server = LoginServer(lambda token: True)
    with pytest.raises(RequestTooLarge):
        await make(server, email_credentials()).send(
            API.submit(None, b"x" * (_wire.MAX_REQUEST_BYTES + 1))
        )
    assert server.calls == []


async def test_concurrency_cap_is_respected(autojump_clock) -> None:
    in_flight = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await trio.sleep(1)
        in_flight -= 1
        return ok()

    transport = make(slow, max_concurrency=4)
    async with trio.open_nursery() as nursery:
        for i in range(30):
            nursery.start_soon(transport.send, API.all_info(None, f"t{i}"))
    assert peak == 4
    assert transport.statistics().peak_in_flight == 4


async def test_rate_budget_spaces_requests(autojump_clock) -> None:
    server = Script(ok())
    transport = make(server, max_requests_per_s=10)
    async with trio.open_nursery() as nursery:
        for i in range(6):
            nursery.start_soon(transport.send, API.all_info(None, f"t{i}"))
    gaps = [b - a for a, b in zip(server.times, server.times[1:])]
    assert gaps == pytest.approx([0.1] * 5)
    assert transport.statistics().rate_waits == 5


async def test_rate_budget_allows_a_burst(autojump_clock) -> None:
    server = Script(ok())
    transport = make(server, max_requests_per_s=2, rate_burst=3)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(transport.send, API.all_info(None, f"t{i}"))
    offsets = sorted(t - start for t in server.times)
    assert offsets == pytest.approx([0, 0, 0, 0.5, 1.0])


async def test_rate_slot_past_the_deadline_raises(autojump_clock) -> None:
    server = Script(ok())
    transport = make(server, max_requests_per_s=1)
    await transport.send(API.all_info(None, "a"))
    with pytest.raises(RequestTimeout, match="rate"):
        await transport.send(API.all_info(None, "b"), deadline=trio.current_time() + 0.5)
    assert len(server.seen) == 1


# -- URLs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000", "http://127.3.4.5", "http://localhost:1234/", "http://[::1]:80"],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    Transport(url, Credentials(token=TOKEN))


def test_plain_http_to_a_remote_host_is_refused_unless_allowed() -> None:
    with pytest.raises(InsecureURLError):
        Transport("http://qcaas.example", Credentials(token=TOKEN))
    Transport("http://qcaas.example", allow_insecure_http=True)
    with pytest.raises(ValueError, match="scheme"):
        Transport("ftp://qcaas.example")


async def test_request_to_a_remote_http_url_is_refused() -> None:
    server = Script(ok())
    transport = make(server)
    with pytest.raises(InsecureURLError):
        await transport.send(_wire.Request("GET", "http://qpu.example/tasks/x/all_info", "x"))
    assert server.seen == []


# -- one client per trio.run -------------------------------------------------------------------
def test_each_trio_run_gets_its_own_client() -> None:
    server = Script(ok({"version": "1"}))
    transport = make(server)
    clients: list[httpx.AsyncClient] = []

    async def use() -> None:
        await transport.send(API.health())
        state = transport._run_state.get()
        assert state is not None
        clients.append(state.client)

    trio.run(use)
    trio.run(use)
    assert len(server.seen) == 2
    assert clients[0] is not clients[1]
    assert transport.statistics().clients_opened == 2


async def test_aclose_closes_the_client_and_a_later_send_reopens() -> None:
    transport = make(Script(ok()))
    await transport.send(API.health())
    state = transport._run_state.get()
    assert state is not None
    await transport.aclose()
    assert state.client.is_closed
    await transport.send(API.health())
    assert transport.statistics().clients_opened == 2
    await transport.aclose()
    await transport.aclose()  # idempotent


# -- secrets and statistics --------------------------------------------------------------------
async def test_the_token_never_appears_in_reprs_logs_or_errors(
    caplog: pytest.LogCaptureFixture, autojump_clock
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = {"response": {"errors": [f"bad header Authentication-Token: {TOKEN}"]}}
    server = Script(
        httpx.Response(503),
        httpx.ReadError(f"reset while sending {TOKEN}"),
        httpx.Response(400, json=echo),
    )
    credentials = Credentials(token=TOKEN)
    transport = make(server, credentials)
    with pytest.raises(Exception) as info:
        await transport.send(API.all_info(None, "t"))
    texts = [repr(transport), str(transport), repr(credentials), caplog.text]
    texts += [str(info.value), repr(info.value), json.dumps(info.value.metadata)]  # type: ignore[attr-defined]
    for text in texts:
        assert TOKEN not in text
    assert info.value.server_error_code == 400  # type: ignore[attr-defined]

    with pytest.raises(TransportError) as wrapped:
        await make(Script(httpx.WriteError(f"boom {TOKEN}")), credentials).send(
            API.submit(None, b"{}")
        )
    assert TOKEN not in str(wrapped.value)


async def test_password_never_appears_in_reprs() -> None:
    credentials = email_credentials()
    transport = make(Script(ok()), credentials)
    assert PASSWORD not in repr(credentials) + repr(transport)
    assert "a@b.c" in repr(credentials)


async def test_statistics_count_requests_per_label(autojump_clock) -> None:
    server = Script(httpx.Response(502), ok())
    transport = make(server)
    await transport.send(API.all_info(None, "t"))
    await transport.send(API.health())
    await transport.send(API.health())
    stats = transport.statistics()
    assert stats.requests == {"all_info": 2, "health": 2}
    assert stats.total_requests == 4
    assert (stats.retries, stats.rate_limited, stats.logins, stats.in_flight) == (1, 0, 0, 0)


async def test_works_with_respx_on_the_httpx_client() -> None:
    # respx patches httpx, so it sees requests only when the transport sends through httpx.
    with respx.mock(assert_all_called=True) as router:
        router.get(f"{BASE}/admin/version").respond(200, json={"version": "9"})
        transport = Transport(BASE, Credentials(token=TOKEN), http_client="httpx")
        answer = await transport.send(API.health())
        await transport.aclose()
    assert answer.json() == {"version": "9"}


# -- a real loopback server (optional: needs hypercorn) ----------------------------------------
async def _tiny_asgi_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    body = json.dumps({"version": "1", "path": scope["path"]}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("http_client", ["h11", "httpx"])
def test_real_loopback_server_across_two_trio_runs(http_client: HttpClient) -> None:
    hypercorn_trio = pytest.importorskip("hypercorn.trio")
    from hypercorn.config import Config

    transport = Transport(
        "http://127.0.0.1", Credentials(token=TOKEN), max_concurrency=4, http_client=http_client
    )
    dropped: list[weakref.ref[Any]] = []

    async def serve_and_use(close: bool) -> None:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.keep_alive_max_requests = 3  # forces reconnections mid-run
        config.accesslog = config.errorlog = None
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(hypercorn_trio.serve, _tiny_asgi_app, config)
            api = _wire.Api(binds[0])
            async with trio.open_nursery() as clients:
                for _ in range(10):
                    clients.start_soon(transport.send, api.health())
            answer = await transport.send(api.list_qpus())
            assert answer.json()["path"] == "/admin/qpu"
            state = transport._run_state.get()
            assert state is not None
            dropped.append(weakref.ref(state.pool or state.client))
            if close:
                await transport.aclose()
            nursery.cancel_scope.cancel()

    # Like a Jupyter cell: the run ends without aclose(); its client is dropped, and becomes
    # garbage (its sockets' ResourceWarning is expected, and silenced here).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        trio.run(serve_and_use, False)
        gc.collect()
    assert dropped[0]() is None
    trio.run(serve_and_use, True)
    stats = transport.statistics()
    assert stats.clients_opened == 2
    assert stats.requests == {"health": 20, "qpus": 2}


# -- which HTTP client sends -------------------------------------------------------------------
def test_auto_picks_the_lean_client_unless_httpx_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    assert Transport(BASE).http_client == "h11"
    assert Transport(BASE, http2=True).http_client == "httpx"
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    assert Transport(BASE, transport_factory=lambda: mock).http_client == "httpx"
    assert Transport(BASE, http_client="httpx").http_client == "httpx"
    # A proxy for the service's scheme: httpx honours it, the lean client would not.
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert Transport(BASE).http_client == "httpx"
    monkeypatch.setenv("NO_PROXY", "qcaas.example")
    assert Transport(BASE).http_client == "h11"
    assert "http_client='h11'" in repr(Transport(BASE))


def test_http_client_choice_is_validated() -> None:
    with pytest.raises(ValueError, match="http_client must be"):
        Transport(BASE, http_client="curl")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="neither HTTP/2"):
        Transport(BASE, http2=True, http_client="h11")
