"""Covariance structures of the Gaussian family: full, tied, diagonal, spherical.

Each structure is a small stateless object behind one interface; the user's
``covariance_type`` string is looked up once in :data:`COVARIANCE_STRUCTURES`.
It holds scikit-learn's four names and mclust's 14 models (with ``E`` and ``V``
for one feature): scikit-learn's are the same objects as VVV (full), EEE
(tied), VVI (diag) and VII (spherical); the other ten are constrained versions
of a wider layout (their M-steps in :mod:`emkit.distributions.gaussian.constrained`),
so the kernels, the compiled pass and model files see a full, diagonal or
spherical structure. ``structure.name`` is that layout, ``structure.model``
mclust's name.

Shapes, with ``K`` components and ``D`` features:

=========  ====================  ==========================
structure  covariances           precisions_cholesky
=========  ====================  ==========================
full       (K, D, D)             (K, D, D), upper triangular
tied       (D, D)                (D, D), upper triangular
diag       (K, D)                (K, D)
spherical  (K,)                  (K,)
=========  ====================  ==========================

Second moments are always taken around a per-component *shift* (the current
means), never around the origin, so data far from the origin keep their digits.

Besides the direct per-component forms (``mahalanobis``, ``scatter``), each
structure describes its log density as a quadratic form in features of the
centred rows (``quad_*`` methods, ``recentre``), which
:mod:`emkit.distributions.gaussian.quadratic` turns into two matrix products per chunk.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from scipy import linalg

from emkit.distributions.gaussian import constrained

LOG_2PI = float(np.log(2.0 * np.pi))


class DegenerateComponentError(ValueError):
    """A component's covariance is not positive definite, even with ``reg_covar``."""


def _degenerate(component: int | None) -> DegenerateComponentError:
    where = "the tied covariance" if component is None else f"component {component}"
    return DegenerateComponentError(
        f"Fitting failed: {where} has an ill-defined covariance (not positive definite), "
        "typically because it collapsed onto a single point or a few repeated points. "
        "Try fewer components, a larger reg_covar, or scaling the data."
    )


