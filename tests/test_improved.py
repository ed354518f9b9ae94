"""Tests of the improved network's options: each trains, predicts finite prices, and ensembles."""

from __future__ import annotations

from dataclasses import replace

import lightning.pytorch as pl
import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from conftest import build_raw_frame

from house_multitask.config import FinalParams, TrainConfig, TuneParams
from house_multitask.errors import ModelDirError, ParamsError
from house_multitask.experiment import (
    average_predictions,
    train_and_score,
    train_ensemble_and_score,
)
from house_multitask.features.inputs import build_inputs, numeric_input_columns, piecewise_linear
from house_multitask.features.preprocess import Preprocessor, _tree_thresholds
from house_multitask.models.module import MultiTaskModule
from house_multitask.training import Predictions, fit_model, predict
from house_multitask.tuning import best_settings, suggest_settings

TINY = TrainConfig(max_epochs=2, patience=1, batch_size=8)

OPTIONS = {
    "onehot": {"categorical_input": "onehot"},
    "embedding": {"categorical_input": "embedding"},
    "derived": {"use_derived_features": True},
    "log_target": {"price_target": "log_standardized"},
    "piecewise_linear": {"numeric_encoding": "piecewise_linear", "use_derived_features": True},
    "piecewise_linear_tree": {
        "numeric_encoding": "piecewise_linear_tree",
        "use_derived_features": True,
    },
    "uncertainty": {"aggregation": "uncertainty"},
    "input_l1": {"input_l1": 1e-3},
    "dropout": {"dropout": 0.2},
    "weight_decay": {"optimizer": "adamw", "weight_decay": 1e-3},
    "wide": {"hidden_sizes": [64, 32], "head_size": 16},
    "price_skip": {"price_skip": True},
    "cosine": {"lr_schedule": "cosine"},
}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_option_trains_finite_prices(synthetic_encoded_data, option):
    config = TINY.override(OPTIONS[option], option)
    run = train_and_score(config, synthetic_encoded_data, "test")
    assert np.isfinite(run.price_pred.to_numpy()).all()


def test_piecewise_linear_below_bin_is_zero():
    assert piecewise_linear(np.array([0.1]), 0.2, 0.4)[0] == 0.0


def test_piecewise_linear_above_bin_is_one():
    assert piecewise_linear(np.array([0.9]), 0.2, 0.4)[0] == 1.0


def test_piecewise_linear_inside_bin_is_linear():
    assert piecewise_linear(np.array([0.25]), 0.2, 0.4)[0] == pytest.approx(0.25)


def test_bin_edges_sorted_inside_unit_range(synthetic_encoded_data):
    edges = synthetic_encoded_data.preprocessor.bin_edges["YearBuilt"]
    assert edges == sorted(edges)
    assert edges[0] >= 0.0
    assert edges[-1] <= 1.0


def test_bin_edges_survive_state_round_trip(synthetic_encoded_data):
    state = synthetic_encoded_data.preprocessor.to_dict()
    assert Preprocessor.from_dict(state).bin_edges == state["bin_edges"]


def test_piecewise_linear_adds_one_input_per_bin(synthetic_encoded_data):
    preprocessor = synthetic_encoded_data.preprocessor
    plain = TrainConfig(use_derived_features=True)
    binned = replace(plain, numeric_encoding="piecewise_linear")
    bins = sum(len(edges) - 1 for edges in preprocessor.bin_edges.values())
    extra = len(numeric_input_columns(preprocessor, binned)) - len(
        numeric_input_columns(preprocessor, plain)
    )
    assert extra == bins


@pytest.mark.parametrize(
    ("encoding", "field", "kind"),
    [
        ("piecewise_linear", "bin_edges", "quantile"),
        ("piecewise_linear_tree", "tree_bin_edges", "target-aware"),
    ],
)
def test_piecewise_linear_without_edges_raises(synthetic_encoded_data, encoding, field, kind):
    state = synthetic_encoded_data.preprocessor.to_dict()
    del state[field]
    old = Preprocessor.from_dict(state)
    config = TrainConfig(numeric_encoding=encoding)
    with pytest.raises(ModelDirError, match=f"needs {kind}.*rerun the encode_scale stage"):
        build_inputs(synthetic_encoded_data.frames["test"], old, config)


