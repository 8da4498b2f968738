"""OQC's official ``oqc-qcaas-sdk==0.1.24``, unmodified, against ``oqc-emulator``.

The emulator runs as the real command (``python -m oqc_trio.emulator serve --port 0``, aer
executor) in a subprocess; the official SDK is asyncio, so each scenario is an
``asyncio.run`` in a plain test. Every scenario runs in the legacy dialect and in v4
(``OQC_QCAAS_V4=1``, read by ``OqcSdk.__init__``).

Run with ``tox -e compat`` or ``pytest -m compat tests/compat/test_official_sdk_on_emulator.py``
in an environment where the official SDK is installed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("oqc_qcaas_sdk")
pytest.importorskip("qiskit_aer")
from oqc_qcaas_sdk import OqcSdk
from oqc_qcaas_sdk.job import CompositeJob, Job, JobState

pytestmark = pytest.mark.compat

FAST = "qpu:uk:2:c0mpat0001"
SLOW = "qpu:uk:2:c0mpat0002"
WINDOWED = "qpu:uk:2:c0mpat0003"
TOKEN = "compat-token"
WINDOW_START = dt.datetime(2099, 1, 2, 9, 30, 0)

CONFIG = f"""
admin_token = "compat-admin"
executor_workers = 2

[[qpus]]
id = "{FAST}"
name = "Fast"
qubits = 8
execution_time_s = 0.0

[[qpus]]
id = "{SLOW}"
name = "Slow"
qubits = 8
execution_time_s = 3.0

# A window far in the future: tasks sent here would wait for it (only windows/next is used).
[[qpus]]
id = "{WINDOWED}"
name = "Windowed"
qubits = 8
windows = [{{ starting = "{WINDOW_START.isoformat()}Z", ending = "2099-01-02T17:00:00Z" }}]

[[users]]
email = "compat@example.com"
password = "compat-password"
tokens = ["{TOKEN}"]
"""

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""

BELL3 = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""

INVALID = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0]
cx q[0],q[1];
"""


@pytest.fixture(scope="module")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of an ``oqc-emulator serve`` subprocess (aer executor)."""
    config = tmp_path_factory.mktemp("emulator") / "emulator.toml"
    config.write_text(CONFIG)
    command = [sys.executable, "-m", "oqc_trio.emulator", "serve", "--port", "0"]
    command += ["--config", str(config), "--executor", "aer"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        for line in process.stdout:
            match = re.match(r"oqc-emulator serving (\S+)", line)
            if match:
                url = match.group(1)
            if line.startswith("admin token") or time.monotonic() > deadline:
                break
        assert url, "the emulator did not print its URL"
        yield url
    finally:
        process.send_signal(2)  # SIGINT
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(params=["legacy", "v4"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The dialect the official SDK speaks (env ``OQC_QCAAS_V4``)."""
    if request.param == "v4":
        monkeypatch.setenv("OQC_QCAAS_V4", "1")
    else:
        monkeypatch.delenv("OQC_QCAAS_V4", raising=False)
        monkeypatch.delenv("OQC_ENTRA_ENABLED", raising=False)
    return request.param


def server_status(url: str, task_id: Any) -> str:
    """A task's status as the emulator reports it (plain httpx)."""
    response = httpx.get(
        f"{url}/tasks/{task_id}/status", headers={"Authentication-Token": TOKEN}, timeout=10
    )
    response.raise_for_status()
    return response.json()["status"]


def run(scenario: Any) -> Any:
    return asyncio.run(scenario)


