"""Time per training step of the project's Lightning path against a plain PyTorch loop.

Trains the study's final network (`TrainConfig()`: label-encoded inputs, layers 36 and 18,
batch 32), or with `--config train` the `train` section of params.yaml, for a fixed number of
epochs with early stopping effectively off, so that every way runs the same number of steps:

- project: `training.fit_model`, the Lightning path every stage uses (in-memory batches, one
  Lightning step per epoch that steps the optimizer once per mini-batch, epoch-level logging,
  no progress bar or model summary, early stopping on, best weights kept in memory).
- floor: a plain PyTorch loop over the same in-memory batches, with the same initial weights,
  batch order, optimizer and validation after every epoch. It does the same math, so its losses
  must equal the project path's bit for bit; the script checks this before timing anything.
- default: a default `Trainer` fed by `DataLoader(TensorDataset(...))`, with `self.log` per
  step, the way most Lightning code is written.

Lever rows then change one thing at a time: of the project path, or of the same module taking
one Lightning step per mini-batch (automatic optimization), as it did before. Run from the
repository root after `dvc repro encode_scale`:

    python benchmarks/train_speed.py            # 100 epochs, 3 repeats per way
    python benchmarks/train_speed.py --epochs 20 --repeats 1

Times are the minimum over repeats, because on a shared machine noise only ever adds time;
the target is judged on CPU time, which other processes inflate far less than wall time.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import lightning.pytorch as pl
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch.nn import functional
from torch.utils.data import DataLoader, TensorDataset

from house_multitask.config import TrainConfig
from house_multitask.experiment import EncodedData
from house_multitask.features.inputs import ModelInputs
from house_multitask.model_dir import build_network
from house_multitask.models.losses import aggregate_losses, price_loss
from house_multitask.models.module import MultiTaskModule
from house_multitask.models.network import MultiTaskNet
from house_multitask.training import (
    MONITOR,
    BestWeights,
    EpochOfBatches,
    InMemoryBatches,
    configure_torch,
    fit_model,
)

REPO = Path(__file__).resolve().parents[1]
FLOOR = "floor (plain loop, in-memory batches)"
PROJECT = "project (fit_model)"


class StepLosses(pl.Callback):
    """Record the training loss of every mini-batch, for the equality check against the floor.

    The project's module takes one optimizer step per mini-batch inside its epoch-long training
    step, with no Lightning hook in between, so this wraps the module's `batch_loss`.
    """

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        compute = pl_module.batch_loss

        def recorded(batch):
            loss = compute(batch)
            self.losses.append(loss.item())
            return loss

        pl_module.batch_loss = recorded


class PerBatchModule(MultiTaskModule):
    """The project's module with one Lightning step per mini-batch (automatic optimization).

    This is how the module worked before it took one step per epoch: Lightning's hooks, closure
    and loop run around every mini-batch.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.automatic_optimization = True

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self.batch_loss(batch)


class WrappedOptimizerModule(MultiTaskModule):
    """One step per epoch through Lightning's optimizer wrapper and `manual_backward`."""

    def training_step(self, batches, batch_idx: int) -> torch.Tensor:
        optimizer = self.optimizers()
        loss = torch.zeros(())
        for batch in batches:
            optimizer.zero_grad()
            loss = self.batch_loss(batch)
            self.manual_backward(loss)
            optimizer.step()
        return loss.detach()


class PerStepLoggingModule(PerBatchModule):
    """One step per mini-batch with the usual `self.log` of every loss at every step."""

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        losses = self._shared_step(batch)
        self.log_dict(
            {"train/loss": losses[0], "train/loss_price": losses[1], "train/loss_cat": losses[2]},
            prog_bar=True,
        )
        return losses[0]


class SilentModule(PerBatchModule):
    """One step per mini-batch without `self.log`, which a barebones Trainer rejects."""

    def on_train_epoch_end(self) -> None:
        self._epoch_sums, self._epoch_rows = None, 0

    def _log_losses(self, stage: str, losses: torch.Tensor) -> None:
        pass


def run_barebones(
    config: TrainConfig, train: ModelInputs, val: ModelInputs, cards: list[int]
) -> None:
    """Train with `Trainer(barebones=True)`: Lightning's loop with its optional features off.

    Nothing is logged, so there is no early stopping and no best checkpoint: this bounds from
    below what any Lightning path with automatic optimization can cost.
    """
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = SilentModule(config.to_dict(), train.numeric.shape[1], cards)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=config.max_epochs,
        deterministic=True,
        barebones=True,
        num_sanity_val_steps=0,
    )
    trainer.fit(
        module,
        train_dataloaders=InMemoryBatches(train.tensors(), config.batch_size, True, config.seed),
        val_dataloaders=InMemoryBatches(val.tensors(), len(val), False),
    )


