"""The `predict` CLI and Python API on small synthetic files: accepted and rejected input.

The model directory is written by `save_model_dir` from a preprocessor fitted on a synthetic
Ames-like table and untrained, seeded networks, so these tests need neither training nor
Kaggle's files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import build_raw_frame, write_kaggle_csv

from house_multitask.cli import main
from house_multitask.config import TrainConfig
from house_multitask.data.clean import clean_frame
from house_multitask.errors import DataError, ModelDirError
from house_multitask.features.inputs import build_inputs, numeric_input_columns
from house_multitask.features.preprocess import Preprocessor, target_to_price
from house_multitask.model_dir import (
    MODEL_FILE,
    PREPROCESSOR_FILE,
    build_network,
    load_model_dir,
    save_model_dir,
)
from house_multitask.models.network import MultiTaskNet
from house_multitask.predict import (
    find_implausible_values,
    load_model,
    write_predictions,
)
from house_multitask.schema import CATEGORY_COLUMN, ID_COLUMN, N_CATEGORIES, PRICE_COLUMN

REPO_ROOT = Path(__file__).resolve().parents[1]
PROBABILITY_COLUMNS = [f"prob_{label}" for label in range(N_CATEGORIES)]
FULL_COLUMNS = [ID_COLUMN, PRICE_COLUMN, CATEGORY_COLUMN, *PROBABILITY_COLUMNS]


# ---------------------------------------------------------------------------------------------
# Fixtures: a model directory and houses to score.


def fit_preprocessor() -> Preprocessor:
    raw = build_raw_frame(rows_per_class=5, seed=0)
    cleaned, _ = clean_frame(raw, 0.10, protected=(ID_COLUMN, PRICE_COLUMN))
    return Preprocessor.fit(cleaned)


def make_network(preprocessor: Preprocessor, config: TrainConfig, seed: int) -> MultiTaskNet:
    torch.manual_seed(seed)
    n_numeric = len(numeric_input_columns(preprocessor, config))
    return build_network(config, n_numeric, preprocessor.cardinalities()).eval()


def write_model_dir(directory: Path, config: TrainConfig, seeds: tuple[int, ...]) -> Path:
    preprocessor = fit_preprocessor()
    networks = [make_network(preprocessor, config, seed) for seed in seeds]
    return save_model_dir(directory, config, preprocessor, networks)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-network model directory with the default (raw price) configuration."""
    return write_model_dir(tmp_path_factory.mktemp("model"), TrainConfig(), seeds=(0,))


def new_houses() -> pd.DataFrame:
    """Twelve houses with Ids 2001-2012, no SalePrice and no missing predictor values."""
    frame = build_raw_frame(rows_per_class=2, seed=1).drop(columns=[PRICE_COLUMN])
    frame[ID_COLUMN] = frame[ID_COLUMN] + 2000
    frame["MasVnrType"] = frame["MasVnrType"].fillna("None")
    frame["MasVnrArea"] = frame["MasVnrArea"].fillna(0.0)
    return frame


@pytest.fixture
def houses() -> pd.DataFrame:
    """Twelve new houses as `read_kaggle_csv` returns them (see `new_houses`)."""
    return new_houses()


@pytest.fixture
def houses_csv(tmp_path: Path, houses: pd.DataFrame) -> Path:
    return write_kaggle_csv(houses, tmp_path / "houses.csv")


def run_predict(capsys, model: Path, input_path: Path, output: Path, *extra: str):
    """Run `house-multitask predict` in this process; return (exit status, stderr lines)."""
    status = main(
        ["predict", "--model", str(model), "--input", str(input_path), "--output", str(output),
         *extra]
    )  # fmt: skip
    return status, capsys.readouterr().err.splitlines()


def read_predictions(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, float_precision="round_trip")


@pytest.fixture
def baseline(capsys, model_dir: Path, houses_csv: Path, tmp_path: Path) -> pd.DataFrame:
    """The CLI's predictions for `houses_csv`, which the other inputs must reproduce."""
    output = tmp_path / "baseline.csv"
    status, _ = run_predict(capsys, model_dir, houses_csv, output)
    assert status == 0
    return read_predictions(output)


# ---------------------------------------------------------------------------------------------
# Input that must be rejected: exit status 2, one `error:` line naming file, column and line.


