"""Stage `encode_scale`: fit imputation, label codes and min-max ranges on train; apply to all."""

import argparse
from pathlib import Path

from common import load_params, run_stage, section

from house_multitask.data.io import read_parquet, write_json, write_parquet
from house_multitask.errors import ParamsError
from house_multitask.features.preprocess import Preprocessor

SPLITS = ("train", "val", "test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "split_dir", help="folder with train/val/test.parquet from the split stage"
    )
    parser.add_argument("output_dir", help="folder for the encoded train/val/test.parquet")
    parser.add_argument("state", help="fitted preprocessor state (JSON)")
    parser.add_argument("metrics", help="feature counts (JSON)")
    args = parser.parse_args()
    ordinal_quality = section(load_params(), "encode_scale").get("ordinal_quality", False)
    if not isinstance(ordinal_quality, bool):
        raise ParamsError(
            f"encode_scale.ordinal_quality={ordinal_quality!r} must be true or false"
        )

    parts = {name: read_parquet(Path(args.split_dir) / f"{name}.parquet") for name in SPLITS}
    preprocessor = Preprocessor.fit(parts["train"], ordinal_quality=ordinal_quality)

    for name, part in parts.items():
        encoded, _ = preprocessor.transform(part)
        write_parquet(encoded, Path(args.output_dir) / f"{name}.parquet")
    write_json(preprocessor.to_dict(), args.state)
    write_json(
        {
            "predictors": len(preprocessor.predictors),
            "numeric_predictors": len(preprocessor.numeric_features),
            "categorical_predictors": len(preprocessor.categorical_features),
            "derived_features": len(preprocessor.derived_features),
        },
        args.metrics,
    )


if __name__ == "__main__":
    run_stage(main)
