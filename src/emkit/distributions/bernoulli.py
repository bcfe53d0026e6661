"""Bernoulli: a vector of independent binary features."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import xlog1py, xlogy

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
class Bernoulli(Distribution):
    """Independent binary features, feature ``j`` equal to 1 with probability ``p[j]``.

    Parameters
    ----------
    p : float or array of shape (n_features,)
        Probabilities of a 1, each in [0, 1]; a single number means one column.
    prior : (a, b), optional
        A Beta(a, b) prior on each ``p[j]`` (``a, b >= 1``; numbers, or arrays of
        shape (n_features,)): the M-step becomes the maximum a posteriori
        ``(sum_i w_i x_ij + a - 1) / (sum_i w_i + a + b - 2)``, as if every
        component had seen ``a - 1`` extra ones and ``b - 1`` extra zeros per
        column. ``(2, 2)`` (add-one smoothing) keeps every ``p`` strictly inside
        (0, 1), so no row is ever impossible. Default: no prior (maximum likelihood).

    Data must be 0 or 1. The M-step is the weighted fraction of ones per column.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions import Bernoulli
    >>> Bernoulli([0.5, 0.5]).fit(np.array([[1, 0], [1, 1], [0, 0], [1, 0]])).p
    array([0.75, 0.25])
    """

    p: np.ndarray
    prior: Any = None

    def __post_init__(self) -> None:
        p = vector_parameter(self.p, "p", 0.0, 1.0)
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "prior", prior_parameters(self.prior, "prior", p.size, (1, 1)))

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
        ones, zeros = _pseudo_counts(self.prior)
        p = ratio(stats.total + ones, stats.weight + ones + zeros, self.p)
        # Rounding in the sums can put a ratio a hair outside [0, 1].
        return replace(self, p=np.clip(p, 0.0, 1.0))

    def log_prior(self) -> float:
        if self.prior is None:
            return 0.0
        a, b = self.prior
        return float(np.sum(xlogy(a - 1, self.p) + xlog1py(b - 1, -self.p)))

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return (rng.random((n_samples, self.p.size)) < self.p).astype(np.float64)

    def check_data(self, X: np.ndarray, first_column: int = 0) -> None:
        check_support(X, (X != 0) & (X != 1), first_column, "Bernoulli data must be 0 or 1")


def _pseudo_counts(prior: Any) -> tuple[Any, Any]:
    """Extra ones and zeros a Beta(a, b) prior adds to the M-step: ``a - 1`` and ``b - 1``."""
    if prior is None:
        return 0.0, 0.0
    a, b = prior
    return a - 1, b - 1
