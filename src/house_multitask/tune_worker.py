"""The `tune-worker` sub-command: join an existing learning-rate study and run its trials.

The tune stage creates the study and records in it the training configuration and search
settings (`train` and `tune` of params.yaml); its name is in metrics/tune.json under
`study_name`. A worker reads those settings from the study, so it needs no params.yaml. It
needs the same encoded data and the same library source, which it checks by recomputing the
study's name: run it in a checkout of the same commit with `dvc pull` (or `dvc repro
encode_scale`) done.
"""

from __future__ import annotations

import argparse

from house_multitask.config import ACCELERATORS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        required=True,
        help="the study's storage URL, for example postgresql://user@host/optuna (the driver "
        "reads the password from PGPASSWORD or ~/.pgpass)",
    )
    parser.add_argument(
        "--study", required=True, help="the study name (study_name in metrics/tune.json)"
    )
    parser.add_argument(
        "--encoded-dir", default="data/encoded", help="folder of the encoded splits"
    )
    parser.add_argument(
        "--state",
        default="data/encoded_state/preprocessor.json",
        help="fitted preprocessor state (JSON)",
    )
    parser.add_argument(
        "--n-trials",
        type=int,
        help="finished trials the study should have (default: tune.n_trials of the run that "
        "created or last resumed it); the worker stops when the study has them",
    )
    parser.add_argument(
        "--accelerator",
        default="cpu",
        choices=ACCELERATORS,
        help="Lightning accelerator for this worker's trials (default: cpu)",
    )


def run(args: argparse.Namespace) -> int:
    """Run trials until the study has its target count of finished trials; print a summary."""
    import optuna

    from house_multitask.config import TrainConfig, TrainerParams, TuneParams
    from house_multitask.errors import ParamsError
    from house_multitask.experiment import EncodedData
    from house_multitask.training import configure_torch
    from house_multitask.tuning import (
        create_study,
        open_storage,
        recorded_settings,
        redact_url,
        run_worker,
        study_name_for,
        summarize_study,
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trainer = TrainerParams(accelerator=args.accelerator)
    if args.n_trials is not None and args.n_trials < 1:
        raise ParamsError(f"--n-trials={args.n_trials} is invalid; give a positive integer")

    storage = open_storage(TuneParams(storage=args.storage))
    try:
        recorded = optuna.load_study(study_name=args.study, storage=storage)
    except KeyError:
        raise ParamsError(
            f"--study={args.study!r} not found in {redact_url(args.storage)}; copy the name "
            "from study_name in metrics/tune.json of the run that created it"
        ) from None
    config_values, params_values = recorded_settings(recorded)
    config = TrainConfig.from_dict(config_values, f"study {args.study} train_config")
    overrides = {"storage": args.storage}
    if args.n_trials is not None:
        overrides["n_trials"] = args.n_trials
    params = TuneParams.from_dict({**params_values, **overrides}, f"study {args.study}")

    configure_torch()
    data = EncodedData.load(args.encoded_dir, args.state)
    expected = study_name_for(config, params, data)
    if expected != args.study:
        raise ParamsError(
            f"{args.encoded_dir} and {args.state} or the installed house_multitask source "
            f"differ from those of study {args.study!r} (they give {expected!r}); check out "
            "the commit the study was started from and run `dvc pull` or `dvc repro "
            "encode_scale`"
        )

    study = create_study(config, params, data)
    ran = run_worker(
        study, config, data, params, params.n_trials, trainer_options=trainer.to_dict()
    )
    summary = summarize_study(study)
    print(
        f"ran {ran} trial(s); study {summary['study_name']} holds "
        f"{summary['trials_completed']} completed, {summary['trials_pruned']} pruned, "
        f"{summary['trials_failed']} failed; best lr={summary['best_lr']} "
        f"val_loss={summary['best_val_loss']}"
    )
    return 0
