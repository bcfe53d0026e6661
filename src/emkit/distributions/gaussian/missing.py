"""Gaussian components with missing values (NaN, missing at random).

The E-step of a row uses only its observed coordinates, under the marginal
Gaussian ``N(x_o | mu_o, Sigma_oo)``. The M-step uses expected statistics: the
missing part is replaced by its conditional mean
``mu_m + Sigma_mo Sigma_oo^-1 (x_o - mu_o)`` and the conditional covariance
``Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om`` is added to the second moment.

Rows are grouped by missingness pattern. The factorisations of all the
patterns of a chunk are one batched call (each ``Sigma_oo`` padded to D x D),
cached on the model for both passes of the E-step. As in the complete-data
kernel, log densities and moments are linear in quadratic features of the
rows, so each pattern costs one matrix product over its rows; everything else
is batched over patterns. :class:`ConditionalGaussians` is the same maths one
pattern at a time, with rows centred on each mean: the imputer's, and the
E-step's where the kernel judges the expansion too wide or too imprecise.

Where the patterns are nearly as many as the rows (scattered gaps), the
per-pattern work would cost more than the rows: a chunk with fewer than
``_ROWS_PER_PATTERN`` incomplete rows per pattern takes the compiled
row-by-row pass of :mod:`emkit.distributions.gaussian._gap_pass` instead
(full and tied in the precision, factorising only the missing block;
diagonal and spherical by closed forms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emkit.distributions.gaussian import _gap_pass
from emkit.distributions.gaussian.covariance import LOG_2PI, Diag, Tied
from emkit.distributions.gaussian.quadratic import GaussianKernel, PreparedChunk


def fill_with_column_means(X: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``X`` with each NaN replaced by its column's observed mean (``X`` itself if none).

    With row ``weights``, the observed means are weighted.
    """
    missing = np.isnan(X)
    if not missing.any():
        return X
    if weights is None:
        means = np.nanmean(X, axis=0)
    else:
        observed = (~missing) * weights[:, None]
        means = np.where(missing, 0, X).T @ weights / observed.sum(axis=0)
    filled = X.copy()
    filled[missing] = np.take(means, np.nonzero(missing)[1])
    return filled


@dataclass(frozen=True)
class Pattern:
    """Rows sharing one missingness pattern.

    Attributes
    ----------
    observed : ndarray of bool, shape (D,)
    rows : ndarray of int
        Indices of the rows (within the chunk) with this pattern.
    """

    observed: np.ndarray
    rows: np.ndarray

    @property
    def key(self) -> bytes:
        return np.packbits(self.observed).tobytes()


def _pattern_codes(missing: np.ndarray) -> np.ndarray:
    """One hashable code per row of a boolean mask: bytes of its packed bits."""
    packed = np.packbits(missing, axis=1)
    return np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()


def missingness_patterns(missing: np.ndarray) -> list[Pattern]:
    """Group rows of a boolean ``missing`` mask (n, D) by pattern.

    Rows with nothing missing and rows with everything missing are left out: the
    first go through the complete-data path, the second carry no information.
    """
    partial = missing.any(axis=1) & ~missing.all(axis=1)
    rows = np.flatnonzero(partial)
    if rows.size == 0:
        return []
    # Unique on packed codes is much faster than np.unique(axis=0) on the mask.
    _, first, inverse = np.unique(
        _pattern_codes(missing[rows]), return_index=True, return_inverse=True
    )
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(first)))[:-1]
    groups = np.split(rows[order], bounds)
    return [
        Pattern(~missing[rows[i]], group) for i, group in zip(first, groups, strict=True)
    ]


def grouped_by_pattern(X: np.ndarray) -> np.ndarray:
    """``X`` with its rows reordered so that rows sharing a missingness pattern are adjacent.

    EM's sums do not depend on row order, but the cost of a chunk grows with
    the number of patterns in it: grouped rows make few patterns per chunk.
    Returns ``X`` itself when nothing is missing (no copy).
    """
    order = pattern_order(X)
    return X if order is None else X[order]