def load_inputs(
    encoded_dir: Path, state: Path, config: TrainConfig
) -> tuple[ModelInputs, ModelInputs, list[int]]:
    data = EncodedData.load(encoded_dir, state)
    inputs = data.inputs(config)
    return inputs["train"], inputs["val"], data.preprocessor.cardinalities()


def no_early_stop(config: TrainConfig, epochs: int) -> TrainConfig:
    """Fix the epoch count: patience longer than the run means every epoch is trained."""
    return replace(config, max_epochs=epochs, min_epochs=epochs, patience=epochs + 1)


def run_project(
    config: TrainConfig, train: ModelInputs, val: ModelInputs, cards: list[int], record=False
) -> tuple[list[float], dict[str, torch.Tensor]]:
    recorder = StepLosses()
    fit = fit_model(config, train, val, cards, callbacks=[recorder] if record else [])
    return recorder.losses, fit.module.state_dict()


def _floor_losses(net: MultiTaskNet, config: TrainConfig, batch) -> torch.Tensor:
    numeric, codes, price_target, category = batch
    price_output, logits = net(numeric, codes)
    loss_price = price_loss(config.price_loss, price_output, price_target)
    loss_category = functional.cross_entropy(logits, category)
    return aggregate_losses(config.aggregation, loss_price, loss_category, config.price_weight)


def _input_penalty(net: MultiTaskNet, config: TrainConfig) -> torch.Tensor | float:
    """Return the L1 penalty on the first layer that `MultiTaskModule.training_step` adds."""
    if config.input_l1 == 0:
        return 0.0
    return config.input_l1 * net.shared[0].weight.abs().sum()


