"""The study's tables, regenerated from metrics files, with the published figures beside them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from house_multitask.errors import DataError

# Columns of the study's tables, as keys of the metrics files.
METRICS = ("rmse", "accuracy", "precision_macro", "recall_macro", "f1_macro")
METRIC_TITLES = {
    "rmse": "RMSE ($)",
    "accuracy": "accuracy",
    "precision_macro": "precision",
    "recall_macro": "recall",
    "f1_macro": "F1",
}
LOWER_IS_BETTER = {"rmse"}
CLASS_METRICS = ("precision", "recall", "f1")
MISSING = "n/a"


@dataclass
class Published:
    """The study's figures and table layout, as read from the published-figures YAML file."""

    validation: dict[str, dict[str, float]]
    test: dict[str, float]
    per_class: dict[str, dict[str, float]]
    best_lr: float
    families: list[dict[str, Any]]
    ablation_lr: float
    before_tuning: str
    choices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def table_variants(self) -> list[str]:
        """Variants that appear in a family table, in order and without repeats."""
        variants = [row["variant"] for family in self.families for row in family["rows"]]
        return list(dict.fromkeys(variants))


def load_published(path: str | Path) -> Published:
    """Read the published-figures file.

    Raises:
        DataError: the file is missing, not YAML, or lacks a section.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; restore it from git (`git checkout {path}`)")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DataError(f"{path}: invalid YAML: {str(error).splitlines()[0]}") from None
    required = (
        "validation",
        "test",
        "per_class",
        "best_lr",
        "families",
        "ablation_lr",
        "before_tuning",
    )
    missing = [key for key in required if not isinstance(values, dict) or key not in values]
    if missing:
        raise DataError(f"{path}: missing section(s) {', '.join(missing)}; restore it from git")
    known = {*required, "choices"}
    return Published(**{key: value for key, value in values.items() if key in known})


@dataclass
class ReportInputs:
    """Everything the report shows, as read from the metrics files.

    `ablation` maps each variant to its metrics file's contents (mean at the top level, "std"
    and "seeds"); `baselines` is None when no baselines file exists.
    """

    ablation: dict[str, dict[str, Any]]
    tune: dict[str, Any]
    final: dict[str, Any]
    ablation_lr: float | None = None
    baselines: dict[str, dict[str, Any]] | None = None
    figures: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def format_value(metric: str, value: Any) -> str:
    """Format one score: whole dollars for RMSE, three decimals otherwise; MISSING for None."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if metric == "rmse":
        return f"{value:,.0f}"
    return f"{value:.3f}"


def measured_cell(metric: str, summary: Mapping[str, Any] | None) -> str:
    """Format the mean ± sample standard deviation of `metric` over seeds, or its single value."""
    if summary is None:
        return MISSING
    mean = summary.get(metric)
    std = (summary.get("std") or {}).get(metric)
    if mean is None or std is None or summary.get("seeds", 1) < 2:
        return format_value(metric, mean)
    return f"{format_value(metric, mean)} ± {format_value(metric, std)}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render a GitHub-flavoured markdown table."""
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def paired_header(first: str) -> list[str]:
    """Header of a table with each measured metric followed by the study's value."""
    header = [first]
    for metric in METRICS:
        header += [METRIC_TITLES[metric], "study"]
    return header


def paired_cells(summary: Mapping[str, Any] | None, published: Mapping[str, float] | None) -> list:
    cells = []
    for metric in METRICS:
        cells.append(measured_cell(metric, summary))
        cells.append(format_value(metric, (published or {}).get(metric)) if published else "-")
    return cells


def family_table(family: Mapping[str, Any], inputs: ReportInputs, published: Published) -> str:
    """Render one ablation family: a row per configuration, mean ± std beside the study."""
    rows = []
    for row in family["rows"]:
        variant = row["variant"]
        label = f"{row['label']} (`{variant}`)"
        rows.append(
            [label, *paired_cells(inputs.ablation.get(variant), published.validation.get(variant))]
        )
    return markdown_table(paired_header(family["title"]), rows)


def extra_variants_table(inputs: ReportInputs, published: Published) -> str | None:
    """Render the variants of ablate.variants that no family of the study contains, or None."""
    extra = [variant for variant in inputs.ablation if variant not in published.table_variants]
    if not extra:
        return None
    header = ["variant", *(METRIC_TITLES[metric] for metric in METRICS)]
    rows = [
        [f"`{variant}`", *(measured_cell(m, inputs.ablation[variant]) for m in METRICS)]
        for variant in extra
    ]
    return markdown_table(header, rows)


def tuning_table(inputs: ReportInputs, published: Published) -> str:
    """Render the study's final configuration before tuning (validation) and after (test)."""
    before = inputs.ablation.get(published.before_tuning)
    header = ["model", "split", "learning rate", "lr (study)", *paired_header("")[1:]]
    rows = [
        [
            f"before tuning (`{published.before_tuning}`)",
            "validation",
            _format_lr(inputs.ablation_lr),
            _format_lr(published.ablation_lr),
            *paired_cells(before, published.validation.get(published.before_tuning)),
        ],
        [
            "after tuning (`final`)",
            inputs.final.get("split", "test"),
            _format_lr(inputs.final.get("lr")),
            _format_lr(published.best_lr),
            *paired_cells(inputs.final, published.test),
        ],
    ]
    return markdown_table(header, rows)


