"""Local worker processes that run trials of one Optuna study at the same time.

`tune.workers: N` runs N workers on this machine: this process and N - 1 processes forked from
it (spawned where forking is not safe), each limited to one torch thread, all calling
`tuning.run_worker` on the same study. They coordinate only through the study's storage, so
that storage must accept writes from several processes at once: an Optuna journal file
(`journal:///path`) or a database server. A shared SQLite file is rejected, because concurrent
SQLite writers can fail with "database is locked".

This module imports `tuning` only inside functions, because `tuning` imports it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from optuna.storages.journal import JournalFileBackend, JournalStorage

from house_multitask.config import TrainConfig, TuneParams
from house_multitask.errors import ParamsError
from house_multitask.processes import fork_is_safe

if TYPE_CHECKING:
    import optuna

    from house_multitask.experiment import EncodedData

logger = logging.getLogger(__name__)

JOURNAL_SCHEME = "journal:///"
# A journal file records no heartbeats, so a worker waiting for the other workers' last trials
# polls the storage at this interval (seconds) instead of `tune.heartbeat_interval`.
JOURNAL_POLL_SECONDS = 1


def is_journal_url(url: str) -> bool:
    """Return whether `url` names an Optuna journal file (`journal:///path`)."""
    return url.startswith(JOURNAL_SCHEME)


def open_journal_storage(url: str) -> JournalStorage:
    """Open the journal file `journal:///path`, creating the file and its folder if needed.

    The path after `journal:///` is relative to the working directory unless it starts with
    `/`, as with `sqlite:///`: `journal:///data/tune/optuna.journal` is a relative path and
    `journal:////tmp/optuna.journal` an absolute one.
    """
    path = Path(url.removeprefix(JOURNAL_SCHEME))
    if not path.name:
        raise ParamsError(
            f"tune.storage={url!r} names no file; use journal:///data/tune/optuna.journal"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except OSError as error:
        raise ParamsError(
            f"tune.storage={url!r} cannot be opened: {error.strerror} ({path}); choose a "
            "writable folder"
        ) from None


def fail_dead_local_trials(study: optuna.Study, worker_attr: str) -> int:
    """Mark failed the running trials whose worker process on this machine no longer exists.

    A journal file records no heartbeats, so a trial whose worker was killed (SIGKILL, power
    loss) stays running forever and the study would never reach its trial count. Each trial
    names its worker as `host:pid` in the user attribute `worker_attr`; a trial of another
    host, or without that attribute, is left alone.

    Returns:
        How many trials were marked failed.
    """
    from optuna.trial import TrialState

    host = socket.gethostname()
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get(worker_attr, "")).rpartition(":")
        # NOTE: a reused pid makes a dead worker look alive; its trial then stays running.
        if worker_host != host or not pid.isdigit() or _process_exists(int(pid)):
            continue
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        logger.warning("trial %d: its worker %s is gone; marked failed", trial.number, pid)
        failed += 1
    return failed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_concurrent_storage(params: TuneParams) -> None:
    """Raise ParamsError when `params.workers > 1` would share one SQLite file."""
    if params.workers > 1 and params.storage.startswith("sqlite:"):
        raise ParamsError(
            f"tune.workers={params.workers} with tune.storage={params.storage!r}: worker "
            "processes writing one SQLite file at once can fail with 'database is locked'; "
            "use tune.storage: journal:///data/tune/optuna.journal, a server database such as "
            "postgresql://user@host/db, or tune.workers: 1"
        )


def run_parallel_workers(
    study: optuna.Study,
    config: TrainConfig,
    data: EncodedData,
    params: TuneParams,
    n_trials: int,
    trainer_options: Mapping[str, object] | None = None,
) -> int:
    """Run trials of `study` in `params.workers` processes until it holds `params.n_trials`.

    This process is one of the workers: it starts the others, then runs trials while they
    import torch and Lightning. Every worker stops once the study holds `params.n_trials`
    finished trials, so the total does not depend on how fast each one is. Two workers can
    both start the last trial when they look at the same moment, so a study may end with up
    to `workers - 1` trials more than `n_trials`.

    Args:
        study: the study, already created in `params.storage`.
        config: the training configuration of every trial.
        data: the encoded splits, sent to each worker process.
        params: search settings; `params.workers` is the number of processes, this one included.
        n_trials: the most trials any one worker runs (the trials the study still needs).
        trainer_options: `pl.Trainer` device options, as for `tuning.run_worker`.

    Returns:
        How many trials all workers ran together.
    """
    from house_multitask.tuning import run_worker

    check_concurrent_storage(params)
    others = min(params.workers, n_trials) - 1
    logger.info("starting %d tuning worker process(es) beside this one", others)
    # A forked worker inherits torch and Lightning already imported (about 4 s a process) and
    # opens its own storage connection. No trial, and so no heartbeat thread, has started yet.
    method = "fork" if fork_is_safe() else "spawn"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=max(others, 1), mp_context=context) as pool:
        futures = [
            pool.submit(
                _worker_process, config, data, params, n_trials, trainer_options, _log_level()
            )
            for _ in range(others)
        ]
        ran = run_worker(
            study, config, data, _polling_params(params), n_trials, trainer_options=trainer_options
        )
        ran += sum(future.result() for future in futures)
    return ran


def _worker_process(
    config: TrainConfig,
    data: EncodedData,
    params: TuneParams,
    n_trials: int,
    trainer_options: Mapping[str, object] | None,
    log_level: int,
) -> int:
    """Entry point of a worker process: open the study and run trials with one torch thread."""
    from house_multitask.training import configure_torch
    from house_multitask.tuning import create_study, run_worker

    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    configure_torch(1)
    study = create_study(config, params, data)
    return run_worker(
        study, config, data, _polling_params(params), n_trials, trainer_options=trainer_options
    )


def _polling_params(params: TuneParams) -> TuneParams:
    """`params` with the poll interval that suits its storage (see JOURNAL_POLL_SECONDS)."""
    if is_journal_url(params.storage):
        return replace(params, heartbeat_interval=JOURNAL_POLL_SECONDS)
    return params


def _log_level() -> int:
    return logging.getLogger().getEffectiveLevel()
