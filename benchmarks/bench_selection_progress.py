"""A model selection watched three ways: no hook, ``progress=`` per candidate, ``callback=``.

Run from the repository root::

    python -m benchmarks.bench_selection_progress
    python -m benchmarks.bench_selection_progress --repeats 5 --max-k 5

``emkit fit -k 1-9 --covariance all`` used to pass its progress bar to every
candidate as the per-iteration ``callback``, which keeps the candidates off the
compiled small-data loop (the estimator's engine runs them instead, the same
fits but slower); now it passes ``select_model(progress=...)``, called once per
finished candidate. On Old Faithful (272 x 2) and on two blobs (1000 x 4),
``select_model`` over K = 1..max_k and mclust's 14 models runs with no hook,
with ``progress``, and with a ``callback``; printed: the best of ``repeats``
runs in seconds, each against no hook as a ratio, the hooks' call counts, and
the largest BIC difference from the run without a hook.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from emkit import select_model
from emkit.datasets import load_faithful


def _blobs() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(0, 1, (500, 4)), rng.normal(3, 1.5, (500, 4))])


def _timed(X: np.ndarray, ks: list[int], repeats: int, **hook) -> tuple[float, object, int]:
    calls = [0]

    def count(*args):
        calls[0] += 1

    hooks = {name: count for name in hook}
    best, result = np.inf, None
    for _ in range(repeats):
        calls[0] = 0
        start = time.perf_counter()
        result = select_model(X, ks, "all", **hooks)
        best = min(best, time.perf_counter() - start)
    return best, result, calls[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-k", type=int, default=9)
    args = parser.parse_args()
    ks = list(range(1, args.max_k + 1))
    print(f"{'data':10} {'hook':9} {'seconds':>8} {'ratio':>6} {'calls':>7} {'max |dBIC|':>10}")
    for name, X in (("faithful", load_faithful()), ("blobs", _blobs())):
        select_model(X, [1, 2], "all")  # compile once, outside the timings
        plain, reference, _ = _timed(X, ks, args.repeats)
        rows = [("none", plain, reference, 0)]
        for hook in ("progress", "callback"):
            seconds, result, calls = _timed(X, ks, args.repeats, **{hook: True})
            rows.append((hook, seconds, result, calls))
        for hook, seconds, result, calls in rows:
            key = ["n_components", "model"]
            joined = reference.table.merge(result.table, on=key, suffixes=("", "_hook"))
            gap = float(np.nanmax(np.abs(joined["bic"] - joined["bic_hook"])))
            print(f"{name:10} {hook:9} {seconds:8.3f} {seconds / plain:6.2f} {calls:7d} "
                  f"{gap:10.2g}")


if __name__ == "__main__":
    main()
