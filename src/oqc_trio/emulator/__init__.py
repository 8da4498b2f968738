"""oqc-emulator: a local QCaaS server that speaks OQC's REST API (legacy and v4 dialects)
and runs OpenQASM programs for real on qiskit-aer.

Public names (imported lazily: importing this package starts nothing and loads neither
the web stack nor qiskit):

* :func:`open_emulator` -- serve on a loopback port inside the caller's nursery;
* :func:`create_app` -- the ASGI app, for a trio-based ASGI server;
* :class:`EmulatorConfig` -- QPU catalogue, users and timing (TOML).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .config import EmulatorConfig
    from .server import RunningEmulator, open_emulator

__all__ = ["EmulatorConfig", "RunningEmulator", "create_app", "open_emulator"]

_WHERE = {
    "EmulatorConfig": ".config",
    "RunningEmulator": ".server",
    "create_app": ".app",
    "open_emulator": ".server",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
