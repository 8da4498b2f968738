"""Emulator configuration: the QPU catalogue, users, timing, limits and faults, from TOML.

A complete ``emulator.toml`` (every key optional)::

    time_scale = 1.0            # multiplies every simulated duration (0 = none)
    seed = 1234                 # fixed sampling seed (per task: seed + task number)
    admin_token = "admin-secret"
    qpu_paths = true            # QPU urls are {base}/qpu/{short}; false: every url is {base}
    executor_workers = 2        # worker processes of the simulator
    task_timeout_s = 60.0       # a simulation running longer fails its task

    [[qpus]]
    id = "qpu:uk:2:d865b5a184"
    name = "Lucy (emulated)"
    qubits = 8
    connectivity = [[0, 1], [1, 2]]   # default: a ring
    route = false                     # uncoupled 2-qubit gates: fail (default: route
                                      # them, unless connectivity is given)
    max_shots = 10000
    gate_set = ["rz", "sx", "x", "ecr"]
    execution_time_s = 0.05           # simulated time on the QPU per task, x time_scale
    workers = 1                       # tasks run at once on this QPU
    active = true
    windows = [{ starting = "2030-01-01T09:00:00Z", ending = "2030-01-01T17:00:00Z" },
               { start_in_s = 60, duration_s = 600, every_s = 3600 }]
    [[qpus.calibrations]]             # noise (see oqc_trio.emulator.calibration)
    date = 2025-01-01
    t1_us = 100.0
    t2_us = 80.0
    readout_p01 = 0.02

    [[users]]
    email = "alice@example.com"
    password = "alice-password"
    tokens = ["alice-token"]
    admin = false
    limits = { requests_per_s = 10 }  # overrides [limits] (see oqc_trio.emulator.limits)

    [limits]
    max_concurrent_requests = 50

    [faults]                          # see oqc_trio.emulator.faults
    seed = 7
    rules = [{ kind = "status", status = [429, 503], probability = 0.1 }]

With no ``[[qpus]]`` the default catalogue of ``default_catalogue.toml`` is served: an ideal
QPU and a noisy one (ids in :data:`DEFAULT_QPU_IDS`). With no ``[[users]]`` one development
user is created with a random token (the command prints it).
"""

from __future__ import annotations

import importlib.resources
import secrets
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import attrs

from .._wire import MAX_REQUEST_BYTES
from .calibration import Calibration, parse_calibrations
from .faults import FaultPlan, parse_plan
from .limits import UserLimits, parse_limits
from .validate import (
    ConfigError,
    bool_key,
    int_key,
    list_key,
    number_key,
    opt_int_key,
    reject_unknown,
    str_key,
    table,
)
from .windows import RelativeWindow, Window, parse_windows

__all__ = [
    "DEFAULT_QPU_IDS",
    "DEV_EMAIL",
    "DEV_PASSWORD",
    "ConfigError",
    "EmulatorConfig",
    "QpuSpec",
    "UserSpec",
    "Window",
]

#: Ids of the default catalogue: an ideal QPU and a noisy one.
DEFAULT_QPU_IDS = ("qpu:uk:2:d865b5a184", "qpu:uk:3:9829a5504f")
#: Credentials of the development user created when the config names no user.
DEV_EMAIL = "dev@emulator.local"
DEV_PASSWORD = "emulator"

DEFAULT_GATE_SET = ("rz", "sx", "x", "ecr", "cx", "h", "measure", "reset", "barrier")


def new_token(prefix: str = "emu") -> str:
    """A fresh random bearer token."""
    return f"{prefix}-{secrets.token_urlsafe(24)}"


@attrs.frozen
class QpuSpec:
    """One emulated QPU of the catalogue.

    ``calibrations`` (sorted by date) make it noisy; ``route`` None means "route unless a
    connectivity was given". ``windows`` are absolute, ``relative_windows`` are placed
    when the server starts (see :mod:`oqc_trio.emulator.windows`).
    """

    id: str
    name: str
    qubits: int = 8
    connectivity: tuple[tuple[int, int], ...] = ()
    max_shots: int = 10_000
    gate_set: tuple[str, ...] = DEFAULT_GATE_SET
    execution_time_s: float = 0.05
    workers: int = 1
    active: bool = True
    windows: tuple[Window, ...] = ()
    relative_windows: tuple[RelativeWindow, ...] = ()
    calibrations: tuple[Calibration, ...] = ()
    route: bool | None = None

    @property
    def routes(self) -> bool:
        """Whether two-qubit gates between uncoupled qubits are routed (else they fail)."""
        return self.route if self.route is not None else not self.connectivity

    @property
    def windowed(self) -> bool:
        """Whether the QPU only runs tasks inside execution windows."""
        return bool(self.windows or self.relative_windows)

    @property
    def short(self) -> str:
        """The last segment of the id: used in the per-QPU URL path ``/qpu/{short}``."""
        return self.id.rsplit(":", 1)[-1]

    @property
    def couplers(self) -> tuple[tuple[int, int], ...]:
        """The connectivity, or a ring over all qubits when none was configured."""
        if self.connectivity:
            return self.connectivity
        if self.qubits < 2:
            return ()
        if self.qubits == 2:
            return ((0, 1),)
        return tuple((q, (q + 1) % self.qubits) for q in range(self.qubits))


