"""Derivatives of a Gaussian log density in (mean, covariance) coordinates.

What the standard errors of :mod:`emkit.latent.information` need of a Gaussian
component: per row, the gradient of ``log N(x; mu, Sigma)`` (its *score*), and
over rows weighted by ``r_i``, minus the summed second derivatives (the
component's complete-data information). The coordinates are the mean
``mu`` (``d`` entries) and the upper triangle of ``Sigma`` (``m = d (d + 1) / 2``
entries, row by row: ``Sigma[0, 0], Sigma[0, 1], ..., Sigma[d-1, d-1]``), a
symmetric parametrisation: moving ``sigma_ab`` (``a < b``) moves both
``Sigma[a, b]`` and ``Sigma[b, a]``.

With ``P = Sigma^-1``, ``e = x - mu``, ``E_ab`` the symmetric unit matrix of
``sigma_ab`` and ``l = -log|Sigma| / 2 - e' P e / 2``:

- ``dl/dmu = P e``; ``dl/dsigma_ab = tr(E_ab G)`` with ``G = (P e e' P - P) / 2``;
- ``-d2l/dmu dmu' = P``; ``-d2l/dmu dsigma_ab = P E_ab P e``;
- ``-d2l/dsigma_A dsigma_B = -tr(P A P B) / 2 + e' P A P B P e``.

Summed over rows with weights ``r_i`` the second derivatives need only the
weighted count ``N``, ``sum_i r_i e_i`` and ``sum_i r_i e_i e_i'``, so no
per-row matrix is ever formed. Every covariance structure whose covariances
are a *linear* function of its free parameters (scikit-learn's four, mclust's
EII, VII, EEI, VVI, EEE, VVV and the one-feature E and V) is this
parametrisation composed with a constant matrix (:func:`covariance_layout`);
mclust's other eight models (VEI, EVI, VEE, EVE, VVE, EEV, VEV, EVV) share
volume, shape or orientation, which are not linear in the covariances: they
get a curved chart (:mod:`emkit.distributions.gaussian.curved`).

A row with missing values (NaN) has the marginal density of its observed
entries, whose coordinates are a subset of the full ones: its derivatives are
computed per missingness pattern and placed there (:func:`pattern_row_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Models whose covariances are linear in their free parameters (see the module docstring).
LINEAR_MODELS = ("EII", "VII", "EEI", "VVI", "EEE", "VVV", "E", "V")


def upper_triangle(n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each covariance coordinate: the upper triangle, row by row."""
    return np.triu_indices(n_features)


