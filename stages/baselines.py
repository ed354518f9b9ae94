"""Stage `baselines`: gradient-boosted trees and the study's network, scored once on test."""

import argparse

from common import load_params, run_stage, section

from house_multitask.baselines import STUDY_CONFIG, score_baselines
from house_multitask.config import BaselineParams
from house_multitask.data.io import write_json
from house_multitask.experiment import EncodedData
from house_multitask.training import configure_torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encoded-dir", required=True, help="folder of the encoded splits")
    parser.add_argument("--state", required=True, help="fitted preprocessor state (JSON)")
    parser.add_argument("--metrics", required=True, help="test metrics of both baselines (JSON)")
    args = parser.parse_args()
    params = load_params()
    settings = dict(section(params, "baselines"))
    study = settings.pop("study", None)
    baseline = BaselineParams.from_dict(settings)
    study_config = STUDY_CONFIG.override(study, "baselines.study")
    study_config = study_config.override({"seed": section(params, "base").get("seed", 0)}, "base")

    configure_torch()
    data = EncodedData.load(args.encoded_dir, args.state)
    metrics = score_baselines(data, study_config, "test", tree_seed=baseline.tree_seed)

    write_json(metrics, args.metrics)


if __name__ == "__main__":
    run_stage(main)
