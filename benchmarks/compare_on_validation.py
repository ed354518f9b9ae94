"""Compare variants of the `train` configuration on the validation parts of several splits.

Each variant is a JSON object of `train` keys to override, for example
'{"quantile": {"numeric_encoding": "piecewise_linear"}, "huber": {"price_loss": "huber"}}'.
For each `split.seed` the script splits and encodes the labelled table as the pipeline does. It
trains every variant as an ensemble of `final.ensemble_size` networks (`--ensemble-size`
overrides it) at `--lr`. Then it prints the validation RMSE, RMSLE, accuracy, macro F1 and
class log loss (the mean cross-entropy of the ensemble's class probabilities, which still ranks
variants when every house is classified right). The last rows contain each variant's mean
over the splits. Only validation parts are scored, so no test house enters the choice it
informs. `--drop-large-houses` leaves the training houses with GrLivArea above 4,000 sq ft
out of the training part before the preprocessing is fitted. Run from the repository root
after `dvc repro derive_category`:

    python benchmarks/compare_on_validation.py '{"mse": {}, "huber": {"price_loss": "huber"}}'
    python benchmarks/compare_on_validation.py '{"base": {}}' --drop-large-houses
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace

import numpy as np
from sklearn.metrics import log_loss
from split_seeds import encode_split, train_setup

from house_multitask.data.io import read_parquet
from house_multitask.experiment import ScoredRun, train_ensemble_and_score
from house_multitask.schema import CATEGORY_COLUMN
from house_multitask.training import configure_torch

KEYS = ("rmse", "rmsle", "accuracy", "f1_macro", "log_loss")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", help="JSON object: variant name -> train overrides")
    parser.add_argument("--lr", type=float, default=0.001, help="learning rate (default 0.001)")
    parser.add_argument("--split-seeds", nargs="+", type=int, default=[42, 0, 1, 2, 3, 4])
    parser.add_argument("--drop-large-houses", action="store_true")
    parser.add_argument(
        "--ensemble-size", type=int, help="networks per variant (default final.ensemble_size)"
    )
    parser.add_argument("--processes", type=int, default=2, help="members trained at once")
    parser.add_argument("--labelled", default="data/labelled/train.parquet")
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args()


def class_log_loss(run: ScoredRun, frame) -> float:
    """Return the mean cross-entropy of the run's class probabilities against the true classes."""
    probabilities = run.probabilities.to_numpy(dtype="float64")
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    labels = list(range(probabilities.shape[1]))
    return float(log_loss(frame[CATEGORY_COLUMN].to_numpy(), probabilities, labels=labels))


def score_cells(scores: dict) -> str:
    """Format the RMSE, RMSLE, accuracy and macro F1 cells of a Markdown table row."""
    return (
        f"{scores['rmse']:,.0f} | {scores['rmsle']:.4f} | "
        f"{scores['accuracy']:.4f} | {scores['f1_macro']:.4f}"
    )


def row(split: str, name: str, scores: dict) -> str:
    """Format one Markdown table row of a variant's scores."""
    return f"| {split} | {name} | {score_cells(scores)} | {scores['log_loss']:.4f} |"


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    configure_torch()
    params, base, seeds = train_setup(args.params)
    if args.ensemble_size is not None:
        seeds = list(range(base.seed, base.seed + args.ensemble_size))
    variants = {
        name: replace(base.override(overrides, name), lr=args.lr)
        for name, overrides in json.loads(args.variants).items()
    }
    labelled = read_parquet(args.labelled)
    scores: dict[str, list[dict]] = {name: [] for name in variants}
    print("| split.seed | variant | RMSE | RMSLE | accuracy | macro F1 | log loss |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")

    for split_seed in args.split_seeds:
        data = encode_split(labelled, params, split_seed, args.drop_large_houses)
        for name, config in variants.items():
            run = train_ensemble_and_score(config, data, "val", seeds, processes=args.processes)
            scored = {**run.metrics, "log_loss": class_log_loss(run, data.frames["val"])}
            scores[name].append(scored)
            print(row(str(split_seed), name, scored), flush=True)

    for name, runs in scores.items():
        means = {key: float(np.mean([run[key] for run in runs])) for key in KEYS}
        print(row("mean", name, means))
    return 0


if __name__ == "__main__":
    sys.exit(main())
