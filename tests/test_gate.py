"""Tests of the metrics gate (`house-multitask check-metrics`) on small git repositories."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from house_multitask import cli
from house_multitask.errors import DataError, ParamsError
from house_multitask.gate import (
    IMPROVED,
    MISSING,
    OK,
    REGRESSED,
    MetricRule,
    apply_floors,
    compare_metric,
    compare_revision,
    load_rules,
    lookup,
    parse_rules,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

BASELINE = {
    "rmse": 30000.0,
    "rmsle": 0.15,
    "accuracy": 0.90,
    "f1_macro": 0.85,
    "per_class": {"4": {"f1": 0.6667, "support": 2}},
    "split": "test",
}

GATE = {
    "metrics": {
        "metrics/final.json": {
            "rmse": {"direction": "minimize", "rel_tol": 0.02},
            "rmsle": {"direction": "minimize", "abs_tol": 0.003},
            "accuracy": {"direction": "maximize", "abs_tol": 0.01},
            "f1_macro": {"direction": "maximize", "abs_tol": 0.02},
            "per_class.4.f1": {"direction": "maximize", "abs_tol": 0.01},
        }
    }
}


@pytest.fixture(autouse=True)
def git_identity(monkeypatch, tmp_path_factory):
    """Give git an identity and an empty global config, so commits work on any machine."""
    global_config = tmp_path_factory.mktemp("gitconfig") / "config"
    global_config.write_text("", encoding="utf-8")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Gate Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "gate-test@example.com")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def write_metrics(repo: Path, metrics: dict, path: str = "metrics/final.json") -> None:
    file = repo / path
    file.parent.mkdir(parents=True, exist_ok=True)
    # json.dumps writes NaN as the bare token NaN, as Python-written metrics files do.
    file.write_text(json.dumps(metrics, indent=2), encoding="utf-8")


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A git repository with BASELINE committed as metrics/final.json and GATE in params.yaml."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    write_metrics(root, BASELINE)
    (root / "params.yaml").write_text(yaml.safe_dump({"gate": GATE}), encoding="utf-8")
    commit_all(root, "baseline metrics")
    monkeypatch.chdir(root)
    return root


def run_gate(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["check-metrics", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def row_of(output: str, metric: str) -> list[str]:
    for line in output.splitlines():
        cells = line.split()
        if len(cells) > 1 and cells[1] == metric:
            return cells
    raise AssertionError(f"no table row for {metric} in:\n{output}")


def with_changes(**changes) -> dict:
    metrics = json.loads(json.dumps(BASELINE))
    metrics.update(changes)
    return metrics


# --- end to end through the console script ------------------------------------------------------


def test_gate_unchanged_metrics_pass(repo, capsys):
    code, out, _ = run_gate(capsys)

    assert code == 0
    assert row_of(out, "rmse")[-1] == OK


def test_gate_improvement_passes(repo, capsys):
    write_metrics(repo, with_changes(rmse=25000.0, accuracy=0.95))

    code, out, _ = run_gate(capsys)

    assert code == 0
    assert row_of(out, "rmse")[-1] == IMPROVED
    assert row_of(out, "accuracy")[-1] == IMPROVED


def test_gate_regression_beyond_tolerance_fails(repo, capsys):
    write_metrics(repo, with_changes(rmse=31000.0))  # 3.3 % worse, tolerance 2 %

    code, out, _ = run_gate(capsys)

    assert code == 1
    assert row_of(out, "rmse")[-1] == REGRESSED
    assert "worse by 1000, beyond the tolerance 600" in out


def test_gate_regression_inside_tolerance_passes(repo, capsys):
    write_metrics(repo, with_changes(rmse=30500.0, accuracy=0.891))

    code, out, _ = run_gate(capsys)

    assert code == 0
    assert row_of(out, "rmse")[-1] == OK
    assert row_of(out, "accuracy")[-1] == OK


def test_gate_table_has_dvc_header(repo, capsys):
    _, out, _ = run_gate(capsys)

    assert out.splitlines()[0].split() == [
        "Path",
        "Metric",
        "HEAD",
        "workspace",
        "Change",
        "Status",
    ]


def test_gate_failure_mentions_stale_lock(repo, capsys):
    write_metrics(repo, with_changes(accuracy=0.5))

    _, out, _ = run_gate(capsys)

    assert "committed dvc.lock and metrics are stale" in out


def test_gate_removed_metric_fails(repo, capsys):
    metrics = with_changes()
    del metrics["f1_macro"]
    write_metrics(repo, metrics)

    code, out, _ = run_gate(capsys)

    assert code == 1
    assert "f1_macro: workspace value is missing" in out


def test_gate_metric_missing_at_revision_fails(repo, capsys):
    gate = {"metrics": {"metrics/final.json": {"mae": {"direction": "minimize"}}}}
    (repo / "params.yaml").write_text(yaml.safe_dump({"gate": gate}), encoding="utf-8")
    write_metrics(repo, with_changes(mae=19000.0))

    code, out, _ = run_gate(capsys)

    assert code == 1
    assert "mae: HEAD value is missing" in out


def test_gate_deleted_metrics_file_fails(repo, capsys):
    (repo / "metrics" / "final.json").unlink()

    code, out, _ = run_gate(capsys)

    assert code == 1
    assert row_of(out, "accuracy")[3] == "-"


def test_gate_string_value_fails(repo, capsys):
    write_metrics(repo, with_changes(accuracy="0.95"))

    code, out, _ = run_gate(capsys)

    assert code == 1
    assert "accuracy: workspace value is not a number ('0.95')" in out


def test_gate_nested_key_compared(repo, capsys):
    metrics = with_changes()
    metrics["per_class"]["4"]["f1"] = 0.0
    write_metrics(repo, metrics)

    code, out, _ = run_gate(capsys)

    assert code == 1
    assert row_of(out, "per_class.4.f1")[-1] == REGRESSED


def test_gate_nan_fails(repo, capsys):
    write_metrics(repo, with_changes(rmse=math.nan))

    code, out, _ = run_gate(capsys)

    assert code == 1
    assert "rmse: workspace value is NaN" in out


def test_gate_null_fails(repo, capsys):
    write_metrics(repo, with_changes(rmsle=None))

    code, out, _ = run_gate(capsys)

    assert code == 1
    assert "rmsle: workspace value is null" in out


def test_gate_null_at_revision_fails(repo, capsys):
    write_metrics(repo, with_changes(rmsle=None))
    commit_all(repo, "diverged run")
    write_metrics(repo, BASELINE)

    code, out, _ = run_gate(capsys)

    assert code == 1
    assert "rmsle: HEAD value is null" in out


def test_gate_floor_enforced_when_revision_also_below(repo, capsys):
    (repo / "floors.yaml").write_text(
        "metrics/final.json:\n  accuracy: {min: 0.95}\n", encoding="utf-8"
    )
    (repo / "params.yaml").write_text(
        yaml.safe_dump({"gate": {**GATE, "floors": "floors.yaml"}}), encoding="utf-8"
    )

    code, out, _ = run_gate(capsys)

    assert code == 1
    assert "accuracy: 0.9 is below its floor min 0.95 in floors.yaml" in out


def test_gate_floor_max_enforced(repo, capsys):
    (repo / "floors.yaml").write_text(
        "metrics/final.json:\n  rmse: {max: 29000}\n", encoding="utf-8"
    )
    (repo / "params.yaml").write_text(
        yaml.safe_dump({"gate": {**GATE, "floors": "floors.yaml"}}), encoding="utf-8"
    )

    code, out, _ = run_gate(capsys)

    assert code == 1
    assert row_of(out, "rmse")[-1] == REGRESSED


def test_gate_floor_met_passes(repo, capsys):
    (repo / "floors.yaml").write_text(
        "metrics/final.json:\n  accuracy: {min: 0.85}\n", encoding="utf-8"
    )
    (repo / "params.yaml").write_text(
        yaml.safe_dump({"gate": {**GATE, "floors": "floors.yaml"}}), encoding="utf-8"
    )

    code, _, _ = run_gate(capsys)

    assert code == 0


def test_gate_older_revision_compared(repo, capsys):
    write_metrics(repo, with_changes(rmse=40000.0))
    commit_all(repo, "worse model")

    code, out, _ = run_gate(capsys, "HEAD~1")

    assert code == 1
    assert out.splitlines()[0].split()[2] == "HEAD~1"


def test_gate_markdown_table(repo, capsys):
    _, out, _ = run_gate(capsys, "--md")

    assert out.startswith("| Path ")


def test_gate_unknown_revision_gives_clear_error(repo, capsys):
    code, out, err = run_gate(capsys, "no-such-branch")

    assert code == 2
    assert err.strip() == (
        "error: revision 'no-such-branch' not found; give an existing commit, branch or tag"
    )


def test_gate_shallow_clone_gives_clear_error(repo, tmp_path, monkeypatch, capsys):
    write_metrics(repo, with_changes(rmse=29000.0))
    commit_all(repo, "second commit")
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
        check=True,
        capture_output=True,
    )
    monkeypatch.chdir(clone)

    code, _, err = run_gate(capsys, "HEAD~1")

    assert code == 2
    assert "revision 'HEAD~1' is not in this shallow clone; fetch the history it needs" in err


def test_gate_outside_git_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rules = parse_rules(GATE["metrics"])

    with pytest.raises(DataError, match="not a git work tree"):
        compare_revision(rules)


def test_gate_invalid_json_gives_clear_error(repo):
    (repo / "metrics" / "final.json").write_text("{not json", encoding="utf-8")

    with pytest.raises(DataError, match=r"metrics/final.json: invalid JSON"):
        compare_revision(parse_rules(GATE["metrics"]))


def test_gate_missing_params_file_exits_2(repo, capsys):
    code, _, err = run_gate(capsys, "--params", "nope.yaml")

    assert code == 2
    assert "nope.yaml: file not found" in err


# --- agreement with `dvc metrics diff` ----------------------------------------------------------


def dvc(repo: Path, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def test_gate_agrees_with_dvc_metrics_diff(tmp_path, monkeypatch, capsys):
    root = tmp_path / "dvc_repo"
    root.mkdir()
    git(root, "init", "-q")
    dvc(root, "init", "-q")
    (root / "dvc.yaml").write_text("metrics:\n  - metrics/final.json\n", encoding="utf-8")
    write_metrics(root, BASELINE)
    commit_all(root, "baseline")
    changed = with_changes(rmse=31000.0, accuracy=0.92)
    changed["per_class"]["4"]["f1"] = 1.0
    write_metrics(root, changed)
    commit_all(root, "new model")
    monkeypatch.chdir(root)

    dvc_changed = set(
        json.loads(dvc(root, "metrics", "diff", "HEAD~1", "--json"))["metrics/final.json"]
    )
    results = compare_revision(parse_rules(GATE["metrics"]), "HEAD~1")
    gate_changed = {result.rule.metric for result in results if result.change != 0}

    assert gate_changed == {"rmse", "accuracy", "per_class.4.f1"}
    assert gate_changed == dvc_changed


def test_gate_rows_match_dvc_table(tmp_path, monkeypatch, capsys):
    root = tmp_path / "dvc_repo"
    root.mkdir()
    git(root, "init", "-q")
    dvc(root, "init", "-q")
    (root / "dvc.yaml").write_text("metrics:\n  - metrics/final.json\n", encoding="utf-8")
    write_metrics(root, {key: BASELINE[key] for key in ("rmse", "accuracy", "per_class")})
    commit_all(root, "baseline")
    write_metrics(
        root,
        {"rmse": 28123.456789, "accuracy": 0.9, "per_class": {"4": {"f1": 1.0, "support": 2}}},
    )
    gate = {
        "metrics/final.json": {
            "rmse": {"direction": "minimize"},
            "accuracy": {"direction": "maximize"},
            "per_class.4.f1": {"direction": "maximize"},
            "per_class.4.support": {"direction": "maximize"},
        }
    }
    (root / "params.yaml").write_text(
        yaml.safe_dump({"gate": {"metrics": gate}}), encoding="utf-8"
    )
    monkeypatch.chdir(root)

    dvc_rows = [line.split() for line in dvc(root, "metrics", "diff", "--all").splitlines()]
    _, out, _ = run_gate(capsys)
    gate_rows = [line.split()[:-1] for line in out.splitlines()[: len(dvc_rows)]]

    assert gate_rows == dvc_rows


# --- configuration ------------------------------------------------------------------------------


def test_parse_rules_invalid_direction_raises():
    metrics = {"metrics/final.json": {"rmse": {"direction": "lower"}}}

    with pytest.raises(ParamsError, match=r"rmse.direction='lower' is not allowed"):
        parse_rules(metrics)


def test_parse_rules_negative_tolerance_raises():
    metrics = {"metrics/final.json": {"rmse": {"direction": "minimize", "rel_tol": -0.1}}}

    with pytest.raises(ParamsError, match=r"rmse.rel_tol=-0.1 is out of range"):
        parse_rules(metrics)


def test_parse_rules_unknown_key_raises():
    metrics = {"metrics/final.json": {"rmse": {"direction": "minimize", "tol": 0.1}}}

    with pytest.raises(ParamsError, match=r"unknown key\(s\) tol"):
        parse_rules(metrics)


def test_parse_rules_empty_raises():
    with pytest.raises(ParamsError, match=r"gate.metrics must be a non-empty mapping"):
        parse_rules({})


def test_apply_floors_ungated_metric_raises():
    rules = parse_rules(GATE["metrics"])

    with pytest.raises(ParamsError, match=r"mae has a floor but no rule under gate.metrics"):
        apply_floors(rules, {"metrics/final.json": {"mae": {"max": 1.0}}}, "floors.yaml")


def test_apply_floors_non_numeric_bound_raises():
    rules = parse_rules(GATE["metrics"])

    with pytest.raises(ParamsError, match=r"accuracy.min='high' is invalid"):
        apply_floors(rules, {"metrics/final.json": {"accuracy": {"min": "high"}}}, "floors.yaml")


def test_compare_metric_relative_tolerance_scales_with_baseline():
    rule = MetricRule("m.json", "rmse", "minimize", rel_tol=0.1)

    assert compare_metric(rule, 1000.0, 1099.0).status == OK
    assert compare_metric(rule, 1000.0, 1101.0).status == REGRESSED


def test_compare_metric_larger_bound_applies():
    rule = MetricRule("m.json", "rmse", "minimize", abs_tol=50.0, rel_tol=0.01)

    assert compare_metric(rule, 1000.0, 1049.0).status == OK
    assert compare_metric(rule, 1000.0, 1051.0).status == REGRESSED


def test_compare_metric_infinity_fails():
    rule = MetricRule("m.json", "rmse", "minimize", rel_tol=1.0)

    assert compare_metric(rule, 1000.0, math.inf).status == REGRESSED


def test_compare_metric_boolean_fails():
    rule = MetricRule("m.json", "accuracy", "maximize")

    assert compare_metric(rule, 0.9, True).status == REGRESSED


def test_lookup_nested_missing_level():
    assert lookup({"per_class": {"4": {"f1": 0.5}}}, "per_class.5.f1") is MISSING


def test_committed_gate_config_loads(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)

    rules, floors_path = load_rules(Path("params.yaml"))

    assert {(rule.path, rule.metric) for rule in rules} >= {
        ("metrics/final.json", "rmse"),
        ("metrics/final.json", "rmsle"),
        ("metrics/final.json", "accuracy"),
        ("metrics/final.json", "f1_macro"),
    }
    assert floors_path is not None


def test_committed_metrics_meet_committed_floors(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    rules, floors_path = load_rules(Path("params.yaml"))
    committed = {}
    for rule in rules:
        if rule.path not in committed:
            git_show = subprocess.run(
                ["git", "show", f"HEAD:{rule.path}"], capture_output=True, text=True, check=False
            )
            if git_show.returncode != 0:
                pytest.skip(f"{rule.path} is not committed at HEAD")
            committed[rule.path] = json.loads(git_show.stdout)

    failed = []
    for rule in rules:
        value = lookup(committed[rule.path], rule.metric)
        if compare_metric(rule, value, value).status == REGRESSED:
            failed.append(rule.metric)

    assert failed == []
