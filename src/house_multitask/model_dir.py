"""The self-contained model directory the final stage writes: weights, config and encoder state.

Files: `model.json` (format and package version, training config, input layout, SHA-256 of the
other files), `preprocessor.json` (the fitted encoder state) and `weights_<i>.pt` (one
`state_dict` per ensemble member, loadable with `torch.load(weights_only=True)`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from house_multitask import __version__
from house_multitask.config import TrainConfig
from house_multitask.data.io import write_json
from house_multitask.features.inputs import numeric_input_columns
from house_multitask.features.preprocess import Preprocessor

logger = logging.getLogger(__name__)

MODEL_FORMAT_VERSION = 1
MODEL_FILE = "model.json"
PREPROCESSOR_FILE = "preprocessor.json"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model_dir(
    directory: str | Path,
    config: TrainConfig,
    preprocessor: Preprocessor,
    networks: Sequence[torch.nn.Module],
) -> Path:
    """Write everything prediction needs into `directory`; existing files there are replaced.

    Args:
        networks: the trained `MultiTaskNet`s; prediction averages their outputs.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("weights_*.pt"):
        stale.unlink()

    weight_files = []
    for index, network in enumerate(networks):
        path = directory / f"weights_{index}.pt"
        torch.save(network.state_dict(), path)
        weight_files.append(path.name)
    write_json(preprocessor.to_dict(), directory / PREPROCESSOR_FILE)

    files = [*weight_files, PREPROCESSOR_FILE]
    manifest = {
        "format_version": MODEL_FORMAT_VERSION,
        "package_version": __version__,
        "config": config.to_dict(),
        "numeric_inputs": numeric_input_columns(preprocessor, config),
        "cardinalities": preprocessor.cardinalities(),
        "predictors": preprocessor.predictors,
        "weights": weight_files,
        "sha256": {name: sha256_of(directory / name) for name in files},
    }
    write_json(manifest, directory / MODEL_FILE)
    logger.info("model saved dir=%s members=%d", directory, len(networks))
    return directory
