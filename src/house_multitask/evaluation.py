"""Test and validation metrics for both tasks, as plain dictionaries of floats."""

from __future__ import annotations

import logging
import math

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    mean_absolute_error,
    precision_recall_fscore_support,
)

from house_multitask.schema import N_CATEGORIES

logger = logging.getLogger(__name__)

HEADLINE_KEYS = ("rmse", "mae", "rmsle", "accuracy", "precision_macro", "recall_macro", "f1_macro")


def regression_metrics(price_true: np.ndarray, price_pred: np.ndarray) -> dict[str, float | None]:
    """RMSE and MAE in dollars, and RMSLE (Kaggle's score) of predicted prices.

    Predictions below one dollar are raised to one dollar for RMSLE only, because the log of a
    negative price is undefined. Non-finite predictions give None for every metric.
    """
    if not np.all(np.isfinite(price_pred)):
        logger.warning("price predictions contain NaN or infinity; regression metrics are null")
        return {"rmse": None, "mae": None, "rmsle": None}
    errors = price_pred - price_true
    log_errors = np.log1p(np.maximum(price_pred, 1.0)) - np.log1p(price_true)
    return {
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "mae": float(mean_absolute_error(price_true, price_pred)),
        "rmsle": float(np.sqrt(np.mean(log_errors**2))),
    }


def classification_metrics(category_true: np.ndarray, category_pred: np.ndarray) -> dict:
    """Accuracy, macro precision, recall and F1, per-class scores and the confusion matrix.

    A class that is never predicted has precision 0 (scikit-learn's zero_division=0).
    """
    labels = list(range(N_CATEGORIES))
    precision, recall, f1, support = precision_recall_fscore_support(
        category_true, category_pred, labels=labels, zero_division=0
    )
    macro = precision_recall_fscore_support(
        category_true, category_pred, labels=labels, average="macro", zero_division=0
    )
    matrix = confusion_matrix(category_true, category_pred, labels=labels)
    return {
        "accuracy": float(accuracy_score(category_true, category_pred)),
        "precision_macro": float(macro[0]),
        "recall_macro": float(macro[1]),
        "f1_macro": float(macro[2]),
        "per_class": {
            str(label): {
                "precision": float(precision[label]),
                "recall": float(recall[label]),
                "f1": float(f1[label]),
                "support": int(support[label]),
            }
            for label in labels
        },
        "confusion_matrix": {
            f"true_{true}": {f"pred_{pred}": int(matrix[true, pred]) for pred in labels}
            for true in labels
        },
    }


def evaluate(
    price_true: np.ndarray,
    price_pred: np.ndarray,
    category_true: np.ndarray,
    category_pred: np.ndarray,
) -> dict:
    """Compute every metric of both tasks in one dictionary.

    See `regression_metrics` and `classification_metrics` for the keys.
    """
    return {
        **regression_metrics(price_true, price_pred),
        **classification_metrics(category_true, category_pred),
    }


def summarize_runs(runs: list[dict], keys: tuple[str, ...] = HEADLINE_KEYS) -> dict:
    """Mean and sample standard deviation of each headline metric over several runs.

    A metric that is None in any run (a diverged run) is None in the summary.
    """
    summary: dict[str, dict[str, float | None]] = {"mean": {}, "std": {}}
    for key in keys:
        values = [run.get(key) for run in runs]
        if any(value is None or not math.isfinite(value) for value in values):
            summary["mean"][key] = None
            summary["std"][key] = None
            continue
        summary["mean"][key] = float(np.mean(values))
        summary["std"][key] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return summary
