"""A uniform noise component beside the Gaussian ones (mclust's ``Vinv``).

Rows that belong to no cluster (scattered outliers) are modelled as uniform
over a region of volume ``V`` around the data: density ``1 / V`` everywhere,
with its own mixing weight fitted by EM like the others (Banfield & Raftery
1993; Fraley & Raftery 1998). The family is the Gaussian one with one column
more: ``log_prob`` gives (n, K + 1), the last column ``-log V``; the statistics
and the M-step are the Gaussian components' (from the first ``K`` columns of
the responsibilities). The volume is fixed, computed once from the data by
:func:`hypervolume`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from emkit.distributions.gaussian.codec import GaussianCodec
from emkit.distributions.gaussian.family import Gaussian


def hypervolume(X: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """mclust's ``hypvol``: the smaller of two boxes around the data.

    The volume of the bounding box of the rows, or of the box along their
    principal axes (the ranges of the principal-component scores), whichever
    is smaller; for one feature, the range. With ``sample_weight``, the rows
    they stand for: rows of weight zero are left out and the principal axes
    are those of the weighted covariance (an integer weight counts as that
    many copies of the row).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.2]])
    >>> round(hypervolume(X), 4)   # along the diagonal the box is thin (mclust: 0.4175)
    0.4175
    """
    X = np.asarray(X, dtype=float)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=float)
        X, sample_weight = X[sample_weight > 0], sample_weight[sample_weight > 0]
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError("the noise component's volume needs at least two rows (n, d)"
                         + (" of weight > 0" if sample_weight is not None else ""))
    if np.isnan(X).any():
        raise ValueError("noise=True needs complete rows (no NaN) for the data's volume")

    def log_box(rows):
        return float(np.log(np.ptp(rows, axis=0)).sum())

    if X.shape[1] == 1:
        return float(np.ptp(X))
    centred = X - np.average(X, axis=0, weights=sample_weight)
    # (the axes are a weighted covariance's eigenvectors: its normalisation does not matter)
    _, vectors = np.linalg.eigh(np.cov(centred, rowvar=False, aweights=sample_weight))
    volume = np.exp(min(log_box(X), log_box(centred @ vectors)))
    if not (np.isfinite(volume) and volume > 0):
        raise ValueError("the data span no volume (a constant feature): noise=True needs "
                         "data that vary in every feature")
    return float(volume)


def streamed_hypervolume(chunks: Callable[[], Iterable[tuple[np.ndarray, Any]]]) -> float:
    """:func:`hypervolume` of rows read in chunks, in two passes, never all at once.

    ``chunks()`` yields ``(rows, sample_weight or None)`` afresh each time it is
    called. The first pass sums the (weighted) moments and the bounding box, the
    second the box along the principal axes of that covariance; rows of weight
    zero are left out, as in :func:`hypervolume`, which this equals to rounding.
    """
    total, n, first, second, low, high = 0.0, 0, 0.0, 0.0, np.inf, -np.inf
    for rows, weights in chunks():
        rows, weights = _kept_rows(rows, weights)
        if np.isnan(rows).any():
            raise ValueError("noise=True needs complete rows (no NaN) for the data's volume")
        n += rows.shape[0]
        total += float(weights.sum())
        first = first + weights @ rows
        second = second + (rows * weights[:, None]).T @ rows
        if rows.shape[0]:
            low, high = np.minimum(low, rows.min(axis=0)), np.maximum(high, rows.max(axis=0))
    if n < 2:
        raise ValueError("the noise component's volume needs at least two rows (n, d)")
    if np.size(high) == 1:
        return float(np.ravel(high - low)[0])
    mean = first / total
    _, vectors = np.linalg.eigh(second / total - np.outer(mean, mean))
    axes_low, axes_high = np.inf, -np.inf
    for rows, weights in chunks():
        scores = (_kept_rows(rows, weights)[0] - mean) @ vectors
        if scores.shape[0]:
            axes_low = np.minimum(axes_low, scores.min(axis=0))
            axes_high = np.maximum(axes_high, scores.max(axis=0))
    return _smaller_box(high - low, axes_high - axes_low)


def _kept_rows(rows: np.ndarray, weights: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows of positive weight (all of them without weights) and their weights."""
    rows = np.asarray(rows, dtype=float)
    if weights is None:
        return rows, np.ones(rows.shape[0])
    weights = np.asarray(weights, dtype=float)
    return rows[weights > 0], weights[weights > 0]


def _smaller_box(ranges: np.ndarray, axes_ranges: np.ndarray) -> float:
    volume = np.exp(min(float(np.log(ranges).sum()), float(np.log(axes_ranges).sum())))
    if not (np.isfinite(volume) and volume > 0):
        raise ValueError("the data span no volume (a constant feature): noise=True needs "
                         "data that vary in every feature")
    return float(volume)


@dataclass(frozen=True)
class NoisyGaussian:
    """``K`` Gaussian components and a uniform one of log density ``log_density``.

    Attributes
    ----------
    gaussian : Gaussian
        The Gaussian components.
    log_density : float
        ``-log V``: the noise component's log density at every row.
    """

    gaussian: Gaussian
    log_density: float

    @property
    def n_components(self) -> int:
        return self.gaussian.n_components

    def prepare(self, X: np.ndarray) -> Any:
        return self.gaussian.prepare(X)

    def log_prob(self, X: Any) -> np.ndarray:
        """Log densities (n, K + 1): the Gaussian components', then the noise's."""
        gaussian = self.gaussian.log_prob(X)
        out = np.empty((gaussian.shape[0], gaussian.shape[1] + 1), dtype=gaussian.dtype)
        out[:, :-1] = gaussian
        out[:, -1] = self.log_density
        return out

    def stats(self, X: Any, resp: np.ndarray) -> Any:
        """The Gaussian components' statistics (the noise has no parameter to fit)."""
        return self.gaussian.stats(X, np.ascontiguousarray(resp[:, :-1]))

    def from_stats(self, stats: Any) -> NoisyGaussian:
        return replace(self, gaussian=self.gaussian.from_stats(stats))

    @property
    def n_parameters(self) -> int:
        """The Gaussian components' parameters, plus the volume as mclust counts it."""
        return self.gaussian.n_parameters + 1

    def sample(self, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise ValueError(
            "sample() does not draw from a noise component (its region, the data's box, "
            "is not kept); fit without noise to sample"
        )


class NoisyGaussianCodec:
    """Flatten/unflatten :class:`NoisyGaussian` components: their Gaussian ones' parameters.

    The noise has no parameter of its own (its volume is fixed); its weight is
    the mixture's last, which :class:`~emkit.core.acceleration.MixtureCodec`
    handles with the others. So SQUAREM and DAAREM extrapolate a noise fit as
    they do a plain one.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
    >>> from emkit.distributions.gaussian.family import gaussian_from_resp
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> g = gaussian_from_resp(COVARIANCE_STRUCTURES["full"], X, np.full((50, 2), 0.5), 1e-6)
    >>> noisy = NoisyGaussian(g, log_density=-3.0)
    >>> codec = NoisyGaussianCodec()
    >>> back = codec.unflatten(codec.flatten(noisy), like=noisy)
    >>> back.log_density, bool(np.allclose(back.gaussian.means, g.means))
    (-3.0, True)
    """

    gaussian_codec = GaussianCodec()

    def flatten(self, components: NoisyGaussian) -> np.ndarray:
        return self.gaussian_codec.flatten(components.gaussian)

    def unflatten(self, vector: np.ndarray, like: NoisyGaussian) -> NoisyGaussian:
        return replace(like, gaussian=self.gaussian_codec.unflatten(vector, like.gaussian))
