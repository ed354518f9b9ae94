"""Training with Lightning's `ddp` strategy on two CPU processes (gloo) against one process.

Tolerance: relative 1e-5 on the best validation loss and on the validation predictions.
`InMemoryBatches` is not a `DataLoader`, so Lightning gives it no `DistributedSampler`: both
processes train on every row, in the same seeded order. DDP then averages two identical
gradients, which equals the one-process gradient; what is left is rounding in gloo's
all-reduce (sum, then divide by 2), far below 1e-5. With a sharded loader each process would see
half the rows per step and the results would differ by far more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import build_raw_frame
from test_scaling import encode_synthetic

REPO_ROOT = Path(__file__).resolve().parents[1]

# Run as `python SCRIPT encoded_dir state output strategy devices`; with ddp Lightning starts
# the second process by running the same command again.
SCRIPT = """
import json
import sys
from pathlib import Path

import torch.distributed

from house_multitask.config import TrainConfig
from house_multitask.experiment import EncodedData
from house_multitask.training import configure_torch, fit_model, is_global_zero, predict

encoded_dir, state, output, strategy, devices = sys.argv[1:6]
configure_torch()
data = EncodedData.load(encoded_dir, state)
config = TrainConfig(hidden_sizes=(8,), head_size=4, max_epochs=8, patience=8)
inputs = data.inputs(config)
options = {"accelerator": "cpu", "devices": int(devices), "strategy": strategy}
fit = fit_model(
    config, inputs["train"], inputs["val"], data.preprocessor.cardinalities(),
    trainer_options=options,
)
if is_global_zero():
    outputs = predict(fit.module, inputs["val"])
    result = {"best_val_loss": fit.best_val_loss, "price": outputs.price_output.tolist()}
    distributed = torch.distributed.is_initialized()
    result["world_size"] = torch.distributed.get_world_size() if distributed else 1
    Path(output).write_text(json.dumps(result))
"""

pytestmark = pytest.mark.slow


def train(folder: Path, paths: tuple[Path, Path], strategy: str, devices: int) -> dict:
    script = folder / "train.py"
    script.write_text(SCRIPT)
    output = folder / f"{strategy}-{devices}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    command = [sys.executable, str(script), *map(str, paths), str(output), strategy, str(devices)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(output.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("ddp")
    paths = encode_synthetic(build_raw_frame(rows_per_class=20), folder / "data")
    return {"single": train(folder, paths, "auto", 1), "ddp": train(folder, paths, "ddp", 2)}


def test_ddp_trains_in_two_processes(runs: dict[str, dict]) -> None:
    assert runs["ddp"]["world_size"] == 2


def test_ddp_two_processes_best_val_loss_matches_one(runs: dict[str, dict]) -> None:
    single = runs["single"]["best_val_loss"]

    assert runs["ddp"]["best_val_loss"] == pytest.approx(single, rel=1e-5)


def test_ddp_two_processes_predictions_match_one(runs: dict[str, dict]) -> None:
    single = np.asarray(runs["single"]["price"])

    np.testing.assert_allclose(runs["ddp"]["price"], single, rtol=1e-5)


def test_ddp_run_predictions_vary_between_houses(runs: dict[str, dict]) -> None:
    # Guards the comparison above against two equally constant outputs.
    assert np.std(runs["ddp"]["price"]) > 0
