"""Emulator configuration: the QPU catalogue, users and timing, loaded from TOML.

A complete ``emulator.toml`` (every key optional)::

    time_scale = 1.0            # multiplies every QPU's simulated execution time (0 = none)
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
    max_shots = 10000
    gate_set = ["rz", "sx", "x", "ecr"]
    execution_time_s = 0.05           # simulated time on the QPU per task, x time_scale
    workers = 1                       # tasks run at once on this QPU
    active = true
    windows = [{ starting = "2030-01-01T09:00:00Z", ending = "2030-01-01T17:00:00Z" }]

    [[users]]
    email = "alice@example.com"
    password = "alice-password"
    tokens = ["alice-token"]
    admin = false

With no ``[[qpus]]`` the two default QPUs of :data:`DEFAULT_QPU_IDS` are served. With no
``[[users]]`` one development user is created with a random token (the command prints it).
"""

from __future__ import annotations

import datetime as dt
import secrets
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from .._wire import MAX_REQUEST_BYTES

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

#: Ids of the default catalogue: a small and a larger emulated QPU.
DEFAULT_QPU_IDS = ("qpu:uk:2:d865b5a184", "qpu:uk:3:9829a5504f")
#: Credentials of the development user created when the config names no user.
DEV_EMAIL = "dev@emulator.local"
DEV_PASSWORD = "emulator"

DEFAULT_GATE_SET = ("rz", "sx", "x", "ecr", "cx", "h", "measure", "reset", "barrier")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


def new_token(prefix: str = "emu") -> str:
    """A fresh random bearer token."""
    return f"{prefix}-{secrets.token_urlsafe(24)}"


@attrs.frozen
class Window:
    """A dedicated execution window of a QPU (timezone-aware UTC datetimes)."""

    starting: dt.datetime
    ending: dt.datetime


@attrs.frozen
class QpuSpec:
    """One emulated QPU of the catalogue."""

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


def default_qpus() -> tuple[QpuSpec, ...]:
    """The default catalogue: ``Lucy (emulated)``, 8 qubits, and ``Toshiko (emulated)``, 16."""
    return (
        QpuSpec(id=DEFAULT_QPU_IDS[0], name="Lucy (emulated)", qubits=8, max_shots=10_000),
        QpuSpec(id=DEFAULT_QPU_IDS[1], name="Toshiko (emulated)", qubits=16, max_shots=100_000),
    )


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

    def __attrs_post_init__(self) -> None:
        if not self.qpus:
            raise ConfigError("qpus: at least one QPU is needed")
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
        _reject_unknown(
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
            },
            "",
        )
        qpus = tuple(_qpu(item, f"qpus[{i}]") for i, item in enumerate(_list(data, "qpus")))
        users = tuple(_user(item, f"users[{i}]") for i, item in enumerate(_list(data, "users")))
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
            admin_token=_str(data, "admin_token", "") or new_token("admin"),
            time_scale=_number(data, "time_scale", 1.0, minimum=0.0, where=""),
            seed=_opt_int(data, "seed", ""),
            qpu_paths=_bool(data, "qpu_paths", True, ""),
            executor_workers=_int(data, "executor_workers", 2, minimum=1, where=""),
            task_timeout_s=(
                None
                if timeout is None
                else _number(data, "task_timeout_s", 60.0, minimum=0.001, where="")
            ),
            max_request_bytes=_int(
                data, "max_request_bytes", MAX_REQUEST_BYTES, minimum=1024, where=""
            ),
            generated_dev_token=generated,
        )

    def evolve(self, **changes: Any) -> EmulatorConfig:
        """A copy with some fields replaced (validated again)."""
        return attrs.evolve(self, **changes)

    def qpu(self, qpu_id: str) -> QpuSpec | None:
        """The QPU with this id, or None."""
        return next((q for q in self.qpus if q.id == qpu_id), None)

    @property
    def first_token(self) -> str:
        """A user token (the first configured one), for tests and the start-up banner."""
        for user in self.users:
            if user.tokens:
                return user.tokens[0]
        raise ConfigError("users: no user has a token")


# -- validation helpers ----------------------------------------------------------------------


def _key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _reject_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{_key(where, unknown[0])}: unknown key (expected one of {', '.join(sorted(known))})"
        )


def _list(data: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a list of tables")
    return value


def _table(item: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected a table")
    return item


def _str(data: Mapping[str, Any], key: str, default: str, where: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{_key(where, key)}: expected a string")
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{_key(where, key)}: expected true or false")
    return value


def _int(data: Mapping[str, Any], key: str, default: int, *, minimum: int, where: str) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{_key(where, key)}: expected an integer >= {minimum}")
    return value


def _opt_int(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{_key(where, key)}: expected an integer")
    return value


def _number(
    data: Mapping[str, Any], key: str, default: float, *, minimum: float, where: str
) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= minimum:
        raise ConfigError(f"{_key(where, key)}: expected a number >= {minimum}")
    return float(value)


def _datetime(value: Any, where: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{where}: expected an ISO 8601 date and time") from None
    else:
        raise ConfigError(f"{where}: expected a date and time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _qpu(item: Any, where: str) -> QpuSpec:
    data = _table(item, where)
    _reject_unknown(
        data,
        {
            "id",
            "name",
            "qubits",
            "connectivity",
            "max_shots",
            "gate_set",
            "execution_time_s",
            "workers",
            "active",
            "windows",
        },
        where,
    )
    qpu_id = _str(data, "id", "", where)
    if not qpu_id or "/" in qpu_id or any(c.isspace() for c in qpu_id):
        raise ConfigError(f"{where}.id: expected a non-empty id without '/' or spaces")
    qubits = _int(data, "qubits", 8, minimum=1, where=where)
    couplers = []
    for i, pair in enumerate(data.get("connectivity", [])):
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
    windows = []
    for i, window in enumerate(data.get("windows", [])):
        table = _table(window, f"{where}.windows[{i}]")
        start = _datetime(table.get("starting"), f"{where}.windows[{i}].starting")
        end = _datetime(table.get("ending"), f"{where}.windows[{i}].ending")
        if end <= start:
            raise ConfigError(f"{where}.windows[{i}]: ending must be after starting")
        windows.append(Window(start, end))
    return QpuSpec(
        id=qpu_id,
        name=_str(data, "name", qpu_id, where),
        qubits=qubits,
        connectivity=tuple(couplers),
        max_shots=_int(data, "max_shots", 10_000, minimum=1, where=where),
        gate_set=tuple(gates),
        execution_time_s=_number(data, "execution_time_s", 0.05, minimum=0.0, where=where),
        workers=_int(data, "workers", 1, minimum=1, where=where),
        active=_bool(data, "active", True, where),
        windows=tuple(sorted(windows, key=lambda w: w.starting)),
    )


def _user(item: Any, where: str) -> UserSpec:
    data = _table(item, where)
    _reject_unknown(data, {"email", "password", "tokens", "admin", "name"}, where)
    email = _str(data, "email", "", where)
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
    return UserSpec(
        email=email,
        password=password,
        tokens=tuple(tokens),
        admin=_bool(data, "admin", False, where),
        name=_str(data, "name", email.split("@")[0], where),
    )
