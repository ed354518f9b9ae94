"""Tests of the baselines (gradient-boosted trees, the study's network) and their stage."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from house_multitask.baselines import STUDY_CONFIG, TreeBaseline, score_baselines
from house_multitask.config import BaselineParams, TrainConfig
from house_multitask.data.io import write_json, write_parquet
from house_multitask.errors import ParamsError
from house_multitask.evaluation import evaluate

REPO_ROOT = Path(__file__).resolve().parents[1]
METRIC_KEYS = set(evaluate(np.ones(1), np.ones(1), np.zeros(1), np.zeros(1)))


def _finite_numbers(value) -> bool:
    """True when every number nested in `value` is finite (None counts as finite)."""
    if isinstance(value, dict):
        return all(_finite_numbers(item) for item in value.values())
    if isinstance(value, list):
        return all(_finite_numbers(item) for item in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return True


@pytest.fixture(scope="module")
def baseline_metrics(synthetic_encoded_data) -> dict:
    study = replace(STUDY_CONFIG, max_epochs=2)
    return score_baselines(synthetic_encoded_data, study, "test")


def test_score_baselines_has_both_models(baseline_metrics):
    assert set(baseline_metrics) == {"tree", "study"}


@pytest.mark.parametrize("model", ["tree", "study"])
def test_score_baselines_has_evaluate_keys(baseline_metrics, model):
    assert METRIC_KEYS <= set(baseline_metrics[model])


@pytest.mark.parametrize("model", ["tree", "study"])
def test_score_baselines_metrics_finite(baseline_metrics, model):
    assert _finite_numbers(baseline_metrics[model])


def test_score_baselines_study_records_lr(baseline_metrics):
    assert baseline_metrics["study"]["lr"] == pytest.approx(0.0374)


def test_tree_baseline_predicts_positive_prices(synthetic_encoded_data):
    tree = TreeBaseline.fit(synthetic_encoded_data, seed=0)
    prices, _ = tree.predict(synthetic_encoded_data.frames["test"])
    assert (prices > 0).all()


def test_tree_baseline_same_seed_same_predictions(synthetic_encoded_data):
    frame = synthetic_encoded_data.frames["val"]
    first = TreeBaseline.fit(synthetic_encoded_data, seed=3).predict(frame)[0]
    second = TreeBaseline.fit(synthetic_encoded_data, seed=3).predict(frame)[0]
    assert (first == second).all()


def test_study_config_is_study_final_network():
    expected = {
        "categorical_input": "label",
        "numeric_encoding": "minmax",
        "price_target": "raw",
        "price_loss": "l1",
        "aggregation": "weighted_geometric",
        "price_weight": 3.0,
        "shared_activation": "leaky_relu",
        "optimizer": "adam",
        "lr": 0.0374,
        "hidden_sizes": [36, 18],
        "head_size": 10,
    }
    actual = {key: STUDY_CONFIG.to_dict()[key] for key in expected}
    assert actual == expected


def test_params_study_variant_matches_study_config():
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    base = TrainConfig.from_dict(params["ablate"]["base"], "ablate.base")
    variant = base.override(params["ablate"]["variants"]["study_final"], "study_final")
    assert variant.to_dict() == replace(STUDY_CONFIG, seed=variant.seed).to_dict()


def test_params_baselines_study_matches_study_config():
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    configured = STUDY_CONFIG.override(params["baselines"].get("study"), "baselines.study")
    assert configured == STUDY_CONFIG


def test_baseline_params_rejects_negative_seed():
    with pytest.raises(ParamsError, match="baselines.tree_seed=-1"):
        BaselineParams.from_dict({"tree_seed": -1})


@pytest.mark.slow
def test_baselines_stage_writes_metrics(synthetic_encoded_data, tmp_path):
    encoded = tmp_path / "data" / "encoded"
    for name, frame in synthetic_encoded_data.frames.items():
        write_parquet(frame, encoded / f"{name}.parquet")
    state = tmp_path / "preprocessor.json"
    write_json(synthetic_encoded_data.preprocessor.to_dict(), state)
    params = {"base": {"seed": 0}, "baselines": {"tree_seed": 0, "study": {"max_epochs": 2}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    metrics = tmp_path / "metrics" / "baselines.json"

    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "stages" / "baselines.py"),
            "--encoded-dir",
            str(encoded),
            "--state",
            str(state),
            "--metrics",
            str(metrics),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    written = json.loads(metrics.read_text(encoding="utf-8"))
    assert set(written) == {"tree", "study"}
    assert METRIC_KEYS <= set(written["tree"])


@pytest.mark.slow
def test_baselines_stage_rejects_unknown_key(synthetic_encoded_data, tmp_path):
    params = {"base": {"seed": 0}, "baselines": {"trees": 3}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")

    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "stages" / "baselines.py"),
            "--encoded-dir",
            "missing",
            "--state",
            "missing.json",
            "--metrics",
            "out.json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 2
    assert "baselines has unknown key(s) trees" in result.stderr
