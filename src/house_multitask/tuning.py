"""Optuna study of the learning rate, each trial trained by the Lightning Trainer."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from optuna_integration import PyTorchLightningPruningCallback

from house_multitask.config import TrainConfig, TuneParams
from house_multitask.errors import ParamsError
from house_multitask.experiment import EncodedData
from house_multitask.parallel_tuning import (
    check_concurrent_storage,
    fail_dead_local_trials,
    is_journal_url,
    open_journal_storage,
    run_parallel_workers,
)
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
        "search": params.searched(),
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


# Study user attributes that let `tune-worker` rebuild the trials' configuration.
CONFIG_ATTR = "train_config"
PARAMS_ATTR = "tune_params"
# Trial user attributes: which process ran the trial, and whether its training diverged.
WORKER_ATTR = "worker"
DIVERGED_ATTR = "diverged"
# System attribute that RetryHeartbeatStaleTrialCallback puts on a retry: the original's number.
RETRY_ATTR = "failed_trial"
# Exceptions that opening a storage raises for a bad URL, a missing driver or an unreachable
# server.
STORAGE_ERRORS = (
    ImportError,
    ValueError,
    RuntimeError,
    sqlalchemy.exc.SQLAlchemyError,
    optuna.exceptions.StorageInternalError,
)


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """TPE whose random numbers for the k-th sampled trial come from `seed + k`, in any process.

    One `TPESampler(seed)` per process would hand every worker, and every resumed run, the same
    first learning rates. Seeding per trial gives a study the same start-up trials (TPE samples
    at random for its first `n_startup_trials`) however many workers run it and however often a
    worker dies. A retried trial keeps the parameters of the trial it replaces, so retries are
    left out of k.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._tpe = optuna.samplers.TPESampler(seed=seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # Trials are numbered in creation order, so every trial before this one exists now.
        earlier = study.get_trials(deepcopy=False)[: trial.number]
        retries = sum(RETRY_ATTR in earlier_trial.system_attrs for earlier_trial in earlier)
        self._tpe = optuna.samplers.TPESampler(seed=self._seed + trial.number - retries)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict:
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict
    ) -> dict[str, Any]:
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._tpe.after_trial(study, trial, state, values)


def open_storage(params: TuneParams) -> optuna.storages.BaseStorage:
    """Open `params.storage` with trial heartbeats, creating an SQLite file's folder if needed.

    A running trial records a heartbeat every `params.heartbeat_interval` seconds. One whose
    heartbeat is older than `params.grace_period` (its process was killed or its machine lost)
    is marked failed by the next trial any worker starts, and re-queued with the same
    parameters up to `params.max_retry` times.
    """
    if is_journal_url(params.storage):
        # Journal files record no heartbeats; they take writes from several local processes.
        return open_journal_storage(params.storage)
    engine_kwargs: dict[str, Any] = {}
    if params.storage.startswith("sqlite:///"):
        folder = Path(params.storage.removeprefix("sqlite:///")).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ParamsError(
                f"tune.storage={params.storage!r} cannot be opened: cannot create {folder} "
                f"({error.strerror}); choose a writable folder"
            ) from None
        # Local workers share one SQLite file: wait for the write lock instead of failing.
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return RDBStorage(
                params.storage,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=params.heartbeat_interval,
                grace_period=params.grace_period,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=params.max_retry
                ),
            )
    except STORAGE_ERRORS as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ParamsError(
            f"tune.storage={redact_url(params.storage)!r} cannot be opened: {message}"
        ) from None


