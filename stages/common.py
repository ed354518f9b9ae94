"""Helpers every stage script shares: params loading, logging set-up and one-line errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from house_multitask.errors import HouseMultitaskError, ParamsError

PARAMS_FILE = Path("params.yaml")


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Read params.yaml as a dict; a missing or malformed file raises ParamsError."""
    if not path.exists():
        raise ParamsError(f"{path}: file not found; run the stage from the repository root")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: invalid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return params


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    """Return params section `name`, which must be a mapping."""
    value = params.get(name)
    if not isinstance(value, dict):
        raise ParamsError(f"params.yaml: section '{name}' is missing or not a mapping")
    return value


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's `main` with INFO logging; user errors exit 2 with one line on stderr."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
    except HouseMultitaskError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
