"""Snapshot models for saving and restoring a Job or CompositeJob, and their file format.

The at-rest schema is the official SDK's (``oqc_qcaas_sdk.job_snapshot``, schema version
``"1"``): the same field names, defaults, ``snapshot_kind`` and ``kind`` discriminators, so a
file saved by either SDK loads in the other. Users normally go through ``job.to_snapshot()`` /
``job.save(path)`` and ``sdk.from_snapshot(snapshot)`` / ``sdk.load(path)``; this module holds
the models and the file functions those use.

How we differ from the official SDK:

- The models are attrs classes (un/structured by a private cattrs converter), not pydantic
  models. For code written against pydantic they keep ``model_dump``, ``model_dump_json``,
  ``model_validate`` and ``model_validate_json``.
- ``state`` accepts every :class:`~oqc_trio.job.JobState`, including ``UNKNOWN`` (the official
  schema rejects it, so a job in that state cannot be snapshotted there; weakness #12). A file
  holding ``UNKNOWN`` does not load in the official SDK: save with ``compatible=True`` (or call
  :meth:`JobSnapshot.to_official_compatible`) to write it as ``SUBMITTED`` when the job has a
  ``task_id`` (the official SDK then resumes polling it) and ``CREATED`` otherwise.
- :func:`save_snapshot` is atomic: a temporary file in the same directory, fsync, rename, fsync
  of the directory. A crash or an error mid-save leaves the previous file intact (the official
  ``save`` overwrites in place; weakness #16).
- :func:`load_snapshot` has a migration table for future schema versions instead of a strict
  equality check (weakness #17), and its errors name the file and the path of the faulty field
  (``$.jobs[3].task_id``).
- Unknown extra keys are ignored on load, so files written by a newer release still load; wrong
  types are errors, and no value is coerced (``"42"`` is not an ``int``).
- ``received`` is written as an aware UTC timestamp; a naive one (the official SDK records
  naive local time) is read as UTC.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import stat
import typing
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypeVar

import attrs
from attrs import define, field
from cattrs import transform_error
from cattrs.cols import list_structure_factory
from cattrs.errors import ClassValidationError, IterableValidationError
from cattrs.gen import make_dict_structure_fn
from cattrs.preconf.json import make_converter
from cattrs.v import format_exception

from ._wire.status import JobState

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "SUPPORTED_SCHEMA_VERSIONS",
    "CompositeJobSnapshot",
    "JobErrorSnapshot",
    "JobOutputSnapshot",
    "JobResultSnapshot",
    "JobSnapshot",
    "OutputItem",
    "Snapshot",
    "load_snapshot",
    "save_snapshot",
    "snapshot_from_dict",
    "snapshot_to_dict",
    "snapshot_to_json",
]

#: The schema version this release writes.
CURRENT_SCHEMA_VERSION = "1"

_ConfigType: TypeAlias = Literal["CompilerConfig", "ExperimentalConfig", "EradoConfig"]
_M = TypeVar("_M", bound="_ModelMethods")


def _to_uuid(value: uuid.UUID | str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if isinstance(value, str) else value


def _to_utc(value: datetime.datetime | str | None) -> datetime.datetime | None:
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=datetime.UTC)


class _ModelMethods:
    """The pydantic-style (de)serialisation methods the official models offer."""

    __slots__ = ()

    def model_dump(self, *, mode: Literal["python", "json"] = "python") -> dict[str, Any]:
        """The fields as a dict; ``mode="json"`` gives JSON-ready values (str UUIDs, ISO
        datetimes), ``"python"`` keeps the objects."""
        if mode == "json":
            return _converter.unstructure(self)
        return attrs.asdict(self, recurse=True)  # type: ignore[arg-type]

    def model_dump_json(self, *, indent: int | None = None) -> str:
        """The fields as a JSON document."""
        return json.dumps(self.model_dump(mode="json"), indent=indent)

    @classmethod
    def model_validate(cls: type[_M], obj: Any) -> _M:
        """Build from a dict (an instance is returned as is); ``ValueError`` with the field
        paths when it does not match the schema."""
        if isinstance(obj, cls):
            return obj
        return _structure(obj, cls, "<memory>")

    @classmethod
    def model_validate_json(cls: type[_M], data: str | bytes) -> _M:
        """Build from a JSON document; ``ValueError`` when it is not JSON or not the schema."""
        return _structure(_parse_json(data, "<memory>"), cls, "<memory>")


# ---------------------------------------------------------------------------------------------
# Models (field names, order and defaults are the official schema's)
# ---------------------------------------------------------------------------------------------


@define(kw_only=True)
class JobOutputSnapshot(_ModelMethods):
    """Fields shared by a result and an error: one run's identity, config and diagnostics."""

    qpu_id: str | None = None
    task_id: uuid.UUID | None = field(default=None, converter=_to_uuid)
    program: str | None = None
    received: datetime.datetime | None = field(default=None, converter=_to_utc)
    config_json: str | None = None
    config_type: _ConfigType | None = None
    timings: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


