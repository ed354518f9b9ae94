"""`house-multitask check-metrics`: fail when reproduced metrics regress against a git revision.

The gate reads each metric listed under `gate.metrics` in params.yaml from the metrics file in the
working tree and from the same file at a git revision (`git show REV:path`, HEAD by default). It
prints the table `dvc metrics diff REV --all` prints, with a Status column added, and returns exit
status 1 when any metric regressed beyond its tolerance, fell outside its floor, is missing on
either side or is not a finite number. Configuration errors and unusable revisions raise
`HouseMultitaskError` subclasses, which the console script turns into exit status 2.

Like a stage script, the command reads params.yaml (the file given by `--params`) through
`load_rules`. The comparison functions take parsed values.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from house_multitask.errors import DataError, ParamsError

DIRECTIONS = ("minimize", "maximize")
RULE_KEYS = ("direction", "abs_tol", "rel_tol")
FLOOR_KEYS = ("min", "max")
OK = "ok"
IMPROVED = "improved"
REGRESSED = "regressed"
WORKSPACE = "workspace"
DEFAULT_PRECISION = 5  # the rounding `dvc metrics diff` applies by default

STALE_HINT = (
    "Runs are seeded and deterministic: if this change touched neither the pipeline code nor "
    "params.yaml, a mismatch means the committed dvc.lock and metrics are stale (run `dvc repro` "
    "and commit them) or the pipeline is not reproducible on this machine."
)


class _Missing:
    """Marker for a metric key that is absent from its file, as opposed to a JSON null."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class MetricRule:
    """Direction, tolerance and floors of one gated metric.

    Attributes:
        path: Metrics file, relative to the repository root.
        metric: Key inside the file; dots separate the levels of nested objects.
        direction: `minimize` or `maximize`: which way is better.
        abs_tol: Largest change for the worse that still passes, in the metric's unit.
        rel_tol: Largest change for the worse that still passes, as a share of the baseline.
        floor_min: Lowest acceptable value, whatever the baseline; None for no bound.
        floor_max: Highest acceptable value, whatever the baseline; None for no bound.
    """

    path: str
    metric: str
    direction: str
    abs_tol: float = 0.0
    rel_tol: float = 0.0
    floor_min: float | None = None
    floor_max: float | None = None

    def tolerance(self, baseline: float) -> float:
        """Return the change for the worse allowed from `baseline`: the larger of both bounds."""
        return max(self.abs_tol, self.rel_tol * abs(baseline))


@dataclass(frozen=True)
class MetricResult:
    """Outcome of gating one metric; `reasons` explains a `regressed` status."""

    rule: MetricRule
    old: Any
    new: Any
    status: str
    reasons: tuple[str, ...] = ()

    @property
    def change(self) -> float | None:
        """Return new minus old when both are finite numbers, else None."""
        if _number_problem(self.old) or _number_problem(self.new):
            return None
        return self.new - self.old


# --- configuration -----------------------------------------------------------------------------


def _check_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not value:
        raise ParamsError(f"{where} must be a non-empty mapping, got {value!r}")
    return value


def _check_tolerance(value: Any, where: str) -> float:
    if _number_problem(value):
        raise ParamsError(f"{where}={value!r} is invalid; it must be a finite number >= 0")
    if value < 0:
        raise ParamsError(f"{where}={value!r} is out of range; it must be a finite number >= 0")
    return float(value)


def _parse_rule(path: str, metric: str, values: Any, where: str) -> MetricRule:
    values = _check_mapping(values, where)
    unknown = sorted(set(values) - set(RULE_KEYS))
    if unknown:
        raise ParamsError(
            f"{where} has unknown key(s) {', '.join(unknown)}; known keys: {', '.join(RULE_KEYS)}"
        )

    direction = values.get("direction")
    if direction not in DIRECTIONS:
        raise ParamsError(
            f"{where}.direction={direction!r} is not allowed; use one of: {', '.join(DIRECTIONS)}"
        )

    return MetricRule(
        path=path,
        metric=metric,
        direction=direction,
        abs_tol=_check_tolerance(values.get("abs_tol", 0.0), f"{where}.abs_tol"),
        rel_tol=_check_tolerance(values.get("rel_tol", 0.0), f"{where}.rel_tol"),
    )


