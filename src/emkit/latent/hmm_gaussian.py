"""Gaussian HMM emissions with hmmlearn's conjugate-prior M-step.

hmmlearn's ``GaussianHMM`` re-estimates each state's mean and covariance as
the maximum a posteriori under a normal prior on the mean (``means_prior``,
weight ``means_weight``) and an inverse-gamma / inverse-Wishart-like term on
the covariance (``covars_prior`` added to the scatter, ``covars_weight``
added to the counts). With its defaults (``0, 0, 1e-2, 1``) the covariance is
``(1e-2 + S_k) / N_k`` for diag and spherical (``1e-2`` added to *every* entry
for full and tied), ``S_k`` the weighted scatter around the new mean. This
family reproduces those formulas on emkit's Gaussian statistics (moments
around the current means, which keep digits far from the origin), so a
``GaussianHMM`` fit gives hmmlearn's numbers; densities and statistics are
those of :class:`emkit.distributions.gaussian.family.Gaussian`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from emkit.distributions.gaussian.codec import _pack, _unpack
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.distributions.gaussian.family import Gaussian, GaussianStats


@dataclass(frozen=True)
class PriorGaussian:
    """``K`` Gaussian emissions, M-step as hmmlearn's.

    Attributes
    ----------
    family : Gaussian
        The densities and statistics (its ``reg_covar`` is unused).
    covariance_type : {"full", "diag", "spherical", "tied"}
    means_prior, means_weight, covars_prior, covars_weight : float or ndarray
        hmmlearn's hyperparameters (broadcast like there).
    fit_means, fit_covars : bool
        hmmlearn's ``"m"`` and ``"c"`` in ``params``.
    """

    family: Gaussian
    covariance_type: str
    means_prior: Any = 0.0
    means_weight: Any = 0.0
    covars_prior: Any = 1e-2
    covars_weight: Any = 1.0
    fit_means: bool = True
    fit_covars: bool = True

    @classmethod
    def build(cls, means: np.ndarray, covars: np.ndarray, covariance_type: str,
              **options: Any) -> PriorGaussian:
        """From means (K, D) and covariances in emkit's shape for ``covariance_type``."""
        structure = COVARIANCE_STRUCTURES[covariance_type]
        means = np.asarray(means, dtype=np.float64)
        covars = np.asarray(covars, dtype=np.float64)
        family = Gaussian(structure=structure, means=means, covariances=covars,
                          precisions_cholesky=structure.precisions_cholesky(covars),
                          reg_covar=0.0)
        return cls(family=family, covariance_type=covariance_type, **options)

    @property
    def n_parameters(self) -> int:
        return self.family.n_parameters

    def prepare(self, X: np.ndarray) -> Any:
        return self.family.prepare(X)

    def log_prob(self, X: Any) -> np.ndarray:
        return self.family.log_prob(X)

    def stats(self, X: Any, resp: np.ndarray) -> GaussianStats:
        return self.family.stats(X, resp)

    def sample(self, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.family.sample(counts, rng)

    def from_stats(self, stats: GaussianStats) -> PriorGaussian:
        """hmmlearn's M-step; a state with no weight keeps its previous parameters."""
        family = self.family
        counts = stats.counts
        k, d = family.means.shape
        means = family.means
        if self.fit_means:
            weight = np.broadcast_to(np.asarray(self.means_weight, float), (k,))[:, None]
            prior = np.broadcast_to(np.asarray(self.means_prior, float), (k, d))
            total = counts[:, None] * stats.shift + stats.first  # sum_t w_t x_t
            denominator = weight + counts[:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                means = np.where(denominator > 0, (weight * prior + total) / denominator, means)
        covariances = family.covariances
        if self.fit_covars:
            covariances = self._covariances(stats, means)
        structure = family.structure
        new = Gaussian(structure=structure, means=means, covariances=covariances,
                       precisions_cholesky=structure.precisions_cholesky(covariances),
                       reg_covar=0.0)
        return replace(self, family=new)

    def _covariances(self, stats: GaussianStats, means: np.ndarray) -> np.ndarray:
        structure = self.family.structure
        counts = stats.counts
        k, d = means.shape
        # Scatter around the new means (exact re-centring of the summed moments).
        scatter = stats.recentred(means, structure).second
        weight = np.broadcast_to(np.asarray(self.means_weight, float), (k,))
        diff = means - np.broadcast_to(np.asarray(self.means_prior, float), (k, d))
        prior_scatter = structure.reduce_scatter(
            weight[:, None, None] * diff[:, :, None] * diff[:, None, :]
        )
        scatter = scatter + prior_scatter
        previous = self.family.covariances
        kind = self.covariance_type
        if kind in ("diag", "spherical"):
            if kind == "spherical":
                scatter = scatter[:, None] / d  # the mean over features of the diagonal
            c_d = np.maximum(np.maximum(np.asarray(self.covars_weight, float) - 1, 0)
                             + counts, 1e-5)
            covars = (self.covars_prior + scatter) / c_d[:, None]
            return covars.mean(axis=1) if kind == "spherical" else covars
        cv_weight = np.maximum(np.asarray(self.covars_weight, float) - d, 0)
        if kind == "tied":
            return (self.covars_prior + scatter) / (cv_weight + counts.sum())
        denominator = (cv_weight + counts)[:, None, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denominator > 0, (self.covars_prior + scatter) / denominator,
                            previous)


@dataclass(frozen=True)
class PriorGaussianCodec:
    """Flattens :class:`PriorGaussian` emissions for SQUAREM: the fitted parts only.

    Means as they are, covariances through log-Cholesky factors (log variances
    for diag and spherical), as :class:`~emkit.distributions.gaussian.codec.GaussianCodec`;
    means without ``"m"`` or covariances without ``"c"`` in ``params`` are
    left out of the vector and kept exactly.

    Examples
    --------
    >>> import numpy as np
    >>> emissions = PriorGaussian.build(np.zeros((2, 3)), np.ones((2, 3)), "diag", fit_means=False)
    >>> PriorGaussianCodec().flatten(emissions).shape   # 2 x 3 log variances, no means
    (6,)
    """

    def flatten(self, emissions: PriorGaussian) -> np.ndarray:
        family = emissions.family
        parts = [np.empty(0)]
        if emissions.fit_means:
            parts.append(family.means.astype(np.float64).ravel())
        if emissions.fit_covars:
            parts.append(_pack(emissions.covariance_type, family.covariances))
        return np.concatenate(parts)

    def unflatten(self, vector: np.ndarray, like: PriorGaussian) -> PriorGaussian:
        if vector.size != self.flatten(like).size or not np.isfinite(vector).all():
            raise ValueError(f"expected {self.flatten(like).size} finite parameters")
        family = like.family
        k, d = family.means.shape
        means, covariances = family.means, family.covariances
        if like.fit_means:
            means, vector = vector[:k * d].reshape(k, d), vector[k * d:]
        if like.fit_covars:
            covariances = _unpack(like.covariance_type, vector, k, d)
        structure = family.structure
        # precisions_cholesky raises ValueError on a degenerate covariance: the jump is refused.
        new = Gaussian(structure=structure, means=means, covariances=covariances,
                       precisions_cholesky=structure.precisions_cholesky(covariances),
                       reg_covar=0.0)
        return replace(like, family=new)
