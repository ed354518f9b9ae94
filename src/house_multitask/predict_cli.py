"""The `predict` sub-command: score houses in a CSV or Parquet file with a trained model.

Exit status 0 on success and 2 for an invalid model directory, input or output path, with one
`error:` line that names the file and, where known, the column and line. Values that were
imputed, unseen in training or implausible give one warning line per column on stderr.
"""

from __future__ import annotations

import argparse

# The heavy imports (torch, pandas) happen in `run`, because cli.py imports every sub-command
# module to build its parser.

OUTPUT_FORMATS = ("full", "kaggle")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `house-multitask predict` to `parser`."""
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="model directory that the final stage writes, such as models/final",
    )
    parser.add_argument(
        "--input",
        required=True,
        metavar="FILE",
        help="houses to score: a CSV with Kaggle's House Prices columns, or Parquet when the "
        "name ends in .parquet or .pq; SalePrice and extra columns are ignored",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="FILE",
        help="predictions file: CSV, or Parquet when the name ends in .parquet or .pq; an "
        "existing file is replaced only after a successful run",
    )
    parser.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        default="full",
        help="full: Id, SalePrice, HouseCategory and prob_0..prob_5 (default); kaggle: "
        "exactly Id,SalePrice, Kaggle's submission format",
    )


def run(args: argparse.Namespace) -> int:
    """Score `args.input` with the model in `args.model` and write `args.output`.

    Raises:
        HouseMultitaskError: for an invalid model directory, input or output; the console
            script turns it into one `error:` line and exit status 2.
    """
    from house_multitask.predict import (
        check_output_path,
        kaggle_submission,
        load_model,
        write_predictions,
    )

    check_output_path(args.output, args.input)
    model = load_model(args.model)
    predictions = model.predict_file(args.input)
    if args.format == "kaggle":
        predictions = kaggle_submission(predictions)
    write_predictions(predictions, args.output)
    return 0
