"""The stage scripts run as dvc.yaml runs them: one-line errors, and one end-to-end run.

Each test works in its own folder under tmp_path with its own params.yaml, because the stage
scripts read params.yaml from the current directory. Commands come from dvc.yaml, so a test
breaks when a stage script and dvc.yaml disagree on arguments.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PIPELINE_STAGES = (
    "clean",
    "derive_category",
    "split",
    "encode_scale",
    "ablate",
    "tune",
    "final",
)
ABLATION_VARIANT = "leaky_relu"
FINAL_METRIC_KEYS = {
    "rmse",
    "mae",
    "rmsle",
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "per_class",
    "confusion_matrix",
}


@pytest.fixture(scope="module")
def dvc_stages(repo_root: Path) -> dict:
    """The `stages` mapping of dvc.yaml."""
    return yaml.safe_load((repo_root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


@pytest.fixture(scope="module")
def default_params(repo_root: Path) -> dict:
    """The repository's params.yaml; tests change copies of it."""
    return yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))


def stage_definition(dvc_stages: dict, name: str) -> dict:
    """The stage's dvc.yaml entry, with a foreach stage's ${key} set to ABLATION_VARIANT."""
    definition = dvc_stages[name]
    if "foreach" in definition:
        text = yaml.safe_dump(definition["do"]).replace("${key}", ABLATION_VARIANT)
        definition = yaml.safe_load(text)
    return definition


def stage_command(dvc_stages: dict, name: str, repo_root: Path) -> list[str]:
    """The stage's dvc.yaml command, run by this interpreter on the repository's script."""
    argv = shlex.split(stage_definition(dvc_stages, name)["cmd"])
    assert argv[0] == "python", f"{name}: dvc.yaml command does not start with python"
    return [sys.executable, str(repo_root / argv[1]), *argv[2:]]


def stage_outputs(dvc_stages: dict, name: str) -> list[str]:
    """Every path in the stage's outs and metrics."""
    definition = stage_definition(dvc_stages, name)
    entries = [*definition.get("outs", []), *definition.get("metrics", [])]
    return [entry if isinstance(entry, str) else next(iter(entry)) for entry in entries]


