"""Shared Optuna studies: storage, per-trial seeding, trial budget, trainer options, tune-worker.

Tests marked `postgres` use the server named by HOUSE_MULTITASK_PG_URL (`.ci/run` starts one
with `.ci/postgres.sh`). Without a reachable server they are skipped, unless CI is set: then
they fail, so a CI run cannot pass without them.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from house_multitask import cli
from house_multitask.config import SplitParams, TrainConfig, TrainerParams, TuneParams
from house_multitask.data.category import derive_house_category
from house_multitask.data.clean import clean_frame
from house_multitask.data.io import write_json, write_parquet
from house_multitask.data.split import split_frame
from house_multitask.errors import ParamsError
from house_multitask.experiment import EncodedData
from house_multitask.features.preprocess import Preprocessor
from house_multitask.schema import CATEGORY_COLUMN, ID_COLUMN, PRICE_COLUMN
from house_multitask.training import configure_torch, fit_model
from house_multitask.tuning import (
    CONFIG_ATTR,
    TrialSeededSampler,
    create_study,
    open_storage,
    run_worker,
)

PG_URL_ENV = "HOUSE_MULTITASK_PG_URL"

# Small and quick: a trial trains for a fraction of a second on the synthetic table.
TINY_CONFIG = TrainConfig(hidden_sizes=(8,), head_size=4, max_epochs=3, patience=3)


def encode_synthetic(raw: pd.DataFrame, folder: Path) -> tuple[Path, Path]:
    """Clean, label, split and encode `raw` as the pipeline does; return (encoded dir, state)."""
    protected = (ID_COLUMN, PRICE_COLUMN)
    cleaned, _ = clean_frame(raw, 0.10, protected=protected)
    cleaned[CATEGORY_COLUMN] = derive_house_category(cleaned)
    parts = split_frame(cleaned, SplitParams(), CATEGORY_COLUMN)
    preprocessor = Preprocessor.fit(parts["train"])
    encoded_dir = folder / "encoded"
    for name, part in parts.items():
        write_parquet(preprocessor.transform(part)[0], encoded_dir / f"{name}.parquet")
    state = folder / "preprocessor.json"
    write_json(preprocessor.to_dict(), state)
    return encoded_dir, state


@pytest.fixture
def encoded_paths(
    tmp_path: Path, make_raw_frame: Callable[..., pd.DataFrame]
) -> tuple[Path, Path]:
    """Encoded splits of a 120-row synthetic table, as (encoded dir, preprocessor state)."""
    return encode_synthetic(make_raw_frame(rows_per_class=20), tmp_path / "data")


@pytest.fixture
def encoded(encoded_paths: tuple[Path, Path]) -> EncodedData:
    configure_torch()
    return EncodedData.load(*encoded_paths)


def sqlite_params(tmp_path: Path, **changes: object) -> TuneParams:
    """Search settings on an SQLite file in `tmp_path`, with no pruning."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    values = {"n_trials": 2, "storage": url, "pruner_startup_trials": 100, **changes}
    return TuneParams(**values)