def redact_url(url: str) -> str:
    """Return the storage URL with its password, if any, replaced by ***."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def create_study(config: TrainConfig, params: TuneParams, data: EncodedData) -> optuna.Study:
    """Open the study in `params.storage`, creating it if needed.

    The study records the training configuration and the search settings as user attributes,
    so that `house-multitask tune-worker` on another machine runs the same trials.
    """
    storage = open_storage(params)
    try:
        study = optuna.create_study(
            study_name=study_name_for(config, params, data),
            storage=storage,
            direction="minimize",
            sampler=TrialSeededSampler(params.seed),
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=params.pruner_startup_trials,
                n_warmup_steps=params.pruner_warmup_epochs,
            ),
            load_if_exists=True,
        )
        study.set_user_attr(CONFIG_ATTR, config.to_dict())
        # The URL stays out: each machine may reach the database under another address.
        study.set_user_attr(PARAMS_ATTR, {**dataclasses.asdict(params), "storage": None})
    except STORAGE_ERRORS as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ParamsError(
            f"tune.storage={redact_url(params.storage)!r} cannot be opened: {message}"
        ) from None
    return study


def recorded_settings(study: optuna.Study) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """Return the training configuration and search settings `create_study` stored in `study`."""
    attrs = study.user_attrs
    if CONFIG_ATTR not in attrs or PARAMS_ATTR not in attrs:
        raise ParamsError(
            f"study {study.study_name!r} has no stored training configuration; create it with the "
            "tune stage (dvc repro tune) before adding workers"
        )
    return attrs[CONFIG_ATTR], attrs[PARAMS_ATTR]


def make_objective(
    config: TrainConfig,
    data: EncodedData,
    params: TuneParams,
    trainer_options: Mapping[str, object] | None = None,
):
    """Return the objective: train with the trial's settings, return the best val loss.

    The trial samples the learning rate, and the further dimensions `params.searched()` names.
    """
    inputs = data.inputs(config)
    cardinalities = data.preprocessor.cardinalities()
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER_ATTR, worker)
        changes = suggest_settings(trial, params)
        pruning = PyTorchLightningPruningCallback(trial, monitor=MONITOR)
        fit = fit_model(
            replace(config, **changes),
            inputs["train"],
            inputs["val"],
            cardinalities,
            callbacks=[pruning],
            trainer_options=trainer_options,
        )
        pruning.check_pruned()
        if fit.best_val_loss is None:
            # NaN marks a diverged trial as failed; it counts as finished, unlike a trial
            # failed by an interrupt or a lost worker.
            trial.set_user_attr(DIVERGED_ATTR, True)
            return math.nan
        return fit.best_val_loss

    return objective


def suggest_settings(trial: optuna.Trial, params: TuneParams) -> dict[str, Any]:
    """Sample the trial's learning rate and any further searched `TrainConfig` fields."""
    settings: dict[str, Any] = {
        "lr": trial.suggest_float("lr", params.lr_low, params.lr_high, log=True)
    }
    if params.weight_decay_range is not None:
        low, high = params.weight_decay_range
        settings["weight_decay"] = trial.suggest_float("weight_decay", low, high, log=True)
    if params.dropout_range is not None:
        low, high = params.dropout_range
        settings["dropout"] = trial.suggest_float("dropout", low, high)
    if params.input_l1_range is not None:
        low, high = params.input_l1_range
        settings["input_l1"] = trial.suggest_float("input_l1", low, high, log=True)
    if params.hidden_sizes_choices is not None:
        # Optuna's categorical choices must be scalars, so each width list is a string "128x64".
        names = [_widths_name(widths) for widths in params.hidden_sizes_choices]
        settings["hidden_sizes"] = _widths(trial.suggest_categorical("hidden_sizes", names))
    return settings


def _widths_name(widths: Sequence[int]) -> str:
    return "x".join(str(width) for width in widths)


def _widths(name: str) -> tuple[int, ...]:
    return tuple(int(width) for width in name.split("x"))


