"""Check on validation whether refitting on the training and validation rows would help.

The `final` stage trains on the training part and keeps each member's weights from the epoch
with the lowest validation loss. The usual alternative refits each member on training and
validation rows together for the epoch count early stopping found, leaving no rows to check
the refit on. This script tests that alternative without touching a test part.

For each `split.seed` it keeps the validation part V for scoring. It splits the training part
again, stratified by HouseCategory, into an inner training part T1 and an inner validation part
T2 in the pipeline's own ratio of 70:15. The preprocessing is fitted on T1. Then, for an
ensemble of `final.ensemble_size` networks of the `train` configuration:

- early_stopping: each member trains on T1, stops early on T2 and keeps its best epoch's
  weights, as `final` does;
- refit: each member trains again with the same seed on T1 and T2 for the number of epochs
  at which its early_stopping run had the lowest T2 loss, and keeps the last epoch's weights.

Both are scored on V. Run from the repository root after `dvc repro derive_category`:

    python benchmarks/refit_on_validation.py
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import warnings
from dataclasses import replace

import lightning.pytorch as pl
import numpy as np
import torch
from compare_on_validation import score_cells
from sklearn.model_selection import train_test_split
from split_seeds import train_setup

from house_multitask.config import SplitParams, TrainConfig
from house_multitask.data.io import read_parquet
from house_multitask.data.split import split_frame
from house_multitask.experiment import EncodedData, average_predictions, score_outputs
from house_multitask.features.inputs import ModelInputs
from house_multitask.features.preprocess import Preprocessor
from house_multitask.processes import map_in_processes
from house_multitask.schema import CATEGORY_COLUMN
from house_multitask.training import (
    EpochOfBatches,
    InMemoryBatches,
    Predictions,
    build_module,
    configure_torch,
    fit_model,
    predict,
)

KEYS = ("rmse", "rmsle", "accuracy", "f1_macro")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=0.001, help="learning rate (default 0.001)")
    parser.add_argument("--split-seeds", nargs="+", type=int, default=[42, 0, 1, 2, 3, 4])
    parser.add_argument("--processes", type=int, default=2, help="members trained at once")
    parser.add_argument("--labelled", default="data/labelled/train.parquet")
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args()


def nested_split(labelled, params: dict, split_seed: int) -> EncodedData:
    """Encode T1 as "train", T2 as "val" and the split's validation part V as "test"."""
    split = SplitParams.from_dict({**params["split"], "seed": split_seed})
    parts = split_frame(labelled, split, CATEGORY_COLUMN)
    inner_val_share = split.val_share / (split.train_share + split.val_share)
    inner_train, inner_val = train_test_split(
        parts["train"],
        test_size=inner_val_share,
        random_state=split_seed,
        stratify=parts["train"][CATEGORY_COLUMN],
    )
    ordinal = params.get("encode_scale", {}).get("ordinal_quality", False)
    preprocessor = Preprocessor.fit(inner_train, ordinal_quality=ordinal)
    frames = {
        name: preprocessor.transform(part)[0]
        for name, part in (("train", inner_train), ("val", inner_val), ("test", parts["val"]))
    }
    return EncodedData(preprocessor, frames)


def concatenate(first: ModelInputs, second: ModelInputs) -> ModelInputs:
    """Stack two splits' tensors into one training set."""
    return ModelInputs(
        torch.cat([first.numeric, second.numeric]),
        torch.cat([first.codes, second.codes]),
        torch.cat([first.price_target, second.price_target]),
        torch.cat([first.category, second.category]),
    )


def early_stopping_member(
    config: TrainConfig, inputs: dict[str, ModelInputs], cardinalities: list[int]
) -> tuple[Predictions, int]:
    """Train as `final` does; return the predictions on V and the epochs up to the best one."""
    with tempfile.TemporaryDirectory(prefix="refit-") as folder:
        fit = fit_model(
            config, inputs["train"], inputs["val"], cardinalities, checkpoint_dir=folder
        )
        best_epoch = torch.load(f"{folder}/best.ckpt", weights_only=True)["epoch"]
    return predict(fit.module, inputs["test"]), best_epoch + 1


def refit_member(
    config: TrainConfig, rows: ModelInputs, scored: ModelInputs, cardinalities: list[int]
) -> Predictions:
    """Train for exactly `config.max_epochs` epochs on `rows`; predict `scored`."""
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = build_module(config, rows, cardinalities)
    batches = EpochOfBatches(InMemoryBatches(rows.tensors(), config.batch_size, True, config.seed))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=config.max_epochs,
        min_epochs=config.max_epochs,
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    with warnings.catch_warnings():
        # The module defines a validation step; a refit has no validation rows by design.
        warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
        trainer.fit(module, train_dataloaders=batches)
    module.eval()
    return predict(module, scored)


def compare_split(
    config: TrainConfig, data: EncodedData, seeds: list[int], processes: int
) -> tuple[dict, dict, list[int]]:
    """Score both protocols on V; return their metrics and the members' epoch counts."""
    inputs = data.inputs(config)
    cardinalities = data.preprocessor.cardinalities()

    def first_pass(seed: int) -> tuple[Predictions, int]:
        return early_stopping_member(replace(config, seed=seed), inputs, cardinalities)

    stopped = map_in_processes(first_pass, seeds, processes)
    epochs = [epoch for _, epoch in stopped]
    rows = concatenate(inputs["train"], inputs["val"])

    def second_pass(seed_and_epochs: tuple[int, int]) -> Predictions:
        seed, count = seed_and_epochs
        member = replace(config, seed=seed, max_epochs=count, min_epochs=count)
        return refit_member(member, rows, inputs["test"], cardinalities)

    refitted = map_in_processes(second_pass, list(zip(seeds, epochs, strict=True)), processes)
    scored = {}
    for name, members in (("early_stopping", [p for p, _ in stopped]), ("refit", refitted)):
        outputs = average_predictions(members)
        scored[name] = score_outputs(config, data, "test", inputs["test"], outputs)[0]
    return scored["early_stopping"], scored["refit"], epochs


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    configure_torch()
    params, base, seeds = train_setup(args.params)
    config = replace(base, lr=args.lr)
    labelled = read_parquet(args.labelled)
    scores: dict[str, list[dict]] = {"early_stopping": [], "refit": []}
    print("| split.seed | protocol | RMSE | RMSLE | accuracy | macro F1 | epochs |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | --- |")

    for split_seed in args.split_seeds:
        data = nested_split(labelled, params, split_seed)
        stopped, refitted, epochs = compare_split(config, data, seeds, args.processes)
        for name, metrics in (("early_stopping", stopped), ("refit", refitted)):
            scores[name].append(metrics)
            cells = score_cells(metrics)
            print(f"| {split_seed} | {name} | {cells} | {epochs} |", flush=True)

    for name, runs in scores.items():
        means = {key: float(np.mean([run[key] for run in runs])) for key in KEYS}
        print(f"| mean | {name} | {score_cells(means)} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
