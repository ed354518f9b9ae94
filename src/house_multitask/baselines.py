"""Reference models scored beside the multi-task network on the same encoded splits.

Two baselines: scikit-learn's histogram gradient-boosted trees with default settings (a
regressor on log SalePrice and a classifier on HouseCategory), and the study's final network
trained by the same `fit_model` path as the improved one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from house_multitask.config import TrainConfig
from house_multitask.evaluation import evaluate
from house_multitask.experiment import EncodedData, train_and_score
from house_multitask.schema import CATEGORY_COLUMN, PRICE_COLUMN

logger = logging.getLogger(__name__)

# The study's final network: label codes, min-max scaling, L1 loss on the price in dollars,
# geometric mean of the two losses with the price loss x3, LeakyReLU, Adam at the tuned
# learning rate 0.0374, shared layers 36 and 18 and 10-unit heads.
STUDY_CONFIG = TrainConfig(
    categorical_input="label",
    use_derived_features=False,
    price_target="raw",
    numeric_encoding="minmax",
    hidden_sizes=(36, 18),
    head_size=10,
    shared_activation="leaky_relu",
    head_activation="leaky_relu",
    price_loss="l1",
    aggregation="weighted_geometric",
    price_weight=3.0,
    optimizer="adam",
    lr=0.0374,
)


@dataclass
class TreeBaseline:
    """Gradient-boosted trees fitted on the scaled predictors and derived inputs.

    Attributes:
        columns: the input columns, in fitting order.
        regressor: predicts log SalePrice.
        classifier: predicts HouseCategory.
    """

    columns: list[str]
    regressor: HistGradientBoostingRegressor
    classifier: HistGradientBoostingClassifier

    @classmethod
    def fit(cls, data: EncodedData, seed: int = 0) -> TreeBaseline:
        """Fit both models with scikit-learn's default settings on the training split."""
        columns = list(data.preprocessor.scaled_columns)
        train = data.frames["train"]
        features = train[columns].to_numpy(dtype="float64")
        regressor = HistGradientBoostingRegressor(random_state=seed)
        regressor.fit(features, np.log(train[PRICE_COLUMN].to_numpy(dtype="float64")))
        classifier = HistGradientBoostingClassifier(random_state=seed)
        classifier.fit(features, train[CATEGORY_COLUMN].to_numpy(dtype="int64"))
        logger.info(
            "tree baseline fitted rows=%d columns=%d iterations=%d/%d",
            len(train),
            len(columns),
            regressor.n_iter_,
            classifier.n_iter_,
        )
        return cls(columns, regressor, classifier)

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return the predicted prices in dollars and the predicted classes of `frame`."""
        features = frame[self.columns].to_numpy(dtype="float64")
        prices = np.exp(self.regressor.predict(features))
        return prices, self.classifier.predict(features).astype("int64")

    def score(self, frame: pd.DataFrame) -> dict:
        """Return `evaluation.evaluate`'s metrics on the labelled rows of `frame`."""
        prices, classes = self.predict(frame)
        return evaluate(
            frame[PRICE_COLUMN].to_numpy(dtype="float64"),
            prices,
            frame[CATEGORY_COLUMN].to_numpy(dtype="int64"),
            classes,
        )


def score_baselines(
    data: EncodedData,
    study_config: TrainConfig = STUDY_CONFIG,
    split: str = "test",
    tree_seed: int = 0,
    trainer_options: Mapping[str, object] | None = None,
) -> dict:
    """Fit both baselines on the training split and score them on `split`.

    Args:
        data: the encoded splits and the preprocessor fitted on train.
        study_config: the study network's configuration, seed included.
        split: the split to score, "val" or "test".
        tree_seed: `random_state` of both tree models.
        trainer_options: `accelerator`, `devices` and `strategy` for the network's trainer.

    Returns:
        {"tree": metrics, "study": metrics}, each with the keys of `evaluation.evaluate` plus
        "split"; the study's also has "lr", "epochs" and "best_val_loss" like the final stage's.
    """
    tree = TreeBaseline.fit(data, tree_seed).score(data.frames[split])
    study_run = train_and_score(study_config, data, split, trainer_options=trainer_options)
    study = {"lr": study_config.lr, **study_run.metrics}
    for name, metrics in (("tree", tree), ("study", study)):
        logger.info(
            "baseline=%s split=%s rmse=%s rmsle=%s accuracy=%.4f f1_macro=%.4f",
            name,
            split,
            metrics["rmse"],
            metrics["rmsle"],
            metrics["accuracy"],
            metrics["f1_macro"],
        )
    return {"tree": {"split": split, **tree}, "study": {"split": split, **study}}
