"""Start-up and scoring time of `house-multitask predict` on Kaggle's test.csv (1,459 houses).

Measured, each as the minimum over repeats, because on a shared machine noise only adds time:

- start-up: a fresh interpreter that imports `house_multitask.predict` (torch, pandas), next to
  a bare `python -c pass` for the interpreter alone;
- the whole command `house-multitask predict` in a subprocess: start-up, loading the model
  directory, reading and scoring the file, writing the CSV;
- in this process, after start-up: loading the model directory, then each step of scoring
  (reading and checking the CSV, `Preprocessor.transform`, `build_inputs`, the network, the
  implausible-value checks) and the whole `Model.predict_file`.

Run from the repository root after `dvc repro final`:

    python benchmarks/predict_speed.py
    python benchmarks/predict_speed.py --model models/final --input path/to/test.csv --repeats 5

Without a model directory the script writes a stand-in: the `train` architecture of
params.yaml with untrained weights and an encoder fitted on Kaggle's train.csv. Its weights
differ, but it has the same layers and inputs, so it takes the same time to score.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KAGGLE_DIR_ENV = "HOUSE_MULTITASK_KAGGLE_DIR"


def find_kaggle_file(name: str) -> Path | None:
    """Return Kaggle's `name` from $HOUSE_MULTITASK_KAGGLE_DIR, data/raw or ../shared."""
    folders = [Path(os.environ[KAGGLE_DIR_ENV])] if os.environ.get(KAGGLE_DIR_ENV) else []
    folders += [REPO / "data" / "raw", REPO.parent / "shared" / "data" / "kaggle-house-prices"]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    return None


def best_of(repeats: int, action: Callable[[], object]) -> float:
    """Return the shortest wall time of `repeats` calls of `action`, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def run_python(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"benchmark command failed: {' '.join(args)}\n{done.stderr}")


def write_stand_in_model(directory: Path) -> Path:
    """Write an untrained model directory with the `train` architecture of params.yaml."""
    import torch
    import yaml

    from house_multitask.config import TrainConfig
    from house_multitask.data.clean import clean_frame
    from house_multitask.data.io import read_kaggle_csv
    from house_multitask.features.inputs import numeric_input_columns
    from house_multitask.features.preprocess import Preprocessor
    from house_multitask.model_dir import build_network, save_model_dir
    from house_multitask.schema import ID_COLUMN, PRICE_COLUMN

    train_csv = find_kaggle_file("train.csv")
    if train_csv is None:
        sys.exit("Kaggle's train.csv not found; pass --model with a trained model directory")
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    config = TrainConfig.from_dict(params["train"])
    max_missing_share = params["clean"]["max_missing_share"]

    raw = read_kaggle_csv(train_csv, [ID_COLUMN, PRICE_COLUMN])
    cleaned, _ = clean_frame(raw, max_missing_share, protected=(ID_COLUMN, PRICE_COLUMN))
    preprocessor = Preprocessor.fit(cleaned)
    torch.manual_seed(0)
    network = build_network(
        config, len(numeric_input_columns(preprocessor, config)), preprocessor.cardinalities()
    )
    return save_model_dir(directory, config, preprocessor, [network])


def measure(model_dir: Path, path: Path, repeats: int, scratch: Path) -> list[tuple[str, float]]:
    """Return (label, seconds) rows for every measurement of scoring the file at `path`."""
    rows: list[tuple[str, float]] = []
    output = scratch / "predictions.csv"

    cli = ["-m", "house_multitask.cli", "predict", "--model", str(model_dir)]
    cli += ["--input", str(path), "--output", str(output)]
    processes = [
        ("interpreter alone (python -c pass)", ["-c", "pass"]),
        ("start-up: import house_multitask.predict", ["-c", "import house_multitask.predict"]),
        ("whole CLI run in a subprocess", cli),
    ]
    for label, arguments in processes:
        rows.append((label, best_of(repeats, lambda arguments=arguments: run_python(*arguments))))

    from house_multitask.data.io import read_kaggle_table
    from house_multitask.features.inputs import build_inputs
    from house_multitask.predict import find_implausible_values, load_model, write_predictions

    rows.append(("load_model", best_of(repeats, lambda: load_model(model_dir))))
    model = load_model(model_dir)

    def read() -> object:
        return read_kaggle_table(path, model.required_columns, model.numeric_columns)

    frame = read()
    encoded, _ = model.preprocessor.transform(frame[model.required_columns])
    inputs = build_inputs(encoded, model.preprocessor, model.config)
    predictions, _ = model.predict_file_with_report(path)
    steps = [
        ("  read and check the CSV", read),
        ("  Preprocessor.transform", lambda: model.preprocessor.transform(frame)),
        ("  build_inputs", lambda: build_inputs(encoded, model.preprocessor, model.config)),
        ("  network forward (all members)", lambda: model._forward(inputs)),
        ("  implausible-value checks", lambda: find_implausible_values(frame)),
        ("scoring: Model.predict_file, all steps", lambda: model.predict_file_with_report(path)),
        ("write_predictions (CSV)", lambda: write_predictions(predictions, output)),
    ]
    for label, action in steps:
        rows.append((label, best_of(repeats, action)))

    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=REPO / "models" / "final", help="model directory"
    )
    parser.add_argument("--input", type=Path, help="houses to score (default: Kaggle's test.csv)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement")
    args = parser.parse_args()

    input_path = args.input or find_kaggle_file("test.csv")
    if input_path is None:
        sys.exit("Kaggle's test.csv not found; pass --input")

    with tempfile.TemporaryDirectory(prefix="predict-speed-") as scratch_name:
        scratch = Path(scratch_name)
        model_dir = args.model
        if not (model_dir / "model.json").is_file():
            model_dir = write_stand_in_model(scratch / "model")
            print(f"no model in {args.model}; using an untrained stand-in of the same shape")
        rows = measure(model_dir, input_path, args.repeats, scratch)

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    print(f"model: {model_dir}; input: {input_path}; best of {args.repeats} runs\n")
    print(f"{'measurement':<58} {'seconds':>9}")
    for label, seconds in rows:
        print(f"{label:<58} {seconds:>9.4f}")

    heavy = sorted({name.split(".")[0] for name in sys.modules} & {"lightning", "optuna"})
    timings = dict(rows)
    scoring = timings["scoring: Model.predict_file, all steps"]
    start_up = timings["start-up: import house_multitask.predict"]
    print(f"\nscoring / start-up: {scoring / start_up:.2f}")
    print(f"Lightning or Optuna imported in this process: {', '.join(heavy) or 'no'}")


if __name__ == "__main__":
    main()