def _format_lr(value: Any) -> str:
    return MISSING if value is None else f"{value:.4g}"


def per_class_table(inputs: ReportInputs, published: Published) -> str:
    """Render precision, recall and F1 of each HouseCategory class on the test split."""
    header = ["class", "support"]
    for metric in CLASS_METRICS:
        header += [metric, "study"]
    rows = []
    for label, scores in sorted((inputs.final.get("per_class") or {}).items()):
        study = published.per_class.get(str(label), {})
        row = [str(label), str(scores.get("support", MISSING))]
        for metric in CLASS_METRICS:
            row += [
                format_value(metric, scores.get(metric)),
                format_value(metric, study.get(metric)),
            ]
        rows.append(row)
    return markdown_table(header, rows)


def baselines_table(inputs: ReportInputs, published: Published) -> str | None:
    """Render the final model beside other models scored on the same test split, or None."""
    if inputs.baselines is None:
        return None
    header = ["model", *(METRIC_TITLES[metric] for metric in METRICS)]
    models = {"final (this pipeline)": inputs.final}
    for name, metrics in inputs.baselines.items():
        models[f"`{name}` (baselines stage)"] = metrics
    models["study (published)"] = published.test
    rows = [
        [name, *(measured_cell(metric, metrics) for metric in METRICS)]
        for name, metrics in models.items()
    ]
    return markdown_table(header, rows)


@dataclass
class Verdict:
    """One of the study's choices checked on one metric."""

    chosen: str
    rejected: str
    metric: str
    study_says: str
    difference: float | None
    spread: float | None
    result: str


def check_choice(
    chosen: str, rejected: str, metric: str, inputs: ReportInputs, published: Published
) -> Verdict:
    """Compare `chosen` with `rejected` on `metric`, in the runs and in the study.

    The spread is one standard deviation of the difference of the two means,
    sqrt(std_chosen² + std_rejected²), from the per-seed sample standard deviations. It is None
    when either variant ran with fewer than two seeds.
    """
    study_says = _study_direction(chosen, rejected, metric, published)
    a = inputs.ablation.get(chosen) or {}
    b = inputs.ablation.get(rejected) or {}
    if a.get(metric) is None or b.get(metric) is None:
        return Verdict(chosen, rejected, metric, study_says, None, None, "not measured")

    # A positive difference means `chosen` scored better, whichever way the metric improves.
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    difference = sign * (a[metric] - b[metric])
    spread = _spread(a, b, metric)
    return Verdict(
        chosen, rejected, metric, study_says, difference, spread, _result(difference, spread)
    )


def _spread(a: Mapping[str, Any], b: Mapping[str, Any], metric: str) -> float | None:
    if min(a.get("seeds", 1), b.get("seeds", 1)) < 2:
        return None
    stds = [(run.get("std") or {}).get(metric) for run in (a, b)]
    return math.hypot(*stds) if None not in stds else None


def _study_direction(chosen: str, rejected: str, metric: str, published: Published) -> str:
    a = published.validation.get(chosen, {}).get(metric)
    b = published.validation.get(rejected, {}).get(metric)
    if a is None or b is None:
        return "not published"
    if a == b:
        return "tie"
    better = a < b if metric in LOWER_IS_BETTER else a > b
    return "better" if better else "worse"


def _result(difference: float, spread: float | None) -> str:
    if spread is None:
        direction = "tie"
        if difference > 0:
            direction = "better"
        elif difference < 0:
            direction = "worse"
        return f"{direction} (one seed, no spread)"
    if difference > spread:
        return "better beyond 1 std"
    if difference < -spread:
        return "worse beyond 1 std"
    return "within 1 std"


def agreement(verdict: Verdict) -> str:
    """Summarise in a few words whether the runs agree with the study on this comparison."""
    if verdict.result == "not measured" or verdict.study_says == "not published":
        return "cannot tell"
    if verdict.result == "within 1 std":
        return "yes" if verdict.study_says == "tie" else "not shown: within noise"
    if verdict.study_says == "tie":
        return "no: the study shows a tie"
    if verdict.result.startswith("tie"):
        return "no: the runs tie"
    return "yes" if verdict.result.startswith(verdict.study_says) else "no: reversed"


def conclusions_table(inputs: ReportInputs, published: Published) -> str:
    """Render each of the study's choices per metric: its direction and what the runs show."""
    header = ["chosen over", "metric", "study", "measured difference", "measured", "agrees"]
    rows = []
    for verdict in all_verdicts(inputs, published):
        rows.append(
            [
                f"`{verdict.chosen}` over `{verdict.rejected}`",
                METRIC_TITLES[verdict.metric],
                verdict.study_says,
                _format_difference(verdict.metric, verdict),
                verdict.result,
                f"**{agreement(verdict)}**",
            ]
        )
    return markdown_table(header, rows)


