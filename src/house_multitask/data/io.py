"""Reading Kaggle CSV files with schema checks, and Parquet/JSON input and output."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from house_multitask.errors import DataError
from house_multitask.schema import ID_COLUMN, MISSING_MARKERS, NUMERIC_FEATURES, PRICE_COLUMN

logger = logging.getLogger(__name__)

# Header line 1 is the column names, so data row i (0-based) sits on file line i + 2.
_FIRST_DATA_LINE = 2


def read_kaggle_csv(
    path: str | Path,
    required_columns: Iterable[str],
    numeric_columns: Iterable[str] = (ID_COLUMN, *NUMERIC_FEATURES, PRICE_COLUMN),
) -> pd.DataFrame:
    """Read a Kaggle House Prices CSV and check its schema.

    "NA" and empty cells become missing values; every other text, including the "None" category
    of MasVnrType, is kept as written. A UTF-8 byte-order mark is accepted.

    Args:
        path: the CSV file.
        required_columns: columns that must be present; all absent ones are named in the error.
        numeric_columns: columns that, where present, must hold numbers or missing values.

    Raises:
        DataError: the file is missing, empty, not comma-separated CSV, lacks a required column,
            or has text in a numeric column.
    """
    path = Path(path)
    _check_readable_file(path)
    frame = _read_as_text(path)

    missing = [column for column in required_columns if column not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: required column(s) missing: {', '.join(missing)}; "
            "give the file Kaggle's House Prices header"
        )
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no data rows")

    for column in numeric_columns:
        if column in frame.columns:
            frame[column] = _to_numeric(frame[column], path)
    return frame


def _check_readable_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; expected a CSV with a header row")


def _read_as_text(path: Path) -> pd.DataFrame:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = handle.readline()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file; save it as UTF-8 CSV") from None

    if "," not in header:
        delimiter = _guess_delimiter(header)
        hint = f" (it looks {delimiter!r}-separated)" if delimiter else ""
        raise DataError(
            f"{path}: the header has no commas{hint}; save the file as comma-separated"
        )

    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=list(MISSING_MARKERS),
            encoding="utf-8-sig",
        )
    except pd.errors.ParserError as error:
        raise DataError(f"{path}: not valid CSV: {str(error).strip()}") from None
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


def _guess_delimiter(header: str) -> str | None:
    try:
        return csv.Sniffer().sniff(header, delimiters=";\t|").delimiter
    except csv.Error:
        return None


def _to_numeric(values: pd.Series, path: Path) -> pd.Series:
    """Convert a text column to float, naming the first cell that is not a number."""
    numbers = pd.to_numeric(values, errors="coerce")
    invalid = numbers.isna() & values.notna()
    if invalid.any():
        row = int(invalid.to_numpy().nonzero()[0][0])
        raise DataError(
            f"{path}: column {values.name}, line {row + _FIRST_DATA_LINE}: "
            f"{values.iloc[row]!r} is not a number; write a number or NA"
        )
    return numbers.astype("float64")


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def read_parquet(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; run the stage that writes it (`dvc repro`)")
    return pd.read_parquet(path)


def to_json_safe(value: Any) -> Any:
    """Replace NaN and infinities with None, recursively, so the JSON stays standard."""
    if isinstance(value, dict):
        return {str(key): to_json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return to_json_safe(value.item())
    return value


def write_json(data: Any, path: str | Path) -> None:
    """Write `data` as sorted, indented JSON, atomically, with non-finite floats as null."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_json_safe(data), indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write_text(path, text)


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; run the stage that writes it (`dvc repro`)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: invalid JSON ({error}); delete it and rerun its stage") from None


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as handle:
        handle.write(text)
        temporary = Path(handle.name)
    os.replace(temporary, path)
