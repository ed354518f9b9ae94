"""Stage `tune`: Optuna study of the learning rate of the chosen configuration (`train`)."""

import argparse

from common import load_params, run_stage, section

from house_multitask.config import TrainConfig, TrainerParams, TuneParams
from house_multitask.data.io import write_json
from house_multitask.experiment import EncodedData
from house_multitask.training import configure_torch
from house_multitask.tuning import run_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encoded-dir", required=True, help="folder of the encoded splits")
    parser.add_argument("--state", required=True, help="fitted preprocessor state (JSON)")
    parser.add_argument("--metrics", required=True, help="study summary (JSON)")
    args = parser.parse_args()
    params = load_params()
    config = TrainConfig.from_dict(section(params, "train"), "train")
    config = config.override({"seed": section(params, "base").get("seed", 0)}, "base")
    tune = TuneParams.from_dict(section(params, "tune"))
    trainer = TrainerParams.from_dict(params.get("trainer"))
    trainer.check_single_process()

    configure_torch()
    data = EncodedData.load(args.encoded_dir, args.state)
    summary = run_study(config, data, tune, trainer_options=trainer.to_dict())

    write_json(summary, args.metrics)


if __name__ == "__main__":
    run_stage(main)
