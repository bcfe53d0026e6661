"""Geometric: independent counts of failures before the first success."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import xlog1py

from emkit.distributions._base import (
    Distribution,
    WeightedSums,
    check_support,
    not_integer,
    ratio,
    register,
    sum_observed,
    vector_parameter,
    weighted_sums,
)


@register
@dataclass(frozen=True, eq=False)
class Geometric(Distribution):
    """Independent counts, column ``j`` the failures before a success of probability ``p[j]``.

    ``P(X = x) = p (1 - p)^x`` for ``x = 0, 1, 2, ...``: mean ``(1 - p) / p``.

    Parameters
    ----------
    p : float or array of shape (n_features,)
        Success probabilities in (0, 1]; a single number means one column.

    The M-step is ``p = W / (W + T)`` per column, with ``W`` the summed weights
    and ``T`` the weighted sum of counts (one over one plus the weighted mean).

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions import Geometric
    >>> Geometric(0.5).fit(np.array([[0], [1], [5]])).p  # mean 2: p = 1 / 3
    array([0.33333333])
    """

    p: np.ndarray

    def __post_init__(self) -> None:
        p = vector_parameter(self.p, "p", 0.0, 1.0)
        if (p == 0.0).any():
            raise ValueError("p must be above 0 (a geometric count needs a chance of success)")
        object.__setattr__(self, "p", p)

    @property
    def n_features(self) -> int:
        return self.p.size

    @property
    def n_parameters(self) -> int:
        return self.p.size

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        # xlog1py: 0 * log(0) = 0, so p = 1 gives mass 1 at x = 0.
        return sum_observed(np.log(self.p) + xlog1py(X, -self.p))

    def stats(self, X: np.ndarray, weights: np.ndarray) -> WeightedSums:
        return weighted_sums(X, weights)

    def from_stats(self, stats: WeightedSums) -> Geometric:
        return replace(self, p=ratio(stats.weight, stats.weight + stats.total, self.p))

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        # numpy counts trials up to the first success (support 1, 2, ...).
        trials = rng.geometric(self.p, size=(n_samples, self.p.size))
        return (trials - 1).astype(np.float64)

    def check_data(self, X: np.ndarray, first_column: int = 0) -> None:
        bad = not_integer(X) | (X < 0)
        check_support(X, bad, first_column, "geometric counts must be non-negative integers")
