"""Compare variants of the `train` configuration on the validation parts of several splits.

Each variant is a JSON object of `train` keys to override, for example
'{"quantile": {"numeric_encoding": "piecewise_linear"}, "huber": {"price_loss": "huber"}}'.
For each `split.seed` the script splits and encodes the labelled table as the pipeline does. It
trains every variant as an ensemble of `final.ensemble_size` networks at `--lr` and prints its
validation RMSE, RMSLE, accuracy and macro F1. The last rows hold each variant's mean over the
splits. Only validation parts are scored, so the choice it informs never sees a test house.
`--drop-large-houses` leaves the training houses with GrLivArea above 4,000 sq ft out of the
training part before the preprocessing is fitted. Run from the repository root after
`dvc repro derive_category`:

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
from split_seeds import encode_split, train_setup

from house_multitask.data.io import read_parquet
from house_multitask.experiment import train_ensemble_and_score
from house_multitask.training import configure_torch

KEYS = ("rmse", "rmsle", "accuracy", "f1_macro")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", help="JSON object: variant name -> train overrides")
    parser.add_argument("--lr", type=float, default=0.001, help="learning rate (default 0.001)")
    parser.add_argument("--split-seeds", nargs="+", type=int, default=[42, 0, 1, 2, 3, 4])
    parser.add_argument("--drop-large-houses", action="store_true")
    parser.add_argument("--processes", type=int, default=2, help="members trained at once")
    parser.add_argument("--labelled", default="data/labelled/train.parquet")
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    configure_torch()
    params, base, seeds = train_setup(args.params)
    variants = {
        name: replace(base.override(overrides, name), lr=args.lr)
        for name, overrides in json.loads(args.variants).items()
    }
    labelled = read_parquet(args.labelled)
    scores: dict[str, list[dict]] = {name: [] for name in variants}
    print("| split.seed | variant | RMSE | RMSLE | accuracy | macro F1 |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")

    for split_seed in args.split_seeds:
        data = encode_split(labelled, params, split_seed, args.drop_large_houses)
        for name, config in variants.items():
            run = train_ensemble_and_score(config, data, "val", seeds, processes=args.processes)
            scores[name].append(run.metrics)
            print(
                f"| {split_seed} | {name} | {run.metrics['rmse']:,.0f} | "
                f"{run.metrics['rmsle']:.4f} | {run.metrics['accuracy']:.4f} | "
                f"{run.metrics['f1_macro']:.4f} |",
                flush=True,
            )

    for name, runs in scores.items():
        means = {key: float(np.mean([run[key] for run in runs])) for key in KEYS}
        print(
            f"| mean | {name} | {means['rmse']:,.0f} | {means['rmsle']:.4f} | "
            f"{means['accuracy']:.4f} | {means['f1_macro']:.4f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
