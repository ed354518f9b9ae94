"""Stage `ablate`: train one ablation variant once per seed and score it on validation."""

import argparse

from common import load_params, run_stage, section

from house_multitask.config import TrainConfig, resolve_processes
from house_multitask.data.io import write_json
from house_multitask.errors import ParamsError
from house_multitask.experiment import EncodedData, score_over_seeds
from house_multitask.tracking import epoch_logger
from house_multitask.training import configure_torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True, help="a key of ablate.variants in params.yaml")
    parser.add_argument("--encoded-dir", required=True, help="folder of the encoded splits")
    parser.add_argument("--state", required=True, help="fitted preprocessor state (JSON)")
    parser.add_argument("--checkpoints", required=True, help="folder for the best checkpoints")
    parser.add_argument("--metrics", required=True, help="validation metrics (JSON)")
    parser.add_argument(
        "--live-dir", help="DVCLive folder for the per-epoch losses of the first seed's run"
    )
    args = parser.parse_args()
    params = load_params()
    ablate = section(params, "ablate")
    variants = ablate.get("variants") or {}
    if args.variant not in variants:
        raise ParamsError(
            f"ablate.variants has no variant {args.variant!r}; known: {', '.join(variants)}"
        )
    base = TrainConfig.from_dict(ablate.get("base"), "ablate.base")
    config = base.override(variants[args.variant], f"ablate.variants.{args.variant}")
    seeds = seed_list(params)
    processes = resolve_processes(section(params, "base").get("processes", 1))

    configure_torch()
    data = EncodedData.load(args.encoded_dir, args.state)
    summary = score_over_seeds(
        config,
        data,
        seeds,
        "val",
        checkpoint_root=args.checkpoints,
        logger_for_seed=first_seed_logger(args.live_dir, seeds[0]),
        processes=processes,
    )

    write_json({"variant": args.variant, "split": "val", **summary}, args.metrics)


def first_seed_logger(live_dir: str | None, first_seed: int):
    """Log the curves of one run per variant, so each plot path is the same whatever the seeds."""
    if live_dir is None:
        return None
    return lambda seed: epoch_logger(live_dir) if seed == first_seed else False


def seed_list(params: dict) -> list[int]:
    """Training seeds base.seed, base.seed + 1, ... of length report.seeds."""
    count = section(params, "report").get("seeds", 3)
    start = section(params, "base").get("seed", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ParamsError(f"report.seeds={count!r} is invalid; it must be an integer >= 1")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ParamsError(f"base.seed={start!r} is invalid; it must be an integer >= 0")
    return list(range(start, start + count))


if __name__ == "__main__":
    run_stage(main)
