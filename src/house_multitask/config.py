"""Typed, validated configuration objects built from plain dictionaries.

The stages read `params.yaml` and pass its sections here; the library itself never reads it.
Every check raises `ParamsError` with the dotted key, the rejected value and the allowed values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from house_multitask.errors import ParamsError

ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
PRICE_LOSSES = ("mse", "l1", "huber")
AGGREGATIONS = ("sum", "mean", "geometric", "weighted_geometric", "uncertainty")
PRICE_TARGETS = ("raw", "log_standardized")
CATEGORICAL_INPUTS = ("label", "onehot", "embedding")


def _check_choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ParamsError(f"{key}={value!r} is not allowed; use one of: {', '.join(allowed)}")


def _check_number(
    key: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    integer: bool = False,
) -> None:
    """Check that `value` is a finite number (an int when `integer`) inside the given bounds."""
    kind = "an integer" if integer else "a number"
    valid_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not valid_type or not math.isfinite(value):
        raise ParamsError(f"{key}={value!r} is invalid; it must be {kind}")

    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and value > high
    if too_low or too_high:
        low_text = "" if low is None else f"{'>=' if low_inclusive else '>'} {low}"
        high_text = "" if high is None else f"<= {high}"
        bounds = " and ".join(text for text in (low_text, high_text) if text)
        raise ParamsError(f"{key}={value!r} is out of range; it must be {kind} {bounds}")


def _reject_unknown_keys(section: str, values: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParamsError(
            f"{section} has unknown key(s) {', '.join(unknown)}; known keys: "
            f"{', '.join(sorted(known))}"
        )


def _from_mapping(cls: type, section: str, values: Mapping[str, Any] | None) -> Any:
    """Build dataclass `cls` from `values`, rejecting keys it does not define."""
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls)}
    _reject_unknown_keys(section, values, known)
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    instance = cls(**values)
    instance.validate(section)
    return instance


@dataclass(frozen=True)
class CleanParams:
    """Parameters of the `clean` stage."""

    max_missing_share: float = 0.10

    def validate(self, section: str = "clean") -> None:
        _check_number(f"{section}.max_missing_share", self.max_missing_share, low=0.0, high=1.0)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, section: str = "clean") -> CleanParams:
        return _from_mapping(cls, section, values)


@dataclass(frozen=True)
class SplitParams:
    """Shares and seed of the stratified train/validation/test split."""

    seed: int = 42
    train_share: float = 0.70
    val_share: float = 0.15
    test_share: float = 0.15

    def validate(self, section: str = "split") -> None:
        _check_number(f"{section}.seed", self.seed, low=0, integer=True)
        for name in ("train_share", "val_share", "test_share"):
            _check_number(
                f"{section}.{name}", getattr(self, name), low=0.0, high=1.0, low_inclusive=False
            )
        total = self.train_share + self.val_share + self.test_share
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ParamsError(
                f"{section}.train_share + val_share + test_share = {total:g}; the three shares "
                "must sum to 1 (for example 0.70, 0.15, 0.15)"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, section: str = "split") -> SplitParams:
        return _from_mapping(cls, section, values)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run of the multi-task network.

    Defaults are the study's final configuration, apart from `lr`, which the study tuned.
    """

    # Inputs and target.
    categorical_input: str = "label"
    ordinal_quality: bool = False
    use_derived_features: bool = False
    price_target: str = "raw"

    # Architecture.
    hidden_sizes: tuple[int, ...] = (36, 18)
    head_size: int = 10
    shared_activation: str = "leaky_relu"
    head_activation: str = "leaky_relu"
    embedding_dim: int = 4
    dropout: float = 0.0

    # Losses.
    price_loss: str = "l1"
    aggregation: str = "weighted_geometric"
    price_weight: float = 3.0

    # Optimisation.
    optimizer: str = "adam"
    lr: float = 0.001
    weight_decay: float = 0.0
    batch_size: int = 32
    max_epochs: int = 100
    min_epochs: int = 1
    patience: int = 10
    seed: int = 0

    def validate(self, section: str = "train") -> None:
        _check_choice(f"{section}.categorical_input", self.categorical_input, CATEGORICAL_INPUTS)
        _check_choice(f"{section}.price_target", self.price_target, PRICE_TARGETS)
        _check_choice(f"{section}.shared_activation", self.shared_activation, ACTIVATIONS)
        _check_choice(f"{section}.head_activation", self.head_activation, ACTIVATIONS)
        _check_choice(f"{section}.price_loss", self.price_loss, PRICE_LOSSES)
        _check_choice(f"{section}.aggregation", self.aggregation, AGGREGATIONS)
        _check_choice(f"{section}.optimizer", self.optimizer, OPTIMIZERS)
        for name in ("ordinal_quality", "use_derived_features"):
            if not isinstance(getattr(self, name), bool):
                raise ParamsError(
                    f"{section}.{name}={getattr(self, name)!r} must be true or false"
                )

        if not self.hidden_sizes:
            raise ParamsError(f"{section}.hidden_sizes is empty; give at least one layer width")
        for index, width in enumerate(self.hidden_sizes):
            _check_number(f"{section}.hidden_sizes[{index}]", width, low=1, integer=True)
        _check_number(f"{section}.head_size", self.head_size, low=1, integer=True)
        _check_number(f"{section}.embedding_dim", self.embedding_dim, low=1, integer=True)
        _check_number(f"{section}.dropout", self.dropout, low=0.0, high=0.9)

        _check_number(f"{section}.price_weight", self.price_weight, low=0.0, low_inclusive=False)
        _check_number(f"{section}.lr", self.lr, low=0.0, high=10.0, low_inclusive=False)
        _check_number(f"{section}.weight_decay", self.weight_decay, low=0.0)
        _check_number(f"{section}.batch_size", self.batch_size, low=1, integer=True)
        _check_number(f"{section}.max_epochs", self.max_epochs, low=1, integer=True)
        _check_number(
            f"{section}.min_epochs", self.min_epochs, low=1, high=self.max_epochs, integer=True
        )
        _check_number(f"{section}.patience", self.patience, low=1, integer=True)
        _check_number(f"{section}.seed", self.seed, low=0, integer=True)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, section: str = "train") -> TrainConfig:
        return _from_mapping(cls, section, values)

    def override(self, changes: Mapping[str, Any] | None, section: str) -> TrainConfig:
        """Return a validated copy with `changes` applied; `section` names them in errors."""
        merged = {**self.to_dict(), **dict(changes or {})}
        return TrainConfig.from_dict(merged, section)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["hidden_sizes"] = list(self.hidden_sizes)
        return values


