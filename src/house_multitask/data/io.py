"""Reading Kaggle CSV files with schema checks, and Parquet/JSON input and output."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from house_multitask.errors import DataError
from house_multitask.schema import ID_COLUMN, MISSING_MARKERS, NUMERIC_FEATURES, PRICE_COLUMN

logger = logging.getLogger(__name__)

# Header line 1 is the column names, so data row i (0-based) sits on file line i + 2.
_FIRST_DATA_LINE = 2

DEFAULT_NUMERIC_COLUMNS = (ID_COLUMN, *NUMERIC_FEATURES, PRICE_COLUMN)
PARQUET_SUFFIXES = (".parquet", ".pq")

# Leading bytes of formats that people save under a .csv name by mistake, with the fix.
_FILE_SIGNATURES = {
    b"PAR1": "it is a Parquet file; give it a .parquet name to read it as Parquet",
    b"PK\x03\x04": "it is a ZIP archive or an Excel workbook; export the table as CSV",
}
_SNIFF_BYTES = 8192


def read_kaggle_csv(
    path: str | Path,
    required_columns: Iterable[str],
    numeric_columns: Iterable[str] = DEFAULT_NUMERIC_COLUMNS,
) -> pd.DataFrame:
    """Read a Kaggle House Prices CSV and check its schema.

    "NA" and empty cells become missing values; every other text, including the "None" category
    of MasVnrType, is kept as written. A UTF-8 byte-order mark is accepted.

    Args:
        path: the CSV file.
        required_columns: columns that must be present; all absent ones are named in the error.
        numeric_columns: columns that, where present, must hold numbers or missing values.

    Raises:
        DataError: the file is missing, empty, binary or not comma-separated CSV, lacks a
            required column, has text in a numeric column, or has a missing or repeated Id.
    """
    path = Path(path)
    _check_readable_file(path)
    _check_not_binary(path)
    frame = _read_as_text(path)
    return _check_frame(frame, path, required_columns, numeric_columns, _csv_line)


def read_kaggle_parquet(
    path: str | Path,
    required_columns: Iterable[str],
    numeric_columns: Iterable[str] = DEFAULT_NUMERIC_COLUMNS,
) -> pd.DataFrame:
    """Read a Parquet file with Kaggle's House Prices columns and check it like a CSV.

    Text cells "NA" and "" count as missing, as in the CSV. Numbers stored in a categorical
    column, such as MSSubClass, become their text ("60", not "60.0"). Rows are counted from 1
    in error messages.

    Raises:
        DataError: as `read_kaggle_csv`, or the file is not valid Parquet.
    """
    path = Path(path)
    _check_readable_file(path, expected="a Parquet file")
    try:
        frame = pd.read_parquet(path)
    except (ValueError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(
            f"{path}: not a valid Parquet file ({reason}); write it with "
            "pandas.DataFrame.to_parquet or pass a CSV file"
        ) from None
    return check_kaggle_frame(frame, path, required_columns, numeric_columns)


def read_kaggle_table(
    path: str | Path,
    required_columns: Iterable[str],
    numeric_columns: Iterable[str] = DEFAULT_NUMERIC_COLUMNS,
) -> pd.DataFrame:
    """Read a Parquet file (suffix .parquet or .pq) or otherwise a CSV, with the same checks."""
    if Path(path).suffix.lower() in PARQUET_SUFFIXES:
        return read_kaggle_parquet(path, required_columns, numeric_columns)
    return read_kaggle_csv(path, required_columns, numeric_columns)


def check_kaggle_frame(
    frame: pd.DataFrame,
    source: str | Path,
    required_columns: Iterable[str],
    numeric_columns: Iterable[str] = DEFAULT_NUMERIC_COLUMNS,
) -> pd.DataFrame:
    """Check a table already in memory as `read_kaggle_csv` checks a file; return a checked copy.

    Args:
        frame: the table; it is not modified.
        source: the name used in error messages, such as a file path.
        required_columns: columns that must be present; all absent ones are named in the error.
        numeric_columns: columns that, where present, must hold numbers or missing values.

    Raises:
        DataError: a required column is absent, the table has no rows, a numeric column
            contains text, or an Id is missing or repeated. Rows are counted from 1 in the
            message.
    """
    frame = frame.copy()
    frame.columns = [str(column).strip() for column in frame.columns]
    numeric_columns = tuple(numeric_columns)
    for column in frame.columns:
        frame[column] = _standardize_values(frame[column], column in numeric_columns)
    return _check_frame(frame, source, required_columns, numeric_columns, _row_number)


def _csv_line(row: int) -> str:
    return f"line {row + _FIRST_DATA_LINE}"


def _row_number(row: int) -> str:
    return f"row {row + 1}"


def _standardize_values(values: pd.Series, numeric: bool) -> pd.Series:
    """Give a column read from Parquet or memory the missing values and types of a CSV column."""
    if pd.api.types.is_bool_dtype(values):
        return values
    if pd.api.types.is_numeric_dtype(values):
        return values if numeric else values.astype("object").map(_number_text, na_action="ignore")
    values = values.astype("object")
    return values.where(~values.isin(MISSING_MARKERS))


def _number_text(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else str(value)


def _check_frame(
    frame: pd.DataFrame,
    source: str | Path,
    required_columns: Iterable[str],
    numeric_columns: Iterable[str],
    locate: Callable[[int], str],
) -> pd.DataFrame:
    """Check columns, rows, numbers and Ids; `locate` names the row at a 0-based position."""
    missing = [column for column in required_columns if column not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: required column(s) missing: {', '.join(missing)}; "
            "give the file Kaggle's House Prices header"
        )
    if frame.empty:
        raise DataError(f"{source}: the file has a header but no data rows")

    for column in numeric_columns:
        if column in frame.columns:
            frame[column] = _to_numeric(frame[column], source, locate)
    _check_ids(frame, source, locate)
    return frame


def _check_ids(frame: pd.DataFrame, source: str | Path, locate: Callable[[int], str]) -> None:
    """Reject a missing or repeated Id: predictions and splits are matched to houses by Id."""
    if ID_COLUMN not in frame.columns:
        return
    ids = frame[ID_COLUMN]

    missing = ids.isna().to_numpy()
    if missing.any():
        row = int(missing.nonzero()[0][0])
        raise DataError(
            f"{source}: column {ID_COLUMN}, {locate(row)}: the Id is missing; "
            "give every house an Id"
        )

    repeated = ids.duplicated().to_numpy()
    if repeated.any():
        row = int(repeated.nonzero()[0][0])
        value = ids.iloc[row]
        first = int((ids == value).to_numpy().nonzero()[0][0])
        raise DataError(
            f"{source}: column {ID_COLUMN}, {locate(row)}: Id {_number_text(value)} repeats the "
            f"Id on {locate(first)}; give every house its own Id"
        )


def _check_readable_file(path: Path, expected: str = "a CSV with a header row") -> None:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; expected {expected}")


def _check_not_binary(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as error:
        raise DataError(f"{path}: reading failed: {error.strerror or error}") from None
    for signature, hint in _FILE_SIGNATURES.items():
        if head.startswith(signature):
            raise DataError(f"{path}: not a CSV file: {hint}")
    if b"\x00" in head:
        raise DataError(
            f"{path}: not a CSV file: it contains NUL bytes, so it is binary or UTF-16 text; "
            "save it as UTF-8 CSV"
        )


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
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file; save it as UTF-8 CSV") from None
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas turns the first column into the index, shifting every value one column left,
        # when the first data row has one field more than the header (a trailing comma).
        raise DataError(
            f"{path}: line {_FIRST_DATA_LINE} has more fields than the header; remove the "
            "trailing commas or name every column in the header"
        )
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


def _guess_delimiter(header: str) -> str | None:
    try:
        return csv.Sniffer().sniff(header, delimiters=";\t|").delimiter
    except csv.Error:
        return None


def _to_numeric(values: pd.Series, source: str | Path, locate: Callable[[int], str]) -> pd.Series:
    """Convert a text column to float, naming the first cell that is not a number."""
    numbers = pd.to_numeric(values, errors="coerce")
    invalid = numbers.isna() & values.notna()
    if invalid.any():
        row = int(invalid.to_numpy().nonzero()[0][0])
        raise DataError(
            f"{source}: column {values.name}, {locate(row)}: "
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
