"""Stage `final`: train the chosen configuration at learning rate `lr`, evaluate once on test."""

import argparse

from common import load_params, run_stage, section

from house_multitask.config import (
    FinalParams,
    TrainConfig,
    TrainerParams,
    resolve_lr,
    resolve_processes,
)
from house_multitask.data.io import read_json, write_json, write_parquet
from house_multitask.experiment import EncodedData, train_ensemble_and_score
from house_multitask.model_dir import save_model_dir
from house_multitask.schema import ID_COLUMN
from house_multitask.tracking import epoch_logger
from house_multitask.training import configure_torch, is_global_zero


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encoded-dir", required=True, help="folder of the encoded splits")
    parser.add_argument("--state", required=True, help="fitted preprocessor state (JSON)")
    parser.add_argument("--tune-metrics", required=True, help="the tune stage's summary (JSON)")
    parser.add_argument("--model-dir", required=True, help="folder for the self-contained model")
    parser.add_argument("--predictions", required=True, help="test-split predictions (Parquet)")
    parser.add_argument("--metrics", required=True, help="test metrics (JSON)")
    parser.add_argument("--live-dir", help="DVCLive folder for the per-epoch training losses")
    args = parser.parse_args()
    params = load_params()
    config = TrainConfig.from_dict(section(params, "train"), "train")
    tuned = read_json(args.tune_metrics)
    lr = resolve_lr(params.get("lr", "tuned"), tuned.get("best_lr"))
    # Settings the tune stage searched beside the learning rate take its best trial's values.
    searched = dict(tuned.get("best_params") or {})
    searched.pop("lr", None)
    config = config.override(searched, f"{args.tune_metrics} best_params")
    config = config.override({"lr": lr, "seed": section(params, "base").get("seed", 0)}, "base")
    trainer = TrainerParams.from_dict(params.get("trainer"))
    # Ensemble members train with seeds base.seed, base.seed + 1, ...
    members = FinalParams.from_dict(params.get("final")).ensemble_size
    seeds = list(range(config.seed, config.seed + members))
    # Fork members only on one CPU device: forked members would each start their own devices.
    processes = resolve_processes(section(params, "base").get("processes", 1))
    if not trainer.runs_in_one_cpu_process():
        processes = 1

    configure_torch()
    data = EncodedData.load(args.encoded_dir, args.state)
    run = train_ensemble_and_score(
        config,
        data,
        "test",
        seeds,
        checkpoint_root=f"{args.model_dir}/checkpoint",
        first_logger=epoch_logger(args.live_dir) if args.live_dir else False,
        trainer_options=trainer.to_dict(),
        processes=processes,
    )
    # Under a multi-process strategy every process gets here with the same weights.
    if not is_global_zero():
        return

    save_model_dir(args.model_dir, config, data.preprocessor, run.networks)
    write_parquet(run.predictions_frame(data.frames["test"][ID_COLUMN]), args.predictions)
    write_json({"lr": lr, "split": "test", **run.metrics}, args.metrics)


if __name__ == "__main__":
    run_stage(main)