@attrs.frozen
class UserSpec:
    """A user: login credentials (optional) and fixed tokens (optional)."""

    email: str
    password: str | None = None
    tokens: tuple[str, ...] = ()
    admin: bool = False
    name: str = ""
    #: This user's limits; None: the configuration's ``limits``.
    limits: UserLimits | None = None


@lru_cache(maxsize=1)
def default_qpus() -> tuple[QpuSpec, ...]:
    """The default catalogue (``default_catalogue.toml``): ``Lucy (emulated)``, an ideal
    8-qubit QPU, and ``Toshiko (emulated, noisy)``, 7 qubits with a real calibration."""
    text = importlib.resources.files(__package__).joinpath("default_catalogue.toml").read_text()
    data = tomllib.loads(text)
    return tuple(_qpu(item, f"qpus[{i}]") for i, item in enumerate(data["qpus"]))


@attrs.frozen
class EmulatorConfig:
    """Everything the emulator serves. Build with :meth:`default`, :meth:`from_toml` or
    :meth:`from_mapping`; derive variants with :func:`attrs.evolve`.

    ``generated_dev_token`` is set when no user was configured and a development user was
    created: the command line prints it.
    """

    qpus: tuple[QpuSpec, ...] = attrs.field(factory=default_qpus)
    users: tuple[UserSpec, ...] = ()
    admin_token: str = attrs.field(factory=lambda: new_token("admin"))
    time_scale: float = 1.0
    seed: int | None = None
    qpu_paths: bool = True
    executor_workers: int = 2
    task_timeout_s: float | None = 60.0
    max_request_bytes: int = MAX_REQUEST_BYTES
    generated_dev_token: str | None = None
    #: Limits of every user without limits of their own.
    limits: UserLimits = attrs.field(factory=UserLimits)
    faults: FaultPlan = attrs.field(factory=FaultPlan)

    def __attrs_post_init__(self) -> None:
        if not self.qpus:
            raise ConfigError("qpus: at least one QPU is needed")
        if self.time_scale == 0 and any(q.relative_windows for q in self.qpus):
            raise ConfigError("time_scale: relative windows need time_scale > 0")
        ids = [q.id for q in self.qpus]
        if len(set(ids)) != len(ids):
            raise ConfigError("qpus: duplicate QPU id")
        shorts = [q.short for q in self.qpus]
        if self.qpu_paths and len(set(shorts)) != len(shorts):
            raise ConfigError("qpus: the last ':' segments of the ids must differ")
        tokens = [t for u in self.users for t in u.tokens] + [self.admin_token]
        if len(set(tokens)) != len(tokens):
            raise ConfigError("users: a token is given twice")
        emails = [u.email.lower() for u in self.users]
        if len(set(emails)) != len(emails):
            raise ConfigError("users: an email is given twice")

    @classmethod
    def default(cls, **changes: Any) -> EmulatorConfig:
        """The default catalogue and one development user with a fresh random token."""
        return cls.from_mapping({}).evolve(**changes)

    @classmethod
    def from_toml(cls, path: str | Path) -> EmulatorConfig:
        """Read a TOML file (see the module docstring)."""
        try:
            with open(path, "rb") as file:
                data = tomllib.load(file)
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> EmulatorConfig:
        """Validate a parsed TOML document; add a development user when none is given."""
        reject_unknown(
            data,
            {
                "qpus",
                "users",
                "admin_token",
                "time_scale",
                "seed",
                "qpu_paths",
                "executor_workers",
                "task_timeout_s",
                "max_request_bytes",
                "limits",
                "faults",
            },
            "",
        )
        limits = parse_limits(data.get("limits"), "limits")
        seed = opt_int_key(data, "seed", "")
        qpus = tuple(_qpu(item, f"qpus[{i}]") for i, item in enumerate(list_key(data, "qpus")))
        users = tuple(
            _user(item, f"users[{i}]", limits) for i, item in enumerate(list_key(data, "users"))
        )
        generated: str | None = None
        if not users:
            generated = new_token("dev")
            users = (
                UserSpec(
                    email=DEV_EMAIL, password=DEV_PASSWORD, tokens=(generated,), name="Developer"
                ),
            )
        timeout = data.get("task_timeout_s", 60.0)
        return cls(
            qpus=qpus or default_qpus(),
            users=users,
            admin_token=str_key(data, "admin_token", "") or new_token("admin"),
            time_scale=number_key(data, "time_scale", 1.0, minimum=0.0, where=""),
            seed=seed,
            qpu_paths=bool_key(data, "qpu_paths", True, ""),
            executor_workers=int_key(data, "executor_workers", 2, minimum=1, where=""),
            task_timeout_s=(
                None
                if timeout is None
                else number_key(data, "task_timeout_s", 60.0, minimum=0.001, where="")
            ),
            max_request_bytes=int_key(
                data, "max_request_bytes", MAX_REQUEST_BYTES, minimum=1024, where=""
            ),
            generated_dev_token=generated,
            limits=limits,
            faults=parse_plan(data.get("faults"), seed),
        )

    def evolve(self, **changes: Any) -> EmulatorConfig:
        """A copy with some fields replaced (validated again)."""
        return attrs.evolve(self, **changes)

    def qpu(self, qpu_id: str) -> QpuSpec | None:
        """The QPU with this id, or None."""
        return next((q for q in self.qpus if q.id == qpu_id), None)

    def limits_of(self, email: str) -> UserLimits:
        """The limits of the user with this email (configured users may have their own)."""
        for user in self.users:
            if user.email.lower() == email.lower() and user.limits is not None:
                return user.limits
        return self.limits

    @property
    def first_token(self) -> str:
        """A user token (the first configured one), for tests and the start-up banner."""
        for user in self.users:
            if user.tokens:
                return user.tokens[0]
        raise ConfigError("users: no user has a token")


