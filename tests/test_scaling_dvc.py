"""The real DVC pipeline in a scratch repository on a small synthetic table, with tiny settings.

- `dvc repro tune` killed with SIGKILL mid-study leaves metrics/tune.json and the study's
  trials in place, and the next `dvc repro tune` resumes the study instead of starting over.
- Two experiments queued with `dvc exp run --queue -S ...` and run two at a time both show up
  in `dvc exp show --json`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import build_raw_frame, write_kaggle_csv
from optuna.trial import FrozenTrial, TrialState

REPO_ROOT = Path(__file__).resolve().parents[1]
STUDY_FILE = Path("data/tune/optuna.db")

# Quick trials on the synthetic table, long enough (about a second) to be killed in the middle.
TINY_PARAMS = {
    "train": {"hidden_sizes": [8], "head_size": 4, "max_epochs": 100, "patience": 100},
    "tune": {
        # One process on an SQLite file: the storage with heartbeats that needs no server.
        "storage": f"sqlite:///{STUDY_FILE}",
        "workers": 1,
        "n_trials": 2,
        "pruner_startup_trials": 100,
        "heartbeat_interval": 1,
        "grace_period": 2,
    },
}

pytestmark = pytest.mark.slow


def make_scratch_repo(root: Path) -> dict[str, str]:
    """Copy the pipeline into `root` as a fresh git + DVC repository; return its environment."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("stages", "src"):
        shutil.copytree(REPO_ROOT / name, root / name, ignore=ignore)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO_ROOT / name, root / name)
    update_params(root, TINY_PARAMS)
    write_kaggle_csv(build_raw_frame(rows_per_class=20), root / "data/raw/train.csv")

    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(root / "src"),
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        run(command, root, env)
    commit(root, env, "scratch pipeline")
    return env


def update_params(root: Path, changes: dict[str, dict]) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in changes.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run `command`; fail the test with its output when it fails."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def commit(root: Path, env: dict[str, str], message: str) -> None:
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-q", "-m", message], root, env)


def study_trials(root: Path) -> list[FrozenTrial]:
    """The trials of the only study in the scratch repository's SQLite file."""
    url = f"sqlite:///{root / STUDY_FILE}"
    names = optuna.get_all_study_names(url)
    assert len(names) == 1, names
    return optuna.load_study(study_name=names[0], storage=url).get_trials()


def completed_values(trials: list[FrozenTrial]) -> dict[int, float]:
    return {trial.number: trial.value for trial in trials if trial.state == TrialState.COMPLETE}


@dataclass
class KilledRepro:
    first_summary: str
    summary_after_kill: str
    completed_before_kill: dict[int, float]
    completed_after_kill: dict[int, float]
    final_summary: dict
    final_completed: dict[int, float]
    status_after: str


def kill_when_trial_runs(process: subprocess.Popen, root: Path, after: int) -> dict[int, float]:
    """SIGKILL `process`'s group once the study has `after` completed trials and one running.

    The running trial must have reported an epoch: killed then, it is in the middle of training.
    """
    deadline = time.monotonic() + 300
    url = f"sqlite:///{root / STUDY_FILE}"
    # The study exists since the first run; one open study reads its trials quickly.
    study = optuna.load_study(study_name=optuna.get_all_study_names(url)[0], storage=url)
    while time.monotonic() < deadline and process.poll() is None:
        trials = study.get_trials(deepcopy=False)
        done = completed_values(trials)
        running = [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]
        if len(done) >= after and running:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return done
        time.sleep(0.05)
    raise AssertionError(f"dvc repro ended or stalled before the kill: {process.poll()}")


