"""The report's figures as PNG files, drawn with matplotlib's headless Agg backend."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from house_multitask.errors import DataError  # noqa: E402
from house_multitask.tracking import CURVE_NAMES  # noqa: E402

logger = logging.getLogger(__name__)

DPI = 110
TASK_TITLES = {
    "loss": "total loss",
    "loss_price": "price loss",
    "loss_category": "category loss (cross-entropy)",
}


def read_live_curves(live_dir: str | Path) -> pd.DataFrame:
    """Read the per-epoch losses that `tracking.epoch_logger` wrote under `live_dir`.

    Returns:
        One row per epoch (index `epoch`, from 1) and one column per name in CURVE_NAMES, such
        as "train/loss_price"; a loss that was not logged is left out.
    """
    metrics_dir = Path(live_dir) / "plots" / "metrics"
    columns = {}
    for name in CURVE_NAMES:
        path = metrics_dir / f"{name}.tsv"
        if path.exists():
            table = pd.read_csv(path, sep="\t")
            columns[name] = table.set_index("step")[name.split("/")[1]]
    if not columns:
        raise DataError(
            f"{metrics_dir}: no loss curves found; rerun the stage that trains with "
            "--live-dir (`dvc repro`)"
        )
    curves = pd.DataFrame(columns)
    curves.index.name = "epoch"
    return curves


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write `figure` as a PNG file and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def plot_training_curves(curves: pd.DataFrame, title: str, path: str | Path) -> Path:
    """Train and validation loss per epoch, one panel per loss, on log y axes."""
    figure, axes = plt.subplots(1, len(TASK_TITLES), figsize=(13, 3.8), layout="constrained")
    for ax, (key, task_title) in zip(axes, TASK_TITLES.items(), strict=True):
        for stage in ("train", "val"):
            name = f"{stage}/{key}"
            if name in curves:
                ax.plot(curves.index, curves[name], label=stage)
        _use_log_scale_if_positive(ax, curves.filter(like=key))
        ax.set_title(task_title)
        ax.set_xlabel("epoch")
        ax.legend()
    figure.suptitle(title)
    return save_figure(figure, path)


def plot_ablation_curves(curves: Mapping[str, pd.DataFrame], path: str | Path) -> Path:
    """Validation price and category loss per epoch, one line per ablation variant."""
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8), layout="constrained")
    # Ten colours times three line styles keep up to 30 variants apart.
    colors = plt.get_cmap("tab10").colors
    styles = ("-", "--", ":")
    for ax, key in zip(axes, ("loss_price", "loss_category"), strict=True):
        values = []
        for index, (variant, frame) in enumerate(curves.items()):
            name = f"val/{key}"
            if name in frame:
                color = colors[index % len(colors)]
                style = styles[(index // len(colors)) % len(styles)]
                ax.plot(frame.index, frame[name], label=variant, color=color, linestyle=style)
                values.append(frame[name])
        _use_log_scale_if_positive(ax, pd.concat(values) if values else pd.Series(dtype=float))
        ax.set_title(f"validation {TASK_TITLES[key]}")
        ax.set_xlabel("epoch")
    # A pair of "$" starts matplotlib's math mode, so dollar signs are escaped.
    axes[0].set_ylabel(r"MSE (\$²), L1 (\$) or standardized log price, by variant")
    axes[1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.suptitle("Ablation variants, first training seed")
    return save_figure(figure, path)


def _use_log_scale_if_positive(ax: plt.Axes, values: pd.DataFrame | pd.Series) -> None:
    # MSE price losses reach 1e10 while L1 and cross-entropy stay far lower; a log axis shows both.
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size and finite.min() > 0:
        ax.set_yscale("log")


def plot_confusion_matrix(actual: np.ndarray, predicted: np.ndarray, path: str | Path) -> Path:
    """Confusion matrix of HouseCategory, actual classes as rows."""
    labels = sorted(set(np.asarray(actual).tolist()) | set(np.asarray(predicted).tolist()))
    figure, ax = plt.subplots(figsize=(5.2, 4.6))
    ConfusionMatrixDisplay.from_predictions(
        actual, predicted, labels=labels, ax=ax, colorbar=False, cmap="Blues"
    )
    ax.set_title("HouseCategory on the test split")
    return save_figure(figure, path)


def plot_price_scatter(actual: np.ndarray, predicted: np.ndarray, path: str | Path) -> Path:
    """Predicted against actual SalePrice on log axes, with the line of perfect predictions."""
    actual, predicted = _positive_pairs(actual, predicted)
    figure, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.scatter(actual, predicted, s=12, alpha=0.6)
    low = min(actual.min(), predicted.min())
    high = max(actual.max(), predicted.max())
    ax.plot([low, high], [low, high], color="grey", linewidth=1, label="predicted = actual")
    ax.set_xscale("log")
    ax.set_yscale("log")
    # Prices in thousands of dollars, on major and minor ticks, read better than powers of ten.
    thousands = FuncFormatter(lambda value, _: f"{value / 1000:.0f}k")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(thousands)
        axis.set_minor_formatter(thousands)
    ax.tick_params(axis="x", which="both", labelrotation=45)
    ax.set_xlabel(r"actual SalePrice (\$)")
    ax.set_ylabel(r"predicted SalePrice (\$)")
    ax.set_title("SalePrice on the test split")
    ax.legend()
    return save_figure(figure, path)


def _positive_pairs(actual: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # A log axis cannot show a price of zero or below, which an untrained network can predict.
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    keep = (actual > 0) & (predicted > 0) & np.isfinite(predicted)
    if not keep.all():
        logger.warning("price scatter leaves out %d non-positive prices", int((~keep).sum()))
    return actual[keep], predicted[keep]


def plot_residuals(actual: np.ndarray, predicted: np.ndarray, path: str | Path) -> Path:
    """Residuals (actual minus predicted SalePrice) against the predicted price."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    figure, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter(predicted, actual - predicted, s=12, alpha=0.6)
    ax.axhline(0.0, color="grey", linewidth=1)
    ax.set_xlabel(r"predicted SalePrice (\$)")
    ax.set_ylabel(r"actual - predicted (\$)")
    ax.set_title("Residuals on the test split")
    return save_figure(figure, path)


def plot_optuna_history(study, path: str | Path) -> Path:
    """Optuna's optimisation history of `study` (objective: best validation loss per trial)."""
    from optuna.visualization.matplotlib import plot_optimization_history

    with warnings.catch_warnings():
        # The matplotlib back end of optuna.visualization is marked experimental.
        warnings.simplefilter("ignore")
        ax = plot_optimization_history(study)
    ax.set_title("Optuna: best validation loss of each trial")
    ax.set_yscale("log")
    ax.figure.set_size_inches(7.0, 4.2)
    return save_figure(ax.figure, path)


def plot_optuna_lr_slice(study, path: str | Path) -> Path:
    """Optuna's slice plot of the objective against the learning rate."""
    from optuna.visualization.matplotlib import plot_slice

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = plot_slice(study, params=["lr"])
    ax = np.ravel(axes)[0] if isinstance(axes, np.ndarray) else axes
    ax.set_title("Optuna: best validation loss against learning rate")
    ax.set_xlabel("learning rate")
    ax.set_yscale("log")
    ax.figure.set_size_inches(7.0, 4.2)
    return save_figure(ax.figure, path)
