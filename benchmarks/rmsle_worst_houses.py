"""How much of the RMSLE of each split comes from its worst-predicted houses.

For each `split.seed` the script splits and encodes the labelled table as the pipeline does. It
trains the `train` configuration of params.yaml as an ensemble of `final.ensemble_size` networks
at `train.lr`, the set-up of `benchmarks/split_seeds.py`. For the validation and the test part it
prints the RMSLE, the RMSLE without the `--drop` houses with the largest squared log error, and
the Ids and log errors (log predicted - log actual) of those houses. It is a diagnosis of
the metric, not a way to choose a model: nothing here feeds back into the configuration.
Run from the repository root after `dvc repro derive_category`:

    python benchmarks/rmsle_worst_houses.py
    python benchmarks/rmsle_worst_houses.py --split-seeds 0 --drop 3
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np
from split_seeds import encode_split, train_setup

from house_multitask.data.io import read_parquet
from house_multitask.experiment import train_ensemble_and_score
from house_multitask.schema import ID_COLUMN, PRICE_COLUMN
from house_multitask.training import configure_torch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", default="data/labelled/train.parquet")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--split-seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--drop", type=int, default=2, help="worst houses left out (default 2)")
    parser.add_argument("--processes", type=int, default=2, help="members trained at once")
    return parser.parse_args()


def rmsle(squared: np.ndarray) -> float:
    return float(np.sqrt(squared.mean()))


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    configure_torch()
    params, config, seeds = train_setup(args.params)
    labelled = read_parquet(args.labelled)
    print(f"| split.seed | part | RMSLE | without worst {args.drop} | worst Ids (log error) |")
    print("| ---: | --- | ---: | ---: | --- |")

    for split_seed in args.split_seeds:
        data = encode_split(labelled, params, split_seed)
        for part in ("val", "test"):
            run = train_ensemble_and_score(config, data, part, seeds, processes=args.processes)
            frame = data.frames[part]
            errors = np.log(run.price_pred.to_numpy()) - np.log(frame[PRICE_COLUMN].to_numpy())
            squared = errors**2
            order = np.argsort(-squared)
            worst = ", ".join(
                f"{int(frame[ID_COLUMN].iloc[row])} ({errors[row]:+.2f})"
                for row in order[: args.drop]
            )
            print(
                f"| {split_seed} | {part} | {rmsle(squared):.4f} | "
                f"{rmsle(squared[order[args.drop :]]):.4f} | {worst} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