def csv_text(houses: pd.DataFrame, path: Path) -> str:
    return write_kaggle_csv(houses, path).read_text(encoding="utf-8")


def missing_file(tmp_path, houses):
    return tmp_path / "absent.csv", r"absent\.csv: file not found"


def empty_file(tmp_path, houses):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    return path, r"empty\.csv: the file is empty"


def header_only(tmp_path, houses):
    path = tmp_path / "header.csv"
    path.write_text(csv_text(houses, path).splitlines()[0] + "\n", encoding="utf-8")
    return path, r"header\.csv: the file has a header but no data rows"


def columns_missing(tmp_path, houses):
    path = write_kaggle_csv(houses.drop(columns=["MSZoning", "GarageCars"]), tmp_path / "few.csv")
    return path, r"few\.csv: required column\(s\) missing: GarageCars, MSZoning"


def text_in_numeric_column(tmp_path, houses):
    houses["GrLivArea"] = houses["GrLivArea"].astype(object)
    houses.loc[2, "GrLivArea"] = "big"
    path = write_kaggle_csv(houses, tmp_path / "text.csv")
    return path, r"text\.csv: column GrLivArea, line 4: 'big' is not a number"


def duplicate_ids(tmp_path, houses):
    houses.loc[3, ID_COLUMN] = houses.loc[1, ID_COLUMN]
    path = write_kaggle_csv(houses, tmp_path / "twice.csv")
    return path, r"twice\.csv: column Id, line 5: Id 2002 repeats the Id on line 3"


def missing_id(tmp_path, houses):
    houses.loc[2, ID_COLUMN] = np.nan
    path = write_kaggle_csv(houses, tmp_path / "noid.csv")
    return path, r"noid\.csv: column Id, line 4: the Id is missing"


def binary_file(tmp_path, houses):
    path = tmp_path / "image.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    return path, r"image\.csv: not a CSV file: it contains NUL bytes"


def parquet_named_csv(tmp_path, houses):
    path = tmp_path / "table.csv"
    houses.to_parquet(path)
    return path, r"table\.csv: not a CSV file: it is a Parquet file"


def excel_workbook(tmp_path, houses):
    path = tmp_path / "book.csv"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + b"[Content_Types].xml")
    return path, r"book\.csv: not a CSV file: it is a ZIP archive or an Excel workbook"


def semicolon_delimiter(tmp_path, houses):
    path = tmp_path / "semicolon.csv"
    houses.to_csv(path, sep=";", index=False)
    return path, r"semicolon\.csv: the header has no commas \(it looks ';'-separated\)"


def not_utf8(tmp_path, houses):
    path = tmp_path / "latin1.csv"
    text = csv_text(houses, path).replace("NAmes", "NÄmes").replace("CollgCr", "CÄllgCr")
    path.write_bytes(text.encode("latin-1"))
    return path, r"latin1\.csv: not a UTF-8 text file"


def extra_field(tmp_path, houses):
    path = tmp_path / "ragged.csv"
    lines = csv_text(houses, path).splitlines()
    lines[2] += ",surplus"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, r"ragged\.csv: not valid CSV: .*line 3"


def parquet_text_in_numeric_column(tmp_path, houses):
    houses["LotArea"] = houses["LotArea"].astype(object)
    houses.loc[4, "LotArea"] = "large"
    path = tmp_path / "text.parquet"
    houses.astype({"LotArea": str}).to_parquet(path)
    return path, r"text\.parquet: column LotArea, row 5: 'large' is not a number"


def invalid_parquet(tmp_path, houses):
    path = tmp_path / "fake.parquet"
    write_kaggle_csv(houses, path)
    return path, r"fake\.parquet: not a valid Parquet file"


REJECTED_INPUTS = {
    "missing file": missing_file,
    "empty file": empty_file,
    "header only": header_only,
    "required columns missing": columns_missing,
    "text in numeric column": text_in_numeric_column,
    "duplicate Ids": duplicate_ids,
    "missing Id": missing_id,
    "binary file": binary_file,
    "Parquet named .csv": parquet_named_csv,
    "Excel workbook": excel_workbook,
    "semicolon delimiter": semicolon_delimiter,
    "not UTF-8": not_utf8,
    "extra field in a row": extra_field,
    "Parquet text in numeric column": parquet_text_in_numeric_column,
    "invalid Parquet": invalid_parquet,
}


