"""Per-epoch training curves written with DVCLive's Lightning logger.

DVCLive is imported only when a logger is built, so the library trains without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import lightning.pytorch as pl

# The losses the module logs once per epoch, as DVCLive names the TSV files under plots/metrics.
CURVE_NAMES = tuple(
    f"{stage}/{key}"
    for stage in ("train", "val")
    for key in ("loss", "loss_price", "loss_category")
)


def epoch_logger(directory: str | Path) -> pl.loggers.Logger:
    """Build a DVCLive Lightning logger that writes one row per epoch under `directory`.

    The `step` column of each TSV file is the 1-based epoch, not Lightning's global step, so
    runs with different batch counts share an x axis. The logger writes no dvc.yaml, report or
    DVC experiment: the pipeline's dvc.yaml declares the plots.
    """
    from dvclive.fabric import DVCLiveLogger as FabricDVCLiveLogger
    from dvclive.lightning import DVCLiveLogger

    class EpochDVCLiveLogger(DVCLiveLogger):
        def log_metrics(
            self,
            metrics: Mapping[str, float],
            step: int | None = None,
            sync: bool | None = False,
        ) -> None:
            metrics = dict(metrics)
            epoch = metrics.pop("epoch", None)
            # DVCLive treats step 0 as "no step given", so epochs count from 1.
            epoch_step = int(epoch) + 1 if epoch is not None else step
            # Each call appends one row to the TSV files. DVCLive's Lightning logger would also
            # sync, which re-reads every TSV for a Studio payload even without Studio: about
            # 0.1 s per call under cProfile here, more than an epoch. Live.end() syncs once.
            FabricDVCLiveLogger.log_metrics(self, metrics, epoch_step, sync=False)

    return EpochDVCLiveLogger(
        dir=str(directory), dvcyaml=None, save_dvc_exp=False, report=None, log_model=False
    )
