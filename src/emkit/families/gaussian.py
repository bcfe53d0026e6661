"""The Gaussian component family: ``K`` multivariate normals sharing one covariance structure."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emkit.families.covariance import CovarianceStructure
from emkit.missing import chunk_patterns, incomplete_log_prob, incomplete_moments
from emkit.stats import REFERENCE, Stats


@dataclass(frozen=True)
class GaussianStats(Stats):
    """Weighted sums over rows, second moments around ``shift``.

    Attributes
    ----------
    counts : ndarray of shape (K,)
        ``sum_i r_ik``.
    first : ndarray of shape (K, D)
        ``sum_i r_ik (x_i - shift_k)``.
    second : ndarray
        ``sum_i r_ik (x_i - shift_k)(x_i - shift_k)^T``, reduced to the
        covariance structure's shape.
    shift : ndarray of shape (K, D)
        The reference points (the means at the time of the E-step).
    """

    counts: np.ndarray
    first: np.ndarray
    second: np.ndarray
    shift: np.ndarray = field(metadata=REFERENCE)

    def recentred(self, shift: np.ndarray, structure: CovarianceStructure) -> GaussianStats:
        """The same sums with moments taken around ``shift`` instead (exact algebra).

        With ``d = old_shift - new_shift`` per component, ``x - new = (x - old) + d``:
        ``first' = first + N d`` and ``second' = second + first d^T + d first^T
        + N d d^T``, reduced to the structure's shape (summed over components
        for tied, the diagonal for diag and spherical).
        """
        shift = np.asarray(shift, dtype=self.shift.dtype)
        delta = self.shift - shift
        outer = _MOMENT_CORRECTIONS[structure.name](self.counts, self.first, delta)
        return GaussianStats(
            counts=self.counts,
            first=self.first + self.counts[:, None] * delta,
            second=self.second + outer,
            shift=shift,
        )


def _full_correction(counts: np.ndarray, first: np.ndarray, delta: np.ndarray) -> np.ndarray:
    cross = first[:, :, None] * delta[:, None, :]
    return cross + np.swapaxes(cross, 1, 2) + counts[:, None, None] * (
        delta[:, :, None] * delta[:, None, :]
    )


def _diag_correction(counts: np.ndarray, first: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return 2 * first * delta + counts[:, None] * np.square(delta)


# Second-moment change under a shift of reference, per covariance structure
# (spherical statistics keep per-feature squares, like diag).
_MOMENT_CORRECTIONS = {
    "full": _full_correction,
    "tied": lambda counts, first, delta: _full_correction(counts, first, delta).sum(axis=0),
    "diag": _diag_correction,
    "spherical": _diag_correction,
}


@dataclass(frozen=True)
class Gaussian:
    """``K`` Gaussian components with one covariance structure.

    Attributes
    ----------
    structure : CovarianceStructure
        How the covariances are shaped (full, tied, diag, spherical).
    means : ndarray of shape (K, D)
    covariances : ndarray
        Shape given by the structure.
    precisions_cholesky : ndarray
        Cholesky factors of the precisions, same shape as ``covariances``.
    reg_covar : float
        Added to the diagonal of every covariance in the M-step.
    """

    structure: CovarianceStructure
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    reg_covar: float = 1e-6
    # Factorisations per missingness pattern, valid for these parameters only.
    pattern_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        """Log density of each row under each component, shape (n_samples, K).

        NaN entries are missing: a row's density is that of its observed
        coordinates (0 for a row with nothing observed).
        """
        missing = np.isnan(X)
        if not missing.any():
            return self.structure.log_prob(X, self.means, self.precisions_cholesky)
        out = np.zeros((X.shape[0], self.n_components), dtype=X.dtype)
        complete = ~missing.any(axis=1)
        out[complete] = self.structure.log_prob(
            X[complete], self.means, self.precisions_cholesky
        )
        incomplete_log_prob(self, X, chunk_patterns(self, X), out)
        return out

    def stats(self, X: np.ndarray, resp: np.ndarray) -> GaussianStats:
        """Weighted sufficient statistics of a chunk, moments around the current means.

        Rows with NaN contribute expected statistics (see :mod:`emkit.missing`).
        """
        missing = np.isnan(X)
        if not missing.any():
            return gaussian_stats(self.structure, X, resp, self.means)
        complete = ~missing.any(axis=1)
        stats = gaussian_stats(self.structure, X[complete], resp[complete], self.means)
        counts, first, second = incomplete_moments(
            self, X, resp, chunk_patterns(self, X), stats.shift
        )
        return stats + GaussianStats(
            counts, first, self.structure.reduce_scatter(second), stats.shift
        )

    def from_stats(self, stats: GaussianStats) -> Gaussian:
        """M-step: the maximum-likelihood components given summed statistics."""
        return estimate_gaussian(self.structure, stats, self.reg_covar)

    @property
    def n_parameters(self) -> int:
        """Free parameters of the components (means and covariances)."""
        k, d = self.means.shape
        return k * d + self.structure.n_parameters(k, d)

    def sample(self, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw ``counts[k]`` rows from component ``k``, stacked in component order."""
        covariances = self.structure.dense(self.covariances, *self.means.shape)
        parts = [
            rng.multivariate_normal(mean, cov, size=int(n), method="cholesky")
            for mean, cov, n in zip(self.means, covariances, counts, strict=True)
        ]
        return np.vstack(parts).astype(self.means.dtype, copy=False)


def gaussian_stats(
    structure: CovarianceStructure, X: np.ndarray, resp: np.ndarray, shift: np.ndarray
) -> GaussianStats:
    """Sufficient statistics of ``X`` weighted by ``resp``, moments around ``shift``."""
    shift = np.asarray(shift, dtype=X.dtype)
    return GaussianStats(
        counts=resp.sum(axis=0),
        first=resp.T @ X - resp.sum(axis=0)[:, None] * shift,
        second=structure.scatter(X, resp, shift),
        shift=shift,
    )


def estimate_gaussian(
    structure: CovarianceStructure, stats: GaussianStats, reg_covar: float
) -> Gaussian:
    """M-step from summed statistics.

    Empty components get a tiny count (``10 * eps``, as scikit-learn does) so
    they keep finite parameters instead of dividing by zero.
    """
    counts = stats.counts + 10 * np.finfo(stats.counts.dtype).eps
    offsets = stats.first / counts[:, None]
    covariances = structure.covariances(counts, offsets, stats.second, reg_covar)
    return Gaussian(
        structure=structure,
        means=stats.shift + offsets,
        covariances=covariances,
        precisions_cholesky=structure.precisions_cholesky(covariances),
        reg_covar=reg_covar,
    )



def gaussian_from_resp(
    structure: CovarianceStructure, X: np.ndarray, resp: np.ndarray, reg_covar: float
) -> Gaussian:
    """Components estimated from starting responsibilities (two passes: means, then moments)."""
    counts = resp.sum(axis=0) + 10 * np.finfo(resp.dtype).eps
    means = (resp.T @ X) / counts[:, None]
    return estimate_gaussian(structure, gaussian_stats(structure, X, resp, means), reg_covar)


def gaussian_from_precisions(
    structure: CovarianceStructure, means: np.ndarray, precisions: np.ndarray, reg_covar: float
) -> Gaussian:
    """Components with given means and precision matrices."""
    prec_chol = structure.precisions_cholesky_from_precisions(precisions)
    return Gaussian(
        structure=structure,
        means=means,
        covariances=structure.covariances_from_cholesky(prec_chol),
        precisions_cholesky=prec_chol,
        reg_covar=reg_covar,
    )
