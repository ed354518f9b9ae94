"""Scoring new houses with the model directory of the final stage: the Python API of `predict`.

    from house_multitask.predict import load_model

    model = load_model("models/final")
    predictions = model.predict(frame)  # Id, SalePrice, HouseCategory, prob_0 .. prob_5

The input goes through the training pipeline's own code: `Preprocessor.transform` (training
imputation, label codes with the reserved unseen code, min-max ranges), `build_inputs` and
`MultiTaskNet`. Nothing here imports Lightning or Optuna, so start-up stays short.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from house_multitask.config import TrainConfig
from house_multitask.data.io import PARQUET_SUFFIXES, check_kaggle_frame, read_kaggle_table
from house_multitask.errors import DataError
from house_multitask.features.inputs import ModelInputs, build_inputs
from house_multitask.features.preprocess import Preprocessor, TransformReport, target_to_price
from house_multitask.model_dir import LoadedModelDir, load_model_dir
from house_multitask.models.network import MultiTaskNet
from house_multitask.outputs import prediction_frame
from house_multitask.schema import ID_COLUMN, NUMERIC_FEATURES, PRICE_COLUMN

logger = logging.getLogger(__name__)

# Year columns compared with the sale year and with the current year.
BUILD_YEAR_COLUMNS = ("YearBuilt", "YearRemodAdd", "GarageYrBlt")
SALE_YEAR_COLUMN = "YrSold"
MONTH_COLUMN = "MoSold"

# Unseen values and Ids listed per warning line; the rest are counted as "and N more".
_SHOWN_EXAMPLES = 3


@dataclass
class InputReport:
    """Repairs and doubts about the input found while scoring it, per column.

    Attributes:
        source: the file or frame name used in the warnings.
        rows: rows scored.
        imputed: missing values per column, replaced by the training median or mode.
        fill_values: the training median or mode used for each column in `imputed`.
        unseen: per column, the category values not seen in training with their row counts;
            they were scored with the reserved unseen code.
        implausible: per column and reason, the Ids of rows whose value is implausible; these
            rows were scored as given.
        columns: the input's column order, which orders the warning lines.
    """

    source: str
    rows: int
    imputed: dict[str, int] = field(default_factory=dict)
    fill_values: dict[str, str] = field(default_factory=dict)
    unseen: dict[str, dict[str, int]] = field(default_factory=dict)
    implausible: dict[str, dict[str, list]] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Return one warning line per column that had imputed, unseen or implausible values."""
        flagged = set(self.imputed) | set(self.unseen) | set(self.implausible)
        ordered = [column for column in self.columns if column in flagged]
        ordered += sorted(flagged - set(ordered))
        return [f"{self.source}: column {column}: {self._describe(column)}" for column in ordered]

    def _describe(self, column: str) -> str:
        parts = []
        if column in self.imputed:
            count = self.imputed[column]
            parts.append(
                f"{_plural(count, 'missing value')} imputed with the training value "
                f"{self.fill_values[column]}"
            )
        if column in self.unseen:
            values = self.unseen[column]
            shown = [
                f"{value!r} in {_plural(count, 'row')}"
                for value, count in list(values.items())[:_SHOWN_EXAMPLES]
            ]
            more = len(values) - len(shown)
            listed = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
            parts.append(
                f"{_plural(sum(values.values()), 'value')} not seen in training ({listed}) "
                "scored with the reserved unseen code"
            )
        for reason, ids in self.implausible.get(column, {}).items():
            parts.append(f"{_plural(len(ids), 'implausible value')} {reason} ({_list_ids(ids)})")
        return "; ".join(parts)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _list_ids(ids: list) -> str:
    shown = ", ".join(_format_id(value) for value in ids[:_SHOWN_EXAMPLES])
    more = len(ids) - _SHOWN_EXAMPLES
    return f"Id {shown}" + (f" and {more} more" if more > 0 else "")


def _format_id(value) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else str(value)


