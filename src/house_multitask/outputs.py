"""The prediction table written by the final stage, the CLI and the Python API."""

from __future__ import annotations

import numpy as np
import pandas as pd

from house_multitask.schema import CATEGORY_COLUMN, ID_COLUMN, PRICE_COLUMN


def prediction_frame(ids, prices: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    """Return Id, SalePrice (dollars), HouseCategory (most probable class) and prob_0..prob_5."""
    frame = pd.DataFrame({ID_COLUMN: np.asarray(ids), PRICE_COLUMN: prices})
    frame[CATEGORY_COLUMN] = probabilities.argmax(axis=1)
    for label in range(probabilities.shape[1]):
        frame[f"prob_{label}"] = probabilities[:, label]
    return frame