def parse_rules(metrics: Any, source: str = "params.yaml") -> list[MetricRule]:
    """Build the gate's rules from the `gate.metrics` mapping: file -> metric -> rule.

    Args:
        metrics: Mapping of metrics file path to a mapping of dotted metric key to a rule with
            `direction` (minimize | maximize) and optional `abs_tol` and `rel_tol` (default 0).
        source: File the mapping came from, for error messages.

    Returns:
        One rule per metric, in the order of the mapping.

    Raises:
        ParamsError: The mapping is empty or a rule is invalid.
    """
    rules = []
    for path, by_metric in _check_mapping(metrics, f"{source}: gate.metrics").items():
        for metric, values in _check_mapping(by_metric, f"{source}: gate.metrics.{path}").items():
            rules.append(
                _parse_rule(path, metric, values, f"{source}: gate.metrics.{path}.{metric}")
            )
    return rules


def _parse_floor(values: Any, where: str) -> tuple[float | None, float | None]:
    values = _check_mapping(values, where)
    unknown = sorted(set(values) - set(FLOOR_KEYS))
    if unknown:
        raise ParamsError(f"{where} has unknown key(s) {', '.join(unknown)}; known keys: min, max")

    bounds = []
    for key in FLOOR_KEYS:
        value = values.get(key)
        if value is not None and _number_problem(value):
            raise ParamsError(f"{where}.{key}={value!r} is invalid; it must be a finite number")
        bounds.append(None if value is None else float(value))
    return bounds[0], bounds[1]


def apply_floors(rules: Sequence[MetricRule], floors: Any, source: str) -> list[MetricRule]:
    """Attach the bounds of a floors mapping (file -> metric -> {min, max}) to the rules.

    Args:
        rules: The gate's rules.
        floors: Parsed floors file; None or an empty mapping attaches nothing.
        source: Path of the floors file, for error messages.

    Returns:
        The rules, with `floor_min` / `floor_max` set where the floors file names them.

    Raises:
        ParamsError: A floor is invalid or names a metric that has no rule in `gate.metrics`,
            so its direction and tolerance would be unknown.
    """
    if not floors:
        return list(rules)
    if not isinstance(floors, Mapping):
        raise ParamsError(
            f"{source}: expected a mapping of metrics file to metrics, got {floors!r}"
        )

    by_key = {(rule.path, rule.metric): rule for rule in rules}
    for path, by_metric in floors.items():
        for metric, values in _check_mapping(by_metric, f"{source}: {path}").items():
            if (path, metric) not in by_key:
                raise ParamsError(
                    f"{source}: {path} {metric} has a floor but no rule under gate.metrics in "
                    "params.yaml; add a rule for it or remove the floor"
                )
            floor_min, floor_max = _parse_floor(values, f"{source}: {path}.{metric}")
            by_key[path, metric] = dataclasses.replace(
                by_key[path, metric], floor_min=floor_min, floor_max=floor_max
            )
    return list(by_key.values())


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ParamsError(f"{path}: file not found; run check-metrics from the repository root")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: invalid YAML: {str(error).splitlines()[0]}") from None


def load_rules(params_path: Path) -> tuple[list[MetricRule], str | None]:
    """Read the `gate` section of a params file and the floors file it names.

    Returns:
        The rules with their floors, and the floors file path (None when `gate.floors` is unset).

    Raises:
        ParamsError: A file is missing or invalid.
    """
    params = _read_yaml(params_path)
    gate = params.get("gate") if isinstance(params, Mapping) else None
    if not isinstance(gate, Mapping):
        raise ParamsError(f"{params_path}: section 'gate' is missing or not a mapping")
    unknown = sorted(set(gate) - {"metrics", "floors"})
    if unknown:
        raise ParamsError(
            f"{params_path}: gate has unknown key(s) {', '.join(unknown)}; "
            "known keys: floors, metrics"
        )

    rules = parse_rules(gate.get("metrics"), str(params_path))
    floors_path = gate.get("floors")
    if floors_path is None:
        return rules, None
    return apply_floors(rules, _read_yaml(Path(floors_path)), str(floors_path)), str(floors_path)


# --- reading metrics from git and the working tree ---------------------------------------------


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise DataError("git not found on PATH; install git to compare metrics") from None


