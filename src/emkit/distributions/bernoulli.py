"""Bernoulli: a vector of independent binary features."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import xlog1py, xlogy

from emkit.distributions._base import (
    Distribution,
    WeightedSums,
    check_support,
    ratio,
    register,
    sum_observed,
    vector_parameter,
    weighted_sums,
)


@register
@dataclass(frozen=True, eq=False)
class Bernoulli(Distribution):
    """Independent binary features, feature ``j`` equal to 1 with probability ``p[j]``.

    Parameters
    ----------
    p : float or array of shape (n_features,)
        Probabilities of a 1, each in [0, 1]; a single number means one column.

    Data must be 0 or 1. The M-step is the weighted fraction of ones per column.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions import Bernoulli
    >>> Bernoulli([0.5, 0.5]).fit(np.array([[1, 0], [1, 1], [0, 0], [1, 0]])).p
    array([0.75, 0.25])
    """

    p: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "p", vector_parameter(self.p, "p", 0.0, 1.0))

    @property
    def n_features(self) -> int:
        return self.p.size

    @property
    def n_parameters(self) -> int:
        return self.p.size

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        return sum_observed(xlogy(X, self.p) + xlog1py(1 - X, -self.p))

    def stats(self, X: np.ndarray, weights: np.ndarray) -> WeightedSums:
        return weighted_sums(X, weights)

    def from_stats(self, stats: WeightedSums) -> Bernoulli:
        # Rounding in the sums can put a ratio a hair outside [0, 1].
        return replace(self, p=np.clip(ratio(stats.total, stats.weight, self.p), 0.0, 1.0))

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return (rng.random((n_samples, self.p.size)) < self.p).astype(np.float64)

    def check_data(self, X: np.ndarray, first_column: int = 0) -> None:
        check_support(X, (X != 0) & (X != 1), first_column, "Bernoulli data must be 0 or 1")
