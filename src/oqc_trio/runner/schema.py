"""The batch file: attrs classes for every table, structured from TOML with cattrs.

Unknown keys and values of the wrong type are errors. Every error is a :class:`BatchError`
holding :class:`Problem` items that name the file, the line of the offending key (found by
:func:`key_lines`, a small scanner of the TOML text) and the field path, e.g.::

    sweep.toml:14: jobs[1].params.theta.num: expected an integer, got 'ten'

The reference of every key is ``docs/batch-toml.md``; defaults live here.
"""

from __future__ import annotations

import codecs
import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, NewType, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

__all__ = [
    "BatchError",
    "BatchFile",
    "ConfigOptions",
    "Defaults",
    "EmulatorSection",
    "JobEntry",
    "Limits",
    "Output",
    "Problem",
    "Seconds",
    "ServerSection",
    "Sweep",
    "key_lines",
    "load_batch_file",
    "parse_batch_text",
]

#: A duration in seconds; the file may say ``90``, ``"90s"``, ``"15m"``, ``"2h"`` or ``"1h30m"``.
Seconds = NewType("Seconds", float)

ResultsFormat = Literal["binary_count", "binary", "raw"]
OutputFormat = Literal["snapshot", "csv", "hdf5"]
Path_ = tuple[str | int, ...]

#: Server-reported task error codes retried by default (transient server-side failures).
DEFAULT_RETRY_CODES = (500, 502, 503, 504)
DEFAULT_SHOTS = 1000


@attrs.frozen
class Problem:
    """One error in a batch file: where (file, line, field path) and what."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class BatchError(Exception):
    """The batch file is invalid (exit status 2). ``problems`` lists every error found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# -- the tables --------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class EmulatorSection:
    """``[server.emulator]``: options of the embedded emulator (used when ``url`` is absent or
    ``"emulator"``)."""

    executor: Literal["aer", "instant"] = "aer"
    config: str | None = None


@attrs.define(kw_only=True)
class ServerSection:
    """``[server]``: where to run and how to authenticate. Secrets are never in the file:
    ``token_env`` (or ``email_env`` + ``password_env``) name environment variables."""

    url: str = "emulator"
    dialect: Literal["legacy", "v4"] | None = None
    token_env: str | None = None
    email_env: str | None = None
    password_env: str | None = None
    allow_insecure_http: bool = False
    emulator: EmulatorSection = attrs.Factory(EmulatorSection)

    @property
    def embedded(self) -> bool:
        """True when the runner starts its own emulator."""
        return self.url in ("", "emulator")


@attrs.define(kw_only=True)
class ConfigOptions:
    """Compiler-config options shared by ``[defaults]`` and ``[[jobs]]`` (None: inherit)."""

    results_format: ResultsFormat | None = None
    repetition_period: float | None = None
    passive_reset_time: float | None = None
    noise: bool | None = None
    bond_dimension: int | None = None
    tag: str | None = None


@attrs.define(kw_only=True)
class Defaults(ConfigOptions):
    """``[defaults]``: values every job inherits unless it sets its own."""

    qpu: list[str] | None = None
    shots: list[int] | None = None


@attrs.frozen(kw_only=True)
class Sweep:
    """One swept parameter: explicit ``values``, or a range with ``num`` points (both ends
    included) or a ``step`` (``stop`` included when reached)."""

    values: tuple[Any, ...] = ()
    start: float | None = None
    stop: float | None = None
    num: int | None = None
    step: float | None = None

    def points(self) -> list[Any]:
        """The parameter's values, in order."""
        if self.start is None or self.stop is None:
            return list(self.values)
        if self.num is not None:
            if self.num == 1:
                return [_tidy(self.start)]
            width = (self.stop - self.start) / (self.num - 1)
            return [_tidy(self.start + i * width) for i in range(self.num)]
        assert self.step is not None
        return [_tidy(self.start + i * self.step) for i in range(self.size())]

    def size(self) -> int:
        """How many values :meth:`points` gives, without making them."""
        if self.start is None or self.stop is None:
            return len(self.values)
        if self.num is not None:
            return self.num
        assert self.step is not None
        return max(int((self.stop - self.start) / self.step + 1e-9) + 1, 0)


def _tidy(value: float) -> float:
    # 0.1 * 3 is 0.30000000000000004: round away the float noise so programs read cleanly.
    return round(value, 12) + 0.0


