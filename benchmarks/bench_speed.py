"""EM iteration speed of emkit against scikit-learn, from the same initialisation.

Run from the repository root::

    python -m benchmarks.bench_speed            # all cases
    python -m benchmarks.bench_speed --quick    # smaller sizes
    python -m benchmarks.bench_speed --cases M,S
    python -m benchmarks.bench_speed --single-thread   # both on one core

Both libraries start from identical weights, means and precisions (one
scikit-learn iteration from k-means on a subsample), run the same number of
iterations with ``tol=0``, and are timed alternately in this one process, so
that other load on the machine affects both alike. Seconds per iteration are
a whole ``fit`` (including its final E-step) divided by ``max_iter``, the best
of ``--repeats`` runs, each after a pause and 0.3 s of warm-up fits on a tenth
of the rows (see :func:`timed_fit`). The parameter difference is the largest relative
difference over weights, means and covariances. Peak memory is the largest
traced allocation (``tracemalloc``) during one separate fit of each.

GFLOP/s counts the floating-point operations of emkit's matrix products per
iteration (see :func:`product_flops`: both products over the quadratic
features, or the per-component products of the direct form) divided by
emkit's seconds per iteration; ``%peak`` relates it to this machine's
matrix-multiply peak, measured first in this process (a large square product
of the case's dtype, all threads).

``--single-thread`` runs both under ``threadpool_limits(1)`` (scikit-learn's
BLAS on one thread; emkit then runs its chunks serially too): a comparison of
the work each does, less sensitive to other load on a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from threadpoolctl import threadpool_limits

# Measure this checkout's emkit, even where another copy is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import emkit
from emkit import GaussianMixture
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.distributions.gaussian.quadratic import uses_expansion


@dataclass(frozen=True)
class Case:
    """One benchmark configuration."""

    name: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str = "full"
    dtype: type = np.float64
    max_iter: int = 5
    mixing: float = 1.0


CASES = {
    "M": Case("M", 200_000, 16, 8),
    "L": Case("L", 1_000_000, 16, 16, max_iter=3),
    "W": Case("W", 50_000, 64, 8),
    "S": Case("S", 100_000, 2, 3, max_iter=20),
    "M-diag": Case("M-diag", 200_000, 16, 8, "diag"),
    "M-spherical": Case("M-spherical", 200_000, 16, 8, "spherical"),
    "M-tied": Case("M-tied", 200_000, 16, 8, "tied"),
    "M-f32": Case("M-f32", 200_000, 16, 8, dtype=np.float32),
    # Well-conditioned covariances: the float32 features are accurate enough
    # (in M-f32 some components are nearly singular and are expanded in float64).
    "M-f32-wc": Case("M-f32-wc", 200_000, 16, 8, dtype=np.float32, mixing=0.25),
}


def make_data(case: Case, scale: float, seed: int = 0) -> np.ndarray:
    """Rows from correlated Gaussian blobs (centres ~ N(0, 4^2)).

    Each blob is ``I + mixing * G / sqrt(D)`` applied to standard normal noise,
    ``G`` standard normal: with ``mixing=1`` some covariances are nearly
    singular, with smaller values all are well conditioned.
    """
    rng = np.random.default_rng(seed)
    n = max(int(case.n_samples * scale), 50 * case.n_components)
    d, k = case.n_features, case.n_components
    centres = rng.normal(scale=4.0, size=(k, d))
    labels = rng.integers(k, size=n)
    mixing = case.mixing * rng.normal(size=(k, d, d)) / np.sqrt(d) + np.eye(d)
    X = centres[labels] + np.einsum("nd,nde->ne", rng.normal(size=(n, d)), mixing[labels])
    return X.astype(case.dtype)


def common_start(X: np.ndarray, case: Case) -> dict:
    """Initial parameters both libraries start from."""
    subset = X[: min(len(X), 20_000)]
    ref = SkGaussianMixture(
        case.n_components, covariance_type=case.covariance_type, max_iter=1, random_state=0
    ).fit(subset)
    return {
        "weights_init": ref.weights_,
        "means_init": ref.means_,
        "precisions_init": ref.precisions_,
    }


_SETTLE_SECONDS = 0.5
_WARM_SECONDS = 0.3


def timed_fit(estimator_type, params: dict, X: np.ndarray) -> tuple[float, object]:
    """Seconds of one ``fit`` of ``estimator_type(**params)`` on ``X``, settled and warm."""
    # OpenBLAS threads busy-wait for a while after a multi-threaded product:
    # without a pause, the fit timed after scikit-learn's shared the cores with
    # its idle-spinning threads (M measured 16.4x without, 20.8x with it).
    time.sleep(_SETTLE_SECONDS)
    # After the pause the cores are slow for a few hundred milliseconds (this
    # virtual machine: M float32 15.4 ms/it right after a 0.5 s sleep, 11.7
    # after 0.3 s of warm-up fits, 12.2 back to back). A short fit feels it,
    # a long one hardly: both libraries fit a tenth of the rows for a while
    # before their timed fit, so that both are timed in the steady state.
    warm_rows = X[: max(X.shape[0] // 10, 5000)]
    start = time.perf_counter()
    while time.perf_counter() - start < _WARM_SECONDS:
        estimator_type(**params).fit(warm_rows)
    estimator = estimator_type(**params)
    return timed(lambda: estimator.fit(X)), estimator


def peak_memory(estimator, X: np.ndarray) -> float:
    """Peak traced allocation in MiB during one fit."""
    tracemalloc.start()
    try:
        estimator.fit(X)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def relative_difference(sk, em) -> float:
    worst = 0.0
    for name in ("weights_", "means_", "covariances_"):
        a, b = getattr(sk, name).astype(np.float64), getattr(em, name).astype(np.float64)
        worst = max(worst, float(np.abs(a - b).max() / np.abs(a).max()))
    return worst


def matmul_peak(dtype: type, size: int = 3000, repeats: int = 5) -> float:
    """This machine's matrix-multiply rate in GFLOP/s: the best of a few square products."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size)).astype(dtype) for _ in range(2))
    a @ b  # warm up the threads
    best = min(timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def product_flops(case: Case, n_samples: int) -> float:
    """Floating-point operations of emkit's matrix products in one EM iteration.

    With the quadratic features (``n_phi`` columns): ``phi @ W`` and
    ``phi^T @ resp``, ``2 n n_phi K`` each. In the direct per-component form:
    ``(x - mu_k) L_k`` and the weighted scatter, ``2 n D^2`` each per component.
    """
    structure = COVARIANCE_STRUCTURES[case.covariance_type]
    d, k = case.n_features, case.n_components
    if uses_expansion(structure, d):
        n_phi = structure.quad_width(d) + d + 1
        return 4.0 * n_samples * n_phi * k
    return 4.0 * n_samples * d * d * k


def run_case(case: Case, scale: float, repeats: int, memory: bool, peaks: dict) -> dict:
    X = make_data(case, scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = dict(
            n_components=case.n_components, covariance_type=case.covariance_type, tol=0,
            max_iter=case.max_iter, **common_start(X, case),
        )
        # Untimed first fits on a few rows: emkit compiles its kernels there
        # (once per dtype; cached on disk after the first run).
        warm_up = {**params, "max_iter": 1}
        SkGaussianMixture(**warm_up).fit(X[:5000])
        GaussianMixture(**warm_up).fit(X[:5000])
        sk_times, em_times = [], []
        for _ in range(repeats):  # alternate, so background load hits both alike
            t, sk = timed_fit(SkGaussianMixture, params, X)
            sk_times.append(t)
            t, em = timed_fit(GaussianMixture, params, X)
            em_times.append(t)
        row = {
            "case": case.name, "n": X.shape[0], "d": case.n_features, "k": case.n_components,
            "cov": case.covariance_type, "dtype": np.dtype(case.dtype).name,
            "sk_s": min(sk_times) / case.max_iter, "em_s": min(em_times) / case.max_iter,
            "diff": relative_difference(sk, em),
        }
        row["gflops"] = product_flops(case, X.shape[0]) / row["em_s"] / 1e9
        row["peak"] = peaks[np.dtype(case.dtype).name]
        if memory:
            short = {**params, "max_iter": 1}
            row["sk_mib"] = peak_memory(SkGaussianMixture(**short), X)
            row["em_mib"] = peak_memory(GaussianMixture(**short), X)
    row["ratio"] = row["sk_s"] / row["em_s"]
    return row


def format_row(row: dict) -> str:
    text = (
        f"{row['case']:<12} {row['n']:>8} {row['d']:>3} {row['k']:>3} {row['cov']:<9} "
        f"{row['dtype']:<7} {row['sk_s']:>10.4f} {row['em_s']:>10.4f} {row['ratio']:>7.1f}x "
        f"{row['diff']:>9.1e} {row['gflops']:>7.1f} {100 * row['gflops'] / row['peak']:>5.1f}%"
    )
    if "sk_mib" in row:
        text += f" {row['sk_mib']:>8.0f} {row['em_mib']:>8.0f}"
    return text


HEADER = (
    f"{'case':<12} {'n':>8} {'d':>3} {'k':>3} {'cov':<9} {'dtype':<7} {'sklearn s/it':>10} "
    f"{'emkit s/it':>10} {'ratio':>8} {'rel.diff':>9} {'GFLOP/s':>7} {'%peak':>6} "
    f"{'sk MiB':>8} {'em MiB':>8}"
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one tenth of the rows")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--repeats", type=int, default=2, help="timed fits per library")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory fits")
    parser.add_argument(
        "--single-thread", action="store_true", help="limit BLAS (and so emkit) to one thread"
    )
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    print(f"emkit from {Path(emkit.__file__).parent}", flush=True)
    with threadpool_limits(limits=1) if args.single_thread else nullcontext():
        peaks = {np.dtype(t).name: matmul_peak(t) for t in (np.float64, np.float32)}
        print("matrix-multiply peak here: " + ", ".join(
            f"{name} {rate:.0f} GFLOP/s" for name, rate in peaks.items()), flush=True)
        print(HEADER, flush=True)
        for name in args.cases.split(","):
            row = run_case(CASES[name.strip()], scale, args.repeats, not args.no_memory, peaks)
            print(format_row(row), flush=True)


if __name__ == "__main__":
    main()
