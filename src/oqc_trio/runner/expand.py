"""Expand a batch file into logical jobs: programs x QPUs x shots x every swept parameter.

Each ``[[jobs]]`` entry gives the cartesian product of its program files (inline program,
one file, or globs), its QPUs, its shot counts and its ``params`` (declaration order), with
``{name}`` placeholders in the program replaced by the parameter's value. Every logical job
gets a stable key (the entry name, then ``dimension=value`` for each dimension with more than
one value), and the whole expansion a content hash: the same batch always resumes the same
journal.

The semantic checks the schema cannot express (one program source, files exist, globs match,
placeholders and params agree, positive numbers, the shot budget) happen here and raise
:class:`~oqc_trio.runner.schema.BatchError` naming the file, line and field.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import itertools
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..config import ExperimentalConfig, config_to_snapshot
from .schema import (
    DEFAULT_SHOTS,
    BatchError,
    BatchFile,
    EmulatorSection,
    JobEntry,
    Path_,
    Problem,
    key_lines,
    line_of,
    load_batch_file,
    parse_batch_text,
)

__all__ = [
    "ConfigRecord",
    "ExpandedBatch",
    "LogicalJob",
    "ProgramTemplate",
    "expand",
    "load_and_expand",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.:+-]+$")
_PARAM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_COMMENTS_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
MAX_JOBS = 1_000_000


@attrs.frozen
class ConfigRecord:
    """A distinct compiler config of the batch, as a snapshot stores it."""

    json: str
    type: str | None


@attrs.frozen(kw_only=True)
class ProgramTemplate:
    """One program of a ``[[jobs]]`` entry as written, before the sweep fills it in.

    ``pieces`` is the program split at its placeholders (literal text at even positions,
    parameter names at odd ones) and ``values`` the values of the entry's parameters (the
    very lists the sweep runs through, not copies). The jobs of the entry whose ``source``
    is this program's are this template filled with one point of the sweep each.
    """

    pieces: list[str] = attrs.field(eq=False)
    values: dict[str, list[Any]] = attrs.field(eq=False, repr=False)


@attrs.frozen(kw_only=True)
class LogicalJob:
    """One program on one QPU with one shot count and one point of the sweep.

    ``index`` is its position in the batch, ``key`` its stable name, ``entry`` the name of the
    ``[[jobs]]`` entry it came from, ``source`` the program file (``"inline"`` for an inline
    program), ``config`` an index into :attr:`ExpandedBatch.configs` and ``sweep`` the values
    of the entry's parameters.
    """

    index: int
    key: str
    entry: str
    program: str
    source: str
    qpu: str
    shots: int
    config: int
    tag: str | None
    sweep: dict[str, Any]


@attrs.frozen(kw_only=True)
class ExpandedBatch:
    """A batch file ready to run: its logical jobs, configs and content hash."""

    path: Path
    spec: BatchFile
    jobs: list[LogicalJob]
    configs: list[ConfigRecord]
    config_objects: list[Any] = attrs.field(eq=False, repr=False)
    param_names: list[str]
    hash: str
    text: str = attrs.field(default="", eq=False, repr=False)
    #: ``(entry, source) -> template`` of every program (see :class:`ProgramTemplate`).
    templates: dict[tuple[str, str], ProgramTemplate] = attrs.field(
        factory=dict, eq=False, repr=False
    )
    #: The name of every ``[[jobs]]`` entry, in file order (one that expands to no job too).
    entry_names: list[str] = attrs.field(factory=list, eq=False, repr=False)

    def problem(self, path: Path_, message: str) -> Problem:
        """A :class:`Problem` located at ``path`` of this batch file."""
        from .schema import format_path

        return Problem(
            str(self.path), line_of(key_lines(self.text), path), format_path(path), message
        )

    def entry_path(self, entry: str) -> Path_:
        """The field path of the ``[[jobs]]`` entry called ``entry``."""
        return ("jobs", (self.entry_names or self.entries).index(entry))

    @property
    def total_shots(self) -> int:
        """Shots over all logical jobs."""
        return sum(job.shots for job in self.jobs)

    @property
    def entries(self) -> list[str]:
        """Entry names in file order."""
        return list(dict.fromkeys(job.entry for job in self.jobs))


class _Checker:
    """Collects problems, each located by its field path."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = key_lines(text)
        self.problems: list[Problem] = []

    def add(self, path: Path_, message: str) -> None:
        """Record a problem at ``path``."""
        from .schema import format_path

        self.problems.append(
            Problem(self.source, line_of(self.lines, path), format_path(path), message)
        )

    def positive(self, path: Path_, value: float | None, *, zero_ok: bool = False) -> None:
        """Record a problem unless ``value`` is None or positive (or zero, if allowed)."""
        if value is None:
            return
        if value < 0 or (value == 0 and not zero_ok):
            self.add(path, f"expected a number {'>= 0' if zero_ok else '> 0'}, got {value}")

    def raise_if_any(self) -> None:
        """Raise :class:`BatchError` with every problem recorded so far."""
        if self.problems:
            raise BatchError(self.problems)


