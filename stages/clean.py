"""Stage `clean`: read Kaggle's train.csv, check its schema, drop mostly-missing columns."""

import argparse
from pathlib import Path

from common import load_params, run_stage, section

from house_multitask.config import CleanParams
from house_multitask.data.clean import clean_frame
from house_multitask.data.io import read_kaggle_csv, write_json, write_parquet
from house_multitask.errors import DataError
from house_multitask.schema import CATEGORY_RULE_COLUMNS, ID_COLUMN, PRICE_COLUMN

REQUIRED_COLUMNS = (ID_COLUMN, PRICE_COLUMN, *CATEGORY_RULE_COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("raw_csv", help="Kaggle House Prices train.csv")
    parser.add_argument("output", help="cleaned table (Parquet)")
    parser.add_argument("metrics", help="metrics file (JSON)")
    args = parser.parse_args()
    params = CleanParams.from_dict(section(load_params(), "clean"))

    if not Path(args.raw_csv).exists():
        raise DataError(
            f"{args.raw_csv}: file not found; download Kaggle's train.csv there "
            "(see 'Quick start' in README.md)"
        )
    raw = read_kaggle_csv(args.raw_csv, REQUIRED_COLUMNS)
    cleaned, report = clean_frame(raw, params.max_missing_share, protected=REQUIRED_COLUMNS)

    write_parquet(cleaned, args.output)
    write_json(report.to_metrics(), args.metrics)


if __name__ == "__main__":
    run_stage(main)
