"""Dropping mostly-missing columns, on synthetic tables and on Kaggle's train.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from house_multitask.config import CleanParams
from house_multitask.data.clean import clean_frame
from house_multitask.data.io import read_kaggle_csv
from house_multitask.features.preprocess import Preprocessor
from house_multitask.schema import CATEGORY_RULE_COLUMNS, FEATURE_COLUMNS, ID_COLUMN, PRICE_COLUMN

REQUIRED = (ID_COLUMN, PRICE_COLUMN, *CATEGORY_RULE_COLUMNS)
KAGGLE_DROPPED = ("LotFrontage", "Alley", "FireplaceQu", "PoolQC", "Fence", "MiscFeature")


def frame_with_missing_shares() -> pd.DataFrame:
    """Ten rows; column `m<k>` has k missing cells."""
    columns = {f"m{k}": [np.nan] * k + [1.0] * (10 - k) for k in (0, 1, 2, 5)}
    columns[PRICE_COLUMN] = [np.nan] * 5 + [100.0] * 5
    return pd.DataFrame(columns)


def test_clean_frame_drops_columns_above_share() -> None:
    cleaned, report = clean_frame(frame_with_missing_shares(), 0.10)

    assert report.dropped_columns == ("m2", "m5", PRICE_COLUMN)


def test_clean_frame_keeps_column_at_share() -> None:
    cleaned, _ = clean_frame(frame_with_missing_shares(), 0.10)

    assert "m1" in cleaned.columns


def test_clean_frame_keeps_protected_columns() -> None:
    cleaned, report = clean_frame(frame_with_missing_shares(), 0.10, protected=(PRICE_COLUMN,))

    assert PRICE_COLUMN in cleaned.columns


def test_clean_frame_share_one_keeps_everything() -> None:
    cleaned, report = clean_frame(frame_with_missing_shares(), 1.0)

    assert report.dropped_columns == ()


def test_clean_frame_report_counts() -> None:
    _, report = clean_frame(frame_with_missing_shares(), 0.10)

    assert report.to_metrics() == {
        "rows_in": 10,
        "rows_out": 10,
        "columns_in": 5,
        "columns_out": 2,
        "columns_dropped": 3,
        "dropped_columns": ["m2", "m5", PRICE_COLUMN],
        "missing_cells_in": 13,
        "missing_cells_out": 1,
    }


def test_clean_frame_does_not_impute(make_raw_frame) -> None:
    cleaned, _ = clean_frame(make_raw_frame(), 0.10, protected=REQUIRED)

    assert cleaned["MasVnrArea"].isna().sum() == 1


def test_clean_frame_synthetic_drops_kaggle_columns(make_raw_frame) -> None:
    _, report = clean_frame(make_raw_frame(), 0.10, protected=REQUIRED)

    assert set(report.dropped_columns) == set(KAGGLE_DROPPED)


@pytest.fixture(scope="module")
def kaggle_cleaned(kaggle_train_csv: Path):
    raw = read_kaggle_csv(kaggle_train_csv, REQUIRED)
    return clean_frame(raw, CleanParams().max_missing_share, protected=REQUIRED)


def test_clean_kaggle_drops_exactly_six_columns(kaggle_cleaned) -> None:
    _, report = kaggle_cleaned

    assert sorted(report.dropped_columns) == sorted(KAGGLE_DROPPED)


def test_clean_kaggle_keeps_every_row(kaggle_cleaned) -> None:
    cleaned, _ = kaggle_cleaned

    assert len(cleaned) == 1460


def test_clean_kaggle_leaves_73_predictors(kaggle_cleaned) -> None:
    cleaned, _ = kaggle_cleaned

    assert len(Preprocessor.fit(cleaned).predictors) == 73


def test_clean_kaggle_predictors_are_schema_features(kaggle_cleaned) -> None:
    cleaned, _ = kaggle_cleaned
    expected = [column for column in FEATURE_COLUMNS if column not in KAGGLE_DROPPED]

    assert sorted(Preprocessor.fit(cleaned).predictors) == sorted(expected)
