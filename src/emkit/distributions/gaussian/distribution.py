"""Gaussian: a multivariate normal, with a full, diagonal or spherical covariance."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from emkit.distributions._base import Distribution, register
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES, CovarianceStructure
from emkit.distributions.gaussian.family import Gaussian as GaussianFamily
from emkit.distributions.gaussian.family import GaussianStats, estimate_gaussian

# "tied" shares one covariance across components; a single distribution has nothing to share
# with (use emkit.GaussianMixture for tied covariances).
COVARIANCE_TYPES = ("full", "diag", "spherical")


@register
@dataclass(frozen=True, eq=False)
class Gaussian(Distribution):
    """A multivariate normal distribution.

    Reuses the covariance structures of :mod:`emkit.distributions.gaussian.covariance`, so
    densities and M-step are those of :class:`emkit.GaussianMixture`.

    Parameters
    ----------
    mean : array of shape (n_features,)
    covariance : array
        Shape (n_features, n_features) for ``"full"``, (n_features,) for
        ``"diag"`` (the variances), a number for ``"spherical"`` (the variance).
    covariance_type : {"full", "diag", "spherical"}, default="full"
    reg_covar : float, default=1e-6
        Added to the variances in the M-step, keeping the covariance positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions import Gaussian
    >>> fitted = Gaussian([0.0], 1.0, "spherical", reg_covar=0.0).fit([[1.0], [3.0]])
    >>> fitted.mean, round(float(fitted.covariance), 12)
    (array([2.]), 1.0)
    """

    mean: np.ndarray
    covariance: np.ndarray
    covariance_type: str = "full"
    reg_covar: float = 1e-6
    _precision_cholesky: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES}, got {self.covariance_type!r}"
            )
        mean = np.atleast_1d(np.asarray(self.mean, dtype=np.float64))
        if mean.ndim != 1 or mean.size == 0:
            raise ValueError(f"mean must be a non-empty 1-D array, got shape {mean.shape}")
        _check_finite(mean, "mean")
        covariance = np.asarray(self.covariance, dtype=np.float64)
        expected = self._structure.shape(1, mean.size)[1:]
        if covariance.shape != expected:
            raise ValueError(
                f"a {self.covariance_type} covariance for {mean.size} features must have "
                f"shape {expected}, got {covariance.shape}"
            )
        _check_finite(covariance, "covariance")
        if self.covariance_type != "full" and not (covariance > 0).all():
            raise ValueError(
                f"a {self.covariance_type} covariance holds variances, which must be "
                f"positive, got {covariance.min():g}"
            )
        if not (np.isfinite(self.reg_covar) and self.reg_covar >= 0):
            raise ValueError(f"reg_covar must be a finite number >= 0, got {self.reg_covar!r}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "covariance", covariance)
        object.__setattr__(self, "_precision_cholesky", self._cholesky(covariance))

    @property
    def _structure(self) -> CovarianceStructure:
        return COVARIANCE_STRUCTURES[self.covariance_type]

    def _cholesky(self, covariance: np.ndarray) -> np.ndarray:
        try:
            return self._structure.precisions_cholesky(covariance[None])[0]
        except ValueError:
            raise ValueError(
                "Gaussian covariance is not positive definite (if this came from a fit, "
                "a component collapsed onto a few points: raise reg_covar)"
            ) from None

    @property
    def n_features(self) -> int:
        return self.mean.size

    @property
    def n_parameters(self) -> int:
        return self.mean.size + self._structure.n_parameters(1, self.mean.size)

    def _as_family(self) -> GaussianFamily:
        """This distribution as a one-component Gaussian family (which handles NaN)."""
        return GaussianFamily(
            structure=self._structure, means=self.mean[None],
            covariances=self.covariance[None],
            precisions_cholesky=self._precision_cholesky[None], reg_covar=self.reg_covar,
        )

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        return self._as_family().log_prob(X)[:, 0]

    def stats(self, X: np.ndarray, weights: np.ndarray) -> GaussianStats:
        # Moments around the current mean keep the digits of data far from the origin.
        return self._as_family().stats(X, weights[:, None])

    def from_stats(self, stats: GaussianStats) -> Gaussian:
        fitted = estimate_gaussian(self._structure, stats, self.reg_covar)
        return replace(self, mean=fitted.means[0], covariance=fitted.covariances[0])

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        dense = self._structure.dense(self.covariance[None], 1, self.mean.size)[0]
        return rng.multivariate_normal(self.mean, dense, size=n_samples, method="cholesky")


def _check_finite(values: np.ndarray, name: str) -> None:
    """Raise ValueError naming the first non-finite entry of a parameter."""
    bad = ~np.isfinite(values)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = index[0] if len(index) == 1 else index
        raise ValueError(f"{name} must be finite, got {float(values[index])!r} at {where}")