@attrs.define(kw_only=True)
class JobEntry(ConfigOptions):
    """``[[jobs]]``: one program source (``program``, ``program_file`` or ``programs``
    globs), swept over ``qpu`` x ``shots`` x every ``params`` entry."""

    name: str | None = None
    program: str | None = None
    program_file: str | None = None
    programs: list[str] | None = None
    qpu: list[str] | None = None
    shots: list[int] | None = None
    params: dict[str, Sweep] = attrs.Factory(dict)


@attrs.define(kw_only=True)
class Limits:
    """``[limits]``: concurrency, pacing, deadline, interrupts, retries and a shot budget."""

    max_in_flight: int = 0
    max_concurrency: int = 16
    max_requests_per_s: float | None = None
    deadline: Seconds | None = None
    on_interrupt: Literal["detach", "cancel"] = "detach"
    on_deadline: Literal["detach", "cancel"] = "detach"
    retry_codes: list[int] = attrs.Factory(lambda: list(DEFAULT_RETRY_CODES))
    max_retries: int = 2
    max_total_shots: int | None = None
    poll_max_interval: Seconds = Seconds(10.0)


@attrs.define(kw_only=True)
class Output:
    """``[output]``: the directory (relative to the working directory) and the formats."""

    dir: str | None = None
    formats: list[OutputFormat] = attrs.Factory(lambda: ["snapshot", "csv", "hdf5"])


@attrs.define(kw_only=True)
class BatchFile:
    """A whole batch file, structured."""

    server: ServerSection = attrs.Factory(ServerSection)
    defaults: Defaults = attrs.Factory(Defaults)
    jobs: list[JobEntry] = attrs.Factory(list)
    limits: Limits = attrs.Factory(Limits)
    output: Output = attrs.Factory(Output)


# -- strict structuring ------------------------------------------------------------------------


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _WrongType(TypeError):
    pass


def _strict_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _WrongType(f"expected an integer, got {_describe(value)}")
    return value


def _strict_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _WrongType(f"expected a number, got {_describe(value)}")
    return float(value)


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise _WrongType(f"expected a string, got {_describe(value)}")
    return value


def _strict_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise _WrongType(f"expected true or false, got {_describe(value)}")
    return value


def _scalar_or_list(item: Any, noun: str) -> Any:
    def structure(value: Any, _: Any) -> list[Any]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise _WrongType(f"expected {noun} or a non-empty array of them, got an empty array")
        out = []
        for index, element in enumerate(items):
            try:
                out.append(item(element, None))
            except _WrongType as exc:
                where = f"item {index}: " if isinstance(value, list) else ""
                raise _WrongType(f"{where}{exc}") from None
        return out

    return structure


def _seconds(value: Any, _: Any) -> Seconds:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(
            r"\s*(?:(\d+(?:\.\d*)?)d)?\s*(?:(\d+(?:\.\d*)?)h)?\s*(?:(\d+(?:\.\d*)?)m)?"
            r"\s*(?:(\d+(?:\.\d*)?)s?)?\s*",
            value,
        )
        if not value.strip() or match is None:
            raise _WrongType(f"expected seconds or a duration like '90m' or '2h', got {value!r}")
        d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = d * 86400 + h * 3600 + m * 60 + s
    else:
        raise _WrongType(f"expected seconds or a duration like '90m', got {_describe(value)}")
    if not seconds > 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    return Seconds(seconds)


_SWEEP_RANGE_KEYS = ("start", "stop", "num", "step")


def _field(check: Any, table: dict[str, Any], key: str) -> Any:
    try:
        return check(table[key], None)
    except _WrongType as exc:
        raise _WrongType(f"{key}: {exc}") from None


def _finite(value: float, what: str) -> float:
    # TOML has nan and inf; no server takes them, and a range of them has no points.
    if not math.isfinite(value):
        raise ValueError(f"{what}: expected a finite number, got {value}")
    return value