def run_floor(
    config: TrainConfig, train: ModelInputs, val: ModelInputs, cards: list[int], record=False
) -> tuple[list[float], dict[str, torch.Tensor]]:
    """Plain loop with the project's batches, init, optimizer and per-epoch validation.

    It keeps the weights of the epoch with the lowest validation loss in memory, as
    ModelCheckpoint does on disk, and returns them with the `net.` prefix of the module.
    """
    if config.aggregation == "uncertainty":
        raise SystemExit("error: the floor loop does not implement aggregation=uncertainty")
    pl.seed_everything(config.seed, workers=True, verbose=False)
    net = build_network(config, train.numeric.shape[1], cards)
    optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    optimizers |= {"rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}
    optimizer = optimizers[config.optimizer](
        net.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    batches = InMemoryBatches(train.tensors(), config.batch_size, True, config.seed)
    val_batch = val.tensors()
    losses: list[float] = []
    best_loss, best_state = float("inf"), None

    for _ in range(config.max_epochs):
        net.train()
        for batch in batches:
            optimizer.zero_grad()
            loss = _floor_losses(net, config, batch) + _input_penalty(net, config)
            loss.backward()
            optimizer.step()
            if record:
                losses.append(loss.item())

        net.eval()
        with torch.no_grad():
            val_loss = float(_floor_losses(net, config, val_batch))
        if val_loss < best_loss:
            best_loss, best_state = val_loss, copy.deepcopy(net.state_dict())

    return losses, {f"net.{key}": value for key, value in (best_state or {}).items()}


def run_default(
    config: TrainConfig, train: ModelInputs, val: ModelInputs, cards: list[int], record=False
) -> tuple[list[float], dict[str, torch.Tensor]]:
    """Default Trainer settings, DataLoaders over TensorDatasets and per-step logging."""
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = PerStepLoggingModule(config.to_dict(), train.numeric.shape[1], cards)
    generator = torch.Generator().manual_seed(config.seed)
    train_loader = DataLoader(
        TensorDataset(*train.tensors()), config.batch_size, shuffle=True, generator=generator
    )
    val_loader = DataLoader(TensorDataset(*val.tensors()), config.batch_size)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = pl.Trainer(
            max_epochs=config.max_epochs,
            callbacks=[EarlyStopping(monitor=MONITOR, patience=config.patience)],
            default_root_dir=scratch,
        )
        trainer.fit(module, train_loader, val_loader)
    return [], module.state_dict()


def run_lever(
    config: TrainConfig,
    train: ModelInputs,
    val: ModelInputs,
    cards: list[int],
    *,
    module_class: type[MultiTaskModule] = PerBatchModule,
    data_loader: bool = False,
    checkpoint: bool = True,
    progress: bool = False,
    deterministic: bool = True,
) -> None:
    """Train with the project's Trainer settings and the one change the keyword arguments make.

    The default module takes one Lightning step per mini-batch; `MultiTaskModule` (one step per
    epoch) gives the project path itself, in a Trainer built here.
    """
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = module_class(config.to_dict(), train.numeric.shape[1], cards)
    if data_loader:
        generator = torch.Generator().manual_seed(config.seed)
        train_batches = DataLoader(
            TensorDataset(*train.tensors()), config.batch_size, shuffle=True, generator=generator
        )
        val_batches = DataLoader(TensorDataset(*val.tensors()), len(val))
    else:
        train_batches = InMemoryBatches(train.tensors(), config.batch_size, True, config.seed)
        val_batches = InMemoryBatches(val.tensors(), len(val), False)
    epoch_steps = issubclass(module_class, MultiTaskModule) and not issubclass(
        module_class, PerBatchModule
    )
    if epoch_steps:
        train_batches = EpochOfBatches(train_batches)

    with tempfile.TemporaryDirectory() as scratch:
        callbacks: list[pl.Callback] = [
            EarlyStopping(monitor=MONITOR, mode="min", patience=config.patience)
        ]
        if checkpoint and epoch_steps:
            callbacks.append(BestWeights(MONITOR))
        elif checkpoint:
            callbacks.append(ModelCheckpoint(dirpath=scratch, monitor=MONITOR, save_top_k=1))
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=config.max_epochs,
            min_epochs=config.min_epochs,
            deterministic=deterministic,
            logger=False,
            callbacks=callbacks,
            enable_checkpointing=checkpoint and not epoch_steps,
            enable_progress_bar=progress,
            enable_model_summary=progress,
            num_sanity_val_steps=0,
            default_root_dir=scratch,
            log_every_n_steps=max(len(train_batches), 1),
        )
        trainer.fit(module, train_dataloaders=train_batches, val_dataloaders=val_batches)


def time_round_robin(
    ways: dict[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, float]]:
    """Fastest CPU time and fastest wall time of each way, in seconds.

    CPU time is this process's (`time.process_time`): with one torch thread it is the work the
    way costs, and other processes on a shared machine inflate it far less than wall time. The
    ways take turns within each repeat, so a burst of load hits all of them alike.
    """
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    wall: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, run in ways.items():
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            run()
            cpu[name].append(time.process_time() - cpu_start)
            wall[name].append(time.perf_counter() - wall_start)
    return {name: (min(cpu[name]), min(wall[name])) for name in ways}


def check_identical(config, train, val, cards, epochs: int) -> bool:
    """Compare every step's loss and the best weights of the project path and the floor."""
    short = no_early_stop(config, epochs)
    project_losses, project_state = run_project(short, train, val, cards, record=True)
    floor_losses, floor_state = run_floor(short, train, val, cards, record=True)
    same_losses = project_losses == floor_losses
    same_weights = project_state.keys() == floor_state.keys() and all(
        torch.equal(project_state[key], floor_state[key]) for key in project_state
    )
    print(
        f"identical losses over {len(project_losses)} steps ({epochs} epochs): {same_losses}; "
        f"identical best weights: {same_weights}"
    )
    if not same_losses:
        pairs = zip(project_losses, floor_losses, strict=False)
        first = next(i for i, (a, b) in enumerate(pairs) if a != b)
        print(f"  first difference at step {first}")
    return same_losses and same_weights


def print_thread_lever(config, train, val, cards, repeats: int) -> None:
    """Time the floor with one torch thread per core against one thread, on a tenth of the epochs.

    Several threads on matrices this small mostly wait for each other, which on a busy machine
    takes far longer than the training itself: hence the short run.
    """
    threads = os.cpu_count() or 1
    if threads == 1:
        return
    short = no_early_stop(config, max(config.max_epochs // 10, 1))

    def with_threads(count: int) -> Callable[[], object]:
        def run() -> None:
            torch.set_num_threads(count)
            try:
                run_floor(short, train, val, cards)
            finally:
                torch.set_num_threads(1)

        return run

    results = time_round_robin({"1": with_threads(1), "n": with_threads(threads)}, repeats)
    ratio = results["n"][1] / results["1"][1]
    print(
        f"lever: floor with {threads} torch threads instead of 1, {short.max_epochs} epochs: "
        f"{ratio:.2f}x the wall time"
    )


def describe_machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{model}, {os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.2f}; "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"lightning {pl.__version__}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs per run (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per way (default 3)")
    parser.add_argument(
        "--check-epochs", type=int, default=10, help="epochs of the loss equality check"
    )
    parser.add_argument("--no-levers", action="store_true", help="skip the lever rows")
    parser.add_argument(
        "--config",
        choices=("study", "train"),
        default="study",
        help="the study's final network (default) or the train section of params.yaml",
    )
    parser.add_argument("--encoded-dir", type=Path, default=REPO / "data/encoded")
    parser.add_argument(
        "--state", type=Path, default=REPO / "data/encoded_state/preprocessor.json"
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    configure_torch(1)
    config = TrainConfig()
    if args.config == "train":
        params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
        config = TrainConfig.from_dict(params["train"], "train")
    if not args.encoded_dir.exists():
        print(
            f"error: {args.encoded_dir} not found; run `dvc repro encode_scale`", file=sys.stderr
        )
        return 2
    train, val, cards = load_inputs(args.encoded_dir, args.state, config)
    config = no_early_stop(config, args.epochs)
    steps = args.epochs * len(InMemoryBatches(train.tensors(), config.batch_size, False))

    print(f"machine: {describe_machine()}")
    print(
        f"network: {args.config}, {len(train)} training rows, batch "
        f"{config.batch_size}, {args.epochs} epochs = {steps} steps, seed {config.seed}, "
        f"torch threads {torch.get_num_threads()}, best of {args.repeats}"
    )
    identical = check_identical(config, train, val, cards, args.check_epochs)
    run_floor(no_early_stop(config, 2), train, val, cards)  # warm-up: first-call costs

    ways: dict[str, Callable[[], object]] = {
        FLOOR: lambda: run_floor(config, train, val, cards),
        PROJECT: lambda: run_project(config, train, val, cards),
        "default (Trainer + DataLoader)": lambda: run_default(config, train, val, cards),
    }
    if not args.no_levers:
        ways |= {
            "lever: project, own Trainer": lambda: run_lever(
                config, train, val, cards, module_class=MultiTaskModule
            ),
            "lever: project + Lightning optimizer wrapper": lambda: run_lever(
                config, train, val, cards, module_class=WrappedOptimizerModule
            ),
            "lever: project - best weights (no checkpoint)": lambda: run_lever(
                config, train, val, cards, module_class=MultiTaskModule, checkpoint=False
            ),
            "lever: one Lightning step per mini-batch": lambda: run_lever(
                config, train, val, cards
            ),
            "lever: per mini-batch + DataLoader": lambda: run_lever(
                config, train, val, cards, data_loader=True
            ),
            "lever: per mini-batch + self.log every step": lambda: run_lever(
                config, train, val, cards, module_class=PerStepLoggingModule
            ),
            "lever: per mini-batch + progress bar, summary": lambda: run_lever(
                config, train, val, cards, progress=True
            ),
            "lever: per mini-batch, barebones Trainer": lambda: run_barebones(
                config, train, val, cards
            ),
            "lever: project - deterministic": lambda: run_lever(
                config, train, val, cards, module_class=MultiTaskModule, deterministic=False
            ),
        }

    results = time_round_robin(ways, args.repeats)
    floor_cpu, floor_wall = results[FLOOR]
    print(f"\n{'way':48} {'CPU s':>6} {'ms/step':>7} {'x floor':>7} {'wall s':>6} {'x floor':>7}")
    for name, (cpu, wall) in results.items():
        print(
            f"{name:48} {cpu:6.2f} {1000 * cpu / steps:7.3f} {cpu / floor_cpu:7.2f} "
            f"{wall:6.2f} {wall / floor_wall:7.2f}"
        )

    if not args.no_levers:
        print_thread_lever(config, train, val, cards, args.repeats)

    ratio = results[PROJECT][0] / floor_cpu
    verdict = "holds" if ratio <= 1.3 and identical else "misses"
    print(
        f"\ntarget project <= 1.3x floor (CPU time) with identical losses: {verdict} "
        f"({ratio:.2f}x; wall time {results[PROJECT][1] / floor_wall:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
