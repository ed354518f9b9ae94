"""Stage `split`: stratified 70/15/15 train/validation/test split of the labelled table."""

import argparse
from pathlib import Path

from common import load_params, run_stage, section

from house_multitask.config import SplitParams
from house_multitask.data.category import count_categories
from house_multitask.data.io import read_parquet, write_json, write_parquet
from house_multitask.data.split import split_frame
from house_multitask.schema import CATEGORY_COLUMN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("labelled", help="labelled table (Parquet)")
    parser.add_argument("output_dir", help="folder for train/val/test.parquet")
    parser.add_argument("metrics", help="split sizes (JSON)")
    args = parser.parse_args()
    params = SplitParams.from_dict(section(load_params(), "split"))

    parts = split_frame(read_parquet(args.labelled), params, CATEGORY_COLUMN)

    for name, part in parts.items():
        write_parquet(part, Path(args.output_dir) / f"{name}.parquet")
    metrics = {
        "sizes": {name: len(part) for name, part in parts.items()},
        "class_counts": {
            name: count_categories(part[CATEGORY_COLUMN]) for name, part in parts.items()
        },
    }
    write_json(metrics, args.metrics)


if __name__ == "__main__":
    run_stage(main)
