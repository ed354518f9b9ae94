"""Tensors for the network, built from encoded frames and the fitted preprocessor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from house_multitask.config import TrainConfig
from house_multitask.features.preprocess import Preprocessor, price_to_target
from house_multitask.schema import CATEGORY_COLUMN, PRICE_COLUMN


@dataclass
class ModelInputs:
    """One split as tensors.

    Attributes:
        numeric: float32 (rows, numeric inputs): scaled numeric predictors, plus the scaled label
            codes when `categorical_input` is "label", plus derived inputs when selected.
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
    """Names of the columns that feed the network's float input, in order."""
    columns = list(preprocessor.numeric_features)
    if config.categorical_input == "label":
        columns += preprocessor.categorical_features
    if config.use_derived_features:
        columns += preprocessor.derived_features
    return columns


def build_inputs(
    encoded: pd.DataFrame, preprocessor: Preprocessor, config: TrainConfig
) -> ModelInputs:
    """Build the network's tensors from a frame written by `Preprocessor.transform`."""
    columns = numeric_input_columns(preprocessor, config)
    numeric = torch.tensor(encoded[columns].to_numpy(dtype="float32"))
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
