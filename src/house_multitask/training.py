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
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

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
        checkpoint_dir: where ModelCheckpoint keeps the best weights as `best.ckpt`; a
            temporary folder, removed afterwards, when None.
        callbacks: extra callbacks, for example Optuna's pruning callback.
        trainer_logger: a Lightning logger (such as DVCLive's), or False for none.
        trainer_options: `accelerator`, `devices` and `strategy` for `pl.Trainer` (see
            `TrainerParams.to_dict`); one CPU process when None. Under a multi-process
            strategy such as `ddp` every process sees every row in the same order, because
            Lightning only shards `DataLoader`s, so the averaged gradients equal one process's.
    """
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = build_module(config, train, cardinalities)
    train_batches = InMemoryBatches(train.tensors(), config.batch_size, True, config.seed)
    val_batches = InMemoryBatches(val.tensors(), len(val), False)

    with tempfile.TemporaryDirectory(prefix="house-multitask-") as scratch:
        directory = Path(checkpoint_dir) if checkpoint_dir is not None else Path(scratch)
        checkpoint = ModelCheckpoint(
            dirpath=directory,
            filename="best",
            monitor=MONITOR,
            mode="min",
            save_top_k=1,
            enable_version_counter=False,
        )
        early_stopping = EarlyStopping(
            monitor=MONITOR, mode="min", patience=config.patience, check_finite=True
        )
        trainer = _make_trainer(
            trainer_options,
            max_epochs=config.max_epochs,
            min_epochs=config.min_epochs,
            deterministic=True,
            logger=trainer_logger,
            callbacks=[early_stopping, checkpoint, *callbacks],
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=scratch,
            log_every_n_steps=len(train_batches),
        )
        trainer.fit(module, train_dataloaders=train_batches, val_dataloaders=val_batches)
        best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
        if best_path is not None:
            state = torch.load(best_path, map_location="cpu", weights_only=True)
            module.load_state_dict(state["state_dict"])
        # Every process reads rank 0's checkpoint folder: keep it until all have loaded.
        trainer.strategy.barrier("fit_model")
        if checkpoint_dir is None:
            best_path = None

    best = checkpoint.best_model_score
    best_val_loss = float(best) if best is not None and torch.isfinite(best) else None
    if best_val_loss is None:
        logger.warning(
            "training diverged: no finite %s in %d epoch(s)", MONITOR, trainer.current_epoch
        )
    module.eval()
    return FitResult(module, best_val_loss, trainer.current_epoch, best_path)


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