@functools.lru_cache(maxsize=16)
def _triu(n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper-triangle indices, in the order of the full structure's quadratic features."""
    return np.triu_indices(n_features)


def _flip(a: np.ndarray) -> np.ndarray:
    return a[..., ::-1, ::-1]


def _cholesky_of_inverse(covariance: np.ndarray, component: int | None) -> np.ndarray:
    """Upper-triangular ``P`` with ``P @ P.T == inv(covariance)``."""
    try:
        lower = linalg.cholesky(covariance, lower=True)
    except linalg.LinAlgError:
        raise _degenerate(component) from None
    identity = np.eye(covariance.shape[0], dtype=covariance.dtype)
    return linalg.solve_triangular(lower, identity, lower=True).T


def _batched_cholesky_of_inverse(covariances: np.ndarray) -> np.ndarray:
    """:func:`_cholesky_of_inverse` of every matrix of a stack, in two batched calls.

    numpy's stacked LAPACK calls skip scipy's per-call checks (tens of
    microseconds each, which dominated small fits); on failure the per-matrix
    path names the component that is not positive definite.
    """
    try:
        lower = np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        return np.stack([_cholesky_of_inverse(c, k) for k, c in enumerate(covariances)])
    identity = np.broadcast_to(np.eye(covariances.shape[-1], dtype=covariances.dtype),
                               covariances.shape)
    # inv(L) is lower-triangular; the solve's rounding above the diagonal is dropped.
    return np.triu(np.swapaxes(np.linalg.solve(lower, identity), -1, -2))


def _cholesky_upper_of(precision: np.ndarray, component: int | None) -> np.ndarray:
    """Upper-triangular ``P`` with ``P @ P.T == precision`` (Cholesky of the flipped matrix)."""
    try:
        return _flip(linalg.cholesky(_flip(precision), lower=True))
    except linalg.LinAlgError:
        raise _degenerate(component) from None


def _inverse_of_cholesky(prec_chol: np.ndarray) -> np.ndarray:
    """Covariance ``inv(P @ P.T)`` from an upper-triangular precision Cholesky factor."""
    identity = np.eye(prec_chol.shape[0], dtype=prec_chol.dtype)
    inv = linalg.solve_triangular(prec_chol, identity, lower=False)
    return inv.T @ inv


def _centred_squares(X: np.ndarray, resp: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``sum_i r_ik (x_i - shift_k)**2`` per component and feature, shape (K, D)."""
    out = np.empty(shift.shape, dtype=X.dtype)
    for k in range(shift.shape[0]):
        out[k] = resp[:, k] @ np.square(X - shift[k])
    return out


def _centred_scatter(X: np.ndarray, resp: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``sum_i r_ik (x_i - shift_k)(x_i - shift_k)^T`` per component, shape (K, D, D)."""
    n_components, n_features = shift.shape
    out = np.empty((n_components, n_features, n_features), dtype=X.dtype)
    for k in range(n_components):
        centred = X - shift[k]
        out[k] = (centred * resp[:, k, None]).T @ centred
    return out


class CovarianceStructure:
    """Interface shared by the four covariance structures."""

    name: str
    model: str  # mclust's name of the model

    def log_prob(
        self, X: np.ndarray, means: np.ndarray, prec_chol: np.ndarray
    ) -> np.ndarray:
        """Log density of every row under every component, shape (n_samples, K)."""
        mahalanobis = self.mahalanobis(X, means, prec_chol)
        n_features = X.shape[1]
        return -0.5 * (n_features * LOG_2PI + mahalanobis) + self.log_det_cholesky(
            prec_chol, n_features
        )

    def mahalanobis(
        self, X: np.ndarray, means: np.ndarray, prec_chol: np.ndarray
    ) -> np.ndarray:
        """Squared Mahalanobis distances, shape (n_samples, K)."""
        raise NotImplementedError

    def log_det_cholesky(self, prec_chol: np.ndarray, n_features: int) -> np.ndarray:
        """``log det P_k`` per component (half the log-determinant of the precision)."""
        raise NotImplementedError

    def scatter(self, X: np.ndarray, resp: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """Weighted second moments around ``shift``, in this structure's shape."""
        raise NotImplementedError

    def covariances(
        self, counts: np.ndarray, offsets: np.ndarray, scatter: np.ndarray, reg_covar: float
    ) -> np.ndarray:
        """M-step: covariances around the new means.

        ``offsets`` are the new means minus the shift, shape (K, D).
        """
        raise NotImplementedError

    def covariances_after(
        self, previous: np.ndarray, counts: np.ndarray, offsets: np.ndarray,
        scatter: np.ndarray, reg_covar: float,
    ) -> np.ndarray:
        """M-step given the covariances before it; only iterative M-steps use them."""
        return self.covariances(counts, offsets, scatter, reg_covar)

    def precisions_cholesky(self, covariances: np.ndarray) -> np.ndarray:
        """Cholesky factors of the precisions; raises on a degenerate component."""
        raise NotImplementedError

    def precisions_cholesky_from_precisions(self, precisions: np.ndarray) -> np.ndarray:
        """Cholesky factors from user-given precision matrices."""
        raise NotImplementedError

    def covariances_from_cholesky(self, prec_chol: np.ndarray) -> np.ndarray:
        """Covariances from the precision Cholesky factors."""
        raise NotImplementedError

    def precisions(self, prec_chol: np.ndarray) -> np.ndarray:
        """Precision matrices from their Cholesky factors."""
        raise NotImplementedError

    def dense(self, covariances: np.ndarray, n_components: int, n_features: int) -> np.ndarray:
        """The covariances as a (K, D, D) stack of full matrices."""
        raise NotImplementedError

    def reduce_scatter(self, dense: np.ndarray) -> np.ndarray:
        """Second moments given as (K, D, D) matrices, reduced to this structure's shape."""
        raise NotImplementedError

    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of the covariance (and precision) array."""
        raise NotImplementedError

    def n_parameters(self, n_components: int, n_features: int) -> int:
        """Number of free covariance parameters."""
        raise NotImplementedError

    # Quadratic-feature kernel (see emkit.distributions.gaussian.quadratic): the terms of
    # ``x'^T P x'`` as feature columns, their weights, and the moments they give.

    def quad_width(self, n_features: int) -> int:
        """Number of quadratic feature columns."""
        raise NotImplementedError

    def quad_features(self, centred: np.ndarray, prec_chol: np.ndarray, out: np.ndarray) -> None:
        """Write the quadratic features of centred rows into ``out``.

        Feature-major layout: ``centred`` is (D, n) and ``out`` is (n_quad, n),
        so that every product below runs over contiguous memory.
        """
        raise NotImplementedError

    def quad_weights(self, precisions: np.ndarray) -> np.ndarray:
        """Weights (n_quad, K) with ``features @ weights == -0.5 x'^T P_k x'``.

        ``precisions`` are dense, shape (K, D, D).
        """
        raise NotImplementedError

    def quad_moments(
        self, moments: np.ndarray, centred: np.ndarray | None, resp: np.ndarray | None
    ) -> np.ndarray:
        """Second moments around the centre from ``resp^T @ features`` (K, n_quad).

        ``centred`` (D, n) and ``resp`` (n, K) are there for structures whose
        moments are not linear in their features (tied); the others take None.
        """
        return moments

    def recentre(
        self, second: np.ndarray, counts: np.ndarray, first: np.ndarray, d: np.ndarray
    ) -> np.ndarray:
        """Move second moments from the centre to the means (``d = mu - c``, shape (K, D)).

        ``first`` holds the sums ``r (x - c)``; the result is the structure's
        reduction of ``sum r (x - mu)(x - mu)^T``.
        """
        raise NotImplementedError

    def select(self, prec_chol: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The precision Cholesky factors of the components in ``mask``."""
        return prec_chol[mask]

    def join_second(
        self, fast: np.ndarray, fast_second: np.ndarray | None, slow_second: np.ndarray | None
    ) -> np.ndarray:
        """Second moments of the fast and the direct components, in component order."""
        if slow_second is None:
            return fast_second
        if fast_second is None:
            return slow_second
        out = np.empty((fast.size, *fast_second.shape[1:]))
        out[fast], out[~fast] = fast_second, slow_second
        return out


class Full(CovarianceStructure):
    """Each component has its own full covariance matrix."""

    name = "full"
    model = "VVV"

    def mahalanobis(self, X, means, prec_chol):
        out = np.empty((X.shape[0], means.shape[0]), dtype=X.dtype)
        for k in range(means.shape[0]):
            y = (X - means[k]) @ prec_chol[k]
            out[:, k] = np.einsum("ij,ij->i", y, y)
        return out

    def log_det_cholesky(self, prec_chol, n_features):
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)

    def scatter(self, X, resp, shift):
        return _centred_scatter(X, resp, shift)

    def covariances(self, counts, offsets, scatter, reg_covar):
        cov = scatter / counts[:, None, None] - offsets[:, :, None] * offsets[:, None, :]
        idx = np.arange(cov.shape[-1])
        cov[:, idx, idx] += reg_covar
        return cov

    def precisions_cholesky(self, covariances):
        return _batched_cholesky_of_inverse(covariances)

    def precisions_cholesky_from_precisions(self, precisions):
        return np.stack([_cholesky_upper_of(p, k) for k, p in enumerate(precisions)])

    def covariances_from_cholesky(self, prec_chol):
        return np.stack([_inverse_of_cholesky(p) for p in prec_chol])

    def precisions(self, prec_chol):
        return prec_chol @ np.swapaxes(prec_chol, 1, 2)

    def dense(self, covariances, n_components, n_features):
        return covariances

    def reduce_scatter(self, dense):
        return dense

    def shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def n_parameters(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) // 2

    def quad_width(self, n_features):
        return n_features * (n_features + 1) // 2

    def quad_features(self, centred, prec_chol, out):
        # Upper-triangle products x'_i x'_j (i <= j), row by row of the triangle,
        # written in place: one vectorised product per feature, none per row.
        n_features, start = centred.shape[0], 0
        for i in range(n_features):
            stop = start + n_features - i
            np.multiply(centred[i], centred[i:], out=out[start:stop])
            start = stop

    def quad_weights(self, precisions):
        rows, cols = _triu(precisions.shape[-1])
        # Off-diagonal products appear once in the features but twice in x'^T P x'.
        factor = np.where(rows == cols, -0.5, -1.0)
        return (precisions[:, rows, cols] * factor).T

    def quad_moments(self, moments, centred, resp):
        # The triangle holds D (D + 1) / 2 products.
        n_features = (math.isqrt(8 * moments.shape[1] + 1) - 1) // 2
        rows, cols = _triu(n_features)
        out = np.empty((moments.shape[0], n_features, n_features))
        out[:, rows, cols] = moments
        out[:, cols, rows] = moments
        return out

    def recentre(self, second, counts, first, d):
        cross = d[:, :, None] * first[:, None, :]
        return (
            second - cross - np.swapaxes(cross, 1, 2)
            + counts[:, None, None] * d[:, :, None] * d[:, None, :]
        )


class Tied(CovarianceStructure):
    """All components share one full covariance matrix."""

    name = "tied"
    model = "EEE"

    def mahalanobis(self, X, means, prec_chol):
        out = np.empty((X.shape[0], means.shape[0]), dtype=X.dtype)
        for k in range(means.shape[0]):
            y = (X - means[k]) @ prec_chol
            out[:, k] = np.einsum("ij,ij->i", y, y)
        return out

    def log_det_cholesky(self, prec_chol, n_features):
        return np.log(np.diagonal(prec_chol)).sum()

    def scatter(self, X, resp, shift):
        return _centred_scatter(X, resp, shift).sum(axis=0)

    def covariances(self, counts, offsets, scatter, reg_covar):
        between = (offsets * counts[:, None]).T @ offsets
        cov = (scatter - between) / counts.sum()
        cov[np.diag_indices_from(cov)] += reg_covar
        return cov

    def precisions_cholesky(self, covariances):
        return _cholesky_of_inverse(covariances, None)

    def precisions_cholesky_from_precisions(self, precisions):
        return _cholesky_upper_of(precisions, None)

    def covariances_from_cholesky(self, prec_chol):
        return _inverse_of_cholesky(prec_chol)

    def precisions(self, prec_chol):
        return prec_chol @ prec_chol.T

    def dense(self, covariances, n_components, n_features):
        return np.broadcast_to(covariances, (n_components, n_features, n_features))

    def reduce_scatter(self, dense):
        return dense.sum(axis=0)

    def shape(self, n_components, n_features):
        return (n_features, n_features)

    def n_parameters(self, n_components, n_features):
        return n_features * (n_features + 1) // 2

    def quad_width(self, n_features):
        return 1

    def quad_features(self, centred, prec_chol, out):
        # One column |L^T x'|^2 = x'^T P x': the precision is shared, so every
        # component uses the same quadratic term.
        y = prec_chol.T @ centred
        np.einsum("ij,ij->j", y, y, out=out[0])

    def quad_weights(self, precisions):
        return np.full((1, precisions.shape[0]), -0.5)

    def quad_moments(self, moments, centred, resp):
        # Responsibilities of the fast components add up per row, so their pooled
        # scatter around the centre is one product weighted by that sum.
        weight = resp.sum(axis=1)
        return (centred @ (centred * weight).T).astype(np.float64, copy=False)

    def recentre(self, second, counts, first, d):
        cross = d.T @ first
        return second - cross - cross.T + (d * counts[:, None]).T @ d

    def select(self, prec_chol, mask):
        return prec_chol

    def join_second(self, fast, fast_second, slow_second):
        return sum(s for s in (fast_second, slow_second) if s is not None)


class Diag(CovarianceStructure):
    """Each component has its own diagonal covariance."""

    name = "diag"
    model = "VVI"

    def mahalanobis(self, X, means, prec_chol):
        out = np.empty((X.shape[0], means.shape[0]), dtype=X.dtype)
        for k in range(means.shape[0]):
            out[:, k] = np.square((X - means[k]) * prec_chol[k]).sum(axis=1)
        return out

    def log_det_cholesky(self, prec_chol, n_features):
        return np.log(prec_chol).sum(axis=1)

    def scatter(self, X, resp, shift):
        return _centred_squares(X, resp, shift)

    def covariances(self, counts, offsets, scatter, reg_covar):
        return scatter / counts[:, None] - np.square(offsets) + reg_covar

    def precisions_cholesky(self, covariances):
        return _inverse_sqrt(covariances)

    def precisions_cholesky_from_precisions(self, precisions):
        return np.sqrt(_check_positive(precisions))

    def covariances_from_cholesky(self, prec_chol):
        return 1.0 / np.square(prec_chol)

    def precisions(self, prec_chol):
        return np.square(prec_chol)

    def dense(self, covariances, n_components, n_features):
        # Spherical variances (K,) broadcast over features like diagonal ones (K, D).
        per_feature = covariances[:, None] if covariances.ndim == 1 else covariances
        variances = np.broadcast_to(per_feature, (n_components, n_features))
        return variances[:, :, None] * np.eye(n_features, dtype=covariances.dtype)

    def reduce_scatter(self, dense):
        return np.diagonal(dense, axis1=1, axis2=2).copy()

    def shape(self, n_components, n_features):
        return (n_components, n_features)

    def n_parameters(self, n_components, n_features):
        return n_components * n_features

    def quad_width(self, n_features):
        return n_features

    def quad_features(self, centred, prec_chol, out):
        np.square(centred, out=out)

    def quad_weights(self, precisions):
        return -0.5 * np.diagonal(precisions, axis1=1, axis2=2).T

    def recentre(self, second, counts, first, d):
        return second - 2.0 * d * first + counts[:, None] * np.square(d)


class Spherical(Diag):
    """Each component has its own single variance."""

    name = "spherical"
    model = "VII"

    def mahalanobis(self, X, means, prec_chol):
        out = np.empty((X.shape[0], means.shape[0]), dtype=X.dtype)
        for k in range(means.shape[0]):
            out[:, k] = np.square(X - means[k]).sum(axis=1) * prec_chol[k] ** 2
        return out

    def log_det_cholesky(self, prec_chol, n_features):
        return n_features * np.log(prec_chol)

    def scatter(self, X, resp, shift):
        return _centred_squares(X, resp, shift).sum(axis=1)

    def reduce_scatter(self, dense):
        return np.trace(dense, axis1=1, axis2=2)

    def covariances(self, counts, offsets, scatter, reg_covar):
        # The mean over features of the diagonal covariances, reg_covar included.
        n_features = offsets.shape[1]
        return (scatter / counts - np.square(offsets).sum(axis=1)) / n_features + reg_covar

    def shape(self, n_components, n_features):
        return (n_components,)

    def n_parameters(self, n_components, n_features):
        return n_components

    def quad_width(self, n_features):
        return 1

    def quad_features(self, centred, prec_chol, out):
        np.einsum("ij,ij->j", centred, centred, out=out[0])

    def quad_weights(self, precisions):
        return -0.5 * precisions[None, :, 0, 0]

    def quad_moments(self, moments, centred, resp):
        return moments[:, 0]

    def recentre(self, second, counts, first, d):
        return second - 2.0 * np.einsum("kd,kd->k", d, first) + counts * np.square(d).sum(axis=1)


def _check_positive(values: np.ndarray) -> np.ndarray:
    bad = np.flatnonzero(~(np.ravel(values) > 0))
    if bad.size:
        index = np.unravel_index(bad[0], np.shape(values))
        component = int(index[0]) if index else None
        raise _degenerate(component)
    return values


def _inverse_sqrt(variances: np.ndarray) -> np.ndarray:
    return 1.0 / np.sqrt(_check_positive(variances))


class ConstrainedFull(Full):
    """An mclust model with full matrices per component, constrained in the M-step."""

    def __init__(self, model: str) -> None:
        self.model = model

    def covariances(self, counts, offsets, scatter, reg_covar):
        return self.covariances_after(None, counts, offsets, scatter, reg_covar)

    def covariances_after(self, previous, counts, offsets, scatter, reg_covar):
        # reg_covar enters as n_k * reg_covar * I in W_k: VVV's W_k / n_k + reg_covar I,
        # and the model's constraints kept.
        within = scatter - counts[:, None, None] * offsets[:, :, None] * offsets[:, None, :]
        with _zero_scatter_degenerate(within):
            return _finite(constrained.full(self.model, counts, within, previous, reg_covar))

    def n_parameters(self, n_components, n_features):
        return constrained.n_var_params(self.model, n_features, n_components)


class ConstrainedDiag(Diag):
    """An axis-aligned mclust model (EEI, VEI, EVI): variances (K, D), constrained."""

    def __init__(self, model: str) -> None:
        self.model = model

    def covariances(self, counts, offsets, scatter, reg_covar):
        within = scatter - counts[:, None] * np.square(offsets) + (counts * reg_covar)[:, None]
        with _zero_scatter_degenerate(within):
            return _finite(constrained.diagonal(self.model, counts, within))

    def n_parameters(self, n_components, n_features):
        return constrained.n_var_params(self.model, n_features, n_components)


class EqualSpherical(Spherical):
    """EII (and E, its one-feature form): one variance shared by every component."""

    def __init__(self, model: str) -> None:
        self.model = model

    def covariances(self, counts, offsets, scatter, reg_covar):
        n_features = offsets.shape[1]
        _check_univariate(self.model, n_features)
        squares = np.square(offsets).sum(axis=1)
        traces = scatter - counts * squares + counts * reg_covar * n_features
        return _finite(constrained.spherical_equal(counts, traces, n_features))

    def n_parameters(self, n_components, n_features):
        return 1


class UnivariateVariable(Spherical):
    """V: a variance per component, for one feature (VII's one-feature form)."""

    model = "V"

    def covariances(self, counts, offsets, scatter, reg_covar):
        _check_univariate(self.model, offsets.shape[1])
        return super().covariances(counts, offsets, scatter, reg_covar)


def _check_univariate(model: str, n_features: int) -> None:
    if model in constrained.UNIVARIATE_NAMES and n_features != 1:
        raise ValueError(
            f"covariance_type {model!r} is mclust's model for one feature; the data have "
            f"{n_features}: use {'EII' if model == 'E' else 'VII'} (or another of the 14 models)"
        )


@contextmanager
def _zero_scatter_degenerate(within: np.ndarray) -> Iterator[None]:
    """A constrained M-step's division by zero as the degenerate fit it is.

    A component on repeated rows has a singular scatter (with ``reg_covar=0``),
    and the models' shape normalisation divides by its determinant; the
    compiled solvers raise ZeroDivisionError there. The first component whose
    scatter has a zero (or negative) eigenvalue is named.
    """
    try:
        yield
    except ZeroDivisionError:
        smallest = (within if within.ndim == 2 else np.linalg.eigvalsh(within)).min(axis=1)
        scale = np.abs(within).reshape(len(within), -1).max(axis=1)
        bad = np.flatnonzero(smallest <= 1e-12 * scale)
        if bad.size:
            raise _degenerate(int(bad[0])) from None
        raise DegenerateComponentError(
            "Fitting failed: a component's covariance is ill-defined (a zero division in "
            f"the {within.shape[0]} components' constrained M-step), typically because it "
            "collapsed onto a few repeated points. Try fewer components, a larger reg_covar, "
            "or scaling the data.") from None


def _finite(covariances: np.ndarray) -> np.ndarray:
    """The constrained M-steps take logs and inverses: a collapsed component gives NaN."""
    bad = ~np.isfinite(covariances)
    if bad.any():
        first = int(np.argwhere(bad)[0][0]) if covariances.ndim > 1 else None
        raise _degenerate(first)
    return covariances


_FULL, _TIED, _DIAG, _SPHERICAL = Full(), Tied(), Diag(), Spherical()

#: scikit-learn's four names, in the order select_model tries them.
SKLEARN_TYPES = ("full", "tied", "diag", "spherical")
#: mclust's 14 models (volume, shape, orientation: Equal, Variable or I).
MCLUST_MODELS = constrained.MODEL_NAMES

COVARIANCE_STRUCTURES: dict[str, CovarianceStructure] = {
    "full": _FULL, "tied": _TIED, "diag": _DIAG, "spherical": _SPHERICAL,
    "EII": EqualSpherical("EII"), "VII": _SPHERICAL,
    "EEI": ConstrainedDiag("EEI"), "VEI": ConstrainedDiag("VEI"),
    "EVI": ConstrainedDiag("EVI"), "VVI": _DIAG, "EEE": _TIED,
    **{name: ConstrainedFull(name) for name in ("VEE", "EVE", "VVE", "EEV", "VEV", "EVV")},
    "VVV": _FULL,
    "E": EqualSpherical("E"), "V": UnivariateVariable(),
}


def is_constrained(covariance_type: str) -> bool:
    """Whether a model's M-step constrains its layout (not one of scikit-learn's four)."""
    structure = COVARIANCE_STRUCTURES[covariance_type]
    return structure.model not in ("VVV", "EEE", "VVI", "VII")
