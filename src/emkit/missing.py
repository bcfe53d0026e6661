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


def missingness_patterns(missing: np.ndarray) -> list[Pattern]:
    """Group rows of a boolean ``missing`` mask (n, D) by pattern.

    Rows with nothing missing and rows with everything missing are left out: the
    first go through the complete-data path, the second carry no information.
    """
    partial = missing.any(axis=1) & ~missing.all(axis=1)
    rows = np.flatnonzero(partial)
    if rows.size == 0:
        return []
    unique, inverse = np.unique(missing[rows], axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    bounds = np.cumsum(np.bincount(inverse.ravel(), minlength=len(unique)))[:-1]
    groups = np.split(rows[order], bounds)
    return [Pattern(~pattern, group) for pattern, group in zip(unique, groups, strict=True)]


@dataclass(frozen=True)
class ConditionalGaussians:
    """For one pattern, every component's marginal over the observed coordinates
    and conditional over the missing ones.

    Attributes
    ----------
    observed, missing : ndarray of int
        Coordinate indices.
    means_o : ndarray of shape (K, n_o)
    chol_oo : ndarray of shape (K, n_o, n_o)
        Lower Cholesky factors of ``Sigma_oo``.
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
    chol_oo: np.ndarray
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
        # Sigma_mo Sigma_oo^-1 = (Sigma_oo^-1 Sigma_om)^T, Sigma_oo symmetric.
        regression = np.swapaxes(np.linalg.solve(cov_oo, np.swapaxes(cov_mo, 1, 2)), 1, 2)
        conditional = covariances[:, m[:, None], m] - regression @ np.swapaxes(cov_mo, 1, 2)
        return cls(
            observed=o, missing=m, means_o=means[:, o], means_m=means[:, m], chol_oo=chol,
            log_det_oo=2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1),
            regression=regression, conditional_cov=conditional,
        )

    def log_prob(self, X_o: np.ndarray) -> np.ndarray:
        """Log marginal density of observed parts ``X_o`` (n, n_o) under each component, (n, K)."""
        centred = X_o[None, :, :] - self.means_o[:, None, :]  # (K, n, n_o)
        whitened = np.linalg.solve(self.chol_oo, np.swapaxes(centred, 1, 2))  # (K, n_o, n)
        mahalanobis = np.einsum("kon,kon->nk", whitened, whitened)
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
        out[pattern.rows] = cond.log_prob(X[np.ix_(pattern.rows, cond.observed)])


def incomplete_moments(
    model, X: np.ndarray, resp: np.ndarray, patterns: list[Pattern], shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected statistics of incomplete rows: counts (K,), first (K, D), second (K, D, D).

    Moments are taken around ``shift`` (K, D); the conditional covariance of the
    missing block is added to the second moment, weighted by the responsibilities.
    """
    k, d = shift.shape
    counts = np.zeros(k, dtype=X.dtype)
    first = np.zeros((k, d), dtype=X.dtype)
    second = np.zeros((k, d, d), dtype=X.dtype)
    for pattern in patterns:
        cond = conditionals(model, pattern)
        weights = resp[pattern.rows].T  # (K, n)
        filled = np.repeat(X[pattern.rows][None], k, axis=0)  # (K, n, D)
        filled[:, :, cond.missing] = cond.conditional_means(X[np.ix_(pattern.rows, cond.observed)])
        centred = filled - shift[:, None, :]
        total = weights.sum(axis=1)
        counts += total
        weighted = centred * weights[:, :, None]
        first += weighted.sum(axis=1)
        second += np.swapaxes(weighted, 1, 2) @ centred
        m = cond.missing
        second[:, m[:, None], m] += total[:, None, None] * cond.conditional_cov
    return counts, first, second