def all_verdicts(inputs: ReportInputs, published: Published) -> list[Verdict]:
    """Check every choice of the study on each of its metrics, in the published file's order."""
    return [
        check_choice(choice["chosen"], choice["rejected"], metric, inputs, published)
        for choice in published.choices
        for metric in choice["metrics"]
    ]


def conclusions_summary(inputs: ReportInputs, published: Published) -> str:
    """Count the comparisons that agree with the study, those within noise and the others."""
    counts: dict[str, int] = {}
    verdicts = all_verdicts(inputs, published)
    for verdict in verdicts:
        key = agreement(verdict).split(":")[0]
        counts[key] = counts.get(key, 0) + 1

    total = sum(counts.values())
    summary = (
        f"Of {total} comparisons, {counts.get('yes', 0)} agree with the study, "
        f"{counts.get('not shown', 0)} are within one standard deviation (noise) and "
        f"{counts.get('no', 0)} disagree."
    )
    if any(verdict.result.endswith("(one seed, no spread)") for verdict in verdicts):
        summary += (
            " Variants trained with one seed have no spread, so those rows compare single "
            "runs, as the study did; raise `report.seeds` to test them against noise."
        )
    return summary


def _format_difference(metric: str, verdict: Verdict) -> str:
    if verdict.difference is None:
        return MISSING
    sign = "+" if verdict.difference >= 0 else "-"
    text = f"{sign}{format_value(metric, abs(verdict.difference))}"
    if verdict.spread is not None:
        text += f" (1 std: {format_value(metric, verdict.spread)})"
    return text


def final_against_study_lines(inputs: ReportInputs, published: Published) -> list[str]:
    """List, per headline metric, whether the final model beats the study's test score."""
    lines = []
    for metric in METRICS:
        ours, theirs = inputs.final.get(metric), published.test.get(metric)
        if ours is None or theirs is None:
            continue
        better = ours < theirs if metric in LOWER_IS_BETTER else ours > theirs
        lines.append(
            f"- {METRIC_TITLES[metric]}: {format_value(metric, ours)} against the study's "
            f"{format_value(metric, theirs)}: **{'better' if better else 'worse'}**"
        )
    return lines


def render_report(inputs: ReportInputs, published: Published) -> str:
    """Render the whole markdown report."""
    seeds = sorted({run.get("seeds", 1) for run in inputs.ablation.values()})
    seed_text = " or ".join(str(count) for count in seeds) or MISSING
    seed_text += " training seed" if seeds == [1] else " training seeds"
    parts = [
        "# The study, reproduced",
        "Written by the `report` stage (`dvc repro report`) from the metrics files; edits here "
        "are overwritten. Each measured ablation cell is the mean ± sample standard deviation "
        f"over {seed_text} (`report.seeds`); the study's columns are its published "
        "single runs. Ablations are scored on the validation split, the final model on the test "
        "split of the same 70/15/15 split.",
        *[f"> {note}" for note in inputs.notes],
        "## Ablations (validation split)",
    ]
    for family in published.families:
        parts += [f"### {family['title']}", family_table(family, inputs, published)]
    extra = extra_variants_table(inputs, published)
    if extra is not None:
        parts += ["### Other variants (not in the study)", extra]
    parts += [
        "## Which of the study's conclusions hold",
        "For each choice the study made, the measured difference is the chosen variant's mean "
        "minus the rejected one's, signed so that positive is better (lower RMSE, higher F1). "
        "The runs agree with the study when the difference exceeds one standard deviation of "
        "the difference of the means in the study's direction, or stays within it where the "
        "study shows a tie.",
        conclusions_summary(inputs, published),
        conclusions_table(inputs, published),
        "## Learning-rate tuning",
        _tuning_text(inputs, published),
        tuning_table(inputs, published),
        "Final model against the study's test scores:",
        "\n".join(final_against_study_lines(inputs, published)),
        "## Per class on the test split",
        per_class_table(inputs, published),
    ]
    baselines = baselines_table(inputs, published)
    if baselines is not None:
        parts += ["## Against other models on the test split", baselines]
    if inputs.figures:
        parts.append("## Figures")
        parts += [f"![{title}]({path})" for title, path in inputs.figures.items()]
    return "\n\n".join(parts) + "\n"


def _tuning_text(inputs: ReportInputs, published: Published) -> str:
    tune = inputs.tune
    return (
        f"Optuna study `{tune.get('study_name', MISSING)}`: "
        f"{tune.get('trials_completed', MISSING)} trials completed, "
        f"{tune.get('trials_pruned', MISSING)} pruned, {tune.get('trials_failed', MISSING)} "
        f"failed. Best learning rate {_format_lr(tune.get('best_lr'))} (study: "
        f"{_format_lr(published.best_lr)}), best validation loss "
        f"{format_value('loss', tune.get('best_val_loss'))}."
    )