@define(kw_only=True)
class JobResultSnapshot(JobOutputSnapshot):
    """A successful run: ``data`` holds the results (counts per classical register)."""

    kind: Literal["result"] = "result"
    data: dict[str, Any] = field(factory=dict)


@define(kw_only=True)
class JobErrorSnapshot(JobOutputSnapshot):
    """A failed run: the server's ``error_code`` and ``error_message``."""

    kind: Literal["error"] = "error"
    error_code: int | None = None
    error_message: str | None = None


#: One item of a job's history (and the type of ``result`` / ``error``), tagged by ``kind``.
OutputItem: TypeAlias = JobResultSnapshot | JobErrorSnapshot


def _compatible_state(state: JobState, task_id: uuid.UUID | None) -> JobState:
    if state is not JobState.UNKNOWN:
        return state
    return JobState.SUBMITTED if task_id is not None else JobState.CREATED


@define(kw_only=True)
class JobSnapshot(_ModelMethods):
    """Everything needed to restore a Job in a later session.

    Program, QPU, config (as ``config_json`` + ``config_type``), state, the latest result or
    error and the whole history (oldest first). Unlike the official model, ``state`` may be
    ``UNKNOWN``; see :meth:`to_official_compatible`.
    """

    schema_version: str = CURRENT_SCHEMA_VERSION
    snapshot_kind: Literal["job"] = "job"
    program: str
    qpu_id: str
    config_json: str | None = None
    config_type: _ConfigType | None = None
    tag: str | None = None
    hybrid_marker: str | None = None
    timings: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    task_id: uuid.UUID | None = field(default=None, converter=_to_uuid)
    state: JobState = field(default=JobState.CREATED, converter=JobState)
    raise_on_error: bool = False
    fetch_diagnostics: bool = False
    result: JobResultSnapshot | None = None
    error: JobErrorSnapshot | None = None
    history: list[OutputItem] = field(factory=list)

    def to_official_compatible(self) -> JobSnapshot:
        """A copy the official SDK can load: ``UNKNOWN`` becomes ``SUBMITTED`` when there is a
        ``task_id`` (so it resumes polling) and ``CREATED`` otherwise. Other states are kept."""
        return attrs.evolve(self, state=_compatible_state(self.state, self.task_id))


@define(kw_only=True)
class CompositeJobSnapshot(_ModelMethods):
    """Everything needed to restore a CompositeJob: one :class:`JobSnapshot` per child."""

    schema_version: str = CURRENT_SCHEMA_VERSION
    snapshot_kind: Literal["composite"] = "composite"
    jobs: list[JobSnapshot] = field(factory=list)

    def to_official_compatible(self) -> CompositeJobSnapshot:
        """A copy whose children are all :meth:`JobSnapshot.to_official_compatible`."""
        return attrs.evolve(self, jobs=[job.to_official_compatible() for job in self.jobs])


