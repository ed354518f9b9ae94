"""Shared fixtures: where the real Kaggle data lives, and a small synthetic Ames-like table.

Fixtures other test modules may rely on (keep these names stable):

- `repo_root`: the repository root.
- `kaggle_dir`: the folder with Kaggle's train.csv; tests that use it skip when it is absent.
- `kaggle_train_csv`: `kaggle_dir / "train.csv"`.
- `make_raw_frame`: factory for a synthetic raw table shaped like `read_kaggle_csv` output.
- `write_raw_csv`: writes such a table as a Kaggle-style CSV under `tmp_path`.
- `raw_csv`: the default synthetic table already written as `tmp_path / "train.csv"`.
- `synthetic_encoded_data`: `EncodedData` of a 42-row synthetic table, for fast training tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from house_multitask.schema import (
    CATEGORICAL_FEATURES,
    ID_COLUMN,
    N_CATEGORIES,
    NUMERIC_FEATURES,
    PRICE_COLUMN,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
KAGGLE_DIR_ENV = "HOUSE_MULTITASK_KAGGLE_DIR"

# Kaggle's train.csv drops these six columns at the default 10% missing-share limit. The
# synthetic table leaves them mostly empty so that cleaning it drops the same six.
MOSTLY_MISSING_COLUMNS = ("LotFrontage", "Alley", "FireplaceQu", "PoolQC", "Fence", "MiscFeature")

# Frequent values of each categorical column in Kaggle's train.csv. "None" is MasVnrType's
# literal category, not a missing value.
CATEGORY_VALUES: dict[str, tuple[str, ...]] = {
    "MSSubClass": ("20", "60", "50", "120", "30"),
    "MSZoning": ("RL", "RM", "FV"),
    "Street": ("Pave", "Grvl"),
    "Alley": ("Grvl", "Pave"),
    "LotShape": ("Reg", "IR1", "IR2"),
    "LandContour": ("Lvl", "Bnk", "HLS"),
    "Utilities": ("AllPub",),
    "LotConfig": ("Inside", "Corner", "CulDSac"),
    "LandSlope": ("Gtl", "Mod"),
    "Neighborhood": ("NAmes", "CollgCr", "OldTown", "Edwards", "Somerst"),
    "Condition1": ("Norm", "Feedr", "Artery"),
    "Condition2": ("Norm", "Feedr"),
    "BldgType": ("1Fam", "TwnhsE", "Duplex", "Twnhs", "2fmCon"),
    "HouseStyle": ("1Story", "2Story", "1.5Fin", "SLvl", "SFoyer"),
    "RoofStyle": ("Gable", "Hip"),
    "RoofMatl": ("CompShg", "Tar&Grv"),
    "Exterior1st": ("VinylSd", "HdBoard", "MetalSd", "Wd Sdng"),
    "Exterior2nd": ("VinylSd", "MetalSd", "HdBoard", "Wd Sdng"),
    "MasVnrType": ("None", "BrkFace", "Stone"),
    "ExterQual": ("TA", "Gd", "Ex", "Fa"),
    "ExterCond": ("TA", "Gd", "Fa"),
    "Foundation": ("PConc", "CBlock", "BrkTil"),
    "BsmtQual": ("TA", "Gd", "Ex"),
    "BsmtCond": ("TA", "Gd", "Fa"),
    "BsmtExposure": ("No", "Av", "Gd", "Mn"),
    "BsmtFinType1": ("Unf", "GLQ", "ALQ", "BLQ"),
    "BsmtFinType2": ("Unf", "Rec", "LwQ"),
    "Heating": ("GasA", "GasW"),
    "HeatingQC": ("Ex", "TA", "Gd", "Fa"),
    "CentralAir": ("Y", "N"),
    "Electrical": ("SBrkr", "FuseA"),
    "KitchenQual": ("TA", "Gd", "Ex"),
    "Functional": ("Typ", "Min2", "Min1"),
    "FireplaceQu": ("Gd", "TA"),
    "GarageType": ("Attchd", "Detchd", "BuiltIn"),
    "GarageFinish": ("Unf", "RFn", "Fin"),
    "GarageQual": ("TA", "Fa"),
    "GarageCond": ("TA", "Fa"),
    "PavedDrive": ("Y", "N", "P"),
    "PoolQC": ("Gd", "Ex"),
    "Fence": ("MnPrv", "GdPrv"),
    "MiscFeature": ("Shed",),
    "SaleType": ("WD", "New", "COD"),
    "SaleCondition": ("Normal", "Partial", "Abnorml"),
}

# Inclusive integer ranges of the numeric columns, close to Kaggle's train.csv.
NUMERIC_RANGES: dict[str, tuple[int, int]] = {
    "LotFrontage": (21, 313),
    "LotArea": (1300, 25000),
    "OverallQual": (1, 10),
    "OverallCond": (1, 9),
    "MasVnrArea": (0, 1600),
    "BsmtFinSF1": (0, 1500),
    "BsmtFinSF2": (0, 500),
    "BsmtUnfSF": (0, 1500),
    "1stFlrSF": (334, 2500),
    "2ndFlrSF": (0, 1500),
    "LowQualFinSF": (0, 100),
    "BsmtFullBath": (0, 2),
    "BsmtHalfBath": (0, 1),
    "FullBath": (1, 3),
    "HalfBath": (0, 2),
    "BedroomAbvGr": (1, 5),
    "KitchenAbvGr": (1, 2),
    "TotRmsAbvGrd": (3, 12),
    "Fireplaces": (0, 2),
    "GarageCars": (0, 3),
    "GarageArea": (0, 900),
    "WoodDeckSF": (0, 500),
    "OpenPorchSF": (0, 300),
    "EnclosedPorch": (0, 200),
    "3SsnPorch": (0, 100),
    "ScreenPorch": (0, 200),
    "PoolArea": (0, 0),
    "MiscVal": (0, 500),
    "MoSold": (1, 12),
    "YrSold": (2006, 2010),
}

# (small, new, remodelled) of each HouseCategory class, in class order 0-5.
CLASS_TRAITS = (
    (True, True, False),
    (True, False, True),
    (True, False, False),
    (False, True, False),
    (False, False, True),
    (False, False, False),
)


def find_kaggle_dir(repo_root: Path = REPO_ROOT) -> Path | None:
    """Return the first folder with Kaggle's train.csv, or None.

    The order: the folder named by HOUSE_MULTITASK_KAGGLE_DIR, then `<repo>/data/raw`, then
    `<repo>/../shared/data/kaggle-house-prices`.
    """
    candidates = []
    if os.environ.get(KAGGLE_DIR_ENV):
        candidates.append(Path(os.environ[KAGGLE_DIR_ENV]))
    candidates.append(repo_root / "data" / "raw")
    candidates.append(repo_root.parent / "shared" / "data" / "kaggle-house-prices")
    for candidate in candidates:
        if (candidate / "train.csv").is_file():
            return candidate.resolve()
    return None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder with dvc.yaml and params.yaml)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def kaggle_dir() -> Path:
    """The folder with Kaggle's train.csv (and usually test.csv); skips the test when absent."""
    found = find_kaggle_dir()
    if found is None:
        pytest.skip(
            f"Kaggle's train.csv not found: set {KAGGLE_DIR_ENV}, or put it in data/raw/ "
            "or ../shared/data/kaggle-house-prices/"
        )
    return found