def pattern_order(X: np.ndarray) -> np.ndarray | None:
    """The row order of :func:`grouped_by_pattern` (None when nothing is missing)."""
    # A finite total proves there is no NaN without a boolean copy of X (an
    # overflowing total only sends us to the exact test).
    with np.errstate(over="ignore", invalid="ignore"):
        total = X.sum()
    if np.isfinite(total):
        return None
    missing = np.isnan(X)
    if not missing.any():
        return None
    return np.argsort(_pattern_codes(missing), kind="stable")


@dataclass(frozen=True)
class GapRows:
    """The rows of a chunk with some, not all, coordinates missing, sorted by pattern.

    Attributes
    ----------
    rows : ndarray of int, shape (n,)
        Indices of the rows within the chunk, those of one pattern adjacent.
    bounds : ndarray of int, shape (P + 1,)
        Pattern ``j`` holds ``rows[bounds[j]:bounds[j + 1]]``.
    observed : ndarray of bool, shape (P, D)
        The observed mask of each pattern.
    key : bytes
        Identifies the set of patterns in the model's cache.
    """

    rows: np.ndarray
    bounds: np.ndarray
    observed: np.ndarray
    key: bytes


def gap_rows(missing: np.ndarray) -> GapRows:
    """The incomplete rows of a boolean ``missing`` mask (n, D), by pattern.

    Rows with nothing missing and rows with everything missing are left out, as
    in :func:`missingness_patterns`.
    """
    rows = np.flatnonzero(missing.any(axis=1) & ~missing.all(axis=1))
    codes, first, inverse = np.unique(
        _pattern_codes(missing[rows]), return_index=True, return_inverse=True
    )
    inverse = inverse.ravel()
    sizes = np.bincount(inverse, minlength=len(first))
    return GapRows(
        rows=rows[np.argsort(inverse, kind="stable")],
        bounds=np.concatenate([[0], np.cumsum(sizes)]),
        observed=~missing[rows[first]], key=codes.tobytes(),
    )


@dataclass(frozen=True)
class GappyChunk:
    """A chunk with missing values, prepared once for both passes of an E-step.

    Attributes
    ----------
    X : ndarray of shape (n_samples, D)
    complete_rows : ndarray of int
        Rows with nothing missing (they take the complete-data kernel).
    complete : PreparedChunk
        The kernel's preparation of those rows.
    gaps : GapRows
        The other rows, except those with nothing observed.
    centre : ndarray of shape (D,)
        The point the features are taken around (float64).
    features : ndarray of shape (F, n) or None
        Features of the rows of ``gaps`` (see :func:`gap_features`); None
        where the kernel finds the expansion too wide or too imprecise for
        these parameters, and the patterns are then taken one at a time.
    row_by_row : ndarray of shape (n, D) or None
        The rows of ``gaps`` in float64 where the patterns are so many that
        the compiled row-by-row pass (:mod:`._gap_pass`) takes them instead.
    """

    X: np.ndarray
    complete_rows: np.ndarray
    complete: PreparedChunk
    gaps: GapRows
    centre: np.ndarray
    features: np.ndarray | None
    row_by_row: np.ndarray | None = None


# Widest feature row (full quadratic terms whatever the structure) and largest
# (P, K, D, D) stack of factors the expansion is used for; beyond them, wide
# rows or many patterns, the patterns are taken one at a time.
_MAX_FEATURES = 1024
_MAX_STACK_BYTES = 2**25
# Fewer rows per pattern than this on average and the compiled row-by-row pass
# takes the incomplete rows: the per-pattern work would cost more than the rows.
_ROWS_PER_PATTERN = 8