@pytest.fixture(params=sorted(REJECTED_INPUTS))
def rejected_run(request, capsys, model_dir, houses, tmp_path):
    """Run the CLI on one rejected input; return (status, stderr lines, pattern, output)."""
    input_path, pattern = REJECTED_INPUTS[request.param](tmp_path, houses)
    output = tmp_path / "predictions.csv"
    status, lines = run_predict(capsys, model_dir, input_path, output)
    return status, lines, pattern, output


def test_rejected_input_exit_status(rejected_run):
    status, lines, _, _ = rejected_run
    assert status == 2, lines


def test_rejected_input_one_line(rejected_run):
    _, lines, _, _ = rejected_run
    assert len(lines) == 1, lines


def test_rejected_input_message(rejected_run):
    _, lines, pattern, _ = rejected_run
    assert re.search(f"^error: .*{pattern}", lines[0] if lines else ""), lines


def test_rejected_input_no_output(rejected_run):
    _, _, _, output = rejected_run
    assert not output.exists()


def test_output_folder_missing_rejected(capsys, model_dir, houses_csv, tmp_path):
    output = tmp_path / "absent" / "predictions.csv"
    status, lines = run_predict(capsys, model_dir, houses_csv, output)
    assert (status, lines) == (
        2,
        [f"error: {output}: folder {output.parent} does not exist; create it or choose another "
         "output"],
    )  # fmt: skip


def test_output_is_input_rejected(capsys, model_dir, houses_csv):
    status, lines = run_predict(capsys, model_dir, houses_csv, houses_csv)
    assert status == 2, lines
    assert lines == [
        f"error: {houses_csv}: is the input file; write the predictions to another file"
    ]


def test_model_dir_missing_rejected(capsys, houses_csv, tmp_path):
    status, lines = run_predict(capsys, tmp_path / "nomodel", houses_csv, tmp_path / "out.csv")
    assert status == 2, lines
    assert "nomodel: model directory not found" in lines[0], lines


# ---------------------------------------------------------------------------------------------
# Atomic output.


def test_failed_run_keeps_previous_output(capsys, model_dir, houses, tmp_path):
    output = tmp_path / "predictions.csv"
    output.write_text("previous good predictions\n", encoding="utf-8")
    input_path, _ = duplicate_ids(tmp_path, houses)
    run_predict(capsys, model_dir, input_path, output)
    assert output.read_text(encoding="utf-8") == "previous good predictions\n"


def test_failed_write_keeps_previous_output(monkeypatch, baseline, tmp_path):
    output = tmp_path / "predictions.csv"
    output.write_text("previous good predictions\n", encoding="utf-8")

    def write_half_then_fail(self, path, **kwargs):
        Path(path).write_text("Id,Sale", encoding="utf-8")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", write_half_then_fail)
    with pytest.raises(DataError, match="predictions.csv: writing failed: No space left"):
        write_predictions(baseline, output)
    assert output.read_text(encoding="utf-8") == "previous good predictions\n"


def test_failed_write_leaves_no_temporary_file(monkeypatch, baseline, tmp_path):
    output = tmp_path / "out" / "predictions.csv"
    output.parent.mkdir()

    def fail(self, path, **kwargs):
        Path(path).write_text("Id,Sale", encoding="utf-8")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(DataError):
        write_predictions(baseline, output)
    assert list(output.parent.iterdir()) == []


def test_successful_run_leaves_only_output(capsys, model_dir, houses_csv, tmp_path):
    output = tmp_path / "out" / "predictions.csv"
    output.parent.mkdir()
    run_predict(capsys, model_dir, houses_csv, output)
    assert [path.name for path in output.parent.iterdir()] == ["predictions.csv"]


def test_output_replaces_previous_file(capsys, model_dir, houses_csv, tmp_path):
    output = tmp_path / "predictions.csv"
    output.write_text("old\n", encoding="utf-8")
    run_predict(capsys, model_dir, houses_csv, output)
    assert list(read_predictions(output).columns) == FULL_COLUMNS


# ---------------------------------------------------------------------------------------------
# Input that must be accepted, with the same predictions as the plain CSV.


def with_bom(tmp_path, houses):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_text(houses, path).encode("utf-8"))
    return path


def with_sale_price(tmp_path, houses):
    houses[PRICE_COLUMN] = 123456.0
    return write_kaggle_csv(houses, tmp_path / "priced.csv")


