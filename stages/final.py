"""Stage `final`: train the chosen configuration at learning rate `lr`, evaluate once on test."""

import argparse

from common import load_params, run_stage, section

from house_multitask.config import TrainConfig, resolve_lr
from house_multitask.data.io import read_json, write_json, write_parquet
from house_multitask.experiment import EncodedData, train_and_score
from house_multitask.model_dir import save_model_dir
from house_multitask.schema import ID_COLUMN
from house_multitask.training import configure_torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encoded-dir", required=True, help="folder of the encoded splits")
    parser.add_argument("--state", required=True, help="fitted preprocessor state (JSON)")
    parser.add_argument("--tune-metrics", required=True, help="the tune stage's summary (JSON)")
    parser.add_argument("--model-dir", required=True, help="folder for the self-contained model")
    parser.add_argument("--predictions", required=True, help="test-split predictions (Parquet)")
    parser.add_argument("--metrics", required=True, help="test metrics (JSON)")
    args = parser.parse_args()
    params = load_params()
    config = TrainConfig.from_dict(section(params, "train"), "train")
    lr = resolve_lr(params.get("lr", "tuned"), read_json(args.tune_metrics).get("best_lr"))
    config = config.override({"lr": lr, "seed": section(params, "base").get("seed", 0)}, "base")

    configure_torch()
    data = EncodedData.load(args.encoded_dir, args.state)
    run = train_and_score(config, data, "test", checkpoint_dir=f"{args.model_dir}/checkpoint")

    save_model_dir(args.model_dir, config, data.preprocessor, [run.fit.module.net])
    write_parquet(run.predictions_frame(data.frames["test"][ID_COLUMN]), args.predictions)
    write_json({"lr": lr, "split": "test", **run.metrics}, args.metrics)


if __name__ == "__main__":
    run_stage(main)
