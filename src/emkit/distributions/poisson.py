"""Poisson: independent count features."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import gammaln, xlogy

from emkit.distributions._base import (
    Distribution,
    WeightedSums,
    check_support,
    not_integer,
    prior_parameters,
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
        Non-negative finite means; a single number means one column. A rate of
        0 is the point mass at 0 (a fit reaches it on a column of zeros): then
        any positive count is impossible under this component.
    prior : (a, b), optional
        A Gamma(shape a, rate b) prior on each rate (``a >= 1``, ``b >= 0``;
        numbers or arrays of shape (n_features,)): the M-step becomes the maximum
        a posteriori ``(sum_i w_i x_ij + a - 1) / (sum_i w_i + b)``, as if each
        component had seen ``b`` extra rows holding ``a - 1`` counts in all.
        ``a > 1`` keeps every rate positive. Default: no prior (maximum likelihood).

    The M-step is the weighted mean count per column.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions import Poisson
    >>> Poisson(1.0).fit(np.array([[0], [2], [7]])).rate
    array([3.])
    """

    rate: np.ndarray
    prior: Any = None

    def __post_init__(self) -> None:
        rate = vector_parameter(self.rate, "rate", 0.0)
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "prior", prior_parameters(self.prior, "prior", rate.size, (1, 0)))

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
        if self.prior is None:
            return replace(self, rate=ratio(stats.total, stats.weight, self.rate))
        a, b = self.prior
        return replace(self, rate=ratio(stats.total + (a - 1), stats.weight + b, self.rate))

    def log_prior(self) -> float:
        if self.prior is None:
            return 0.0
        a, b = self.prior
        return float(np.sum(xlogy(a - 1, self.rate) - b * self.rate))

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return rng.poisson(self.rate, size=(n_samples, self.rate.size)).astype(np.float64)

    def check_data(self, X: np.ndarray, first_column: int = 0) -> None:
        bad = not_integer(X) | (X < 0)
        check_support(X, bad, first_column, "Poisson counts must be non-negative integers")
