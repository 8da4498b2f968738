"""The two dialects of the QCaaS REST contract and how one is chosen."""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping

__all__ = ["V4_ENV_VARS", "Dialect", "dialect_from_env", "resolve_dialect"]

#: Environment variables that switch the official SDK (and us) to the v4 gateway dialect.
V4_ENV_VARS = ("OQC_QCAAS_V4", "OQC_ENTRA_ENABLED")
_TRUTHY = frozenset({"1", "true", "yes"})


class Dialect(str, enum.Enum):
    """``LEGACY`` (v3, the default: task endpoints live at each QPU's own URL) or ``V4``
    (one gateway: every path is relative to the base URL)."""

    LEGACY = "legacy"
    V4 = "v4"


def dialect_from_env(environ: Mapping[str, str] | None = None) -> Dialect:
    """V4 when ``OQC_QCAAS_V4`` or ``OQC_ENTRA_ENABLED`` is 1/true/yes (any case), else legacy."""
    env = os.environ if environ is None else environ
    for name in V4_ENV_VARS:
        if env.get(name, "").strip().lower() in _TRUTHY:
            return Dialect.V4
    return Dialect.LEGACY


def resolve_dialect(
    requested: Dialect | str | None, environ: Mapping[str, str] | None = None
) -> Dialect:
    """An explicit choice wins; ``None`` falls back to the environment."""
    if requested is None:
        return dialect_from_env(environ)
    try:
        return Dialect(requested.lower() if isinstance(requested, str) else requested)
    except ValueError:
        raise ValueError(f"unknown dialect {requested!r}: expected 'legacy' or 'v4'") from None
