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
LR_SCHEDULES = ("constant", "cosine")
PRICE_LOSSES = ("mse", "l1", "huber")
AGGREGATIONS = ("sum", "mean", "geometric", "weighted_geometric", "uncertainty")
PRICE_TARGETS = ("raw", "log_standardized")
CATEGORICAL_INPUTS = ("label", "onehot", "embedding")
NUMERIC_ENCODINGS = ("minmax", "piecewise_linear", "piecewise_linear_tree")


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


def _as_dict(section: str, values: Any) -> dict[str, Any]:
    """Copy a params section into a dict; None is an empty section."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ParamsError(
            f"{section} must be a mapping of keys to values, not {values!r}; for example "
            "{shared_activation: relu}"
        )
    return dict(values)


def _from_mapping(cls: type, section: str, values: Mapping[str, Any] | None) -> Any:
    """Build dataclass `cls` from `values`, rejecting keys it does not define."""
    values = _as_dict(section, values)
    known = {f.name for f in dataclasses.fields(cls)}
    _reject_unknown_keys(section, values, known)
    float_fields = {f.name for f in dataclasses.fields(cls) if f.type == "float"}
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
        elif name in float_fields and isinstance(value, str):
            values[name] = _parse_float(value)
    instance = cls(**values)
    instance.validate(section)
    return instance


def _parse_float(text: str) -> float | str:
    """Read exponent notation such as '1e-3', which YAML 1.1 (PyYAML) loads as a string.

    Text that is not a number is returned unchanged, so validation names it in its error.
    """
    try:
        return float(text)
    except ValueError:
        return text


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
    numeric_encoding: str = "minmax"

    # Architecture.
    hidden_sizes: tuple[int, ...] = (36, 18)
    head_size: int = 10
    shared_activation: str = "leaky_relu"
    head_activation: str = "leaky_relu"
    embedding_dim: int = 4
    dropout: float = 0.0
    price_skip: bool = False

    # Losses.
    price_loss: str = "l1"
    aggregation: str = "weighted_geometric"
    price_weight: float = 3.0

    # Optimisation.
    optimizer: str = "adam"
    lr: float = 0.001
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    input_l1: float = 0.0
    batch_size: int = 32
    max_epochs: int = 100
    min_epochs: int = 1
    patience: int = 10
    seed: int = 0

    def validate(self, section: str = "train") -> None:
        _check_choice(f"{section}.categorical_input", self.categorical_input, CATEGORICAL_INPUTS)
        _check_choice(f"{section}.price_target", self.price_target, PRICE_TARGETS)
        _check_choice(f"{section}.numeric_encoding", self.numeric_encoding, NUMERIC_ENCODINGS)
        _check_choice(f"{section}.shared_activation", self.shared_activation, ACTIVATIONS)
        _check_choice(f"{section}.head_activation", self.head_activation, ACTIVATIONS)
        _check_choice(f"{section}.price_loss", self.price_loss, PRICE_LOSSES)
        _check_choice(f"{section}.aggregation", self.aggregation, AGGREGATIONS)
        _check_choice(f"{section}.optimizer", self.optimizer, OPTIMIZERS)
        _check_choice(f"{section}.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        for name in ("ordinal_quality", "use_derived_features", "price_skip"):
            if not isinstance(getattr(self, name), bool):
                raise ParamsError(
                    f"{section}.{name}={getattr(self, name)!r} must be true or false"
                )

        if not isinstance(self.hidden_sizes, tuple):
            raise ParamsError(
                f"{section}.hidden_sizes={self.hidden_sizes!r} is invalid; it must be a list of "
                "layer widths, for example [36, 18]"
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
        _check_number(f"{section}.input_l1", self.input_l1, low=0.0)
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
        merged = {**self.to_dict(), **_as_dict(section, changes)}
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
    heartbeat_interval: int = 10
    grace_period: int = 30
    max_retry: int = 2
    workers: int = 1  # tuning processes on this machine; > 1 needs journal or server storage
    # Further dimensions of the search; None keeps the training configuration's value.
    weight_decay_range: tuple[float, float] | None = None
    dropout_range: tuple[float, float] | None = None
    input_l1_range: tuple[float, float] | None = None
    hidden_sizes_choices: tuple[tuple[int, ...], ...] | None = None

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
                "sqlite:///path/to/file.db, journal:///path/to/file.journal or "
                "postgresql://user@host/dbname"
            )
        if not isinstance(self.study_name, str) or not self.study_name:
            raise ParamsError(f"{section}.study_name must be a non-empty string")
        _check_number(
            f"{section}.heartbeat_interval", self.heartbeat_interval, low=1, integer=True
        )
        _check_number(
            f"{section}.grace_period", self.grace_period, low=self.heartbeat_interval, integer=True
        )
        _check_number(f"{section}.max_retry", self.max_retry, low=0, integer=True)
        _check_number(f"{section}.workers", self.workers, low=1, integer=True)
        self._validate_search_space(section)

    def _validate_search_space(self, section: str) -> None:
        ranges = {
            "weight_decay_range": (0.0, False),
            "dropout_range": (0.0, True),
            "input_l1_range": (0.0, False),
        }
        for name, (low, low_inclusive) in ranges.items():
            bounds = getattr(self, name)
            if bounds is None:
                continue
            if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
                raise ParamsError(
                    f"{section}.{name}={bounds!r} is invalid; give [low, high] or null, for "
                    "example [0.0001, 0.01]"
                )
            for index, bound in enumerate(bounds):
                _check_number(
                    f"{section}.{name}[{index}]",
                    bound,
                    low=low,
                    high=0.9 if name == "dropout_range" else None,
                    low_inclusive=low_inclusive,
                )
            if bounds[0] >= bounds[1]:
                raise ParamsError(
                    f"{section}.{name}={list(bounds)!r} is invalid; low must be below high"
                )

        choices = self.hidden_sizes_choices
        if choices is None:
            return
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ParamsError(
                f"{section}.hidden_sizes_choices={choices!r} is invalid; give a list of layer "
                "width lists or null, for example [[64, 32], [128, 64]]"
            )
        for index, widths in enumerate(choices):
            if not isinstance(widths, (list, tuple)) or not widths:
                raise ParamsError(
                    f"{section}.hidden_sizes_choices[{index}]={widths!r} is invalid; give a "
                    "list of layer widths, for example [128, 64]"
                )
            for position, width in enumerate(widths):
                _check_number(
                    f"{section}.hidden_sizes_choices[{index}][{position}]",
                    width,
                    low=1,
                    integer=True,
                )

    def searched(self) -> dict[str, Any]:
        """Return the search space beyond the learning rate, as plain JSON-ready values."""
        space = {
            "weight_decay": self.weight_decay_range,
            "dropout": self.dropout_range,
            "input_l1": self.input_l1_range,
            "hidden_sizes": self.hidden_sizes_choices,
        }
        return {
            name: [list(item) if isinstance(item, (list, tuple)) else item for item in value]
            for name, value in space.items()
            if value is not None
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, section: str = "tune") -> TuneParams:
        return _from_mapping(cls, section, values)


ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "auto")


@dataclass(frozen=True)
class TrainerParams:
    """Device settings of Lightning: `accelerator`, `devices` and `strategy` of `pl.Trainer`.

    The default is one CPU process. The strategy is passed to Lightning as is (for example
    `ddp`, `ddp_spawn` or `fsdp`), which rejects names it does not know.
    """

    accelerator: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"

    def validate(self, section: str = "trainer") -> None:
        _check_choice(f"{section}.accelerator", self.accelerator, ACCELERATORS)
        if self.devices != "auto":
            _check_number(f"{section}.devices", self.devices, low=1, integer=True)
        if not isinstance(self.strategy, str) or not self.strategy:
            raise ParamsError(
                f"{section}.strategy={self.strategy!r} is invalid; use a Lightning strategy "
                "name such as auto, ddp or fsdp"
            )

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any] | None, section: str = "trainer"
    ) -> TrainerParams:
        return _from_mapping(cls, section, values)

    def to_dict(self) -> dict[str, Any]:
        """Keyword arguments for `pl.Trainer`."""
        return dataclasses.asdict(self)

    def runs_in_one_cpu_process(self) -> bool:
        """Return True for one CPU device and no multi-process strategy: safe to fork."""
        return self.accelerator == "cpu" and self.devices == 1 and self.strategy == "auto"

    def check_single_process(self, section: str = "trainer") -> None:
        """Reject settings that start several processes per trial (Optuna trials need one)."""
        if self.devices != 1:
            raise ParamsError(
                f"{section}.devices={self.devices!r}: each tuning trial runs in one process; "
                "set devices to 1 and add tuning workers (house-multitask tune-worker) instead"
            )


@dataclass(frozen=True)
class BaselineParams:
    """Settings of the `baselines` stage apart from the study network's configuration."""

    tree_seed: int = 0

    def validate(self, section: str = "baselines") -> None:
        _check_number(f"{section}.tree_seed", self.tree_seed, low=0, integer=True)

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any] | None, section: str = "baselines"
    ) -> BaselineParams:
        return _from_mapping(cls, section, values)


@dataclass(frozen=True)
class FinalParams:
    """Settings of the `final` stage apart from the trained configuration."""

    ensemble_size: int = 1

    def validate(self, section: str = "final") -> None:
        _check_number(f"{section}.ensemble_size", self.ensemble_size, low=1, integer=True)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, section: str = "final") -> FinalParams:
        return _from_mapping(cls, section, values)


def resolve_processes(value: Any, key: str = "base.processes") -> int:
    """Validate the number of processes that train independent models at once."""
    _check_number(key, value, low=1, high=256, integer=True)
    return int(value)


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
