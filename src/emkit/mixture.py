"""A finite mixture: mixing weights over any component family, with its E-step and M-step."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from emkit.sources import row_start
from emkit.stats import Stats
from emkit.variants import SOFT


def log_sum_exp_rows(a: np.ndarray) -> np.ndarray:
    """``log(sum(exp(a), axis=1))`` without overflow, shape (n_rows,).

    Plain numpy: scipy's ``logsumexp`` costs more in dispatch than in arithmetic
    on the small chunks of EM.
    """
    peak = a.max(axis=1)
    # Rows where every entry is -inf stay -inf instead of becoming NaN.
    safe_peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):
        return safe_peak + np.log(np.exp(a - safe_peak[:, None]).sum(axis=1))


@dataclass(frozen=True)
class MixtureStats(Stats):
    """Additive statistics of a mixture over some rows.

    Attributes
    ----------
    resp_sum : ndarray of shape (K,)
        Summed responsibilities (expected counts per component).
    components : Stats
        The component family's statistics.
    log_likelihood : float
        Summed log-likelihood of the rows under the parameters of the E-step.
    n_samples : int
        Number of rows.
    """

    resp_sum: np.ndarray
    components: Stats
    log_likelihood: float
    n_samples: int


@dataclass(frozen=True)
class Mixture:
    """Mixing weights and a component family.

    Attributes
    ----------
    weights : ndarray of shape (K,)
        Mixing proportions, summing to one.
    components : family
        Any object with ``log_prob(X) -> (n, K)``, ``stats(X, resp)``,
        ``from_stats(stats)`` and ``n_parameters``.
    fit_weights : bool
        Whether the M-step re-estimates the weights; False keeps them fixed
        (as the coin example's prior of 0.5).
    assignment : policy, default soft EM
        How the E-step turns responsibilities into the weights it sums: the EM
        variant (see :mod:`emkit.variants`). ``m_step`` passes on its
        ``advanced()`` successor, so a stochastic policy draws afresh each iteration.
    """

    weights: np.ndarray
    components: Any
    fit_weights: bool = True
    assignment: Any = SOFT

    def weighted_log_prob(self, X: np.ndarray) -> np.ndarray:
        """``log pi_k + log p(x_i | theta_k)``, shape (n_samples, K)."""
        with np.errstate(divide="ignore"):
            log_weights = np.log(self.weights)
        return self.components.log_prob(X) + log_weights

    def log_resp(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log responsibilities (n_samples, K) and per-row log-likelihoods (n_samples,)."""
        weighted = self.weighted_log_prob(X)
        log_norm = log_sum_exp_rows(weighted)
        return weighted - log_norm[:, None], log_norm

    def e_step(self, X: np.ndarray) -> MixtureStats:
        """Responsibilities of a chunk, weighted by the assignment policy, as additive statistics.

        ``log_likelihood`` holds the policy's objective: the observed-data
        log-likelihood for soft and stochastic EM, the classification
        log-likelihood for hard EM.
        """
        start, X = row_start(X), np.asarray(X)
        log_resp, log_norm = self.log_resp(X)
        resp, row_objective = self.assignment.assign(log_resp, log_norm, start)
        # A row with every value missing (NaN) carries no information: it
        # contributes nothing to the statistics and is not counted.
        empty = np.isnan(X).all(axis=1)
        resp[empty] = 0.0
        return MixtureStats(
            resp_sum=resp.sum(axis=0),
            components=self.components.stats(X, resp),
            log_likelihood=float(row_objective[~empty].sum(dtype=np.float64)),
            n_samples=int(X.shape[0] - empty.sum()),
        )

    def m_step(self, stats: MixtureStats) -> Mixture:
        """New weights (unless fixed) and components from summed statistics."""
        weights = self.weights
        if self.fit_weights:
            counts = stats.resp_sum + 10 * np.finfo(stats.resp_sum.dtype).eps
            weights = counts / counts.sum()
        return replace(
            self, weights=weights, components=self.components.from_stats(stats.components),
            assignment=self.assignment.advanced(),
        )

    @property
    def n_parameters(self) -> int:
        """Free parameters: the components' plus ``K - 1`` weights when they are fitted."""
        free_weights = len(self.weights) - 1 if self.fit_weights else 0
        return self.components.n_parameters + free_weights