def _sweep_values(value: list[Any]) -> Sweep:
    if not value:
        raise ValueError("expected at least one value, got an empty array")
    # Equal numbers (1 and 1.0) or values written alike ("1" and 1) would make two jobs of one
    # point, the second with the first one's key.
    seen: dict[tuple[str, Any], int] = {}
    for index, element in enumerate(value):
        if not isinstance(element, int | float | str) or isinstance(element, bool):
            raise _WrongType(
                f"item {index}: expected a number or a string, got {_describe(element)}"
            )
        marks: list[tuple[str, Any]] = [
            ("text", repr(element) if isinstance(element, float) else str(element))
        ]
        if not isinstance(element, str):
            if isinstance(element, float):
                _finite(element, f"item {index}")
            marks.append(("number", element))
        for mark in marks:
            if mark in seen:
                raise ValueError(
                    f"item {index}: {_describe(element)} repeats item {seen[mark]}: each value "
                    "may appear once"
                )
        for mark in marks:
            seen[mark] = index
    return Sweep(values=tuple(value))


def _sweep(value: Any, _: Any) -> Sweep:
    if isinstance(value, list):
        return _sweep_values(value)
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(_SWEEP_RANGE_KEYS))
        if unknown:
            raise _WrongType(
                f"unknown key {unknown[0]!r} in range (expected start, stop and num or step)"
            )
        for key in ("start", "stop"):
            if key not in value:
                raise ValueError(f"a range needs '{key}' (and 'num' or 'step')")
            _finite(_field(_strict_float, value, key), key)
        if ("num" in value) == ("step" in value):
            raise ValueError("a range needs exactly one of 'num' or 'step'")
        start, stop = float(value["start"]), float(value["stop"])
        if not math.isfinite(stop - start):
            raise ValueError(f"the range from {start} to {stop} is too wide")
        if "num" in value:
            num = _field(_strict_int, value, "num")
            if num < 1:
                raise ValueError(f"num must be >= 1, got {num}")
            return Sweep(start=start, stop=stop, num=num)
        step = _finite(_field(_strict_float, value, "step"), "step")
        if step == 0 or (stop - start) / step < 0:
            raise ValueError(f"step {step} does not go from {start} towards {stop}")
        if not math.isfinite((stop - start) / step):
            raise ValueError(f"step {step} gives too many values from {start} to {stop}")
        return Sweep(start=start, stop=stop, step=step)
    raise _WrongType(
        f"expected an array of values or a range table {{start, stop, num}}, got {_describe(value)}"
    )


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook(Seconds, _seconds)
    converter.register_structure_hook(Sweep, _sweep)
    # A scalar where an array is expected is an array of one (``qpu = "x"``, ``shots = 100``).
    converter.register_structure_hook_func(
        lambda t: t == list[str], _scalar_or_list(_strict_str, "a string")
    )
    converter.register_structure_hook_func(
        lambda t: t == list[int], _scalar_or_list(_strict_int, "an integer")
    )
    return converter


_converter = _make_converter()


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        known = [a.name for a in attrs.fields(exc.cl)]
        return f"unknown key (expected one of: {', '.join(known)})"
    if isinstance(exc, KeyError):
        return "this key is required"
    if get_origin(type_) is Literal or (
        type_ is not None and any(get_origin(t) is Literal for t in get_args(type_))
    ):
        options = [a for t in (type_, *get_args(type_)) for a in _literal_args(t)]
        return f"expected one of {', '.join(repr(o) for o in options)}"
    if isinstance(exc, _WrongType | ValueError):
        return str(exc)
    if type_ is not None and attrs.has(type_):
        return "expected a table"
    if get_origin(type_) is dict:
        return "expected a table"
    if get_origin(type_) is list:
        return "expected an array"
    return str(exc) or type(exc).__name__


def _literal_args(type_: Any) -> tuple[Any, ...]:
    return get_args(type_) if get_origin(type_) is Literal else ()