def prepare_gappy(kernel: GaussianKernel, X: np.ndarray, missing: np.ndarray) -> GappyChunk:
    """Split a chunk with NaN into its complete rows (prepared) and its incomplete rows
    (with their features, around the kernel's centre, where the kernel expands)."""
    complete_rows = np.flatnonzero(~missing.any(axis=1))
    gaps = gap_rows(missing)
    centre = kernel.centre.astype(np.float64)
    if _gap_pass.AVAILABLE and len(gaps.observed) * _ROWS_PER_PATTERN > gaps.rows.size:
        return GappyChunk(
            X=X, complete_rows=complete_rows, complete=kernel.prepare(X[complete_rows]),
            gaps=gaps, centre=centre, features=None,
            row_by_row=np.ascontiguousarray(X[gaps.rows], dtype=np.float64),
        )
    # The kernel's float64 rounding bound holds for the marginals too: a
    # principal submatrix's inverse is no larger than the full precision.
    n_patterns, d = gaps.observed.shape
    expand = (
        bool(kernel.fast.all()) and d * (d + 1) // 2 + d + 1 <= _MAX_FEATURES
        and n_patterns * kernel.means.shape[0] * d * d * 8 <= _MAX_STACK_BYTES
    )
    return GappyChunk(
        X=X, complete_rows=complete_rows, complete=kernel.prepare(X[complete_rows]),
        gaps=gaps, centre=centre,
        features=gap_features(X[gaps.rows], centre) if expand else None,
    )


