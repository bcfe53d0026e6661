"""Cost of the compiled EM loop (``small_em.run_dense``) per iteration and per call, per model.

Each model's runs from the hc start, K = 1..9, as a model selection makes them
(``selection._compiled_hc_fit``: ``small_em.start_dense`` on ``initial_resp(X, k,
"hc", None)``; mclust's tolerance 1e-5, 500 iterations at most, the collapse stop
for K > 1), on the small data sets of the mclust fixture. Reported per model:
the iterations of the nine runs, CPU microseconds per iteration of the whole runs
(their time over their iterations) and per call of one-iteration runs (``max_iter=1``:
the fixed cost of a call plus one iteration). CPU time, the fastest of ``--repeats``.

Run: ``PYTHONPATH=src:. python -m benchmarks.bench_small_loop [--data NAME ...]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.bench_mclust import load
from emkit.distributions.gaussian import constrained, small_em
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.estimators.gaussian_mixture import collapse_test
from emkit.estimators.initialization import initial_resp

DATA = ("EuroUnemployment", "faithful", "iris", "banknote")
TOL, MAX_ITER, REG_COVAR = 1e-5, 500, 1e-6
_TYPE_OF = {structure.model: name for name, structure in COVARIANCE_STRUCTURES.items()}


def runs(X: np.ndarray, model: str) -> list[tuple]:
    """The arguments of ``run_dense`` for the hc start of each K (where the start exists)."""
    out = []
    for k in range(1, 10):
        resp = initial_resp(X, k, "hc", None)
        start = small_em.start_dense(model, X, resp, REG_COVAR)
        if start is None:
            continue
        counts = resp.sum(axis=0) + 10 * np.finfo(float).eps
        stop = collapse_test(_TYPE_OF[model]) if k > 1 else None
        out.append(((X, counts / counts.sum(), *start, model, REG_COVAR), stop))
    return out


def cpu_time(calls: list[tuple], max_iter: int, repeats: int, inner: int) -> float:
    """Fastest CPU seconds of one pass over ``calls``."""
    best = np.inf
    for _ in range(repeats):
        began = time.process_time()
        for _ in range(inner):
            for args, stop in calls:
                small_em.run_dense(*args, tol=TOL, max_iter=max_iter, stop_collapsed=stop)
        best = min(best, (time.process_time() - began) / inner)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", default=list(DATA))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for name in args.data:
        X = np.ascontiguousarray(load(name))
        print(f"{name} {X.shape[0]} x {X.shape[1]}")
        print(f"  {'model':5} {'iters':>6} {'us/iter':>8} {'us/call':>8} {'ms':>7}")
        all_time = all_iters = 0.0
        for model in constrained.MODEL_NAMES:
            calls = runs(X, model)
            if not calls:
                continue
            for args_, stop in calls[:1]:  # compile
                small_em.run_dense(*args_, tol=TOL, max_iter=MAX_ITER, stop_collapsed=stop)
            iters = sum(
                small_em.run_dense(*a, tol=TOL, max_iter=MAX_ITER, stop_collapsed=s).n_iter
                for a, s in calls)
            inner = max(1, int(2000 / max(iters, 1)))
            whole = cpu_time(calls, MAX_ITER, args.repeats, inner)
            one = cpu_time(calls, 1, args.repeats, 20)
            all_time += whole
            all_iters += iters
            print(f"  {model:5} {iters:6d} {1e6 * whole / iters:8.2f} "
                  f"{1e6 * one / len(calls):8.2f} {1e3 * whole:7.2f}")
        print(f"  {'all':5} {int(all_iters):6d} {1e6 * all_time / all_iters:8.2f} "
              f"{'':8} {1e3 * all_time:7.2f}")


if __name__ == "__main__":
    main()
