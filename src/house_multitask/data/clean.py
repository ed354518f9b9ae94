"""The `clean` step: drop columns with too many missing values."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleanReport:
    """Columns and cells that `clean_frame` removed, for the stage's metrics file."""

    rows_in: int
    rows_out: int
    columns_in: int
    columns_out: int
    dropped_columns: tuple[str, ...]
    missing_cells_in: int
    missing_cells_out: int

    def to_metrics(self) -> dict:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "columns_in": self.columns_in,
            "columns_out": self.columns_out,
            "columns_dropped": len(self.dropped_columns),
            "dropped_columns": list(self.dropped_columns),
            "missing_cells_in": self.missing_cells_in,
            "missing_cells_out": self.missing_cells_out,
        }


def clean_frame(
    frame: pd.DataFrame, max_missing_share: float, protected: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, CleanReport]:
    """Drop every column whose share of missing values exceeds `max_missing_share`.

    Imputation is not done here: it is fitted on the training rows in the encode_scale stage.

    Args:
        frame: the raw table as read by `read_kaggle_csv`.
        max_missing_share: a column is dropped when its missing share is strictly above this.
        protected: columns never dropped (the id and targets).
    """
    missing_share = frame.isna().mean()
    dropped = tuple(
        column
        for column in frame.columns
        if missing_share[column] > max_missing_share and column not in protected
    )
    cleaned = frame.drop(columns=list(dropped))

    report = CleanReport(
        rows_in=len(frame),
        rows_out=len(cleaned),
        columns_in=frame.shape[1],
        columns_out=cleaned.shape[1],
        dropped_columns=dropped,
        missing_cells_in=int(frame.isna().sum().sum()),
        missing_cells_out=int(cleaned.isna().sum().sum()),
    )
    logger.info("clean dropped=%s columns_out=%d", ",".join(dropped), report.columns_out)
    return cleaned, report