def test_tree_thresholds_find_class_boundary():
    values = np.arange(100, dtype="float64")
    classes = (values >= 37).astype("int64")
    assert _tree_thresholds(values, classes, classify=True) == [36.5]


def test_tree_bin_edges_keep_quantile_edges(synthetic_encoded_data):
    preprocessor = synthetic_encoded_data.preprocessor
    for column, edges in preprocessor.bin_edges.items():
        tree_edges = preprocessor.tree_bin_edges[column]
        assert set(edges) <= set(tree_edges)
        assert tree_edges == sorted(tree_edges)


def test_tree_bin_edges_survive_state_round_trip(synthetic_encoded_data):
    state = synthetic_encoded_data.preprocessor.to_dict()
    assert Preprocessor.from_dict(state).tree_bin_edges == state["tree_bin_edges"]


def test_no_category_no_tree_edges():
    frame = build_raw_frame(rows_per_class=3).fillna(0)
    assert Preprocessor.fit(frame).tree_bin_edges == {}


def test_numeric_encoding_rejects_unknown_value():
    with pytest.raises(ParamsError, match="train.numeric_encoding='bins' is not allowed"):
        TrainConfig.from_dict({"numeric_encoding": "bins"})


def test_input_l1_rejects_negative_value():
    with pytest.raises(ParamsError, match="train.input_l1=-1.0 is out of range"):
        TrainConfig.from_dict({"input_l1": -1.0})


def test_input_l1_adds_penalty_to_training_loss(synthetic_encoded_data):
    inputs = synthetic_encoded_data.inputs(TINY)["train"]
    losses = {}
    for strength in (0.0, 0.1):
        torch.manual_seed(0)
        config = replace(TINY, input_l1=strength)
        module = MultiTaskModule(config.to_dict(), inputs.numeric.shape[1], [])
        losses[strength] = float(module.batch_loss(inputs.tensors()).detach())
    weights = float(module.net.shared[0].weight.abs().sum())
    assert losses[0.1] == pytest.approx(losses[0.0] + 0.1 * weights, rel=1e-5)


def test_input_l1_penalises_price_skip_weights(synthetic_encoded_data):
    inputs = synthetic_encoded_data.inputs(TINY)["train"]
    config = replace(TINY, input_l1=0.1, price_skip=True)
    module = MultiTaskModule(config.to_dict(), inputs.numeric.shape[1], [])
    shared = float(module.net.shared[0].weight.abs().sum())
    skip = float(module.net.price_skip.weight.abs().sum())
    assert float(module._input_penalty()) == pytest.approx(0.1 * (shared + skip), rel=1e-5)


def test_price_skip_adds_linear_map_of_inputs(synthetic_encoded_data):
    inputs = synthetic_encoded_data.inputs(TINY)["train"]
    torch.manual_seed(0)
    module = MultiTaskModule(replace(TINY, price_skip=True).to_dict(), inputs.numeric.shape[1], [])
    net = module.net
    with torch.no_grad():
        price, logits = net(inputs.numeric, inputs.codes)
        deep = net.price_head(net.shared(inputs.numeric)).squeeze(-1)
        linear = net.price_skip(inputs.numeric).squeeze(-1)
    assert torch.allclose(price, deep + linear)
    assert not torch.allclose(linear, torch.zeros_like(linear))


def test_price_skip_must_be_boolean():
    with pytest.raises(ParamsError, match="train.price_skip='yes' must be true or false"):
        TrainConfig.from_dict({"price_skip": "yes"})


