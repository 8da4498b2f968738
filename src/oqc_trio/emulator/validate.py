"""Checks shared by every part of the emulator's configuration (TOML tables, command-line
fault rules, admin request bodies): each helper reads one key of a parsed table and raises
:class:`ConfigError` naming the key's full path (``qpus[1].calibrations[0].t1_us``) when the
value does not fit.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ConfigError",
    "bool_key",
    "date_value",
    "datetime_value",
    "int_key",
    "key_path",
    "list_key",
    "number_key",
    "opt_int_key",
    "opt_number_key",
    "probability_key",
    "reject_unknown",
    "str_key",
    "table",
]


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


def key_path(where: str, key: str) -> str:
    """``where.key``, or ``key`` at the top level."""
    return f"{where}.{key}" if where else key


def reject_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    """Refuse keys outside ``known`` (a typo must not be silently ignored)."""
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{key_path(where, unknown[0])}: unknown key "
            f"(expected one of {', '.join(sorted(known))})"
        )


def list_key(data: Mapping[str, Any], key: str, where: str = "") -> Sequence[Any]:
    """A list (of tables, usually); missing means empty."""
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{key_path(where, key)}: expected a list")
    return value


def table(item: Any, where: str) -> Mapping[str, Any]:
    """``item`` as a table (a mapping)."""
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected a table")
    return item


def str_key(data: Mapping[str, Any], key: str, default: str, where: str = "") -> str:
    """A string."""
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{key_path(where, key)}: expected a string")
    return value


def bool_key(data: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    """``true`` or ``false``."""
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key_path(where, key)}: expected true or false")
    return value


def int_key(
    data: Mapping[str, Any],
    key: str,
    default: int,
    *,
    minimum: int,
    where: str,
    maximum: int | None = None,
) -> int:
    """An integer within ``[minimum, maximum]``."""
    value = data.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f" and <= {maximum}" if maximum is not None else ""
        raise ConfigError(f"{key_path(where, key)}: expected an integer >= {minimum}{bound}")
    return value


def opt_int_key(
    data: Mapping[str, Any], key: str, where: str, *, minimum: int | None = None
) -> int | None:
    """An integer, or None when missing."""
    if data.get(key) is None:
        return None
    if minimum is None:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key_path(where, key)}: expected an integer")
        return value
    return int_key(data, key, minimum, minimum=minimum, where=where)


def number_key(
    data: Mapping[str, Any],
    key: str,
    default: float,
    *,
    minimum: float,
    where: str,
    maximum: float = math.inf,
) -> float:
    """A finite number within ``[minimum, maximum]`` (NaN and infinities refused)."""
    value = data.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not minimum <= value <= maximum
    ):
        upper = f" and <= {maximum:g}" if math.isfinite(maximum) else ""
        raise ConfigError(f"{key_path(where, key)}: expected a number >= {minimum:g}{upper}")
    return float(value)


def opt_number_key(
    data: Mapping[str, Any], key: str, *, minimum: float, where: str, exclusive: bool = False
) -> float | None:
    """A finite number, or None when missing; ``exclusive`` refuses ``minimum`` itself."""
    if data.get(key) is None:
        return None
    value = number_key(data, key, minimum, minimum=minimum, where=where)
    if exclusive and value == minimum:
        raise ConfigError(f"{key_path(where, key)}: expected a number > {minimum:g}")
    return value


def probability_key(data: Mapping[str, Any], key: str, default: float, where: str) -> float:
    """A probability in ``[0, 1]``."""
    return number_key(data, key, default, minimum=0.0, maximum=1.0, where=where)


def datetime_value(value: Any, where: str) -> dt.datetime:
    """A TOML date-time or an ISO 8601 string; naive values are UTC."""
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


def date_value(value: Any, where: str) -> dt.date:
    """A TOML date or a ``YYYY-MM-DD`` string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: expected a date (YYYY-MM-DD)")
