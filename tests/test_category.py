"""HouseCategory rules at their edges, and the class counts of Kaggle's train.csv."""

from __future__ import annotations

import pandas as pd
import pytest

from house_multitask.config import CleanParams
from house_multitask.data.category import count_categories, derive_house_category
from house_multitask.data.clean import clean_frame
from house_multitask.data.io import read_kaggle_csv
from house_multitask.errors import DataError
from house_multitask.schema import CATEGORY_RULE_COLUMNS, ID_COLUMN, PRICE_COLUMN


def house(bldg_type: str, house_style: str, year_built: int, year_remod_add: int) -> dict:
    return {
        "BldgType": bldg_type,
        "HouseStyle": house_style,
        "YearBuilt": year_built,
        "YearRemodAdd": year_remod_add,
    }


def category_of(row: dict) -> int:
    return int(derive_house_category(pd.DataFrame([row])).iloc[0])


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(house("1Fam", "1Story", 2000, 2000), 0, id="built-2000-is-new"),
        pytest.param(house("1Fam", "1Story", 1999, 1999), 2, id="built-1999-is-old"),
        pytest.param(house("1Fam", "1Story", 1980, 2000), 2, id="remodel-gap-20-not-remodelled"),
        pytest.param(house("1Fam", "1Story", 1980, 2001), 1, id="remodel-gap-21-remodelled"),
        pytest.param(house("1Fam", "2Story", 1990, 1990), 2, id="1fam-two-storey-is-small"),
        pytest.param(house("Duplex", "1Story", 1990, 1990), 2, id="duplex-one-storey-is-small"),
        pytest.param(house("Duplex", "1.5Fin", 1990, 1990), 2, id="duplex-1.5fin-is-small"),
        pytest.param(house("Duplex", "1.5Unf", 1990, 1990), 2, id="duplex-1.5unf-is-small"),
        pytest.param(house("Duplex", "2Story", 1990, 1990), 5, id="duplex-two-storey-is-big"),
        pytest.param(house("TwnhsE", "SLvl", 2005, 2005), 3, id="big-new"),
        pytest.param(house("Duplex", "2Story", 1950, 1971), 4, id="big-remodelled"),
        pytest.param(house("Duplex", "2Story", 1950, 1970), 5, id="big-gap-20"),
        pytest.param(house("1Fam", "2Story", 2001, 2030), 0, id="new-never-remodelled"),
    ],
)
def test_derive_house_category_edges(row: dict, expected: int) -> None:
    assert category_of(row) == expected


@pytest.mark.parametrize("column", CATEGORY_RULE_COLUMNS)
def test_derive_house_category_missing_rule_column(column: str) -> None:
    frame = pd.DataFrame([house("1Fam", "1Story", 2000, 2000)]).drop(columns=[column])

    with pytest.raises(DataError, match=f"HouseCategory needs column\\(s\\) {column}"):
        derive_house_category(frame)


def test_derive_house_category_missing_value_names_column() -> None:
    frame = pd.DataFrame(
        [house("1Fam", "1Story", 2000, 2000), house("1Fam", "1Story", None, 2000)]
    )

    with pytest.raises(DataError, match="needs YearBuilt, which is missing in 1 row"):
        derive_house_category(frame)


def test_derive_house_category_keeps_index_and_dtype(make_raw_frame) -> None:
    frame = make_raw_frame().set_index(pd.RangeIndex(100, 124))

    category = derive_house_category(frame)

    assert category.index.equals(frame.index)
    assert category.dtype == "int64"


def test_derive_house_category_synthetic_frame_has_every_class(make_raw_frame) -> None:
    rows_per_class = 3
    frame = make_raw_frame(rows_per_class=rows_per_class)

    category = derive_house_category(frame)

    assert category.tolist() == [index // rows_per_class for index in range(len(frame))]


def test_count_categories_lists_empty_classes() -> None:
    counts = count_categories(pd.Series([0, 0, 3]))

    assert counts == {"0": 2, "1": 0, "2": 0, "3": 1, "4": 0, "5": 0}


@pytest.fixture(scope="module")
def kaggle_categories(kaggle_train_csv) -> pd.Series:
    required = (ID_COLUMN, PRICE_COLUMN, *CATEGORY_RULE_COLUMNS)
    raw = read_kaggle_csv(kaggle_train_csv, required)
    cleaned, _ = clean_frame(raw, CleanParams().max_missing_share, protected=required)
    return derive_house_category(cleaned)


def test_kaggle_category_counts_sum_to_rows(kaggle_categories: pd.Series) -> None:
    assert sum(count_categories(kaggle_categories).values()) == 1460


def test_kaggle_category_every_class_present(kaggle_categories: pd.Series) -> None:
    assert min(count_categories(kaggle_categories).values()) > 0


def test_kaggle_category_class_4_has_16_houses(kaggle_categories: pd.Series) -> None:
    assert count_categories(kaggle_categories)["4"] == 16
