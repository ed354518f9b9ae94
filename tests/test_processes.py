"""Training independent models in forked processes gives the same results as one process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from house_multitask.config import TrainConfig, TrainerParams, resolve_processes
from house_multitask.errors import HouseMultitaskError, ParamsError
from house_multitask.experiment import score_over_seeds, train_ensemble_and_score
from house_multitask.processes import fork_available, map_in_processes
from house_multitask.training import configure_torch

FAST = TrainConfig(max_epochs=4, patience=10, batch_size=8, lr=0.01)

needs_fork = pytest.mark.skipif(not fork_available(), reason="no fork on this platform")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> None:
    configure_torch()


def square_with_pid(value: int) -> tuple[int, int]:
    return value * value, os.getpid()


def die_on_two(value: int) -> int:
    if value == 2:
        os._exit(1)
    return value


def fail_on_three(value: int) -> int:
    if value == 3:
        raise ValueError(f"bad item {value}")
    return value


def test_one_process_runs_in_caller() -> None:
    results = map_in_processes(square_with_pid, [1, 2, 3], processes=1)

    assert [square for square, _ in results] == [1, 4, 9]
    assert {pid for _, pid in results} == {os.getpid()}


@needs_fork
def test_workers_keep_item_order() -> None:
    results = map_in_processes(square_with_pid, range(6), processes=2)

    assert [square for square, _ in results] == [0, 1, 4, 9, 16, 25]
    assert os.getpid() not in {pid for _, pid in results}


@needs_fork
def test_workers_run_closures() -> None:
    offset = 10

    results = map_in_processes(lambda value: value + offset, [1, 2], processes=2)

    assert results == [11, 12]


@needs_fork
def test_worker_error_raised_in_caller() -> None:
    with pytest.raises(ValueError, match="bad item 3"):
        map_in_processes(fail_on_three, [1, 2, 3], processes=2)


@needs_fork
def test_dead_worker_raises_error() -> None:
    with pytest.raises(HouseMultitaskError, match="worker process .* died"):
        map_in_processes(die_on_two, [1, 2, 3], processes=2)


@needs_fork
@pytest.mark.parametrize("processes", [2, 3])
def test_seed_scores_match_across_processes(
    tmp_path: Path, synthetic_encoded_data, processes: int
) -> None:
    seeds = [0, 1, 2]

    alone = score_over_seeds(FAST, synthetic_encoded_data, seeds, "val", processes=1)
    forked = score_over_seeds(
        FAST, synthetic_encoded_data, seeds, "val", checkpoint_root=tmp_path, processes=processes
    )

    assert forked == alone
    assert (tmp_path / "seed_2" / "best.ckpt").exists()


@needs_fork
@pytest.mark.parametrize("processes", [2, 3])
def test_ensemble_matches_across_processes(synthetic_encoded_data, processes: int) -> None:
    seeds = [0, 1, 2]

    alone = train_ensemble_and_score(FAST, synthetic_encoded_data, "test", seeds, processes=1)
    forked = train_ensemble_and_score(
        FAST, synthetic_encoded_data, "test", seeds, processes=processes
    )

    assert forked.metrics == alone.metrics
    for mine, theirs in zip(alone.networks, forked.networks, strict=True):
        for key, tensor in mine.state_dict().items():
            assert torch.equal(tensor, theirs.state_dict()[key]), key


def test_several_threads_train_in_caller(caplog) -> None:
    torch.set_num_threads(2)
    try:
        results = map_in_processes(square_with_pid, [1, 2], processes=2)
    finally:
        torch.set_num_threads(1)

    assert {pid for _, pid in results} == {os.getpid()}
    assert "one after another" in caplog.text


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True])
def test_resolve_processes_rejects_invalid_value(value) -> None:
    with pytest.raises(ParamsError, match="base.processes="):
        resolve_processes(value)


def test_resolve_processes_accepts_count() -> None:
    assert resolve_processes(2) == 2


@pytest.mark.parametrize(
    ("settings", "one_cpu_process"),
    [
        ({}, True),
        ({"devices": 2}, False),
        ({"strategy": "ddp"}, False),
        ({"accelerator": "gpu"}, False),
    ],
)
def test_runs_in_one_cpu_process(settings: dict, one_cpu_process: bool) -> None:
    assert TrainerParams.from_dict(settings).runs_in_one_cpu_process() is one_cpu_process
