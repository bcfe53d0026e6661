"""Categorical: one column of category codes 0..m-1."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import xlogy

from emkit.core.stats import Stats
from emkit.distributions._base import (
    Distribution,
    check_support,
    not_integer,
    prior_parameters,
    ratio,
    register,
    vector_parameter,
)


@dataclass(frozen=True)
class CategoricalStats(Stats):
    """Weighted count of each category, shape (m,)."""

    counts: np.ndarray


@register
@dataclass(frozen=True, eq=False)
class Categorical(Distribution):
    """One of ``m`` categories, coded 0..m-1 in a single column, with probabilities ``probs``.

    Parameters
    ----------
    probs : array of shape (m,)
        Non-negative, summing to one.
    prior : float or array of shape (m,), optional
        The concentrations ``alpha`` of a Dirichlet prior (each ``>= 1``): the
        M-step becomes the maximum a posteriori
        ``(n_c + alpha_c - 1) / (sum_c n_c + sum_c alpha_c - m)`` with ``n_c`` the
        weighted count of category ``c``, ``alpha_c - 1`` extra rows of each
        category. ``2`` (add-one smoothing) keeps every probability positive.
        Default: no prior (maximum likelihood).

    The M-step is the weighted frequency of each category.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions import Categorical
    >>> Categorical([0.2, 0.3, 0.5]).fit(np.array([[0], [2], [2], [1]])).probs
    array([0.25, 0.25, 0.5 ])
    """

    probs: np.ndarray
    prior: Any = None

    def __post_init__(self) -> None:
        probs = vector_parameter(self.probs, "probs", 0.0, 1.0)
        # np.isclose(total, 1, rtol=0, atol=1e-6) without its array machinery: the
        # M-step of a latent-class model builds K x (columns) of these per iteration.
        if not abs(float(probs.sum()) - 1.0) <= 1e-6:
            raise ValueError(f"probs must sum to one, got sum {probs.sum():.10g}")
        object.__setattr__(self, "probs", probs)
        if self.prior is not None:
            # One hyperparameter vector: wrap it so the shared pair check applies.
            (alpha,) = prior_parameters((self.prior,), "prior", probs.size, (1,))
            object.__setattr__(self, "prior", alpha)

    @property
    def n_features(self) -> int:
        return 1

    @property
    def n_parameters(self) -> int:
        return self.probs.size - 1

    def _codes(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Category codes (0 where missing) and the mask of observed rows."""
        observed = ~np.isnan(X[:, 0])
        return np.where(observed, X[:, 0], 0).astype(np.intp), observed

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        codes, observed = self._codes(X)
        with np.errstate(divide="ignore"):
            return np.where(observed, np.log(self.probs)[codes], 0.0)

    def stats(self, X: np.ndarray, weights: np.ndarray) -> CategoricalStats:
        codes, observed = self._codes(X)
        counts = np.bincount(codes[observed], weights=weights[observed],
                             minlength=self.probs.size)
        return CategoricalStats(counts=counts)

    def from_stats(self, stats: CategoricalStats) -> Categorical:
        counts = stats.counts if self.prior is None else stats.counts + (self.prior - 1)
        return replace(self, probs=ratio(counts, counts.sum(), self.probs))

    def log_prior(self) -> float:
        if self.prior is None:
            return 0.0
        return float(np.sum(xlogy(self.prior - 1, self.probs)))

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(self.probs.size, size=(n_samples, 1), p=self.probs).astype(np.float64)

    def check_data(self, X: np.ndarray, first_column: int = 0) -> None:
        m = self.probs.size
        bad = not_integer(X) | (X < 0) | (X > m - 1)
        check_support(X, bad, first_column, f"categories must be integers in 0..{m - 1}")