def verify_revision(rev: str, cwd: Path) -> str:
    """Resolve `rev` to a commit id, with a one-line error when it is not available.

    Raises:
        DataError: `cwd` is not in a git work tree, or `rev` names no commit. In a shallow clone
            the message asks for more history, because the commit may exist upstream.
    """
    if _git(["rev-parse", "--is-inside-work-tree"], cwd).returncode != 0:
        raise DataError(f"{cwd}: not a git work tree; run check-metrics inside the repository")

    resolved = _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd)
    if resolved.returncode == 0:
        return resolved.stdout.strip()

    shallow = _git(["rev-parse", "--is-shallow-repository"], cwd).stdout.strip() == "true"
    if shallow:
        raise DataError(
            f"revision {rev!r} is not in this shallow clone; fetch the history it needs "
            "(`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout) and rerun"
        )
    raise DataError(f"revision {rev!r} not found; give an existing commit, branch or tag")


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: invalid JSON: {error}") from None


def read_revision_json(rev: str, path: str, cwd: Path) -> Any:
    """Return the parsed metrics file `path` at `rev`, or MISSING when the file is not there.

    `rev` must already be verified, so a failing `git show` means the path does not exist at
    that revision.
    """
    git_show = _git(["show", f"{rev}:./{path}"], cwd)
    if git_show.returncode != 0:
        return MISSING
    return _parse_json(git_show.stdout, f"{rev}:{path}")


def read_workspace_json(path: str, cwd: Path) -> Any:
    """Return the parsed metrics file `path` in the working tree, or MISSING when absent."""
    file = cwd / path
    if not file.is_file():
        return MISSING
    return _parse_json(file.read_text(encoding="utf-8"), path)


def lookup(data: Any, key: str) -> Any:
    """Return the value at dotted `key` in nested objects, or MISSING when a level is absent."""
    node = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


# --- comparison --------------------------------------------------------------------------------


def _number_problem(value: Any) -> str | None:
    """Describe why `value` cannot be compared, or return None for a finite number."""
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"not a number ({value!r})"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "infinite"
    return None


def _floor_reasons(rule: MetricRule, new: float, floors_source: str) -> list[str]:
    reasons = []
    if rule.floor_min is not None and new < rule.floor_min:
        reasons.append(f"{new:.6g} is below its floor min {rule.floor_min:.6g} in {floors_source}")
    if rule.floor_max is not None and new > rule.floor_max:
        reasons.append(f"{new:.6g} is above its floor max {rule.floor_max:.6g} in {floors_source}")
    return reasons


def _tolerance_text(rule: MetricRule, allowed: float) -> str:
    return f"tolerance {allowed:.6g} (abs_tol {rule.abs_tol:g}, rel_tol {rule.rel_tol:g})"


def compare_metric(
    rule: MetricRule, old: Any, new: Any, rev: str = "HEAD", floors_source: str = "the floors file"
) -> MetricResult:
    """Gate one metric: `old` from revision `rev`, `new` from the working tree.

    A value that is missing, null, non-numeric, NaN or infinite on either side is a regression,
    because no comparison can show that it is not worse. A change for the worse larger than the
    rule's tolerance is a regression, a change for the better larger than it is an improvement,
    and a new value outside the floors is a regression whatever the baseline.
    """
    reasons = []
    for side, value in ((rev, old), (WORKSPACE, new)):
        problem = _number_problem(value)
        if problem:
            reasons.append(f"{side} value is {problem}")
    if not _number_problem(new):
        reasons.extend(_floor_reasons(rule, new, floors_source))
    if _number_problem(old) or _number_problem(new):
        return MetricResult(rule, old, new, REGRESSED, tuple(reasons))

    change = new - old
    worse_by = change if rule.direction == "minimize" else -change
    allowed = rule.tolerance(old)
    status = OK
    if worse_by > allowed:
        status = REGRESSED
        reasons.insert(0, f"worse by {worse_by:.6g}, beyond the {_tolerance_text(rule, allowed)}")
    elif -worse_by > allowed:
        status = IMPROVED
    if reasons:
        status = REGRESSED
    return MetricResult(rule, old, new, status, tuple(reasons))


