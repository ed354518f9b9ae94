"""Parameter validation: every rejected value names its key and the allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from house_multitask.config import (
    ACTIVATIONS,
    CleanParams,
    SplitParams,
    TrainConfig,
    TuneParams,
    resolve_lr,
)
from house_multitask.errors import ParamsError

ACTIVATION_LIST = "relu, leaky_relu, sigmoid, tanh"


@pytest.fixture(scope="module")
def params(repo_root: Path) -> dict:
    """The repository's params.yaml."""
    return yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))


def test_params_yaml_train_section_is_valid(params: dict) -> None:
    config = TrainConfig.from_dict(params["train"])

    assert config.hidden_sizes == tuple(params["train"]["hidden_sizes"])


def test_params_yaml_every_ablation_variant_is_valid(params: dict) -> None:
    base = TrainConfig.from_dict(params["ablate"]["base"], "ablate.base")

    for name, changes in params["ablate"]["variants"].items():
        assert base.override(changes, f"ablate.variants.{name}").to_dict()


def test_params_yaml_other_sections_are_valid(params: dict) -> None:
    assert CleanParams.from_dict(params["clean"]).max_missing_share == 0.10
    assert SplitParams.from_dict(params["split"]).train_share == 0.70
    assert TuneParams.from_dict(params["tune"]).n_trials >= 1


def test_train_config_defaults_are_study_network() -> None:
    config = TrainConfig()

    assert (config.hidden_sizes, config.head_size) == ((36, 18), 10)


@pytest.mark.parametrize("key", ["shared_activation", "head_activation"])
def test_train_config_unknown_activation(key: str) -> None:
    with pytest.raises(
        ParamsError, match=f"train.{key}='gelu' is not allowed; use one of: {ACTIVATION_LIST}$"
    ):
        TrainConfig.from_dict({key: "gelu"})


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("optimizer", "adam, adamw, rmsprop, sgd"),
        ("price_loss", "mse, l1, huber"),
        ("aggregation", "sum, mean, geometric, weighted_geometric, uncertainty"),
        ("price_target", "raw, log_standardized"),
        ("categorical_input", "label, onehot, embedding"),
    ],
)
def test_train_config_unknown_choice(key: str, allowed: str) -> None:
    with pytest.raises(
        ParamsError, match=f"train.{key}='bogus' is not allowed; use one of: {allowed}$"
    ):
        TrainConfig.from_dict({key: "bogus"})


def test_train_config_activation_case_sensitive() -> None:
    with pytest.raises(ParamsError, match="train.shared_activation='ReLU' is not allowed"):
        TrainConfig.from_dict({"shared_activation": "ReLU"})


@pytest.mark.parametrize("lr", [-0.001, 0, 0.0, 11.0])
def test_train_config_lr_out_of_range(lr: float) -> None:
    with pytest.raises(
        ParamsError, match="train.lr=.* is out of range; it must be a number > 0.0 and <= 10.0"
    ):
        TrainConfig.from_dict({"lr": lr})


@pytest.mark.parametrize("lr", ["fast", None, True, float("nan"), float("inf")])
def test_train_config_lr_not_a_number(lr: object) -> None:
    with pytest.raises(ParamsError, match="train.lr=.* is invalid; it must be a number$"):
        TrainConfig.from_dict({"lr": lr})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("batch_size", 32.0),
        ("batch_size", "32"),
        ("max_epochs", 1.5),
        ("patience", True),
        ("head_size", None),
        ("seed", "0"),
    ],
)
def test_train_config_integer_keys_reject_other_types(key: str, value: object) -> None:
    with pytest.raises(ParamsError, match=f"train.{key}=.* is invalid; it must be an integer$"):
        TrainConfig.from_dict({key: value})


@pytest.mark.parametrize(
    ("key", "value", "bounds"),
    [
        ("batch_size", 0, ">= 1"),
        ("max_epochs", 0, ">= 1"),
        ("patience", 0, ">= 1"),
        ("seed", -1, ">= 0"),
        ("dropout", 0.95, ">= 0.0 and <= 0.9"),
        ("weight_decay", -0.1, ">= 0.0"),
        ("price_weight", 0.0, "> 0.0"),
    ],
)
def test_train_config_number_out_of_range(key: str, value: float, bounds: str) -> None:
    with pytest.raises(ParamsError, match=f"train.{key}=.* is out of range; .* {bounds}$"):
        TrainConfig.from_dict({key: value})


def test_train_config_min_epochs_above_max_epochs() -> None:
    with pytest.raises(ParamsError, match="train.min_epochs=5 is out of range; .*<= 3$"):
        TrainConfig.from_dict({"min_epochs": 5, "max_epochs": 3})


def test_train_config_unknown_key_lists_known_keys() -> None:
    with pytest.raises(
        ParamsError, match="train has unknown key\\(s\\) learning_rate; known keys: .*, lr, "
    ):
        TrainConfig.from_dict({"learning_rate": 0.01})


def test_train_config_unknown_keys_all_named() -> None:
    with pytest.raises(ParamsError, match="unknown key\\(s\\) epochs, learning_rate;"):
        TrainConfig.from_dict({"learning_rate": 0.01, "epochs": 3})


@pytest.mark.parametrize("key", ["ordinal_quality", "use_derived_features"])
def test_train_config_flag_not_boolean(key: str) -> None:
    with pytest.raises(ParamsError, match=f"train.{key}='yes' must be true or false"):
        TrainConfig.from_dict({key: "yes"})


def test_train_config_hidden_sizes_empty() -> None:
    with pytest.raises(ParamsError, match="train.hidden_sizes is empty"):
        TrainConfig.from_dict({"hidden_sizes": []})