@pytest.fixture(scope="session")
def kaggle_train_csv(kaggle_dir: Path) -> Path:
    """Kaggle's train.csv (skips the test when absent)."""
    return kaggle_dir / "train.csv"


def build_raw_frame(rows_per_class: int = 4, seed: int = 0) -> pd.DataFrame:
    """Build a synthetic raw table shaped like `read_kaggle_csv` output on Kaggle's train.csv.

    Every column of `house_multitask.schema` is present: Id and the numeric columns as float64,
    the categorical columns as text with NaN for missing. Each of the six HouseCategory classes
    gets `rows_per_class` consecutive rows, so row i belongs to class i // rows_per_class;
    HouseCategory itself is not a column. The six columns
    in `MOSTLY_MISSING_COLUMNS` are about 80% missing, MasVnrType and MasVnrArea have one missing
    cell each, and MasVnrType contains the literal "None" category.
    """
    rng = np.random.default_rng(seed)
    n_rows = rows_per_class * N_CATEGORIES
    records = [
        _synthetic_house(rng, traits) for traits in CLASS_TRAITS for _ in range(rows_per_class)
    ]
    frame = pd.DataFrame.from_records(records)
    frame.insert(0, ID_COLUMN, np.arange(1, n_rows + 1, dtype="float64"))

    for column in MOSTLY_MISSING_COLUMNS:
        filled = np.arange(n_rows) % 5 == 0
        frame[column] = frame[column].where(filled)
    frame.loc[1, "MasVnrType"] = np.nan
    frame.loc[2, "MasVnrArea"] = np.nan
    frame.loc[0, "MasVnrType"] = "None"

    columns = [ID_COLUMN, *NUMERIC_FEATURES, *CATEGORICAL_FEATURES, PRICE_COLUMN]
    frame = frame[columns]
    numeric = [ID_COLUMN, *NUMERIC_FEATURES, PRICE_COLUMN]
    frame[numeric] = frame[numeric].astype("float64")
    frame[list(CATEGORICAL_FEATURES)] = frame[list(CATEGORICAL_FEATURES)].astype("str")
    return frame


