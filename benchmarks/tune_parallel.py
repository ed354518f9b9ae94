"""Trials per minute of the learning-rate study with 1 and with N tuning workers.

Runs `tuning.run_study` on the encoded data with the `train` and `tune` sections of
params.yaml, once per seed and worker count, each time on a new journal file in a temporary
folder, and prints the wall time (worker start-up included), trials per minute, the speed-up,
the epochs trained per minute (a trial's work depends on when the pruner stops it) and the best
validation loss per seed. With one worker it also runs the first seed twice: the same seed must
give the same best value. Run from the repository root after
`dvc repro encode_scale`:

    python benchmarks/tune_parallel.py     # tune.n_trials trials, seeds 0 1 2, 1 and 2 workers
    python benchmarks/tune_parallel.py --n-trials 8 --seeds 0
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import optuna
import yaml

from house_multitask.config import TrainConfig, TuneParams
from house_multitask.experiment import EncodedData
from house_multitask.parallel_tuning import open_journal_storage
from house_multitask.training import configure_torch
from house_multitask.tuning import run_study

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, help="trials per study (default: tune.n_trials)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sampler seeds")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker count compared with one (default 2)"
    )
    parser.add_argument("--encoded-dir", type=Path, default=REPO / "data/encoded")
    parser.add_argument(
        "--state", type=Path, default=REPO / "data/encoded_state/preprocessor.json"
    )
    return parser.parse_args()


def timed_study(config: TrainConfig, data: EncodedData, params: TuneParams) -> tuple[float, dict]:
    """Run a study on a new journal file; return its wall time in seconds and its summary.

    The summary gains "epochs": the epochs all trials trained together, counted as the
    validation losses they reported to the pruner (one per epoch).
    """
    with tempfile.TemporaryDirectory(prefix="tune-bench-") as folder:
        storage = f"journal:///{Path(folder) / 'optuna.journal'}"
        start = time.perf_counter()
        summary = run_study(config, data, replace(params, storage=storage))
        wall = time.perf_counter() - start
        study = optuna.load_study(
            study_name=summary["study_name"], storage=open_journal_storage(storage)
        )
        epochs = sum(len(trial.intermediate_values) for trial in study.trials)
        return wall, {**summary, "epochs": epochs}


def finished(summary: dict) -> int:
    return summary["trials_completed"] + summary["trials_pruned"] + summary["trials_failed"]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    configure_torch(1)
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    config = TrainConfig.from_dict(params["train"], "train")
    config = config.override({"seed": params["base"]["seed"]}, "base")
    tune = TuneParams.from_dict(params["tune"])
    if args.n_trials:
        tune = replace(tune, n_trials=args.n_trials)
    data = EncodedData.load(args.encoded_dir, args.state)

    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores")
    print(f"study: {tune.n_trials} trials, seeds {args.seeds}, train section of params.yaml")
    header = (
        f"{'workers':>7} {'seed':>4} {'wall s':>7} {'trials':>6} {'trials/min':>10} "
        f"{'epochs':>6} {'epochs/min':>10}"
    )
    print(f"{header} best val loss")
    totals = {1: [0.0, 0, 0], args.workers: [0.0, 0, 0]}
    best = {}
    for seed in args.seeds:
        for workers in (1, args.workers):
            wall, summary = timed_study(config, data, replace(tune, seed=seed, workers=workers))
            totals[workers][0] += wall
            totals[workers][1] += finished(summary)
            totals[workers][2] += summary["epochs"]
            best[(workers, seed)] = summary["best_val_loss"]
            rate = 60 * finished(summary) / wall
            epoch_rate = 60 * summary["epochs"] / wall
            print(
                f"{workers:7d} {seed:4d} {wall:7.1f} {finished(summary):6d} {rate:10.2f} "
                f"{summary['epochs']:6d} {epoch_rate:10.1f} "
                f"{summary['best_val_loss']:.4f} (lr {summary['best_lr']:.4g}, "
                f"failed {summary['trials_failed']})"
            )

    _, again = timed_study(config, data, replace(tune, seed=args.seeds[0], workers=1))
    same = again["best_val_loss"] == best[(1, args.seeds[0])]
    print(f"\n1 worker, seed {args.seeds[0]} run again: same best value: {same}")

    rates = {workers: 60 * trials / wall for workers, (wall, trials, _) in totals.items()}
    speedup = rates[args.workers] / rates[1]
    print(
        f"trials/min: 1 worker {rates[1]:.2f}, {args.workers} workers "
        f"{rates[args.workers]:.2f}: {speedup:.2f}x (target >= 1.7x with 2)"
    )
    # Pruning stops trials at different epochs with 1 and with several workers, so a trial is
    # not a fixed amount of work. An epoch of the same network is.
    epoch_rates = {workers: 60 * epochs / wall for workers, (wall, _, epochs) in totals.items()}
    print(
        f"epochs/min: 1 worker {epoch_rates[1]:.1f}, {args.workers} workers "
        f"{epoch_rates[args.workers]:.1f}: {epoch_rates[args.workers] / epoch_rates[1]:.2f}x"
    )
    for seed in args.seeds:
        print(
            f"seed {seed}: best val loss 1 worker {best[(1, seed)]:.4f}, "
            f"{args.workers} workers {best[(args.workers, seed)]:.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