def compare_revision(
    rules: Sequence[MetricRule],
    rev: str = "HEAD",
    cwd: Path | None = None,
    floors_source: str = "the floors file",
) -> list[MetricResult]:
    """Gate every rule: working-tree metrics files against the same files at `rev`.

    Raises:
        DataError: `rev` is unavailable (see `verify_revision`) or a metrics file is invalid JSON.
    """
    cwd = Path.cwd() if cwd is None else cwd
    verify_revision(rev, cwd)

    old_files: dict[str, Any] = {}
    new_files: dict[str, Any] = {}
    results = []
    for rule in rules:
        if rule.path not in old_files:
            old_files[rule.path] = read_revision_json(rev, rule.path, cwd)
            new_files[rule.path] = read_workspace_json(rule.path, cwd)
        old = lookup(old_files[rule.path], rule.metric)
        new = lookup(new_files[rule.path], rule.metric)
        results.append(compare_metric(rule, old, new, rev, floors_source))
    return results


# --- output ------------------------------------------------------------------------------------


def _table_value(value: Any) -> Any:
    if value is MISSING:
        return None  # DVC's table prints "-" for a value it does not have
    if value is None:
        return "null"
    return value


def render_table(
    results: Sequence[MetricResult],
    rev: str = "HEAD",
    *,
    markdown: bool = False,
    precision: int = DEFAULT_PRECISION,
) -> str:
    """Format the results as `dvc metrics diff REV --all` does, plus a Status column.

    DVC builds the rows (`dvc.compare.diff_table`: rounding, sorting by metric within a file) and
    `tabulate` lays them out with the arguments DVC 3's plain table uses.
    """
    from dvc.compare import diff_table
    from tabulate import tabulate

    diff: dict[str, dict[str, dict[str, Any]]] = {}
    statuses = {}
    for result in results:
        entry = {"old": _table_value(result.old), "new": _table_value(result.new)}
        if result.change is not None:
            entry["diff"] = result.change
        diff.setdefault(result.rule.path, {})[result.rule.metric] = entry
        statuses[result.rule.path, result.rule.metric] = result.status

    table = diff_table(
        diff, title="Metric", precision=precision, round_digits=True, a_rev=rev, b_rev=WORKSPACE
    )
    table.add_column("Status")
    rows = [[*row[:-1], statuses[row[0], row[1]]] for row in table]
    return tabulate(
        rows,
        table.keys(),
        tablefmt="github" if markdown else "plain",
        disable_numparse=True,
        missingval="-",
    )


def failure_report(results: Sequence[MetricResult], rev: str) -> str:
    """Return the lines that explain each regression, or an empty string when none failed."""
    failed = [result for result in results if result.status == REGRESSED]
    if not failed:
        return ""
    lines = [f"check-metrics: {len(failed)} of {len(results)} metrics failed against {rev}:"]
    for result in failed:
        lines.append(f"  {result.rule.path} {result.rule.metric}: {'; '.join(result.reasons)}")
    lines.append(STALE_HINT)
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Define the options of `house-multitask check-metrics`."""
    parser.add_argument(
        "rev",
        nargs="?",
        default="HEAD",
        help="git revision whose committed metrics are the baseline, as in `dvc metrics diff "
        "REV` (default: HEAD)",
    )
    parser.add_argument(
        "--params",
        type=Path,
        default=Path("params.yaml"),
        help="YAML file with the `gate` section (default: params.yaml)",
    )
    parser.add_argument(
        "--md",
        action="store_true",
        dest="markdown",
        help="print the table in GitHub Markdown, for example to append to $GITHUB_STEP_SUMMARY",
    )
    parser.add_argument(
        "--precision",
        type=int,
        default=DEFAULT_PRECISION,
        metavar="N",
        help=f"round values to N digits after the decimal point (default: {DEFAULT_PRECISION})",
    )


def run(args: argparse.Namespace) -> int:
    """Print the gate's table and return 1 when any metric failed, else 0."""
    rules, floors_path = load_rules(args.params)
    results = compare_revision(rules, args.rev, floors_source=floors_path or "the floors file")

    # The table and the report are the command's output, so they go to stdout, not to logging.
    print(render_table(results, args.rev, markdown=args.markdown, precision=args.precision))
    report = failure_report(results, args.rev)
    if report:
        print()
        print(report)
        return 1
    improved = sum(result.status == IMPROVED for result in results)
    print(
        f"\ncheck-metrics: {len(results)} metrics passed against {args.rev} ({improved} improved)"
    )
    return 0
