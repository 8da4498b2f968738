"""Opening the SDK raises a typed error instead of half-initialising (#18): a health answer
without ``version``, a catalogue without an active QPU, and any use before ``open()``. The
official SDK only logs these and fails later with a ``TypeError``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from oqc_trio.client import OqcSdk
from oqc_trio.exceptions import NoActiveQpuError, NotOpenError, ProtocolViolation
from oqc_trio.job import Job

BASE = "http://127.0.0.1:9"  # never contacted: every request goes to a MockTransport
QPU = "qpu:uk:2:d865b5a184"


def _service(version: Any, qpus: list[dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/admin/version":
            return httpx.Response(200, json=version)
        if request.url.path == "/admin/qpu":
            return httpx.Response(200, json={"items": qpus})
        return httpx.Response(404, json={"error": "not here"})

    return answer


def _sdk(version: Any, qpus: list[dict[str, Any]]) -> OqcSdk:
    return OqcSdk(
        BASE,
        authentication_token="t0ken",
        transport_factory=lambda: httpx.MockTransport(_service(version, qpus)),
    )


ACTIVE = [{"id": QPU, "url": BASE, "active": True}]


async def test_a_health_answer_without_version_is_a_protocol_violation() -> None:
    sdk = _sdk({"status": "ok"}, ACTIVE)
    with pytest.raises(ProtocolViolation, match="no 'version'"):
        await sdk.open()
    assert "opened=False" in repr(sdk)


async def test_a_catalogue_without_an_active_qpu_refuses_to_open() -> None:
    sdk = _sdk({"version": "3.9.0"}, [{"id": QPU, "url": BASE, "active": False}])
    with pytest.raises(NoActiveQpuError, match="no active QPU"):
        await sdk.open()
    assert "opened=False" in repr(sdk)


async def test_executing_before_open_raises_not_open() -> None:
    sdk = _sdk({"version": "3.9.0"}, ACTIVE)
    job = sdk.create_job(program="OPENQASM 2.0;", qpu_id=QPU)
    assert isinstance(job, Job)
    with pytest.raises(NotOpenError):
        await job.execute(timeout_s=5)
    assert job.task_id is None


async def test_the_same_sdk_opens_once_the_service_is_right() -> None:
    sdk = _sdk({"version": "3.9.0"}, ACTIVE)
    await sdk.open()
    assert sdk.server_version == "3.9.0" and sdk.default_qpu_id == QPU
    await sdk.close()
