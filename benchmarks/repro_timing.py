"""Time `dvc repro` stage by stage in a clean copy of the repository, then a no-op `dvc repro`.

Steps:

1. Copy the repository into a temporary folder: `git clone` of HEAD by default, or with
   `--worktree` the files `git ls-files` lists (tracked, and untracked but not ignored),
   committed to a new git repository. Kaggle's train.csv, which git ignores, is copied to
   `data/raw/`. Nothing of DVC's cache, `data/` outputs or the tuning study comes along.
2. Run `dvc repro --force` there (every stage runs, the tune stage included, which a plain
   `dvc repro` in a clone skips because its metrics file is committed) and time each stage
   from the timestamps of its output lines: a stage lasts from its "Running stage" line to
   the next one, or to the end.
3. Run `dvc repro` `--noop-runs` times more, with everything cached, and report the fastest.
4. Time the imports a stage process pays before it trains (torch, Lightning, Optuna, the
   ablate stage's imports) and the prediction module's, and check that the latter loads
   neither Lightning nor Optuna.

The copy runs the copied sources (PYTHONPATH=<copy>/src) with this Python's environment.
Run from anywhere:

    python benchmarks/repro_timing.py                 # clean clone of HEAD
    python benchmarks/repro_timing.py --worktree      # the uncommitted working tree
    python benchmarks/repro_timing.py --keep /tmp/x   # keep the copy in /tmp/x
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RAW = Path("data/raw/train.csv")
STAGE_LINE = re.compile(r"^Running stage '([^']+)'")
IMPORTS = {
    "torch": "import torch",
    "lightning": "import lightning.pytorch",
    "optuna": "import optuna",
    "ablate stage imports": "import house_multitask.experiment",
}
PREDICT_MODULE = "house_multitask.predict"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--worktree", action="store_true", help="copy the working tree instead of cloning HEAD"
    )
    parser.add_argument(
        "--raw", type=Path, help="Kaggle train.csv (default: data/raw/train.csv of the repo)"
    )
    parser.add_argument("--keep", type=Path, help="make the copy here and keep it")
    parser.add_argument(
        "--noop-runs", type=int, default=3, help="no-op `dvc repro` runs (default 3)"
    )
    parser.add_argument("--import-runs", type=int, default=3, help="runs per import timing")
    return parser.parse_args()


def copy_repository(destination: Path, worktree: bool, raw: Path) -> None:
    """Clone HEAD, or copy the working tree into a new git repository, and add train.csv."""
    if worktree:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            check=True,
            capture_output=True,
        ).stdout.split(b"\0")
        destination.mkdir(parents=True, exist_ok=True)
        for name in filter(None, listed):
            source = REPO / name.decode()
            if source.is_file():
                target = destination / name.decode()
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
        subprocess.run(["git", "add", "-A"], cwd=destination, check=True)
        subprocess.run([*git, "commit", "-qm", "worktree copy"], cwd=destination, check=True)
    else:
        subprocess.run(["git", "clone", "-q", str(REPO), str(destination)], check=True)
    (destination / RAW).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(raw, destination / RAW)


def copy_environment(copy: Path) -> dict[str, str]:
    """Environment in which `python` is this interpreter and imports the copy's sources."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(copy / "src")
    return env


