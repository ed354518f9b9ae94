"""The study report: tables from small synthetic metrics files, figures and the report stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib import image

from house_multitask import plots
from house_multitask.config import TrainConfig
from house_multitask.errors import DataError
from house_multitask.experiment import score_over_seeds
from house_multitask.parallel_tuning import open_journal_storage
from house_multitask.report import (
    METRICS,
    MISSING,
    ReportInputs,
    agreement,
    check_choice,
    format_value,
    load_published,
    measured_cell,
    render_report,
)
from house_multitask.tracking import CURVE_NAMES, epoch_logger

REPO_ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_FILE = REPO_ROOT / "reports" / "published_study.yaml"
EXTRA_VARIANT = "tanh"
N_CLASSES = 6


def ablation_summary(variant: str, offset: float, seeds: int = 3) -> dict:
    """A metrics file of the ablate stage with made-up scores that differ per variant."""
    means = {
        "rmse": 40000.0 + 1000.0 * offset,
        "accuracy": 0.5 + 0.01 * offset,
        "precision_macro": 0.4 + 0.01 * offset,
        "recall_macro": 0.3 + 0.01 * offset,
        "f1_macro": 0.35 + 0.01 * offset,
    }
    std = {"rmse": 500.0, "accuracy": 0.01, "precision_macro": 0.02, "recall_macro": 0.03}
    std["f1_macro"] = 0.015
    per_seed = {f"seed_{seed}": dict(means, epochs=10) for seed in range(seeds)}
    return {**means, "std": std, "seeds": seeds, "per_seed": per_seed, "variant": variant}


def final_metrics() -> dict:
    per_class = {
        str(label): {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 10 + label}
        for label in range(N_CLASSES)
    }
    return {
        "rmse": 30000.0,
        "accuracy": 0.95,
        "precision_macro": 0.9,
        "recall_macro": 0.97,
        "f1_macro": 0.93,
        "lr": 0.02,
        "split": "test",
        "per_class": per_class,
    }


def tune_metrics() -> dict:
    return {
        "best_lr": 0.02,
        "best_val_loss": 120.5,
        "study_name": "lr-test",
        "trials_completed": 4,
        "trials_failed": 0,
        "trials_pruned": 1,
    }


@pytest.fixture
def published():
    return load_published(PUBLISHED_FILE)


@pytest.fixture
def inputs(published) -> ReportInputs:
    variants = [*published.table_variants, EXTRA_VARIANT]
    return ReportInputs(
        ablation={v: ablation_summary(v, i) for i, v in enumerate(variants)},
        tune=tune_metrics(),
        final=final_metrics(),
        ablation_lr=0.001,
        baselines={"tree": {**final_metrics(), "rmse": 25000.0}},
        figures={"Confusion matrix": "figures/confusion_matrix.png"},
    )


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ")]


def test_render_report_fills_every_table(inputs, published):
    markdown = render_report(inputs, published)

    assert MISSING not in markdown


def test_render_report_has_one_table_per_family(inputs, published):
    markdown = render_report(inputs, published)

    for family in published.families:
        assert f"### {family['title']}" in markdown


def test_render_report_shows_every_published_validation_value(inputs, published):
    markdown = render_report(inputs, published)

    for variant, scores in published.validation.items():
        for metric, value in scores.items():
            assert format_value(metric, value) in markdown, (variant, metric)


def test_render_report_shows_published_test_and_per_class_values(inputs, published):
    markdown = render_report(inputs, published)
    expected = [format_value(m, v) for m, v in published.test.items()]
    for scores in published.per_class.values():
        expected += [format_value(m, v) for m, v in scores.items()]

    assert [value for value in expected if value not in markdown] == []


def test_render_report_reads_published_file(tmp_path, inputs):
    figures = yaml.safe_load(PUBLISHED_FILE.read_text(encoding="utf-8"))
    figures["test"]["rmse"] = 12345
    changed = tmp_path / "published.yaml"
    changed.write_text(yaml.safe_dump(figures), encoding="utf-8")

    markdown = render_report(inputs, load_published(changed))

    assert "12,345" in markdown


def test_render_report_lists_extra_variant(inputs, published):
    markdown = render_report(inputs, published)

    assert f"`{EXTRA_VARIANT}`" in markdown


def test_render_report_shows_baselines_when_present(inputs, published):
    markdown = render_report(inputs, published)

    assert "| `tree` (baselines stage) | 25,000 |" in markdown


def test_render_report_without_baselines_omits_section(inputs, published):
    inputs.baselines = None

    markdown = render_report(inputs, published)

    assert "Against other models" not in markdown


def test_render_report_embeds_figures(inputs, published):
    markdown = render_report(inputs, published)

    assert "![Confusion matrix](figures/confusion_matrix.png)" in markdown


def test_render_report_per_class_table_has_six_rows(inputs, published):
    markdown = render_report(inputs, published)
    section = markdown.split("## Per class on the test split")[1].split("##")[0]

    # The header and separator lines, then one row per class.
    assert len(table_rows(section)) == 2 + N_CLASSES


def test_measured_cell_shows_mean_and_std():
    cell = measured_cell("rmse", {"rmse": 41234.4, "std": {"rmse": 987.6}, "seeds": 3})

    assert cell == "41,234 ± 988"


def test_measured_cell_single_seed_has_no_std():
    cell = measured_cell("accuracy", {"accuracy": 0.5, "std": {"accuracy": None}, "seeds": 1})

    assert cell == "0.500"


def test_measured_cell_missing_value():
    assert measured_cell("rmse", {"rmse": None, "std": {}, "seeds": 3}) == MISSING


def choice_inputs(
    chosen_rmse: float, rejected_rmse: float, std: float, seeds: int = 3
) -> ReportInputs:
    def run(rmse: float) -> dict:
        return {"rmse": rmse, "std": {"rmse": std}, "seeds": seeds}

    ablation = {"leaky_relu": run(chosen_rmse), "relu": run(rejected_rmse)}
    return ReportInputs(ablation=ablation, tune={}, final={})


@pytest.mark.parametrize(
    ("chosen_rmse", "rejected_rmse", "expected"),
    [
        (40000.0, 50000.0, "better beyond 1 std"),
        (49000.0, 50000.0, "within 1 std"),
        (60000.0, 50000.0, "worse beyond 1 std"),
    ],
)
def test_check_choice_compares_against_spread(published, chosen_rmse, rejected_rmse, expected):
    inputs = choice_inputs(chosen_rmse, rejected_rmse, std=3000.0)

    verdict = check_choice("leaky_relu", "relu", "rmse", inputs, published)

    assert verdict.result == expected


def test_check_choice_reads_study_direction_from_published(published):
    inputs = choice_inputs(40000.0, 50000.0, std=3000.0)

    verdict = check_choice("leaky_relu", "relu", "rmse", inputs, published)

    assert verdict.study_says == "better"


def test_check_choice_one_seed_has_no_spread(published):
    inputs = choice_inputs(40000.0, 50000.0, std=0.0, seeds=1)

    verdict = check_choice("leaky_relu", "relu", "rmse", inputs, published)

    assert verdict.result == "better (one seed, no spread)"


@pytest.mark.parametrize(
    ("chosen_rmse", "rejected_rmse", "expected"),
    [
        (40000.0, 50000.0, "yes"),
        (49000.0, 50000.0, "not shown: within noise"),
        (60000.0, 50000.0, "no: reversed"),
    ],
)
def test_agreement_with_study(published, chosen_rmse, rejected_rmse, expected):
    inputs = choice_inputs(chosen_rmse, rejected_rmse, std=3000.0)

    verdict = check_choice("leaky_relu", "relu", "rmse", inputs, published)

    assert agreement(verdict) == expected


def test_agreement_study_tie_within_noise(published):
    # The study published the same recall for every activation.
    inputs = ReportInputs(
        ablation={
            "leaky_relu": {"recall_macro": 0.30, "std": {"recall_macro": 0.05}, "seeds": 3},
            "relu": {"recall_macro": 0.31, "std": {"recall_macro": 0.05}, "seeds": 3},
        },
        tune={},
        final={},
    )

    verdict = check_choice("leaky_relu", "relu", "recall_macro", inputs, published)

    assert agreement(verdict) == "yes"


def test_load_published_missing_file(tmp_path):
    with pytest.raises(DataError, match="published.yaml: file not found"):
        load_published(tmp_path / "published.yaml")


def test_load_published_missing_section(tmp_path):
    path = tmp_path / "published.yaml"
    path.write_text("test: {rmse: 1}\n", encoding="utf-8")

    with pytest.raises(DataError, match="missing section"):
        load_published(path)


def test_published_file_has_every_metric(published):
    for variant, scores in published.validation.items():
        assert sorted(scores) == sorted(METRICS), variant


# Figures


def assert_png_not_blank(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    pixels = image.imread(path)
    assert pixels.var() > 0, path


def curves_frame(epochs: int = 8) -> pd.DataFrame:
    epoch = np.arange(1, epochs + 1)
    values = {
        name: 100.0 / epoch + (5.0 if name.startswith("val") else 0.0) for name in CURVE_NAMES
    }
    frame = pd.DataFrame(values, index=epoch)
    frame.index.name = "epoch"
    return frame


def write_live_dir(directory: Path, epochs: int = 8) -> None:
    """Write TSV files shaped like those of `tracking.epoch_logger`."""
    frame = curves_frame(epochs)
    for name in CURVE_NAMES:
        path = directory / "plots" / "metrics" / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        column = name.split("/")[1]
        table = pd.DataFrame({"step": frame.index, column: frame[name].to_numpy()})
        table.to_csv(path, sep="\t", index=False)


def test_read_live_curves_round_trip(tmp_path):
    write_live_dir(tmp_path / "live", epochs=5)

    curves = plots.read_live_curves(tmp_path / "live")

    assert list(curves.columns) == list(CURVE_NAMES)


def test_read_live_curves_missing_dir(tmp_path):
    with pytest.raises(DataError, match="no loss curves found"):
        plots.read_live_curves(tmp_path / "missing")


def test_plot_training_curves_writes_png(tmp_path):
    path = plots.plot_training_curves(curves_frame(), "curves", tmp_path / "curves.png")

    assert_png_not_blank(path)


def test_plot_ablation_curves_writes_png(tmp_path):
    curves = {"relu": curves_frame(), "l1": curves_frame(12) * 2}

    path = plots.plot_ablation_curves(curves, tmp_path / "ablation.png")

    assert_png_not_blank(path)


@pytest.fixture
def price_pairs():
    rng = np.random.default_rng(0)
    actual = rng.uniform(50_000, 400_000, size=60)
    return actual, actual * rng.uniform(0.8, 1.2, size=60)


def test_plot_price_scatter_writes_png(tmp_path, price_pairs):
    path = plots.plot_price_scatter(*price_pairs, tmp_path / "scatter.png")

    assert_png_not_blank(path)


def test_plot_residuals_writes_png(tmp_path, price_pairs):
    path = plots.plot_residuals(*price_pairs, tmp_path / "residuals.png")

    assert_png_not_blank(path)


def test_plot_confusion_matrix_writes_png(tmp_path):
    actual = np.arange(60) % N_CLASSES
    predicted = np.roll(actual, 1)

    path = plots.plot_confusion_matrix(actual, predicted, tmp_path / "confusion.png")

    assert_png_not_blank(path)


def make_study(storage, study_name: str, trials: int = 6):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=0),
    )
    study.optimize(
        lambda trial: (np.log10(trial.suggest_float("lr", 1e-4, 1e-1, log=True)) + 2) ** 2 + 1,
        n_trials=trials,
    )
    return study


@pytest.mark.slow
def test_plot_optuna_figures_write_png(tmp_path):
    study = make_study(f"sqlite:///{tmp_path / 'optuna.db'}", "lr-test")

    paths = [
        plots.plot_optuna_history(study, tmp_path / "history.png"),
        plots.plot_optuna_lr_slice(study, tmp_path / "slice.png"),
    ]

    for path in paths:
        assert_png_not_blank(path)


# The report stage, run as DVC runs it


def write_stage_inputs(root: Path, published) -> list[str]:
    """Write every file the report stage reads under `root`; return its command-line arguments."""
    variants = [*published.table_variants, EXTRA_VARIANT]
    params = {
        "ablate": {"base": {"lr": 0.001}, "variants": {v: {} for v in variants}},
        "tune": {"storage": "journal:///tune/optuna.journal"},
        "report": {"seeds": 3},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    for index, variant in enumerate(variants):
        path = root / "metrics" / "ablation" / f"{variant}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ablation_summary(variant, index)), encoding="utf-8")
        write_live_dir(root / "dvclive" / "ablation" / variant)
    write_live_dir(root / "dvclive" / "final")
    (root / "tune").mkdir()
    # The default storage of params.yaml is a journal file.
    make_study(open_journal_storage(f"journal:///{root}/tune/optuna.journal"), "lr-test")
    (root / "metrics" / "tune.json").write_text(json.dumps(tune_metrics()))
    (root / "metrics" / "final.json").write_text(json.dumps(final_metrics()))

    rng = np.random.default_rng(1)
    ids = np.arange(1, 41)
    actual = pd.DataFrame(
        {
            "Id": ids.astype(float),
            "SalePrice": rng.uniform(60_000, 300_000, 40),
            "HouseCategory": ids % N_CLASSES,
        }
    )
    predicted = pd.DataFrame(
        {
            "Id": ids,
            "SalePrice": actual["SalePrice"] * 1.1,
            "HouseCategory": (ids + (ids % 7 == 0)) % N_CLASSES,
        }
    )
    actual.to_parquet(root / "test.parquet", index=False)
    predicted.to_parquet(root / "predictions.parquet", index=False)
    return [
        "--ablation-dir=metrics/ablation",
        "--tune-metrics=metrics/tune.json",
        "--final-metrics=metrics/final.json",
        "--predictions=predictions.parquet",
        "--actual=test.parquet",
        "--baselines=metrics/baselines.json",
        f"--published={PUBLISHED_FILE}",
        "--live-dir=dvclive",
        "--report=reports/study.md",
        "--figures=reports/figures",
        "--plots-dir=reports/plots",
    ]


def run_report_stage(root: Path, arguments: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "stages" / "report.py"), *arguments],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory):
    # One run serves every test below, because the stage takes seconds to import and draw.
    root = tmp_path_factory.mktemp("report_stage")
    arguments = write_stage_inputs(root, load_published(PUBLISHED_FILE))
    return root, run_report_stage(root, arguments)


@pytest.mark.slow
def test_report_stage_exits_zero(stage_run):
    _, result = stage_run

    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_report_stage_writes_every_figure(stage_run):
    root, _ = stage_run
    figures = sorted((root / "reports" / "figures").glob("*.png"))

    assert len(figures) == 7
    for path in figures:
        assert_png_not_blank(path)


@pytest.mark.slow
def test_report_stage_links_every_figure(stage_run):
    root, _ = stage_run
    markdown = (root / "reports" / "study.md").read_text(encoding="utf-8")

    for path in (root / "reports" / "figures").glob("*.png"):
        assert f"(figures/{path.name})" in markdown


@pytest.mark.slow
def test_report_stage_fills_every_table(stage_run):
    root, _ = stage_run
    markdown = (root / "reports" / "study.md").read_text(encoding="utf-8")

    assert MISSING not in markdown


@pytest.mark.slow
def test_report_stage_writes_dvc_plot_data(stage_run):
    root, _ = stage_run
    predictions = pd.read_csv(root / "reports" / "plots" / "test_predictions.csv")
    trials = pd.read_csv(root / "reports" / "plots" / "optuna_trials.csv")

    assert len(predictions) == 40
    assert len(trials) == 6


@pytest.mark.slow
def test_report_stage_missing_study_leaves_out_optuna(tmp_path, published):
    arguments = write_stage_inputs(tmp_path, published)
    (tmp_path / "tune" / "optuna.journal").unlink()

    result = run_report_stage(tmp_path, arguments)
    markdown = (tmp_path / "reports" / "study.md").read_text(encoding="utf-8")

    assert result.returncode == 0, result.stderr
    assert "dvc repro -f tune" in markdown


# Training curves logged with DVCLive


LOGGED = TrainConfig(max_epochs=3, min_epochs=3, patience=10, batch_size=8, lr=0.01)


@pytest.fixture
def logged_run(tmp_path, synthetic_encoded_data):
    live_dir = tmp_path / "live"
    score_over_seeds(
        LOGGED,
        synthetic_encoded_data,
        [0, 1],
        "val",
        logger_for_seed=lambda seed: epoch_logger(live_dir) if seed == 0 else False,
    )
    return live_dir


def test_epoch_logger_writes_one_row_per_epoch(logged_run):
    curves = plots.read_live_curves(logged_run)

    assert list(curves.index) == [1, 2, 3]


def test_epoch_logger_writes_every_loss(logged_run):
    curves = plots.read_live_curves(logged_run)

    assert list(curves.columns) == list(CURVE_NAMES)


def test_epoch_logger_writes_no_dvc_yaml(logged_run):
    assert list(logged_run.rglob("dvc.yaml")) == []