@dataclass(frozen=True)
class TuneParams:
    """Search space and budget of the Optuna learning-rate study."""

    n_trials: int = 20
    lr_low: float = 1e-4
    lr_high: float = 1e-1
    seed: int = 0
    storage: str = "sqlite:///data/tune/optuna.db"
    study_name: str = "lr"
    pruner_startup_trials: int = 5
    pruner_warmup_epochs: int = 10

    def validate(self, section: str = "tune") -> None:
        _check_number(f"{section}.n_trials", self.n_trials, low=1, integer=True)
        _check_number(f"{section}.lr_low", self.lr_low, low=0.0, low_inclusive=False)
        _check_number(f"{section}.lr_high", self.lr_high, low=0.0, high=10.0, low_inclusive=False)
        if self.lr_low >= self.lr_high:
            raise ParamsError(
                f"{section}.lr_low={self.lr_low!r} must be below "
                f"{section}.lr_high={self.lr_high!r}"
            )
        _check_number(f"{section}.seed", self.seed, low=0, integer=True)
        _check_number(
            f"{section}.pruner_startup_trials", self.pruner_startup_trials, low=0, integer=True
        )
        _check_number(
            f"{section}.pruner_warmup_epochs", self.pruner_warmup_epochs, low=0, integer=True
        )
        if not isinstance(self.storage, str) or "://" not in self.storage:
            raise ParamsError(
                f"{section}.storage={self.storage!r} is not a database URL; use "
                "sqlite:///path/to/file.db or postgresql://user@host/dbname"
            )
        if not isinstance(self.study_name, str) or not self.study_name:
            raise ParamsError(f"{section}.study_name must be a non-empty string")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, section: str = "tune") -> TuneParams:
        return _from_mapping(cls, section, values)


def resolve_lr(value: Any, tuned_lr: float | None, key: str = "lr") -> float:
    """Return the learning rate that `lr` in params.yaml selects.

    Args:
        value: the string ``"tuned"`` or a positive number.
        tuned_lr: the tune stage's best learning rate, or None when it is not available.
        key: the parameter name used in error messages.
    """
    if value == "tuned":
        if tuned_lr is None:
            raise ParamsError(
                f"{key}=tuned but the tune stage wrote no best learning rate; run "
                "`dvc repro tune` or set a number, for example -S lr=0.0374"
            )
        return float(tuned_lr)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ParamsError(
                f"{key}={value!r} is invalid; use 'tuned' or a positive number"
            ) from None
    _check_number(key, value, low=0.0, high=10.0, low_inclusive=False)
    return float(value)
