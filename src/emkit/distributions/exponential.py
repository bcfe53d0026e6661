"""Exponential: independent non-negative waiting times."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import xlogy

from emkit.distributions._base import (
    Distribution,
    WeightedSums,
    check_support,
    prior_parameters,
    ratio,
    register,
    sum_observed,
    vector_parameter,
    weighted_sums,
)


@register
@dataclass(frozen=True, eq=False)
class Exponential(Distribution):
    """Independent non-negative values, column ``j`` exponential with rate ``rate[j]``.

    Parameters
    ----------
    rate : float or array of shape (n_features,)
        Positive finite rates (one over the mean); a single number means one column.
    prior : (a, b), optional
        A Gamma(shape a, rate b) prior on each rate (``a >= 1``, ``b >= 0``;
        numbers or arrays of shape (n_features,)): the M-step becomes the maximum
        a posteriori ``(sum_i w_i + a - 1) / (sum_i w_i x_ij + b)``, as if each
        component had seen ``a - 1`` extra values summing to ``b``. ``b > 0``
        keeps the rate finite on a column of zeros. Default: no prior.

    The M-step is the weighted count over the weighted sum: one over the
    weighted mean.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions import Exponential
    >>> Exponential(1.0).fit(np.array([[1.0], [3.0]])).rate
    array([0.5])
    """

    rate: np.ndarray
    prior: Any = None

    def __post_init__(self) -> None:
        rate = vector_parameter(self.rate, "rate", 0.0)
        if (rate == 0).any():
            raise ValueError("rate must be positive")
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "prior", prior_parameters(self.prior, "prior", rate.size, (1, 0)))

    @property
    def n_features(self) -> int:
        return self.rate.size

    @property
    def n_parameters(self) -> int:
        return self.rate.size

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        return sum_observed(np.log(self.rate) - self.rate * X)

    def stats(self, X: np.ndarray, weights: np.ndarray) -> WeightedSums:
        return weighted_sums(X, weights)

    def from_stats(self, stats: WeightedSums) -> Exponential:
        # All-zero data would give an infinite rate; keep the old one instead.
        if self.prior is None:
            return replace(self, rate=ratio(stats.weight, stats.total, self.rate))
        a, b = self.prior
        rate = ratio(stats.weight + (a - 1), stats.total + b, self.rate)
        # No weight and a = 1 give a rate of 0, no distribution: keep the old rate.
        return replace(self, rate=np.where(rate > 0, rate, self.rate))

    def log_prior(self) -> float:
        if self.prior is None:
            return 0.0
        a, b = self.prior
        return float(np.sum(xlogy(a - 1, self.rate) - b * self.rate))

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return rng.exponential(1.0 / self.rate, size=(n_samples, self.rate.size))

    def check_data(self, X: np.ndarray, first_column: int = 0) -> None:
        check_support(X, X < 0, first_column, "Exponential data must be non-negative")
