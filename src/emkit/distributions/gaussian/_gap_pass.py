"""Rows with missing values, one compiled pass per E-step half, row by row.

Where nearly every row has its own missingness pattern, the batched
per-pattern path of :mod:`emkit.distributions.gaussian.missing` pays a
factorisation and some Python-level work per pattern, which is then per row.
This module does the same maths one row at a time in compiled loops, and
cheaply:

- Full (and tied) covariances work in the precision ``P = Sigma^-1``. The
  best fill of a row's missing block ``m`` given its observed block ``o`` is
  ``y_m = -P_mm^-1 P_mo y_o`` (``y = x - mu``): it is the conditional mean,
  ``P_mm^-1`` is the conditional covariance, ``y_o' Sigma_oo^-1 y_o`` is the
  filled row's ``y' P y`` and ``log det Sigma_oo = log det Sigma + log det
  P_mm``. Only the small missing block ``P_mm`` is factorised, not
  ``Sigma_oo``; the Mahalanobis distance is a sum of squares ``|U' y|^2``
  (``P = U U'``), with no cancellation.
- Diagonal and spherical covariances: marginalising drops coordinates, the
  conditional mean is the component mean and the conditional variances are
  the component variances; no factorisation at all.

Compiled by numba on first use (``cache=True``); callers check
:data:`emkit.distributions.gaussian._soft_pass.AVAILABLE` first.
"""

from __future__ import annotations

import math

import numpy as np

from emkit.distributions.gaussian._soft_pass import AVAILABLE, _jit

__all__ = ["AVAILABLE", "diag_log_prob", "diag_moments", "fill_rows"]

_LOG_2PI = math.log(2 * math.pi)


@_jit
def _factor(prec, m_index, n_m, factor):
    """Lower Cholesky factor of ``P_mm`` into ``factor[:n_m, :n_m]``; returns
    ``log det P_mm``."""
    log_det = 0.0
    for a in range(n_m):
        for b in range(a + 1):
            s = prec[m_index[a], m_index[b]]
            for c in range(b):
                s -= factor[a, c] * factor[b, c]
            if a == b:
                s = math.sqrt(s)
                factor[a, a] = s
                log_det += 2.0 * math.log(s)
            else:
                factor[a, b] = s / factor[b, b]
    return log_det


@_jit
def _fill(x, mean, prec, factor, m_index, n_m, y, rhs):
    """Fill ``y`` (D,) with the row's deviation from ``mean``, the missing block set to
    its conditional mean ``-P_mm^-1 P_mo y_o`` (``factor`` from :func:`_factor`)."""
    d = x.shape[0]
    for j in range(d):
        y[j] = 0.0 if math.isnan(x[j]) else x[j] - mean[j]
    # rhs = -P_mo y_o (y is zero on missing coordinates, so P_m. y will do).
    for a in range(n_m):
        s = 0.0
        row = m_index[a]
        for j in range(d):
            s += prec[row, j] * y[j]
        rhs[a] = -s
    _solve_cholesky(factor, n_m, rhs)
    for a in range(n_m):
        y[m_index[a]] = rhs[a]


@_jit
def _inverse_lower(factor, n, inverse):
    """``inverse[:n, :n] = L^-1`` (lower), ``L`` the leading n x n block of ``factor``."""
    for b in range(n):
        for a in range(b, n):
            s = 1.0 if a == b else 0.0
            for c in range(b, a):
                s -= factor[a, c] * inverse[c, b]
            inverse[a, b] = s / factor[a, a]


@_jit
def _solve_cholesky(factor, n, v):
    """``v <- (L L')^-1 v`` in place, ``L`` the leading n x n block of ``factor``."""
    for a in range(n):
        s = v[a]
        for c in range(a):
            s -= factor[a, c] * v[c]
        v[a] = s / factor[a, a]
    for a in range(n - 1, -1, -1):
        s = v[a]
        for c in range(a + 1, n):
            s -= factor[c, a] * v[c]
        v[a] = s / factor[a, a]


@_jit
def _missing_index(x, m_index):
    n_m = 0
    for j in range(x.shape[0]):
        if math.isnan(x[j]):
            m_index[n_m] = j
            n_m += 1
    return n_m


@_jit
def fill_rows(X, means, prec, shared, resp, filled, log_det_pmm, second):
    """Fill ``filled`` (K, n, D) with each row's deviation from each mean, its missing
    block set to the conditional mean, and ``log_det_pmm`` (n, K) with ``log det P_mm``.

    With ``resp`` (n, K) not empty, also add ``resp`` times the conditional covariance
    ``P_mm^-1`` to the missing block of ``second`` (K, D, D). With ``shared`` (a tied
    covariance) ``P_mm`` is factorised once per row. The products that remain, as
    wide as the rows, are left to BLAS (see the callers).
    """
    n, d = X.shape
    k_total = means.shape[0]
    weighted = resp.shape[0] > 0
    m_index = np.empty(d, dtype=np.int64)
    rhs = np.empty(d)
    factor = np.empty((d, d))
    inverse = np.empty((d, d))
    log_det = 0.0
    for i in range(n):
        x = X[i]
        n_m = _missing_index(x, m_index)
        for k in range(k_total):
            if k == 0 or not shared:
                log_det = _factor(prec[k], m_index, n_m, factor)
                if weighted:
                    _inverse_lower(factor, n_m, inverse)
            _fill(x, means[k], prec[k], factor, m_index, n_m, filled[k, i], rhs)
            log_det_pmm[i, k] = log_det
            if not weighted:
                continue
            r = resp[i, k]
            # P_mm^-1 = L^-T L^-1: entry (a, b), a >= b, sums over c >= a.
            for a in range(n_m):
                for b in range(a + 1):
                    s = 0.0
                    for c in range(a, n_m):
                        s += inverse[c, a] * inverse[c, b]
                    s *= r
                    second[k, m_index[a], m_index[b]] += s
                    if a != b:
                        second[k, m_index[b], m_index[a]] += s


@_jit
def diag_log_prob(X, means, variances, out):
    """Log densities (n, K) of rows ``X`` (NaN missing) under diagonal Gaussians
    with ``variances`` (K, D): the observed coordinates' terms only."""
    n, d = X.shape
    k_total = means.shape[0]
    log_var = np.log(variances)
    inv_var = 1.0 / variances
    for i in range(n):
        x = X[i]
        for k in range(k_total):
            total = 0.0
            for j in range(d):
                if not math.isnan(x[j]):
                    z = x[j] - means[k, j]
                    total += _LOG_2PI + log_var[k, j] + z * z * inv_var[k, j]
            out[i, k] = -0.5 * total


@_jit
def diag_moments(X, resp, means, variances, counts, first, second_diag):
    """Add expected statistics around the means: ``counts`` (K,), ``first`` (K, D) and
    the diagonal of the second moments ``second_diag`` (K, D); a missing coordinate
    is filled with the mean and adds its variance."""
    n, d = X.shape
    k_total = means.shape[0]
    for i in range(n):
        x = X[i]
        for k in range(k_total):
            r = resp[i, k]
            counts[k] += r
            for j in range(d):
                if math.isnan(x[j]):
                    second_diag[k, j] += r * variances[k, j]
                else:
                    z = x[j] - means[k, j]
                    first[k, j] += r * z
                    second_diag[k, j] += r * z * z
