"""Microseconds per EM iteration of the compiled small-data loop, model by model.

Run from the repository root::

    python -m benchmarks.bench_em_iteration
    python -m benchmarks.bench_em_iteration --data diabetes --components 3

For each of mclust's 14 models, the compiled loop
(:mod:`emkit.distributions.gaussian.small_em`) runs a fixed number of iterations
(no convergence test) from mclust's hc start on the data set; printed: the
microseconds per iteration (best of a few repeats after a warm-up) and the
ratio to EII's, whose M-step is nearly free (so its iteration is the E-step's
cost). The log-likelihood reached is printed too, to compare runs of two versions.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.bench_mclust import load
from emkit.distributions.gaussian import constrained, small_em
from emkit.estimators.initialization import mclust_start_labels


def per_iteration(X: np.ndarray, resp: np.ndarray, model: str, iterations: int,
                  repeats: int) -> tuple[float, float]:
    """Seconds per iteration (best of ``repeats``) and the last mean log-likelihood."""
    code = small_em._MODEL_CODES[model]
    status, means, cov, prec = small_em._start(
        X, resp, code, 1e-6, constrained.INNER_TOL, constrained.INNER_MAX_ITER,
        constrained.ORIENTATION_MAX_SWEEPS, small_em._NO_PRIOR)
    if status != small_em._OK:
        return np.nan, np.nan
    weights = resp.sum(axis=0) / len(X)
    args = (X, weights, means, cov, prec, code, 1e-6, -1.0, iterations,
            constrained.INNER_TOL, constrained.INNER_MAX_ITER, constrained.WARM_INNER_MAX_ITER,
            -1, 0.0, 0.0,  # no collapse test
            0.0, small_em._NO_PRIOR)  # no noise component, no prior
    out = small_em._em_loop(*args)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = small_em._em_loop(*args)
        best = min(best, time.perf_counter() - start)
    n_iter = max(int(out[1]), 1)
    return best / n_iter, float(out[3][n_iter - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="banknote,diabetes")
    parser.add_argument("--components", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for name in args.data.split(","):
        X = np.ascontiguousarray(load(name))
        labels = mclust_start_labels(X, args.components)
        resp = np.eye(args.components)[labels]
        print(f"{name} ({X.shape[0]} x {X.shape[1]}), K = {args.components}, "
              f"{args.iterations} iterations from mclust's hc start")
        base = None
        for model in constrained.MODEL_NAMES:
            seconds, log_lik = per_iteration(X, resp, model, args.iterations, args.repeats)
            base = seconds if base is None else base
            print(f"  {model}: {seconds * 1e6:6.1f} us/iteration  ({seconds / base:.1f}x EII)"
                  f"  mean log-likelihood {log_lik:.6f}")


if __name__ == "__main__":
    main()
