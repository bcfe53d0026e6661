"""Passes over the data and wall time to reach the plain-EM optimum: plain, SQUAREM, DAAREM.

Run from the repository root::

    python -m benchmarks.bench_acceleration
    python -m benchmarks.bench_acceleration --cases overlap-full,faithful-3
    python -m benchmarks.bench_acceleration --wine-scan   # never below plain EM?

Each case fits ``emkit.GaussianMixture`` (or ``emkit.MixtureModel`` for the
Poisson cases) from the same initialisation (same ``random_state`` or
starting components) with ``tol=1e-10``: plain EM, then ``accelerate=True``
(SQUAREM), then ``accelerate="daarem"``. The target is the plain run's final
average log-likelihood ``L``; an accelerated run "reaches" it at the first pass
whose reported log-likelihood is at least ``L - 1e-8 |L|`` (and the table says
whether it ended below ``L`` by more than that). Passes are E-steps
(``n_iter_`` counts them alike). Seconds: the plain run's whole ``fit``; for
an accelerated run, a ``fit`` stopped after exactly the passes it needed
(``tol=0``), so its extra M-steps and extrapolations are included; each the best
of ``--repeats`` runs, alternating, so that load on the machine affects all.

The ``hasselblad-*`` cases are the SQUAREM package's vignette example (two
Poisson components, counts with frequencies as ``sample_weight``) from the
issue's two starts; for them the target is the optimum itself (total
log-likelihood within 1e-8, R's SQUAREM run to tol 1e-13; every run with
``tol=1e-13``, plain EM's passes being those it ran), and R's own counts
are printed below the table from tests/reference/squarem_hasselblad.json
(column R: R's SQUAREM's EM evaluations to its stop, its passes over the
data, as its objective evaluations are at points it also maps).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import product
from pathlib import Path

import numpy as np

from emkit import GaussianMixture, MixtureModel
from emkit.datasets import load_faithful
from emkit.distributions import Poisson

RELATIVE_GAP = 1e-8
METHODS = (True, "daarem")
HASSELBLAD = Path(__file__).parent.parent / "tests" / "reference" / "squarem_hasselblad.json"


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


def _gaussian(n_components: int, covariance_type: str, seed: int = 1) -> Callable[..., object]:
    def make(**kwargs: object) -> GaussianMixture:
        return GaussianMixture(
            n_components, covariance_type=covariance_type, random_state=seed, **kwargs
        )
    return make


def _breast_cancer() -> np.ndarray:
    """scikit-learn's breast cancer data, columns standardised (the issue's case)."""
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer().data
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _poisson(**kwargs: object) -> MixtureModel:
    return MixtureModel([Poisson(1.0), Poisson(4.0), Poisson(9.0)], **kwargs)


def _hasselblad_reference() -> dict:
    return json.loads(HASSELBLAD.read_text())


def _hasselblad_counts() -> np.ndarray:
    return np.arange(10, dtype=np.float64)[:, None]


def _hasselblad(start: str) -> Callable[..., MixtureModel]:
    def make(**kwargs: object) -> MixtureModel:
        p, rate1, rate2 = _hasselblad_reference()[start]["start"]
        return MixtureModel([Poisson(rate1), Poisson(rate2)], weights=[p, 1 - p], **kwargs)
    return make


@dataclass(frozen=True)
class Case:
    """A data set and the estimator fitted to it (built with the run's keyword arguments)."""

    name: str
    data: Callable[[], np.ndarray]
    estimator: Callable[..., object]
    fit_kwargs: dict = field(default_factory=dict)
    reference: str | None = None  # key of the Hasselblad fixture: its optimum is the target
    tol: float = 1e-10


CASES = [
    Case("overlap-full", _overlapping, _gaussian(3, "full")),
    Case("overlap-diag", _overlapping, _gaussian(3, "diag")),
    Case("faithful-2", load_faithful, _gaussian(2, "full")),
    Case("faithful-3", load_faithful, _gaussian(3, "full")),
    Case("10d-8c-full", _ten_d, _gaussian(8, "full")),
    Case("10d-8c-diag", _ten_d, _gaussian(8, "diag")),
    Case("poisson-3", _poisson_counts, _poisson),
    Case("cancer-4-full", _breast_cancer, _gaussian(4, "full", seed=0)),
    Case("cancer-3-diag", _breast_cancer, _gaussian(3, "diag", seed=0)),
    Case("hasselblad-1", _hasselblad_counts, _hasselblad("vignette_start"),
         {"sample_weight": _hasselblad_reference()["data"]["freq"]}, "vignette_start", 1e-13),
    Case("hasselblad-2", _hasselblad_counts, _hasselblad("second_start"),
         {"sample_weight": _hasselblad_reference()["data"]["freq"]}, "second_start", 1e-13),
]


def _fit(case: Case, X: np.ndarray, **kwargs: object) -> tuple[object, float]:
    """A fitted estimator and the wall seconds its ``fit`` took."""
    model = case.estimator(**kwargs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, **case.fit_kwargs)
    return model, time.perf_counter() - start


def _passes_to_reach(history: np.ndarray, target: float, gap: float) -> int:
    """First pass (1-based) whose reported value is within ``gap`` of ``target``."""
    reached = np.flatnonzero(history >= target - gap)
    return int(reached[0]) + 1 if reached.size else -1


def measure(case: Case, max_iter: int, repeats: int) -> dict[str, object]:
    """Plain and accelerated passes and seconds to the plain optimum, for one case."""
    X = case.data()
    plain, _ = _fit(case, X, tol=case.tol, max_iter=max_iter)
    target = float(plain.history_[-1])
    gap = RELATIVE_GAP * abs(target)
    if case.reference is not None:  # the optimum itself, total log-likelihood within 1e-8
        n = float(np.sum(case.fit_kwargs["sample_weight"]))
        target = _hasselblad_reference()[case.reference]["optimum"]["loglik"] / n
        gap = 1e-8 / n
    fast = {m: _fit(case, X, tol=case.tol, max_iter=max_iter, accelerate=m)[0]
            for m in METHODS}
    passes = {m: _passes_to_reach(f.history_, target, gap) for m, f in fast.items()}
    # Seconds: the best of ``repeats`` runs, alternating plain and accelerated; each
    # accelerated run stopped after exactly the passes it needed (tol=0).
    seconds = {m: np.inf for m in (False, *METHODS)}
    for _ in range(repeats):
        seconds[False] = min(seconds[False],
                             _fit(case, X, tol=case.tol, max_iter=max_iter)[1])
        for m in METHODS:
            budget = passes[m] if passes[m] > 0 else max_iter
            seconds[m] = min(seconds[m], _fit(
                case, X, tol=0.0, max_iter=budget, accelerate=m)[1])
    return {
        "plain_passes": plain.n_iter_,
        "plain_short": _passes_to_reach(plain.history_, target, gap) < 0,
        "plain_converged": plain.converged_, "passes": passes, "seconds": seconds,
        "worse": {m: float(f.history_.max()) < target - gap for m, f in fast.items()},
        "plain_value": target,
    }


WINE_METHODS = {"SQUAREM": True, "DAAREM": "daarem", "R's rules": "reference"}


def _wine_fit(X: np.ndarray, n_components: int, method: object, **kwargs: object) -> object:
    """A GaussianMixture fit; method "reference" is SQUAREM without emkit's safeguards."""
    from emkit.core import acceleration

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method != "reference":
            return GaussianMixture(n_components, accelerate=method, **kwargs).fit(X)
        original = acceleration.squarem
        acceleration.squarem = partial(original, safeguards=False)
        try:
            return GaussianMixture(n_components, accelerate=True, **kwargs).fit(X)
        finally:
            acceleration.squarem = original


def wine_scan() -> None:
    """Runs that end below plain EM from the same start, on scikit-learn's wine data:
    raw and standardised; diag, full, spherical; 2 to 5 components; seeds 0 to 5."""
    from sklearn.datasets import load_wine

    raw = load_wine().data
    data = {"raw": raw, "standardised": (raw - raw.mean(axis=0)) / raw.std(axis=0)}
    passes = dict.fromkeys(["plain", *WINE_METHODS], 0)
    losses: dict[str, list[str]] = {name: [] for name in WINE_METHODS}
    for (scaling, X), covariance_type, k, seed in product(
            data.items(), ("diag", "full", "spherical"), range(2, 6), range(6)):
        kwargs = dict(covariance_type=covariance_type, random_state=seed, tol=1e-10,
                      max_iter=5000)
        plain = _wine_fit(X, k, False, **kwargs)
        passes["plain"] += plain.n_iter_
        for name, method in WINE_METHODS.items():
            fast = _wine_fit(X, k, method, **kwargs)
            passes[name] += fast.n_iter_
            if fast.lower_bound_ < plain.lower_bound_ - RELATIVE_GAP * abs(plain.lower_bound_):
                losses[name].append(f"{scaling} {covariance_type} {k} seed {seed} "
                                    f"({fast.lower_bound_:.6f} < {plain.lower_bound_:.6f})")
    print("wine, 144 runs: passes in all, runs ending below plain EM")
    print(f"  plain EM: {passes['plain']}")
    for name in WINE_METHODS:
        print(f"  {name}: {passes[name]}, {len(losses[name])} lower"
              + "".join(f"\n    {loss}" for loss in losses[name]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--max-iter", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--wine-scan", action="store_true",
                        help="instead: the 144 wine runs, losses against plain EM")
    args = parser.parse_args(argv)
    if args.wine_scan:
        wine_scan()
        return
    chosen = set(args.cases.split(",")) if args.cases else {c.name for c in CASES}
    print(f"{'case':<14}{'plain':>7}{'SQUAREM':>9}{'DAAREM':>8}{'R':>5}   passes to the target;"
          f"{'plain s':>9}{'SQ s':>8}{'DA s':>8}  {'target L':>16}")
    for case in CASES:
        if case.name not in chosen:
            continue
        m = measure(case, args.max_iter, args.repeats)
        notes = [f"{'SQUAREM' if k is True else 'DAAREM'} ended lower"
                 for k, worse in m["worse"].items() if worse]
        if case.reference is not None and m["plain_short"]:
            notes.append("plain EM stopped short of the optimum")
        if not m["plain_converged"]:
            notes.append("plain EM did not converge")
        passes, seconds = m["passes"], m["seconds"]
        r_passes = ("-" if case.reference is None
                    else _hasselblad_reference()[case.reference]["squarem"]["fpevals"])
        print(
            f"{case.name:<14}{m['plain_passes']:>7}{passes[True]:>9}{passes['daarem']:>8}"
            f"{r_passes:>5}{'':>25}{seconds[False]:>9.3f}{seconds[True]:>8.3f}{seconds['daarem']:>8.3f}"
            f"  {m['plain_value']:>16.10f}" + (f"  ({'; '.join(notes)})" if notes else "")
        )
    if chosen & {"hasselblad-1", "hasselblad-2"}:
        reference = _hasselblad_reference()
        print(f"R {reference['R_version']}, SQUAREM {reference['SQUAREM_version']} "
              "(EM evaluations to stop at tol 1e-8; plus log-likelihood evaluations):")
        for name, key in (("hasselblad-1", "vignette_start"), ("hasselblad-2", "second_start")):
            r = reference[key]
            print(f"  {name}: fpiter {r['fpiter']['fpevals']}, squarem "
                  f"{r['squarem']['fpevals']} + {r['squarem']['objfevals']}")


if __name__ == "__main__":
    main()
