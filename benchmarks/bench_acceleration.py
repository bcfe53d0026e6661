"""Passes over the data and wall time to reach the plain-EM optimum, plain vs SQUAREM.

Run from the repository root::

    python -m benchmarks.bench_acceleration
    python -m benchmarks.bench_acceleration --cases overlap-full,faithful-3

Each case fits ``emkit.GaussianMixture`` twice from the same initialisation
(same ``random_state``) with ``tol=1e-10``: plain EM, then ``accelerate=True``.
The target is the plain run's final average log-likelihood ``L``; the
accelerated run "reaches" it at the first pass whose reported log-likelihood is
at least ``L - 1e-8 |L|``. Passes are E-steps (``n_iter_`` counts them alike for
both); seconds are wall time from the start of ``fit`` to that pass, recorded
by the ``callback``, so the accelerated run's extra M-steps and extrapolations
are included. Runs alternate in this one process so that load on the machine
affects both alike.

Not covered: a Poisson mixture (``MixtureModel`` is not on this branch).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from emkit import GaussianMixture
from emkit.datasets import load_faithful

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


@dataclass(frozen=True)
class Case:
    """A data set and the mixture fitted to it."""

    name: str
    data: Callable[[], np.ndarray]
    n_components: int
    covariance_type: str


CASES = [
    Case("overlap-full", _overlapping, 3, "full"),
    Case("overlap-diag", _overlapping, 3, "diag"),
    Case("faithful-2", load_faithful, 2, "full"),
    Case("faithful-3", load_faithful, 3, "full"),
    Case("10d-8c-full", _ten_d, 8, "full"),
    Case("10d-8c-diag", _ten_d, 8, "diag"),
]


@dataclass
class Run:
    """One fit: per-pass reported log-likelihood and elapsed seconds."""

    values: list[float]
    seconds: list[float]
    converged: bool

    def reach(self, target: float) -> tuple[int, float]:
        """Passes and seconds to the first value within the relative gap of ``target``."""
        threshold = target - RELATIVE_GAP * abs(target)
        for index, value in enumerate(self.values):
            if value >= threshold:
                return index + 1, self.seconds[index]
        return -1, float("nan")


def _fit(case: Case, X: np.ndarray, accelerate: bool, max_iter: int) -> Run:
    values: list[float] = []
    seconds: list[float] = []
    start = time.perf_counter()

    def record(iteration: int, lower_bound: float, change: float, model: object) -> None:
        values.append(lower_bound)
        seconds.append(time.perf_counter() - start)

    gm = GaussianMixture(
        case.n_components, covariance_type=case.covariance_type, tol=1e-10,
        max_iter=max_iter, random_state=1, accelerate=accelerate, callback=record,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    return Run(values, seconds, gm.converged_)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--max-iter", type=int, default=5000)
    args = parser.parse_args(argv)
    chosen = set(args.cases.split(",")) if args.cases else {c.name for c in CASES}
    header = (f"{'case':<14}{'plain passes':>13}{'accel passes':>13}{'ratio':>7}"
              f"{'plain s':>9}{'accel s':>9}{'ratio':>7}  {'plain L':>18}  {'accel best L':>18}")
    print(header)
    for case in CASES:
        if case.name not in chosen:
            continue
        X = case.data()
        plain = _fit(case, X, accelerate=False, max_iter=args.max_iter)
        fast = _fit(case, X, accelerate=True, max_iter=args.max_iter)
        target = plain.values[-1]
        passes, seconds = fast.reach(target)
        note = "" if plain.converged else "  (plain EM did not converge)"
        print(
            f"{case.name:<14}{len(plain.values):>13}{passes:>13}"
            f"{len(plain.values) / passes:>7.1f}{plain.seconds[-1]:>9.3f}{seconds:>9.3f}"
            f"{plain.seconds[-1] / seconds:>7.1f}  {target:>18.12f}  {max(fast.values):>18.12f}"
            f"{note}"
        )
    print("Poisson mixture: not measured (MixtureModel is not on this branch).")


if __name__ == "__main__":
    main()