def with_extra_columns(tmp_path, houses):
    houses["Notes"] = "listed in spring"
    houses.insert(0, "Agent", "A. Smith")
    return write_kaggle_csv(houses, tmp_path / "extra.csv")


def with_shuffled_columns(tmp_path, houses):
    columns = list(houses.columns)[::-1]
    return write_kaggle_csv(houses[columns], tmp_path / "reversed.csv")


def with_crlf_lines(tmp_path, houses):
    path = tmp_path / "crlf.csv"
    path.write_bytes(csv_text(houses, path).replace("\n", "\r\n").encode("utf-8"))
    return path


def as_parquet(tmp_path, houses):
    path = tmp_path / "houses.parquet"
    houses.to_parquet(path)
    return path


def as_parquet_with_number_categories(tmp_path, houses):
    houses["MSSubClass"] = houses["MSSubClass"].astype("int64")
    path = tmp_path / "typed.pq"
    houses.to_parquet(path)
    return path


ACCEPTED_INPUTS = {
    "UTF-8 BOM": with_bom,
    "SalePrice column": with_sale_price,
    "extra columns": with_extra_columns,
    "reordered columns": with_shuffled_columns,
    "CRLF line endings": with_crlf_lines,
    "Parquet": as_parquet,
    "Parquet with numeric MSSubClass": as_parquet_with_number_categories,
}


@pytest.mark.parametrize("case", sorted(ACCEPTED_INPUTS))
def test_accepted_input_same_predictions(capsys, model_dir, houses, baseline, tmp_path, case):
    input_path = ACCEPTED_INPUTS[case](tmp_path, houses)
    output = tmp_path / "accepted.csv"
    status, lines = run_predict(capsys, model_dir, input_path, output)
    assert status == 0, lines
    pd.testing.assert_frame_equal(read_predictions(output), baseline)


def test_full_format_columns(baseline):
    assert list(baseline.columns) == FULL_COLUMNS


def test_full_format_one_row_per_house(baseline, houses):
    assert baseline[ID_COLUMN].tolist() == houses[ID_COLUMN].astype(int).tolist()


def test_kaggle_format_exact_columns(capsys, model_dir, houses_csv, tmp_path):
    output = tmp_path / "submission.csv"
    run_predict(capsys, model_dir, houses_csv, output, "--format", "kaggle")
    assert output.read_text(encoding="utf-8").splitlines()[0] == "Id,SalePrice"


def test_kaggle_format_matches_full(capsys, model_dir, houses_csv, baseline, tmp_path):
    output = tmp_path / "submission.csv"
    run_predict(capsys, model_dir, houses_csv, output, "--format", "kaggle")
    pd.testing.assert_frame_equal(read_predictions(output), baseline[[ID_COLUMN, PRICE_COLUMN]])


def test_parquet_output_matches_csv(capsys, model_dir, houses_csv, baseline, tmp_path):
    output = tmp_path / "predictions.parquet"
    run_predict(capsys, model_dir, houses_csv, output)
    pd.testing.assert_frame_equal(pd.read_parquet(output), baseline)


def test_success_prints_nothing_for_clean_input(capsys, model_dir, houses_csv, tmp_path):
    status, lines = run_predict(capsys, model_dir, houses_csv, tmp_path / "out.csv")
    assert (status, lines) == (0, [])


# ---------------------------------------------------------------------------------------------
# Python API.


def test_api_matches_cli(model_dir, houses_csv, baseline):
    raw = pd.read_csv(houses_csv, dtype=str, keep_default_na=False)
    predictions = load_model(model_dir).predict(raw)
    pd.testing.assert_frame_equal(predictions, baseline)


def test_api_predict_file_matches_cli(model_dir, houses_csv, baseline):
    predictions = load_model(model_dir).predict_file(houses_csv)
    pd.testing.assert_frame_equal(predictions, baseline)


def test_api_accepts_pandas_default_missing_values(model_dir, houses_csv):
    frame = pd.read_csv(houses_csv)
    predictions = load_model(model_dir).predict(frame)
    assert np.isfinite(predictions[PRICE_COLUMN]).all()


def test_api_does_not_modify_input(model_dir, houses):
    before = houses.copy()
    load_model(model_dir).predict(houses)
    pd.testing.assert_frame_equal(houses, before)