@pytest.fixture(scope="module")
def killed_repro(tmp_path_factory: pytest.TempPathFactory) -> KilledRepro:
    root = tmp_path_factory.mktemp("resume")
    env = make_scratch_repo(root)
    summary_path = root / "metrics/tune.json"
    run(["dvc", "repro", "tune"], root, env)
    first_summary = summary_path.read_text()

    update_params(root, {"tune": {"n_trials": 5}})
    process = subprocess.Popen(
        ["dvc", "repro", "tune"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    before_kill = kill_when_trial_runs(process, root, after=3)
    summary_after_kill = summary_path.read_text()
    after_kill = completed_values(study_trials(root))

    run(["dvc", "repro", "tune"], root, env)
    return KilledRepro(
        first_summary=first_summary,
        summary_after_kill=summary_after_kill,
        completed_before_kill=before_kill,
        completed_after_kill=after_kill,
        final_summary=json.loads(summary_path.read_text()),
        final_completed=completed_values(study_trials(root)),
        status_after=run(["dvc", "status", "tune"], root, env),
    )


def test_killed_repro_keeps_previous_summary(killed_repro: KilledRepro) -> None:
    assert killed_repro.summary_after_kill == killed_repro.first_summary


def test_killed_repro_keeps_completed_trials(killed_repro: KilledRepro) -> None:
    assert killed_repro.completed_after_kill == killed_repro.completed_before_kill


def test_repro_after_kill_resumes_same_study(killed_repro: KilledRepro) -> None:
    first = json.loads(killed_repro.first_summary)

    assert killed_repro.final_summary["study_name"] == first["study_name"]


def test_repro_after_kill_reaches_new_trial_count(killed_repro: KilledRepro) -> None:
    assert killed_repro.final_summary["trials_completed"] == 5


def test_repro_after_kill_keeps_earlier_trials(killed_repro: KilledRepro) -> None:
    earlier = killed_repro.completed_before_kill
    kept = {n: v for n, v in killed_repro.final_completed.items() if n in earlier}

    assert kept == earlier


def test_repro_after_kill_leaves_tune_up_to_date(killed_repro: KilledRepro) -> None:
    assert "up to date" in killed_repro.status_after


def experiment_records(node: object) -> list[dict]:
    """Every experiment or commit record (a dict with params and metrics) in exp show JSON."""
    found = []
    if isinstance(node, dict):
        data = node.get("data")
        if isinstance(data, dict) and "params" in data and "metrics" in data:
            found.append(node)
        for value in node.values():
            found.extend(experiment_records(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(experiment_records(item))
    return found


def run_queue(root: Path, env: dict[str, str], workers: int, timeout: float = 600.0) -> None:
    """Run the queued experiments as the README does: `dvc queue start`, then poll the status.

    The test waits for the tasks, not for the workers to exit. A DVC queue worker can stay alive
    after its last task (an open DVC bug), and `dvc exp run --run-all` then waits until its
    timeout. So the workers left over are stopped here.
    """
    run(["dvc", "queue", "start", "-j", str(workers)], root, env)
    deadline = time.monotonic() + timeout
    status = run(["dvc", "queue", "status"], root, env)

    while "Queued" in status or "Running" in status:
        if time.monotonic() > deadline:
            stop_queue_workers(root, env)
            pytest.fail(f"queued experiments not finished after {timeout:.0f} s:\n{status}")
        time.sleep(2)
        status = run(["dvc", "queue", "status"], root, env)

    stop_queue_workers(root, env)


def stop_queue_workers(root: Path, env: dict[str, str]) -> None:
    """Ask the queue workers to stop, then kill any that is still alive after 10 seconds."""
    run(["dvc", "queue", "stop"], root, env)
    deadline = time.monotonic() + 10
    pid_files = list((root / ".dvc/tmp/exps/celery").glob("dvc-exp-worker-*.pid"))

    for pid_file in pid_files:
        pid = int(pid_file.read_text().strip())
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)


def process_alive(pid: int) -> bool:
    """Return whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def queued_experiments(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """`dvc exp show --json` records of two queued tune experiments (tune.seed 1 and 2)."""
    root = tmp_path_factory.mktemp("queue")
    env = make_scratch_repo(root)
    update_params(root, {"train": {"max_epochs": 3, "patience": 3}, "tune": {"n_trials": 1}})
    # Commit the prepared data so that each experiment only runs `tune`.
    run(["dvc", "repro", "encode_scale"], root, env)
    commit(root, env, "prepared data")

    for seed in (1, 2):
        run(["dvc", "exp", "run", "--queue", "-S", f"tune.seed={seed}", "tune"], root, env)
    run_queue(root, env, workers=2)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], root, env))
    return [
        record
        for record in experiment_records(shown)
        if record["data"]["params"]["params.yaml"]["data"]["tune"]["seed"] in (1, 2)
    ]


def tune_summary(record: dict) -> dict:
    return record["data"]["metrics"]["metrics/tune.json"]["data"]


def test_queued_experiments_both_shown(queued_experiments: list[dict]) -> None:
    seeds = sorted(
        r["data"]["params"]["params.yaml"]["data"]["tune"]["seed"] for r in queued_experiments
    )

    assert seeds == [1, 2]


def test_queued_experiments_both_have_tune_results(queued_experiments: list[dict]) -> None:
    completed = [tune_summary(record)["trials_completed"] for record in queued_experiments]

    assert completed == [1, 1]
