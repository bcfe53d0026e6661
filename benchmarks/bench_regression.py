"""EM iteration speed of emkit's RegressionMixture against R's flexmix, from the same start.

Run from the repository root::

    python -m benchmarks.bench_regression            # 1,000,000 rows x 10 features, K = 3
    python -m benchmarks.bench_regression --quick    # 100,000 rows
    python -m benchmarks.bench_regression --family poisson

Both libraries fit the same rows (a mixture of three regressions, written to a
raw float64 file that R reads with ``readBin``) from the same memberships (the
true labels, flexmix's ``cluster=``, emkit's ``init_resp``). Seconds per
iteration are ``(t(1 + m) - t(1)) / m``: the time of a fit with ``1 + m``
iterations less that of a fit with one, so reading, setting up and the first
M-step cancel. flexmix runs with ``tolerance = 0`` (every iteration runs) and
``minprior = 0``; emkit with ``tol=0``. flexmix is timed inside R
(``system.time``), so R's start-up is not counted. Without ``Rscript`` and
flexmix only emkit's times are printed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from emkit import RegressionMixture

R_SCRIPT = r"""
suppressPackageStartupMessages(library(flexmix))
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[2]); p <- as.integer(args[3]); family <- args[4]
extra <- as.integer(args[5])
raw <- readBin(args[1], "double", n = n * (p + 2))
m <- matrix(raw, nrow = n, byrow = TRUE)
data <- data.frame(y = m[, 1], m[, 3:(p + 2)])
cluster <- as.integer(m[, 2]) + 1L
formula <- as.formula(paste("y ~", paste(names(data)[-1], collapse = " + ")))
timed <- function(iterations) {
  control <- list(iter.max = iterations, tolerance = 0, minprior = 0)
  system.time(flexmix(formula, data = data, k = max(cluster), cluster = cluster,
                      model = FLXMRglm(family = family), control = control))[["elapsed"]]
}
one <- timed(1)
more <- timed(1 + extra)
cat(sprintf("%.6f\n", (more - one) / extra))
"""


def make_data(n: int, p: int, k: int, family: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    labels = rng.integers(k, size=n)
    coef = rng.normal(scale=0.3 if family == "poisson" else 2.0, size=(k, p))
    intercept = np.arange(k, dtype=float) * (0.5 if family == "poisson" else 3.0)
    eta = intercept[labels] + np.einsum("ij,ij->i", X, coef[labels])
    y = rng.poisson(np.exp(eta)).astype(float) if family == "poisson" else eta + rng.normal(
        size=n)
    return X, y, labels


def emkit_seconds_per_iteration(X, y, labels, family: str, extra: int, repeats: int) -> float:
    def timed(iterations: int) -> float:
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tol=0 never converges, by design
                RegressionMixture(labels.max() + 1, family=family, tol=0,
                                  max_iter=iterations).fit(X, y, init_resp=labels)
            best = min(best, time.perf_counter() - start)
        return best

    return (timed(1 + extra) - timed(1)) / extra


def flexmix_seconds_per_iteration(X, y, labels, family: str, extra: int) -> float | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "rows.bin"
        script = Path(folder) / "bench.R"
        np.column_stack([y, labels, X]).astype("<f8").tofile(data)
        script.write_text(R_SCRIPT)
        run = subprocess.run(
            [rscript, str(script), str(data), str(len(y)), str(X.shape[1]), family, str(extra)],
            capture_output=True, text=True, check=False,
        )
    if run.returncode != 0:
        print(f"flexmix failed: {run.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return float(run.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    parser.add_argument("--family", choices=["gaussian", "poisson"], default="gaussian")
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--components", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=5, help="iterations timed (m)")
    parser.add_argument("--repeats", type=int, default=2, help="emkit: best of this many")
    args = parser.parse_args(argv)
    n = 100_000 if args.quick else 1_000_000
    X, y, labels = make_data(n, args.features, args.components, args.family)
    ours = emkit_seconds_per_iteration(X, y, labels, args.family, args.iterations, args.repeats)
    theirs = flexmix_seconds_per_iteration(X, y, labels, args.family, args.iterations)
    print(f"{args.family}: {n:,} rows x {args.features} features, {args.components} components")
    print(f"  emkit    {ours:8.4f} s/iteration")
    if theirs is None:
        print("  flexmix  (Rscript with flexmix not found)")
    else:
        print(f"  flexmix  {theirs:8.4f} s/iteration")
        print(f"  flexmix / emkit = {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()
