"""EVE and VVE in 64 dimensions: the orientation solver before and after, side by side.

Run from the repository root::

    python -m benchmarks.bench_orientation
    python -m benchmarks.bench_orientation --max-iter 500 --components 10

On scikit-learn's digits (1797 x 64; raw pixels and standardised), each model is
fitted from the same k-means start with select_model's settings (``tol=1e-5``)
by two orientation solvers: ``mm``, the majorisation steps of Browne &
McNicholas (mclust's; 50 per warm M-step, up to 5000 in the first), and
``rotations``, sweeps of exact pairwise rotations (Flury & Gautschi; 5 per warm
M-step, up to 200 in the first). Printed per fit: iterations, whether it
converged, seconds in all, seconds of the first iteration (the first M-step
starts afresh), median seconds of the others, the final log-likelihood, and
how often it fell (never, for a monotone M-step).
"""

from __future__ import annotations

import argparse
import time
import warnings
from contextlib import contextmanager

import numpy as np
from sklearn.datasets import load_digits

from emkit import GaussianMixture
from emkit.distributions.gaussian import constrained


@contextmanager
def solver(name: str):
    """``rotations`` as shipped; ``mm`` the former solver and its iteration caps."""
    saved = (constrained._orientation_loop, constrained.WARM_INNER_MAX_ITER,
             constrained.ORIENTATION_MAX_SWEEPS)
    if name == "mm":
        constrained._orientation_loop = constrained._mm_orientation_loop
        constrained.WARM_INNER_MAX_ITER = 50
        constrained.ORIENTATION_MAX_SWEEPS = 5000
    try:
        yield
    finally:
        (constrained._orientation_loop, constrained.WARM_INNER_MAX_ITER,
         constrained.ORIENTATION_MAX_SWEEPS) = saved


def fit(X: np.ndarray, model: str, k: int, max_iter: int) -> dict:
    stamps: list[float] = []
    bounds: list[float] = []

    def record(iteration, bound, *rest):
        stamps.append(time.perf_counter())
        bounds.append(bound)

    gm = GaussianMixture(k, covariance_type=model, init_params="kmeans", random_state=0,
                         tol=1e-5, max_iter=max_iter, callback=record)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    seconds = time.perf_counter() - start
    steps = np.diff([start, *stamps])
    return {"iterations": gm.n_iter_, "converged": gm.converged_, "seconds": seconds,
            "first": steps[0], "per_iteration": float(np.median(steps[1:])),
            "loglik": gm.score(X) * len(X),
            "falls": int((np.diff(bounds) < -1e-12 * np.abs(bounds[1:])).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-iter", type=int, default=40)
    parser.add_argument("--components", type=int, default=10)
    parser.add_argument("--models", default="EVE,VVE")
    args = parser.parse_args()
    raw = load_digits().data
    spread = raw.std(axis=0)
    data = {"raw": raw, "standardised": (raw - raw.mean(axis=0)) / np.where(spread > 0, spread, 1)}
    # Compile both solvers before timing.
    for name in ("mm", "rotations"):
        with solver(name):
            fit(raw[:60, :8], "VVE", 2, 2)
            fit(raw[:60, :8], "EVE", 2, 2)
    for label, X in data.items():
        for model in args.models.split(","):
            rows = {}
            for name in ("mm", "rotations"):
                with solver(name):
                    rows[name] = fit(X, model, args.components, args.max_iter)
                r = rows[name]
                print(f"{label} {model} K={args.components} {name:>9}: "
                      f"{r['iterations']} iterations (converged {r['converged']}), "
                      f"{r['seconds']:.1f} s; first "
                      f"{r['first']:.2f} s, then {r['per_iteration'] * 1e3:.0f} ms each; "
                      f"log-likelihood {r['loglik']:.1f}; falls {r['falls']}", flush=True)
            ratio = rows["mm"]["per_iteration"] / rows["rotations"]["per_iteration"]
            print(f"  per iteration mm / rotations: {ratio:.1f}; log-likelihood gained: "
                  f"{rows['rotations']['loglik'] - rows['mm']['loglik']:+.1f}", flush=True)


if __name__ == "__main__":
    main()
