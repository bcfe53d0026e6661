"""What standard errors cost next to the fit: curved mclust models and hidden Markov models.

Run from the repository root::

    python -m benchmarks.bench_standard_errors
    python -m benchmarks.bench_standard_errors --rows 4000 --repeats 3

Mixtures: a ``GaussianMixture`` of each curved model (and VVV, the linear
reference whose information needs no chart) on ``--rows`` rows of 5 features
from 3 clusters; seconds of ``fit`` and of ``standard_errors`` (best of
``--repeats``), their ratio, the number of free parameters, and
``standard_errors``' time over VVV's. Hidden Markov models: Poisson (3 states)
and Gaussian (3 states, full, 3 features) on ``--rows`` steps in 4 sequences;
the information there takes ``4 q`` forward-backward passes for ``q`` free
parameters, so its ratio to the fit grows with ``q``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from emkit import GaussianMixture, HiddenMarkovModel
from emkit.distributions import Gaussian, Poisson
from emkit.hmm import GaussianHMM

CURVED = ("VEI", "EVI", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV")


def best_of(repeats, call):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - start)
    return min(times), out


def clusters(rows, rng):
    means = np.array([[0, 0, 0, 0, 0], [4, 1, 0, -2, 1], [-3, 3, 2, 0, -1]], float)
    parts = []
    for c, mean in enumerate(means):
        a = rng.normal(size=(5, 5))
        cov = a @ a.T / 5 + 0.3 * np.eye(5) * (c + 1)
        parts.append(rng.multivariate_normal(mean, cov, rows // 3))
    return np.vstack(parts)


def mixtures(rows, repeats):
    X = clusters(rows, np.random.default_rng(0))
    print(f"GaussianMixture, {len(X)} rows x 5 features, 3 components")
    print(f"{'model':6} {'params':>6} {'fit s':>8} {'se s':>8} {'se/fit':>7} {'se/VVV se':>9}")
    reference = None
    for model in ("VVV", *CURVED):
        gm = GaussianMixture(3, covariance_type=model, tol=1e-8, max_iter=2000, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit, _ = best_of(repeats, lambda gm=gm: gm.fit(X))
        se_time, se = best_of(repeats, lambda gm=gm: gm.standard_errors(X))
        reference = reference or se_time
        print(f"{model:6} {len(se.names):6d} {fit:8.3f} {se_time:8.3f} {se_time / fit:7.2f} "
              f"{se_time / reference:9.2f}")


def hmms(rows, repeats):
    lengths = [rows // 4] * 4
    transmat = [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]]
    truth = HiddenMarkovModel([Poisson(1.0), Poisson(5.0), Poisson(12.0)], transmat=transmat)
    counts, _ = truth.sample(sum(lengths), random_state=0)
    truth = HiddenMarkovModel([Gaussian([0.0, 0.0, 0.0], np.eye(3)),
                               Gaussian([3.0, 1.0, 0.0], 0.5 * np.eye(3)),
                               Gaussian([0.0, 3.0, 2.0], 2.0 * np.eye(3))], transmat=transmat)
    steps, _ = truth.sample(sum(lengths), random_state=1)
    cases = [
        ("Poisson, 3 states", counts, lengths,
         lambda: HiddenMarkovModel([Poisson(2.0), Poisson(4.0), Poisson(9.0)],
                                   max_iter=500, tol=1e-10)),
        ("Gaussian full, 3 states, 3 features", steps, lengths,
         lambda: GaussianHMM(3, covariance_type="full", covars_prior=0.0, n_iter=500,
                             tol=1e-8, random_state=0)),
    ]
    print(f"\nhidden Markov models, {rows} steps in 4 sequences")
    print(f"{'case':38} {'params':>6} {'fit s':>8} {'se s':>8} {'se/fit':>7}")
    for name, X, lens, make in cases:
        model = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit, _ = best_of(repeats, lambda model=model, X=X, lens=lens: model.fit(X, lens))
            se_time, se = best_of(repeats, lambda model=model, X=X, lens=lens:
                                  model.standard_errors(X, lens))
        print(f"{name:38} {len(se.names):6d} {fit:8.3f} {se_time:8.3f} {se_time / fit:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    mixtures(args.rows, args.repeats)
    hmms(args.rows, args.repeats)


if __name__ == "__main__":
    main()
