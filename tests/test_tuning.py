"""Optuna learning-rate study: pruning on the logged val/loss, resuming a stored study."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from house_multitask.config import TrainConfig, TuneParams
from house_multitask.errors import ParamsError
from house_multitask.experiment import EncodedData
from house_multitask.training import configure_torch
from house_multitask.tuning import create_study, make_objective, run_study, study_name_for

CONFIG = TrainConfig(max_epochs=3, patience=10, batch_size=8)


@pytest.fixture(scope="module", autouse=True)
def quiet_and_one_thread() -> None:
    configure_torch()
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def tune_params(tmp_path: Path, **changes) -> TuneParams:
    values = {
        "n_trials": 2,
        "lr_low": 1e-3,
        "lr_high": 1e-1,
        "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
        "pruner_startup_trials": 0,
        "pruner_warmup_epochs": 0,
    }
    return TuneParams(**{**values, **changes})


def in_memory_study(pruner: optuna.pruners.BasePruner) -> optuna.Study:
    return optuna.create_study(
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=0), pruner=pruner
    )


def test_pruning_callback_reports_every_epoch(tmp_path: Path, synthetic_encoded_data) -> None:
    study = in_memory_study(optuna.pruners.NopPruner())
    objective = make_objective(CONFIG, synthetic_encoded_data, tune_params(tmp_path))

    study.optimize(objective, n_trials=1)

    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == list(range(CONFIG.max_epochs))


def test_objective_returns_best_reported_val_loss(tmp_path: Path, synthetic_encoded_data) -> None:
    study = in_memory_study(optuna.pruners.NopPruner())
    objective = make_objective(CONFIG, synthetic_encoded_data, tune_params(tmp_path))

    study.optimize(objective, n_trials=1)

    trial = study.trials[0]
    assert trial.value == pytest.approx(min(trial.intermediate_values.values()), rel=1e-6)


def test_pruning_callback_prunes_hopeless_trial(tmp_path: Path, synthetic_encoded_data) -> None:
    # The raw-dollar price loss is far above 1e-6, so the pruner stops the trial at epoch 0.
    study = in_memory_study(optuna.pruners.ThresholdPruner(upper=1e-6))
    objective = make_objective(CONFIG, synthetic_encoded_data, tune_params(tmp_path))

    study.optimize(objective, n_trials=1)

    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]


def test_diverged_trial_fails_and_study_goes_on(tmp_path: Path, synthetic_encoded_data) -> None:
    config = replace(CONFIG, optimizer="sgd", price_loss="mse", aggregation="sum")
    params = tune_params(tmp_path, lr_low=5.0, lr_high=10.0)

    summary = run_study(config, synthetic_encoded_data, params)

    assert summary["trials_failed"] == 2
    assert summary["best_lr"] is None


def test_run_study_summary(tmp_path: Path, synthetic_encoded_data) -> None:
    params = tune_params(tmp_path)

    summary = run_study(CONFIG, synthetic_encoded_data, params)

    assert summary["trials_completed"] + summary["trials_pruned"] == 2
    assert params.lr_low <= summary["best_lr"] <= params.lr_high


def test_run_study_resumes_stored_study(tmp_path: Path, synthetic_encoded_data) -> None:
    params = tune_params(tmp_path)
    first = run_study(CONFIG, synthetic_encoded_data, params)

    again = run_study(CONFIG, synthetic_encoded_data, params)
    more = run_study(CONFIG, synthetic_encoded_data, replace(params, n_trials=3))

    study = optuna.load_study(study_name=first["study_name"], storage=params.storage)
    assert again == first
    assert len(study.trials) == 3
    assert more["study_name"] == first["study_name"]


def test_run_study_lower_n_trials_runs_nothing(tmp_path: Path, synthetic_encoded_data) -> None:
    params = tune_params(tmp_path)
    first = run_study(CONFIG, synthetic_encoded_data, params)

    fewer = run_study(CONFIG, synthetic_encoded_data, replace(params, n_trials=1))

    assert fewer == first


def test_run_study_same_seed_same_learning_rates(tmp_path: Path, synthetic_encoded_data) -> None:
    first = run_study(CONFIG, synthetic_encoded_data, tune_params(tmp_path / "a"))
    second = run_study(CONFIG, synthetic_encoded_data, tune_params(tmp_path / "b"))

    assert (second["best_lr"], second["best_val_loss"]) == (
        first["best_lr"],
        first["best_val_loss"],
    )


def test_study_name_ignores_n_trials(tmp_path: Path, synthetic_encoded_data) -> None:
    params = tune_params(tmp_path)

    name = study_name_for(CONFIG, params, synthetic_encoded_data)

    assert study_name_for(CONFIG, replace(params, n_trials=9), synthetic_encoded_data) == name


@pytest.mark.parametrize(
    "changes",
    [{"lr_low": 1e-4}, {"seed": 1}, {"pruner_warmup_epochs": 3}],
    ids=["bounds", "sampler-seed", "pruner"],
)
def test_study_name_changes_with_search(tmp_path: Path, synthetic_encoded_data, changes) -> None:
    params = tune_params(tmp_path)

    name = study_name_for(CONFIG, params, synthetic_encoded_data)

    assert study_name_for(CONFIG, replace(params, **changes), synthetic_encoded_data) != name


def test_study_name_changes_with_config(tmp_path: Path, synthetic_encoded_data) -> None:
    params = tune_params(tmp_path)

    name = study_name_for(CONFIG, params, synthetic_encoded_data)

    assert study_name_for(replace(CONFIG, batch_size=16), params, synthetic_encoded_data) != name


def test_study_name_ignores_config_lr(tmp_path: Path, synthetic_encoded_data) -> None:
    params = tune_params(tmp_path)

    name = study_name_for(CONFIG, params, synthetic_encoded_data)

    assert study_name_for(replace(CONFIG, lr=0.5), params, synthetic_encoded_data) == name


def test_create_study_makes_sqlite_folder(tmp_path: Path, synthetic_encoded_data) -> None:
    params = tune_params(tmp_path, storage=f"sqlite:///{tmp_path / 'new' / 'optuna.db'}")

    create_study(CONFIG, params, synthetic_encoded_data)

    assert (tmp_path / "new" / "optuna.db").is_file()


@pytest.mark.parametrize(
    "storage",
    ["nosuchdb://user@localhost/db", "sqlite:////proc/no-such-folder/optuna.db"],
    ids=["unknown-dialect", "unwritable-sqlite"],
)
def test_create_study_bad_storage(
    tmp_path: Path, synthetic_encoded_data: EncodedData, storage: str
) -> None:
    params = tune_params(tmp_path, storage=storage)

    with pytest.raises(ParamsError, match="tune.storage=.* cannot be opened"):
        create_study(CONFIG, params, synthetic_encoded_data)
