"""Binomial: heads out of a number of tosses, fixed or given per row."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import gammaln, xlog1py, xlogy

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

COLUMN = "column"


@dataclass(frozen=True)
class BinomialStats(Stats):
    """Weighted heads ``sum_i w_i x_i`` and weighted trials ``sum_i w_i n_i``."""

    heads: float
    trials: float


@register
@dataclass(frozen=True, eq=False)
class Binomial(Distribution):
    """Number of successes in ``n_trials`` independent trials, each succeeding with ``p``.

    Parameters
    ----------
    n_trials : int or "column"
        Trials per row. With ``"column"`` the data have two columns, successes
        and trials, so every row may have its own number of tosses.
    p : float
        Success probability, in [0, 1].
    prior : (a, b), optional
        A Beta(a, b) prior on ``p`` (``a, b >= 1``): the M-step becomes the
        maximum a posteriori ``(sum_i w_i x_i + a - 1) / (sum_i w_i n_i + a + b - 2)``,
        ``a - 1`` extra heads and ``b - 1`` extra tails. Default: no prior.

    The M-step is ``p = sum_i w_i x_i / sum_i w_i n_i``: heads credited over
    flips credited.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions import Binomial
    >>> coin = Binomial(10, 0.6).fit(np.array([[5], [9], [8], [4], [7]]))
    >>> round(coin.p, 2)
    0.66
    >>> varying = Binomial("column", 0.5).fit(np.array([[3, 4], [1, 6]]))
    >>> round(varying.p, 2)
    0.4
    """

    n_trials: int | str
    p: float
    prior: Any = None

    def __post_init__(self) -> None:
        n = self.n_trials
        if n != COLUMN and not (isinstance(n, int | np.integer) and n >= 0):
            raise ValueError(f"n_trials must be an integer >= 0 or 'column', got {n!r}")
        p = vector_parameter(self.p, "p", 0.0, 1.0)
        if p.size != 1:
            raise ValueError(f"p must be a single probability, got {p.size} values")
        object.__setattr__(self, "p", float(p[0]))
        object.__setattr__(self, "prior", prior_parameters(self.prior, "prior", 1, (1, 1)))

    @property
    def n_features(self) -> int:
        return 2 if self.n_trials == COLUMN else 1

    @property
    def n_parameters(self) -> int:
        return 1

    def _heads_trials(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Heads and trials per row; a row missing either becomes 0 heads of 0 trials,
        which has probability one and contributes nothing."""
        heads = X[:, 0]
        trials = X[:, 1] if self.n_trials == COLUMN else np.full(X.shape[0], float(self.n_trials))
        observed = ~(np.isnan(heads) | np.isnan(trials))
        return np.where(observed, heads, 0.0), np.where(observed, trials, 0.0)

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        heads, trials = self._heads_trials(X)
        log_choose = gammaln(trials + 1) - gammaln(heads + 1) - gammaln(trials - heads + 1)
        return log_choose + xlogy(heads, self.p) + xlog1py(trials - heads, -self.p)

    def stats(self, X: np.ndarray, weights: np.ndarray) -> BinomialStats:
        heads, trials = self._heads_trials(X)
        return BinomialStats(heads=float(weights @ heads), trials=float(weights @ trials))

    def from_stats(self, stats: BinomialStats) -> Binomial:
        heads, tails = _pseudo_heads_tails(self.prior)
        p = ratio(stats.heads + heads, stats.trials + heads + tails, self.p)
        # Rounding in the sums can put the ratio a hair outside [0, 1].
        return replace(self, p=float(np.clip(p, 0.0, 1.0).item()))

    def log_prior(self) -> float:
        if self.prior is None:
            return 0.0
        heads, tails = _pseudo_heads_tails(self.prior)
        return float(xlogy(heads, self.p) + xlog1py(tails, -self.p))

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        if self.n_trials == COLUMN:
            raise ValueError(
                "cannot sample a Binomial with n_trials='column': the number of trials "
                "of each row is data, not part of the model"
            )
        return rng.binomial(self.n_trials, self.p, size=(n_samples, 1)).astype(np.float64)

    def check_data(self, X: np.ndarray, first_column: int = 0) -> None:
        check_support(
            X, not_integer(X) | (X < 0), first_column, "counts must be non-negative integers"
        )
        heads, trials = self._heads_trials(X)
        over = np.flatnonzero(heads > trials)
        if over.size:
            row = int(over[0])
            raise ValueError(
                f"row {row}, column {first_column}: heads {heads[row]:g} exceed the "
                f"number of trials n_trials={trials[row]:g}"
            )


def _pseudo_heads_tails(prior: Any) -> tuple[float, float]:
    """Extra heads and tails a Beta(a, b) prior adds to the M-step: ``a - 1`` and ``b - 1``."""
    if prior is None:
        return 0.0, 0.0
    return float(prior[0][0]) - 1, float(prior[1][0]) - 1
