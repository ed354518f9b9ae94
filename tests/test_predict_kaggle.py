"""Prediction on Kaggle's real files with a model trained by the real stage scripts.

The module fixture runs clean, derive_category, split, encode_scale and final as subprocesses
in a temporary folder on Kaggle's train.csv. Its copy of params.yaml sets three epochs, the log
price target and a fixed learning rate, so no tune stage is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from house_multitask.predict import load_model
from house_multitask.schema import CATEGORY_COLUMN, ID_COLUMN, N_CATEGORIES, PRICE_COLUMN

REPO_ROOT = Path(__file__).resolve().parents[1]
KAGGLE_DIR_ENV = "HOUSE_MULTITASK_KAGGLE_DIR"
KAGGLE_TEST_ROWS = 1459
PROBABILITY_COLUMNS = [f"prob_{label}" for label in range(N_CATEGORIES)]

pytestmark = pytest.mark.slow


def find_kaggle_file(name: str) -> Path | None:
    """Return Kaggle's `name` from $HOUSE_MULTITASK_KAGGLE_DIR, data/raw or ../shared, or None."""
    folders = []
    if os.environ.get(KAGGLE_DIR_ENV):
        folders.append(Path(os.environ[KAGGLE_DIR_ENV]))
    folders.append(REPO_ROOT / "data" / "raw")
    folders.append(REPO_ROOT.parent / "shared" / "data" / "kaggle-house-prices")
    for folder in folders:
        if (folder / name).is_file():
            # Absolute, because the stage scripts run in a temporary folder.
            return (folder / name).resolve()
    return None


def require_kaggle_file(name: str) -> Path:
    path = find_kaggle_file(name)
    if path is None:
        pytest.skip(
            f"Kaggle's {name} not found: set {KAGGLE_DIR_ENV}, or put it in data/raw/ or "
            "../shared/data/kaggle-house-prices/"
        )
    return path


def run_stage(work: Path, script: str, *args: str) -> None:
    """Run `stages/<script>` in `work` with this checkout's sources; fail with its stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    command = [sys.executable, str(REPO_ROOT / "stages" / script), *args]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{script} failed:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where the stages trained a three-epoch final model on Kaggle's train.csv."""
    train_csv = require_kaggle_file("train.csv")
    work = tmp_path_factory.mktemp("pipeline")

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    # The log target gives dollar-scale prices after three epochs; the raw target would not.
    params["train"].update({"max_epochs": 3, "min_epochs": 1, "price_target": "log_standardized"})
    params["lr"] = 0.01
    (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    (work / "metrics").mkdir()
    # final.py reads the tune summary even when `lr` is a number.
    (work / "metrics" / "tune.json").write_text(json.dumps({"best_lr": 0.01}), encoding="utf-8")

    run_stage(work, "clean.py", str(train_csv), "data/clean/train.parquet", "metrics/clean.json")
    run_stage(
        work,
        "derive_category.py",
        "data/clean/train.parquet",
        "data/labelled/train.parquet",
        "metrics/category.json",
    )
    run_stage(work, "split.py", "data/labelled/train.parquet", "data/split", "metrics/split.json")
    run_stage(
        work,
        "encode_scale.py",
        "data/split",
        "data/encoded",
        "data/encoded_state/preprocessor.json",
        "metrics/encode_scale.json",
    )
    run_stage(
        work,
        "final.py",
        "--encoded-dir=data/encoded",
        "--state=data/encoded_state/preprocessor.json",
        "--tune-metrics=metrics/tune.json",
        "--model-dir=models/final",
        "--predictions=data/final/test_predictions.parquet",
        "--metrics=metrics/final.json",
    )
    return work


def run_cli(work: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `house-multitask` in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    command = [sys.executable, "-m", "house_multitask.cli", *args]
    return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)


def read_predictions_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, float_precision="round_trip")


