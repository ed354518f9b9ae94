"""Training time of variants of the `train` configuration, as a ratio to `train` itself.

Each variant is a JSON object of `train` keys to override, as in compare_on_validation.py. The
script splits and encodes the labelled table with `--split-seed`, then trains one network of
`train` and of each variant for `--epochs` epochs (early stopping off, lr 0.001) in this
process, with one torch thread. Each network is then scored on the validation part. The timed
span includes the trainer's setup and that scoring. It repeats that `--rounds` times and
prints each run's seconds and its ratio to the `train` run of the same round. The load of the
machine changes the seconds, so compare the ratios. Run from the repository root after
`dvc repro derive_category`:

    python benchmarks/variant_train_time.py '{"batch32": {"batch_size": 32}}'
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace

from split_seeds import encode_split, train_setup

from house_multitask.data.io import read_parquet
from house_multitask.experiment import train_ensemble_and_score
from house_multitask.training import configure_torch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", help="JSON object: variant name -> train overrides")
    parser.add_argument("--epochs", type=int, default=100, help="epochs per network")
    parser.add_argument("--rounds", type=int, default=2, help="times every variant is timed")
    parser.add_argument("--split-seed", type=int, default=42, help="split to train on")
    parser.add_argument("--labelled", default="data/labelled/train.parquet")
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    configure_torch()
    params, base, _ = train_setup(args.params)
    overrides = {"train": {}, **json.loads(args.variants)}
    configs = {
        name: replace(
            base.override(changes, name), lr=0.001, max_epochs=args.epochs, patience=args.epochs
        )
        for name, changes in overrides.items()
    }
    data = encode_split(read_parquet(args.labelled), params, args.split_seed)
    print(f"| round | variant | seconds for {args.epochs} epochs | ratio to train |")
    print("| ---: | --- | ---: | ---: |")

    for round_index in range(args.rounds):
        seconds = {}
        for name, config in configs.items():
            start = time.perf_counter()
            train_ensemble_and_score(config, data, "val", [config.seed], processes=1)
            seconds[name] = time.perf_counter() - start
            ratio = seconds[name] / seconds["train"]
            print(f"| {round_index} | {name} | {seconds[name]:.1f} | {ratio:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