def _check_limits(spec: BatchFile, check: _Checker) -> None:
    limits = spec.limits
    check.positive(("limits", "max_in_flight"), limits.max_in_flight, zero_ok=True)
    check.positive(("limits", "max_concurrency"), limits.max_concurrency)
    check.positive(("limits", "max_requests_per_s"), limits.max_requests_per_s)
    check.positive(("limits", "max_retries"), limits.max_retries, zero_ok=True)
    check.positive(("limits", "max_total_shots"), limits.max_total_shots)
    if len(set(spec.output.formats)) != len(spec.output.formats):
        check.add(("output", "formats"), "a format is listed twice")
    server = spec.server
    if server.email_env is not None and server.password_env is None:
        check.add(("server", "email_env"), "email_env needs password_env too")
    if server.password_env is not None and server.email_env is None:
        check.add(("server", "password_env"), "password_env needs email_env too")
    if server.token_env is not None and server.email_env is not None:
        check.add(("server", "token_env"), "give token_env or email_env/password_env, not both")
    if not server.embedded and not re.match(r"^https?://", server.url):
        check.add(("server", "url"), f"expected an http(s) URL or 'emulator', got {server.url!r}")
    if not server.embedded and (
        ("server", "emulator") in check.lines or server.emulator != EmulatorSection()
    ):
        # The runner starts no emulator for a remote server: these settings would do nothing.
        check.add(
            ("server", "emulator"),
            '[server.emulator] applies only to the embedded emulator (url = "emulator"), '
            f"not to url = {server.url!r}: remove it, or remove url",
        )


def _looks_like_qasm(program: str) -> bool:
    return _COMMENTS_RE.sub("", program).lstrip().startswith("OPENQASM")


def _programs(entry: JobEntry, where: Path_, base: Path, check: _Checker) -> list[tuple[str, str]]:
    """``(source, text)`` of each program of an entry (source ``"inline"`` for inline)."""
    given = [n for n in ("program", "program_file", "programs") if getattr(entry, n) is not None]
    if len(given) != 1:
        message = "needs one of program, program_file or programs"
        check.add(
            where if not given else (*where, given[1]), message + ", not several" * bool(given)
        )
        return []
    found: list[tuple[str, str]] = []
    files: list[str] = []
    if entry.program is not None:
        found.append(("inline", entry.program))
    elif entry.program_file is not None:
        files = [entry.program_file]
    else:
        for index, pattern in enumerate(entry.programs or []):
            matches = sorted(
                name
                for name in globlib.glob(pattern, root_dir=base, recursive=True)
                if (base / name).is_file()
            )
            if not matches:
                check.add((*where, "programs", index), f"glob {pattern!r} matches no file")
            files.extend(m for m in matches if m not in files)
    if files:
        field = "program_file" if entry.program_file is not None else "programs"
        for name in files:
            try:
                found.append((Path(name).as_posix(), (base / name).read_text(encoding="utf-8")))
            except FileNotFoundError:
                check.add((*where, field), f"no such file: {base / name}")
            except (OSError, UnicodeDecodeError) as exc:
                check.add((*where, field), f"cannot read {base / name}: {exc}")
    for source, text in found:
        checked = source == "inline" or source.lower().endswith((".qasm", ".qasm2", ".qasm3"))
        if checked and not _looks_like_qasm(text):
            check.add(
                _program_path(where, entry, source),
                f"{_prefix(source)}not an OpenQASM program (it must begin with 'OPENQASM 2.0;' "
                "or 'OPENQASM 3;')",
            )
    return found


def _prefix(source: str) -> str:
    return "" if source == "inline" else f"{source}: "


def _program_path(where: Path_, entry: JobEntry, source: str) -> Path_:
    if source == "inline":
        return (*where, "program")
    return (*where, "program_file" if entry.program_file is not None else "programs")


def _config_for(entry: JobEntry, spec: BatchFile, shots: int) -> Any:
    from compiler_config.config import CompilerConfig, QuantumResultsFormat

    def pick(name: str) -> Any:
        value = getattr(entry, name)
        return getattr(spec.defaults, name) if value is None else value

    results = QuantumResultsFormat()
    fmt = pick("results_format") or "binary_count"
    results = {"binary_count": results.binary_count, "binary": results.binary, "raw": results.raw}[
        fmt
    ]()
    kwargs: dict[str, Any] = {"repeats": shots, "results_format": results}
    for name in ("repetition_period", "passive_reset_time"):
        if pick(name) is not None:
            kwargs[name] = pick(name)
    noise, bond = pick("noise"), pick("bond_dimension")
    if noise or bond is not None:
        return ExperimentalConfig(noise=bool(noise), bond_dimension=bond, **kwargs)
    return CompilerConfig(**kwargs)


