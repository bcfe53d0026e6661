"""Missing data: cost per EM iteration, and imputation error against scikit-learn's imputers.

Run from the repository root::

    python -m benchmarks.bench_missing            # N=100k, D=10, K=5 (a few minutes)
    python -m benchmarks.bench_missing --quick    # N=20k
    python -m benchmarks.bench_missing --scattered  # every row its own pattern

Part 1 times EM iterations on the same clustered data with 0%, 10% and 30% of
the entries missing at random, relative to the complete data. Part 2 hides 20%
of the entries of clustered data and compares the root-mean-square error of the
filled values: emkit's GaussianMixtureImputer against scikit-learn's
IterativeImputer, KNNImputer and SimpleImputer.

``--scattered`` instead times scattered gaps, where nearly every row has its own
pattern: the standardised breast cancer table (569 x 30) with 20% of its cells
missing at random, K=3, full/diag/spherical/tied, per EM iteration relative to
the complete table from the same start.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

from emkit import GaussianMixture, GaussianMixtureImputer


def clustered(n_samples: int, n_features: int, n_components: int, seed: int) -> np.ndarray:
    """Correlated Gaussian clusters, well apart."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_components, n_features))
    mixing = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features)
    labels = rng.integers(n_components, size=n_samples)
    noise = rng.normal(size=(n_samples, n_features))
    return centres[labels] + np.einsum("nd,nde->ne", noise, mixing[labels])


def knock_out(X: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    holed = X.copy()
    holed[np.random.default_rng(seed).random(X.shape) < fraction] = np.nan
    return holed


def seconds_per_iteration(X: np.ndarray, n_components: int, start: GaussianMixture,
                          n_iter: int) -> float:
    model = GaussianMixture(
        n_components, tol=0, max_iter=n_iter, weights_init=start.weights_,
        means_init=start.means_, precisions_init=start.precisions_,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        begin = time.perf_counter()
        model.fit(X)
    return (time.perf_counter() - begin) / n_iter


def time_per_iteration(n_samples: int, n_features: int, n_components: int) -> None:
    X = clustered(n_samples, n_features, n_components, seed=0)
    start = GaussianMixture(n_components, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start.fit(X)
    print(f"Time per EM iteration, N={n_samples}, D={n_features}, K={n_components}, full")
    print(f"{'missing':>8} {'s/iter':>9} {'vs complete':>12} {'patterns':>9}")
    base = None
    for fraction in (0.0, 0.1, 0.3):
        holed = knock_out(X, fraction, seed=1)
        seconds = seconds_per_iteration(holed, n_components, start, n_iter=5)
        base = base or seconds
        patterns = len(np.unique(np.isnan(holed), axis=0))
        print(f"{fraction:>8.0%} {seconds:>9.4f} {seconds / base:>11.2f}x {patterns:>9}")


def scattered_gaps(n_iter: int = 20, repeats: int = 3) -> None:
    """Per-iteration cost of 20% scattered gaps in breast cancer (569 x 30), K=3."""
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer().data
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    holed = knock_out(X, 0.2, seed=0)
    patterns = len(np.unique(np.isnan(holed), axis=0))
    print(f"Scattered gaps: breast cancer {X.shape[0]} x {X.shape[1]}, 20% missing "
          f"({patterns} patterns), K=3, {n_iter} iterations, best of {repeats}")
    print(f"{'covariance':>10} {'complete ms':>12} {'gaps ms':>9} {'ratio':>7}")
    for covariance_type in ("full", "diag", "spherical", "tied"):
        start = GaussianMixture(3, covariance_type=covariance_type, max_iter=1,
                                random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start.fit(X)
        times = []
        for data in (X, holed):
            best = np.inf
            for _ in range(repeats + 1):  # the first one compiles and warms up
                best = min(best, _per_iteration(data, start, covariance_type, n_iter))
            times.append(best)
        print(f"{covariance_type:>10} {times[0] * 1e3:>12.3f} {times[1] * 1e3:>9.3f} "
              f"{times[1] / times[0]:>6.1f}x")


def _per_iteration(X: np.ndarray, start: GaussianMixture, covariance_type: str,
                   n_iter: int) -> float:
    model = GaussianMixture(
        start.n_components, covariance_type=covariance_type, tol=0, max_iter=n_iter,
        weights_init=start.weights_, means_init=start.means_,
        precisions_init=start.precisions_,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        begin = time.perf_counter()
        model.fit(X)
    return (time.perf_counter() - begin) / n_iter


def imputation_error(n_samples: int, n_features: int, n_components: int) -> None:
    X = clustered(n_samples, n_features, n_components, seed=2)
    holed = knock_out(X, 0.2, seed=3)
    hidden = np.isnan(holed)
    imputers = {
        "emkit GaussianMixtureImputer": GaussianMixtureImputer(n_components, random_state=0),
        "sklearn IterativeImputer": IterativeImputer(max_iter=20, random_state=0),
        "sklearn KNNImputer": KNNImputer(n_neighbors=10),
        "sklearn SimpleImputer (mean)": SimpleImputer(),
    }
    print(f"\nImputation RMSE on {hidden.sum()} hidden entries (20%), N={n_samples}, "
          f"D={n_features}, K={n_components} clusters")
    print(f"{'imputer':<30} {'RMSE':>8} {'seconds':>8}")
    for name, imputer in imputers.items():
        begin = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            filled = imputer.fit_transform(holed)
        seconds = time.perf_counter() - begin
        rmse = np.sqrt(np.mean((filled[hidden] - X[hidden]) ** 2))
        print(f"{name:<30} {rmse:>8.4f} {seconds:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data (N=20k)")
    parser.add_argument("--scattered", action="store_true",
                        help="only the scattered-gaps case (breast cancer, 20%% missing)")
    args = parser.parse_args()
    if args.scattered:
        scattered_gaps()
        return
    n_samples = 20_000 if args.quick else 100_000
    time_per_iteration(n_samples, n_features=10, n_components=5)
    imputation_error(min(n_samples, 5_000), n_features=6, n_components=4)


if __name__ == "__main__":
    main()