def test_api_missing_columns_named(model_dir, houses):
    frame = houses.drop(columns=["Neighborhood", "YrSold"])
    with pytest.raises(DataError, match=r"my houses: required column\(s\) missing: YrSold, Neigh"):
        load_model(model_dir).predict(frame, source="my houses")


def test_api_text_in_numeric_column_row(model_dir, houses):
    houses["GarageArea"] = houses["GarageArea"].astype(object)
    houses.loc[0, "GarageArea"] = "n/a"
    with pytest.raises(DataError, match=r"column GarageArea, row 1: 'n/a' is not a number"):
        load_model(model_dir).predict(houses)


def test_api_empty_frame_rejected(model_dir, houses):
    with pytest.raises(DataError, match="no data rows"):
        load_model(model_dir).predict(houses.iloc[:0])


def test_api_required_columns(model_dir):
    model = load_model(model_dir)
    assert model.required_columns == [ID_COLUMN, *model.preprocessor.predictors]


def test_api_does_not_change_torch_threads(model_dir, houses):
    threads = torch.get_num_threads()
    load_model(model_dir).predict(houses)
    assert torch.get_num_threads() == threads


# ---------------------------------------------------------------------------------------------
# Ensembles: price outputs averaged in target space, probabilities averaged.


@pytest.fixture(scope="module", params=["raw", "log_standardized"])
def ensemble(request, tmp_path_factory) -> dict:
    """A three-network model's predictions, and the members' outputs averaged by hand."""
    config = TrainConfig(price_target=request.param)
    directory = tmp_path_factory.mktemp(f"ensemble_{request.param}")
    write_model_dir(directory, config, seeds=(0, 1, 2))
    houses = new_houses()
    predictions = load_model(directory).predict(houses)

    preprocessor = fit_preprocessor()
    encoded, _ = preprocessor.transform(houses)
    inputs = build_inputs(encoded, preprocessor, config)
    outputs = []
    probabilities = []
    with torch.inference_mode():
        for seed in (0, 1, 2):
            network = make_network(preprocessor, config, seed)
            price_output, logits = network(inputs.numeric, inputs.codes)
            outputs.append(price_output.double().numpy())
            probabilities.append(torch.softmax(logits, dim=1).double().numpy())
    price = target_to_price(
        np.mean(outputs, axis=0),
        config.price_target,
        preprocessor.price_log_mean,
        preprocessor.price_log_std,
    )
    return {
        "predictions": predictions,
        "price": price,
        "probabilities": np.mean(probabilities, axis=0),
    }


def test_ensemble_price_is_mean_in_target_space(ensemble):
    actual = ensemble["predictions"][PRICE_COLUMN]
    np.testing.assert_allclose(actual, ensemble["price"], rtol=1e-12)


def test_ensemble_probabilities_are_mean(ensemble):
    actual = ensemble["predictions"][PROBABILITY_COLUMNS]
    np.testing.assert_allclose(actual, ensemble["probabilities"], rtol=1e-12)


def test_ensemble_class_is_argmax_of_mean(ensemble):
    expected = ensemble["probabilities"].argmax(axis=1).tolist()
    assert ensemble["predictions"][CATEGORY_COLUMN].tolist() == expected


# ---------------------------------------------------------------------------------------------
# Model directory checks.


def remove(directory: Path, name: str) -> None:
    (directory / name).unlink()


def edit_manifest(directory: Path, **changes) -> None:
    path = directory / MODEL_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            manifest.pop(key)
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest), encoding="utf-8")


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