def _format_value(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _entries(spec: BatchFile, check: _Checker) -> list[str]:
    names: list[str] = []
    for index, entry in enumerate(spec.jobs):
        name = entry.name if entry.name is not None else f"job{index + 1}"
        if not _NAME_RE.match(name):
            check.add(
                ("jobs", index, "name"),
                f"expected ASCII letters (A-Z, a-z), digits or _.:+- only, got {name!r}",
            )
        elif name in names:
            check.add(("jobs", index, "name"), _name_twice(spec, names.index(name), index, name))
        names.append(name)
    return names


def _name_twice(spec: BatchFile, first: int, second: int, name: str) -> str:
    """Why entry ``second`` may not be called ``name``, which entry ``first`` has."""
    message = f"the name {name!r} is used twice"
    default = "unnamed entries are named job<N> after their position N"
    if spec.jobs[second].name is None:
        return (
            f"{message}: this entry has no name, so it is named {name!r} by default ({default}), "
            f"and jobs[{first}] is given that name: give this entry a name"
        )
    if spec.jobs[first].name is None:
        return (
            f"{message}: jobs[{first}] has no name, so it is named {name!r} by default "
            f"({default}): choose another name, or name jobs[{first}]"
        )
    return message


def expand(spec: BatchFile, text: str, path: str | Path) -> ExpandedBatch:
    """Check ``spec`` (parsed from ``text``, read from ``path``) and expand it."""
    source = str(path)
    base = Path(path).parent
    check = _Checker(source, text)
    _check_limits(spec, check)
    if not spec.jobs:
        check.add(("jobs",), "no [[jobs]] entry: nothing to run")
    names = _entries(spec, check)
    for field in ("repetition_period", "passive_reset_time", "bond_dimension"):
        check.positive(("defaults", field), getattr(spec.defaults, field))
    plans: list[tuple[JobEntry, str, list[tuple[str, str]], list[str], list[int], dict]] = []
    for index, entry in enumerate(spec.jobs):
        where: Path_ = ("jobs", index)
        programs = _programs(entry, where, base, check)
        qpus = entry.qpu or spec.defaults.qpu
        if not qpus:
            check.add((*where, "qpu"), "no QPU: set qpu here or in [defaults]")
        shots = entry.shots or spec.defaults.shots or [DEFAULT_SHOTS]
        shot_field = (*where, "shots") if entry.shots else ("defaults", "shots")
        for count in shots:
            check.positive(shot_field, count)
        for field in ("repetition_period", "passive_reset_time", "bond_dimension"):
            check.positive((*where, field), getattr(entry, field))
        params: dict[str, list[Any]] = {}
        for name, sweep in entry.params.items():
            if not _PARAM_RE.match(name):
                check.add(
                    (*where, "params", name),
                    "a parameter name must be an identifier (ASCII letters, digits and _, "
                    "not starting with a digit)",
                )
            used = any("{" + name + "}" in text for _, text in programs)
            if programs and not used:
                check.add((*where, "params", name), f"no program uses {{{name}}}")
            size = sweep.size()
            if size > MAX_JOBS:
                # Refused before the values are made: 1e-12 steps would fill the memory.
                check.add(
                    (*where, "params", name),
                    f"{size:,} values; a batch may expand to at most {MAX_JOBS:,} jobs",
                )
                params[name] = []
                continue
            params[name] = sweep.points()
            if sweep.values == () and len(set(params[name])) < size:
                # Two equal points would be two jobs with one key (e.g. start = stop).
                check.add(
                    (*where, "params", name),
                    "the range gives a value more than once (values are rounded to 12 "
                    "decimals): widen it or take fewer points",
                )
        for src, program in programs:
            for unknown in sorted(set(_PLACEHOLDER_RE.findall(program)) - set(params)):
                check.add(
                    _program_path(where, entry, src),
                    f"{_prefix(src)}placeholder {{{unknown}}} has no value in params",
                )
        plans.append((entry, names[index], programs, qpus or [], shots, params))
    count = sum(
        len(programs) * len(qpus) * len(shots) * _product_size(params)
        for _, _, programs, qpus, shots, params in plans
    )
    if count > MAX_JOBS:
        check.add(("jobs",), f"expands to {count:,} jobs; the limit is {MAX_JOBS:,}")
    check.raise_if_any()

    jobs: list[LogicalJob] = []
    configs: list[ConfigRecord] = []
    objects: list[Any] = []
    config_ids: dict[tuple[Any, ...], int] = {}
    param_names: list[str] = []
    templates: dict[tuple[str, str], ProgramTemplate] = {}
    for entry, name, programs, qpus, shots, params in plans:
        param_names.extend(p for p in params if p not in param_names)
        tag = entry.tag if entry.tag is not None else spec.defaults.tag
        # The parts of each key that do not depend on the sweep point, computed once.
        heads = [
            (src, program, _template(program), [name] + [f"program={src}"] * (len(programs) > 1))
            for src, program in programs
        ]
        for src, _, template, _ in heads:
            templates[(name, src)] = ProgramTemplate(pieces=template, values=params)
        swept = [k for k in params if len(params[k]) > 1]
        # (sweep values, their text, the key's sweep part): shared by the entry's jobs.
        points = [
            (point, shown, "".join(f"/{k}={shown[k]}" for k in swept))
            for point, shown in _points(params)
        ]
        for (src, program, template, head), qpu, shot in itertools.product(heads, qpus, shots):
            if not points:
                continue
            config = config_ids.get((id(entry), shot))
            if config is None:
                config = config_ids[(id(entry), shot)] = len(configs)
                obj = _config_for(entry, spec, shot)
                config_json, config_type = config_to_snapshot(obj)
                configs.append(ConfigRecord(config_json or "", config_type))
                objects.append(obj)
            prefix = [*head]
            if len(qpus) > 1:
                prefix.append(f"qpu={qpu}")
            if len(shots) > 1:
                prefix.append(f"shots={shot}")
            fixed = "/".join(prefix)
            fillable = len(template) > 1 and bool(params)
            for point, shown, swept_key in points:
                jobs.append(
                    LogicalJob(
                        index=len(jobs),
                        key=fixed + swept_key,
                        entry=name,
                        program=_fill(template, shown) if fillable else program,
                        source=src,
                        qpu=qpu,
                        shots=shot,
                        config=config,
                        tag=tag,
                        sweep=point,
                    )
                )
    total = sum(job.shots for job in jobs)
    if spec.limits.max_total_shots is not None and total > spec.limits.max_total_shots:
        check.add(
            ("limits", "max_total_shots"),
            f"the batch asks for {total:,} shots, over the cap of {spec.limits.max_total_shots:,}",
        )
        check.raise_if_any()
    return ExpandedBatch(
        path=Path(path),
        spec=spec,
        jobs=jobs,
        configs=configs,
        config_objects=objects,
        param_names=param_names,
        hash=batch_hash(jobs, configs),
        text=text,
        templates=templates,
        entry_names=names,
    )


def _product_size(params: dict[str, list[Any]]) -> int:
    size = 1
    for values in params.values():
        size *= len(values)
    return size


def _points(params: dict[str, list[Any]]) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Every point of the sweep, with its values as written into programs and job keys."""
    names = list(params)
    values = [params[n] for n in names]
    texts = [[_format_value(v) for v in column] for column in values]
    # Two products over columns of equal lengths run through the same points in step.
    for point, shown in zip(itertools.product(*values), itertools.product(*texts), strict=True):
        yield dict(zip(names, point, strict=True)), dict(zip(names, shown, strict=True))


def _template(program: str) -> list[str]:
    """``program`` split at its placeholders: literal text at even positions, names at odd."""
    return _PLACEHOLDER_RE.split(program)


def _fill(template: list[str], texts: dict[str, str]) -> str:
    """The program of ``template`` with each placeholder whose name has a value replaced."""
    pieces = template[:]
    for i in range(1, len(pieces), 2):
        name = pieces[i]
        pieces[i] = texts[name] if name in texts else "{" + name + "}"
    return "".join(pieces)


def batch_hash(jobs: Sequence[LogicalJob], configs: Sequence[ConfigRecord]) -> str:
    """Content hash of an expansion: what each job sends, and where.

    The SHA-256 of one line per job, ``json.dumps([key, program, qpu, [config json, config
    type], tag])`` (compact separators); each line is assembled from pieces, the configs
    encoded once.
    """
    encode = json.encoder.encode_basestring_ascii
    config_parts = [json.dumps(attrs.astuple(config), separators=(",", ":")) for config in configs]
    lines = [
        f"[{encode(job.key)},{encode(job.program)},{encode(job.qpu)},"
        f"{config_parts[job.config]},{'null' if job.tag is None else encode(job.tag)}]\n"
        for job in jobs
    ]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def load_and_expand(path: str | Path) -> ExpandedBatch:
    """Read, structure, check and expand a batch file (raises :class:`BatchError`)."""
    spec, text = load_batch_file(path)
    return expand(spec, text, path)


def expand_text(text: str, path: str | Path = "<batch>") -> ExpandedBatch:
    """Like :func:`load_and_expand` for a document in memory (relative files from ``path``)."""
    return expand(parse_batch_text(text, str(path)), text, path)