def run_stage(command: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def write_params(folder: Path, params: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")


def with_change(params: dict, dotted_key: str, value: object) -> dict:
    """A deep copy of `params` with `dotted_key` set to `value`."""
    changed = json.loads(json.dumps(params))
    *sections, key = dotted_key.split(".")
    target = changed
    for name in sections:
        target = target[name]
    target[key] = value
    return changed


def assert_one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    """Exit status 2, no traceback, and one stderr line `error: ...` that contains `expected`."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(errors) == 1, result.stderr
    assert expected in errors[0]


def test_final_invalid_param_exits_2(
    tmp_path: Path, repo_root: Path, dvc_stages: dict, default_params: dict
) -> None:
    write_params(tmp_path, with_change(default_params, "train.shared_activation", "gelu"))

    result = run_stage(stage_command(dvc_stages, "final", repo_root), tmp_path)

    assert_one_line_error(
        result,
        "train.shared_activation='gelu' is not allowed; use one of: relu, leaky_relu, sigmoid, "
        "tanh",
    )


def test_split_shares_not_summing_to_one_exits_2(
    tmp_path: Path, repo_root: Path, dvc_stages: dict, default_params: dict
) -> None:
    write_params(tmp_path, with_change(default_params, "split.val_share", 0.25))

    result = run_stage(stage_command(dvc_stages, "split", repo_root), tmp_path)

    assert_one_line_error(
        result, "split.train_share + val_share + test_share = 1.1; the three shares must sum to 1"
    )


def run_stage_in_process(
    stage: str,
    folder: Path,
    repo_root: Path,
    dvc_stages: dict,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str]:
    """Run a stage script's main as `python stages/<stage>.py` would, in this process.

    Starting a Python process that imports torch and Lightning takes seconds, so the cases
    beyond the subprocess tests above run the same code here. Returns the exit status and the
    captured stderr.
    """
    command = stage_command(dvc_stages, stage, repo_root)
    monkeypatch.syspath_prepend(str(repo_root / "stages"))
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "argv", command[1:])
    spec = importlib.util.spec_from_file_location(f"stage_{stage}", command[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    with pytest.raises(SystemExit) as exited:
        module.run_stage(module.main)

    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("stage", "dotted_key", "value", "expected"),
    [
        pytest.param(
            "final",
            "train.lr",
            -0.01,
            "train.lr=-0.01 is out of range; it must be a number > 0.0 and <= 10.0",
            id="final-negative-train-lr",
        ),
        pytest.param(
            "final",
            "train.lr",
            0,
            "train.lr=0 is out of range; it must be a number > 0.0 and <= 10.0",
            id="final-zero-train-lr",
        ),
        pytest.param(
            "final",
            "train.epochs",
            5,
            "train has unknown key(s) epochs; known keys: ",
            id="final-unknown-key",
        ),
        pytest.param(
            "final",
            "train.batch_size",
            "32",
            "train.batch_size='32' is invalid; it must be an integer",
            id="final-wrong-type",
        ),
        pytest.param(
            "split",
            "split.shuffle",
            True,
            "split has unknown key(s) shuffle; known keys: seed, test_share, train_share, "
            "val_share",
            id="split-unknown-key",
        ),
        pytest.param(
            "clean",
            "clean.max_missing_share",
            "ten percent",
            "clean.max_missing_share='ten percent' is invalid; it must be a number",
            id="clean-wrong-type",
        ),
        pytest.param(
            "tune",
            "tune.lr_low",
            0.5,
            "tune.lr_low=0.5 must be below tune.lr_high=",
            id="tune-bounds-reversed",
        ),
        pytest.param(
            "tune",
            "tune.n_trials",
            0,
            "tune.n_trials=0 is out of range; it must be an integer >= 1",
            id="tune-zero-trials",
        ),
        pytest.param(
            "ablate",
            f"ablate.variants.{ABLATION_VARIANT}",
            {"optimizer": "adagrad"},
            f"ablate.variants.{ABLATION_VARIANT}.optimizer='adagrad' is not allowed; use one "
            "of: adam, adamw, rmsprop, sgd",
            id="ablate-unknown-optimizer",
        ),
        pytest.param(
            "ablate",
            f"ablate.variants.{ABLATION_VARIANT}",
            "relu",
            f"ablate.variants.{ABLATION_VARIANT} must be a mapping of keys to values",
            id="ablate-variant-not-a-mapping",
        ),
        pytest.param(
            "ablate",
            "report.seeds",
            0,
            "report.seeds=0 is invalid; it must be an integer >= 1",
            id="ablate-zero-seeds",
        ),
    ],
)
def test_stage_invalid_param_exits_2(
    tmp_path: Path,
    repo_root: Path,
    dvc_stages: dict,
    default_params: dict,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stage: str,
    dotted_key: str,
    value: object,
    expected: str,
) -> None:
    write_params(tmp_path, with_change(default_params, dotted_key, value))

    status, stderr = run_stage_in_process(
        stage, tmp_path, repo_root, dvc_stages, monkeypatch, capsys
    )

    assert status == 2
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith(f"error: {expected}")


def test_final_negative_lr_exits_2(
    tmp_path: Path,
    repo_root: Path,
    dvc_stages: dict,
    default_params: dict,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_params(tmp_path, with_change(default_params, "lr", -0.1))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "tune.json").write_text('{"best_lr": 0.01}', encoding="utf-8")

    status, stderr = run_stage_in_process(
        "final", tmp_path, repo_root, dvc_stages, monkeypatch, capsys
    )

    assert status == 2
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("error: lr=-0.1 is out of range; it must be a number > 0.0")


def test_ablate_unknown_variant_exits_2(
    tmp_path: Path,
    repo_root: Path,
    dvc_stages: dict,
    default_params: dict,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    params = json.loads(json.dumps(default_params))
    del params["ablate"]["variants"][ABLATION_VARIANT]
    write_params(tmp_path, params)

    status, stderr = run_stage_in_process(
        "ablate", tmp_path, repo_root, dvc_stages, monkeypatch, capsys
    )

    assert status == 2
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith(f"error: ablate.variants has no variant '{ABLATION_VARIANT}'")


def test_clean_missing_raw_file_exits_2(
    tmp_path: Path, repo_root: Path, dvc_stages: dict, default_params: dict
) -> None:
    write_params(tmp_path, default_params)

    result = run_stage(stage_command(dvc_stages, "clean", repo_root), tmp_path)

    assert_one_line_error(result, "data/raw/train.csv: file not found")


def test_clean_missing_params_file_exits_2(tmp_path: Path, repo_root: Path, dvc_stages) -> None:
    result = run_stage(stage_command(dvc_stages, "clean", repo_root), tmp_path)

    assert_one_line_error(result, "params.yaml: file not found")


def test_clean_missing_section_exits_2(
    tmp_path: Path, repo_root: Path, dvc_stages: dict, default_params: dict
) -> None:
    params = {key: value for key, value in default_params.items() if key != "clean"}
    write_params(tmp_path, params)

    result = run_stage(stage_command(dvc_stages, "clean", repo_root), tmp_path)

    assert_one_line_error(result, "section 'clean' is missing or not a mapping")


def test_clean_text_in_numeric_column_exits_2(
    tmp_path: Path, repo_root: Path, dvc_stages, default_params, make_raw_frame, write_raw_csv
) -> None:
    frame = make_raw_frame()
    frame["LotArea"] = frame["LotArea"].astype(object)
    frame.loc[3, "LotArea"] = "big"
    write_raw_csv(frame, "data/raw/train.csv")
    write_params(tmp_path, default_params)

    result = run_stage(stage_command(dvc_stages, "clean", repo_root), tmp_path)

    assert_one_line_error(result, "column LotArea, line 5: 'big' is not a number")


def test_clean_synthetic_csv_writes_outputs(
    tmp_path: Path, repo_root: Path, dvc_stages, default_params, write_raw_csv
) -> None:
    write_raw_csv(name="data/raw/train.csv")
    write_params(tmp_path, default_params)

    result = run_stage(stage_command(dvc_stages, "clean", repo_root), tmp_path)

    metrics = json.loads((tmp_path / "metrics" / "clean.json").read_text(encoding="utf-8"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "clean" / "train.parquet").is_file()
    assert metrics["columns_dropped"] == 6


def pipeline_params(default_params: dict, storage: str) -> dict:
    """params.yaml cut down to seconds: one seed, one network, two trials in one process, two
    or three epochs, and the study in the SQLite file `storage`."""
    params = json.loads(json.dumps(default_params))
    params["report"]["seeds"] = 1
    params["train"]["max_epochs"] = 3
    params["ablate"]["base"]["max_epochs"] = 2
    params["tune"]["n_trials"] = 2
    params["tune"]["storage"] = storage
    if "workers" in params["tune"]:
        params["tune"]["workers"] = 1
    if "ensemble_size" in params.get("final", {}):
        params["final"]["ensemble_size"] = 1
    variants = params["ablate"]["variants"]
    params["ablate"]["variants"] = {
        name: variants[name] for name in (ABLATION_VARIANT, "l1") if name in variants
    }
    return params


@pytest.mark.slow
def test_pipeline_end_to_end_on_kaggle_data(
    tmp_path: Path, repo_root: Path, kaggle_train_csv: Path, dvc_stages, default_params
) -> None:
    storage = f"sqlite:///{tmp_path / 'tune' / 'optuna.db'}"
    write_params(tmp_path, pipeline_params(default_params, storage))
    (tmp_path / "data" / "raw").mkdir(parents=True)
    shutil.copyfile(kaggle_train_csv, tmp_path / "data" / "raw" / "train.csv")

    for stage in PIPELINE_STAGES:
        result = run_stage(stage_command(dvc_stages, stage, repo_root), tmp_path)
        assert result.returncode == 0, f"{stage} failed:\n{result.stderr[-3000:]}"

    missing = [
        path
        for stage in PIPELINE_STAGES
        for path in stage_outputs(dvc_stages, stage)
        if not (tmp_path / path).exists()
    ]
    final_text = (tmp_path / "metrics" / "final.json").read_text(encoding="utf-8")
    final = json.loads(final_text, parse_constant=lambda token: pytest.fail(f"JSON has {token}"))
    tune = json.loads((tmp_path / "metrics" / "tune.json").read_text(encoding="utf-8"))
    assert missing == []
    assert FINAL_METRIC_KEYS <= set(final)
    assert "NaN" not in final_text
    assert final["rmse"] is not None
    assert tune["trials_completed"] + tune["trials_pruned"] + tune["trials_failed"] == 2
    assert (tmp_path / "tune" / "optuna.db").is_file()