def find_implausible_values(
    frame: pd.DataFrame, id_column: str = ID_COLUMN, current_year: int | None = None
) -> dict[str, dict[str, list]]:
    """Find values that are possible to score but unlikely to be true.

    Checked: negative values in Kaggle's numeric columns (areas, counts, years, prices), build
    or remodelling years later than the sale year YrSold or than the current year, YearRemodAdd
    before YearBuilt, and MoSold outside 1-12. Missing values are not flagged here.

    Args:
        frame: rows with numeric columns already converted to numbers.
        id_column: the column that names each row in the result.
        current_year: the year after which a year is in the future; today's year when None.

    Returns:
        Per column and reason, the Ids of the rows concerned.
    """
    current_year = datetime.date.today().year if current_year is None else current_year
    numbers = {
        column: frame[column]
        for column in NUMERIC_FEATURES
        if column in frame.columns and pd.api.types.is_numeric_dtype(frame[column])
    }
    checks: list[tuple[str, str, pd.Series]] = []

    for column, values in numbers.items():
        checks.append((column, "below zero", values < 0))

    sale_year = numbers.get(SALE_YEAR_COLUMN)
    for column in BUILD_YEAR_COLUMNS:
        if column in numbers and sale_year is not None:
            later = numbers[column] > sale_year
            checks.append((column, f"later than the sale year {SALE_YEAR_COLUMN}", later))
    for column in (*BUILD_YEAR_COLUMNS, SALE_YEAR_COLUMN):
        if column in numbers:
            future = numbers[column] > current_year
            checks.append((column, f"after the current year {current_year}", future))

    if "YearRemodAdd" in numbers and "YearBuilt" in numbers:
        earlier = numbers["YearRemodAdd"] < numbers["YearBuilt"]
        checks.append(("YearRemodAdd", "earlier than YearBuilt", earlier))
    if MONTH_COLUMN in numbers:
        month = numbers[MONTH_COLUMN]
        checks.append((MONTH_COLUMN, "outside the months 1-12", (month < 1) | (month > 12)))

    found: dict[str, dict[str, list]] = {}
    for column, reason, mask in checks:
        mask = mask.fillna(False).to_numpy(dtype=bool)
        if mask.any():
            found.setdefault(column, {})[reason] = frame[id_column].to_numpy()[mask].tolist()
    return found


class Model:
    """A trained multi-task model loaded from a model directory, ready to score houses.

    An ensemble of several networks is combined in two ways. The price outputs are averaged in
    the network's target space (dollars, or the standardised log price) and then converted to
    dollars, so a log target gives the geometric mean of the members' prices. The class
    probabilities are averaged, and HouseCategory is the most probable class of that average.
    With one network the predictions are the network's own, to the last bit.

    Args:
        loaded: a verified directory from `house_multitask.model_dir.load_model_dir`.
    """

    def __init__(self, loaded: LoadedModelDir) -> None:
        self.directory = loaded.directory
        self.config: TrainConfig = loaded.config
        self.preprocessor: Preprocessor = loaded.preprocessor
        self.networks: list[MultiTaskNet] = loaded.networks

    @property
    def required_columns(self) -> list[str]:
        """Columns an input must have: the Id and the predictors the model was trained on."""
        return [ID_COLUMN, *self.preprocessor.predictors]

    @property
    def numeric_columns(self) -> list[str]:
        """Columns that must hold numbers or missing values."""
        return [ID_COLUMN, *self.preprocessor.numeric_features]

    def predict(self, frame: pd.DataFrame, source: str = "input frame") -> pd.DataFrame:
        """Score every row of `frame` and log one warning per column that needed attention.

        Args:
            frame: houses with Kaggle's columns; extra columns and SalePrice are ignored.
                Missing values may be NaN, None, "NA" or "".
            source: the name used in warnings and errors.

        Returns:
            Id, SalePrice (dollars), HouseCategory (0-5) and prob_0 .. prob_5, one row per input
            row in input order.

        Raises:
            DataError: a required column is absent, the frame is empty, a numeric column
                contains text, or an Id is missing or repeated.
        """
        predictions, report = self.predict_with_report(frame, source)
        _log_report(report)
        return predictions

    def predict_with_report(
        self, frame: pd.DataFrame, source: str = "input frame"
    ) -> tuple[pd.DataFrame, InputReport]:
        """Score `frame` like `predict`, returning the input report instead of logging it."""
        checked = check_kaggle_frame(frame, source, self.required_columns, self.numeric_columns)
        return self._score(checked, source)

    def predict_file(self, path: str | Path) -> pd.DataFrame:
        """Read a CSV, or Parquet named *.parquet or *.pq, check it and score it like `predict`.

        Raises:
            DataError: the file is missing, empty, not CSV or Parquet, or fails the checks of
                `predict`. The message names the file and, where known, the column and line.
        """
        predictions, report = self.predict_file_with_report(path)
        _log_report(report)
        return predictions

    def predict_file_with_report(self, path: str | Path) -> tuple[pd.DataFrame, InputReport]:
        """Read and score a file like `predict_file`, returning the input report."""
        frame = read_kaggle_table(path, self.required_columns, self.numeric_columns)
        return self._score(frame, str(path))

    def _score(self, frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, InputReport]:
        # Only the Id and the predictors go in, so a SalePrice column is never read.
        inputs_frame = frame[self.required_columns]
        encoded, transform_report = self.preprocessor.transform(inputs_frame)
        inputs = build_inputs(encoded, self.preprocessor, self.config)

        price_output, probabilities = self._forward(inputs)
        prices = target_to_price(
            price_output,
            self.config.price_target,
            self.preprocessor.price_log_mean,
            self.preprocessor.price_log_std,
        )
        predictions = prediction_frame(_integer_ids(frame[ID_COLUMN]), prices, probabilities)

        report = self._report(frame, source, transform_report)
        return predictions, report

    def _forward(self, inputs: ModelInputs) -> tuple[np.ndarray, np.ndarray]:
        """Return the members' mean price output and mean class probabilities."""
        price_outputs = []
        probabilities = []
        with _one_torch_thread(), torch.inference_mode():
            for network in self.networks:
                price_output, logits = network(inputs.numeric, inputs.codes)
                price_outputs.append(price_output.double().numpy())
                probabilities.append(torch.softmax(logits, dim=1).double().numpy())
        return np.mean(price_outputs, axis=0), np.mean(probabilities, axis=0)

    def _report(
        self, frame: pd.DataFrame, source: str, transform_report: TransformReport
    ) -> InputReport:
        fill_values = {}
        for column in transform_report.imputed:
            if column in self.preprocessor.medians:
                fill_values[column] = f"{self.preprocessor.medians[column]:g} (median)"
            else:
                fill_values[column] = f"{self.preprocessor.modes[column]!r} (mode)"
        return InputReport(
            source=source,
            rows=len(frame),
            imputed=dict(transform_report.imputed),
            fill_values=fill_values,
            unseen=dict(transform_report.unseen),
            implausible=find_implausible_values(frame),
            columns=list(frame.columns),
        )


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one thread, as training does (configure_torch), and restore the setting.

    One thread is fastest for a network of a few thousand weights, and it keeps the float
    summation order of the final stage's own predictions, so both agree to the last bit.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _integer_ids(ids: pd.Series) -> pd.Series:
    """Return whole-number Ids as int64 so that the CSV reads 1461, not 1461.0."""
    numbers = ids.to_numpy(dtype="float64")
    if np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)):
        return pd.Series(numbers.astype("int64"), name=ID_COLUMN)
    return ids.reset_index(drop=True)


