"""Hidden Markov models: seconds per Baum-Welch iteration against hmmlearn, same start.

Run from the repository root::

    python -m benchmarks.bench_hmm            # the issue's three settings
    python -m benchmarks.bench_hmm --quick    # smaller data, fewer repeats
    python -m benchmarks.bench_hmm --short    # only the two short-sequence settings

Settings (issue 17): 100 sequences x 1000 steps, 8 features, 6 states, full
covariance; and 50 sequences x 100 steps, 1 feature, 2 and 10 states
(diagonal covariance, the HiddenMarkovModels.jl paper's setting). Both
libraries start from the same parameters (``init_params=""``) and run a fixed
number of iterations (``tol=-inf``); the time of the fit is divided by the
iterations. The final log-likelihoods are printed to show that both did the
same work.

Each time is the best of several fits, measured twice: on the wall clock and
as CPU time of the process (``time.process_time``). On a machine shared with
other work, a fit of a few milliseconds is often paused by the scheduler,
and the wall-clock ratio of such short fits then swings by a factor of 3-4
from run to run; the CPU-time ratio does not (both libraries run one thread
on short sequences; on the long setting emkit spreads sequences over
threads, which the CPU time does not credit, so read the wall ratio there).
The short settings run 20 iterations per fit, so that a fit's fixed cost
(validation, building the start) weighs as in a real fit, not five times more.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from emkit.hmm import GaussianHMM

SETTINGS = [  # (sequences, steps, features, states, covariance type)
    (100, 1000, 8, 6, "full"),
    (50, 100, 1, 2, "diag"),
    (50, 100, 1, 10, "diag"),
]


def data(n_seq: int, steps: int, n_features: int, n_states: int, seed: int):
    """Sequences from a sticky chain with well separated Gaussian states."""
    rng = np.random.default_rng(seed)
    trans = np.full((n_states, n_states), 0.1 / max(n_states - 1, 1))
    np.fill_diagonal(trans, 0.9)
    means = rng.normal(0, 3, (n_states, n_features))
    states = np.empty(n_seq * steps, dtype=int)
    for s in range(n_seq):
        z = rng.integers(n_states)
        for t in range(steps):
            states[s * steps + t] = z = rng.choice(n_states, p=trans[z])
    X = means[states] + rng.normal(size=(states.size, n_features))
    return X, [steps] * n_seq, rng


def start(cls, n_states: int, n_features: int, covariance_type: str, rng, X, n_iter: int):
    model = cls(n_states, covariance_type=covariance_type, init_params="", n_iter=n_iter,
                tol=-np.inf)
    model.startprob_ = np.full(n_states, 1.0 / n_states)
    model.transmat_ = np.full((n_states, n_states), 1.0 / n_states)
    model.means_ = X[rng.choice(len(X), n_states, replace=False)].copy()
    cov = np.atleast_2d(np.cov(X.T))
    model.covars_ = (np.tile(cov, (n_states, 1, 1)) if covariance_type == "full"
                     else np.tile(np.diag(cov), (n_states, 1)))
    return model


def per_iteration(cls, X, lengths, setting, n_iter: int, repeats: int, seed: int):
    """Best wall-clock and best CPU seconds per iteration, and the final log-likelihood."""
    _, _, n_features, n_states, covariance_type = setting
    wall, cpu, model = np.inf, np.inf, None
    for _ in range(repeats):
        model = start(cls, n_states, n_features, covariance_type,
                      np.random.default_rng(seed), X, n_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            begin, begin_cpu = time.perf_counter(), time.process_time()
            model.fit(X, lengths)
            wall = min(wall, time.perf_counter() - begin)
            cpu = min(cpu, time.process_time() - begin_cpu)
    return wall / n_iter, cpu / n_iter, model.monitor_.history[-1]


def main(quick: bool, short: bool = False) -> None:
    from hmmlearn.hmm import GaussianHMM as HmmlearnGaussianHMM

    # warm the compiled passes (numba caches them on disk, but not on a first run)
    X, lengths, _ = data(2, 20, 2, 2, 0)
    per_iteration(GaussianHMM, X, lengths, (2, 20, 2, 2, "full"), 1, 1, 0)
    print("Seconds per Baum-Welch iteration, same start (best of repeats): wall clock, "
          "then CPU time")
    print(f"{'setting':>34} {'emkit':>9} {'hmmlearn':>9} {'ratio':>7} {'cpu emkit':>10} "
          f"{'cpu hmml.':>10} {'ratio':>7} {'loglik diff':>12}")
    for setting in SETTINGS[1:] if short else SETTINGS:
        n_seq, steps, n_features, n_states, covariance_type = setting
        if quick:
            n_seq = max(n_seq // 5, 5)
        X, lengths, _ = data(n_seq, steps, n_features, n_states, seed=1)
        long = steps * n_seq >= 50_000
        n_iter, repeats = (5, 3) if long else (20, 5)
        if quick:
            repeats = 2
        ours, our_cpu, our_ll = per_iteration(GaussianHMM, X, lengths, setting, n_iter,
                                              repeats, 2)
        theirs, their_cpu, their_ll = per_iteration(HmmlearnGaussianHMM, X, lengths, setting,
                                                    n_iter, repeats, 2)
        label = f"{n_seq}x{steps}, D={n_features}, K={n_states}, {covariance_type}"
        print(f"{label:>34} {ours:>9.4f} {theirs:>9.4f} {theirs / ours:>6.1f}x "
              f"{our_cpu:>10.4f} {their_cpu:>10.4f} {their_cpu / our_cpu:>6.1f}x "
              f"{abs(our_ll - their_ll):>12.2e}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer repeats")
    parser.add_argument("--short", action="store_true",
                        help="only the short-sequence settings (50 x 100 steps)")
    arguments = parser.parse_args()
    main(arguments.quick, arguments.short)