#: A saved file holds one of these, tagged by ``snapshot_kind``.
Snapshot: TypeAlias = JobSnapshot | CompositeJobSnapshot

_SNAPSHOT_KINDS: dict[str, type[JobSnapshot] | type[CompositeJobSnapshot]] = {
    "job": JobSnapshot,
    "composite": CompositeJobSnapshot,
}
_OUTPUT_KINDS: dict[str, type[JobResultSnapshot] | type[JobErrorSnapshot]] = {
    "result": JobResultSnapshot,
    "error": JobErrorSnapshot,
}

# ---------------------------------------------------------------------------------------------
# Schema versions
# ---------------------------------------------------------------------------------------------

#: ``version -> function`` upgrading a raw snapshot dict of that version by one step (it must
#: set the new ``schema_version``). Empty while "1" is the only version.
_MIGRATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}

#: Every version :func:`load_snapshot` reads (the current one and those with a migration).
SUPPORTED_SCHEMA_VERSIONS: tuple[str, ...] = (CURRENT_SCHEMA_VERSION, *_MIGRATIONS)


def _migrate(raw: dict[str, Any], source: str) -> dict[str, Any]:
    seen: set[object] = set()
    while (version := raw.get("schema_version")) != CURRENT_SCHEMA_VERSION:
        step = _MIGRATIONS.get(version) if isinstance(version, str) else None
        if step is None or version in seen:
            supported = ", ".join(repr(v) for v in (CURRENT_SCHEMA_VERSION, *_MIGRATIONS))
            raise ValueError(
                f"{source}: unsupported snapshot schema_version {version!r}; this release of "
                f"oqc-trio reads {supported}"
            )
        seen.add(version)
        raw = step(raw)
    return raw


# ---------------------------------------------------------------------------------------------
# The converter
# ---------------------------------------------------------------------------------------------


class _SchemaError(ValueError):
    """A structuring error whose message is already the one to show."""


def _expect(value: Any, type_: type, name: str) -> None:
    # bool is an int subclass, but JSON true is not an integer.
    if not isinstance(value, type_) or (isinstance(value, bool) and type_ is not bool):
        raise _SchemaError(f"expected {name}, got {_describe(value)}")


_JSON_NAMES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
}


