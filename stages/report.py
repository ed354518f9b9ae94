"""Stage `report`: the study's tables and figures, regenerated from the metrics files."""

import argparse
import logging
from pathlib import Path

import pandas as pd
from common import load_params, run_stage, section

from house_multitask import plots
from house_multitask.config import TrainConfig
from house_multitask.data.io import atomic_write_text, read_json, read_parquet
from house_multitask.errors import DataError, ParamsError
from house_multitask.parallel_tuning import JOURNAL_SCHEME, is_journal_url, open_journal_storage
from house_multitask.report import ReportInputs, load_published, render_report
from house_multitask.schema import CATEGORY_COLUMN, ID_COLUMN, PRICE_COLUMN

logger = logging.getLogger("report")

# Figure titles and PNG file names, in the order the report shows them.
FIGURES = {
    "final_curves": "Training curves of the final model",
    "ablation_curves": "Validation loss of each ablation variant",
    "confusion_matrix": "Confusion matrix on the test split",
    "price_scatter": "Predicted against actual SalePrice",
    "residuals": "Residuals",
    "optuna_history": "Optuna optimisation history",
    "optuna_lr_slice": "Optuna learning-rate slice",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ablation-dir", required=True, help="folder of <variant>.json metrics")
    parser.add_argument("--tune-metrics", required=True, help="the tune stage's summary (JSON)")
    parser.add_argument("--final-metrics", required=True, help="the final model's test metrics")
    parser.add_argument("--predictions", required=True, help="test-split predictions (Parquet)")
    parser.add_argument("--actual", required=True, help="the encoded test split (Parquet)")
    parser.add_argument("--baselines", help="other models' test metrics (JSON), if it exists")
    parser.add_argument("--published", required=True, help="the study's figures (YAML)")
    parser.add_argument("--live-dir", required=True, help="DVCLive folder of the training runs")
    parser.add_argument("--report", required=True, help="the markdown report to write")
    parser.add_argument("--figures", required=True, help="folder for the PNG figures")
    parser.add_argument("--plots-dir", required=True, help="folder for the DVC plots' data")
    args = parser.parse_args()
    params = load_params()
    variants = list((section(params, "ablate").get("variants") or {}).keys())
    ablation_lr = TrainConfig.from_dict(section(params, "ablate").get("base"), "ablate.base").lr
    storage = section(params, "tune").get("storage")

    published = load_published(args.published)
    inputs = ReportInputs(
        ablation={v: read_json(Path(args.ablation_dir) / f"{v}.json") for v in variants},
        tune=read_json(args.tune_metrics),
        final=read_json(args.final_metrics),
        ablation_lr=ablation_lr,
        baselines=read_baselines(args.baselines),
    )

    figures_dir = Path(args.figures)
    paths = write_test_plots(args.predictions, args.actual, figures_dir, Path(args.plots_dir))
    paths += write_curve_plots(Path(args.live_dir), variants, figures_dir)
    paths += write_optuna_plots(storage, inputs, figures_dir, Path(args.plots_dir))

    report_path = Path(args.report)
    for path in sorted(paths, key=lambda path: list(FIGURES).index(path.stem)):
        inputs.figures[FIGURES[path.stem]] = path.relative_to(report_path.parent).as_posix()
    report_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report_path, render_report(inputs, published))
    logger.info("wrote %s with %d figures", report_path, len(paths))


def read_baselines(path: str | None) -> dict | None:
    """Other models' test metrics, or None before the stage that writes them has run."""
    if path is None or not Path(path).exists():
        return None
    return read_json(path)


def write_test_plots(
    predictions_path: str, actual_path: str, figures_dir: Path, plots_dir: Path
) -> list[Path]:
    """Write the test rows for DVC's confusion and scatter plots, and their PNG versions."""
    predicted = read_parquet(predictions_path)
    actual = read_parquet(actual_path)[[ID_COLUMN, PRICE_COLUMN, CATEGORY_COLUMN]]
    rows = actual.merge(predicted, on=ID_COLUMN, suffixes=("_actual", "_predicted"))
    if len(rows) != len(actual):
        raise DataError(
            f"{predictions_path}: {len(rows)} of the {len(actual)} test Ids in {actual_path} "
            "have a prediction; rerun the final stage (`dvc repro final`)"
        )
    table = pd.DataFrame(
        {
            ID_COLUMN: rows[ID_COLUMN].astype(int),
            "actual_price": rows[f"{PRICE_COLUMN}_actual"],
            "predicted_price": rows[f"{PRICE_COLUMN}_predicted"].round(2),
            "residual": (rows[f"{PRICE_COLUMN}_actual"] - rows[f"{PRICE_COLUMN}_predicted"]).round(
                2
            ),
            "actual_class": rows[f"{CATEGORY_COLUMN}_actual"].astype(int),
            "predicted_class": rows[f"{CATEGORY_COLUMN}_predicted"].astype(int),
        }
    )
    plots_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(plots_dir / "test_predictions.csv", index=False)

    return [
        plots.plot_confusion_matrix(
            table["actual_class"], table["predicted_class"], figures_dir / "confusion_matrix.png"
        ),
        plots.plot_price_scatter(
            table["actual_price"], table["predicted_price"], figures_dir / "price_scatter.png"
        ),
        plots.plot_residuals(
            table["actual_price"], table["predicted_price"], figures_dir / "residuals.png"
        ),
    ]


