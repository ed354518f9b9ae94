"""Test scores of the improved network and both baselines over five train/val/test splits.

For each `split.seed` (0 to 4 by default) the script splits the labelled table as the `split`
stage does, fits the preprocessing on that training part as `encode_scale` does, then trains and
scores on the test part, in one process:

- improved: the `train` configuration of params.yaml, an ensemble of `final.ensemble_size`
  networks (seeds base.seed, base.seed + 1, ...), at the learning rate `--lr` (default: the
  top-level `lr` when it is a number, else `train.lr`). Nothing is re-tuned per split.
- tree: scikit-learn's HistGradientBoostingRegressor (log price) and Classifier, defaults.
- study: the study's final network, `baselines.study`.

It writes the mean ± sample standard deviation of each metric, and every split's row, to a
Markdown page. Run from the repository root after `dvc repro derive_category`:

    python benchmarks/split_seeds.py                  # writes benchmarks/SPLIT_SEEDS.md
    python benchmarks/split_seeds.py --split-seeds 0 1 --ensemble-size 1 --output /tmp/s.md
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import yaml

from house_multitask.baselines import STUDY_CONFIG, score_baselines
from house_multitask.config import BaselineParams, FinalParams, SplitParams, TrainConfig
from house_multitask.data.io import read_parquet
from house_multitask.data.split import split_frame
from house_multitask.experiment import EncodedData, train_ensemble_and_score
from house_multitask.features.preprocess import Preprocessor
from house_multitask.schema import CATEGORY_COLUMN
from house_multitask.training import configure_torch

logger = logging.getLogger("split_seeds")

MODELS = ("improved", "tree", "study")
# (key, label, format, better): the rows of the results table.
METRICS = (
    ("rmse", "RMSE ($)", "{:,.0f}", "lower"),
    ("rmsle", "RMSLE", "{:.4f}", "lower"),
    ("mae", "MAE ($)", "{:,.0f}", "lower"),
    ("accuracy", "accuracy", "{:.4f}", "higher"),
    ("f1_macro", "macro F1", "{:.4f}", "higher"),
    ("precision_macro", "macro precision", "{:.4f}", "higher"),
    ("recall_macro", "macro recall", "{:.4f}", "higher"),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", default="data/labelled/train.parquet", type=Path)
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--split-seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--ensemble-size", type=int, help="default: final.ensemble_size")
    parser.add_argument("--lr", type=float, help="learning rate of the improved network")
    parser.add_argument("--output", default="benchmarks/SPLIT_SEEDS.md", type=Path)
    return parser.parse_args()


def default_lr(params: dict, config: TrainConfig) -> tuple[float, str]:
    """Return the top-level `lr` when it is a number, else `train.lr`, and its source."""
    value = params.get("lr")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), "lr"
    return config.lr, "train.lr"


# Living area above which `encode_split(..., drop_large=True)` leaves training houses out.
LARGE_HOUSE_AREA = 4000


def encode_split(labelled, params: dict, split_seed: int, drop_large: bool = False) -> EncodedData:
    """Split and encode the labelled table as the split and encode_scale stages do.

    With `drop_large`, training houses with GrLivArea above LARGE_HOUSE_AREA are left out of
    the training part before the preprocessing is fitted; validation and test keep theirs.
    """
    split = SplitParams.from_dict({**params["split"], "seed": split_seed})
    parts = split_frame(labelled, split, CATEGORY_COLUMN)
    if drop_large:
        train = parts["train"]
        parts["train"] = train[train["GrLivArea"] <= LARGE_HOUSE_AREA]
    ordinal = params.get("encode_scale", {}).get("ordinal_quality", False)
    preprocessor = Preprocessor.fit(parts["train"], ordinal_quality=ordinal)
    frames = {name: preprocessor.transform(part)[0] for name, part in parts.items()}
    return EncodedData(preprocessor, frames)


def train_setup(params_path: str | Path) -> tuple[dict, TrainConfig, list[int]]:
    """Read params.yaml; return it, its `train` configuration and the ensemble's seeds."""
    params = yaml.safe_load(Path(params_path).read_text(encoding="utf-8"))
    config = TrainConfig.from_dict(params["train"], "train")
    members = FinalParams.from_dict(params.get("final")).ensemble_size
    return params, config, list(range(config.seed, config.seed + members))


def run_split(
    data: EncodedData,
    improved: TrainConfig,
    members: list[int],
    study: TrainConfig,
    tree_seed: int,
) -> dict[str, dict]:
    """Train and score the three models on one split; the improved one records "seconds"."""
    start = time.perf_counter()
    run = train_ensemble_and_score(improved, data, "test", members)
    improved_seconds = time.perf_counter() - start
    baselines = score_baselines(data, study, "test", tree_seed=tree_seed)
    return {
        "improved": {**run.metrics, "seconds": improved_seconds},
        "tree": baselines["tree"],
        "study": baselines["study"],
    }