def _describe(value: Any) -> str:
    """A short JSON-flavoured description of a value for error messages."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    name = _JSON_NAMES.get(type(value), type(value).__name__)
    if isinstance(value, str | int | float):
        text = json.dumps(value)
        return f"{name} {text if len(text) <= 40 else text[:37] + '...'}"
    return name


def _structure_str(value: Any, _: Any) -> str:
    _expect(value, str, "a string")
    return value


def _structure_int(value: Any, _: Any) -> int:
    _expect(value, int, "an integer")
    return value


def _structure_bool(value: Any, _: Any) -> bool:
    _expect(value, bool, "true or false")
    return value


def _structure_object(value: Any, _: Any) -> dict[str, Any]:
    _expect(value, dict, "an object")
    return dict(value)


def _structure_uuid(value: Any, _: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    _expect(value, str, "a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _SchemaError(f"expected a UUID, got {_describe(value)}") from None


def _structure_datetime(value: Any, _: Any) -> datetime.datetime:
    if not isinstance(value, datetime.datetime):
        _expect(value, str, "an ISO 8601 date-time string")
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise _SchemaError(f"expected an ISO 8601 date-time, got {_describe(value)}") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def _unstructure_datetime(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _structure_state(value: Any, _: Any) -> JobState:
    try:
        return JobState(value)
    except ValueError:
        names = ", ".join(s.value for s in JobState)
        raise _SchemaError(f"expected one of {names}, got {_describe(value)}") from None


def _structure_output_item(value: Any, _: Any) -> OutputItem:
    _expect(value, dict, "an object")
    kind = value.get("kind")
    cls = _OUTPUT_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise _SchemaError(f'expected "kind" to be "result" or "error", got {_describe(kind)}')
    return _converter.structure(value, cls)


def _unstructure_by_class(value: OutputItem | Snapshot) -> dict[str, Any]:
    return _converter.unstructure(value, unstructure_as=type(value))


def _structure_snapshot(value: Any, _: Any) -> Snapshot:
    _expect(value, dict, "an object")
    kind = value.get("snapshot_kind")
    cls = _SNAPSHOT_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise _SchemaError(
            f'expected "snapshot_kind" to be "job" or "composite", got {_describe(kind)}'
        )
    return _converter.structure(value, cls)


def _attrs_structure_factory(cls: type, converter: Any) -> Callable[[Any, Any], Any]:
    """The generated attrs hook, behind a check that the value is an object.

    Without it, cattrs would read a string's "keys" with ``in`` and build a default model.
    """
    inner: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, converter)

    def structure(value: Any, type_: Any) -> Any:
        _expect(value, dict, "an object")
        return inner(value, type_)

    return structure


def _strict_list_factory(type_: Any, converter: Any) -> Callable[[Any, Any], Any]:
    inner: Callable[[Any, Any], Any] = list_structure_factory(type_, converter)

    def structure(value: Any, t: Any) -> Any:
        _expect(value, list, "an array")
        return inner(value, t)

    return structure


def _literal_structure_factory(type_: Any) -> Callable[[Any, Any], Any]:
    allowed = typing.get_args(type_)
    expected = ", ".join(json.dumps(v) for v in allowed)

    def structure(value: Any, _: Any) -> Any:
        # Compare type too, so that 1 does not pass for True (or "1" for 1).
        if not any(type(value) is type(v) and value == v for v in allowed):
            raise _SchemaError(f"expected {expected}, got {_describe(value)}")
        return value

    return structure


_structure_config_literal = _literal_structure_factory(_ConfigType)


def _structure_config_type(value: Any, _: Any) -> _ConfigType | None:
    return None if value is None else _structure_config_literal(value, _ConfigType)


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, _SchemaError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    return f"{format_exception(exc, type_)} ({exc})"


def _make_converter() -> Any:
    conv = make_converter()
    conv.register_structure_hook_factory(
        lambda t: typing.get_origin(t) is Literal, _literal_structure_factory
    )
    # The json preconf's union passthrough would claim Optional[Literal[...]]; check it here.
    conv.register_structure_hook_func(lambda t: t == _ConfigType | None, _structure_config_type)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook_func(lambda t: t == dict[str, Any], _structure_object)
    conv.register_structure_hook(uuid.UUID, _structure_uuid)
    conv.register_unstructure_hook(uuid.UUID, str)
    conv.register_structure_hook(datetime.datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime.datetime, _unstructure_datetime)
    conv.register_structure_hook(JobState, _structure_state)
    conv.register_unstructure_hook(JobState, lambda state: state.value)
    conv.register_structure_hook_factory(attrs.has, _attrs_structure_factory)
    conv.register_structure_hook(OutputItem, _structure_output_item)
    conv.register_unstructure_hook(OutputItem, _unstructure_by_class)
    conv.register_structure_hook(Snapshot, _structure_snapshot)
    conv.register_unstructure_hook(Snapshot, _unstructure_by_class)
    conv.register_structure_hook_factory(
        lambda t: t in (list[OutputItem], list[JobSnapshot]), _strict_list_factory
    )
    return conv


_converter = _make_converter()
_S = TypeVar("_S")


def _structure(obj: Any, cls: type[_S], source: str) -> _S:
    try:
        return _converter.structure(obj, cls)
    except (ClassValidationError, IterableValidationError) as exc:
        problems = transform_error(exc, path="$", format_exception=_format_exception)
    except (ValueError, TypeError, KeyError) as exc:
        problems = [f"{_format_exception(exc, cls)} @ $"]
    listing = "\n".join(f"  - {problem}" for problem in problems)
    raise ValueError(f"{source}: not a valid snapshot:\n{listing}")


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------


def _check_snapshot(snapshot: object) -> Snapshot:
    if not isinstance(snapshot, JobSnapshot | CompositeJobSnapshot):
        raise TypeError(
            f"expected a JobSnapshot or CompositeJobSnapshot, not {type(snapshot).__qualname__}"
        )
    return snapshot


def snapshot_to_dict(snapshot: Snapshot, *, compatible: bool = False) -> dict[str, Any]:
    """The snapshot as a JSON-ready dict, every field present, in the official field order.

    ``compatible=True`` writes ``UNKNOWN`` states as the official SDK can load them (see
    :meth:`JobSnapshot.to_official_compatible`).
    """
    snapshot = _check_snapshot(snapshot)
    if compatible:
        snapshot = snapshot.to_official_compatible()
    return _converter.unstructure(snapshot, unstructure_as=type(snapshot))


def snapshot_to_json(
    snapshot: Snapshot, indent: int | None = 2, *, compatible: bool = False
) -> str:
    """The snapshot as JSON text, indented like the official ``save()`` (ASCII only, so the
    file reads the same under any locale encoding)."""
    return json.dumps(snapshot_to_dict(snapshot, compatible=compatible), indent=indent)


def snapshot_from_dict(obj: Any, *, source: str = "<memory>") -> Snapshot:
    """Validate a parsed snapshot (as :func:`snapshot_to_dict` returns) into a model.

    Checks, in order: the top level is an object; ``schema_version`` is known (older versions
    are migrated); ``snapshot_kind`` is ``"job"`` or ``"composite"``; then every field. Each
    failure is a ``ValueError`` starting with ``source``; schema errors list every faulty field
    with its path, e.g. ``expected a UUID, got str "x" @ $.jobs[3].task_id``.
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source}: a snapshot must be a JSON object, got {_describe(obj)}")
    raw = _migrate(dict(obj), source)
    kind = raw.get("snapshot_kind")
    if not isinstance(kind, str) or kind not in _SNAPSHOT_KINDS:
        raise ValueError(
            f'{source}: unrecognised snapshot_kind {kind!r}; expected "job" or "composite"'
        )
    return _structure(raw, _SNAPSHOT_KINDS[kind], source)