def test_train_config_hidden_size_not_integer() -> None:
    with pytest.raises(ParamsError, match="train.hidden_sizes\\[1\\]='x' is invalid"):
        TrainConfig.from_dict({"hidden_sizes": [36, "x"]})


@pytest.mark.parametrize("value", [36, "36, 18"])
def test_train_config_hidden_sizes_not_a_list(value: object) -> None:
    with pytest.raises(ParamsError, match="train.hidden_sizes=.* must be a list of layer widths"):
        TrainConfig.from_dict({"hidden_sizes": value})


def test_train_config_list_becomes_tuple() -> None:
    assert TrainConfig.from_dict({"hidden_sizes": [8, 4]}).hidden_sizes == (8, 4)


def test_train_config_section_not_a_mapping() -> None:
    with pytest.raises(ParamsError, match="ablate.variants.relu must be a mapping of keys"):
        TrainConfig().override("relu", "ablate.variants.relu")


def test_train_config_override_names_section() -> None:
    with pytest.raises(ParamsError, match="ablate.variants.bad.shared_activation='gelu'"):
        TrainConfig().override({"shared_activation": "gelu"}, "ablate.variants.bad")


def test_train_config_override_keeps_other_values() -> None:
    config = TrainConfig(lr=0.01).override({"optimizer": "rmsprop"}, "ablate.variants.rmsprop")

    assert (config.optimizer, config.lr) == ("rmsprop", 0.01)


def test_train_config_to_dict_round_trip() -> None:
    config = TrainConfig(hidden_sizes=(8, 4), lr=0.02)

    assert TrainConfig.from_dict(config.to_dict()) == config


def test_train_config_every_activation_accepted() -> None:
    for activation in ACTIVATIONS:
        assert TrainConfig.from_dict({"shared_activation": activation}).shared_activation


@pytest.mark.parametrize("share", [-0.1, 1.5, "high"])
def test_clean_params_invalid_share(share: object) -> None:
    with pytest.raises(ParamsError, match="clean.max_missing_share="):
        CleanParams.from_dict({"max_missing_share": share})


def test_clean_params_unknown_key() -> None:
    with pytest.raises(
        ParamsError,
        match="clean has unknown key\\(s\\) max_missing; known keys: max_missing_share$",
    ):
        CleanParams.from_dict({"max_missing": 0.1})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("train_share", 0.0, "split.train_share=0.0 is out of range; it must be a number > 0.0"),
        ("val_share", -0.15, "split.val_share=-0.15 is out of range"),
        ("test_share", "15%", "split.test_share='15%' is invalid; it must be a number"),
        ("seed", -1, "split.seed=-1 is out of range; it must be an integer >= 0"),
        ("seed", 4.2, "split.seed=4.2 is invalid; it must be an integer"),
    ],
)
def test_split_params_invalid_value(key: str, value: object, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        SplitParams.from_dict({key: value})


def test_split_params_unknown_key() -> None:
    with pytest.raises(
        ParamsError,
        match="split has unknown key\\(s\\) train; known keys: seed, test_share, train_share, "
        "val_share$",
    ):
        SplitParams.from_dict({"train": 0.7})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"n_trials": 0}, "tune.n_trials=0 is out of range; it must be an integer >= 1"),
        ({"lr_low": -1e-4}, "tune.lr_low=-0.0001 is out of range; it must be a number > 0.0"),
        ({"lr_low": 0.1, "lr_high": 0.01}, "tune.lr_low=0.1 must be below tune.lr_high=0.01"),
        ({"lr_low": 0.1, "lr_high": 0.1}, "tune.lr_low=0.1 must be below tune.lr_high=0.1"),
        ({"storage": "data/optuna.db"}, "tune.storage='data/optuna.db' is not a database URL"),
        ({"study_name": ""}, "tune.study_name must be a non-empty string"),
        ({"pruner_warmup_epochs": -1}, "tune.pruner_warmup_epochs=-1 is out of range"),
    ],
)
def test_tune_params_invalid_value(values: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        TuneParams.from_dict(values)


def test_tune_params_unknown_key() -> None:
    with pytest.raises(ParamsError, match="tune has unknown key\\(s\\) trials; known keys: "):
        TuneParams.from_dict({"trials": 5})


def test_resolve_lr_tuned_uses_tuned_value() -> None:
    assert resolve_lr("tuned", 0.0374) == 0.0374


def test_resolve_lr_number_overrides_tuned() -> None:
    assert resolve_lr(0.01, 0.0374) == 0.01


def test_resolve_lr_numeric_string() -> None:
    assert resolve_lr("1e-3", None) == 0.001


def test_resolve_lr_tuned_without_tune_result() -> None:
    with pytest.raises(
        ParamsError, match="lr=tuned but the tune stage wrote no best learning rate"
    ):
        resolve_lr("tuned", None)


@pytest.mark.parametrize("value", [-0.01, 0, 20])
def test_resolve_lr_out_of_range(value: float) -> None:
    with pytest.raises(ParamsError, match=f"lr={value!r} is out of range"):
        resolve_lr(value, 0.0374)


def test_resolve_lr_unknown_word() -> None:
    with pytest.raises(
        ParamsError, match="lr='best' is invalid; use 'tuned' or a positive number"
    ):
        resolve_lr("best", 0.0374)


def test_train_config_reads_exponent_strings():
    # PyYAML loads 1e-3 (no decimal point) as the string '1e-3'.
    config = TrainConfig.from_dict({"lr": "1e-3", "weight_decay": "5e-4"})

    assert config.lr == 0.001
    assert config.weight_decay == 0.0005


def test_train_config_rejects_non_numeric_string():
    with pytest.raises(ParamsError, match=r"train.lr='fast' is invalid; it must be a number"):
        TrainConfig.from_dict({"lr": "fast"})
