"""Gaussian components with missing values (NaN, missing at random).

The E-step of a row uses only its observed coordinates, under the marginal
Gaussian ``N(x_o | mu_o, Sigma_oo)``. The M-step uses expected statistics: the
missing part is replaced by its conditional mean
``mu_m + Sigma_mo Sigma_oo^-1 (x_o - mu_o)`` and the conditional covariance
``Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om`` is added to the second moment.

Rows are grouped by missingness pattern; every pattern is one batch of
matrix operations over all components (no Python loop over rows), and the
factorisations of a pattern are cached on the model for the whole pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emkit.families.covariance import LOG_2PI
from emkit.families.quadratic import GaussianKernel, PreparedChunk


def fill_with_column_means(X: np.ndarray) -> np.ndarray:
    """``X`` with each NaN replaced by its column's observed mean (``X`` itself if none)."""
    missing = np.isnan(X)
    if not missing.any():
        return X
    filled = X.copy()
    filled[missing] = np.take(np.nanmean(X, axis=0), np.nonzero(missing)[1])
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
    missing = np.isnan(X)
    if not missing.any():
        return X
    return X[np.argsort(_pattern_codes(missing), kind="stable")]


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
    patterns : list of Pattern
        The other rows, except those with nothing observed, by missingness pattern.
    """

    X: np.ndarray
    complete_rows: np.ndarray
    complete: PreparedChunk
    patterns: list[Pattern]


def prepare_gappy(kernel: GaussianKernel, X: np.ndarray, missing: np.ndarray) -> GappyChunk:
    """Split a chunk with NaN into its complete rows (prepared) and its patterns."""
    complete_rows = np.flatnonzero(~missing.any(axis=1))
    return GappyChunk(
        X=X, complete_rows=complete_rows, complete=kernel.prepare(X[complete_rows]),
        patterns=missingness_patterns(missing),
    )


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


def incomplete_log_prob(model, X: np.ndarray, patterns: list[Pattern],
                        out: np.ndarray) -> None:
    """Fill ``out[rows]`` (n, K) with marginal log densities of the incomplete rows."""
    for pattern in patterns:
        cond = conditionals(model, pattern)
        out[pattern.rows] = cond.log_prob(X[pattern.rows][:, cond.observed])


def incomplete_moments(
    model, X: np.ndarray, resp: np.ndarray, patterns: list[Pattern], shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected statistics of incomplete rows: counts (K,), first (K, D), second (K, D, D).

    Moments are taken around ``shift`` (K, D); the conditional covariance of the
    missing block is added to the second moment, weighted by the responsibilities.
    """
    k, d = shift.shape
    # float64 sums whatever the data dtype, like the complete-data kernel's.
    counts = np.zeros(k)
    first = np.zeros((k, d))
    second = np.zeros((k, d, d))
    for pattern in patterns:
        cond = conditionals(model, pattern)
        weights = resp[pattern.rows].T  # (K, n)
        rows = X[pattern.rows]
        filled = np.repeat(rows[None], k, axis=0)  # (K, n, D)
        filled[:, :, cond.missing] = cond.conditional_means(rows[:, cond.observed])
        centred = filled - shift[:, None, :]
        total = weights.sum(axis=1)
        counts += total
        weighted = centred * weights[:, :, None]
        first += weighted.sum(axis=1)
        second += np.swapaxes(weighted, 1, 2) @ centred
        m = cond.missing
        second[:, m[:, None], m] += total[:, None, None] * cond.conditional_cov
    return counts, first, second
