"""Model selection over mclust's 14 models, emkit against R's mclust, side by side.

Run from the repository root::

    python -m benchmarks.bench_mclust
    python -m benchmarks.bench_mclust --data faithful --init hc
    python -m benchmarks.bench_mclust --nested-starts off    # the hc start alone
    python -m benchmarks.bench_mclust --repeats 5    # each side's fastest of 5 runs
    python -m benchmarks.bench_mclust --data all     # every data set of the fixture
    python -m benchmarks.bench_mclust --prior        # prior="default" / priorControl()

For each data set, ``emkit.select_model(X, range(1, 10), "all")`` (mclust's 14
models, K = 1..9) is timed, and, where ``Rscript`` with mclust is found,
``mclustBIC(X, G = 1:9)`` in one R process (timed inside R, start-up excluded).
Printed: seconds of each (wall-clock and CPU) and their ratios (mclust's time over emkit's:
how many times as fast emkit is); each side's choice with its BIC in
mclust's sign (``2 loglik - npar log n``, higher is better); and how many
candidates (model, K) emkit ends more than 0.1 BIC unit below mclust's fit of
the same candidate (a worse optimum), and how many above (candidates below mclust's
spurious maximum, where a usable fit is listed instead, apart). Data: by default
faithful, diabetes, iris and banknote; ``--data all`` adds the other ten of
``tests/reference/mclust_hc.json`` (mclust's thyroid, cross, wreath, chevron,
EuroUnemployment and Baudry et al.'s examples). ``--prior``: both with the default
conjugate prior (``prior="default"``, ``prior = priorControl()``); mclust has none for
VEE, EVE, VVE and EVV and lists NA there, which the counts leave out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from emkit import select_model

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "reference" / "mclust_hc.json"

R_SCRIPT = """
suppressPackageStartupMessages({library(mclust); library(jsonlite)})
X <- as.matrix(read.csv("%(path)s", header = FALSE))
seconds <- Inf
cpu <- Inf
for (r in 1:%(repeats)d) {
  start <- proc.time()
  table <- mclustBIC(X, G = 1:9)
  used <- proc.time() - start
  seconds <- min(seconds, used[["elapsed"]])
  cpu <- min(cpu, used[["user.self"]] + used[["sys.self"]])
}
best <- summary(table, X)
writeLines(toJSON(list(seconds = seconds, cpu = cpu, models = colnames(table),
                       bic = unclass(table)[, ],
                       best_model = best$modelName, best_G = best$G, best_bic = best$bic),
                  digits = I(12), auto_unbox = TRUE, na = "null", matrix = "rowmajor"))