MODEL_DIR_DAMAGE = {
    "model.json missing": (
        lambda d: remove(d, MODEL_FILE),
        r"model\.json: file missing, so the model directory is incomplete",
    ),
    "weights missing": (
        lambda d: remove(d, "weights_0.pt"),
        r"weights_0\.pt: file missing",
    ),
    "preprocessor missing": (
        lambda d: remove(d, PREPROCESSOR_FILE),
        r"preprocessor\.json: file missing",
    ),
    "weights corrupted": (
        lambda d: flip_byte(d / "weights_0.pt"),
        r"weights_0\.pt: corrupted: its SHA-256 differs from the one in model\.json",
    ),
    "preprocessor edited": (
        lambda d: (d / PREPROCESSOR_FILE).write_text("{}", encoding="utf-8"),
        r"preprocessor\.json: corrupted: its SHA-256 differs",
    ),
    "model.json not JSON": (
        lambda d: (d / MODEL_FILE).write_text("{truncated", encoding="utf-8"),
        r"model\.json: corrupted: not valid JSON",
    ),
    "newer format version": (
        lambda d: edit_manifest(d, format_version=2),
        r"model\.json: incompatible format_version 2; house-multitask .* reads format_version 1",
    ),
    "other major package version": (
        lambda d: edit_manifest(d, package_version="7.0.0"),
        r"model\.json: incompatible package_version '7\.0\.0'",
    ),
    "manifest key missing": (
        lambda d: edit_manifest(d, sha256=None),
        r"model\.json: corrupted: missing key\(s\) sha256",
    ),
    "file name outside the folder": (
        lambda d: edit_manifest(d, sha256={"../weights_0.pt": "0", PREPROCESSOR_FILE: "0"}),
        r"model\.json: corrupted",
    ),
}


@pytest.fixture(params=sorted(MODEL_DIR_DAMAGE))
def damaged_model_dir(request, model_dir, tmp_path) -> tuple[Path, str]:
    damage, pattern = MODEL_DIR_DAMAGE[request.param]
    copy = Path(shutil.copytree(model_dir, tmp_path / "model"))
    damage(copy)
    return copy, pattern


def test_damaged_model_dir_rejected(damaged_model_dir):
    directory, pattern = damaged_model_dir
    with pytest.raises(ModelDirError, match=pattern):
        load_model(directory)


def test_damaged_model_dir_cli_exit_status(capsys, damaged_model_dir, houses_csv, tmp_path):
    directory, _ = damaged_model_dir
    status, lines = run_predict(capsys, directory, houses_csv, tmp_path / "out.csv")
    assert (status, len(lines)) == (2, 1), lines


def test_same_major_package_version_accepted(model_dir, tmp_path):
    copy = Path(shutil.copytree(model_dir, tmp_path / "model"))
    edit_manifest(copy, package_version="0.99.0")
    assert len(load_model(copy).networks) == 1


# ---------------------------------------------------------------------------------------------
# Warnings: imputed, unseen and implausible values, one line per column.


@pytest.fixture
def messy_houses(houses: pd.DataFrame) -> pd.DataFrame:
    houses.loc[[0, 3, 5], "MSZoning"] = np.nan
    houses.loc[[1, 2], "GarageCars"] = np.nan
    houses.loc[[4, 6], "Neighborhood"] = "Atlantis"
    houses.loc[7, "MSSubClass"] = "150"
    houses.loc[8, "GarageYrBlt"] = 2207
    houses.loc[[9, 10], "LotArea"] = -5
    return houses


def test_report_one_line_per_column(model_dir, messy_houses):
    _, report = load_model(model_dir).predict_with_report(messy_houses, source="messy.csv")
    flagged = [line.split(": ")[1] for line in report.lines()]
    assert flagged == [
        "column LotArea",
        "column GarageYrBlt",
        "column GarageCars",
        "column MSSubClass",
        "column MSZoning",
        "column Neighborhood",
    ]


@pytest.mark.parametrize(
    ("column", "text"),
    [
        ("MSZoning", "3 missing values imputed with the training value 'RL' (mode)"),
        ("GarageCars", "2 missing values imputed with the training value"),
        ("Neighborhood", "2 values not seen in training ('Atlantis' in 2 rows)"),
        ("MSSubClass", "1 value not seen in training ('150' in 1 row)"),
        ("GarageYrBlt", "1 implausible value later than the sale year YrSold (Id 2009)"),
        ("LotArea", "2 implausible values below zero (Id 2010, 2011)"),
    ],
)
def test_report_line_text(model_dir, messy_houses, column, text):
    _, report = load_model(model_dir).predict_with_report(messy_houses, source="messy.csv")
    line = next(line for line in report.lines() if f"column {column}:" in line)
    assert text in line, line


def test_report_scores_every_row(model_dir, messy_houses):
    predictions = load_model(model_dir).predict(messy_houses)
    assert np.isfinite(predictions[PRICE_COLUMN]).all()