# -- parsing -------------------------------------------------------------------------------


def _qpu(item: Any, where: str) -> QpuSpec:
    data = table(item, where)
    reject_unknown(
        data,
        {
            "id",
            "name",
            "qubits",
            "connectivity",
            "route",
            "max_shots",
            "gate_set",
            "execution_time_s",
            "workers",
            "active",
            "windows",
            "calibrations",
        },
        where,
    )
    qpu_id = str_key(data, "id", "", where)
    if not qpu_id or "/" in qpu_id or any(c.isspace() for c in qpu_id):
        raise ConfigError(f"{where}.id: expected a non-empty id without '/' or spaces")
    qubits = int_key(data, "qubits", 8, minimum=1, where=where)
    couplers = []
    for i, pair in enumerate(list_key(data, "connectivity", where)):
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(q, int) and not isinstance(q, bool) for q in pair)
            or not all(0 <= q < qubits for q in pair)
            or pair[0] == pair[1]
        ):
            raise ConfigError(
                f"{where}.connectivity[{i}]: expected a pair of distinct qubit indices "
                f"below {qubits}"
            )
        couplers.append((pair[0], pair[1]))
    gates = data.get("gate_set", list(DEFAULT_GATE_SET))
    if not isinstance(gates, list) or not all(isinstance(g, str) for g in gates):
        raise ConfigError(f"{where}.gate_set: expected a list of gate names")
    windows, relative = parse_windows(list_key(data, "windows", where), f"{where}.windows")
    route = None if data.get("route") is None else bool_key(data, "route", True, where)
    spec = QpuSpec(
        id=qpu_id,
        name=str_key(data, "name", qpu_id, where),
        qubits=qubits,
        connectivity=tuple(couplers),
        max_shots=int_key(data, "max_shots", 10_000, minimum=1, where=where),
        gate_set=tuple(gates),
        execution_time_s=number_key(data, "execution_time_s", 0.05, minimum=0.0, where=where),
        workers=int_key(data, "workers", 1, minimum=1, where=where),
        active=bool_key(data, "active", True, where),
        windows=windows,
        relative_windows=relative,
        route=route,
    )
    calibrations = parse_calibrations(
        list_key(data, "calibrations", where),
        qubits=qubits,
        couplers=spec.couplers,
        where=f"{where}.calibrations",
    )
    return attrs.evolve(spec, calibrations=calibrations)


def _user(item: Any, where: str, limits: UserLimits) -> UserSpec:
    data = table(item, where)
    reject_unknown(data, {"email", "password", "tokens", "admin", "name", "limits"}, where)
    email = str_key(data, "email", "", where)
    if "@" not in email:
        raise ConfigError(f"{where}.email: expected an email address")
    password = data.get("password")
    if password is not None and not isinstance(password, str):
        raise ConfigError(f"{where}.password: expected a string")
    tokens = data.get("tokens", [])
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
        raise ConfigError(f"{where}.tokens: expected a list of non-empty strings")
    if password is None and not tokens:
        raise ConfigError(f"{where}: a user needs a password or at least one token")
    own = data.get("limits")
    return UserSpec(
        email=email,
        password=password,
        tokens=tuple(tokens),
        admin=bool_key(data, "admin", False, where),
        name=str_key(data, "name", email.split("@")[0], where),
        limits=None if own is None else parse_limits(own, f"{where}.limits", limits),
    )
