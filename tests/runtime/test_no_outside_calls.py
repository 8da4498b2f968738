"""No hidden outbound call (#20): during a 5xx/429 storm and after a failed ``open()``, the
SDK contacts only the service it was given (here the emulator on 127.0.0.1).

The official SDK starts a fire-and-forget HTTPS request to OQC's public status page on every
408/429/5xx answer and every failed initialisation. We watch the whole process with a
Python audit hook (``sys.addaudithook``): every host-name resolution (``socket.getaddrinfo``,
``gethostbyname``...), every socket ``connect`` / ``sendto`` and every ``urllib`` request is
recorded, whichever library or thread makes it, for both HTTP clients of the transport: our
HTTP/1.1 client (``_http1.py``) and ``httpx``. Time runs on trio's autojump clock.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
from runtime_support import BELL, config, open_emulator

from oqc_trio._actors.policy import PollPolicy
from oqc_trio._transport import RetryPolicy
from oqc_trio.client import OqcSdk
from oqc_trio.emulator.faults import FaultPlan, FaultRule
from oqc_trio.exceptions import AuthenticationError, ConnectionFailureException, ServerUnreachable
from oqc_trio.job import CompositeJob

LOOPBACK = {"127.0.0.1"}
CLIENTS = ["h11", "httpx"]
FAST = PollPolicy(first_poll_s=0.02, max_interval_s=0.5)

# -- one process-wide audit hook (hooks cannot be removed): installed on first use, and
# inert (one list check) outside `watching` ------------------------------------------------
_lock = threading.Lock()
_active: list[list[tuple[str, Any]]] = []
_installed: list[bool] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _active:
        return
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        record = ("resolve", args[0])
    elif event in ("socket.connect", "socket.sendto"):
        address = args[1]
        if not isinstance(address, tuple):
            return  # a Unix socket (trio's wakeup pipe and the like)
        record = (event.removeprefix("socket."), address[0])
    elif event in ("urllib.Request", "http.client.connect"):
        record = (event, args[0] if args else None)
    else:
        return
    with _lock:
        for log in _active:
            log.append(record)


@contextmanager
def watching() -> Iterator[list[tuple[str, Any]]]:
    """Record every resolution and outbound connection made by the process meanwhile."""
    if not _installed:
        sys.addaudithook(_audit)
        _installed.append(True)
    log: list[tuple[str, Any]] = []
    _active.append(log)
    try:
        yield log
    finally:
        _active.remove(log)


def hosts(log: list[tuple[str, Any]]) -> set[str]:
    found = set()
    for _, host in log:
        if isinstance(host, bytes):
            host = host.decode()
        found.add(str(host))
    return found


def storm_plan() -> FaultPlan:
    """Half of the status polls and a third of the submits answered 429/500/503/408."""
    return FaultPlan(
        seed=20,
        rules=(
            FaultRule(
                kind="status",
                routes=("GET /tasks/*/all_info",),
                status=(429, 503, 500, 408),
                probability=0.5,
                retry_after_s=0.05,
            ),
            FaultRule(
                kind="status", routes=("POST /tasks/submit",), status=(503,), probability=0.34
            ),
        ),
    )


def sdk_for(url: str, token: str | None, http_client: str, **options: Any) -> OqcSdk:
    return OqcSdk(
        url,
        authentication_token=token,
        poll_policy=FAST,
        http_client=http_client,  # type: ignore[arg-type]
        **options,
    )


def test_the_audit_hook_sees_a_non_loopback_resolution() -> None:
    """Control: the hook would notice a call to a status page (resolving ``localhost`` goes
    through the same ``getaddrinfo`` call as any host name, without leaving the machine)."""
    with watching() as log:
        socket.getaddrinfo("localhost", 443)
    assert ("resolve", "localhost") in log


@pytest.mark.parametrize("http_client", CLIENTS)
async def test_a_5xx_and_429_storm_contacts_only_the_emulator(
    http_client: str, autojump_clock: Any
) -> None:
    async with open_emulator(config(faults=storm_plan()), executor="instant") as emu:
        with watching() as log:
            async with sdk_for(emu.url, emu.token, http_client) as sdk:
                qpus = [q["id"] for q in await sdk.list_qpus()]
                composite = sdk.create_job(program=[BELL] * 10, qpu_id=qpus)
                assert isinstance(composite, CompositeJob)
                await composite.execute(timeout_s=120)
                assert composite.completed
                stats = sdk.statistics()
                assert stats.retries > 0  # the storm happened and was retried through
            # Anything fired and forgotten would have had a minute to go out.
            await trio.sleep(60)
    assert log, "the hook recorded nothing: the test would prove nothing"
    assert any(kind == "connect" for kind, _ in log)
    assert hosts(log) <= LOOPBACK, sorted(hosts(log))


@pytest.mark.parametrize("http_client", CLIENTS)
async def test_a_refused_connection_on_open_contacts_only_the_given_host(
    http_client: str, autojump_clock: Any
) -> None:
    # A socket bound to a port but not listening: every connect is refused, on loopback.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with watching() as log:
            sdk = sdk_for(url, "tok", http_client, retry=RetryPolicy(max_attempts=3))
            with pytest.raises(ServerUnreachable):
                await sdk.open()
            await sdk.close()
            await trio.sleep(60)
    assert sum(1 for kind, _ in log if kind == "connect") >= 3  # every attempt was seen
    assert hosts(log) <= LOOPBACK, sorted(hosts(log))


@pytest.mark.parametrize("http_client", CLIENTS)
async def test_an_open_answered_503_contacts_only_the_emulator(
    http_client: str, autojump_clock: Any
) -> None:
    down = FaultPlan(rules=(FaultRule(kind="status", status=(503,), retry_after_s=0.05),))
    async with open_emulator(config(faults=down), executor="instant") as emu:
        with watching() as log:
            sdk = sdk_for(emu.url, emu.token, http_client, retry=RetryPolicy(max_attempts=3))
            with pytest.raises(ConnectionFailureException) as info:
                await sdk.open()
            assert info.value.server_error_code == 503
            await sdk.close()
            await trio.sleep(60)
    assert any(kind == "connect" for kind, _ in log)
    assert hosts(log) <= LOOPBACK, sorted(hosts(log))


@pytest.mark.parametrize("http_client", CLIENTS)
async def test_an_open_with_a_rejected_token_contacts_only_the_emulator(
    http_client: str, autojump_clock: Any
) -> None:
    async with open_emulator(config(), executor="instant") as emu:
        with watching() as log:
            sdk = sdk_for(emu.url, "not-a-valid-token", http_client)
            with pytest.raises(AuthenticationError):
                await sdk.open()
            await sdk.close()
            await trio.sleep(60)
    assert any(kind == "connect" for kind, _ in log)
    assert hosts(log) <= LOOPBACK, sorted(hosts(log))
