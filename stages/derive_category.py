"""Stage `derive_category`: add the HouseCategory label (0-5) to the cleaned table."""

import argparse

from common import run_stage

from house_multitask.data.category import count_categories, derive_house_category
from house_multitask.data.io import read_parquet, write_json, write_parquet
from house_multitask.schema import CATEGORY_COLUMN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cleaned", help="cleaned table (Parquet)")
    parser.add_argument("output", help="labelled table (Parquet)")
    parser.add_argument("metrics", help="class counts (JSON)")
    args = parser.parse_args()

    frame = read_parquet(args.cleaned)
    frame[CATEGORY_COLUMN] = derive_house_category(frame)

    write_parquet(frame, args.output)
    write_json(
        {"rows": len(frame), "class_counts": count_categories(frame[CATEGORY_COLUMN])},
        args.metrics,
    )


if __name__ == "__main__":
    run_stage(main)