def _synthetic_house(rng: np.random.Generator, traits: tuple[bool, bool, bool]) -> dict:
    """One house with the given (small, new, remodelled) traits and plausible other values."""
    small, new, remodelled = traits
    house: dict = {column: str(rng.choice(values)) for column, values in CATEGORY_VALUES.items()}
    for column, (low, high) in NUMERIC_RANGES.items():
        house[column] = int(rng.integers(low, high + 1))

    if small:
        house["BldgType"] = "1Fam"
        house["HouseStyle"] = str(rng.choice(["1Story", "2Story", "1.5Fin"]))
    else:
        house["BldgType"] = str(rng.choice(["Duplex", "TwnhsE", "Twnhs", "2fmCon"]))
        house["HouseStyle"] = str(rng.choice(["2Story", "SLvl", "SFoyer"]))

    if new:
        built = int(rng.integers(2000, 2009))
        remodelled_in = built
    elif remodelled:
        built = int(rng.integers(1920, 1975))
        remodelled_in = built + int(rng.integers(21, 35))
    else:
        built = int(rng.integers(1950, 1999))
        remodelled_in = min(built + int(rng.integers(0, 21)), 2009)
    house["YearBuilt"] = built
    house["YearRemodAdd"] = remodelled_in
    house["GarageYrBlt"] = built
    house["YrSold"] = max(house["YrSold"], remodelled_in)

    house["TotalBsmtSF"] = house["BsmtFinSF1"] + house["BsmtFinSF2"] + house["BsmtUnfSF"]
    house["GrLivArea"] = house["1stFlrSF"] + house["2ndFlrSF"] + house["LowQualFinSF"]
    house[PRICE_COLUMN] = int(
        30_000 + 60 * house["GrLivArea"] + 12_000 * house["OverallQual"] + 300 * (built - 1900)
    )
    return house


@pytest.fixture(scope="session")
def make_raw_frame() -> Callable[..., pd.DataFrame]:
    """Factory `make_raw_frame(rows_per_class=4, seed=0)` for `build_raw_frame` tables.

    The default is 24 rows, four per HouseCategory class, the same for the same seed.
    """
    return build_raw_frame


def write_kaggle_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write `frame` the way Kaggle's train.csv is written: NA for missing, whole numbers bare."""
    text = frame.copy()
    for column in text.columns:
        text[column] = [_kaggle_cell(value) for value in text[column]]
    path.parent.mkdir(parents=True, exist_ok=True)
    text.to_csv(path, index=False)
    return path


def _kaggle_cell(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "NA"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


@pytest.fixture
def write_raw_csv(tmp_path: Path) -> Callable[..., Path]:
    """Factory `write_raw_csv(frame=None, name="train.csv") -> Path` writing under `tmp_path`.

    With no frame it writes the default `build_raw_frame()` table.
    """

    def write(frame: pd.DataFrame | None = None, name: str = "train.csv") -> Path:
        return write_kaggle_csv(build_raw_frame() if frame is None else frame, tmp_path / name)

    return write


@pytest.fixture
def raw_csv(write_raw_csv: Callable[..., Path]) -> Path:
    """The default synthetic table written as `tmp_path / "train.csv"`."""
    return write_raw_csv()


@pytest.fixture(scope="session")
def synthetic_encoded_data():
    """`EncodedData` from a 42-row synthetic table (seven rows per class), split 29/6/7.

    Built as the clean, derive_category, split and encode_scale stages do it, for training tests
    that must stay fast. Tests must not modify it.
    """
    # Imported here because house_multitask.experiment imports torch and Lightning.
    from house_multitask.config import CleanParams, SplitParams
    from house_multitask.data.category import derive_house_category
    from house_multitask.data.clean import clean_frame
    from house_multitask.data.split import split_frame
    from house_multitask.experiment import EncodedData
    from house_multitask.features.preprocess import Preprocessor
    from house_multitask.schema import CATEGORY_COLUMN, CATEGORY_RULE_COLUMNS

    protected = (ID_COLUMN, PRICE_COLUMN, *CATEGORY_RULE_COLUMNS)
    frame, _ = clean_frame(
        build_raw_frame(rows_per_class=7), CleanParams().max_missing_share, protected
    )
    frame[CATEGORY_COLUMN] = derive_house_category(frame)
    parts = split_frame(frame, SplitParams(), CATEGORY_COLUMN)
    preprocessor = Preprocessor.fit(parts["train"])
    encoded = {name: preprocessor.transform(part)[0] for name, part in parts.items()}
    return EncodedData(preprocessor, encoded)
