"""The HouseCategory label: building size, age and remodelling in six classes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from house_multitask.errors import DataError
from house_multitask.schema import CATEGORY_RULE_COLUMNS, N_CATEGORIES

SMALL_HOUSE_STYLES = ("1Story", "1.5Fin", "1.5Unf")
SINGLE_FAMILY = "1Fam"
NEW_FROM_YEAR = 2000
REMODEL_GAP_YEARS = 20

CATEGORY_NAMES = (
    "small, new",
    "small, old, remodelled",
    "small, old, not remodelled",
    "big, new",
    "big, old, remodelled",
    "big, old, not remodelled",
)


def derive_house_category(frame: pd.DataFrame) -> pd.Series:
    """Compute HouseCategory (0-5) for each row.

    A house is small when it is a single-family building or its style is one storey or one and a
    half; new when built in 2000 or later; remodelled when it is not new and YearRemodAdd is more
    than 20 years after YearBuilt. Classes: 0 small+new, 1 small+old+remodelled,
    2 small+old+not remodelled, 3 big+new, 4 big+old+remodelled, 5 big+old+not remodelled.

    Raises:
        DataError: a rule column is absent or has missing values.
    """
    _check_rule_columns(frame)

    small = frame["BldgType"].eq(SINGLE_FAMILY) | frame["HouseStyle"].isin(SMALL_HOUSE_STYLES)
    new = frame["YearBuilt"] >= NEW_FROM_YEAR
    remodelled = ~new & ((frame["YearRemodAdd"] - frame["YearBuilt"]) > REMODEL_GAP_YEARS)

    age_class = np.select([new, remodelled], [0, 1], default=2)
    size_offset = np.where(small, 0, 3)
    category = pd.Series(size_offset + age_class, index=frame.index, name="HouseCategory")
    return category.astype("int64")


def _check_rule_columns(frame: pd.DataFrame) -> None:
    absent = [column for column in CATEGORY_RULE_COLUMNS if column not in frame.columns]
    if absent:
        raise DataError(f"HouseCategory needs column(s) {', '.join(absent)}; they are missing")
    for column in CATEGORY_RULE_COLUMNS:
        missing_rows = frame.index[frame[column].isna()]
        if len(missing_rows):
            raise DataError(
                f"HouseCategory needs {column}, which is missing in {len(missing_rows)} row(s) "
                f"(first row index {missing_rows[0]}); fill it in the raw file"
            )


def count_categories(category: pd.Series) -> dict[str, int]:
    """Count the rows of each class, listing every class including empty ones."""
    counts = category.value_counts()
    return {str(label): int(counts.get(label, 0)) for label in range(N_CATEGORIES)}
