"""Emulator configuration (TOML), the command line and the package's lazy exports."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import attrs
import httpx
import pytest
import trio

from oqc_trio.emulator.cli import banner, main
from oqc_trio.emulator.config import (
    DEFAULT_QPU_IDS,
    DEV_EMAIL,
    ConfigError,
    EmulatorConfig,
)

TOML = """
time_scale = 0.5
seed = 3
admin_token = "root"

[[qpus]]
id = "qpu:uk:9:abcdef0123"
name = "Tiny"
qubits = 3
connectivity = [[0, 1], [1, 2]]
max_shots = 50
gate_set = ["x", "cx"]
execution_time_s = 0.25
workers = 2
windows = [{ starting = "2030-01-01T09:00:00Z", ending = "2030-01-01T17:00:00Z" }]

[[users]]
email = "a@example.com"
tokens = ["tok-a"]
admin = true
"""


def test_default_config_has_two_qpus_and_a_dev_user() -> None:
    config = EmulatorConfig.default()
    assert tuple(q.id for q in config.qpus) == DEFAULT_QPU_IDS
    assert config.users[0].email == DEV_EMAIL
    assert config.generated_dev_token == config.first_token
    assert EmulatorConfig.default().first_token != config.first_token  # random each time
    assert config.qpus[0].couplers[:2] == ((0, 1), (1, 2))


def test_toml_config(tmp_path: Path) -> None:
    path = tmp_path / "emulator.toml"
    path.write_text(TOML)
    config = EmulatorConfig.from_toml(path)
    (qpu,) = config.qpus
    assert (qpu.short, qpu.qubits, qpu.max_shots, qpu.workers) == ("abcdef0123", 3, 50, 2)
    assert qpu.couplers == ((0, 1), (1, 2)) and qpu.gate_set == ("x", "cx")
    assert qpu.windows[0].starting.year == 2030 and qpu.windows[0].starting.tzinfo
    assert (config.time_scale, config.seed, config.admin_token) == (0.5, 3, "root")
    assert config.users[0].admin and config.generated_dev_token is None
    assert "tok-a" in banner("http://x", config, executor="aer")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"qpus": [{"id": "q:1", "qubits": 0}]}, "qpus[0].qubits"),
        ({"qpus": [{"id": "q:1"}, {"id": "q:1"}]}, "duplicate"),
        ({"qpus": [{"id": "a b"}]}, "qpus[0].id"),
        ({"qpus": [{"id": "q:1", "colour": "red"}]}, "qpus[0].colour: unknown key"),
        ({"qpus": [{"id": "q:1", "qubits": 2, "connectivity": [[0, 5]]}]}, "connectivity[0]"),
        ({"time_scale": -1}, "time_scale"),
        ({"time_scale": float("nan")}, "time_scale"),
        ({"users": [{"email": "x@y"}]}, "password or at least one token"),
        ({"users": [{"email": "nobody", "tokens": ["t"]}]}, "email"),
        (
            {"users": [{"email": "a@b", "tokens": ["t"]}, {"email": "c@d", "tokens": ["t"]}]},
            "twice",
        ),
        (
            {
                "qpus": [
                    {"id": "q:1", "windows": [{"starting": "2030-01-02", "ending": "2030-01-01"}]}
                ]
            },
            "after",
        ),
        ({"speed": 1}, "speed: unknown key"),
    ],
)
def test_config_errors_name_the_key(data: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        EmulatorConfig.from_mapping(data)
    assert fragment in str(info.value)


def test_cli_refuses_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("qpus = 3\n")
    assert main(["serve", "--config", str(path)]) == 2
    assert "qpus" in capsys.readouterr().err
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2


def test_importing_the_package_starts_and_loads_nothing() -> None:
    code = (
        "import sys, oqc_trio.emulator as e\n"
        "heavy = ('starlette', 'hypercorn', 'qiskit')\n"
        "assert not [m for m in sys.modules if m.startswith(heavy)]\n"
        "assert e.EmulatorConfig.__name__ == 'EmulatorConfig'\n"
        "assert set(e.__all__) <= set(dir(e))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_the_command_serves_and_prints_url_and_token(tmp_path: Path) -> None:
    path = tmp_path / "emulator.toml"
    path.write_text(TOML)
    command = [sys.executable, "-m", "oqc_trio.emulator", "serve", "--port", "0"]
    command += ["--executor", "instant", "--config", str(path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    async with trio.open_nursery() as nursery:
        serve = partial(trio.run_process, command, stdout=subprocess.PIPE, env=env, check=False)
        process = await nursery.start(serve)
        try:
            assert process.stdout is not None
            seen = b""
            with trio.fail_after(30):
                while b"admin token" not in seen:
                    chunk = await process.stdout.receive_some()
                    assert chunk, seen
                    seen += chunk
            text = seen.decode()
            url = text.split("serving ", 1)[1].split()[0]
            assert url.startswith("http://127.0.0.1:") and "user token: tok-a" in text
            async with httpx.AsyncClient() as http:
                version = await http.get(f"{url}/admin/version")
                assert version.status_code == 200
                qpus = await http.get(f"{url}/admin/qpu", headers={"Authentication-Token": "tok-a"})
                assert qpus.json()["items"][0]["url"] == f"{url}/qpu/abcdef0123"
        finally:
            process.send_signal(2)  # SIGINT: the command exits cleanly
    assert process.returncode == 0


def test_banner_for_a_generated_token() -> None:
    config = EmulatorConfig.default()
    text = banner("http://h:1", config, executor="instant")
    assert f"development token: {config.generated_dev_token}" in text
    assert "http://h:1/qpu/d865b5a184" in text
    no_paths = attrs.evolve(config, qpu_paths=False)
    assert "/qpu/" not in banner("http://h:1", no_paths, executor="aer")