"""


def load(name: str) -> np.ndarray:
    reference = json.loads(FIXTURE.read_text())
    case = next(case for case in reference["cases"] if case["data"] == name)
    return np.asarray(case["X"], dtype=float)


def run_mclust(X: np.ndarray, repeats: int = 1, script: str | None = None) -> dict | None:
    """mclustBIC's table and its fastest time of ``repeats``; None without Rscript or mclust.

    ``script``: :data:`R_SCRIPT` or a variant of it (e.g. fewer models).
    """
    if shutil.which("Rscript") is None:
        return None
    script = R_SCRIPT if script is None else script
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "X.csv"
        np.savetxt(path, X, delimiter=",", fmt="%.17g")
        done = subprocess.run(["Rscript", "-e", script % {"path": path, "repeats": repeats}],
                              capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print("Rscript failed:", done.stderr.strip().splitlines()[-1:])
        return None
    return json.loads(done.stdout)


def run_emkit(X: np.ndarray, init: str, n_init: int, nested: bool | None = None,
              repeats: int = 1, prior: str | None = None):
    """The selection, its fastest wall-clock and CPU seconds of ``repeats`` (all threads)."""
    seconds, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = select_model(X, range(1, 10), "all", init_params=init, n_init=n_init,
                                  random_state=0, nested_starts=nested, prior=prior)
        seconds.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return result, min(seconds), min(cpus)


def compare(name: str, init: str, n_init: int, nested: bool | None = None,
            repeats: int = 1, prior: bool = False) -> None:
    X = load(name)
    result, seconds, cpu = run_emkit(X, init, n_init, nested, repeats,
                                     "default" if prior else None)
    best = result.best_estimator
    starts = ("" if nested is None else f" nested_starts={nested}") + (" prior" if prior else "")
    print(f"{name} ({X.shape[0]} x {X.shape[1]}), emkit init={init} n_init={n_init}{starts}: "
          f"{seconds:.2f} s ({cpu:.2f} s CPU), chose {best.covariance_type},{best.n_components} "
          f"BIC {-best.bic(X):.2f}")
    script = R_SCRIPT.replace("mclustBIC(X, G = 1:9)",
                              "mclustBIC(X, G = 1:9, prior = priorControl())") if prior else None
    mclust = run_mclust(X, repeats, script=script)
    if mclust is None:
        print("  mclust: Rscript or mclust not found")
        return
    print(f"  mclust: {mclust['seconds']:.2f} s ({mclust['cpu']:.2f} s CPU), chose "
          f"{mclust['best_model']},{mclust['best_G']} BIC {mclust['best_bic']:.2f}; "
          f"emkit is {mclust['seconds'] / max(seconds, 1e-9):.1f}x as fast "
          f"(CPU: {mclust['cpu'] / max(cpu, 1e-9):.1f}x, the fairer on a shared machine)")
    report_against_mclust(result, mclust, X, "default" if prior else None)


def report_against_mclust(result, mclust: dict, X: np.ndarray, prior: str | None = None) -> None:
    """Print :func:`against_mclust`'s counts (``prior``: the selection's)."""
    worse, better, replaced, stopped = against_mclust(result, mclust, X, prior)
    print(f"  candidates worse than mclust's: {len(worse)} {' '.join(worse)}")
    if stopped:
        print(f"  degenerate (run stopped at a collapsed component, never chosen), below "
              f"mclust's number: {' '.join(stopped)}")
    print(f"  candidates better than mclust's: {len(better)}")
    if replaced:
        print(f"  below mclust's spurious maximum, a usable fit listed instead: "
              f"{' '.join(replaced)}")


def against_mclust(result, mclust: dict, X: np.ndarray, prior: str | None = None,
                   ) -> tuple[list[str], list[str], list[str], list[str]]:
    """The candidates (model, K) more than 0.1 BIC unit below and above mclust's fits.

    Third: those below where emkit's own fit from mclust's start (without nested
    starts) is degenerate and at mclust's or above, so mclust's number is that
    spurious maximum's, and the table lists a usable fit from a nested start
    instead (as ``tests/test_hc_start.py`` counts them: not worse). Fourth: those
    below that are listed degenerate (their runs stopped at the collapse, below
    mclust's number for the same spurious maximum), not worse optima either.
    mclust's NA (no fit, or no prior for the model) is left out.
    """
    rows = {(row.model, row.n_components): row for row in result.table.itertuples()}
    worse, better, replaced, stopped = [], [], [], []
    for g, row in enumerate(mclust["bic"], start=1):
        for model, theirs in zip(mclust["models"], row, strict=True):
            mine = -rows[(model, g)].bic if (model, g) in rows else np.nan
            if theirs is None or not np.isfinite(mine):
                continue
            label = f"{model},{g} ({mine - theirs:+.1f})"
            if mine < theirs - 0.1:
                candidate = rows[(model, g)]
                if candidate.degenerate:
                    stopped.append(label)
                elif _spurious_at_mclusts_start(X, candidate, theirs, prior):
                    replaced.append(label)
                else:
                    worse.append(label)
            elif mine > theirs + 0.1:
                better.append(label)
    return worse, better, replaced, stopped


def _spurious_at_mclusts_start(X: np.ndarray, row, theirs: float,
                               prior: str | None = None) -> bool:
    if not row.start.endswith(" fit"):  # (degenerate rows are counted apart)
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        own = select_model(X, [row.n_components], [row.model], nested_starts=False,
                           prior=prior).table
    return bool(own["degenerate"].iloc[0] and -own["bic"].iloc[0] >= theirs - 0.1)


def warm_up() -> None:
    """One small selection first: loading the compiled loops (numba's cache, or compiling
    them once after an install) is start-up, as R's start-up is left out of mclust's time."""
    X = load("diabetes")[:40]
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        select_model(X, range(1, 3), "all")
    print(f"first call (warm-up, not counted): {time.perf_counter() - start:.2f} s "
          f"({time.process_time() - cpu:.2f} s CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="faithful,diabetes,iris,banknote",
                        help="comma-separated names from the fixture, or 'all'")
    parser.add_argument("--init", default="hc")
    parser.add_argument("--n-init", type=int, default=1)
    parser.add_argument("--nested-starts", choices=["default", "on", "off"], default="default",
                        help="select_model's nested_starts (default: its own default)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="time each side this many times and keep its fastest run")
    parser.add_argument("--prior", action="store_true",
                        help="prior='default' here, prior = priorControl() in mclust")
    args = parser.parse_args()
    nested = {"default": None, "on": True, "off": False}[args.nested_starts]
    names = args.data.split(",")
    if args.data == "all":
        names = [case["data"] for case in json.loads(FIXTURE.read_text())["cases"]]
    warm_up()
    for name in names:
        compare(name, args.init, args.n_init, nested, args.repeats, args.prior)


if __name__ == "__main__":
    main()