def _log_report(report: InputReport) -> None:
    for line in report.lines():
        logger.warning(line)


def load_model(directory: str | Path) -> Model:
    """Load and verify the model directory written by the final stage (such as models/final).

    Only JSON and `torch.load(weights_only=True)` are used; nothing is unpickled.

    Raises:
        ModelDirError: the folder or one of its files is missing, corrupted (SHA-256 differs
            from model.json) or from an incompatible format or major package version.
    """
    return Model(load_model_dir(directory))


def kaggle_submission(predictions: pd.DataFrame) -> pd.DataFrame:
    """Return the columns of Kaggle's submission format: Id and SalePrice."""
    return predictions[[ID_COLUMN, PRICE_COLUMN]]


def check_output_path(output: str | Path, input_path: str | Path | None = None) -> Path:
    """Check that predictions can be written to `output` before any work is done.

    Raises:
        DataError: the output's folder does not exist, the output is a folder, or it is the
            input file.
    """
    output = Path(output)
    if output.is_dir():
        raise DataError(f"{output}: is a folder; give a file name for the predictions")
    if not output.parent.is_dir():
        raise DataError(
            f"{output}: folder {output.parent} does not exist; create it or choose another output"
        )
    same_file = input_path is not None and output.exists() and Path(input_path).exists()
    if same_file and output.resolve() == Path(input_path).resolve():
        raise DataError(f"{output}: is the input file; write the predictions to another file")
    return output


def write_predictions(predictions: pd.DataFrame, output: str | Path) -> Path:
    """Write predictions as CSV, or Parquet when the name ends in .parquet or .pq, atomically.

    The table goes to a temporary file in the output's folder, which then replaces `output` in
    one rename, so a failed write leaves neither a partial file nor a damaged earlier output.

    Raises:
        DataError: the folder is missing or the write failed (for example, the disk is full).
    """
    output = check_output_path(output)
    try:
        handle, temporary_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    except OSError as error:
        raise DataError(f"{output}: writing failed: {error.strerror or error}") from None
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        if output.suffix.lower() in PARQUET_SUFFIXES:
            predictions.to_parquet(temporary, index=False)
        else:
            predictions.to_csv(temporary, index=False)
        # mkstemp creates the file readable by its owner only; give it the usual permissions.
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, output)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise DataError(f"{output}: writing failed: {error.strerror or error}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return output


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
