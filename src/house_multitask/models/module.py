"""LightningModule that trains `MultiTaskNet` on both tasks at once."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional

from house_multitask.config import TrainConfig
from house_multitask.models.losses import aggregate_losses, price_loss
from house_multitask.models.network import MultiTaskNet

# Names under which the module logs, once per epoch; callbacks monitor these.
LOSS_KEYS = ("loss", "loss_price", "loss_category")


class MultiTaskModule(pl.LightningModule):
    """Price regression and HouseCategory classification with one shared network.

    Mini-batches are tuples (numeric, codes, price_target, category). One Lightning training
    step is one epoch: it receives the epoch's mini-batches (see `training.EpochOfBatches`) and
    takes one optimizer step per mini-batch itself (manual optimization). Lightning's hooks,
    closure and loop bookkeeping then run once per epoch rather than once per mini-batch, which
    for a network this small costs more than the mini-batch's math. Early stopping,
    checkpointing and logging stay per epoch. Training losses are summed during the
    epoch and logged once at its end.
    """

    def __init__(self, config: dict[str, Any], n_numeric: int, cardinalities: list[int]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.config = TrainConfig.from_dict(config)
        self.net = MultiTaskNet(
            n_numeric=n_numeric,
            cardinalities=cardinalities,
            categorical_input=self.config.categorical_input,
            hidden_sizes=self.config.hidden_sizes,
            head_size=self.config.head_size,
            shared_activation=self.config.shared_activation,
            head_activation=self.config.head_activation,
            embedding_dim=self.config.embedding_dim,
            dropout=self.config.dropout,
            price_skip=self.config.price_skip,
        )
        if self.config.aggregation == "uncertainty":
            self.log_variances = nn.Parameter(torch.zeros(2))
        else:
            self.log_variances = None
        self._epoch_sums: torch.Tensor | None = None
        self._epoch_rows = 0

    def forward(
        self, numeric: torch.Tensor, codes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(numeric, codes)

    def _shared_step(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Return the stacked losses (total, price, category) of one batch."""
        numeric, codes, price_target, category = batch
        price_output, logits = self(numeric, codes)
        loss_price = price_loss(self.config.price_loss, price_output, price_target)
        loss_category = functional.cross_entropy(logits, category)
        total = aggregate_losses(
            self.config.aggregation,
            loss_price,
            loss_category,
            self.config.price_weight,
            self.log_variances,
        )
        return torch.stack((total, loss_price, loss_category))

    def training_step(
        self, batches: list[tuple[torch.Tensor, ...]], batch_idx: int
    ) -> torch.Tensor:
        """Take one optimizer step per mini-batch of the epoch and return the last batch's loss.

        It steps the bare torch optimizer and calls `backward` directly, because Lightning's
        optimizer wrapper and `manual_backward` run three hooks per mini-batch, which cost about
        a tenth of the training time in benchmarks/train_speed.py. So callbacks see epochs only,
        and `trainer.global_step` stays 0. Every callback the stages use works per epoch.
        """
        optimizer = self.optimizers(use_pl_optimizer=False)
        loss = torch.zeros(())
        for batch in batches:
            optimizer.zero_grad()
            loss = self.batch_loss(batch)
            loss.backward()
            optimizer.step()
        return loss.detach()

    def batch_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Return the training loss of one mini-batch and add its losses to the epoch's sums."""
        losses = self._shared_step(batch)
        rows = batch[0].shape[0]
        weighted = losses.detach() * rows
        self._epoch_sums = weighted if self._epoch_sums is None else self._epoch_sums + weighted
        self._epoch_rows += rows
        return losses[0] + self._input_penalty()

    def _input_penalty(self) -> torch.Tensor | float:
        """Return `input_l1` times the L1 norm of the first layer's and price skip's weights.

        The penalty drives the weights of uninformative inputs to zero, so the network leans on
        the few columns that decide a target. It is left out of the logged losses, so `val/loss`
        stays comparable across `input_l1` values.
        """
        if self.config.input_l1 == 0:
            return 0.0
        weights = self.net.shared[0].weight.abs().sum()
        if self.net.price_skip is not None:
            weights = weights + self.net.price_skip.weight.abs().sum()
        return self.config.input_l1 * weights

    def on_train_epoch_end(self) -> None:
        schedule = self.lr_schedulers()
        if schedule is not None:
            schedule.step()
        if self._epoch_sums is None:
            return
        means = self._epoch_sums / self._epoch_rows
        self._log_losses("train", means)
        self._epoch_sums = None
        self._epoch_rows = 0

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        # The validation split arrives as one batch, so these are whole-split losses.
        self._log_losses("val", self._shared_step(batch))

    def _log_losses(self, stage: str, losses: torch.Tensor) -> None:
        values = {f"{stage}/{key}": value for key, value in zip(LOSS_KEYS, losses, strict=True)}
        self.log_dict(values, on_step=False, on_epoch=True, batch_size=1)

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        """Return the optimizer, with a cosine decay of its learning rate when selected.

        The cosine schedule falls from `lr` to zero over `max_epochs`. `on_train_epoch_end`
        steps it once per epoch, because with manual optimization Lightning does not step
        schedulers.
        """
        optimizers = {
            "adam": torch.optim.Adam,
            "adamw": torch.optim.AdamW,
            "rmsprop": torch.optim.RMSprop,
            "sgd": torch.optim.SGD,
        }
        optimizer = optimizers[self.config.optimizer](
            self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        if self.config.lr_schedule == "constant":
            return optimizer
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.config.max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": schedule}
