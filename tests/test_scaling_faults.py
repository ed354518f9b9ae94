"""Two tune-workers share a PostgreSQL study; one is killed with SIGKILL in the middle of a trial.

The scenario runs once per module. Expected: the study ends with exactly `n_trials` completed
trials, every trial completed before the kill is kept, the killed trial is failed (its
heartbeat stops) and re-run with the same learning rate by the surviving worker.

The best value equals that of an uninterrupted single-worker run with the same seed,
because all four trials fall in TPE's random start-up phase (its first 10 trials), where
`TrialSeededSampler` draws the k-th sampled learning rate from seed + k alone; a retried trial
keeps the learning rate of the trial it replaces; and training one learning rate is deterministic
(seeded, deterministic algorithms, one thread). Past the start-up phase TPE's proposals depend
on which trials had finished when a trial started, so parallel or interrupted runs then explore
differently and only the trial count is guaranteed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import pytest
from conftest import build_raw_frame
from optuna.trial import FrozenTrial, TrialState
from test_scaling import TINY_CONFIG, encode_synthetic, pg_params, pg_url, worker_argv

from house_multitask.config import TuneParams
from house_multitask.experiment import EncodedData
from house_multitask.training import configure_torch
from house_multitask.tuning import WORKER_ATTR, create_study, run_worker

__all__ = ["pg_params", "pg_url"]  # fixtures used by this module's tests

REPO_ROOT = Path(__file__).resolve().parents[1]

# Each trial trains 30 epochs without early stopping: long enough to be killed mid-trial.
CONFIG = replace(TINY_CONFIG, max_epochs=30, patience=30)
N_TRIALS = 4


@dataclass
class KillRun:
    """What the two-worker run left in PostgreSQL, and the uninterrupted run's trials."""

    trials: list[FrozenTrial]
    killed_number: int
    before_kill: dict[int, float]
    survivor_returncode: int
    reference: list[FrozenTrial]


def start_worker(params: TuneParams, study: str, paths: tuple[Path, Path]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    command = [sys.executable, "-m", "house_multitask.cli", *worker_argv(params, study, paths)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for_running_trial(
    storage: str, study: str, process: subprocess.Popen, timeout: float
) -> FrozenTrial:
    """Poll the study until `process` runs a trial; return that trial."""
    worker = f"{socket.gethostname()}:{process.pid}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace")
            raise AssertionError(f"worker {worker} exited with {process.returncode}: {output}")
        loaded = optuna.load_study(study_name=study, storage=storage)
        for trial in loaded.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            # A reported epoch means the trial is in the middle of training.
            if trial.user_attrs.get(WORKER_ATTR) == worker and trial.intermediate_values:
                return trial
        time.sleep(0.05)
    raise AssertionError(f"worker {worker} started no trial within {timeout} s")


@pytest.fixture(scope="module")
def kill_run(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> KillRun:
    folder = tmp_path_factory.mktemp("kill")
    paths = encode_synthetic(build_raw_frame(rows_per_class=20), folder / "data")
    configure_torch()
    data = EncodedData.load(*paths)
    settings = {"n_trials": N_TRIALS, "pruner_startup_trials": 100}
    heartbeat = {"heartbeat_interval": 1, "grace_period": 3}
    params = TuneParams(storage=pg_url, study_name=f"kill-{os.getpid()}", **settings, **heartbeat)
    study = create_study(CONFIG, params, data)

    victim = start_worker(params, study.study_name, paths)
    survivor = start_worker(params, study.study_name, paths)
    try:
        running = wait_for_running_trial(pg_url, study.study_name, victim, timeout=300)
        before_kill = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        survivor.communicate(timeout=300)
    finally:
        for process in (victim, survivor):
            if process.poll() is None:
                process.kill()
                process.wait()

    reference_params = TuneParams(storage=f"sqlite:///{folder / 'reference.db'}", **settings)
    reference = create_study(CONFIG, reference_params, data)
    run_worker(reference, CONFIG, data, reference_params, N_TRIALS)
    trials = optuna.load_study(study_name=study.study_name, storage=pg_url).get_trials()
    optuna.delete_study(study_name=study.study_name, storage=pg_url)
    return KillRun(
        trials, running.number, before_kill, survivor.returncode, reference.get_trials()
    )


def complete(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [trial for trial in trials if trial.state == TrialState.COMPLETE]


pytestmark = pytest.mark.slow


def test_killed_worker_survivor_exits_0(kill_run: KillRun) -> None:
    assert kill_run.survivor_returncode == 0


def test_killed_worker_study_has_n_trials_completed(kill_run: KillRun) -> None:
    assert len(complete(kill_run.trials)) == N_TRIALS


def test_killed_worker_no_learning_rate_completed_twice(kill_run: KillRun) -> None:
    rates = [trial.params["lr"] for trial in complete(kill_run.trials)]

    assert len(set(rates)) == N_TRIALS


def test_killed_worker_trials_completed_before_kill_kept(kill_run: KillRun) -> None:
    kept = {
        t.number: t.value for t in complete(kill_run.trials) if t.number in kill_run.before_kill
    }

    assert kept == kill_run.before_kill


def test_killed_worker_trial_marked_failed(kill_run: KillRun) -> None:
    assert kill_run.trials[kill_run.killed_number].state == TrialState.FAIL


def test_killed_worker_trial_retried_with_same_lr(kill_run: KillRun) -> None:
    killed = kill_run.trials[kill_run.killed_number]
    retries = [
        trial
        for trial in complete(kill_run.trials)
        if trial.system_attrs.get("failed_trial") == killed.number
    ]

    assert [trial.params["lr"] for trial in retries] == [killed.params["lr"]]


def describe(trials: list[FrozenTrial]) -> list[tuple]:
    """(number, state, lr, retried trial) of each trial, for failure messages."""
    return [
        (t.number, t.state.name, t.params.get("lr"), t.system_attrs.get("failed_trial"))
        for t in trials
    ]


def test_killed_worker_same_learning_rates_as_uninterrupted_run(kill_run: KillRun) -> None:
    shared = sorted(trial.params["lr"] for trial in complete(kill_run.trials))
    uninterrupted = sorted(trial.params["lr"] for trial in complete(kill_run.reference))

    assert shared == uninterrupted, (describe(kill_run.trials), describe(kill_run.reference))


def test_killed_worker_same_best_value_as_uninterrupted_run(kill_run: KillRun) -> None:
    best = min(trial.value for trial in complete(kill_run.trials))

    # One learning rate trains to the same weights in any process: equal up to float noise.
    assert best == pytest.approx(min(t.value for t in complete(kill_run.reference)), rel=1e-6)
