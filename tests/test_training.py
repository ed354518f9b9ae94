"""Training with the Lightning Trainer: determinism, early stopping, divergence, checkpoints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from torch.nn import functional

from house_multitask.config import TrainConfig
from house_multitask.data.io import write_json
from house_multitask.experiment import EncodedData, score_over_seeds, train_and_score
from house_multitask.model_dir import build_network
from house_multitask.models.losses import aggregate_losses, price_loss
from house_multitask.training import (
    MONITOR,
    InMemoryBatches,
    configure_torch,
    fit_model,
    predict,
)

# Small enough to train in well under a second on the synthetic table.
FAST = TrainConfig(max_epochs=3, patience=10, batch_size=8, lr=0.01)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> None:
    configure_torch()


class MetricsRecorder(Callback):
    """Keeps the logged metrics after each validation and the EarlyStopping state at the end."""

    def __init__(self) -> None:
        self.logged: list[dict[str, float]] = []
        self.stopping_reason: EarlyStoppingReason | None = None

    def on_validation_end(self, trainer, pl_module) -> None:
        self.logged.append({key: float(value) for key, value in trainer.callback_metrics.items()})

    def on_train_end(self, trainer, pl_module) -> None:
        self.stopping_reason = trainer.early_stopping_callback.stopping_reason


def fit(data: EncodedData, config: TrainConfig, **kwargs):
    inputs = data.inputs(config)
    return fit_model(
        config, inputs["train"], inputs["val"], data.preprocessor.cardinalities(), **kwargs
    )


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in module.state_dict().items()}


def same_weights(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> bool:
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def test_train_and_score_deterministic(synthetic_encoded_data: EncodedData) -> None:
    first = train_and_score(FAST, synthetic_encoded_data, "val")
    second = train_and_score(FAST, synthetic_encoded_data, "val")

    assert first.metrics == second.metrics


def test_fit_model_deterministic_weights(synthetic_encoded_data: EncodedData) -> None:
    first = fit(synthetic_encoded_data, FAST)
    second = fit(synthetic_encoded_data, FAST)

    assert same_weights(weights(first.module), weights(second.module))


def test_fit_model_seed_changes_weights(synthetic_encoded_data: EncodedData) -> None:
    first = fit(synthetic_encoded_data, FAST)
    other = fit(synthetic_encoded_data, TrainConfig(**{**FAST.to_dict(), "seed": 1}))

    assert not same_weights(weights(first.module), weights(other.module))


def test_fit_model_logs_monitored_key(synthetic_encoded_data: EncodedData) -> None:
    recorder = MetricsRecorder()

    fit(synthetic_encoded_data, FAST, callbacks=[recorder])

    assert MONITOR == "val/loss"
    assert all(MONITOR in logged for logged in recorder.logged)


def test_fit_model_logs_task_losses(synthetic_encoded_data: EncodedData) -> None:
    recorder = MetricsRecorder()

    fit(synthetic_encoded_data, FAST, callbacks=[recorder])

    expected = {"val/loss_price", "val/loss_category", "train/loss"}
    assert expected <= set(recorder.logged[-1])


def test_fit_model_runs_max_epochs_without_stop(synthetic_encoded_data: EncodedData) -> None:
    result = fit(synthetic_encoded_data, FAST)

    assert result.epochs == FAST.max_epochs


def test_early_stopping_stops_before_max_epochs(synthetic_encoded_data: EncodedData) -> None:
    # SGD steps of 1e-12 leave float32 weights unchanged, so val/loss never improves and
    # patience 1 runs out after the second epoch.
    config = TrainConfig(optimizer="sgd", lr=1e-12, patience=1, max_epochs=50, batch_size=8)
    recorder = MetricsRecorder()

    result = fit(synthetic_encoded_data, config, callbacks=[recorder])

    assert result.epochs < config.max_epochs
    assert recorder.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED


def test_fit_model_loads_best_weights(synthetic_encoded_data: EncodedData) -> None:
    config = TrainConfig(max_epochs=8, patience=8, batch_size=8, lr=0.05)
    recorder = MetricsRecorder()
    result = fit(synthetic_encoded_data, config, callbacks=[recorder])
    val = synthetic_encoded_data.inputs(config)["val"]

    with torch.no_grad():
        loss = result.module._shared_step(val.tensors())[0].item()

    assert loss == pytest.approx(result.best_val_loss, rel=1e-5)
    assert result.best_val_loss == pytest.approx(min(m[MONITOR] for m in recorder.logged))


def test_fit_model_writes_checkpoint(tmp_path: Path, synthetic_encoded_data) -> None:
    result = fit(synthetic_encoded_data, FAST, checkpoint_dir=tmp_path / "ckpt")

    state = torch.load(result.best_checkpoint, map_location="cpu", weights_only=True)

    assert result.best_checkpoint == tmp_path / "ckpt" / "best.ckpt"
    assert "state_dict" in state


def test_fit_model_without_checkpoint_dir_leaves_no_path(synthetic_encoded_data) -> None:
    assert fit(synthetic_encoded_data, FAST).best_checkpoint is None


DIVERGING = TrainConfig(
    optimizer="sgd", lr=10.0, price_loss="mse", aggregation="sum", max_epochs=5, batch_size=8
)


def test_fit_model_diverging_best_loss_valid(synthetic_encoded_data) -> None:
    result = fit(synthetic_encoded_data, DIVERGING)

    assert result.best_val_loss is None or math.isfinite(result.best_val_loss)


def test_diverging_run_metrics_json_has_no_nan(tmp_path: Path, synthetic_encoded_data) -> None:
    run = train_and_score(DIVERGING, synthetic_encoded_data, "val")
    path = tmp_path / "metrics.json"

    write_json(run.metrics, path)

    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text
    assert "Infinity" not in text
    json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON {token}"))


def test_diverging_run_reports_null_best_loss(synthetic_encoded_data) -> None:
    run = train_and_score(DIVERGING, synthetic_encoded_data, "val")

    assert run.metrics["best_val_loss"] is None


def test_score_over_seeds_summary(tmp_path: Path, synthetic_encoded_data) -> None:
    summary = score_over_seeds(
        FAST, synthetic_encoded_data, [0, 1], "val", checkpoint_root=tmp_path
    )

    assert summary["seeds"] == 2
    assert set(summary["per_seed"]) == {"seed_0", "seed_1"}
    assert (tmp_path / "seed_1" / "best.ckpt").exists()


def test_predict_probabilities_sum_to_one(synthetic_encoded_data: EncodedData) -> None:
    result = fit(synthetic_encoded_data, FAST)
    test = synthetic_encoded_data.inputs(FAST)["test"]

    outputs = predict(result.module, test)

    assert outputs.probabilities.shape == (len(test), 6)
    assert outputs.probabilities.sum(axis=1) == pytest.approx([1.0] * len(test))


@pytest.mark.parametrize("categorical_input", ["onehot", "embedding"])
def test_fit_model_other_categorical_inputs(synthetic_encoded_data, categorical_input) -> None:
    config = TrainConfig(**{**FAST.to_dict(), "categorical_input": categorical_input})

    run = train_and_score(config, synthetic_encoded_data, "val")

    assert 0.0 <= run.metrics["accuracy"] <= 1.0


def test_fit_model_uncertainty_aggregation(synthetic_encoded_data: EncodedData) -> None:
    config = TrainConfig(**{**FAST.to_dict(), "aggregation": "uncertainty"})

    result = fit(synthetic_encoded_data, config)

    assert result.module.log_variances.shape == (2,)


def test_in_memory_batches_cover_every_row() -> None:
    batches = InMemoryBatches([torch.arange(10)], batch_size=4, shuffle=True, seed=3)

    rows = torch.cat([batch[0] for batch in batches])

    assert len(batches) == 3
    assert sorted(rows.tolist()) == list(range(10))


def test_in_memory_batches_order_depends_on_seed() -> None:
    first = InMemoryBatches([torch.arange(50)], batch_size=50, shuffle=True, seed=0)
    second = InMemoryBatches([torch.arange(50)], batch_size=50, shuffle=True, seed=0)
    other = InMemoryBatches([torch.arange(50)], batch_size=50, shuffle=True, seed=1)

    order = next(iter(first))[0].tolist()

    assert order == next(iter(second))[0].tolist()
    assert order != next(iter(other))[0].tolist()


def test_in_memory_batches_reshuffle_each_epoch() -> None:
    batches = InMemoryBatches([torch.arange(50)], batch_size=50, shuffle=True, seed=0)

    assert next(iter(batches))[0].tolist() != next(iter(batches))[0].tolist()


def test_in_memory_batches_keep_rows_aligned() -> None:
    batches = InMemoryBatches(
        [torch.arange(10), torch.arange(10) * 2], batch_size=3, shuffle=True, seed=0
    )

    for left, right in batches:
        assert torch.equal(right, left * 2)


def test_in_memory_batches_without_shuffle_keep_order() -> None:
    batches = InMemoryBatches([torch.arange(5)], batch_size=2, shuffle=False)

    assert [batch[0].tolist() for batch in batches] == [[0, 1], [2, 3], [4]]


def plain_loss(net: torch.nn.Module, config: TrainConfig, batch) -> torch.Tensor:
    numeric, codes, price_target, category = batch
    price_output, logits = net(numeric, codes)
    return aggregate_losses(
        config.aggregation,
        price_loss(config.price_loss, price_output, price_target),
        functional.cross_entropy(logits, category),
        config.price_weight,
    )


def plain_loop_best_weights(data: EncodedData, config: TrainConfig) -> dict[str, torch.Tensor]:
    """Train with a bare PyTorch loop over the same batches; return the best epoch's weights."""
    inputs = data.inputs(config)
    torch.manual_seed(config.seed)
    net = build_network(
        config, inputs["train"].numeric.shape[1], data.preprocessor.cardinalities()
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    batches = InMemoryBatches(inputs["train"].tensors(), config.batch_size, True, config.seed)
    best_loss, best_state = float("inf"), None

    for _ in range(config.max_epochs):
        net.train()
        for batch in batches:
            optimizer.zero_grad()
            plain_loss(net, config, batch).backward()
            optimizer.step()

        net.eval()
        with torch.no_grad():
            val_loss = float(plain_loss(net, config, inputs["val"].tensors()))
        if val_loss < best_loss:
            best_loss, best_state = val_loss, weights(net)
    return best_state


def test_fit_model_equals_plain_loop(synthetic_encoded_data: EncodedData) -> None:
    config = TrainConfig(max_epochs=4, patience=10, batch_size=8, lr=0.01, optimizer="adam")

    result = fit(synthetic_encoded_data, config)
    expected = plain_loop_best_weights(synthetic_encoded_data, config)

    assert same_weights(weights(result.module.net), expected)
