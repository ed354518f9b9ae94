"""The `house-multitask` console script: one sub-command per task.

Sub-commands import their modules only when called, so `predict` loads neither Lightning nor
Optuna.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from house_multitask.errors import HouseMultitaskError

# Sub-command name -> module with `add_arguments(parser)` and `run(args) -> int`.
COMMANDS = {
    "predict": ("house_multitask.predict_cli", "score houses in a CSV or Parquet file"),
    "check-metrics": ("house_multitask.gate", "fail when metrics regress against a baseline"),
    "tune-worker": ("house_multitask.tune_worker", "join a shared Optuna study and run trials"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="house-multitask", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        modules[name] = module
        module.add_arguments(subparsers.add_parser(name, help=help_text, description=help_text))

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return modules[args.command].run(args)
    except HouseMultitaskError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
