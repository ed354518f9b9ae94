"""Tensors for the network, built from encoded frames and the fitted preprocessor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from house_multitask.config import TrainConfig
from house_multitask.errors import ModelDirError
from house_multitask.features.preprocess import Preprocessor, price_to_target
from house_multitask.schema import CATEGORY_COLUMN, PRICE_COLUMN


@dataclass
class ModelInputs:
    """One split as tensors.

    Attributes:
        numeric: float32 (rows, numeric inputs): scaled numeric predictors, plus the scaled label
            codes when `categorical_input` is "label", plus derived inputs when selected, plus
            their piecewise-linear bin encodings when `numeric_encoding` is "piecewise_linear"
            or "piecewise_linear_tree".
        codes: int64 (rows, categorical predictors) label codes for one-hot or embedding input;
            zero columns when `categorical_input` is "label".
        price_target: float32 (rows,) regression target (dollars or standardised log price).
        category: int64 (rows,) HouseCategory.
        price: float64 (rows,) SalePrice in dollars, for metrics.
    """

    numeric: torch.Tensor
    codes: torch.Tensor
    price_target: torch.Tensor | None = None
    category: torch.Tensor | None = None
    price: np.ndarray | None = None

    def __len__(self) -> int:
        return self.numeric.shape[0]

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """Return (numeric, codes, price_target, category), the batch layout of the module."""
        if self.price_target is None or self.category is None:
            raise ValueError("these inputs have no targets; build them from labelled rows")
        return self.numeric, self.codes, self.price_target, self.category


def numeric_input_columns(preprocessor: Preprocessor, config: TrainConfig) -> list[str]:
    """Names of the columns that feed the network's float input, in order.

    A piecewise-linear bin is named `<column>:bin<i>`.
    """
    columns = _scaled_input_columns(preprocessor, config)
    for column, _, _, index in _bins(preprocessor, config):
        columns.append(f"{column}:bin{index}")
    return columns


def _scaled_input_columns(preprocessor: Preprocessor, config: TrainConfig) -> list[str]:
    columns = list(preprocessor.numeric_features)
    if config.categorical_input == "label":
        columns += preprocessor.categorical_features
    if config.use_derived_features:
        columns += preprocessor.derived_features
    return columns


def _bins(preprocessor: Preprocessor, config: TrainConfig) -> list[tuple[str, float, float, int]]:
    """(column, lower edge, upper edge, bin index) of every piecewise-linear input.

    "piecewise_linear" takes the training quantiles as edges, "piecewise_linear_tree" the
    target-aware edges from decision trees (see `Preprocessor.tree_bin_edges`).
    """
    if config.numeric_encoding == "minmax":
        return []
    tree = config.numeric_encoding == "piecewise_linear_tree"
    bin_edges = preprocessor.tree_bin_edges if tree else preprocessor.bin_edges
    if not bin_edges:
        kind = "target-aware (tree)" if tree else "quantile"
        raise ModelDirError(
            f"numeric_encoding={config.numeric_encoding} needs {kind} bin edges, which this "
            "preprocessor state lacks; rerun the encode_scale stage with this version"
        )
    numeric = list(preprocessor.numeric_features)
    if config.use_derived_features:
        numeric += preprocessor.derived_features
    bins = []
    for column in numeric:
        edges = bin_edges.get(column, [])
        for index, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            bins.append((column, low, high, index))
    return bins


def piecewise_linear(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Encode one bin: 0 below `low`, 1 above `high`, linear in between.

    Each bin of a numeric input (between training quantiles, and for "piecewise_linear_tree"
    also tree split points) becomes one such feature. So a threshold inside a narrow bin, such
    as YearBuilt >= 2000, is a large step in that feature instead of a step of about 1/140 in
    the min-max scaled year (Ames houses were built 1872-2010).
    """
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def build_inputs(
    encoded: pd.DataFrame, preprocessor: Preprocessor, config: TrainConfig
) -> ModelInputs:
    """Build the network's tensors from a frame written by `Preprocessor.transform`."""
    scaled = encoded[_scaled_input_columns(preprocessor, config)].to_numpy(dtype="float64")
    encodings = [
        piecewise_linear(encoded[column].to_numpy(dtype="float64"), low, high)
        for column, low, high, _ in _bins(preprocessor, config)
    ]
    if encodings:
        scaled = np.concatenate([scaled, np.stack(encodings, axis=1)], axis=1)
    numeric = torch.tensor(scaled, dtype=torch.float32)
    if config.categorical_input == "label":
        codes = torch.zeros((len(encoded), 0), dtype=torch.int64)
    else:
        codes = torch.tensor(preprocessor.category_codes(encoded))

    inputs = ModelInputs(numeric=numeric, codes=codes)
    if PRICE_COLUMN in encoded.columns:
        price = encoded[PRICE_COLUMN].to_numpy(dtype="float64")
        target = price_to_target(
            price, config.price_target, preprocessor.price_log_mean, preprocessor.price_log_std
        )
        inputs.price = price
        inputs.price_target = torch.tensor(target, dtype=torch.float32)
    if CATEGORY_COLUMN in encoded.columns:
        inputs.category = torch.tensor(encoded[CATEGORY_COLUMN].to_numpy(dtype="int64"))
    return inputs
