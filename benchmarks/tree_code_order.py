"""How much the tree baseline's classification owes to the alphabetical order of label codes.

The encoder gives each categorical value its rank in alphabetical order as label code, and the
gradient-boosted trees split on those codes as on numbers. For HouseStyle that order happens to
put the one- and one-and-a-half-storey styles (1.5Fin, 1.5Unf, 1Story) first, which is half of
the HouseCategory rule. For each `split.seed` the script fits the tree baseline with the
alphabetical codes and again with `--orders` random orders of the codes of `--column`, the same
order for every part. Per split it prints the test accuracy with the alphabetical codes, and
the mean, lowest and highest over the random orders with the count of orders below 1.0. The
last row gives the means over the splits. It is a diagnosis of the baseline:
nothing here chooses a model or a setting. Run from the repository root after
`dvc repro derive_category`:

    python benchmarks/tree_code_order.py
    python benchmarks/tree_code_order.py --column Neighborhood --orders 10 --split-seeds 0
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
from split_seeds import encode_split, train_setup

from house_multitask.baselines import TreeBaseline
from house_multitask.data.io import read_parquet
from house_multitask.experiment import EncodedData
from house_multitask.schema import CATEGORY_COLUMN


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--column", default="HouseStyle", help="categorical column to reorder")
    parser.add_argument("--orders", type=int, default=20, help="random code orders per split")
    parser.add_argument("--split-seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--seed", type=int, default=0, help="random seed for the code orders")
    parser.add_argument("--labelled", default="data/labelled/train.parquet")
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args()


def reorder_codes(data: EncodedData, column: str, order: np.ndarray) -> EncodedData:
    """Return `data` with the label code c of `column` replaced by order[c] in every part.

    The reserved code of unseen values keeps its place after the known ones.
    """
    low, high = data.preprocessor.ranges[column]
    mapping = np.append(order, len(order))
    frames = {}
    for part, frame in data.frames.items():
        codes = np.rint(frame[column].to_numpy() * (high - low) + low).astype("int64")
        changed = frame.copy()
        changed[column] = (mapping[codes] - low) / (high - low)
        frames[part] = changed
    return EncodedData(data.preprocessor, frames)


def tree_test_accuracy(data: EncodedData) -> float:
    """Fit the tree baseline on the training part and return its test accuracy."""
    test = data.frames["test"]
    _, classes = TreeBaseline.fit(data).predict(test)
    return float(np.mean(classes == test[CATEGORY_COLUMN].to_numpy()))


def main() -> int:
    args = parse_args()
    params, _, _ = train_setup(args.params)
    labelled = read_parquet(args.labelled)
    rng = np.random.default_rng(args.seed)
    print(f"Tree baseline test accuracy, {args.column} codes alphabetical or in random order")
    print()
    print("| split.seed | alphabetical | random orders: mean | min | max | orders below 1.0 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    alphabetical, shuffled_means = [], []

    for split_seed in args.split_seeds:
        data = encode_split(labelled, params, split_seed)
        count = len(data.preprocessor.categories[args.column])
        shuffled = pd.Series(
            [
                tree_test_accuracy(reorder_codes(data, args.column, rng.permutation(count)))
                for _ in range(args.orders)
            ]
        )
        alphabetical.append(tree_test_accuracy(data))
        shuffled_means.append(shuffled.mean())
        print(
            f"| {split_seed} | {alphabetical[-1]:.4f} | {shuffled.mean():.4f} | "
            f"{shuffled.min():.4f} | {shuffled.max():.4f} | "
            f"{int((shuffled < 1.0).sum())} of {args.orders} |",
            flush=True,
        )

    print(f"| mean | {np.mean(alphabetical):.4f} | {np.mean(shuffled_means):.4f} | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