def reachable(url: str) -> str | None:
    """None when the PostgreSQL server at `url` accepts a connection, else why not."""
    import sqlalchemy

    try:
        with sqlalchemy.create_engine(url).connect() as connection:
            connection.exec_driver_sql("select 1")
    except Exception as error:  # any driver or connection error means "not reachable"
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of the test PostgreSQL database; skips (fails under CI) when none is reachable."""
    url = os.environ.get(PG_URL_ENV)
    problem = f"{PG_URL_ENV} is not set" if not url else reachable(url)
    if problem is None:
        return url
    reason = (
        f"no PostgreSQL server ({problem}); run `.ci/postgres.sh start` and export "
        f"{PG_URL_ENV} as the URL it prints"
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the PostgreSQL tests must run: {reason}")
    pytest.skip(reason)


@pytest.fixture
def pg_params(pg_url: str) -> Iterator[TuneParams]:
    """Search settings on the test server under a study name of their own; deleted afterwards."""
    params = TuneParams(
        n_trials=2,
        storage=pg_url,
        study_name=f"test-{uuid.uuid4().hex[:8]}",
        pruner_startup_trials=100,
    )
    yield params
    for summary in optuna.get_all_study_summaries(pg_url, include_best_trial=False):
        if summary.study_name.startswith(params.study_name):
            optuna.delete_study(study_name=summary.study_name, storage=pg_url)


def worker_argv(params: TuneParams, study: str, paths: tuple[Path, Path]) -> list[str]:
    encoded_dir, state = paths
    return [
        "tune-worker",
        "--storage",
        params.storage,
        "--study",
        study,
        "--encoded-dir",
        str(encoded_dir),
        "--state",
        str(state),
    ]


def completed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


# Storage and study creation.


def test_create_study_records_training_config(tmp_path: Path, encoded: EncodedData) -> None:
    study = create_study(TINY_CONFIG, sqlite_params(tmp_path), encoded)

    assert study.user_attrs[CONFIG_ATTR] == TINY_CONFIG.to_dict()


def test_create_study_twice_loads_same_study(tmp_path: Path, encoded: EncodedData) -> None:
    params = sqlite_params(tmp_path)
    first = create_study(TINY_CONFIG, params, encoded)
    first.enqueue_trial({"lr": 0.01})

    second = create_study(TINY_CONFIG, params, encoded)

    assert len(second.get_trials(deepcopy=False)) == 1


def test_open_storage_unreachable_server_raises_params_error() -> None:
    params = TuneParams(storage="postgresql://nobody:secret@127.0.0.1:1/optuna")

    with pytest.raises(ParamsError, match=r"tune.storage=.*127.0.0.1:1/optuna.*cannot be opened"):
        open_storage(params)


def test_open_storage_error_hides_password() -> None:
    params = TuneParams(storage="postgresql://nobody:secret@127.0.0.1:1/optuna")

    with pytest.raises(ParamsError) as caught:
        open_storage(params)

    assert "secret" not in str(caught.value)


def test_open_storage_enables_heartbeats(tmp_path: Path) -> None:
    storage = open_storage(sqlite_params(tmp_path, heartbeat_interval=3, grace_period=9))

    assert (storage.get_heartbeat_interval(), storage.grace_period) == (3, 9)


def test_tune_params_grace_shorter_than_heartbeat_raises() -> None:
    with pytest.raises(ParamsError, match=r"tune.grace_period=5 is out of range"):
        TuneParams(heartbeat_interval=10, grace_period=5).validate()


# Sampling: trial k's learning rate depends on seed and k only (during TPE's start-up trials).


def sampled_lrs(study: optuna.Study, n_trials: int) -> list[float]:
    study.optimize(lambda trial: trial.suggest_float("lr", 1e-4, 1e-1, log=True), n_trials)
    return [trial.params["lr"] for trial in study.get_trials(deepcopy=False)]


def test_trial_seeded_sampler_resumed_study_repeats_uninterrupted(tmp_path: Path) -> None:
    whole = optuna.create_study(sampler=TrialSeededSampler(7))
    expected = sampled_lrs(whole, 4)
    url = f"sqlite:///{tmp_path / 'resumed.db'}"
    first = optuna.create_study(study_name="s", storage=url, sampler=TrialSeededSampler(7))
    sampled_lrs(first, 2)

    # A new process: a new sampler object, starting from the seed again.
    resumed = optuna.load_study(study_name="s", storage=url, sampler=TrialSeededSampler(7))

    assert sampled_lrs(resumed, 2) == expected


def test_trial_seeded_sampler_retry_does_not_shift_later_trials() -> None:
    expected = sampled_lrs(optuna.create_study(sampler=TrialSeededSampler(7)), 2)
    study = optuna.create_study(sampler=TrialSeededSampler(7))
    lost = sampled_lrs(study, 1)[0]
    distribution = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    retry = optuna.create_trial(
        state=TrialState.WAITING,
        params={"lr": lost},
        distributions={"lr": distribution},
        system_attrs={"failed_trial": 0},
    )
    study.add_trial(retry)

    assert sampled_lrs(study, 2)[2] == expected[1]


def test_trial_seeded_sampler_differs_between_trials() -> None:
    study = optuna.create_study(sampler=TrialSeededSampler(0))

    assert len(set(sampled_lrs(study, 3))) == 3


# The trial budget.


def test_run_worker_stops_when_study_holds_n_trials(tmp_path: Path, encoded: EncodedData) -> None:
    params = sqlite_params(tmp_path, n_trials=2)
    study = create_study(TINY_CONFIG, params, encoded)

    ran = run_worker(study, TINY_CONFIG, encoded, params, 5)

    assert ran == 2


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_run_worker_interrupted_trial_does_not_count(tmp_path: Path, encoded: EncodedData) -> None:
    params = sqlite_params(tmp_path, n_trials=2)
    study = create_study(TINY_CONFIG, params, encoded)
    study.tell(study.ask(), state=TrialState.FAIL)  # as Ctrl-C leaves a trial

    run_worker(study, TINY_CONFIG, encoded, params, 5)

    assert len(completed(study)) == 2


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_run_worker_stale_trial_is_failed_and_retried(
    tmp_path: Path, encoded: EncodedData
) -> None:
    params = sqlite_params(tmp_path, n_trials=2, heartbeat_interval=1, grace_period=1)
    study = create_study(TINY_CONFIG, params, encoded)
    # A trial whose worker died: running, with one heartbeat (the storage's own call) long ago.
    lost = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
    study._storage.record_heartbeat(lost._trial_id)
    time.sleep(2.5)

    run_worker(study, TINY_CONFIG, encoded, params, 5)

    retried = [t for t in completed(study) if t.system_attrs.get("failed_trial") == lost.number]
    assert [t.params["lr"] for t in retried] == [lost.params["lr"]]


# Trainer options.


def test_trainer_params_unknown_accelerator_raises() -> None:
    with pytest.raises(ParamsError, match=r"trainer.accelerator='quantum' is not allowed"):
        TrainerParams.from_dict({"accelerator": "quantum"})


def test_trainer_params_two_devices_rejected_for_tuning() -> None:
    trainer = TrainerParams.from_dict({"devices": 2, "strategy": "ddp"})

    with pytest.raises(ParamsError, match=r"trainer.devices=2: each tuning trial runs in one"):
        trainer.check_single_process()


def test_fit_model_unknown_strategy_raises_params_error(encoded: EncodedData) -> None:
    inputs = encoded.inputs(TINY_CONFIG)
    cardinalities = encoded.preprocessor.cardinalities()

    with pytest.raises(ParamsError, match=r"trainer.strategy='warp'.*Lightning rejects"):
        fit_model(
            TINY_CONFIG,
            inputs["train"],
            inputs["val"],
            cardinalities,
            trainer_options={"strategy": "warp"},
        )


# The tune-worker command.


def test_tune_worker_unknown_study_exits_2(
    tmp_path: Path, encoded_paths: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    params = sqlite_params(tmp_path)

    code = cli.main(worker_argv(params, "lr-000000000000", encoded_paths))

    message = capsys.readouterr().err
    assert (code, message.startswith("error: --study='lr-000000000000' not found")) == (2, True)


def test_tune_worker_other_data_exits_2(
    tmp_path: Path,
    encoded: EncodedData,
    make_raw_frame: Callable[..., pd.DataFrame],
    capsys: pytest.CaptureFixture,
) -> None:
    params = sqlite_params(tmp_path)
    study = create_study(TINY_CONFIG, params, encoded)
    other = encode_synthetic(make_raw_frame(rows_per_class=20, seed=1), tmp_path / "other")

    code = cli.main(worker_argv(params, study.study_name, other))

    assert code == 2
    assert "differ from those of study" in capsys.readouterr().err


def test_tune_worker_runs_sqlite_study_to_its_target(
    tmp_path: Path, encoded: EncodedData, encoded_paths: tuple[Path, Path]
) -> None:
    params = sqlite_params(tmp_path, n_trials=2)
    study = create_study(TINY_CONFIG, params, encoded)

    cli.main(worker_argv(params, study.study_name, encoded_paths))

    assert len(completed(study)) == 2


def test_tune_worker_n_trials_raises_target(
    tmp_path: Path, encoded: EncodedData, encoded_paths: tuple[Path, Path]
) -> None:
    params = sqlite_params(tmp_path, n_trials=1)
    study = create_study(TINY_CONFIG, params, encoded)

    cli.main([*worker_argv(params, study.study_name, encoded_paths), "--n-trials", "3"])

    assert len(completed(study)) == 3


def test_tune_worker_joins_postgres_study(
    pg_params: TuneParams, encoded: EncodedData, encoded_paths: tuple[Path, Path]
) -> None:
    study = create_study(TINY_CONFIG, pg_params, encoded)

    code = cli.main(worker_argv(pg_params, study.study_name, encoded_paths))

    assert (code, len(completed(study))) == (0, 2)


def test_postgres_study_shared_by_two_workers_has_no_duplicates(
    pg_params: TuneParams, encoded: EncodedData
) -> None:
    params = replace(pg_params, n_trials=4)
    study = create_study(TINY_CONFIG, params, encoded)
    # Two workers in turn, each with its own connection and sampler, as on two machines.
    run_worker(study, TINY_CONFIG, encoded, params, 2)
    other = create_study(TINY_CONFIG, params, encoded)

    run_worker(other, TINY_CONFIG, encoded, params, 4)

    assert len({trial.params["lr"] for trial in completed(study)}) == 4
