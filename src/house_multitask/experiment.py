"""Training and scoring configurations on the encoded splits: what ablate, tune and final share."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch

from house_multitask.config import TrainConfig
from house_multitask.data.io import read_json, read_parquet
from house_multitask.evaluation import HEADLINE_KEYS, evaluate, summarize_runs
from house_multitask.features.inputs import ModelInputs, build_inputs
from house_multitask.features.preprocess import Preprocessor, target_to_price
from house_multitask.outputs import prediction_frame
from house_multitask.processes import map_in_processes
from house_multitask.training import FitResult, Predictions, fit_model, predict

logger = logging.getLogger(__name__)


@dataclass
class EncodedData:
    """The encoded train, val and test frames and the preprocessor fitted on train."""

    preprocessor: Preprocessor
    frames: dict[str, pd.DataFrame]

    @classmethod
    def load(cls, encoded_dir: str | Path, state_path: str | Path) -> EncodedData:
        """Read `train.parquet`, `val.parquet` and `test.parquet` and the fitted state."""
        encoded_dir = Path(encoded_dir)
        preprocessor = Preprocessor.from_dict(read_json(state_path), str(state_path))
        frames = {name: read_parquet(encoded_dir / f"{name}.parquet") for name in SPLITS}
        return cls(preprocessor, frames)

    def fingerprint(self) -> str:
        """SHA-256 over the contents of the three frames and the fitted state."""
        digest = hashlib.sha256(json.dumps(self.preprocessor.to_dict(), sort_keys=True).encode())
        for name in SPLITS:
            hashes = pd.util.hash_pandas_object(self.frames[name], index=False)
            digest.update(hashes.to_numpy().tobytes())
        return digest.hexdigest()

    def inputs(self, config: TrainConfig) -> dict[str, ModelInputs]:
        return {
            name: build_inputs(frame, self.preprocessor, config)
            for name, frame in self.frames.items()
        }


SPLITS = ("train", "val", "test")


@dataclass
class ScoredRun:
    """One trained model and its metrics on the scored split."""

    fit: FitResult
    metrics: dict
    price_pred: pd.Series
    probabilities: pd.DataFrame
    members: list[FitResult] | None = None

    @property
    def networks(self) -> list[torch.nn.Module]:
        """The trained `MultiTaskNet` of each ensemble member (one for a single run)."""
        fits = self.members if self.members else [self.fit]
        return [fit.module.net for fit in fits]

    def predictions_frame(self, ids: pd.Series) -> pd.DataFrame:
        """Id, predicted SalePrice (dollars), predicted HouseCategory and class probabilities."""
        return prediction_frame(ids, self.price_pred.to_numpy(), self.probabilities.to_numpy())


def train_and_score(
    config: TrainConfig,
    data: EncodedData,
    split: str,
    *,
    checkpoint_dir: str | Path | None = None,
    callbacks: tuple[pl.Callback, ...] = (),
    trainer_logger: pl.loggers.Logger | bool = False,
    trainer_options: Mapping[str, object] | None = None,
) -> ScoredRun:
    """Train `config` on the train split (early stopping on val) and score it on `split`.

    `trainer_options` (accelerator, devices, strategy) go to `fit_model`.
    """
    inputs = data.inputs(config)
    fit = fit_model(
        config,
        inputs["train"],
        inputs["val"],
        data.preprocessor.cardinalities(),
        checkpoint_dir=checkpoint_dir,
        callbacks=callbacks,
        trainer_logger=trainer_logger,
        trainer_options=trainer_options,
    )
    metrics, price, probabilities = score_outputs(
        config, data, split, inputs[split], predict(fit.module, inputs[split])
    )
    metrics["epochs"] = fit.epochs
    metrics["best_val_loss"] = fit.best_val_loss
    return ScoredRun(fit, metrics, price, probabilities)


def score_outputs(
    config: TrainConfig, data: EncodedData, split: str, scored: ModelInputs, outputs: Predictions
) -> tuple[dict, pd.Series, pd.DataFrame]:
    """Convert network outputs on `split` to dollars and score both tasks.

    Returns:
        The metrics of `evaluate`, the predicted prices in dollars and the class probabilities,
        both indexed like the split's frame.
    """
    preprocessor = data.preprocessor
    price = target_to_price(
        outputs.price_output,
        config.price_target,
        preprocessor.price_log_mean,
        preprocessor.price_log_std,
    )
    metrics = evaluate(scored.price, price, scored.category.numpy(), outputs.category)
    index = data.frames[split].index
    probabilities = pd.DataFrame(outputs.probabilities, index=index)
    return metrics, pd.Series(price, index=index), probabilities


def score_over_seeds(
    config: TrainConfig,
    data: EncodedData,
    seeds: list[int],
    split: str,
    checkpoint_root: str | Path | None = None,
    logger_for_seed: Callable[[int], pl.loggers.Logger | bool] | None = None,
    processes: int = 1,
) -> dict:
    """Train `config` once per seed and summarise its metrics on `split`.

    Args:
        config: the training configuration; its seed is replaced by each of `seeds`.
        data: the encoded splits.
        seeds: training seeds, one run each.
        split: the split to score, "val" or "test".
        checkpoint_root: folder for each run's best checkpoint as `seed_<n>/best.ckpt`.
        logger_for_seed: returns the Lightning logger of the run with that seed (for example
            `tracking.epoch_logger`), or False for none; no run logs when None.
        processes: runs trained at once in forked processes (see `map_in_processes`); the
            metrics do not depend on it.

    Returns:
        The mean of each headline metric at the top level (the keys `dvc metrics diff` compares),
        their standard deviations under "std" and every run's metrics under "per_seed".
    """

    def run_seed(seed: int) -> dict:
        run = train_and_score(
            replace(config, seed=seed),
            data,
            split,
            checkpoint_dir=_seed_folder(checkpoint_root, seed),
            trainer_logger=False if logger_for_seed is None else logger_for_seed(seed),
        )
        logger.info(
            "seed=%d rmse=%s accuracy=%.4f f1_macro=%.4f epochs=%d",
            seed,
            run.metrics["rmse"],
            run.metrics["accuracy"],
            run.metrics["f1_macro"],
            run.fit.epochs,
        )
        return {key: run.metrics[key] for key in (*HEADLINE_KEYS, "epochs")}

    results = map_in_processes(run_seed, seeds, processes)
    runs = {f"seed_{seed}": result for seed, result in zip(seeds, results, strict=True)}
    summary = summarize_runs(list(runs.values()))
    return {**summary["mean"], "std": summary["std"], "seeds": len(seeds), "per_seed": runs}


def _seed_folder(root: str | Path | None, seed: int) -> Path | None:
    return None if root is None else Path(root) / f"seed_{seed}"


def average_predictions(members: list[Predictions]) -> Predictions:
    """Combine ensemble members the way `house_multitask.predict` does.

    The price outputs are averaged in the network's target space, so for a log-price target the
    ensemble price is the geometric mean of the members' prices; the class probabilities are
    averaged and the predicted class is the most probable one of that average.
    """
    if not members:
        raise ValueError("an ensemble needs at least one member")
    price_output = np.mean([member.price_output for member in members], axis=0)
    probabilities = np.mean([member.probabilities for member in members], axis=0)
    return Predictions(price_output, probabilities)


def train_ensemble_and_score(
    config: TrainConfig,
    data: EncodedData,
    split: str,
    seeds: list[int],
    *,
    checkpoint_root: str | Path | None = None,
    first_logger: pl.loggers.Logger | bool = False,
    trainer_options: Mapping[str, object] | None = None,
    processes: int = 1,
) -> ScoredRun:
    """Train `config` once per seed and score the averaged predictions on `split`.

    Args:
        config: the training configuration; its seed is replaced by each of `seeds`.
        data: the encoded splits.
        seeds: one training seed per ensemble member.
        split: the split to score, "val" or "test".
        checkpoint_root: folder for each member's best checkpoint as `seed_<n>/best.ckpt`.
        first_logger: the Lightning logger of the first member only, so that one set of loss
            curves is recorded; False for none.
        trainer_options: `accelerator`, `devices` and `strategy` for `fit_model`.
        processes: members trained at once in forked processes (see `map_in_processes`); use
            1 with an accelerator or a multi-process strategy.

    Returns:
        A `ScoredRun` whose `fit` is the first member and `members` all of them. Its metrics
        hold `members` (the count), `member_epochs`, `epochs` (the longest member's) and
        `best_val_loss` (the members' mean, None when any member diverged).
    """
    if not seeds:
        raise ValueError("an ensemble needs at least one seed")
    inputs = data.inputs(config)

    def fit_member(seed: int) -> FitResult:
        fit = fit_model(
            replace(config, seed=seed),
            inputs["train"],
            inputs["val"],
            data.preprocessor.cardinalities(),
            checkpoint_dir=_seed_folder(checkpoint_root, seed),
            trainer_logger=first_logger if seed == seeds[0] else False,
            trainer_options=trainer_options,
        )
        logger.info("ensemble member seed=%d epochs=%d", seed, fit.epochs)
        return fit

    fits = map_in_processes(fit_member, seeds, processes)

    scored = inputs[split]
    outputs = average_predictions([predict(fit.module, scored) for fit in fits])
    metrics, price, probabilities = score_outputs(config, data, split, scored, outputs)
    losses = [fit.best_val_loss for fit in fits]
    metrics["members"] = len(fits)
    metrics["member_epochs"] = [fit.epochs for fit in fits]
    metrics["epochs"] = max(fit.epochs for fit in fits)
    metrics["best_val_loss"] = None if None in losses else float(np.mean(losses))
    return ScoredRun(fits[0], metrics, price, probabilities, fits)