def timed_repro(copy: Path, env: dict[str, str], *args: str) -> tuple[float, list[tuple]]:
    """Run `dvc repro ARGS`; return its wall time and (seconds since start, line) pairs."""
    dvc = str(Path(sys.executable).parent / "dvc")
    start = time.perf_counter()
    process = subprocess.Popen(
        [dvc, "repro", *args],
        cwd=copy,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in process.stdout:
        stamp = time.perf_counter() - start
        lines.append((stamp, line.rstrip("\n")))
        if STAGE_LINE.match(line):
            print(f"[{stamp:6.1f} s] {line.rstrip()}", flush=True)
    process.wait()
    wall = time.perf_counter() - start
    if process.returncode != 0:
        tail = "\n".join(line for _, line in lines[-20:])
        raise SystemExit(f"error: dvc repro {' '.join(args)} failed in {copy}:\n{tail}")
    return wall, lines


def stage_durations(lines: list[tuple[float, str]], wall: float) -> dict[str, float]:
    """Seconds from each "Running stage" line to the next one, or to the end of the run."""
    starts = [(stamp, match[1]) for stamp, line in lines if (match := STAGE_LINE.match(line))]
    ends = [stamp for stamp, _ in starts[1:]] + [wall]
    return {name: end - begin for (begin, name), end in zip(starts, ends, strict=True)}


def import_seconds(code: str, env: dict[str, str], cwd: Path, runs: int) -> float:
    """Fastest wall time of a new interpreter that runs `code`, minus a bare interpreter's."""

    def fastest(snippet: str) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", snippet], env=env, cwd=cwd, check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    return fastest(code) - fastest("pass")


def predict_imports(env: dict[str, str], cwd: Path) -> str:
    """Import the prediction module, if any, and return which of Lightning and Optuna it loads."""
    code = (
        "import importlib.util, sys\n"
        f"if importlib.util.find_spec('{PREDICT_MODULE}') is None: print('absent')\n"
        "else:\n"
        f"    import {PREDICT_MODULE}\n"
        "    loaded = [m for m in ('lightning', 'optuna') if m in sys.modules]\n"
        "    print(', '.join(loaded) or 'neither')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True
    )
    return result.stdout.strip() or f"failed: {result.stderr.strip().splitlines()[-1:]}"


def cpu_description() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.2f}"


def report(
    durations: dict[str, float], wall: float, noop: list[float], imports: dict[str, float]
) -> None:
    print("\n| stage | seconds |\n| --- | ---: |")
    for name, seconds in durations.items():
        print(f"| `{name}` | {seconds:.1f} |")
    print(f"| **whole `dvc repro --force`** | **{wall:.1f}** ({wall / 60:.2f} min) |")

    ablate = {name: s for name, s in durations.items() if name.startswith("ablate@")}
    if ablate:
        print(
            f"\nablate: {len(ablate)} variants, {sum(ablate.values()):.1f} s in all, "
            f"{statistics.median(ablate.values()):.1f} s median per variant"
        )
    runs = ", ".join(f"{seconds:.2f}" for seconds in noop)
    print(f"no-op `dvc repro`: fastest {min(noop):.2f} s of {len(noop)} ({runs})")
    for name, seconds in imports.items():
        print(f"import {name}: {seconds:.2f} s")

    print(f"\ntarget whole repro < 5 min: {'holds' if wall < 300 else 'misses'} ({wall:.0f} s)")
    print(f"target no-op < 1.5 s: {'holds' if min(noop) < 1.5 else 'misses'} ({min(noop):.2f} s)")


def main() -> int:
    args = parse_args()
    raw = args.raw or REPO / RAW
    if not raw.is_file():
        print(f"error: {raw} not found; pass --raw path/to/train.csv", file=sys.stderr)
        return 2

    print(f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {cpu_description()}")
    with tempfile.TemporaryDirectory(prefix="repro-timing-") as scratch:
        copy = args.keep or Path(scratch) / "repo"
        copy_repository(copy, args.worktree, raw)
        env = copy_environment(copy)
        print(f"copy: {copy} ({'working tree' if args.worktree else 'git clone of HEAD'})")

        wall, lines = timed_repro(copy, env, "--force")
        durations = stage_durations(lines, wall)
        noop = [timed_repro(copy, env)[0] for _ in range(args.noop_runs)]
        imports = {
            name: import_seconds(code, env, copy, args.import_runs)
            for name, code in IMPORTS.items()
        }
        loads = predict_imports(env, copy)
        if loads != "absent":
            name = f"{PREDICT_MODULE} (loads of Lightning, Optuna: {loads})"
            imports[name] = import_seconds(f"import {PREDICT_MODULE}", env, copy, args.import_runs)

    report(durations, wall, noop, imports)
    return 0


if __name__ == "__main__":
    sys.exit(main())
