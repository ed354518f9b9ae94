"""Optuna study of the learning rate, each trial trained by the Lightning Trainer."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import replace
from pathlib import Path

import optuna
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from house_multitask.config import TrainConfig, TuneParams
from house_multitask.errors import ParamsError
from house_multitask.experiment import EncodedData
from house_multitask.training import MONITOR, fit_model

logger = logging.getLogger(__name__)


def study_name_for(config: TrainConfig, params: TuneParams, data: EncodedData) -> str:
    """Name the study after everything that decides its trials' results.

    That is the configuration, the search space, the sampler seed and pruner, the training data
    and the library's source code, so a change to any of them starts a new study instead of
    reusing stale trials. The trial count is left out on purpose: raising `n_trials` resumes
    the same study.
    """
    search = {
        "config": {**config.to_dict(), "lr": None},
        "data": data.fingerprint(),
        "code": source_fingerprint(),
        "lr_low": params.lr_low,
        "lr_high": params.lr_high,
        "seed": params.seed,
        "pruner": [params.pruner_startup_trials, params.pruner_warmup_epochs],
    }
    digest = hashlib.sha256(json.dumps(search, sort_keys=True).encode()).hexdigest()[:12]
    return f"{params.study_name}-{digest}"


def source_fingerprint() -> str:
    """SHA-256 of the package's Python sources."""
    package_dir = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def create_study(config: TrainConfig, params: TuneParams, data: EncodedData) -> optuna.Study:
    """Open the study in `params.storage`, creating it (and an SQLite file's folder) if needed."""
    if params.storage.startswith("sqlite:///"):
        Path(params.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.create_study(
            study_name=study_name_for(config, params, data),
            storage=params.storage,
            direction="minimize",
            sampler=optuna.samplers.TPESampler(seed=params.seed),
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=params.pruner_startup_trials,
                n_warmup_steps=params.pruner_warmup_epochs,
            ),
            load_if_exists=True,
        )
    except (ImportError, ValueError, RuntimeError) as error:
        raise ParamsError(f"tune.storage={params.storage!r} cannot be opened: {error}") from None


def make_objective(config: TrainConfig, data: EncodedData, params: TuneParams):
    """Return the objective: train with the trial's learning rate, return the best val loss."""
    inputs = data.inputs(config)
    cardinalities = data.preprocessor.cardinalities()

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", params.lr_low, params.lr_high, log=True)
        pruning = PyTorchLightningPruningCallback(trial, monitor=MONITOR)
        fit = fit_model(
            replace(config, lr=lr),
            inputs["train"],
            inputs["val"],
            cardinalities,
            callbacks=[pruning],
        )
        pruning.check_pruned()
        # NaN marks a diverged trial as failed; the study goes on with the next one.
        return fit.best_val_loss if fit.best_val_loss is not None else math.nan

    return objective


def run_study(config: TrainConfig, data: EncodedData, params: TuneParams) -> dict:
    """Run trials until the study holds `params.n_trials` finished ones, and summarise it.

    Trials already in the storage count, so an interrupted or repeated run resumes the study
    instead of starting over. Finished means complete, pruned or failed.
    """
    study = create_study(config, params, data)
    finished = _count_finished(study)
    remaining = max(params.n_trials - finished, 0)
    logger.info("study=%s finished=%d remaining=%d", study.study_name, finished, remaining)
    if remaining:
        run_worker(study, config, data, params, remaining)
    return summarize_study(study)


def run_worker(
    study: optuna.Study, config: TrainConfig, data: EncodedData, params: TuneParams, n_trials: int
) -> None:
    """Run `n_trials` trials of `study` in this process."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(make_objective(config, data, params), n_trials=n_trials)


def _count_finished(study: optuna.Study) -> int:
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=states))


def summarize_study(study: optuna.Study) -> dict:
    """Best learning rate and validation loss, and trial counts by state."""
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(trial.state == state for trial in trials) for state in TrialState}
    completed = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    best = min(completed, key=lambda trial: trial.value) if completed else None
    return {
        "study_name": study.study_name,
        "best_lr": best.params["lr"] if best else None,
        "best_val_loss": best.value if best else None,
        "best_trial": best.number if best else None,
        "trials_completed": counts[TrialState.COMPLETE],
        "trials_pruned": counts[TrialState.PRUNED],
        "trials_failed": counts[TrialState.FAIL],
    }
