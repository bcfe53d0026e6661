"""Mixtures of exponential families: milliseconds per EM iteration, emkit against plain numpy.

Run from the repository root::

    python -m benchmarks.bench_families            # the three cases of issue 20
    python -m benchmarks.bench_families --quick    # a tenth of the rows
    python -m benchmarks.bench_families --threads 1  # numpy's BLAS and emkit on one core

Cases (issue 20): a Bernoulli mixture, 200,000 x 64, K = 10; a Poisson mixture
with vector rates, 200,000 x 16, K = 8; latent classes (Independent of 20
Categoricals with 5 levels), 100,000 rows, K = 6.

Timed, from the same start:

- ``numpy``: the straightforward EM iteration in numpy, two matrix products
  (log densities ``T(X) @ eta^T``, statistics ``R^T @ T(X)``) with a log-sum-exp
  between; the one-hot matrix of the categorical data and the ``log x!`` of the
  Poisson counts are computed once, outside the timed iterations;
- ``emkit old``: emkit's per-component path (forced with
  :func:`emkit.distributions.expfam.per_component`);
- ``emkit``: emkit's exponential-family kernel (what ``MixtureModel`` uses);
- ``pomegranate``: its ``GeneralMixtureModel`` (1.x), where installed (skipped otherwise).

An emkit iteration is what ``MixtureModel.fit`` runs per iteration: the E-step
over chunks of 4096 rows (on threads) and the M-step, over one
``IndexedArraySource`` per timed run, as a fit has one: what the kernel derives
from the rows alone (the packed bits of the Bernoulli rows, ``sum log x!`` of the
Poisson ones) is made in the run's first iteration and read by the others, as
numpy's ``log x!`` and one-hot matrix are made once, outside its timing. Each is timed as the best
of ``--repeats`` runs of ``--iters`` iterations; the final parameters of the
three are compared (largest absolute difference) to show they did the same work.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
from scipy.special import gammaln
from threadpoolctl import threadpool_limits

from emkit.core.engine import expected_stats
from emkit.data.sources import IndexedArraySource
from emkit.distributions import Bernoulli, Categorical, Independent, Poisson, expfam
from emkit.distributions.component_list import ComponentList
from emkit.latent.mixture import Mixture

CHUNK = 4096


# ------------------------------------------------------------------ data


def bernoulli_case(n: int, rng: np.random.Generator):
    d, k = 64, 10
    truth = rng.uniform(0.05, 0.95, (k, d))
    X = (rng.random((n, d)) < truth[rng.integers(k, size=n)]).astype(np.float64)
    start = rng.uniform(0.3, 0.7, (k, d))
    return X, np.full(k, 1.0 / k), start


def poisson_case(n: int, rng: np.random.Generator):
    d, k = 16, 8
    truth = rng.uniform(0.5, 10.0, (k, d))
    X = rng.poisson(truth[rng.integers(k, size=n)]).astype(np.float64)
    start = X[rng.choice(n, k, replace=False)] + 0.5
    return X, np.full(k, 1.0 / k), start


def categorical_case(n: int, rng: np.random.Generator):
    d, k, m = 20, 6, 5
    truth = rng.dirichlet(np.ones(m), size=(k, d))
    z = rng.integers(k, size=n)
    cumulative = truth[z].cumsum(axis=2)
    X = (rng.random((n, d, 1)) > cumulative).sum(axis=2).astype(np.float64)
    X = np.minimum(X, m - 1)
    start = rng.dirichlet(np.full(m, 5.0), size=(k, d))
    return X, np.full(k, 1.0 / k), start


# ---------------------------------------------------------- plain numpy


def _responsibilities(log_dens: np.ndarray) -> tuple[np.ndarray, float]:
    top = log_dens.max(axis=1, keepdims=True)
    resp = np.exp(log_dens - top)
    total = resp.sum(axis=1, keepdims=True)
    resp /= total
    return resp, float((np.log(total) + top).sum())


def numpy_bernoulli(X, weights, p, n_iter):
    for _ in range(n_iter):
        log_q = np.log1p(-p)
        log_dens = X @ (np.log(p) - log_q).T + (log_q.sum(axis=1) + np.log(weights))
        resp, _ = _responsibilities(log_dens)
        counts = resp.sum(axis=0)
        p = (resp.T @ X) / counts[:, None]
        weights = counts / counts.sum()
    return weights, p


def numpy_poisson(X, weights, rate, n_iter, base):
    for _ in range(n_iter):
        log_dens = X @ np.log(rate).T + (np.log(weights) - rate.sum(axis=1))
        resp, _ = _responsibilities(log_dens)
        _ = base  # log x! (precomputed) only shifts the log-likelihood
        counts = resp.sum(axis=0)
        rate = (resp.T @ X) / counts[:, None]
        weights = counts / counts.sum()
    return weights, rate


def numpy_categorical(one_hot, weights, probs, n_iter):
    k, d, m = probs.shape
    for _ in range(n_iter):
        log_dens = one_hot @ np.log(probs).reshape(k, d * m).T + np.log(weights)
        resp, _ = _responsibilities(log_dens)
        counts = resp.sum(axis=0)
        table = (resp.T @ one_hot).reshape(k, d, m)
        probs = table / table.sum(axis=2, keepdims=True)
        weights = counts / counts.sum()
    return weights, probs


# ---------------------------------------------------------------- emkit


def emkit_iterations(model: Mixture, X: np.ndarray, n_iter: int) -> Mixture:
    source = IndexedArraySource(X, CHUNK)
    for _ in range(n_iter):
        model = model.m_step(expected_stats(model, source))
    return model


def emkit_start(case: str, weights, start) -> Mixture:
    if case == "bernoulli":
        parts = [Bernoulli(row) for row in start]
    elif case == "poisson":
        parts = [Poisson(row) for row in start]
    else:
        parts = [Independent([Categorical(level) for level in row]) for row in start]
    return Mixture(weights=weights, components=ComponentList(tuple(parts)))


def emkit_parameters(model: Mixture, case: str) -> np.ndarray:
    components = model.components.distributions
    if case == "bernoulli":
        return np.array([c.p for c in components])
    if case == "poisson":
        return np.array([c.rate for c in components])
    return np.array([[part.probs for part in c.components] for c in components])


# ---------------------------------------------------------- pomegranate


def pomegranate_seconds(case: str, X, weights, start, n_iter: int) -> float | None:
    """Seconds per iteration of pomegranate 1.x's GeneralMixtureModel, or None.

    Written against pomegranate 1.x's documented API; it was not installed where this
    benchmark was written, so this path has not been run.
    """
    if importlib.util.find_spec("pomegranate") is None:
        return None
    import torch
    from pomegranate import distributions as dists
    from pomegranate.gmm import GeneralMixtureModel

    if case == "bernoulli":
        parts = [dists.Bernoulli(probs=row) for row in start]
        data = torch.tensor(X, dtype=torch.float64)
    elif case == "poisson":
        parts = [dists.Poisson(lambdas=row) for row in start]
        data = torch.tensor(X, dtype=torch.float64)
    else:
        parts = [dists.Categorical(probs=row) for row in start]
        data = torch.tensor(X, dtype=torch.int64)
    model = GeneralMixtureModel(parts, priors=weights, max_iter=n_iter, tol=0.0,
                                init="first-k", inertia=0.0)
    begin = time.perf_counter()
    model.fit(data)
    return (time.perf_counter() - begin) / n_iter


# ------------------------------------------------------------------ run


def alternating(funcs: dict, repeats: int) -> tuple[dict, dict, dict]:
    """Best wall and CPU seconds and last result of each function, run in turn.

    Each run starts after a short pause: OpenBLAS threads keep spinning for a while
    after a multi-threaded product and would take a core from the next run. CPU
    time (all threads of the process) is less moved by other load on a shared
    machine; on one thread it is the wall time of a quiet machine.
    """
    wall, cpu = dict.fromkeys(funcs, np.inf), dict.fromkeys(funcs, np.inf)
    results: dict = {}
    for _ in range(repeats):
        for name, func in funcs.items():
            time.sleep(0.3)
            begin, begin_cpu = time.perf_counter(), time.process_time()
            results[name] = func()
            cpu[name] = min(cpu[name], time.process_time() - begin_cpu)
            wall[name] = min(wall[name], time.perf_counter() - begin)
    return wall, cpu, results


def run_case(case: str, n: int, n_iter: int, repeats: int, old_iter: int) -> None:
    rng = np.random.default_rng(20)
    make = {"bernoulli": bernoulli_case, "poisson": poisson_case,
            "categorical": categorical_case}[case]
    X, weights, start = make(n, rng)
    if case == "bernoulli":
        run_numpy = lambda it: numpy_bernoulli(X, weights, start, it)  # noqa: E731
    elif case == "poisson":
        base = gammaln(X + 1).sum(axis=1)
        run_numpy = lambda it: numpy_poisson(X, weights, start, it, base)  # noqa: E731
    else:
        one_hot = (X[:, :, None] == np.arange(start.shape[2])).reshape(n, -1).astype(np.float64)
        run_numpy = lambda it: numpy_categorical(one_hot, weights, start, it)  # noqa: E731
    model = emkit_start(case, weights, start)
    emkit_iterations(model, X[:CHUNK], 1)  # compile the pass (cached on disk) before timing

    wall, cpu, results = alternating({
        "numpy": lambda: run_numpy(n_iter),
        "emkit": lambda: emkit_iterations(model, X, n_iter),
    }, repeats)
    numpy_params, fitted = results["numpy"][1], results["emkit"]
    with expfam.per_component():
        old = alternating({"emkit old": lambda: emkit_iterations(model, X, old_iter)}, 1)
        old_fitted = old[2]["emkit old"]
    same_start = fitted if old_iter == n_iter else emkit_iterations(model, X, old_iter)
    try:
        pomegranate_s = pomegranate_seconds(case, X, weights, start, n_iter)
    except Exception as error:  # written against pomegranate 1.x, not run here
        print(f"  pomegranate failed ({type(error).__name__}: {error}); skipped")
        pomegranate_s = None

    per = {name: wall[name] / n_iter for name in ("numpy", "emkit")}
    per_cpu = {name: cpu[name] / n_iter for name in ("numpy", "emkit")}
    per["emkit old"], per_cpu["emkit old"] = old[0]["emkit old"] / old_iter, np.nan
    new_params = emkit_parameters(fitted, case)
    print(f"\n{case}: {X.shape[0]} x {X.shape[1]}, K = {len(weights)} "
          f"({n_iter} iterations, best of {repeats}), ms per iteration (wall, CPU)")
    for name in ("numpy", "emkit old", "emkit"):
        print(f"  {name:12s} {1000 * per[name]:9.1f} {1000 * per_cpu[name]:9.1f}")
    if pomegranate_s is None:
        print("  pomegranate  not installed (skipped)")
    else:
        print(f"  pomegranate  {1000 * pomegranate_s:9.1f}")
    print(f"  numpy / emkit = {per['numpy'] / per['emkit']:.2f}x wall, "
          f"{per_cpu['numpy'] / per_cpu['emkit']:.2f}x CPU   "
          f"emkit old / emkit = {per['emkit old'] / per['emkit']:.1f}x"
          + ("" if pomegranate_s is None
             else f"   pomegranate / emkit = {pomegranate_s / per['emkit']:.1f}x"))
    old_gap = np.abs(emkit_parameters(same_start, case) - emkit_parameters(old_fitted, case))
    print(f"  largest parameter difference: emkit vs numpy "
          f"{np.abs(new_params - numpy_params).max():.2e}, emkit vs emkit old "
          f"{old_gap.max():.2e} (after {old_iter} iterations)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--iters", type=int, default=5, help="EM iterations per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default="bernoulli,poisson,categorical")
    parser.add_argument("--threads", type=int, default=None,
                        help="limit BLAS and emkit's chunk threads (default: all cores)")
    args = parser.parse_args()
    rows = {"bernoulli": 200_000, "poisson": 200_000, "categorical": 100_000}
    # emkit runs as many chunk threads as BLAS may use (emkit.core._parallel).
    with threadpool_limits(args.threads):
        print(f"threads: {args.threads or 'all cores'}")
        for case in args.cases.split(","):
            n = rows[case] // 10 if args.quick else rows[case]
            # The old path is slow: at full size it runs (and is compared after) one iteration.
            run_case(case, n, args.iters, args.repeats, args.iters if args.quick else 1)


if __name__ == "__main__":
    main()