@pytest.fixture(scope="module")
def kaggle_test_run(pipeline: Path) -> tuple[subprocess.CompletedProcess, pd.DataFrame]:
    """The CLI's run on all of Kaggle's test.csv and the predictions it wrote."""
    test_csv = require_kaggle_file("test.csv")
    output = pipeline / "kaggle_test_predictions.csv"
    done = run_cli(
        pipeline, "predict", "--model", "models/final", "--input", str(test_csv), "--output",
        str(output),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done, read_predictions_csv(output)


def test_kaggle_test_csv_row_count(kaggle_test_run):
    _, predictions = kaggle_test_run
    assert len(predictions) == KAGGLE_TEST_ROWS


def test_kaggle_test_csv_ids_match_input(kaggle_test_run):
    _, predictions = kaggle_test_run
    expected = pd.read_csv(require_kaggle_file("test.csv"), usecols=[ID_COLUMN])[ID_COLUMN]
    assert predictions[ID_COLUMN].tolist() == expected.tolist()


def test_kaggle_test_csv_prices_finite(kaggle_test_run):
    _, predictions = kaggle_test_run
    assert np.isfinite(predictions[PRICE_COLUMN]).all()


def test_kaggle_test_csv_prices_positive(kaggle_test_run):
    _, predictions = kaggle_test_run
    assert (predictions[PRICE_COLUMN] > 0).all()


def test_kaggle_test_csv_median_price_plausible(kaggle_test_run):
    _, predictions = kaggle_test_run
    assert 50_000 < predictions[PRICE_COLUMN].median() < 500_000


def test_kaggle_test_csv_classes_valid(kaggle_test_run):
    _, predictions = kaggle_test_run
    assert predictions[CATEGORY_COLUMN].isin(range(N_CATEGORIES)).all()


def test_kaggle_test_csv_probabilities_sum_to_one(kaggle_test_run):
    _, predictions = kaggle_test_run
    sums = predictions[PROBABILITY_COLUMNS].sum(axis=1)
    assert np.allclose(sums, 1.0, atol=1e-6)


@pytest.mark.parametrize(
    ("column", "fragment"),
    [
        ("MSSubClass", "not seen in training ('150' in 1 row)"),
        ("MSZoning", "4 missing values imputed"),
        ("KitchenQual", "1 missing value imputed"),
        ("GarageYrBlt", "after the current year"),
        ("GarageYrBlt", "later than the sale year YrSold (Id 2550, 2593)"),
    ],
)
def test_kaggle_test_csv_warning_lines(kaggle_test_run, column, fragment):
    done, _ = kaggle_test_run
    lines = [line for line in done.stderr.splitlines() if f"column {column}:" in line]
    assert len(lines) == 1, done.stderr
    assert fragment in lines[0], done.stderr


def test_kaggle_test_csv_kaggle_format_header(pipeline):
    test_csv = require_kaggle_file("test.csv")
    output = pipeline / "submission.csv"
    done = run_cli(
        pipeline, "predict", "--model", "models/final", "--input", str(test_csv), "--output",
        str(output), "--format", "kaggle",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert output.read_text(encoding="utf-8").splitlines()[0] == "Id,SalePrice"


@pytest.fixture(scope="module")
def split_test_rows(pipeline: Path) -> tuple[Path, pd.DataFrame]:
    """The final stage's test split written back as raw train.csv lines, and its predictions."""
    final_predictions = pd.read_parquet(pipeline / "data" / "final" / "test_predictions.parquet")
    lines = require_kaggle_file("train.csv").read_text(encoding="utf-8-sig").splitlines()
    by_id = {int(line.split(",", 1)[0]): line for line in lines[1:]}

    rows_csv = pipeline / "split_test_rows.csv"
    kept = [by_id[int(house_id)] for house_id in final_predictions[ID_COLUMN]]
    rows_csv.write_text("\n".join([lines[0], *kept]) + "\n", encoding="utf-8")
    return rows_csv, final_predictions


@pytest.fixture(scope="module")
def round_trip(pipeline: Path, split_test_rows) -> dict[str, pd.DataFrame]:
    """Predictions for the test split from the final stage, the CLI and the Python API."""
    rows_csv, final_predictions = split_test_rows
    output = pipeline / "split_test_cli.csv"
    done = run_cli(
        pipeline, "predict", "--model", "models/final", "--input", str(rows_csv), "--output",
        str(output),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    raw = pd.read_csv(rows_csv, dtype=str, keep_default_na=False)
    api = load_model(pipeline / "models" / "final").predict(raw)
    return {"final": final_predictions, "cli": read_predictions_csv(output), "api": api}


@pytest.mark.parametrize("source", ["cli", "api"])
@pytest.mark.parametrize("column", [ID_COLUMN, PRICE_COLUMN, CATEGORY_COLUMN])
def test_round_trip_column_equal(round_trip, source, column):
    expected = round_trip["final"][column].to_numpy(dtype="float64")
    actual = round_trip[source][column].to_numpy(dtype="float64")
    assert np.array_equal(actual, expected)


@pytest.mark.parametrize("source", ["cli", "api"])
def test_round_trip_probabilities_equal(round_trip, source):
    expected = round_trip["final"][PROBABILITY_COLUMNS].to_numpy()
    actual = round_trip[source][PROBABILITY_COLUMNS].to_numpy()
    assert np.array_equal(actual, expected)
