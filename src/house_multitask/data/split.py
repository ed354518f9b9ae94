"""Stratified train/validation/test split."""

from __future__ import annotations

import logging

import pandas as pd
from sklearn.model_selection import train_test_split

from house_multitask.config import SplitParams
from house_multitask.errors import DataError

logger = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")


def split_frame(
    frame: pd.DataFrame, params: SplitParams, stratify_column: str
) -> dict[str, pd.DataFrame]:
    """Split rows into train, val and test, stratified by `stratify_column`.

    Returns:
        The three parts keyed by "train", "val" and "test", each keeping the original row order.

    Raises:
        DataError: a class, or the frame, has too few rows to put every class in every part.
    """
    labels = frame[stratify_column]
    smallest = labels.value_counts().min()
    if smallest < len(SPLIT_NAMES):
        raise DataError(
            f"{stratify_column}: the rarest class has {smallest} row(s); a stratified split "
            f"needs at least {len(SPLIT_NAMES)} per class"
        )

    holdout_share = params.val_share + params.test_share
    try:
        train, holdout = train_test_split(
            frame, test_size=holdout_share, stratify=labels, random_state=params.seed
        )
        val, test = train_test_split(
            holdout,
            test_size=params.test_share / holdout_share,
            stratify=holdout[stratify_column],
            random_state=params.seed,
        )
    except ValueError as error:
        # scikit-learn rejects a part with fewer rows than classes, and a class left with one
        # row for the second split, which the per-class check above cannot rule out.
        raise DataError(
            f"{stratify_column}: {len(frame)} rows are too few to put each of "
            f"{labels.nunique()} classes in every part ({error}); add rows or raise the "
            "smallest share"
        ) from None

    parts = {"train": train, "val": val, "test": test}
    parts = {name: part.sort_index() for name, part in parts.items()}
    logger.info("split sizes %s", {name: len(part) for name, part in parts.items()})
    return parts
