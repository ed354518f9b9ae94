"""The self-contained model directory the final stage writes: weights, config and encoder state.

Files: `model.json` (format and package version, training config, input layout, SHA-256 of the
other files), `preprocessor.json` (the fitted encoder state) and `weights_<i>.pt` (one
`state_dict` per ensemble member, loadable with `torch.load(weights_only=True)`).
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from house_multitask import __version__
from house_multitask.config import TrainConfig
from house_multitask.data.io import read_json, write_json
from house_multitask.errors import DataError, HouseMultitaskError, ModelDirError
from house_multitask.features.inputs import numeric_input_columns
from house_multitask.features.preprocess import Preprocessor
from house_multitask.models.network import MultiTaskNet

logger = logging.getLogger(__name__)

MODEL_FORMAT_VERSION = 1
MODEL_FILE = "model.json"
PREPROCESSOR_FILE = "preprocessor.json"
MANIFEST_KEYS = (
    "format_version",
    "package_version",
    "config",
    "numeric_inputs",
    "cardinalities",
    "predictors",
    "weights",
    "sha256",
)
_RETRAIN_HINT = "copy the whole folder again or rerun `dvc repro final`"


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


@dataclass
class LoadedModelDir:
    """A verified model directory, ready for prediction.

    Attributes:
        directory: the folder it was read from.
        manifest: the parsed `model.json`.
        config: the training configuration, which fixes the architecture and price target.
        preprocessor: the encoder state fitted on the training rows.
        networks: the ensemble members in evaluation mode, in `weights` order.
    """

    directory: Path
    manifest: dict[str, Any]
    config: TrainConfig
    preprocessor: Preprocessor
    networks: list[MultiTaskNet]


def load_model_dir(directory: str | Path) -> LoadedModelDir:
    """Read and verify a directory written by `save_model_dir`, without unpickling anything.

    The checks run in this order: the folder and `model.json` exist, the format version and the
    package's major version match this installation, every listed file exists and has the
    SHA-256 recorded in `model.json`, and the weights fit the recorded architecture.

    Raises:
        ModelDirError: the message names the file and whether it is missing, corrupted or
            incompatible.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelDirError(
            f"{directory}: model directory not found; pass the folder the final stage writes "
            "(models/final) or run `dvc repro final`"
        )

    manifest = _read_manifest(directory / MODEL_FILE)
    _check_compatible(manifest, directory / MODEL_FILE)
    _verify_files(manifest, directory)

    config = _read_config(manifest, directory / MODEL_FILE)
    preprocessor = _read_preprocessor(directory / PREPROCESSOR_FILE)
    _check_layout(manifest, config, preprocessor, directory / MODEL_FILE)
    networks = [_load_network(directory / name, manifest, config) for name in manifest["weights"]]
    logger.info("model loaded dir=%s members=%d", directory, len(networks))
    return LoadedModelDir(directory, manifest, config, preprocessor, networks)


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelDirError(
            f"{path}: file missing, so the model directory is incomplete; {_RETRAIN_HINT}"
        )
    try:
        manifest = read_json(path)
    except DataError:
        raise ModelDirError(f"{path}: corrupted: not valid JSON; {_RETRAIN_HINT}") from None
    if not isinstance(manifest, dict):
        raise ModelDirError(f"{path}: corrupted: expected a JSON object; {_RETRAIN_HINT}")
    return manifest


def _check_compatible(manifest: dict[str, Any], path: Path) -> None:
    """Reject a directory from another format version or another major package version."""
    version = manifest.get("format_version")
    if version != MODEL_FORMAT_VERSION:
        raise ModelDirError(
            f"{path}: incompatible format_version {version!r}; house-multitask {__version__} "
            f"reads format_version {MODEL_FORMAT_VERSION}, so retrain with this version "
            "(`dvc repro final`) or install the version that wrote the model"
        )

    written_by = manifest.get("package_version")
    if _major_version(written_by) != _major_version(__version__):
        raise ModelDirError(
            f"{path}: incompatible package_version {written_by!r}: written by another major "
            f"version than the installed house-multitask {__version__}; retrain with this "
            "version (`dvc repro final`) or install the version that wrote the model"
        )

    absent = [key for key in MANIFEST_KEYS if key not in manifest]
    if absent:
        raise ModelDirError(
            f"{path}: corrupted: missing key(s) {', '.join(absent)}; {_RETRAIN_HINT}"
        )