def test_report_logged_as_warnings(model_dir, messy_houses, caplog):
    load_model(model_dir).predict(messy_houses, source="messy.csv")
    warnings = [record for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 6


def house(**values) -> dict:
    base = {ID_COLUMN: 1.0, "YearBuilt": 1990.0, "YearRemodAdd": 1995.0, "GarageYrBlt": 1990.0,
            "YrSold": 2008.0, "MoSold": 5.0, "LotArea": 9000.0}  # fmt: skip
    return {**base, **values}


IMPLAUSIBLE = {
    "negative area": (house(LotArea=-1.0), "LotArea", "below zero"),
    "garage after sale": (
        house(GarageYrBlt=2009.0),
        "GarageYrBlt",
        "later than the sale year YrSold",
    ),
    "garage in the future": (
        house(GarageYrBlt=2207.0),
        "GarageYrBlt",
        "after the current year 2026",
    ),
    "built after sale": (house(YearBuilt=2009.0, YearRemodAdd=2009.0), "YearBuilt", "later than"),
    "remodelled after sale": (house(YearRemodAdd=2010.0), "YearRemodAdd", "later than"),
    "remodelled before built": (house(YearRemodAdd=1980.0), "YearRemodAdd", "earlier than"),
    "sold in the future": (house(YrSold=2030.0), "YrSold", "after the current year 2026"),
    "month 13": (house(MoSold=13.0), "MoSold", "outside the months 1-12"),
}


@pytest.mark.parametrize("case", sorted(IMPLAUSIBLE))
def test_implausible_value_found(case):
    row, column, reason = IMPLAUSIBLE[case]
    found = find_implausible_values(pd.DataFrame([row]), current_year=2026)
    reasons = [text for text in found.get(column, {}) if text.startswith(reason)]
    assert [found[column][text] for text in reasons] == [[1.0]], found


def test_implausible_none_for_plausible_house():
    assert find_implausible_values(pd.DataFrame([house()]), current_year=2026) == {}


def test_implausible_ignores_missing_values():
    row = house(GarageYrBlt=np.nan, LotArea=np.nan)
    assert find_implausible_values(pd.DataFrame([row]), current_year=2026) == {}


# ---------------------------------------------------------------------------------------------
# The CLI in a subprocess: warnings on stderr, and neither Lightning nor Optuna imported.

HEAVY_PACKAGES = ("lightning", "lightning_fabric", "pytorch_lightning", "optuna")
PROBE = f"""
import sys
from house_multitask.cli import main
status = main(sys.argv[1:])
heavy = sorted(name for name in sys.modules if name.split(".")[0] in {HEAVY_PACKAGES!r})
print(",".join(heavy))
sys.exit(status)
"""


@pytest.fixture(scope="module")
def cli_subprocess(model_dir, tmp_path_factory) -> subprocess.CompletedProcess:
    folder = tmp_path_factory.mktemp("subprocess")
    messy = new_houses()
    messy.loc[[0, 3, 5], "MSZoning"] = np.nan
    messy.loc[[4, 6], "Neighborhood"] = "Atlantis"
    input_path = write_kaggle_csv(messy, folder / "messy.csv")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    command = [
        sys.executable, "-c", PROBE, "predict", "--model", str(model_dir), "--input",
        str(input_path), "--output", str(folder / "out.csv"),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
def test_cli_subprocess_exit_status(cli_subprocess):
    assert cli_subprocess.returncode == 0, cli_subprocess.stderr


@pytest.mark.slow
def test_cli_subprocess_imports_no_lightning_or_optuna(cli_subprocess):
    assert cli_subprocess.stdout.strip() == ""


@pytest.mark.slow
def test_cli_subprocess_warning_lines(cli_subprocess):
    lines = cli_subprocess.stderr.splitlines()
    assert [line.split(": ")[2] for line in lines] == ["column MSZoning", "column Neighborhood"]


@pytest.mark.slow
def test_cli_subprocess_warning_names_file(cli_subprocess):
    assert all("messy.csv: column" in line for line in cli_subprocess.stderr.splitlines())


def test_model_dir_round_trip_keeps_price_skip(tmp_path):
    config = TrainConfig(price_skip=True)
    directory = write_model_dir(tmp_path / "model", config, seeds=(0,))
    loaded = load_model_dir(directory)
    saved = make_network(loaded.preprocessor, config, seed=0)
    assert loaded.config.price_skip
    for name, tensor in saved.state_dict().items():
        assert torch.equal(loaded.networks[0].state_dict()[name], tensor), name