def row_scores(X: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Gradient of each row's log density in (mean, upper triangle), shape (n, d + m)."""
    rows, cols = upper_triangle(mean.size)
    projected = (X - mean) @ precision  # P e per row (P is symmetric)
    half = 0.5 * (projected[:, rows] * projected[:, cols] - precision[rows, cols])
    # An off-diagonal coordinate moves two entries of Sigma: twice the derivative.
    half *= np.where(rows == cols, 1.0, 2.0)
    return np.hstack([projected, half])


def curvature(
    X: np.ndarray, weights: np.ndarray, mean: np.ndarray, precision: np.ndarray
) -> np.ndarray:
    """``-sum_i w_i d2/dtheta2 log N(x_i)`` in (mean, upper triangle), shape (d + m, d + m)."""
    d = mean.size
    rows, cols = upper_triangle(d)
    centred = X - mean
    count = float(weights.sum())
    first = weights @ centred
    second = (centred * weights[:, None]).T @ centred
    v = precision @ first
    # Column (a, b) of the mean-covariance block: P E_ab P sum_i w_i e_i.
    cross = precision[:, rows] * v[cols] + precision[:, cols] * v[rows]
    cross *= np.where(rows == cols, 0.5, 1.0)
    q = precision @ second @ precision
    pp = _pair_traces(precision, precision, rows, cols)
    qp = _pair_traces(q, precision, rows, cols)
    covariance_block = -0.5 * count * pp + 0.5 * (qp + qp.T)
    top = np.hstack([count * precision, cross])
    bottom = np.hstack([cross.T, covariance_block])
    return np.vstack([top, bottom])


def _pair_traces(
    x: np.ndarray, y: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """``tr(E_A y E_B x)`` for every pair of coordinates, shape (m, m).

    ``E_ab = u_ab + u_ba`` (``u_ab = e_a e_b'``, once on the diagonal), and
    ``tr(u_ab y u_cd x) = y_bc x_da``: the four unit pairs are summed and the
    diagonal coordinates, counted twice, halved.
    """
    total = (y[np.ix_(cols, rows)] * x[np.ix_(cols, rows)].T
             + y[np.ix_(cols, cols)] * x[np.ix_(rows, rows)].T
             + y[np.ix_(rows, rows)] * x[np.ix_(cols, cols)].T
             + y[np.ix_(rows, cols)] * x[np.ix_(rows, cols)].T)
    scale = np.where(rows == cols, 0.5, 1.0)
    return total * scale[:, None] * scale[None, :]


def pattern_row_scores(X: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """:func:`row_scores` of rows with missing values (NaN), shape (n, d + m).

    A row's density is the marginal of its observed entries ``O``: the
    derivatives are those of ``N(x_O; mu_O, Sigma_OO)``, whose coordinates
    (``mu_O`` and the upper triangle of ``Sigma_OO``) are a selection of the full
    ones, so they are placed there and the others are zero.
    """
    out = np.zeros((X.shape[0], mean.size + upper_triangle(mean.size)[0].size))
    for rows, observed in _patterns(X):
        select = _selection(observed, mean.size)
        precision = np.linalg.inv(covariance[np.ix_(observed, observed)])
        sub = row_scores(X[np.ix_(rows, observed)], mean[observed], precision)
        out[rows[:, None], select] = sub
    return out


def pattern_curvature(
    X: np.ndarray, weights: np.ndarray, mean: np.ndarray, covariance: np.ndarray
) -> np.ndarray:
    """:func:`curvature` of rows with missing values: each pattern's, in full coordinates."""
    size = mean.size + upper_triangle(mean.size)[0].size
    out = np.zeros((size, size))
    for rows, observed in _patterns(X):
        select = _selection(observed, mean.size)
        precision = np.linalg.inv(covariance[np.ix_(observed, observed)])
        sub = curvature(X[np.ix_(rows, observed)], weights[rows], mean[observed], precision)
        out[np.ix_(select, select)] += sub
    return out


def _patterns(X: np.ndarray):
    """``(rows, observed columns)`` of each missingness pattern with something observed."""
    missing = np.isnan(X)
    patterns, inverse = np.unique(missing, axis=0, return_inverse=True)
    for index, pattern in enumerate(patterns):
        observed = np.flatnonzero(~pattern)
        if observed.size:
            yield np.flatnonzero(inverse.ravel() == index), observed


def _selection(observed: np.ndarray, n_features: int) -> np.ndarray:
    """Full coordinates of ``(mu_O, upper triangle of Sigma_OO)``, in that order."""
    rows, cols = upper_triangle(observed.size)
    index = np.full((n_features, n_features), -1)
    full_rows, full_cols = upper_triangle(n_features)
    index[full_rows, full_cols] = n_features + np.arange(full_rows.size)
    # observed is sorted, so an upper-triangle pair stays one.
    return np.concatenate([observed, index[observed[rows], observed[cols]]])


@dataclass(frozen=True)
class CovarianceLayout:
    """How a covariance structure's free parameters give each component's covariance.

    Attributes
    ----------
    names : tuple of str
        Each free parameter, named by its first entry in ``covariances_``.
    embed : ndarray of shape (K, m, n_free)
        ``vech(Sigma_k) = embed[k] @ free``: the upper triangle of component
        ``k`` from the free parameters.
    expand : ndarray of shape (covariances_.size, n_free)
        Every stored entry of ``covariances_`` from the free parameters.
    """

    names: tuple[str, ...]
    embed: np.ndarray
    expand: np.ndarray


def covariance_layout(model: str, n_components: int, n_features: int) -> CovarianceLayout:
    """The :class:`CovarianceLayout` of an mclust model name (see :data:`LINEAR_MODELS`).

    Raises
    ------
    NotImplementedError
        For the eight models whose covariances are not linear in their
        parameters (:func:`emkit.distributions.gaussian.curved.curved_layout`).
    """
    if model not in LINEAR_MODELS:
        raise NotImplementedError(
            f"covariance model {model!r} is not linear in its parameters: its volume, shape "
            "or orientation is shared across components (use "
            "emkit.distributions.gaussian.curved.curved_layout). Linear: "
            f"{', '.join(LINEAR_MODELS)}"
        )
    k, d = n_components, n_features
    rows, cols = upper_triangle(d)
    m = rows.size
    diagonal = np.flatnonzero(rows == cols)
    if model in ("VVV", "EEE"):
        shared = model == "EEE"
        n_free = m if shared else k * m
        embed = np.zeros((k, m, n_free))
        for c in range(k):
            embed[c, :, (0 if shared else c * m) + np.arange(m)] = np.eye(m)
        names = tuple(("covariances[{0}, {1}]" if shared else "covariances[{2}, {0}, {1}]")
                      .format(a, b, c) for c in range(1 if shared else k)
                      for a, b in zip(rows, cols, strict=True))
        expand = _symmetric_expand(k, d, rows, cols, shared)
        return CovarianceLayout(names, embed, expand)
    per_component = d if model in ("VVI", "EEI") else 1
    shared = model in ("EEI", "EII", "E")
    n_free = per_component * (1 if shared else k)
    embed = np.zeros((k, m, n_free))
    for c in range(k):
        start = 0 if shared else c * per_component
        if per_component == d:
            embed[c, diagonal, start + np.arange(d)] = 1.0
        else:
            embed[c, diagonal, start] = 1.0
    if per_component == d:
        names = tuple(f"covariances[{':' if shared else c}, {j}]"
                      for c in range(1 if shared else k) for j in range(d))
        expand = np.zeros((k * d, n_free))
        for c in range(k):
            expand[c * d + np.arange(d), (0 if shared else c * d) + np.arange(d)] = 1.0
    else:
        names = ("covariances[:]",) if shared else tuple(f"covariances[{c}]" for c in range(k))
        expand = np.ones((k, 1)) if shared else np.eye(k)
    return CovarianceLayout(names, embed, expand)


def _symmetric_expand(k: int, d: int, rows: np.ndarray, cols: np.ndarray,
                      shared: bool) -> np.ndarray:
    """Stored (K, d, d) or, shared, (d, d) entries from upper-triangle parameters."""
    m = rows.size
    index = np.zeros((d, d), dtype=np.intp)
    index[rows, cols] = np.arange(m)
    index[cols, rows] = np.arange(m)
    blocks = 1 if shared else k
    expand = np.zeros((blocks * d * d, blocks * m))
    for c in range(blocks):
        entries = c * d * d + np.arange(d * d)
        expand[entries, c * m + index.ravel()] = 1.0
    return expand
