"""Passes over the data and wall time to reach the plain-EM optimum, plain vs SQUAREM.

Run from the repository root::

    python -m benchmarks.bench_acceleration
    python -m benchmarks.bench_acceleration --cases overlap-full,faithful-3

Each case fits ``emkit.GaussianMixture`` (or ``emkit.MixtureModel`` for the
Poisson case) twice from the same initialisation (same ``random_state`` or
starting components) with ``tol=1e-10``: plain EM, then ``accelerate=True``.
The target is the plain run's final average log-likelihood ``L``; the
accelerated run "reaches" it at the first pass whose reported log-likelihood is
at least ``L - 1e-8 |L|``. Passes are E-steps (``n_iter_`` counts them alike for
both). Seconds: the plain run's whole ``fit``; for the accelerated run, a
``fit`` stopped after exactly the passes it needed (``tol=0``), so its extra
M-steps and extrapolations are included; each the best of ``--repeats`` runs,
plain and accelerated alternating, so that load on the machine affects both.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from emkit import GaussianMixture, MixtureModel
from emkit.datasets import load_faithful
from emkit.distributions import Poisson

RELATIVE_GAP = 1e-8


def _overlapping(seed: int = 0, n: int = 250) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([
        rng.normal(0, 1, (n, 2)),
        rng.normal([1.5, 0.5], 1, (n, 2)),
        rng.normal([0.5, 2], 1.2, (n, 2)),
    ])


def _ten_d(seed: int = 0, n: int = 4000) -> np.ndarray:
    """8 correlated Gaussian blobs in 10-D, close enough to overlap."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.2, size=(8, 10))
    labels = rng.integers(8, size=n)
    mixing = rng.normal(size=(8, 10, 10)) / np.sqrt(10) + np.eye(10)
    return centres[labels] + np.einsum("nd,nde->ne", rng.normal(size=(n, 10)), mixing[labels])


def _poisson_counts(seed: int = 0) -> np.ndarray:
    """Counts from three overlapping Poisson components (means 3, 5, 8)."""
    rng = np.random.default_rng(seed)
    counts = [rng.poisson(3, 400), rng.poisson(5, 400), rng.poisson(8, 200)]
    return np.concatenate(counts).astype(np.float64)[:, None]


def _gaussian(n_components: int, covariance_type: str) -> Callable[..., object]:
    def make(**kwargs: object) -> GaussianMixture:
        return GaussianMixture(
            n_components, covariance_type=covariance_type, random_state=1, **kwargs
        )
    return make


def _poisson(**kwargs: object) -> MixtureModel:
    return MixtureModel([Poisson(1.0), Poisson(4.0), Poisson(9.0)], **kwargs)


@dataclass(frozen=True)
class Case:
    """A data set and the estimator fitted to it (built with the run's keyword arguments)."""

    name: str
    data: Callable[[], np.ndarray]
    estimator: Callable[..., object]


CASES = [
    Case("overlap-full", _overlapping, _gaussian(3, "full")),
    Case("overlap-diag", _overlapping, _gaussian(3, "diag")),
    Case("faithful-2", load_faithful, _gaussian(2, "full")),
    Case("faithful-3", load_faithful, _gaussian(3, "full")),
    Case("10d-8c-full", _ten_d, _gaussian(8, "full")),
    Case("10d-8c-diag", _ten_d, _gaussian(8, "diag")),
    Case("poisson-3", _poisson_counts, _poisson),
]


def _fit(case: Case, X: np.ndarray, **kwargs: object) -> tuple[object, float]:
    """A fitted estimator and the wall seconds its ``fit`` took."""
    model = case.estimator(**kwargs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    return model, time.perf_counter() - start


def _passes_to_reach(history: np.ndarray, target: float) -> int:
    """First pass (1-based) whose reported value is within the relative gap of ``target``."""
    reached = np.flatnonzero(history >= target - RELATIVE_GAP * abs(target))
    return int(reached[0]) + 1 if reached.size else -1


def measure(case: Case, max_iter: int, repeats: int) -> dict[str, float]:
    """Plain and accelerated passes and seconds to the plain optimum, for one case."""
    X = case.data()
    plain, _ = _fit(case, X, tol=1e-10, max_iter=max_iter)
    fast, _ = _fit(case, X, tol=1e-10, max_iter=max_iter, accelerate=True)
    target = float(plain.history_[-1])
    passes = _passes_to_reach(fast.history_, target)
    # Seconds: the best of ``repeats`` runs, alternating plain and accelerated; the
    # accelerated run stopped after exactly the passes it needed (tol=0).
    plain_seconds, fast_seconds = np.inf, np.inf
    for _ in range(repeats):
        plain_seconds = min(plain_seconds, _fit(case, X, tol=1e-10, max_iter=max_iter)[1])
        fast_seconds = min(fast_seconds, _fit(
            case, X, tol=0.0, max_iter=max(passes, 1), accelerate=True)[1])
    return {
        "plain_passes": plain.n_iter_, "fast_passes": passes, "plain_seconds": plain_seconds,
        "fast_seconds": fast_seconds, "plain_value": target,
        "fast_value": float(fast.history_.max()), "plain_converged": plain.converged_,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--max-iter", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    args = parser.parse_args(argv)
    chosen = set(args.cases.split(",")) if args.cases else {c.name for c in CASES}
    header = (f"{'case':<14}{'plain passes':>13}{'accel passes':>13}{'ratio':>7}"
              f"{'plain s':>9}{'accel s':>9}{'ratio':>7}  {'plain L':>18}  {'accel best L':>18}")
    print(header)
    for case in CASES:
        if case.name not in chosen:
            continue
        m = measure(case, args.max_iter, args.repeats)
        note = "" if m["plain_converged"] else "  (plain EM did not converge)"
        print(
            f"{case.name:<14}{m['plain_passes']:>13}{m['fast_passes']:>13}"
            f"{m['plain_passes'] / m['fast_passes']:>7.1f}{m['plain_seconds']:>9.3f}"
            f"{m['fast_seconds']:>9.3f}{m['plain_seconds'] / m['fast_seconds']:>7.1f}"
            f"  {m['plain_value']:>18.12f}  {m['fast_value']:>18.12f}{note}"
        )

if __name__ == "__main__":
    main()
