"""Several tuning worker processes on one study: journal storage, no lost or failed trials."""

from __future__ import annotations

import multiprocessing
import os
import socket
from dataclasses import replace
from multiprocessing.synchronize import Barrier
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from house_multitask.config import TrainConfig, TuneParams
from house_multitask.errors import ParamsError
from house_multitask.parallel_tuning import (
    check_concurrent_storage,
    fail_dead_local_trials,
    open_journal_storage,
)

CONFIG = TrainConfig(max_epochs=3, patience=10, batch_size=8)
PROCESSES = 4
TRIALS_PER_PROCESS = 5


def journal_params(tmp_path: Path, **changes) -> TuneParams:
    values = {
        "n_trials": 4,
        "lr_low": 1e-3,
        "lr_high": 1e-1,
        "storage": f"journal:///{tmp_path / 'tune' / 'optuna.journal'}",
        "pruner_startup_trials": 0,
        "pruner_warmup_epochs": 0,
    }
    return TuneParams(**{**values, **changes})


def _write_heavy_objective(trial: optuna.Trial) -> float:
    """A trial that writes to the storage often: a parameter, reports and a user attribute."""
    x = trial.suggest_float("x", -1.0, 1.0)
    for step in range(5):
        trial.report(x * x + step, step)
    trial.set_user_attr("checked", True)
    return x * x


def _start_together(url: str, barrier: Barrier) -> None:
    """Wait for every process, then create-or-load the study and run trials at once."""
    storage = open_journal_storage(url)
    barrier.wait()
    study = optuna.create_study(study_name="together", storage=storage, load_if_exists=True)
    study.optimize(_write_heavy_objective, n_trials=TRIALS_PER_PROCESS)


def test_journal_processes_starting_together_fail_no_trial(tmp_path: Path) -> None:
    url = f"journal:///{tmp_path / 'optuna.journal'}"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    processes = [
        context.Process(target=_start_together, args=(url, barrier)) for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    for process in processes:
        if process.is_alive():  # stuck on the journal lock: fail below instead of hanging
            process.kill()

    study = optuna.load_study(study_name="together", storage=open_journal_storage(url))
    states = [trial.state for trial in study.trials]
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    assert len(states) == PROCESSES * TRIALS_PER_PROCESS
    assert states.count(TrialState.COMPLETE) == PROCESSES * TRIALS_PER_PROCESS


@pytest.mark.slow
def test_run_study_two_workers_finish_every_trial(tmp_path: Path, synthetic_encoded_data) -> None:
    from house_multitask.tuning import run_study

    params = journal_params(tmp_path, workers=2)

    summary = run_study(CONFIG, synthetic_encoded_data, params)

    finished = summary["trials_completed"] + summary["trials_pruned"]
    assert summary["trials_failed"] == 0
    # Two workers that look at the study at the same moment may both start the last trial.
    assert params.n_trials <= finished <= params.n_trials + 1


def test_run_study_one_worker_journal_same_seed_same_best(
    tmp_path: Path, synthetic_encoded_data
) -> None:
    from house_multitask.tuning import run_study

    first = run_study(CONFIG, synthetic_encoded_data, journal_params(tmp_path / "a", n_trials=3))
    second = run_study(CONFIG, synthetic_encoded_data, journal_params(tmp_path / "b", n_trials=3))

    assert (second["best_lr"], second["best_val_loss"]) == (
        first["best_lr"],
        first["best_val_loss"],
    )


def test_run_study_journal_resumes(tmp_path: Path, synthetic_encoded_data) -> None:
    from house_multitask.tuning import run_study

    params = journal_params(tmp_path, n_trials=2)
    first = run_study(CONFIG, synthetic_encoded_data, params)

    more = run_study(CONFIG, synthetic_encoded_data, replace(params, n_trials=3))

    assert more["study_name"] == first["study_name"]
    assert more["trials_completed"] + more["trials_pruned"] == 3


def test_run_study_sqlite_two_workers_rejected(tmp_path: Path, synthetic_encoded_data) -> None:
    from house_multitask.tuning import run_study

    params = journal_params(tmp_path, workers=2, storage=f"sqlite:///{tmp_path / 'optuna.db'}")

    with pytest.raises(ParamsError, match=r"tune\.workers=2 .*database is locked.*journal:///"):
        run_study(CONFIG, synthetic_encoded_data, params)


def test_check_concurrent_storage_one_worker_sqlite_allowed(tmp_path: Path) -> None:
    params = TuneParams(storage=f"sqlite:///{tmp_path / 'optuna.db'}", workers=1)

    check_concurrent_storage(params)

    assert not (tmp_path / "optuna.db").exists()


def test_check_concurrent_storage_server_url_allowed() -> None:
    params = TuneParams(storage="postgresql://user@127.0.0.1/optuna", workers=4)

    check_concurrent_storage(params)

    assert params.workers == 4


def test_open_journal_storage_creates_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "optuna.journal"

    open_journal_storage(f"journal:///{path}")

    assert path.is_file()


def test_open_journal_storage_relative_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)

    open_journal_storage("journal:///data/tune/optuna.journal")

    assert (tmp_path / "data" / "tune" / "optuna.journal").is_file()


def test_open_journal_storage_without_file_name() -> None:
    with pytest.raises(ParamsError, match=r"tune\.storage='journal:///' names no file"):
        open_journal_storage("journal:///")


def test_open_journal_storage_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    with pytest.raises(ParamsError, match=r"cannot be opened: .*choose a writable folder"):
        open_journal_storage(f"journal:///{blocker / 'optuna.journal'}")


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_tune_params_invalid_workers(workers) -> None:
    with pytest.raises(ParamsError, match=r"tune\.workers="):
        TuneParams(workers=workers).validate()


def test_tune_params_journal_storage_valid() -> None:
    params = TuneParams(storage="journal:///data/tune/optuna.journal", workers=2)

    params.validate()

    assert params.workers == 2


def _dead_pid() -> int:
    process = multiprocessing.get_context("spawn").Process(target=int)
    process.start()
    process.join()
    return process.pid


def _running_trial(tmp_path: Path, worker: str) -> optuna.Study:
    storage = open_journal_storage(f"journal:///{tmp_path / 'optuna.journal'}")
    study = optuna.create_study(study_name="dead", storage=storage)
    trial = study.ask()
    trial.set_user_attr("worker", worker)
    return study


def test_fail_dead_local_trials_fails_orphan(tmp_path: Path) -> None:
    study = _running_trial(tmp_path, f"{socket.gethostname()}:{_dead_pid()}")

    failed = fail_dead_local_trials(study, "worker")

    assert failed == 1
    assert study.trials[0].state == TrialState.FAIL


def test_fail_dead_local_trials_keeps_live_worker(tmp_path: Path) -> None:
    study = _running_trial(tmp_path, f"{socket.gethostname()}:{os.getpid()}")

    fail_dead_local_trials(study, "worker")

    assert study.trials[0].state == TrialState.RUNNING


def test_fail_dead_local_trials_keeps_other_host(tmp_path: Path) -> None:
    study = _running_trial(tmp_path, f"another-{socket.gethostname()}:{_dead_pid()}")

    fail_dead_local_trials(study, "worker")

    assert study.trials[0].state == TrialState.RUNNING