def _major_version(version: Any) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


def _verify_files(manifest: dict[str, Any], directory: Path) -> None:
    """Check that every file the manifest lists is present and has its recorded SHA-256."""
    hashes = manifest["sha256"]
    weights = manifest["weights"]
    listed_ok = isinstance(hashes, dict) and isinstance(weights, list) and weights
    if not listed_ok or any(name not in hashes for name in [*weights, PREPROCESSOR_FILE]):
        raise ModelDirError(
            f"{directory / MODEL_FILE}: corrupted: the weights and {PREPROCESSOR_FILE} must be "
            f"listed with their SHA-256; {_RETRAIN_HINT}"
        )

    for name, expected in hashes.items():
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise ModelDirError(
                f"{directory / MODEL_FILE}: corrupted: {name!r} is not a file name inside the "
                f"model directory; {_RETRAIN_HINT}"
            )
        path = directory / name
        if not path.is_file():
            raise ModelDirError(
                f"{path}: file missing, so the model directory is incomplete; {_RETRAIN_HINT}"
            )
        if sha256_of(path) != expected:
            raise ModelDirError(
                f"{path}: corrupted: its SHA-256 differs from the one in {MODEL_FILE}; "
                f"{_RETRAIN_HINT}"
            )


def _read_config(manifest: dict[str, Any], path: Path) -> TrainConfig:
    try:
        return TrainConfig.from_dict(manifest["config"], f"{path} config")
    except (HouseMultitaskError, TypeError) as error:
        raise ModelDirError(f"{path}: invalid training config: {error}") from None


def _read_preprocessor(path: Path) -> Preprocessor:
    try:
        return Preprocessor.from_dict(read_json(path), str(path))
    except DataError:
        raise ModelDirError(f"{path}: corrupted: not valid JSON; {_RETRAIN_HINT}") from None


def _check_layout(
    manifest: dict[str, Any], config: TrainConfig, preprocessor: Preprocessor, path: Path
) -> None:
    """Check that the input layout in model.json is the one the encoder state produces."""
    expected = {
        "predictors": preprocessor.predictors,
        "numeric_inputs": numeric_input_columns(preprocessor, config),
        "cardinalities": preprocessor.cardinalities(),
    }
    for key, value in expected.items():
        if manifest[key] != value:
            raise ModelDirError(
                f"{path}: corrupted: {key} differs from what {PREPROCESSOR_FILE} gives; "
                f"{_RETRAIN_HINT}"
            )


def build_network(
    config: TrainConfig, n_numeric: int, cardinalities: Sequence[int]
) -> MultiTaskNet:
    """Build the untrained `MultiTaskNet` that `config` describes (Xavier-initialised).

    NOTE: MultiTaskModule builds its network with the same arguments. When the two drift, loading
    a model directory fails, and the round trip in tests/test_predict_kaggle.py catches it.
    """
    return MultiTaskNet(
        n_numeric=n_numeric,
        cardinalities=cardinalities,
        categorical_input=config.categorical_input,
        hidden_sizes=config.hidden_sizes,
        head_size=config.head_size,
        shared_activation=config.shared_activation,
        head_activation=config.head_activation,
        embedding_dim=config.embedding_dim,
        dropout=config.dropout,
        price_skip=config.price_skip,
    )


def _load_network(path: Path, manifest: dict[str, Any], config: TrainConfig) -> MultiTaskNet:
    """Build the recorded architecture and load one member's weights into it."""
    network = build_network(config, len(manifest["numeric_inputs"]), manifest["cardinalities"])
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelDirError(
            f"{path}: corrupted: torch.load failed ({reason}); {_RETRAIN_HINT}"
        ) from None
    try:
        network.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError):
        raise ModelDirError(
            f"{path}: the weights do not fit the architecture in {MODEL_FILE}; {_RETRAIN_HINT}"
        ) from None
    network.eval()
    return network