def format_cell(values: list[float], pattern: str) -> str:
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{pattern.format(mean)} ± {pattern.format(std)}"


def render_page(results: dict[int, dict], context: dict) -> str:
    """Render the Markdown page: summary table, targets, per-split rows and the set-up."""
    seeds = sorted(results)
    lines = [
        "# Test scores over five train/val/test splits",
        "",
        f"Mean ± sample standard deviation over `split.seed` {', '.join(map(str, seeds))} "
        "(70/15/15, stratified by HouseCategory); every model is trained on each split's "
        "training part and scored once on its test part. Written by `benchmarks/split_seeds.py`.",
        "",
        "| metric | better | improved network | gradient-boosted trees | study's network |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, label, pattern, better in METRICS:
        cells = [format_cell([results[s][m][key] for s in seeds], pattern) for m in MODELS]
        lines.append(f"| {label} | {better} | {' | '.join(cells)} |")

    lines += ["", "## Targets, on the mean over the splits", ""]
    lines += [f"- {line}" for line in check_targets(results)]

    lines += [
        "",
        "## Every split",
        "",
        "| split.seed | model | RMSE ($) | RMSLE | accuracy | macro F1 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for seed in seeds:
        for model in MODELS:
            row = results[seed][model]
            lines.append(
                f"| {seed} | {model} | {row['rmse']:,.0f} | {row['rmsle']:.4f} | "
                f"{row['accuracy']:.4f} | {row['f1_macro']:.4f} |"
            )

    lines += ["", "## Set-up", ""]
    lines += [f"- {name}: {value}" for name, value in context.items()]
    return "\n".join(lines) + "\n"


def check_targets(results: dict[int, dict]) -> list[str]:
    """Return one line per target with the measured mean and whether it is met."""

    def mean(model: str, key: str) -> float:
        return float(np.mean([results[seed][model][key] for seed in results]))

    checks = [
        ("accuracy >= 0.995", mean("improved", "accuracy"), mean("improved", "accuracy") >= 0.995),
        ("macro F1 >= 0.98", mean("improved", "f1_macro"), mean("improved", "f1_macro") >= 0.98),
        ("RMSLE <= 0.12", mean("improved", "rmsle"), mean("improved", "rmsle") <= 0.12),
        (
            f"RMSE below the trees' ({mean('tree', 'rmse'):,.0f})",
            mean("improved", "rmse"),
            mean("improved", "rmse") < mean("tree", "rmse"),
        ),
    ]
    lines = []
    for name, value, met in checks:
        shown = f"{value:,.0f}" if value > 10 else f"{value:.4f}"
        lines.append(f"{name}: {shown}, {'met' if met else 'not met'}")
    wins = [
        seed
        for seed in results
        if all(
            results[seed]["improved"]["rmse"] < results[seed][other]["rmse"]
            and results[seed]["improved"]["accuracy"] >= results[seed][other]["accuracy"]
            for other in ("tree", "study")
        )
    ]
    lines.append(
        f"splits where the improved network has the lowest RMSE and the highest accuracy: "
        f"{len(wins)} of {len(results)}"
    )
    return lines


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = yaml.safe_load(args.params.read_text(encoding="utf-8"))
    base_seed = params.get("base", {}).get("seed", 0)
    improved = TrainConfig.from_dict(params["train"], "train")
    lr, lr_source = (args.lr, "--lr") if args.lr else default_lr(params, improved)
    improved = replace(improved, lr=lr, seed=base_seed)
    size = args.ensemble_size or FinalParams.from_dict(params.get("final")).ensemble_size
    members = list(range(base_seed, base_seed + size))
    settings = dict(params.get("baselines") or {})
    study = STUDY_CONFIG.override(settings.pop("study", None), "baselines.study")
    study = replace(study, seed=base_seed)
    tree_seed = BaselineParams.from_dict(settings).tree_seed

    configure_torch()
    labelled = read_parquet(args.labelled)
    results = {}
    started = time.perf_counter()
    for split_seed in args.split_seeds:
        logger.info("split.seed=%d", split_seed)
        data = encode_split(labelled, params, split_seed)
        results[split_seed] = run_split(data, improved, members, study, tree_seed)
    elapsed = time.perf_counter() - started

    context = {
        "command": f"`{shlex.join(['python', *sys.argv])}`",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"torch {torch.__version__}, 1 torch thread",
        "improved network": f"`train` of params.yaml at lr {lr:.6g} (from {lr_source}), "
        f"ensemble of {size} (training seeds {members[0]}-{members[-1]})",
        "study's network": f"`baselines.study` at lr {study.lr:g}, training seed {base_seed}",
        "trees": f"scikit-learn defaults, random_state {tree_seed}",
        "mean training time of the improved ensemble per split": (
            f"{np.mean([results[s]['improved']['seconds'] for s in results]):.0f} s"
        ),
        "total run time": f"{elapsed / 60:.1f} min",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render_page(results, context), encoding="utf-8")
    logger.info("wrote %s in %.1f min", args.output, elapsed / 60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
