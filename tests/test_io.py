"""Reading Kaggle CSV files with schema checks, and the JSON and Parquet helpers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from house_multitask.data.io import (
    read_json,
    read_kaggle_csv,
    read_parquet,
    write_json,
    write_parquet,
)
from house_multitask.errors import DataError
from house_multitask.schema import CATEGORY_RULE_COLUMNS, ID_COLUMN, PRICE_COLUMN

REQUIRED = (ID_COLUMN, PRICE_COLUMN, *CATEGORY_RULE_COLUMNS)
HEADER = (
    "Id,MSSubClass,LotArea,MasVnrType,MasVnrArea,BldgType,HouseStyle,YearBuilt,YearRemodAdd,"
    "SalePrice"
)


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    """Three houses: row 1 has MasVnrType "None", row 2 "NA", row 3 an empty cell."""
    rows = [
        "1,60,8450,None,0,1Fam,2Story,2003,2003,208500",
        "2,20,9600,NA,NA,1Fam,1Story,1976,1976,181500",
        "3,60,11250,,,1Fam,2Story,2001,2002,223500",
    ]
    return write_text(tmp_path / "train.csv", "\n".join([HEADER, *rows]) + "\n")


def test_read_kaggle_csv_round_trips_synthetic_frame(make_raw_frame, write_raw_csv) -> None:
    frame = make_raw_frame()

    read = read_kaggle_csv(write_raw_csv(frame), REQUIRED)

    pd.testing.assert_frame_equal(read, frame)


def test_read_kaggle_csv_keeps_none_category(small_csv: Path) -> None:
    frame = read_kaggle_csv(small_csv, REQUIRED)

    assert frame.loc[0, "MasVnrType"] == "None"


def test_read_kaggle_csv_na_is_missing(small_csv: Path) -> None:
    frame = read_kaggle_csv(small_csv, REQUIRED)

    assert pd.isna(frame.loc[1, "MasVnrType"])
    assert math.isnan(frame.loc[1, "MasVnrArea"])


def test_read_kaggle_csv_empty_cell_is_missing(small_csv: Path) -> None:
    frame = read_kaggle_csv(small_csv, REQUIRED)

    assert pd.isna(frame.loc[2, "MasVnrType"])
    assert math.isnan(frame.loc[2, "MasVnrArea"])


def test_read_kaggle_csv_numeric_columns_are_float(small_csv: Path) -> None:
    frame = read_kaggle_csv(small_csv, REQUIRED)

    assert frame["LotArea"].dtype == "float64"


def test_read_kaggle_csv_keeps_mssubclass_as_text(small_csv: Path) -> None:
    frame = read_kaggle_csv(small_csv, REQUIRED)

    assert frame.loc[0, "MSSubClass"] == "60"


def test_read_kaggle_csv_text_in_numeric_column(tmp_path: Path) -> None:
    rows = [
        "1,60,8450,None,0,1Fam,2Story,2003,2003,208500",
        "2,20,large,None,0,1Fam,1Story,1976,1976,181500",
    ]
    path = write_text(tmp_path / "train.csv", "\n".join([HEADER, *rows]) + "\n")

    with pytest.raises(DataError, match="column LotArea, line 3: 'large' is not a number"):
        read_kaggle_csv(path, REQUIRED)


def test_read_kaggle_csv_names_every_missing_column(tmp_path: Path) -> None:
    path = write_text(tmp_path / "train.csv", "MSSubClass,LotArea,BldgType\n60,8450,1Fam\n")

    with pytest.raises(
        DataError,
        match="required column\\(s\\) missing: Id, SalePrice, HouseStyle, YearBuilt, YearRemodAdd",
    ):
        read_kaggle_csv(path, REQUIRED)


def test_read_kaggle_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="absent.csv: file not found"):
        read_kaggle_csv(tmp_path / "absent.csv", REQUIRED)


def test_read_kaggle_csv_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a regular file"):
        read_kaggle_csv(tmp_path, REQUIRED)


def test_read_kaggle_csv_empty_file(tmp_path: Path) -> None:
    path = write_text(tmp_path / "train.csv", "")

    with pytest.raises(DataError, match="the file is empty; expected a CSV with a header row"):
        read_kaggle_csv(path, REQUIRED)


def test_read_kaggle_csv_header_only(tmp_path: Path) -> None:
    path = write_text(tmp_path / "train.csv", HEADER + "\n")

    with pytest.raises(DataError, match="the file has a header but no data rows"):
        read_kaggle_csv(path, REQUIRED)


def test_read_kaggle_csv_semicolon_delimited(tmp_path: Path, small_csv: Path) -> None:
    text = small_csv.read_text(encoding="utf-8").replace(",", ";")
    path = write_text(tmp_path / "semicolon.csv", text)

    with pytest.raises(DataError, match="the header has no commas \\(it looks ';'-separated\\)"):
        read_kaggle_csv(path, REQUIRED)


def test_read_kaggle_csv_accepts_utf8_bom(tmp_path: Path, small_csv: Path) -> None:
    text = small_csv.read_text(encoding="utf-8")
    path = write_text(tmp_path / "bom.csv", text, encoding="utf-8-sig")

    frame = read_kaggle_csv(path, REQUIRED)

    assert frame.columns[0] == ID_COLUMN


def test_read_kaggle_csv_rejects_latin1_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"Id,SalePrice,Neighborhood\n1,100000,Caf\xe9\n")

    with pytest.raises(DataError, match="not a UTF-8 text file"):
        read_kaggle_csv(path, (ID_COLUMN,))


def test_read_kaggle_csv_rejects_row_with_extra_fields(tmp_path: Path) -> None:
    path = write_text(tmp_path / "train.csv", "Id,SalePrice\n1,100000\n2,3,4\n")

    with pytest.raises(DataError, match="not valid CSV"):
        read_kaggle_csv(path, (ID_COLUMN,))


def test_read_kaggle_csv_trailing_comma(tmp_path: Path) -> None:
    # pandas would silently make the first column the index and shift every value left.
    path = write_text(tmp_path / "train.csv", "Id,SalePrice\n1,100000,\n2,200000,\n")

    with pytest.raises(DataError, match="more fields than the header"):
        read_kaggle_csv(path, (ID_COLUMN,))


def test_read_kaggle_csv_error_is_one_line(tmp_path: Path) -> None:
    path = write_text(tmp_path / "train.csv", "Id,SalePrice\n1,100000\n2,3,4\n")

    with pytest.raises(DataError) as caught:
        read_kaggle_csv(path, (ID_COLUMN,))

    assert "\n" not in str(caught.value)


def test_read_kaggle_csv_real_file_keeps_none(kaggle_train_csv: Path) -> None:
    frame = read_kaggle_csv(kaggle_train_csv, REQUIRED)

    assert (frame["MasVnrType"] == "None").sum() == 864


def test_read_kaggle_csv_real_file_na_missing(kaggle_train_csv: Path) -> None:
    frame = read_kaggle_csv(kaggle_train_csv, REQUIRED)

    assert frame["MasVnrType"].isna().sum() == 8


def test_write_json_replaces_non_finite_with_null(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    data = {"nan": math.nan, "inf": np.float32("inf"), "nested": [-math.inf, np.float64(1.5)]}

    write_json(data, path)

    assert json.loads(path.read_text(encoding="utf-8")) == {
        "inf": None,
        "nan": None,
        "nested": [None, 1.5],
    }


def test_write_json_text_has_no_nan_token(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"

    write_json({"rmse": math.nan, "loss": math.inf}, path)

    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text
    assert "Infinity" not in text


def test_write_json_converts_numpy_scalars(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"

    write_json({"count": np.int64(3), "score": np.float32(0.5)}, path)

    assert json.loads(path.read_text(encoding="utf-8")) == {"count": 3, "score": 0.5}


def test_write_json_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_json({"a": 1}, tmp_path / "out" / "metrics.json")

    assert [path.name for path in (tmp_path / "out").iterdir()] == ["metrics.json"]


def test_read_json_invalid(tmp_path: Path) -> None:
    path = write_text(tmp_path / "metrics.json", "{not json")

    with pytest.raises(DataError, match="metrics.json: invalid JSON"):
        read_json(path)


def test_read_json_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="tune.json: file not found"):
        read_json(tmp_path / "tune.json")


def test_read_parquet_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="train.parquet: file not found"):
        read_parquet(tmp_path / "train.parquet")


def test_parquet_round_trip(tmp_path: Path, make_raw_frame) -> None:
    frame = make_raw_frame()
    path = tmp_path / "nested" / "train.parquet"

    write_parquet(frame, path)

    pd.testing.assert_frame_equal(read_parquet(path), frame)
