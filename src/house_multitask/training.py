"""Training one configuration with the Lightning Trainer, on tensors held in memory."""

from __future__ import annotations

import logging
import math
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, EarlyStopping

from house_multitask.config import TrainConfig
from house_multitask.errors import ParamsError
from house_multitask.features.inputs import ModelInputs
from house_multitask.models.module import MultiTaskModule

logger = logging.getLogger(__name__)

MONITOR = "val/loss"
DEFAULT_TRAINER_OPTIONS = {"accelerator": "cpu", "devices": 1, "strategy": "auto"}


class InMemoryBatches:
    """Mini-batches sliced from tensors already in memory, reshuffled every epoch.

    A `DataLoader` collates each batch row by row; slicing whole tensors is several times faster
    for a table this small. The order depends only on `seed` and the epoch count.
    """

    def __init__(
        self, tensors: Sequence[torch.Tensor], batch_size: int, shuffle: bool, seed: int = 0
    ) -> None:
        self.tensors = tuple(tensors)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(seed)
        self.rows = self.tensors[0].shape[0]

    def __len__(self) -> int:
        return math.ceil(self.rows / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        if self.shuffle:
            order = torch.randperm(self.rows, generator=self.generator)
            tensors = tuple(tensor[order] for tensor in self.tensors)
        else:
            tensors = self.tensors
        for start in range(0, self.rows, self.batch_size):
            yield tuple(tensor[start : start + self.batch_size] for tensor in tensors)


class EpochOfBatches:
    """One item per epoch: the list of that epoch's mini-batches from `InMemoryBatches`.

    `MultiTaskModule.training_step` loops over the list itself, so Lightning runs one training
    step per epoch. The mini-batches, their order and the optimizer steps are those of a plain
    loop over `InMemoryBatches`, and so are the weights, bit for bit.
    """

    def __init__(self, batches: InMemoryBatches) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[list[tuple[torch.Tensor, ...]]]:
        yield list(self.batches)


class BestWeights(Callback):
    """Keep in memory a copy of the weights of the epoch with the lowest finite `monitor`.

    It plays the part of `ModelCheckpoint(monitor=..., save_top_k=1)` without writing a file at
    every improvement, which cost 3% to 6% of the training time in benchmarks/train_speed.py.
    `fit_model` writes `best.ckpt` once, when training ends. ModelCheckpoint would also skip
    saves here, because it keys them on `trainer.global_step`, which this module never advances.
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        score = float(value)
        if not math.isfinite(score) or (self.best_score is not None and score >= self.best_score):
            return
        self.best_score, self.best_epoch = score, trainer.current_epoch
        self.best_state = {
            key: tensor.detach().clone() for key, tensor in pl_module.state_dict().items()
        }

    def save(self, path: Path) -> None:
        """Write the best weights as a checkpoint that `torch.load(weights_only=True)` reads."""
        path.parent.mkdir(parents=True, exist_ok=True)
        checkpoint = {
            "state_dict": self.best_state,
            "epoch": self.best_epoch,
            "monitor": self.monitor,
            "best_score": self.best_score,
        }
        torch.save(checkpoint, path)


@dataclass
class FitResult:
    """A trained module with its best weights loaded, and how training went."""

    module: MultiTaskModule
    best_val_loss: float | None
    epochs: int
    best_checkpoint: Path | None


def configure_torch(threads: int = 1) -> None:
    """Limit intra-op threads: for matrices of a few thousand weights one thread is fastest."""
    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings(
        "ignore", message=".*is an invalid value for the `log_every_n_steps`.*"
    )
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch.accelerators.cuda").setLevel(logging.WARNING)


def build_module(
    config: TrainConfig, inputs: ModelInputs, cardinalities: list[int]
) -> MultiTaskModule:
    return MultiTaskModule(config.to_dict(), inputs.numeric.shape[1], cardinalities)


def fit_model(
    config: TrainConfig,
    train: ModelInputs,
    val: ModelInputs,
    cardinalities: list[int],
    *,
    checkpoint_dir: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    trainer_logger: pl.loggers.Logger | bool = False,
    trainer_options: Mapping[str, object] | None = None,
) -> FitResult:
    """Train one configuration with early stopping on the validation loss.

    The run is seeded by `config.seed` (weights, shuffling) and uses deterministic algorithms,
    so the same inputs and config give the same weights on one machine.

    Args:
        config: the validated training configuration.
        train: training tensors, shuffled each epoch.
        val: validation tensors, scored as one batch after each epoch.
        cardinalities: code counts of the categorical inputs (see `Preprocessor.cardinalities`).
        checkpoint_dir: folder where the best weights are written as `best.ckpt` when
            training ends (rank 0 only); none are written when None.
        callbacks: extra callbacks, for example Optuna's pruning callback.
        trainer_logger: a Lightning logger (such as DVCLive's), or False for none.
        trainer_options: `accelerator`, `devices` and `strategy` for `pl.Trainer` (see
            `TrainerParams.to_dict`); one CPU process when None. Under a multi-process
            strategy such as `ddp` every process sees every row in the same order, because
            Lightning only shards `DataLoader`s, so the averaged gradients equal one process's.
    """
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = build_module(config, train, cardinalities)
    train_batches = EpochOfBatches(
        InMemoryBatches(train.tensors(), config.batch_size, True, config.seed)
    )
    val_batches = InMemoryBatches(val.tensors(), len(val), False)

    best = BestWeights(MONITOR)
    early_stopping = EarlyStopping(
        monitor=MONITOR, mode="min", patience=config.patience, check_finite=True
    )
    with tempfile.TemporaryDirectory(prefix="house-multitask-") as scratch:
        trainer = _make_trainer(
            trainer_options,
            max_epochs=config.max_epochs,
            min_epochs=config.min_epochs,
            deterministic=True,
            logger=trainer_logger,
            callbacks=[early_stopping, best, *callbacks],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=scratch,
            log_every_n_steps=1,
        )
        trainer.fit(module, train_dataloaders=train_batches, val_dataloaders=val_batches)

    best_path = None
    if best.best_state is None:
        logger.warning(
            "training diverged: no finite %s in %d epoch(s)", MONITOR, trainer.current_epoch
        )
    else:
        module.load_state_dict(best.best_state)
        if checkpoint_dir is not None:
            best_path = Path(checkpoint_dir) / "best.ckpt"
            if is_global_zero():
                best.save(best_path)
    module.eval()
    return FitResult(module, best.best_score, trainer.current_epoch, best_path)


def is_global_zero() -> bool:
    """Return True in the process that writes outputs: rank 0, or the only process."""
    return pl.utilities.rank_zero_only.rank == 0


def _make_trainer(options: Mapping[str, object] | None, **kwargs: object) -> pl.Trainer:
    """`pl.Trainer` with the trainer options; ones Lightning rejects raise ParamsError."""
    options = {**DEFAULT_TRAINER_OPTIONS, **dict(options or {})}
    try:
        return pl.Trainer(**options, **kwargs)
    except (ValueError, MisconfigurationException) as error:
        settings = ", ".join(f"trainer.{key}={value!r}" for key, value in options.items())
        message = str(error).splitlines()[0]
        raise ParamsError(f"{settings}: Lightning rejects them: {message}") from None


@dataclass
class Predictions:
    """Network outputs for one split."""

    price_output: np.ndarray
    probabilities: np.ndarray

    @property
    def category(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)


@torch.inference_mode()
def predict(module: torch.nn.Module, inputs: ModelInputs) -> Predictions:
    """Run the network on every row; works on `MultiTaskModule` and on a bare `MultiTaskNet`."""
    module.eval()
    price_output, logits = module(inputs.numeric, inputs.codes)
    probabilities = torch.softmax(logits, dim=1)
    return Predictions(price_output.double().numpy(), probabilities.double().numpy())
