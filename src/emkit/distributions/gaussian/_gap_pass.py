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

__all__ = ["AVAILABLE", "diag_log_prob", "diag_moments", "full_log_prob", "full_moments"]

_LOG_2PI = math.log(2 * math.pi)


@_jit
def _fill_row(x, mean, prec, factor, m_index, n_m, y, rhs):
    """Fill ``y`` (D,) with the row's deviation from ``mean``, the missing block set to its
    conditional mean ``-P_mm^-1 P_mo y_o``; ``factor`` (D, D) gets the lower Cholesky
    factor of ``P_mm`` in its leading n_m x n_m block. Returns ``log det P_mm``."""
    d = x.shape[0]
    for j in range(d):
        y[j] = 0.0 if math.isnan(x[j]) else x[j] - mean[j]
    log_det = 0.0
    # Cholesky of P_mm (lower), in place in factor[:n_m, :n_m].
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
    # rhs = -P_mo y_o (y is zero on missing coordinates, so P_m. y will do).
    for a in range(n_m):
        s = 0.0
        row = prec[m_index[a]]
        for j in range(d):
            s += row[j] * y[j]
        rhs[a] = -s
    _solve_cholesky(factor, n_m, rhs)
    for a in range(n_m):
        y[m_index[a]] = rhs[a]
    return log_det


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
def full_log_prob(X, means, prec, chol, log_det_chol, out):
    """Log densities (n, K) of rows ``X`` (NaN missing) under their observed coordinates.

    ``prec`` (K, D, D) precisions, ``chol`` (K, D, D) with ``P = U U'``,
    ``log_det_chol`` (K,) ``sum log diag U = -log det Sigma / 2``.
    """
    n, d = X.shape
    k_total = means.shape[0]
    m_index = np.empty(d, dtype=np.int64)
    y = np.empty(d)
    rhs = np.empty(d)
    factor = np.empty((d, d))
    for i in range(n):
        x = X[i]
        n_m = _missing_index(x, m_index)
        for k in range(k_total):
            log_det_pmm = _fill_row(x, means[k], prec[k], factor, m_index, n_m, y, rhs)
            u = chol[k]
            mahalanobis = 0.0
            for c in range(d):
                s = 0.0
                for j in range(d):
                    s += y[j] * u[j, c]
                mahalanobis += s * s
            # log det Sigma_oo = log det Sigma + log det P_mm.
            log_det_oo = -2.0 * log_det_chol[k] + log_det_pmm
            out[i, k] = -0.5 * ((d - n_m) * _LOG_2PI + log_det_oo + mahalanobis)


@_jit
def full_moments(X, resp, means, prec, counts, first, second):
    """Add the rows' expected statistics around the means to ``counts`` (K,),
    ``first`` (K, D) and ``second`` (K, D, D); ``resp`` (n, K) weights the rows."""
    n, d = X.shape
    k_total = means.shape[0]
    m_index = np.empty(d, dtype=np.int64)
    y = np.empty(d)
    rhs = np.empty(d)
    factor = np.empty((d, d))
    for i in range(n):
        x = X[i]
        n_m = _missing_index(x, m_index)
        for k in range(k_total):
            r = resp[i, k]
            if r == 0.0:
                continue
            _fill_row(x, means[k], prec[k], factor, m_index, n_m, y, rhs)
            counts[k] += r
            sk = second[k]
            for a in range(d):
                ry = r * y[a]
                first[k, a] += ry
                for b in range(a + 1):
                    sk[a, b] += ry * y[b]
            # Conditional covariance P_mm^-1, one column at a time.
            for b in range(n_m):
                for a in range(n_m):
                    rhs[a] = 1.0 if a == b else 0.0
                _solve_cholesky(factor, n_m, rhs)
                for a in range(b, n_m):
                    mi, mj = m_index[a], m_index[b]
                    sk[mi, mj] += r * rhs[a]  # mi >= mj: the lower triangle
    for k in range(k_total):  # mirror the lower triangle
        for a in range(d):
            for b in range(a):
                second[k, b, a] = second[k, a, b]


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
