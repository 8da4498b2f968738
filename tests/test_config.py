"""Tests for oqc_trio.config: the default config, ExperimentalConfig and (de)serialisation."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
from compiler_config.config import (
    CompilerConfig,
    ErrorMitigationConfig,
    MetricsType,
    QuantumResultsFormat,
    Tket,
    TketOptimizations,
)
from compiler_config.experimental.erado.config import EradoConfig, ErasureModel, IdlingErrorConfig
from hypothesis import given
from hypothesis import strategies as st

import oqc_trio.config as config_module
from oqc_trio.config import (
    DEFAULT_SHOTS,
    ExperimentalConfig,
    config_from_snapshot,
    config_to_snapshot,
    config_to_wire,
    default_config,
    shots_of,
)

BASE_TYPE = "<class 'compiler_config.config.CompilerConfig'>"
OFFICIAL_TYPE = "<class 'oqc_qcaas_sdk.experimental_config.ExperimentalConfig'>"

results_formats = st.sampled_from(
    [
        None,
        QuantumResultsFormat().binary_count(),
        QuantumResultsFormat().raw(),
        QuantumResultsFormat().binary(),
        QuantumResultsFormat().squash_binary_result_arrays(),
    ]
)
compiler_kwargs = st.fixed_dictionaries(
    {},
    optional={
        "repeats": st.none() | st.integers(1, 100_000),
        "results_format": results_formats,
        "metrics": st.sampled_from([MetricsType.Default, MetricsType.Empty]),
        "optimizations": st.sampled_from(
            [None, Tket(), Tket(TketOptimizations.Two), Tket(TketOptimizations.Empty)]
        ),
        "error_mitigation": st.sampled_from([None, ErrorMitigationConfig.MatrixMitigation]),
        "post_selection": st.booleans(),
        "pre_selection": st.booleans(),
        "enable_debug_info": st.booleans(),
        "passive_reset_time": st.none() | st.floats(0, 1e-3),
    },
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
experimental_configs = st.builds(
    lambda kwargs, noise, bond, model: ExperimentalConfig(
        noise=noise, bond_dimension=bond, noise_model=model, **kwargs
    ),
    compiler_kwargs,
    st.booleans(),
    st.none() | st.integers(1, 512),
    st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=3),
)
erado_configs = st.builds(
    EradoConfig,
    repeats=st.integers(1, 10_000),
    erasure_model=st.sampled_from(list(ErasureModel)),
    erasure_rate=st.floats(0, 1),
    erasure_before_gates=st.booleans(),
    false_positive_rate=st.floats(0, 1),
    false_negative_rate=st.floats(0, 1),
    post_selection=st.booleans(),
    get_fidelities=st.booleans(),
    idling_error=st.none() | st.builds(IdlingErrorConfig, max_idle_length=st.integers(1, 50)),
)
compiler_configs = compiler_kwargs.map(lambda kwargs: CompilerConfig(**kwargs))
any_configs = compiler_configs | experimental_configs | erado_configs


# --- default config -----------------------------------------------------------------------


def test_default_config_is_1000_shots_binary_count() -> None:
    config = default_config()
    assert type(config) is CompilerConfig
    assert config.repeats == 1000
    assert config.results_format == QuantumResultsFormat().binary_count()
    assert default_config() is not config


def test_default_config_json_is_the_official_682_character_string() -> None:
    text = config_module.DEFAULT_CONFIG_JSON
    assert text == default_config().to_json()
    assert len(text) == 682
    data = json.loads(text)
    assert data["$type"] == BASE_TYPE
    assert data["$data"]["repeats"] == 1000
    assert data["$data"]["results_format"]["$data"]["format"]["$value"] == 1
    assert data["$data"]["results_format"]["$data"]["transforms"]["$value"] == 3
    assert config_module.DEFAULT_CONFIG_JSON is text  # cached


def test_unknown_module_attribute_raises() -> None:
    with pytest.raises(AttributeError, match="NOPE"):
        _ = config_module.NOPE


def test_import_does_not_freeze_compiler_config_type_table() -> None:
    # Importing us must not serialise anything: compiler_config builds its table of decodable
    # classes once, at first use, from the subclasses that exist then.
    code = (
        "import oqc_trio.config, oqc_trio.job_snapshot, compiler_config.config as c;"
        "print(c.serializable_types_dict is None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


# --- ExperimentalConfig ---------------------------------------------------------------------


def test_experimental_config_defaults() -> None:
    config = ExperimentalConfig()
    assert isinstance(config, CompilerConfig)
    assert (config.noise, config.bond_dimension, config.noise_model) == (False, None, None)
    assert config.external_config == {}
    assert config.repeats is None
    assert "$external" not in json.loads(config.to_json())


def test_external_config_has_only_set_keys() -> None:
    model = {"gate_noise": {"cx": 0.01}}
    assert ExperimentalConfig(noise=True).external_config == {"noise_enabled": True}
    assert ExperimentalConfig(bond_dimension=50).external_config == {"bond_dimension": 50}
    full = ExperimentalConfig(noise=True, bond_dimension=8, noise_model=model, repeats=10)
    assert full.external_config == {
        "noise_enabled": True,
        "bond_dimension": 8,
        "noise_model": model,
    }
    assert full.repeats == 10


def test_noise_model_must_be_a_dict() -> None:
    class NoiseModel:
        pass

    with pytest.raises(TypeError, match=r"noise_model must be a dict.*NoiseModel.*jsonify"):
        ExperimentalConfig(noise_model=NoiseModel())  # type: ignore[arg-type]


def test_to_json_layout_matches_the_official_one_but_with_the_base_type() -> None:
    config = ExperimentalConfig(noise=True, bond_dimension=50, repeats=10)
    data = json.loads(config.to_json())
    assert list(data) == ["$type", "$data", "$external"]
    assert data["$type"] == BASE_TYPE
    assert data["$external"] == {"noise_enabled": True, "bond_dimension": 50}
    assert not {"noise", "bond_dimension", "noise_model"} & set(data["$data"])
    plain = json.loads(CompilerConfig(repeats=10).to_json())
    assert data["$data"] == plain["$data"]
    assert config.to_json().startswith('{"$type": ')  # json.dumps defaults, as the official


def test_base_config_is_plain() -> None:
    config = ExperimentalConfig(noise=True, bond_dimension=3, repeats=7)
    base = config.base_config
    assert type(base) is CompilerConfig
    assert base.repeats == 7
    assert not hasattr(base, "noise")
    assert base.to_json() == CompilerConfig(repeats=7).to_json()


@given(experimental_configs)
def test_experimental_json_round_trip(config: ExperimentalConfig) -> None:
    again = ExperimentalConfig.create_from_json(config.to_json())
    assert type(again) is ExperimentalConfig
    assert again.to_json() == config.to_json()
    assert list(vars(again)) == list(vars(config))
    assert again.external_config == config.external_config


def test_create_from_json_accepts_the_official_class_path() -> None:
    config = ExperimentalConfig(noise=True, bond_dimension=5, repeats=3)
    data = json.loads(config.to_json())
    data["$type"] = OFFICIAL_TYPE
    again = ExperimentalConfig.create_from_json(json.dumps(data))
    assert again.to_json() == config.to_json()


def test_create_from_json_prefers_external_over_leaked_data_keys() -> None:
    data = json.loads(ExperimentalConfig(noise=True, repeats=3).to_json())
    data["$data"].update(noise=False, bond_dimension=99, noise_model=None)
    again = ExperimentalConfig.create_from_json(json.dumps(data))
    assert again.external_config == {"noise_enabled": True}


def test_create_from_json_without_external_means_no_extras() -> None:
    again = ExperimentalConfig.create_from_json(CompilerConfig(repeats=4).to_json())
    assert again.external_config == {} and again.repeats == 4


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[]", "must be an object"),
        ('{"$type": "<class \'x.EradoConfig\'>", "$data": {}}', "not an ExperimentalConfig"),
        (json.dumps({"$type": BASE_TYPE, "$data": {}, "$external": [1]}), r"\$external"),
    ],
)
def test_create_from_json_rejects_other_documents(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ExperimentalConfig.create_from_json(text)


def test_serialising_does_not_depend_on_import_order() -> None:
    # In a fresh interpreter, serialise a CompilerConfig first (freezing compiler_config's type
    # table), then define a subclass: the official to_json would raise here.
    code = "\n".join(
        [
            "import compiler_config.config as c",
            "c.CompilerConfig().to_json()",
            "from oqc_trio.config import ExperimentalConfig, config_from_snapshot, "
            "config_to_snapshot",
            "class Late(ExperimentalConfig): pass",
            "j, t = config_to_snapshot(ExperimentalConfig(noise=True, repeats=5))",
            "assert config_from_snapshot(j, t).to_json() == j",
            "print(Late(bond_dimension=2).to_json())",
        ]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert '"$external": {"bond_dimension": 2}' in out.stdout


# --- config_to_wire ---------------------------------------------------------------------------


def test_wire_of_none_is_the_default() -> None:
    assert config_to_wire(None) == (config_module.DEFAULT_CONFIG_JSON, None)


def test_wire_of_compiler_config() -> None:
    config = CompilerConfig(repeats=5)
    assert config_to_wire(config) == (config.to_json(), None)


def test_wire_of_experimental_config_splits_base_and_external() -> None:
    config = ExperimentalConfig(noise=True, bond_dimension=4, repeats=5)
    wire, external = config_to_wire(config)
    assert wire == CompilerConfig(repeats=5).to_json()
    assert json.loads(wire)["$type"] == BASE_TYPE
    assert external == {"noise_enabled": True, "bond_dimension": 4}
    assert config_to_wire(ExperimentalConfig(repeats=5))[1] is None


def test_wire_of_erado_config() -> None:
    config = EradoConfig(repeats=20)
    assert config_to_wire(config) == (config.to_json(), None)


def test_wire_of_compiler_subclass_uses_the_base_type() -> None:
    class Mine(CompilerConfig):
        pass

    wire, external = config_to_wire(Mine(repeats=2))
    assert json.loads(wire)["$type"] == BASE_TYPE and external is None


@pytest.mark.parametrize("bad", ["{}", 5, {"repeats": 3}, object()])
def test_rejects_other_types_naming_them(bad: object) -> None:
    name = type(bad).__qualname__
    for function in (config_to_wire, config_to_snapshot, shots_of):
        with pytest.raises(TypeError, match=name):
            function(bad)


# --- snapshots --------------------------------------------------------------------------------


def test_snapshot_of_none() -> None:
    assert config_to_snapshot(None) == (None, None)
    assert config_from_snapshot(None, None) is None
    assert config_from_snapshot(None, "CompilerConfig") is None


@given(any_configs)
def test_snapshot_round_trip_is_exact(config: CompilerConfig | EradoConfig) -> None:
    config_json, config_type = config_to_snapshot(config)
    assert config_type == type(config).__name__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilding must not warn
        again = config_from_snapshot(config_json, config_type)
    assert type(again) is type(config)
    assert again is not None
    assert again.to_json() == config_json
    if isinstance(config, EradoConfig):
        assert again == config


def test_snapshot_of_compiler_subclass_is_a_compiler_config() -> None:
    class Mine(CompilerConfig):
        pass

    config_json, config_type = config_to_snapshot(Mine(repeats=9))
    assert config_type == "CompilerConfig"
    again = config_from_snapshot(config_json, config_type)
    assert isinstance(again, CompilerConfig) and type(again) is CompilerConfig
    assert again.repeats == 9


def test_snapshot_without_type_is_a_compiler_config() -> None:
    again = config_from_snapshot(CompilerConfig(repeats=3).to_json(), None)
    assert isinstance(again, CompilerConfig) and type(again) is CompilerConfig
    assert again.repeats == 3


def test_snapshot_of_a_foreign_experimental_config() -> None:
    # e.g. the official SDK's ExperimentalConfig: same attributes, another module.
    class ExperimentalConfig(CompilerConfig):  # the class name is what is detected
        external_config: dict[str, object] = {}

    foreign = ExperimentalConfig(repeats=6)
    foreign.noise, foreign.bond_dimension, foreign.noise_model = True, 7, None
    config_json, config_type = config_to_snapshot(foreign)
    assert config_type == "ExperimentalConfig" and config_json is not None
    assert json.loads(config_json)["$external"] == {"noise_enabled": True, "bond_dimension": 7}
    again = config_from_snapshot(config_json, config_type)
    assert isinstance(again, config_module.ExperimentalConfig) and again.repeats == 6


@pytest.mark.parametrize(
    ("config_json", "config_type", "match"),
    [
        ("{}", "NoiseConfig", "unknown config_type 'NoiseConfig'"),
        ("{", "CompilerConfig", "not valid JSON"),
        ("{", "ExperimentalConfig", "not valid JSON"),
        ("{", "EradoConfig", "not valid JSON"),
        ("[1]", "CompilerConfig", "not a valid CompilerConfig"),
        (EradoConfig().to_json(), "CompilerConfig", "not a valid CompilerConfig"),
        (CompilerConfig().to_json(), "EradoConfig", "not a valid EradoConfig"),
        (EradoConfig().to_json(), "ExperimentalConfig", "not a valid ExperimentalConfig"),
        ('{"$type": "<class \'os.system\'>", "$data": {}}', None, "not a valid CompilerConfig"),
        (
            json.dumps({"$type": BASE_TYPE, "$data": {}, "$external": {"noise_model": 3}}),
            "ExperimentalConfig",
            "not a valid ExperimentalConfig",
        ),
    ],
)
def test_snapshot_errors_are_value_errors(
    config_json: str, config_type: str | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        config_from_snapshot(config_json, config_type)


def test_snapshot_json_must_be_a_string() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        config_from_snapshot({"$type": BASE_TYPE}, "CompilerConfig")  # type: ignore[arg-type]


# --- shots_of ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "shots"),
    [
        (None, DEFAULT_SHOTS),
        (CompilerConfig(), 1000),
        (CompilerConfig(repeats=5), 5),
        (ExperimentalConfig(repeats=7, noise=True), 7),
        (ExperimentalConfig(), 1000),
        (EradoConfig(), 1000),
        (EradoConfig(repeats=3), 3),
    ],
)
def test_shots_of(config: CompilerConfig | EradoConfig | None, shots: int) -> None:
    assert shots_of(config) == shots