def best_settings(trial_params: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a trial's sampled parameters into `TrainConfig` values (hidden_sizes as a list)."""
    settings = dict(trial_params)
    if "hidden_sizes" in settings:
        settings["hidden_sizes"] = list(_widths(settings["hidden_sizes"]))
    return settings


def run_study(
    config: TrainConfig,
    data: EncodedData,
    params: TuneParams,
    trainer_options: Mapping[str, object] | None = None,
) -> dict:
    """Run trials until the study holds `params.n_trials` finished ones, and summarise it.

    Trials already in the storage count, so an interrupted or repeated run resumes the study
    instead of starting over. Finished means complete, pruned or failed. With
    `params.workers > 1` that many local processes run trials at once (see `parallel_tuning`).
    """
    check_concurrent_storage(params)
    study = create_study(config, params, data)
    if is_journal_url(params.storage):
        fail_dead_local_trials(study, WORKER_ATTR)
    finished = _count_finished(study)
    remaining = max(params.n_trials - finished, 0)
    logger.info("study=%s finished=%d remaining=%d", study.study_name, finished, remaining)
    if remaining and params.workers > 1:
        run_parallel_workers(study, config, data, params, remaining, trainer_options)
    elif remaining:
        run_worker(study, config, data, params, remaining, trainer_options=trainer_options)
    return summarize_study(study)


def run_worker(
    study: optuna.Study,
    config: TrainConfig,
    data: EncodedData,
    params: TuneParams,
    n_trials: int,
    *,
    trainer_options: Mapping[str, object] | None = None,
) -> int:
    """Run up to `n_trials` trials of `study` in this process, alongside any other workers.

    The worker stops early once the study holds `params.n_trials` finished trials. When the
    trials still needed are all running elsewhere and the storage keeps heartbeats, it waits
    for them: a trial whose worker died goes stale after `params.grace_period` seconds, and
    this worker then fails and re-runs it. A trial killed before its first heartbeat never goes
    stale, so after a grace period and two heartbeats with no trial finishing the worker runs
    another trial instead (one too many if the running trial was alive after all).

    Returns:
        How many trials this process ran.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective = make_objective(config, data, params, trainer_options)
    patience = params.grace_period + 2 * params.heartbeat_interval
    ran = 0
    waited_since = None
    while ran < n_trials:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        finished, running, waiting = _trial_counts(study)
        if finished >= params.n_trials:
            break
        if waiting == 0 and finished + running >= params.n_trials:
            if not _has_heartbeats(study):
                break  # a lost worker cannot be noticed; live ones finish their trials
            if waited_since is None or waited_since[1] != finished:
                waited_since = (time.monotonic(), finished)
            if time.monotonic() - waited_since[0] <= patience:
                time.sleep(params.heartbeat_interval)
                continue
            logger.warning(
                "%d trial(s) still running after %d s without a heartbeat timeout; running "
                "another trial",
                running,
                patience,
            )
        waited_since = None
        study.optimize(objective, n_trials=1)
        ran += 1
    return ran


def _has_heartbeats(study: optuna.Study) -> bool:
    # Optuna has no public accessor for the study's storage; RDB storages keep heartbeats.
    get_interval = getattr(study._storage, "get_heartbeat_interval", None)
    return get_interval is not None and get_interval() is not None


def _trial_counts(study: optuna.Study) -> tuple[int, int, int]:
    """Finished (counted towards `n_trials`), running and waiting trials of `study`."""
    trials = study.get_trials(deepcopy=False)
    finished = sum(_counts_as_finished(trial) for trial in trials)
    running = sum(trial.state == TrialState.RUNNING for trial in trials)
    waiting = sum(trial.state == TrialState.WAITING for trial in trials)
    return finished, running, waiting


def _counts_as_finished(trial: FrozenTrial) -> bool:
    """Complete, pruned or diverged; a trial failed by an interrupt or a lost worker is not."""
    if trial.state == TrialState.FAIL:
        return bool(trial.user_attrs.get(DIVERGED_ATTR))
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def _count_finished(study: optuna.Study) -> int:
    return _trial_counts(study)[0]


def summarize_study(study: optuna.Study) -> dict:
    """Best learning rate and validation loss, and trial counts by state."""
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(trial.state == state for trial in trials) for state in TrialState}
    completed = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    best = min(completed, key=lambda trial: trial.value) if completed else None
    return {
        "study_name": study.study_name,
        "best_lr": best.params["lr"] if best else None,
        "best_params": best_settings(best.params) if best else None,
        "best_val_loss": best.value if best else None,
        "best_trial": best.number if best else None,
        "trials_completed": counts[TrialState.COMPLETE],
        "trials_pruned": counts[TrialState.PRUNED],
        "trials_failed": counts[TrialState.FAIL],
    }