def test_catalogue_features_status_calibration_and_windows(emulator_url: str, mode: str) -> None:
    async def scenario() -> None:
        async with OqcSdk(emulator_url, authentication_token=TOKEN) as sdk:
            assert sdk._client.is_client_initialized
            qpus = await sdk.list_qpus()
            assert [q["id"] for q in qpus] == [FAST, SLOW, WINDOWED]
            if mode == "legacy":
                assert qpus[0]["url"] == f"{emulator_url}/qpu/c0mpat0001"

            features = await sdk.get_features(FAST)
            assert features["qubit_count"] == 8 and features["max_shots"] == 10_000

            status = await sdk.get_system_status(FAST)
            if mode == "legacy":
                assert [s["qpu_id"] for s in status] == [FAST]
                everything = await sdk.get_system_status()
                assert len(everything) == 3  # one document per distinct QPU URL
            else:
                assert status["qpu_id"] == FAST and status["status"] == "ONLINE"

            day = dt.date.today() - dt.timedelta(days=3)
            calibration = await sdk.get_calibration(FAST, date_filter=day)
            if mode == "legacy":
                assert calibration["date"] == day.isoformat()
                assert calibration["qpu_id"] == FAST
            else:
                assert [c["date"] for c in calibration] == [day.isoformat()]
            latest = await sdk.get_calibration(FAST)
            assert latest["qpu_id"] == FAST and "qubits" in latest

            if mode == "legacy":
                assert await sdk.get_next_window(WINDOWED) == WINDOW_START
                assert await sdk.get_next_window(FAST) is None
            else:
                with pytest.raises(NotImplementedError):
                    await sdk.get_next_window(FAST)

    run(scenario())


def test_email_and_password_login(emulator_url: str, mode: str) -> None:
    async def scenario() -> None:
        async with OqcSdk(
            emulator_url, email="compat@example.com", password="compat-password"
        ) as sdk:
            assert sdk._client.is_client_initialized
            features = await sdk.get_features(FAST)
            assert features["qpu_id"] == FAST

    run(scenario())


def test_single_job_execute_and_save_load(emulator_url: str, mode: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with OqcSdk(emulator_url, authentication_token=TOKEN) as sdk:
            job = sdk.create_job(program=BELL, qpu_id=FAST, fetch_diagnostics=True)
            assert isinstance(job, Job)
            outputs = await job.execute(timeout_s=60)
            assert job.state is JobState.COMPLETED, job.error
            counts = outputs.first.data["c"]
            assert set(counts) <= {"00", "11"} and sum(counts.values()) == 1000
            assert job.metrics["gate_counts"]["cx"] == 1
            assert job.metadata["id"] == str(job.task_id)
            assert job.timings["finished"] is not None

            path = tmp_path / "job.json"
            job.save(path)
            loaded = sdk.load(path)
            assert isinstance(loaded, Job)
            assert loaded.task_id == job.task_id and loaded.state is JobState.COMPLETED
            assert loaded.result.data == job.result.data
            # A loaded job can be refreshed against the server.
            await loaded.refresh()
            assert loaded.state is JobState.COMPLETED

    run(scenario())


def test_composite_of_fifty_with_one_invalid_program(
    emulator_url: str, mode: str, tmp_path: Path
) -> None:
    programs = [BELL if n % 2 else BELL3 for n in range(50)]
    programs[17] = INVALID

    async def scenario() -> None:
        async with OqcSdk(emulator_url, authentication_token=TOKEN) as sdk:
            composite = sdk.create_job(program=programs, qpu_id=FAST)
            assert isinstance(composite, CompositeJob)
            outputs = await composite.execute(timeout_s=90)
            assert len(outputs) == 50
            assert len(composite.completed_jobs) == 49
            (failed,) = composite.failed_jobs
            assert failed is composite.jobs[17]
            assert failed.state is JobState.FAILED
            message = failed.error.error_message
            assert "line 6" in message, message
            for job in composite.completed_jobs:
                assert sum(job.result.data["c"].values()) == 1000

            path = tmp_path / "composite.json"
            composite.save(path)
            loaded = sdk.load(path)
            assert isinstance(loaded, CompositeJob) and len(loaded) == 50
            assert loaded.jobs[17].error.error_message == message
            assert loaded.jobs[0].result.data == composite.jobs[0].result.data

    run(scenario())


def test_cancel_a_queued_job(emulator_url: str, mode: str) -> None:
    async def scenario() -> None:
        async with OqcSdk(emulator_url, authentication_token=TOKEN) as sdk:
            running = sdk.create_job(program=BELL, qpu_id=SLOW)
            queued = sdk.create_job(program=BELL, qpu_id=SLOW)
            await running.submit()
            await queued.submit()
            assert queued.task_id is not None
            assert server_status(emulator_url, queued.task_id) == "SUBMITTED"
            await queued.cancel()
            assert queued.state is JobState.CANCELLED
            assert server_status(emulator_url, queued.task_id) == "CANCELLED"
            await queued.refresh()
            assert queued.state is JobState.CANCELLED
            await running.cancel_if_active()
            assert server_status(emulator_url, running.task_id) == "CANCELLED"

    run(scenario())