def _walk(exc: BaseException, path: Path_, type_: Any) -> Iterator[tuple[Path_, str]]:
    """Every leaf error of a cattrs exception tree with its field path."""
    if isinstance(exc, IterableValidationError | ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            step: str | int = note.index if isinstance(note, IterableValidationNote) else note.name
            yield from _walk(inner, (*path, step), note.type)
        for inner in without:
            yield from _walk(inner, path, None)
    elif isinstance(exc, ForbiddenExtraKeysError):
        for name in sorted(exc.extra_fields):
            yield (*path, name), _format(exc, type_)
    else:
        yield path, _format(exc, type_)


def format_path(path: Path_) -> str:
    """``("jobs", 0, "params", "theta")`` -> ``jobs[0].params.theta``."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{step}" if text else step
    return text


# -- line numbers --------------------------------------------------------------------------------

_BOM = "\ufeff"
_BARE_OR_QUOTED = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_KEY_RE = re.compile(rf"^\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*=")
_HEADER_RE = re.compile(rf"^\s*(\[\[?)\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*\]")


def _split_key(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(_BARE_OR_QUOTED, key)]


def key_lines(text: str) -> dict[Path_, int]:
    """Map each table and key path of a TOML document to its 1-based line number.

    Handles ``[table]``, ``[[array.of.tables]]`` (indexed in order), dotted keys and
    multi-line strings. Keys inside inline tables are attributed to the line of their parent.
    """
    lines: dict[Path_, int] = {}
    counters: dict[Path_, int] = {}
    table: Path_ = ()
    in_string: str | None = None
    for number, line in enumerate(text.removeprefix(_BOM).splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        header = _HEADER_RE.match(line)
        if header:
            names = tuple(_split_key(header.group(2)))
            if header.group(1) == "[[":
                base = (*_resolve(names[:-1], counters), names[-1])
                index = counters.get(base, -1) + 1
                counters[base] = index
                table = (*base, index)
            else:
                table = _resolve(names, counters)
            # The table and every table it implies (``[[job]]`` defines ``job``, ``[a.b]``
            # defines ``a``), so that an error about any of them names a line.
            for depth in range(1, len(table) + 1):
                lines.setdefault(table[:depth], number)
        else:
            key = _KEY_RE.match(line)
            if key:
                path = (*table, *_split_key(key.group(1)))
                for depth in range(len(table) + 1, len(path) + 1):
                    lines.setdefault(path[:depth], number)
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                in_string = quote
                break
    return lines


def _resolve(names: tuple[str, ...], counters: dict[Path_, int]) -> Path_:
    """Insert the current index after every array-of-tables prefix of a header path."""
    path: Path_ = ()
    for name in names:
        path = (*path, name)
        if path in counters:
            path = (*path, counters[path])
    return path


def line_of(lines: Mapping[Path_, int], path: Path_) -> int | None:
    """The line of ``path``, or of its nearest ancestor that has one."""
    for depth in range(len(path), 0, -1):
        if path[:depth] in lines:
            return lines[path[:depth]]
    return None


# -- entry points --------------------------------------------------------------------------------


def parse_batch_text(text: str, source: str) -> BatchFile:
    """Structure a batch file's text; raise :class:`BatchError` naming every problem."""
    text = text.removeprefix(_BOM)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(found.group(1)) if found else None
        message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
        raise BatchError([Problem(source, line, "", f"invalid TOML: {message}")]) from None
    problems: list[Problem] = []
    if "jobs" in data and not isinstance(data["jobs"], list):
        # ``[jobs]`` (one table) instead of ``[[jobs]]``: cattrs would iterate over its keys
        # and report each one as "expected a table".
        problems.append(
            Problem(
                source,
                line_of(key_lines(text), ("jobs",)),
                "jobs",
                "must be an array of tables, written [[jobs]] (one per entry), got "
                + _describe(data["jobs"]),
            )
        )
        data = {**data, "jobs": []}
    try:
        batch = _converter.structure(data, BatchFile)
    except (ClassValidationError, IterableValidationError) as exc:
        lines = key_lines(text)
        problems += [
            Problem(source, line_of(lines, path), format_path(path), message)
            for path, message in _walk(exc, (), BatchFile)
        ]
    if problems:
        raise BatchError(problems)
    return batch


def load_batch_file(path: str | Path) -> tuple[BatchFile, str]:
    """Read and structure a batch file; returns it with its text (for line lookups)."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise BatchError([Problem(source, None, "", "no such file")]) from None
    except OSError as exc:
        raise BatchError([Problem(source, None, "", f"cannot read: {exc}")]) from None
    # Editors on Windows start UTF-8 files with a byte order mark; TOML itself does not allow
    # one (tomllib calls it an invalid statement).
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise BatchError(
            [
                Problem(
                    source,
                    line,
                    "",
                    f"not UTF-8: byte 0x{data[exc.start]:02x} at column {column} "
                    "(save the batch file as UTF-8)",
                )
            ]
        ) from None
    return parse_batch_text(text, source), text