class EpochLearningRates(pl.Callback):
    """Record the learning rate each training epoch starts with."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("constant", [0.01] * 4),
        # 0.01 * (1 + cos(pi * epoch / 4)) / 2 for epochs 0 to 3.
        ("cosine", [0.01, 0.0085355, 0.005, 0.0014645]),
    ],
)
def test_lr_schedule_sets_learning_rate_per_epoch(synthetic_encoded_data, schedule, expected):
    config = replace(TINY, lr=0.01, lr_schedule=schedule, max_epochs=4, min_epochs=4, patience=9)
    inputs = synthetic_encoded_data.inputs(config)
    rates = EpochLearningRates()
    fit_model(config, inputs["train"], inputs["val"], [], callbacks=[rates])
    assert rates.rates == pytest.approx(expected, rel=1e-4)


def test_lr_schedule_rejects_unknown_value():
    with pytest.raises(ParamsError, match="train.lr_schedule='step' is not allowed"):
        TrainConfig.from_dict({"lr_schedule": "step"})


def test_average_predictions_means_members():
    first = Predictions(np.array([1.0, 3.0]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    second = Predictions(np.array([3.0, 5.0]), np.array([[0.0, 1.0], [0.0, 1.0]]))
    combined = average_predictions([first, second])
    assert combined.price_output.tolist() == [2.0, 4.0]
    assert combined.probabilities.tolist() == [[0.5, 0.5], [0.0, 1.0]]


def test_average_predictions_rejects_empty():
    with pytest.raises(ValueError, match="at least one member"):
        average_predictions([])


@pytest.fixture(scope="module")
def ensemble_run(synthetic_encoded_data):
    config = TINY.override({"price_target": "log_standardized"}, "test")
    return train_ensemble_and_score(config, synthetic_encoded_data, "test", [0, 1])


def test_ensemble_keeps_every_member(ensemble_run):
    assert len(ensemble_run.networks) == 2


def test_ensemble_members_differ(ensemble_run):
    first, second = (net.shared[0].weight for net in ensemble_run.networks)
    assert not torch.equal(first, second)


def test_ensemble_probabilities_average_members(synthetic_encoded_data, ensemble_run):
    config = TINY.override({"price_target": "log_standardized"}, "test")
    test_inputs = synthetic_encoded_data.inputs(config)["test"]
    members = [predict(net, test_inputs).probabilities for net in ensemble_run.networks]
    expected = pd.DataFrame(np.mean(members, axis=0), index=ensemble_run.probabilities.index)
    pd.testing.assert_frame_equal(ensemble_run.probabilities, expected, check_names=False)


def test_ensemble_price_is_geometric_mean_for_log_target(synthetic_encoded_data, ensemble_run):
    preprocessor = synthetic_encoded_data.preprocessor
    config = TINY.override({"price_target": "log_standardized"}, "test")
    test_inputs = synthetic_encoded_data.inputs(config)["test"]
    outputs = [predict(net, test_inputs).price_output for net in ensemble_run.networks]
    log_prices = [
        output * preprocessor.price_log_std + preprocessor.price_log_mean for output in outputs
    ]
    expected = np.exp(np.mean(log_prices, axis=0))
    np.testing.assert_allclose(ensemble_run.price_pred.to_numpy(), expected, rtol=1e-6)


def test_ensemble_metrics_count_members(ensemble_run):
    assert ensemble_run.metrics["members"] == 2


def test_final_params_rejects_zero_members():
    with pytest.raises(ParamsError, match="final.ensemble_size=0 is out of range"):
        FinalParams.from_dict({"ensemble_size": 0})


def test_suggest_settings_lr_only_by_default():
    trial = optuna.trial.FixedTrial({"lr": 0.01})
    assert suggest_settings(trial, TuneParams()) == {"lr": 0.01}


def test_suggest_settings_samples_extra_dimensions():
    params = TuneParams(
        weight_decay_range=(1e-5, 1e-2),
        dropout_range=(0.0, 0.3),
        input_l1_range=(1e-4, 1e-2),
        hidden_sizes_choices=((64, 32), (128, 64)),
    )
    values = {
        "lr": 0.01,
        "weight_decay": 1e-3,
        "dropout": 0.1,
        "input_l1": 1e-3,
        "hidden_sizes": "128x64",
    }
    settings = suggest_settings(optuna.trial.FixedTrial(values), params)
    assert settings == {**values, "hidden_sizes": (128, 64)}


def test_best_settings_decodes_hidden_sizes():
    assert best_settings({"lr": 0.1, "hidden_sizes": "64x32"})["hidden_sizes"] == [64, 32]


def test_tune_params_rejects_reversed_range():
    with pytest.raises(ParamsError, match="tune.dropout_range=\\[0.3, 0.1\\] is invalid"):
        TuneParams.from_dict({"dropout_range": [0.3, 0.1]})


def test_tune_params_rejects_empty_width_list():
    with pytest.raises(ParamsError, match="tune.hidden_sizes_choices\\[0\\]=\\[\\] is invalid"):
        TuneParams.from_dict({"hidden_sizes_choices": [[]]})
