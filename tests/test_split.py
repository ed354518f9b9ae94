"""Stratified, seeded 70/15/15 split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from house_multitask.config import CleanParams, SplitParams
from house_multitask.data.category import derive_house_category
from house_multitask.data.clean import clean_frame
from house_multitask.data.io import read_kaggle_csv
from house_multitask.data.split import SPLIT_NAMES, split_frame
from house_multitask.errors import DataError, ParamsError
from house_multitask.schema import CATEGORY_COLUMN, CATEGORY_RULE_COLUMNS, ID_COLUMN, PRICE_COLUMN

REQUIRED = (ID_COLUMN, PRICE_COLUMN, *CATEGORY_RULE_COLUMNS)


@pytest.fixture(scope="module")
def labelled(kaggle_train_csv: Path) -> pd.DataFrame:
    """Kaggle's train.csv, cleaned and labelled as the first two stages do it."""
    raw = read_kaggle_csv(kaggle_train_csv, REQUIRED)
    cleaned, _ = clean_frame(raw, CleanParams().max_missing_share, protected=REQUIRED)
    cleaned[CATEGORY_COLUMN] = derive_house_category(cleaned)
    return cleaned


@pytest.fixture(scope="module")
def parts(labelled: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return split_frame(labelled, SplitParams(seed=42), CATEGORY_COLUMN)


def ids_of(parts: dict[str, pd.DataFrame]) -> dict[str, list[int]]:
    return {name: part[ID_COLUMN].astype(int).tolist() for name, part in parts.items()}


def test_split_kaggle_sizes(parts: dict[str, pd.DataFrame]) -> None:
    sizes = {name: len(part) for name, part in parts.items()}

    assert sizes == {"train": 1022, "val": 219, "test": 219}


@pytest.mark.parametrize("name", SPLIT_NAMES)
def test_split_kaggle_every_class_in_part(parts: dict[str, pd.DataFrame], name: str) -> None:
    assert sorted(parts[name][CATEGORY_COLUMN].unique()) == [0, 1, 2, 3, 4, 5]


def test_split_kaggle_is_stratified(parts: dict[str, pd.DataFrame], labelled) -> None:
    overall = labelled[CATEGORY_COLUMN].value_counts(normalize=True)
    train = parts["train"][CATEGORY_COLUMN].value_counts(normalize=True)

    assert (train - overall).abs().max() < 0.01


def test_split_kaggle_parts_partition_rows(parts: dict[str, pd.DataFrame], labelled) -> None:
    ids = [house for part_ids in ids_of(parts).values() for house in part_ids]

    assert sorted(ids) == sorted(labelled[ID_COLUMN].astype(int).tolist())


def test_split_kaggle_keeps_row_order(parts: dict[str, pd.DataFrame]) -> None:
    assert parts["val"].index.is_monotonic_increasing


def test_split_same_seed_same_parts(labelled: pd.DataFrame, parts) -> None:
    again = split_frame(labelled, SplitParams(seed=42), CATEGORY_COLUMN)

    assert ids_of(again) == ids_of(parts)


def test_split_other_seed_other_parts(labelled: pd.DataFrame, parts) -> None:
    other = split_frame(labelled, SplitParams(seed=7), CATEGORY_COLUMN)

    assert ids_of(other)["test"] != ids_of(parts)["test"]


def test_split_custom_shares(labelled: pd.DataFrame) -> None:
    params = SplitParams(train_share=0.8, val_share=0.1, test_share=0.1)

    sizes = {
        name: len(part) for name, part in split_frame(labelled, params, "HouseCategory").items()
    }

    assert sizes == {"train": 1168, "val": 146, "test": 146}


def test_split_synthetic_frame(make_raw_frame) -> None:
    frame = make_raw_frame(rows_per_class=7)
    frame[CATEGORY_COLUMN] = derive_house_category(frame)

    parts = split_frame(frame, SplitParams(), CATEGORY_COLUMN)

    assert {name: len(part) for name, part in parts.items()} == {"train": 29, "val": 6, "test": 7}


def test_split_rarest_class_too_small() -> None:
    frame = pd.DataFrame({CATEGORY_COLUMN: [0] * 10 + [1] * 2})

    with pytest.raises(DataError, match="HouseCategory: the rarest class has 2 row"):
        split_frame(frame, SplitParams(), CATEGORY_COLUMN)


def test_split_too_few_rows_per_part(make_raw_frame) -> None:
    # Three rows per class pass the per-class check, but a 15% part of 24 rows cannot hold one
    # row of each of the six classes.
    frame = make_raw_frame(rows_per_class=4)
    frame[CATEGORY_COLUMN] = derive_house_category(frame)

    with pytest.raises(DataError, match="HouseCategory: .*24 rows"):
        split_frame(frame, SplitParams(), CATEGORY_COLUMN)


@pytest.mark.parametrize(
    "shares",
    [(0.7, 0.2, 0.2), (0.5, 0.15, 0.15), (0.7, 0.15, 0.14)],
    ids=["above-one", "below-one", "just-below-one"],
)
def test_split_params_shares_not_summing_to_one(shares: tuple[float, float, float]) -> None:
    train, val, test = shares
    values = {"train_share": train, "val_share": val, "test_share": test}

    with pytest.raises(
        ParamsError, match="split.train_share \\+ val_share \\+ test_share = .*must sum to 1"
    ):
        SplitParams.from_dict(values)
