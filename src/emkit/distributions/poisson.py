"""Poisson: independent count features."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import gammaln, xlogy

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
class Poisson(Distribution):
    """Independent counts, column ``j`` Poisson with mean ``rate[j]``.

    Parameters
    ----------
    rate : float or array of shape (n_features,)
        Non-negative means; a single number means one column.

    The M-step is the weighted mean count per column.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions import Poisson
    >>> Poisson(1.0).fit(np.array([[0], [2], [7]])).rate
    array([3.])
    """

    rate: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", vector_parameter(self.rate, "rate", 0.0))

    @property
    def n_features(self) -> int:
        return self.rate.size

    @property
    def n_parameters(self) -> int:
        return self.rate.size

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        return sum_observed(xlogy(X, self.rate) - self.rate - gammaln(X + 1))

    def stats(self, X: np.ndarray, weights: np.ndarray) -> WeightedSums:
        return weighted_sums(X, weights)

    def from_stats(self, stats: WeightedSums) -> Poisson:
        return replace(self, rate=ratio(stats.total, stats.weight, self.rate))

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return rng.poisson(self.rate, size=(n_samples, self.rate.size)).astype(np.float64)

    def check_data(self, X: np.ndarray, first_column: int = 0) -> None:
        bad = not_integer(X) | (X < 0)
        check_support(X, bad, first_column, "Poisson counts must be non-negative integers")
