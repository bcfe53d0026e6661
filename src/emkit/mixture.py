"""A finite mixture: mixing weights over any component family, with its E-step and M-step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp

from emkit.sources import row_start
from emkit.stats import Stats
from emkit.variants import SOFT


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
    assignment : policy, default soft EM
        How the E-step turns responsibilities into the weights it sums: the EM
        variant (see :mod:`emkit.variants`). ``m_step`` passes on its
        ``advanced()`` successor, so a stochastic policy draws afresh each iteration.
    """

    weights: np.ndarray
    components: Any
    assignment: Any = SOFT

    def weighted_log_prob(self, X: np.ndarray) -> np.ndarray:
        """``log pi_k + log p(x_i | theta_k)``, shape (n_samples, K)."""
        with np.errstate(divide="ignore"):
            log_weights = np.log(self.weights)
        return self.components.log_prob(X) + log_weights

    def log_resp(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log responsibilities (n_samples, K) and per-row log-likelihoods (n_samples,)."""
        weighted = self.weighted_log_prob(X)
        log_norm = logsumexp(weighted, axis=1)
        return weighted - log_norm[:, None], log_norm

    def e_step(self, X: np.ndarray) -> MixtureStats:
        """Responsibilities of a chunk, weighted by the assignment policy, as additive statistics.

        ``log_likelihood`` holds the policy's objective: the observed-data
        log-likelihood for soft and stochastic EM, the classification
        log-likelihood for hard EM.
        """
        start, X = row_start(X), np.asarray(X)
        log_resp, log_norm = self.log_resp(X)
        resp, objective = self.assignment.assign(log_resp, log_norm, start)
        return MixtureStats(
            resp_sum=resp.sum(axis=0),
            components=self.components.stats(X, resp),
            log_likelihood=objective,
            n_samples=X.shape[0],
        )

    def m_step(self, stats: MixtureStats) -> Mixture:
        """New weights and components from summed statistics."""
        counts = stats.resp_sum + 10 * np.finfo(stats.resp_sum.dtype).eps
        return Mixture(
            weights=counts / counts.sum(),
            components=self.components.from_stats(stats.components),
            assignment=self.assignment.advanced(),
        )

    @property
    def n_parameters(self) -> int:
        """Free parameters: the components' plus ``K - 1`` weights."""
        return self.components.n_parameters + len(self.weights) - 1