def gap_features(rows: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """``[y_i y_j (i <= j), y, 1]`` of ``rows`` (n, D), ``y = x - centre`` and 0 where
    missing: shape (F, n), float64, one contiguous row per feature.

    Every pattern's log densities and moments are then one matrix product with
    its rows' features, as in the complete-data kernel.
    """
    n, d = rows.shape
    features = np.empty((d * (d + 1) // 2 + d + 1, n))
    centred = features[-d - 1 : -1]
    np.subtract(rows.T, centre[:, None], out=centred)
    centred[np.isnan(centred)] = 0.0
    start = 0
    for i in range(d):  # one vectorised product per feature, none per row
        stop = start + d - i
        np.multiply(centred[i], centred[i:], out=features[start:stop])
        start = stop
    features[-1] = 1.0
    return features


@dataclass(frozen=True)
class ConditionalGaussians:
    """For one pattern, every component's marginal over the observed coordinates
    and conditional over the missing ones.

    Attributes
    ----------
    observed, missing : ndarray of int
        Coordinate indices.
    means_o : ndarray of shape (K, n_o)
    whitening : ndarray of shape (K, n_o, n_o)
        Inverses of the lower Cholesky factors of ``Sigma_oo``.
    log_det_oo : ndarray of shape (K,)
        ``log det Sigma_oo``.
    regression : ndarray of shape (K, n_m, n_o)
        ``Sigma_mo Sigma_oo^-1``.
    conditional_cov : ndarray of shape (K, n_m, n_m)
        ``Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om``.
    """

    observed: np.ndarray
    missing: np.ndarray
    means_o: np.ndarray
    means_m: np.ndarray
    whitening: np.ndarray
    log_det_oo: np.ndarray
    regression: np.ndarray
    conditional_cov: np.ndarray

    @classmethod
    def build(cls, means: np.ndarray, covariances: np.ndarray,
              observed: np.ndarray) -> ConditionalGaussians:
        """Factorise the (K, D, D) dense ``covariances`` for one ``observed`` mask."""
        o, m = np.flatnonzero(observed), np.flatnonzero(~observed)
        cov_oo = covariances[:, o[:, None], o]
        cov_mo = covariances[:, m[:, None], o]
        chol = np.linalg.cholesky(cov_oo)
        identity = np.broadcast_to(np.eye(o.size, dtype=chol.dtype), chol.shape)
        # Sigma_mo Sigma_oo^-1 = (Sigma_oo^-1 Sigma_om)^T, Sigma_oo symmetric.
        regression = np.swapaxes(np.linalg.solve(cov_oo, np.swapaxes(cov_mo, 1, 2)), 1, 2)
        conditional = covariances[:, m[:, None], m] - regression @ np.swapaxes(cov_mo, 1, 2)
        return cls(
            observed=o, missing=m, means_o=means[:, o], means_m=means[:, m],
            whitening=np.linalg.solve(chol, identity),
            log_det_oo=2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1),
            regression=regression, conditional_cov=conditional,
        )

    def log_prob(self, X_o: np.ndarray) -> np.ndarray:
        """Log marginal density of observed parts ``X_o`` (n, n_o) under each component, (n, K)."""
        centred = X_o[None, :, :] - self.means_o[:, None, :]  # (K, n, n_o)
        whitened = centred @ np.swapaxes(self.whitening, 1, 2)  # (K, n, n_o)
        mahalanobis = np.einsum("kno,kno->nk", whitened, whitened)
        n_observed = self.observed.size
        return -0.5 * (n_observed * LOG_2PI + self.log_det_oo + mahalanobis)

    def conditional_means(self, X_o: np.ndarray) -> np.ndarray:
        """``E[x_m | x_o, component k]`` for every component, shape (K, n, n_m)."""
        centred = X_o[None, :, :] - self.means_o[:, None, :]
        return self.means_m[:, None, :] + centred @ np.swapaxes(self.regression, 1, 2)


def conditionals(model, pattern: Pattern) -> ConditionalGaussians:
    """The pattern's factorisations, cached on the model (its parameters never change)."""
    cache = model.pattern_cache
    found = cache.get(pattern.key)
    if found is None:
        k, d = model.means.shape
        dense = model.structure.dense(model.covariances, k, d)
        found = cache[pattern.key] = ConditionalGaussians.build(
            model.means, np.asarray(dense), pattern.observed
        )
    return found


@dataclass(frozen=True)
class PatternFactors:
    """Every pattern's marginal over its observed coordinates, for every component.

    Patterns observe different numbers of coordinates; written in all ``D``
    coordinates (zero where one is missing), their factors stack into arrays
    that are built in one batched call.

    Attributes
    ----------
    precision : ndarray of shape (P, K, D, D)
        ``Sigma_oo^-1``, zero in the missing rows and columns.
    log_det : ndarray of shape (P, K)
        ``log det Sigma_oo``.
    """

    precision: np.ndarray
    log_det: np.ndarray

    @classmethod
    def build(cls, covariances: np.ndarray, observed: np.ndarray) -> PatternFactors:
        """Factorise the (K, D, D) dense ``covariances`` for the (P, D) ``observed`` masks.

        Each matrix is ``Sigma_oo`` with the identity in the missing block: block
        diagonal up to a permutation, so its Cholesky factor is that of
        ``Sigma_oo`` next to an identity, which adds nothing to the log
        determinant.
        """
        d = covariances.shape[-1]
        both = observed[:, None, :, None] & observed[:, None, None, :]
        padded = np.where(both, covariances, 0) + np.eye(d) * ~observed[:, None, None, :]
        chol = np.linalg.cholesky(padded)
        whitening = _inverse_lower(chol) * observed[:, None, :, None]
        return cls(
            precision=np.swapaxes(whitening, 2, 3) @ whitening,
            log_det=2 * np.log(np.diagonal(chol, axis1=2, axis2=3)).sum(axis=2),
        )


def _inverse_lower(lower: np.ndarray) -> np.ndarray:
    """Inverses of a stack (..., D, D) of lower-triangular matrices.

    Forward substitution, one row at a time for the whole stack: for many
    small matrices about three times faster than ``np.linalg.solve``, which
    pays a LAPACK call per matrix.
    """
    d = lower.shape[-1]
    inverse = np.zeros_like(lower)
    for i in range(d):
        row = -np.einsum("...j,...jl->...l", lower[..., i, :i], inverse[..., :i, :])
        row[..., i] += 1.0
        inverse[..., i, :] = row / lower[..., i, i, None]
    return inverse


def pattern_factors(model, gaps: GapRows) -> PatternFactors:
    """The factors of a chunk's patterns, cached on the model (its parameters never change).

    Both passes of an E-step (log densities, then statistics) use them.
    """
    key = ("patterns", gaps.key)  # not a bytes key: those are single patterns
    found = model.pattern_cache.get(key)
    if found is None:
        k, d = model.means.shape
        dense = np.asarray(model.structure.dense(model.covariances, k, d), dtype=np.float64)
        found = model.pattern_cache[key] = PatternFactors.build(dense, gaps.observed)
    return found


def _per_pattern(gaps: GapRows):
    """``(j, slice)``: each pattern and the positions of its rows in ``gaps.rows``."""
    for j in range(len(gaps.observed)):
        yield j, slice(gaps.bounds[j], gaps.bounds[j + 1])


def _patterns(gaps: GapRows) -> list[Pattern]:
    return [Pattern(gaps.observed[j], gaps.rows[block]) for j, block in _per_pattern(gaps)]


def incomplete_log_prob(model, chunk: GappyChunk, out: np.ndarray) -> None:
    """Fill ``out[rows]`` (n, K) with marginal log densities of the chunk's incomplete rows.

    With ``y = x - c`` and ``a_k = mu_k - c``, the Mahalanobis distance is
    ``y'Py - 2 a'Py + a'Pa``: linear in the row's features, with weights per
    pattern and component (``P`` the zero-padded ``Sigma_oo^-1``).
    """
    gaps = chunk.gaps
    if gaps.rows.size == 0:
        return
    if chunk.row_by_row is not None:
        out[gaps.rows] = _log_prob_row_by_row(model, chunk.row_by_row)
        return
    if chunk.features is None:
        _log_prob_by_pattern(model, chunk.X, _patterns(gaps), out)
        return
    factors = pattern_factors(model, gaps)
    precision, offsets = factors.precision, model.means - chunk.centre
    d = offsets.shape[1]
    rows, cols = np.triu_indices(d)
    # Off-diagonal products appear once in the features but twice in y'Py.
    quadratic = precision[:, :, rows, cols] * np.where(rows == cols, -0.5, -1.0)
    linear = np.einsum("pkij,kj->pki", precision, offsets)
    constant = -0.5 * (
        np.einsum("pki,ki->pk", linear, offsets) + factors.log_det
        + gaps.observed.sum(axis=1)[:, None] * LOG_2PI
    )
    weights = np.concatenate([quadratic, linear, constant[:, :, None]], axis=2)  # (P, K, F)
    log_prob = np.empty((offsets.shape[0], gaps.rows.size))
    for j, block in _per_pattern(gaps):
        log_prob[:, block] = weights[j] @ chunk.features[:, block]
    out[gaps.rows] = log_prob.T


def incomplete_moments(
    model, chunk: GappyChunk, resp: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected statistics of the chunk's incomplete rows: counts (K,), first (K, D),
    second (K, D, D).

    Moments are taken around the model's means. Per pattern and component,
    the weighted sums of the features give the observed part's moments; the
    filled rows are ``mu + G (x - mu)`` with ``G`` the identity on observed
    coordinates and ``Sigma_mo Sigma_oo^-1`` on missing ones, so their moments
    are ``G s`` and ``G S G'``; the conditional covariance of the missing
    block is added to the second moment.
    """
    k, d = model.means.shape
    gaps = chunk.gaps
    if gaps.rows.size == 0:
        return np.zeros(k), np.zeros((k, d)), np.zeros((k, d, d))
    if chunk.row_by_row is not None:
        return _moments_row_by_row(model, chunk.row_by_row, resp[gaps.rows])
    if chunk.features is None:
        return _moments_by_pattern(model, chunk.X, resp, _patterns(gaps))
    factors = pattern_factors(model, gaps)
    weights = resp[gaps.rows].astype(np.float64)
    sums = np.empty((len(gaps.observed), chunk.features.shape[0], k))  # (P, F, K)
    for j, block in _per_pattern(gaps):
        sums[j] = chunk.features[:, block] @ weights[block]
    counts, first, second = _observed_moments(
        np.swapaxes(sums, 1, 2), model.means - chunk.centre, gaps.observed
    )
    filling, conditional = _filling(model, factors, gaps.observed)
    first = np.einsum("pkij,pkj->ki", filling, first)
    second = (filling @ second @ np.swapaxes(filling, 2, 3)).sum(axis=0)
    second += np.einsum("pk,pkij->kij", counts, conditional)
    return counts.sum(axis=0), first, second


def _observed_moments(sums: np.ndarray, offsets: np.ndarray, observed: np.ndarray):
    """Counts (P, K), first (P, K, D) and second (P, K, D, D) moments of the observed
    coordinates around the means, zero in missing ones, from feature sums (P, K, F)
    taken around the centre (``offsets`` = means - centre, (K, D))."""
    n_patterns, k, _ = sums.shape
    d = offsets.shape[1]
    rows, cols = np.triu_indices(d)
    n_quad = rows.size
    around_centre = np.empty((n_patterns, k, d, d))
    around_centre[:, :, rows, cols] = sums[:, :, :n_quad]
    around_centre[:, :, cols, rows] = sums[:, :, :n_quad]
    first_c = sums[:, :, n_quad : n_quad + d]
    counts = sums[:, :, -1]
    # x - mu = (x - c) - a on observed coordinates only.
    a = offsets * observed[:, None, :]  # (P, K, D)
    cross = first_c[:, :, :, None] * a[:, :, None, :]
    second = (
        around_centre - cross - np.swapaxes(cross, 2, 3)
        + counts[:, :, None, None] * (a[:, :, :, None] * a[:, :, None, :])
    )
    return counts, first_c - counts[:, :, None] * a, second


def _filling(model, factors: PatternFactors, observed: np.ndarray):
    """Per pattern and component (P, K, D, D): the map ``G`` from observed deviations
    to filled ones (identity on observed rows, ``Sigma_mo Sigma_oo^-1`` on missing
    ones), and the conditional covariance, zero outside the missing block."""
    k, d = model.means.shape
    dense = np.asarray(model.structure.dense(model.covariances, k, d), dtype=np.float64)
    missing = ~observed[:, None, :, None]  # (P, 1, D, 1): missing rows
    regression = (dense @ factors.precision) * missing
    conditional = (dense - regression @ dense) * (missing & np.swapaxes(missing, 2, 3))
    return np.eye(d) + regression, conditional


def _log_prob_by_pattern(model, X: np.ndarray, patterns: list[Pattern], out: np.ndarray) -> None:
    """:func:`incomplete_log_prob` one pattern at a time, rows centred on each mean."""
    for pattern in patterns:
        cond = conditionals(model, pattern)
        out[pattern.rows] = cond.log_prob(X[pattern.rows][:, cond.observed])


def _moments_by_pattern(
    model, X: np.ndarray, resp: np.ndarray, patterns: list[Pattern]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`incomplete_moments` one pattern at a time, rows centred on each mean."""
    k, d = model.means.shape
    counts = np.zeros(k)
    first = np.zeros((k, d))
    second = np.zeros((k, d, d))
    for pattern in patterns:
        cond = conditionals(model, pattern)
        weights = resp[pattern.rows].T  # (K, n)
        rows = X[pattern.rows]
        filled = np.repeat(rows[None], k, axis=0)  # (K, n, D)
        filled[:, :, cond.missing] = cond.conditional_means(rows[:, cond.observed])
        centred = filled - model.means[:, None, :]
        total = weights.sum(axis=1)
        counts += total
        weighted = centred * weights[:, :, None]
        first += weighted.sum(axis=1)
        second += np.swapaxes(weighted, 1, 2) @ centred
        m = cond.missing
        second[:, m[:, None], m] += total[:, None, None] * cond.conditional_cov
    return counts, first, second


def _row_by_row_parameters(model):
    """The parameters in the compiled pass's form, cached on the model: for a diagonal
    structure the means and variances (K, D); otherwise the means, precisions, their
    Cholesky factors ``U`` (``P = U U'``), all (K, D, D), and ``sum log diag U`` (K,)."""
    found = model.pattern_cache.get("row_by_row")
    if found is None:
        k, d = model.means.shape
        means = np.ascontiguousarray(model.means, dtype=np.float64)
        if isinstance(model.structure, Diag):
            dense = model.structure.dense(model.covariances, k, d)
            variances = np.diagonal(np.asarray(dense, dtype=np.float64), axis1=1, axis2=2)
            found = (means, np.ascontiguousarray(variances))
        else:
            chol = np.asarray(model.precisions_cholesky, dtype=np.float64)
            chol = np.ascontiguousarray(np.broadcast_to(chol, (k, d, d)))
            log_det = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
            found = (means, chol @ np.swapaxes(chol, 1, 2), chol, log_det)
        model.pattern_cache["row_by_row"] = found
    return found


def _log_prob_row_by_row(model, rows: np.ndarray) -> np.ndarray:
    """:func:`incomplete_log_prob` of float64 ``rows`` (n, D) by the compiled pass, (n, K)."""
    parameters = _row_by_row_parameters(model)
    n, (k, d) = rows.shape[0], model.means.shape
    if len(parameters) == 2:
        out = np.empty((n, k))
        _gap_pass.diag_log_prob(rows, *parameters, out)
        return out
    means, precisions, chol, log_det_chol = parameters
    filled, log_det_pmm = _filled(model, rows, means, precisions)
    # y_o' Sigma_oo^-1 y_o is the filled row's y' P y = |U' y|^2, P = U U'.
    mahalanobis = np.square(filled @ chol).sum(axis=2).T
    # log det Sigma_oo = log det Sigma + log det P_mm.
    log_det_oo = log_det_pmm - 2 * log_det_chol
    n_observed = d - np.isnan(rows).sum(axis=1)
    return -0.5 * (n_observed[:, None] * LOG_2PI + log_det_oo + mahalanobis)


def _filled(model, rows, means, precisions, resp=None, second=None):
    """The compiled pass's filled deviations (K, n, D) and ``log det P_mm`` (n, K)."""
    k = means.shape[0]
    filled = np.empty((k, rows.shape[0], rows.shape[1]))
    log_det_pmm = np.empty((rows.shape[0], k))
    if resp is None:
        resp, second = np.empty((0, k)), np.empty((k, 0, 0))
    shared = isinstance(model.structure, Tied)  # one P_mm factorisation per row
    _gap_pass.fill_rows(rows, means, precisions, shared, resp, filled, log_det_pmm, second)
    return filled, log_det_pmm


def _moments_row_by_row(model, rows: np.ndarray, resp: np.ndarray):
    """:func:`incomplete_moments` of float64 ``rows`` (n, D) by the compiled pass."""
    parameters = _row_by_row_parameters(model)
    k, d = model.means.shape
    resp = np.ascontiguousarray(resp, dtype=np.float64)
    counts, first = np.zeros(k), np.zeros((k, d))
    if len(parameters) == 2:
        diagonal = np.zeros((k, d))
        _gap_pass.diag_moments(rows, resp, *parameters, counts, first, diagonal)
        # Only the diagonal of a diagonal structure's scatter is read (reduce_scatter).
        second = np.zeros((k, d, d))
        second[:, np.arange(d), np.arange(d)] = diagonal
        return counts, first, second
    means, precisions = parameters[:2]
    second = np.zeros((k, d, d))  # gets the conditional covariances
    filled, _ = _filled(model, rows, means, precisions, resp, second)
    weighted = filled * resp.T[:, :, None]
    second += np.swapaxes(weighted, 1, 2) @ filled
    return resp.sum(axis=0), weighted.sum(axis=1), second