def write_curve_plots(live_dir: Path, variants: list[str], figures_dir: Path) -> list[Path]:
    """PNG training curves of the final model and of each ablation variant's first seed."""
    final = plots.read_live_curves(live_dir / "final")
    ablation = {v: plots.read_live_curves(live_dir / "ablation" / v) for v in variants}
    return [
        plots.plot_training_curves(
            final, "Final model: loss per epoch", figures_dir / "final_curves.png"
        ),
        plots.plot_ablation_curves(ablation, figures_dir / "ablation_curves.png"),
    ]


def write_optuna_plots(
    storage: str | None, inputs: ReportInputs, figures_dir: Path, plots_dir: Path
) -> list[Path]:
    """Write the trials for DVC plots and Optuna's history and slice figures.

    The study lives in `tune.storage`, which DVC does not track: a fresh clone has the tune
    stage's metrics but not its trials until `dvc repro -f tune` runs the study again. The
    report then notes the gap instead of failing.
    """
    study_name = inputs.tune.get("study_name")
    study = load_study(storage, study_name)
    trials = trials_frame(study)
    plots_dir.mkdir(parents=True, exist_ok=True)
    trials.to_csv(plots_dir / "optuna_trials.csv", index=False)
    if study is None or trials.empty:
        inputs.notes.append(
            f"The Optuna study `{study_name}` has no completed trial in `{storage}`, so the "
            "optimisation history and learning-rate slice are left out; `dvc repro -f tune` "
            "runs the study again."
        )
        return []
    return [
        plots.plot_optuna_history(study, figures_dir / "optuna_history.png"),
        plots.plot_optuna_lr_slice(study, figures_dir / "optuna_lr_slice.png"),
    ]


def load_study(storage: str | None, study_name: str | None):
    """Load the tune stage's Optuna study, or return None when the storage lacks it."""
    import optuna
    import sqlalchemy

    if not storage or not study_name:
        raise ParamsError("tune.storage and the study_name in metrics/tune.json must be set")
    local_file = local_storage_file(storage)
    if local_file is not None and not local_file.exists():
        # Opening a missing SQLite or journal file would create an empty one.
        logger.warning("%s does not exist; the Optuna figures are left out", local_file)
        return None
    try:
        opened = open_journal_storage(storage) if is_journal_url(storage) else storage
        return optuna.load_study(study_name=study_name, storage=opened)
    except KeyError:
        logger.warning(
            "study %s is not in %s; the Optuna figures are left out", study_name, storage
        )
        return None
    except sqlalchemy.exc.SQLAlchemyError as error:
        message = str(error).splitlines()[0]
        raise ParamsError(f"tune.storage cannot be opened: {message}") from None


def local_storage_file(storage: str) -> Path | None:
    """Return the file of an SQLite or journal storage URL, or None for a database server."""
    if storage.startswith("sqlite:///"):
        return Path(storage.removeprefix("sqlite:///"))
    if is_journal_url(storage):
        return Path(storage.removeprefix(JOURNAL_SCHEME))
    return None


def trials_frame(study) -> pd.DataFrame:
    """Tabulate completed trials: number, learning rate, objective and the best one so far."""
    columns = ["trial", "lr", "value", "best_value"]
    if study is None:
        return pd.DataFrame(columns=columns)
    frame = study.trials_dataframe(attrs=("number", "value", "params", "state"))
    frame = frame[frame["state"] == "COMPLETE"]
    table = pd.DataFrame(
        {
            "trial": frame["number"].astype(int),
            "lr": frame["params_lr"],
            "value": frame["value"],
        }
    )
    table["best_value"] = table["value"].cummin()
    return table.reset_index(drop=True)


if __name__ == "__main__":
    run_stage(main)
