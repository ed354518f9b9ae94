"""Fitted preprocessing: imputation, label encoding, derived inputs and min-max scaling.

`Preprocessor.fit` learns every statistic from the training rows only. The fitted state is plain
JSON (`to_dict` / `from_dict`), so validation, test and new houses are transformed with exactly
the training statistics and nothing is unpickled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from house_multitask.errors import DataError, ModelDirError
from house_multitask.schema import (
    CATEGORICAL_FEATURES,
    CATEGORY_COLUMN,
    ID_COLUMN,
    NUMERIC_FEATURES,
    PRICE_COLUMN,
    QUALITY_FEATURES,
    QUALITY_SCALE,
)

logger = logging.getLogger(__name__)

STATE_FORMAT_VERSION = 1

# Quantile bins per numeric input for the piecewise-linear encoding.
DEFAULT_QUANTILE_BINS = 32

# Target-aware bins: per numeric input, the split thresholds of a decision tree on that input
# alone, one tree for HouseCategory and one for log SalePrice. Each tree has at most this many
# leaves, and each leaf at least TREE_MIN_LEAF_ROWS training rows.
TREE_MAX_LEAVES = 16
TREE_MIN_LEAF_ROWS = 5

# Storey count of each HouseStyle, from the style descriptions in data_description.txt ("1.5Fin":
# one and one-half story). Split foyer and split level houses have staggered levels rather than
# whole storeys, so they count as 2.
STOREYS: dict[str, float] = {
    "1Story": 1.0,
    "1.5Fin": 1.5,
    "1.5Unf": 1.5,
    "2Story": 2.0,
    "2.5Fin": 2.5,
    "2.5Unf": 2.5,
    "SFoyer": 2.0,
    "SLvl": 2.0,
}

# Derived inputs, computed after imputation from the columns named here. The first five are
# widely used on the Ames data. Storeys turns the style names into one ordered number, so that
# a rare style such as 1.5Unf shares what the network learns from 1.5Fin.
DERIVED_FEATURES: dict[str, tuple[str, ...]] = {
    "TotalSF": ("TotalBsmtSF", "1stFlrSF", "2ndFlrSF"),
    "AgeAtSale": ("YrSold", "YearBuilt"),
    "YearsSinceRemodel": ("YrSold", "YearRemodAdd"),
    "RemodelGap": ("YearRemodAdd", "YearBuilt"),
    "TotalBathrooms": ("FullBath", "HalfBath", "BsmtFullBath", "BsmtHalfBath"),
    "Storeys": ("HouseStyle",),
}


def compute_derived_feature(name: str, frame: pd.DataFrame, modes: dict[str, str]) -> pd.Series:
    """Compute derived input `name` from the imputed columns of `frame`.

    Numeric columns contain numbers and categorical columns their values as strings. A HouseStyle
    missing from STOREYS gets the storey count of the training mode `modes["HouseStyle"]`.
    """
    if name == "TotalSF":
        return frame["TotalBsmtSF"] + frame["1stFlrSF"] + frame["2ndFlrSF"]
    if name == "AgeAtSale":
        return frame["YrSold"] - frame["YearBuilt"]
    if name == "YearsSinceRemodel":
        return frame["YrSold"] - frame["YearRemodAdd"]
    if name == "RemodelGap":
        return frame["YearRemodAdd"] - frame["YearBuilt"]
    if name == "TotalBathrooms":
        half_baths = frame["HalfBath"] + frame["BsmtHalfBath"]
        return frame["FullBath"] + frame["BsmtFullBath"] + 0.5 * half_baths
    if name == "Storeys":
        storeys = frame["HouseStyle"].map(STOREYS).astype("float64")
        return storeys.fillna(STOREYS[modes["HouseStyle"]])
    raise KeyError(name)


@dataclass
class TransformReport:
    """Per-column counts of what `Preprocessor.transform` had to repair in its input."""

    imputed: dict[str, int] = field(default_factory=dict)
    unseen: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class Preprocessor:
    """Training statistics for turning cleaned rows into scaled model inputs.

    Attributes:
        numeric_features: numeric predictors, in input order.
        categorical_features: categorical predictors, in input order.
        medians: training median of each numeric predictor, used for missing values.
        modes: most frequent training value of each categorical predictor.
        categories: the known values of each categorical predictor; value i has label code i and
            any other value gets the reserved code len(categories[column]).
        ranges: training minimum and maximum of each scaled column, predictors and derived.
        derived_features: derived inputs, computed after imputation and scaled like predictors.
        price_log_mean: mean of log(SalePrice) over the training rows.
        price_log_std: standard deviation of log(SalePrice) over the training rows.
        bin_edges: for the piecewise-linear encoding, the distinct training quantiles of each
            numeric and derived input, in scaled units; empty in states written before it
            existed.
        tree_bin_edges: for the target-aware piecewise-linear encoding, the quantile edges of
            each numeric and derived input together with the split thresholds of decision trees
            on it (see TREE_MAX_LEAVES), in scaled units; empty when the training rows had no
            HouseCategory, or in states written before it existed.
    """

    numeric_features: list[str]
    categorical_features: list[str]
    medians: dict[str, float]
    modes: dict[str, str]
    categories: dict[str, list[str]]
    ranges: dict[str, list[float]]
    derived_features: list[str]
    price_log_mean: float
    price_log_std: float
    bin_edges: dict[str, list[float]] = field(default_factory=dict)
    tree_bin_edges: dict[str, list[float]] = field(default_factory=dict)

    @property
    def predictors(self) -> list[str]:
        return self.numeric_features + self.categorical_features

    @property
    def scaled_columns(self) -> list[str]:
        return self.predictors + self.derived_features

    @classmethod
    def fit(
        cls,
        train: pd.DataFrame,
        ordinal_quality: bool = False,
        quantile_bins: int = DEFAULT_QUANTILE_BINS,
    ) -> Preprocessor:
        """Learn imputation values, label codes, ranges and price statistics from `train`.

        Args:
            train: cleaned training rows with SalePrice.
            ordinal_quality: give the five-step quality columns the codes Po<Fa<TA<Gd<Ex
                instead of alphabetical order.
            quantile_bins: number of quantile bins per numeric input for the piecewise-linear
                encoding; columns with fewer distinct quantiles get fewer bins.
        """
        numeric = [column for column in NUMERIC_FEATURES if column in train.columns]
        categorical = [column for column in CATEGORICAL_FEATURES if column in train.columns]

        medians = {column: float(train[column].median()) for column in numeric}
        modes = {column: _mode(train[column]) for column in categorical}
        categories = {
            column: _vocabulary(train[column].fillna(modes[column]), column, ordinal_quality)
            for column in categorical
        }
        derived = _derivable(numeric, categories)

        log_price = np.log(train[PRICE_COLUMN].to_numpy(dtype="float64"))
        fitted = cls(
            numeric_features=numeric,
            categorical_features=categorical,
            medians=medians,
            modes=modes,
            categories=categories,
            ranges={},
            derived_features=derived,
            price_log_mean=float(log_price.mean()),
            price_log_std=float(log_price.std()),
        )
        fitted.ranges = fitted._fit_ranges(train)
        fitted.bin_edges = fitted._fit_bin_edges(train, quantile_bins)
        if CATEGORY_COLUMN in train.columns:
            fitted.tree_bin_edges = fitted._fit_tree_bin_edges(train)
        logger.info(
            "preprocessor fitted rows=%d numeric=%d categorical=%d derived=%d",
            len(train),
            len(numeric),
            len(categorical),
            len(derived),
        )
        return fitted

    def _fit_ranges(self, train: pd.DataFrame) -> dict[str, list[float]]:
        unscaled, _ = self._encode(train)
        ranges = {}
        for column in self.numeric_features + self.derived_features:
            ranges[column] = [float(unscaled[column].min()), float(unscaled[column].max())]
        for column in self.categorical_features:
            # Codes run from 0 to n-1; a one-value column still gets a unit range so that the
            # reserved unseen code stays distinct after scaling.
            ranges[column] = [0.0, float(max(len(self.categories[column]) - 1, 1))]
        return ranges

    def _fit_bin_edges(self, train: pd.DataFrame, quantile_bins: int) -> dict[str, list[float]]:
        """Return the distinct training quantiles of each scaled numeric and derived input.

        A constant column has a single distinct quantile and gets no edges.
        """
        scaled, _ = self.transform(train)
        levels = np.linspace(0.0, 1.0, quantile_bins + 1)
        edges = {}
        for column in self.numeric_features + self.derived_features:
            values = np.unique(np.quantile(scaled[column].to_numpy(dtype="float64"), levels))
            if len(values) >= 2:
                edges[column] = [float(value) for value in values]
        return edges

    def _fit_tree_bin_edges(self, train: pd.DataFrame) -> dict[str, list[float]]:
        """Return the quantile edges of each scaled numeric and derived input plus tree splits.

        The tree thresholds fall where an input best separates the classes or the prices, such
        as between RemodelGap 20 and 21, where HouseCategory changes. There the encoding gets a
        narrow bin, which the quantiles of a skewed column do not give. The quantile edges stay,
        so the resolution is kept where the trees do not split.
        """
        scaled, _ = self.transform(train)
        targets = {
            "category": train[CATEGORY_COLUMN].to_numpy(dtype="int64"),
            "log_price": np.log(train[PRICE_COLUMN].to_numpy(dtype="float64")),
        }
        edges = {}
        for column in self.numeric_features + self.derived_features:
            values = scaled[column].to_numpy(dtype="float64")
            points = {float(values.min()), float(values.max()), *self.bin_edges.get(column, [])}
            for name, target in targets.items():
                points.update(_tree_thresholds(values, target, classify=name == "category"))
            if len(points) >= 2:
                edges[column] = sorted(points)
        return edges

    def transform(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, TransformReport]:
        """Impute, encode, derive and min-max scale the predictors of `frame`.

        The Id and the targets (SalePrice, HouseCategory), where present, pass through unchanged.
        Missing predictor values are imputed and unseen categories get the reserved code; both
        are counted in the returned report, never raised.

        Raises:
            DataError: a predictor column is absent.
        """
        absent = [column for column in self.predictors if column not in frame.columns]
        if absent:
            raise DataError(f"input lacks predictor column(s): {', '.join(absent)}")

        unscaled, report = self._encode(frame)
        scaled = pd.DataFrame(index=frame.index)
        for column in self.scaled_columns:
            low, high = self.ranges[column]
            width = high - low
            values = unscaled[column].astype("float64")
            scaled[column] = (values - low) / width if width > 0 else 0.0

        for passed in (ID_COLUMN, PRICE_COLUMN, CATEGORY_COLUMN):
            if passed in frame.columns:
                scaled[passed] = frame[passed].to_numpy()
        return scaled, report

    def _encode(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, TransformReport]:
        """Impute and label-encode predictors and compute derived inputs, without scaling."""
        report = TransformReport()
        columns: dict[str, pd.Series] = {}
        category_values: dict[str, pd.Series] = {}

        for column in self.numeric_features:
            values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
            _count(report.imputed, column, int(values.isna().sum()))
            columns[column] = values.fillna(self.medians[column])

        for column in self.categorical_features:
            values = frame[column].astype("object")
            _count(report.imputed, column, int(values.isna().sum()))
            values = values.where(values.notna(), self.modes[column]).astype(str)
            codes, unseen = self._label_codes(column, values)
            if unseen:
                report.unseen[column] = unseen
            columns[column] = codes
            category_values[column] = values

        encoded = pd.DataFrame(columns, index=frame.index)
        # Derived inputs read the category values as strings, not their label codes.
        sources = pd.DataFrame({**columns, **category_values}, index=frame.index)
        for name in self.derived_features:
            encoded[name] = compute_derived_feature(name, sources, self.modes)
        return encoded, report

    def _label_codes(self, column: str, values: pd.Series) -> tuple[pd.Series, dict[str, int]]:
        vocabulary = self.categories[column]
        lookup = {value: code for code, value in enumerate(vocabulary)}
        codes = values.map(lookup)
        unseen_mask = codes.isna()
        unseen = values[unseen_mask].value_counts().to_dict() if unseen_mask.any() else {}
        codes = codes.fillna(len(vocabulary)).astype("int64")
        return codes, {str(value): int(count) for value, count in unseen.items()}

    def category_codes(self, scaled: pd.DataFrame) -> np.ndarray:
        """Recover the integer label codes from scaled categorical columns.

        Returns:
            An int64 array of shape (rows, categorical predictors); the reserved unseen code of
            column j is `len(categories[column j])`.
        """
        codes = []
        for column in self.categorical_features:
            low, high = self.ranges[column]
            codes.append(np.rint(scaled[column].to_numpy() * (high - low) + low))
        return np.stack(codes, axis=1).astype("int64") if codes else np.zeros((len(scaled), 0))

    def cardinalities(self) -> list[int]:
        """Number of codes of each categorical predictor, the reserved unseen code included."""
        return [len(self.categories[column]) + 1 for column in self.categorical_features]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": STATE_FORMAT_VERSION,
            "numeric_features": self.numeric_features,
            "categorical_features": self.categorical_features,
            "medians": self.medians,
            "modes": self.modes,
            "categories": self.categories,
            "ranges": self.ranges,
            "derived_features": self.derived_features,
            "price_log_mean": self.price_log_mean,
            "price_log_std": self.price_log_std,
            "bin_edges": self.bin_edges,
            "tree_bin_edges": self.tree_bin_edges,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any], source: str = "preprocessor state") -> Preprocessor:
        """Rebuild a fitted preprocessor from `to_dict` output.

        Raises:
            ModelDirError: the state has another format version or lacks a field.
        """
        version = state.get("format_version") if isinstance(state, dict) else None
        if version != STATE_FORMAT_VERSION:
            raise ModelDirError(
                f"{source}: format_version {version!r} is not supported (expected "
                f"{STATE_FORMAT_VERSION}); rerun the encode_scale stage with this version"
            )
        names = [name for name in cls.__dataclass_fields__]
        optional = {"bin_edges", "tree_bin_edges"}
        missing = [name for name in names if name not in state and name not in optional]
        if missing:
            raise ModelDirError(f"{source}: missing field(s) {', '.join(missing)}")
        return cls(**{name: state[name] for name in names if name in state})


def _tree_thresholds(values: np.ndarray, target: np.ndarray, classify: bool) -> list[float]:
    """Split thresholds of a small decision tree that predicts `target` from `values` alone."""
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    model = DecisionTreeClassifier if classify else DecisionTreeRegressor
    tree = model(
        max_leaf_nodes=TREE_MAX_LEAVES, min_samples_leaf=TREE_MIN_LEAF_ROWS, random_state=0
    )
    tree.fit(values.reshape(-1, 1), target)
    splits = tree.tree_.feature >= 0
    return [float(threshold) for threshold in tree.tree_.threshold[splits]]


def _count(counts: dict[str, int], column: str, count: int) -> None:
    if count:
        counts[column] = count


def _derivable(numeric: list[str], categories: dict[str, list[str]]) -> list[str]:
    """Return the derived inputs whose source columns are all predictors.

    Storeys also needs a storey count for every training HouseStyle, so a style missing from
    STOREYS leaves it out with a warning.
    """
    derived = [
        name
        for name, inputs in DERIVED_FEATURES.items()
        if all(column in numeric or column in categories for column in inputs)
    ]
    if "Storeys" in derived:
        unknown = sorted(set(categories["HouseStyle"]) - set(STOREYS))
        if unknown:
            logger.warning(
                "HouseStyle value(s) %s missing from STOREYS in house_multitask/features/"
                "preprocess.py, so the derived input Storeys is left out. Add their storey "
                "counts to STOREYS to keep it",
                ", ".join(unknown),
            )
            derived.remove("Storeys")
    return derived


def _mode(values: pd.Series) -> str:
    modes = values.dropna().astype(str).mode()
    if modes.empty:
        raise DataError(f"column {values.name}: no training value to impute with; drop the column")
    return str(modes.iloc[0])


def _vocabulary(values: pd.Series, column: str, ordinal_quality: bool) -> list[str]:
    if ordinal_quality and column in QUALITY_FEATURES:
        return list(QUALITY_SCALE)
    return sorted(values.astype(str).unique().tolist())


def price_to_target(prices: np.ndarray, kind: str, log_mean: float, log_std: float) -> np.ndarray:
    """Turn prices in dollars into the network's regression target."""
    if kind == "raw":
        return prices.astype("float64")
    return (np.log(prices) - log_mean) / log_std


def target_to_price(
    outputs: np.ndarray | Sequence[float], kind: str, log_mean: float, log_std: float
) -> np.ndarray:
    """Turn the network's regression outputs back into prices in dollars."""
    outputs = np.asarray(outputs, dtype="float64")
    if kind == "raw":
        return outputs
    with np.errstate(over="ignore"):
        return np.exp(outputs * log_std + log_mean)