def _parse_json(data: str | bytes, source: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{source}: not valid JSON: not UTF-8 text ({exc.reason})") from exc


def load_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Read a snapshot file written by :func:`save_snapshot` or by the official SDK's ``save``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for
    anything else: invalid JSON (with line and column), a top level that is not an object, an
    unknown ``schema_version`` (naming the supported ones), an unknown ``snapshot_kind``, or
    fields that do not match the schema (with their paths).
    """
    source = os.fspath(path)
    data = Path(source).read_bytes()
    return snapshot_from_dict(_parse_json(data, source), source=source)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_snapshot(
    snapshot: Snapshot,
    path: str | os.PathLike[str],
    *,
    compatible: bool = False,
    indent: int | None = 2,
) -> None:
    """Write ``snapshot`` to ``path`` atomically.

    The JSON goes to a new temporary file next to ``path``, is flushed and fsynced, then
    renamed over ``path`` and the directory is fsynced: readers see the old file or the new
    one, never a partial file, and on any error the old file is left as it was and the
    temporary file is removed. New files get the usual permissions (``0o666`` minus umask).
    ``compatible=True`` writes ``UNKNOWN`` states so the official SDK can load the file.
    """
    text = snapshot_to_json(snapshot, indent, compatible=compatible)
    target = Path(path)
    if target.is_symlink():  # write through the link, as a plain overwrite would
        target = target.resolve()
    directory = target.parent
    tmp = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))  # keep an existing file's mode
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)
