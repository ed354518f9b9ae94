"""Train several independent models at once in forked worker processes.

The ablation seeds of one variant and the members of the final ensemble do not depend on each
other, and each trains with one torch thread, so on a machine with several cores they can run
side by side. Workers are forked, not spawned: a fork inherits the parent's imports (about 4 s
of torch and Lightning) and its in-memory data, so only the results travel back through a pipe.
Each task seeds itself, so the results are the same with any number of processes.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

import torch

from house_multitask.errors import HouseMultitaskError

Item = TypeVar("Item")
Result = TypeVar("Result")

logger = logging.getLogger(__name__)

# The task of the running `map_in_processes` call. Forked workers inherit it, so it may be any
# callable, such as a closure over loggers and tensors, which `pickle` could not send.
_TASK: Callable | None = None


def fork_available() -> bool:
    """Return True where worker processes can be forked (Linux and macOS, not Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


def fork_is_safe() -> bool:
    """Return True when this process can fork workers that will not hang.

    A fork of a process whose OpenMP thread pool has run can hang in its first parallel
    operation, so torch must use one thread here (`training.configure_torch` sets one).
    """
    return fork_available() and torch.get_num_threads() == 1


def map_in_processes(
    task: Callable[[Item], Result], items: Iterable[Item], processes: int
) -> list[Result]:
    """Return `[task(item) for item in items]`, computed by up to `processes` forked workers.

    With `processes` 1 or a single item, the items run one after another in this process. They
    also do, with a warning, when forking is not safe (see `fork_is_safe`). An exception raised
    in a worker is raised here. The task's results must be picklable.

    Raises:
        HouseMultitaskError: a worker process died without raising, for example killed by the
            kernel when memory ran out.
    """
    global _TASK
    items = list(items)
    workers = min(processes, len(items))
    if workers > 1 and not fork_is_safe():
        logger.warning(
            "training %d models one after another: this platform cannot fork, or torch uses "
            "%d threads (call training.configure_torch() first to use %d processes)",
            len(items),
            torch.get_num_threads(),
            workers,
        )
        workers = 1
    if workers <= 1:
        return [task(item) for item in items]

    _TASK = task
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            logger.info("training %d models in %d processes", len(items), workers)
            return list(pool.map(_run_task, items))
    except BrokenProcessPool:
        raise HouseMultitaskError(
            f"a worker process training one of {len(items)} models died, killed or out of "
            "memory: set base.processes: 1 to train them one after another"
        ) from None
    finally:
        _TASK = None


def _run_task(item):
    return _TASK(item)
