"""Compiler configs: the SDK default, :class:`ExperimentalConfig`, and (de)serialisation.

A job's config is one of compiler_config's :class:`~compiler_config.config.CompilerConfig`,
compiler_config's :class:`~compiler_config.experimental.erado.config.EradoConfig`, or this
module's :class:`ExperimentalConfig`. This module turns them into what the service expects
(:func:`config_to_wire`) and into the two snapshot fields ``config_json`` / ``config_type``
and back (:func:`config_to_snapshot`, :func:`config_from_snapshot`).

How we differ from the official SDK (``oqc_qcaas_sdk.experimental_config`` and
``oqc_qcaas_sdk.job``):

- ``ExperimentalConfig.to_json()`` writes ``"$type": "<class
  'compiler_config.config.CompilerConfig'>"`` where the official one writes its own class path
  (``oqc_qcaas_sdk.experimental_config.ExperimentalConfig``). compiler_config's decoder only
  accepts class paths registered in its type table, and that table is built once, from the
  subclasses that exist at its first use. The base class path is the only one every reader
  accepts whatever was imported first; the official ``create_from_json`` ignores ``$type`` for
  the class choice (``config_type`` decides), so official files load here and our files load
  there. Our ``create_from_json`` accepts either class path.
- Serialising never depends on import order: the official ``to_json`` raises
  ``ValueError("Invalid type attempted to be serialized")`` if any ``CompilerConfig`` was
  serialised before ``oqc_qcaas_sdk.experimental_config`` was imported. Likewise nothing here
  serialises at import time, so importing oqc-trio never freezes compiler_config's type table
  (which would break the official SDK in the same process).
- ``base_config`` is a plain ``CompilerConfig`` without the experimental attributes; the
  official one keeps ``noise``, ``bond_dimension`` and ``noise_model`` in its ``$data``, so they
  leak into the task's wire ``config`` as well as into ``external_config``.
- ``noise_model`` must be a dict (qcshared ``NoiseModel`` objects are not supported: convert
  them with ``qcshared.json.encode.jsonify`` first). The official SDK needs the qcshared
  extra even to *load* a snapshot whose config has a noise-model dict and otherwise falls back
  to a plain ``CompilerConfig``; here it always loads as an ``ExperimentalConfig``.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

from compiler_config.config import CompilerConfig, QuantumResultsFormat

if TYPE_CHECKING:
    from compiler_config.experimental.erado.config import EradoConfig

__all__ = [
    "DEFAULT_CONFIG_JSON",
    "DEFAULT_SHOTS",
    "AnyConfig",
    "ConfigType",
    "ExperimentalConfig",
    "config_from_snapshot",
    "config_to_snapshot",
    "config_to_wire",
    "default_config",
    "shots_of",
]

#: Shots the SDK asks for when a job has no config (or a config with ``repeats=None``).
DEFAULT_SHOTS = 1000

#: The ``config_type`` values a snapshot may carry (``None`` aside).
ConfigType: TypeAlias = Literal["CompilerConfig", "ExperimentalConfig", "EradoConfig"]
#: Any config a job accepts.
AnyConfig: TypeAlias = "CompilerConfig | EradoConfig | ExperimentalConfig"

_CONFIG_TYPES: tuple[str, ...] = ("CompilerConfig", "ExperimentalConfig", "EradoConfig")
_EXTRA_ATTRS = ("noise", "bond_dimension", "noise_model")
_BASE_TYPE_TAG = f"{CompilerConfig!s}"  # "<class 'compiler_config.config.CompilerConfig'>"


def _plain_copy(config: CompilerConfig) -> CompilerConfig:
    """A plain ``CompilerConfig`` holding ``config``'s attributes minus the experimental ones.

    Built without ``__init__`` so no deprecation warnings fire and attribute order (which is
    the ``$data`` key order) is kept.
    """
    plain = CompilerConfig.__new__(CompilerConfig)
    plain.__dict__.update({k: v for k, v in vars(config).items() if k not in _EXTRA_ATTRS})
    return plain


class ExperimentalConfig(CompilerConfig):
    """A ``CompilerConfig`` plus parameters for external backends (e.g. FermionIQ simulators).

    ``noise`` enables noise simulation, ``bond_dimension`` sets a tensor-network simulator's
    bond dimension, ``noise_model`` is a custom noise model as a dict. They travel in the
    task's separate ``external_config`` object and are validated by the service, not here;
    every other keyword is passed to ``CompilerConfig``.

    Same constructor, properties and JSON layout as the official class, except (see the module
    docstring): the ``$type`` written by :meth:`to_json` is the base ``CompilerConfig`` path,
    :attr:`base_config` carries no experimental attributes, and ``noise_model`` must be a dict.
    """

    def __init__(
        self,
        *,
        noise: bool = False,
        bond_dimension: int | None = None,
        noise_model: dict[str, Any] | None = None,
        **compiler_kwargs: Any,
    ) -> None:
        super().__init__(**compiler_kwargs)
        if noise_model is not None and not isinstance(noise_model, dict):
            raise TypeError(
                "noise_model must be a dict, not "
                f"{type(noise_model).__module__}.{type(noise_model).__qualname__}; oqc-trio "
                "does not import qcshared, so convert a NoiseModel first "
                "(qcshared.json.encode.jsonify(model))"
            )
        self.noise = noise
        self.bond_dimension = bond_dimension
        self.noise_model = noise_model

    def _external_config(self) -> dict[str, Any]:
        ext: dict[str, Any] = {}
        if self.noise:
            ext["noise_enabled"] = True
        if self.bond_dimension is not None:
            ext["bond_dimension"] = self.bond_dimension
        if self.noise_model is not None:
            ext["noise_model"] = self.noise_model
        return ext

    @property
    def external_config(self) -> dict[str, Any]:
        """The task's ``external_config``: ``noise_enabled``, ``bond_dimension``,
        ``noise_model``, each present only when set (``{}`` when none is)."""
        return self._external_config()

    @property
    def base_config(self) -> CompilerConfig:
        """A plain ``CompilerConfig`` with the same compiler settings and no extras."""
        return CompilerConfig.create_from_json(_plain_copy(self).to_json())

    def to_json(self) -> str:
        """The base config's JSON with an ``$external`` object appended when any extra is set.

        ``$type`` is the base ``CompilerConfig`` class path, so every reader can decode it.
        """
        data = json.loads(_plain_copy(self).to_json())
        ext = self._external_config()
        if ext:
            data["$external"] = ext
        return json.dumps(data)

    @classmethod
    def create_from_json(cls, serialized: str) -> ExperimentalConfig:
        """Rebuild from :meth:`to_json` output, ours or the official SDK's.

        A top-level ``$type`` naming any ``...ExperimentalConfig`` class (or the base
        ``CompilerConfig``) is accepted; a missing ``$external`` means no extras.
        """
        data = json.loads(serialized)
        if not isinstance(data, dict):
            raise ValueError(f"an ExperimentalConfig JSON must be an object, got {data!r:.80}")
        ext = data.pop("$external", None) or {}
        if not isinstance(ext, dict):
            raise ValueError(f"$external must be an object, got {ext!r:.80}")
        type_tag = data.get("$type")
        if isinstance(type_tag, str) and type_tag.endswith(".ExperimentalConfig'>"):
            data["$type"] = _BASE_TYPE_TAG  # whoever's class it was, decode the base part
        elif not (isinstance(type_tag, str) and type_tag.endswith(".CompilerConfig'>")):
            raise ValueError(f"not an ExperimentalConfig JSON: $type is {type_tag!r}")
        if isinstance(data.get("$data"), dict):
            # Written by a leaky base_config: the $external values are the ones that count.
            for key in _EXTRA_ATTRS:
                data["$data"].pop(key, None)
        base = CompilerConfig.create_from_json(json.dumps(data))
        config = cls(
            noise=ext.get("noise_enabled", False),
            bond_dimension=ext.get("bond_dimension"),
            noise_model=ext.get("noise_model"),
        )
        extras = {key: getattr(config, key) for key in _EXTRA_ATTRS}
        # Replace rather than update so $data key order (and unknown future keys) survive.
        config.__dict__.clear()
        config.__dict__.update(vars(base))
        config.__dict__.update(extras)
        return config


def default_config() -> CompilerConfig:
    """A fresh copy of the config used when a job has none: 1000 shots, binary counts.

    As in the official SDK, the job's own ``config`` stays ``None``; only the task sent to the
    service carries this.
    """
    return CompilerConfig(
        repeats=DEFAULT_SHOTS, results_format=QuantumResultsFormat().binary_count()
    )


@functools.cache
def _default_config_json() -> str:
    return default_config().to_json()


def __getattr__(name: str) -> str:
    # DEFAULT_CONFIG_JSON is computed on first use, not at import: serialising at import would
    # freeze compiler_config's type table before other packages register their subclasses.
    if name == "DEFAULT_CONFIG_JSON":
        return _default_config_json()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    #: ``default_config().to_json()``: the exact ``config`` string sent for a job without a
    #: config (682 characters with compiler-config 0.3). Computed once, on first access.
    DEFAULT_CONFIG_JSON: str


def _is_erado(config: object) -> bool:
    from compiler_config.experimental.erado.config import EradoConfig

    return isinstance(config, EradoConfig)


def _foreign_experimental(config: CompilerConfig) -> ExperimentalConfig | None:
    """Our ExperimentalConfig equivalent of another package's (e.g. the official SDK's)."""
    if type(config).__name__ != "ExperimentalConfig" or not hasattr(config, "external_config"):
        return None
    ours = ExperimentalConfig.__new__(ExperimentalConfig)
    ours.__dict__.update(vars(config))
    ours.__dict__.setdefault("noise", False)
    ours.__dict__.setdefault("bond_dimension", None)
    ours.__dict__.setdefault("noise_model", None)
    return ours


def _normalise(config: object) -> tuple[CompilerConfig | EradoConfig, ConfigType]:
    """Classify ``config``; reject anything that is not one of the three config kinds."""
    if isinstance(config, ExperimentalConfig):
        return config, "ExperimentalConfig"
    if _is_erado(config):
        return cast("EradoConfig", config), "EradoConfig"
    if isinstance(config, CompilerConfig):
        foreign = _foreign_experimental(config)
        if foreign is not None:
            return foreign, "ExperimentalConfig"
        return config, "CompilerConfig"
    raise TypeError(
        "config must be a CompilerConfig, EradoConfig or ExperimentalConfig, not "
        f"{type(config).__module__}.{type(config).__qualname__}"
    )


def config_to_wire(config: AnyConfig | None) -> tuple[str, dict[str, Any] | None]:
    """The task's ``config`` string and its ``external_config`` (``None`` unless experimental).

    ``None`` gives :data:`DEFAULT_CONFIG_JSON`. An :class:`ExperimentalConfig` sends the plain
    ``CompilerConfig`` JSON of its :attr:`~ExperimentalConfig.base_config` and its extras
    separately (``None`` when it has none, so the key can be left out, as the official SDK
    does). A ``CompilerConfig`` subclass is sent with the base class path as ``$type`` so the
    service can decode it.
    """
    if config is None:
        return _default_config_json(), None
    cfg, kind = _normalise(config)
    if kind == "ExperimentalConfig":
        assert isinstance(cfg, ExperimentalConfig)
        return _plain_copy(cfg).to_json(), (cfg.external_config or None)
    if kind == "EradoConfig":
        return cfg.to_json(), None
    assert isinstance(cfg, CompilerConfig)
    return _plain_copy(cfg).to_json(), None


def config_to_snapshot(config: AnyConfig | None) -> tuple[str | None, ConfigType | None]:
    """``(config_json, config_type)`` for a snapshot, as the official ``to_snapshot()`` writes.

    ``(None, None)`` for no config. :func:`config_from_snapshot` inverts it exactly: the
    rebuilt config has the same class and the same ``to_json()``.
    """
    if config is None:
        return None, None
    cfg, kind = _normalise(config)
    if kind == "CompilerConfig" and type(cfg) is not CompilerConfig:
        assert isinstance(cfg, CompilerConfig)
        return _plain_copy(cfg).to_json(), kind
    return cfg.to_json(), kind


def config_from_snapshot(config_json: str | None, config_type: str | None) -> AnyConfig | None:
    """Rebuild a config from a snapshot's ``config_json`` / ``config_type``.

    ``config_json=None`` gives ``None``; ``config_type=None`` with a JSON string means a plain
    ``CompilerConfig`` (as in the official SDK). Raises ``ValueError`` naming the problem for an
    unknown ``config_type`` or JSON that does not decode to that kind of config.
    """
    if config_type is not None and config_type not in _CONFIG_TYPES:
        raise ValueError(
            f"unknown config_type {config_type!r}; expected one of {', '.join(_CONFIG_TYPES)}"
        )
    if config_json is None:
        return None
    if not isinstance(config_json, str):
        raise ValueError(f"config_json must be a string, got {type(config_json).__name__}")
    kind = config_type or "CompilerConfig"
    try:
        if kind == "ExperimentalConfig":
            return ExperimentalConfig.create_from_json(config_json)
        if kind == "EradoConfig":
            from compiler_config.experimental.erado.config import EradoConfig

            return EradoConfig.from_json(config_json)
        type_tag = json.loads(config_json).get("$type")
        if not (isinstance(type_tag, str) and type_tag.endswith(".CompilerConfig'>")):
            raise ValueError(f"$type is {type_tag!r}")
        return CompilerConfig.create_from_json(config_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"config_json is not valid JSON ({exc})") from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"config_json is not a valid {kind}: {exc}") from exc


def shots_of(config: AnyConfig | None) -> int:
    """Shots a task with this config asks for: its ``repeats``, or 1000 when unset."""
    if config is None:
        return DEFAULT_SHOTS
    cfg, _ = _normalise(config)
    repeats = cfg.repeats
    return DEFAULT_SHOTS if repeats is None else int(repeats)
