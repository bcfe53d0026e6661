"""The soft E-step of the quadratic-feature kernel, compiled: one call per chunk.

With numpy alone an E-step over a chunk is some thirty array operations, each
of which takes the GIL and writes its result through memory. This module does
the same arithmetic (see :mod:`emkit.distributions.gaussian.quadratic`) in one compiled pass
per chunk that never holds the GIL, block by block so that a block's features
stay in the core's cache between their two uses:

1. features ``phi = [quadratic terms of x - c, x - c, 1]`` of the block;
2. log densities plus log weights, ``W^T @ phi`` (BLAS);
3. responsibilities by log-sum-exp (exponentials in the data dtype, totals in float64);
4. moments ``phi @ resp`` (BLAS), added in float64.

Components the features would round too much for (see
``quadratic._ROUNDING_BUDGET``) take the direct form in the same pass: their
log densities from ``L^T (x - mu)`` and their sums from the rows centred on
their means, one small BLAS product each per block. The features still give
their approximate log densities, good enough to tell the rows such a
component cannot reach (responsibility exactly zero): only the others are
computed directly.

Compiled by numba on first use (``cache=True`` keeps the machine code between
processes). Where numba is not installed, :data:`AVAILABLE` is False and the
numpy path runs instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emkit.core._exp import _EXP_FLOOR, _EXP_TAYLOR, _LN2_HI, _LN2_LO, _LOG2E

try:
    import numba
    from numba.extending import overload
except ImportError:  # pragma: no cover - numba is a declared dependency
    numba = None

AVAILABLE = numba is not None
# Compiled lazily, on the first call; ``cache=True`` keeps the machine code on
# disk between processes. numpy's error model: a division by zero gives inf
# instead of raising, so the loops carry no checks and vectorise. Without
# numba the functions stay plain Python (and are not called: callers check
# AVAILABLE).
_JIT_OPTIONS = {"nogil": True, "cache": True, "error_model": "numpy"}
if AVAILABLE:
    _jit = numba.njit(**_JIT_OPTIONS)
else:  # pragma: no cover

    def _jit(func):
        return func

    def overload(_func, **_options):
        return _jit

# Quadratic feature layouts the compiled pass builds (see quad_features of the
# covariance structures): all products x_i x_j (i <= j), the squares x_i^2,
# or the one sum of squares |x|^2.
FULL, DIAG, SPHERICAL = 0, 1, 2

# Bytes of features per block: half of a core's L2 cache on common x86 parts,
# so that the features written in step 1 are still there for steps 2 and 4.
_BLOCK_BYTES = 2**19

# From this many features on, the moments product ``phi @ resp`` gets the
# responsibilities row-major (a transposed copy, cheap beside the product):
# measured with OpenBLAS, the product then runs up to 2.5x faster (D = 16,
# K = 8), while for fewer features the component-major operand is as fast or
# faster and the copy would cost more than the product.
_ROW_MAJOR_RESP_FROM = 64

# 1/(2k + 1) for k = 10 down to 0: the series of atanh(s) / s in s^2.
_ATANH_SERIES = tuple(1.0 / (2 * k + 1) for k in range(10, -1, -1))
# float32: Taylor series to 1/7! (truncation below 5e-9 relative on the same
# interval, under float32's rounding); exp of anything below the floor is
# below float32's smallest normal number and is written as zero.
_EXP_TAYLOR_SINGLE = tuple(np.float32(1.0 / math.factorial(k)) for k in range(7, -1, -1))
_EXP_FLOOR_SINGLE = np.float32(-87.33)
# ln 2 in two parts for float32: the high part has 12 significant bits, so
# that ``n * hi`` is exact for |n| <= 126.
_LN2_HI_SINGLE = np.float32(0.693359375)
_LN2_LO_SINGLE = np.float32(-2.12194440e-4)
# Adding and subtracting 1.5 * 2^23 rounds a float32 to the nearest integer.
_ROUND_SINGLE = np.float32(1.5 * 2**23)
_MANTISSA_MASK = (1 << 52) - 1
_EXPONENT_ZERO = 1023 << 52  # the bits of 2^0: a mantissa in [1, 2)
_SQRT2_BITS = int(np.array(math.sqrt(2.0)).view(np.int64))


def block_rows(n_phi: int) -> int:
    """Rows per block whose features, in float64, fill :data:`_BLOCK_BYTES`.

    float32 features get the same number of rows, not twice as many: measured
    with OpenBLAS, float32 products slowed down 1.8x from 856 rows (D = 16, K = 8)
    while 128 to 640 rows ran alike.
    """
    return int(np.clip(_BLOCK_BYTES // (8 * n_phi), 64, 8192))


def soft_pass(
    X: np.ndarray, centre: np.ndarray, weights_t: np.ndarray, direct: DirectTerms,
    layout: int, block: int, moments: np.ndarray, direct_sums: np.ndarray,
    log_norm: np.ndarray,
) -> bool:
    """Soft E-step of ``X``: add its sums to the accumulators, write row log-likelihoods.

    The first ``K_fast = K - K_direct`` components come from the quadratic
    features, the others from the direct form (see :class:`DirectTerms`).

    Parameters
    ----------
    X : ndarray of shape (n_samples, D)
    centre : ndarray of shape (D,)
        The reference ``c`` of the features.
    weights_t : ndarray of shape (K, n_phi)
        ``W^T`` with the log mixing weights in its constant column, fast
        components first; its dtype is the features' dtype. The direct
        components' rows give approximations, used only to skip the rows
        those components cannot reach.
    direct : DirectTerms
        The components computed around their own means.
    layout : int
        :data:`FULL`, :data:`DIAG` or :data:`SPHERICAL`.
    block : int
        Rows per block.
    moments : ndarray of shape (n_phi, K_fast), float64
        Accumulator of ``phi^T resp``, added to in place.
    direct_sums : ndarray of shape (K_direct, D + 1, D + 1), float64
        Accumulator of ``sum_r resp [x - mu, 1] [x - mu, 1]^T`` per direct
        component: second moments, first moments and count in one matrix.
    log_norm : ndarray of shape (n_samples,), float64
        Written with each row's log-likelihood (the caller sums them, pairwise).

    Returns
    -------
    ok : bool
        False when the pass stopped early, leaving the outputs incomplete: a
        row holds NaN (missing values) or has zero density under every
        component. The caller then takes the general path.
    """
    # Integers as wide as the features' floats, for the exponential's bits.
    bits_dtype = np.dtype(np.int32 if weights_t.dtype == np.float32 else np.int64)
    return _soft_pass(
        X, centre, weights_t, direct.means, direct.chol_t, direct.constants,
        direct.skip_below, layout, block, moments, direct_sums, log_norm, bits_dtype,
    )


@dataclass(frozen=True)
class DirectTerms:
    """Components whose log densities the pass computes around their own means.

    ``log N(x) = constant - 0.5 |L^T (x - mu)|^2``, as scikit-learn computes
    it: used where the quadratic features would round too much. Only for the
    rows a component may reach: see :func:`skip_distance`.

    Attributes
    ----------
    means : ndarray of shape (K_direct, D)
        In the features' dtype.
    chol_t : ndarray of shape (K_direct, D, D)
        ``L^T`` (dense, even for diagonal structures), in the features' dtype.
    constants : ndarray of shape (K_direct,), float64
        ``log det L - D/2 log 2 pi`` plus the log mixing weight.
    skip_below : ndarray of shape (K_direct,), float64
        From :func:`skip_distance` (infinite: every row is computed).
    """

    means: np.ndarray
    chol_t: np.ndarray
    constants: np.ndarray
    skip_below: np.ndarray


def skip_distance(rounding: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """How far a direct component's approximate log density must lie below the
    best fast component's for the pass to skip that row.

    Beyond the exponential's floor the row's responsibility is exactly zero
    whether the approximation is exact or not, as long as its error stays
    below the margin: ``rounding`` (``eps q``, an rms estimate measured within
    2x of the actual error) is allowed a hundredfold, plus 10.
    """
    floor = -_EXP_FLOOR_SINGLE if np.dtype(dtype) == np.float32 else -_EXP_FLOOR
    return float(floor) + 10.0 + 100.0 * np.asarray(rounding, dtype=np.float64)


@_jit
def _has_nan(X, start, b):
    """Whether rows ``start:start + b`` of ``X`` hold a NaN."""
    values = X[start : start + b].reshape(-1)
    n_nan = 0
    for j in range(values.size):
        n_nan += values[j] != values[j]
    return n_nan > 0


@_jit
def _transpose_block(X, start, rows):
    """Rows ``start:start + b`` of ``X`` into ``rows`` (D, b)."""
    n_features, b = rows.shape
    # Read along X's rows and write strided: measured 2.5x faster than the
    # other way round (reads down a column of X).
    for r in range(b):
        x = X[start + r]
        for i in range(n_features):
            rows[i, r] = x[i]


@_jit
def _build_features(rows, centre, layout, phi):
    """Write ``phi`` (n_phi, b): quadratic terms of ``rows - centre``, the centred rows, ones."""
    n_features = rows.shape[0]
    n_phi, b = phi.shape
    n_quad = n_phi - n_features - 1
    _centre_on(rows, centre, phi[n_quad : n_quad + n_features])
    if layout == FULL:
        q = 0
        for i in range(n_features):
            xi = phi[n_quad + i]
            for j in range(i, n_features):
                xj = phi[n_quad + j]
                out = phi[q]
                for r in range(b):
                    out[r] = xi[r] * xj[r]
                q += 1
    elif layout == DIAG:
        for i in range(n_features):
            xi = phi[n_quad + i]
            out = phi[i]
            for r in range(b):
                out[r] = xi[r] * xi[r]
    else:
        out = phi[0]
        for r in range(b):
            out[r] = 0.0
        for i in range(n_features):
            xi = phi[n_quad + i]
            for r in range(b):
                out[r] += xi[r] * xi[r]
    ones = phi[n_phi - 1]
    for r in range(b):
        ones[r] = 1.0


@_jit
def _centre_on(rows, mean, centred):
    """``centred[:D] = rows - mean``."""
    n_features, b = rows.shape
    for i in range(n_features):
        mi = mean[i]
        row = rows[i]
        out = centred[i]
        for r in range(b):
            out[r] = row[r] - mi


@_jit
def _direct_log_densities(
    X, start, rows, n_fast, means, chol_t, chol_rows, constants, skip_below, log_dens,
    fast_max, squares, centred, mapped, selected, packed, index, n_packed, mapped_rows,
):
    """Direct components' rows of ``log_dens``: ``constant - 0.5 |L^T (x - mu)|^2``.

    Only for the rows each may reach (see :func:`skip_distance`); the others
    keep the approximation from the features, whose exponential is zero.
    Where those are a minority of the block, they are packed row-major
    (``packed``, ``index``, ``n_packed``, kept for :func:`_direct_moments`)
    and only they go to BLAS; otherwise the whole block does, feature-major
    (``n_packed`` is then -1).
    """
    b = log_dens.shape[1]
    fast_max[:b] = -np.inf
    for k in range(n_fast):
        for r in range(b):
            fast_max[r] = max(fast_max[r], log_dens[k, r])
    for j in range(means.shape[0]):
        approx = log_dens[n_fast + j]
        reached = b
        if n_fast and skip_below[j] < np.inf:
            reached = 0
            for r in range(b):
                # A NaN approximation counts as reached.
                selected[r] = not approx[r] < fast_max[r] - skip_below[j]
                reached += selected[r]
        if 2 * reached >= b:
            n_packed[j] = -1
            _block_log_density(rows, means[j], chol_t[j], constants[j], centred, mapped,
                               squares, approx)
        else:
            m = _pack_selected(X, start, means[j], selected[:b], packed[j], index[j])
            n_packed[j] = m
            _packed_log_density(packed[j][:m], index[j], chol_rows[j], constants[j],
                                mapped_rows, approx)


@_jit
def _block_log_density(rows, mean, chol_t, constant, centred, mapped, squares, out):
    """``out = constant - 0.5 |L^T (x - mu)|^2`` for every row of the block."""
    n_features, b = rows.shape
    _centre_on(rows, mean, centred)
    np.dot(chol_t, centred[:n_features], mapped)
    squares[:b] = 0.0
    for i in range(n_features):
        mi = mapped[i]
        for r in range(b):
            squares[r] += mi[r] * mi[r]
    for r in range(b):
        out[r] = constant - 0.5 * squares[r]


@_jit
def _packed_log_density(packed, index, chol_rows, constant, mapped_rows, out):
    """``out[index] = constant - 0.5 |L^T (x - mu)|^2`` for the packed rows ``[x - mu, 1]``."""
    m, n_features = packed.shape[0], chol_rows.shape[1]
    if m == 0:
        return
    mapped = mapped_rows[: m * n_features].reshape((m, n_features))
    np.dot(packed, chol_rows, mapped)
    for r in range(m):
        square = 0.0
        for i in range(n_features):
            square += mapped[r, i] * mapped[r, i]
        out[index[r]] = constant - 0.5 * square


@_jit
def _pack_selected(X, start, mean, selected, packed, index):
    """Selected rows of the block as ``[x - mu, 1]``, row-major (read from ``X``,
    where a row is contiguous).

    Writes their block positions to ``index`` and returns their number.
    """
    n_features = X.shape[1]
    m = 0
    for r in range(selected.size):
        if selected[r]:
            x = X[start + r]
            for i in range(n_features):
                packed[m, i] = x[i] - mean[i]
            packed[m, n_features] = 1.0
            index[m] = r
            m += 1
    return m


@_jit
def _direct_moments(
    X, start, rows, n_fast, means, resp, centred, weighted, selected, packed, index,
    n_packed, weighted_rows, part, direct_sums,
):
    """Add ``sum_r resp [x - mu, 1] [x - mu, 1]^T`` of the direct components to ``direct_sums``.

    Over the rows :func:`_direct_log_densities` packed (the others have
    responsibility zero). Where it packed none, over the whole block, or
    over the rows with nonzero responsibility if they are a minority (as in
    float32 for all but a component's own cluster), packed as there.
    """
    b = centred.shape[1]
    for j in range(means.shape[0]):
        resp_j = resp[n_fast + j]
        m = n_packed[j]
        if m < 0:
            reached = 0
            for r in range(b):
                selected[r] = resp_j[r] != 0.0
                reached += selected[r]
            if 2 * reached < b:
                m = _pack_selected(X, start, means[j], selected[:b], packed[j], index[j])
        if m == 0:
            continue
        if m < 0:
            _block_sums(rows, means[j], resp_j, centred, weighted, part)
        else:
            _packed_sums(packed[j][:m], index[j], resp_j, weighted_rows, part)
        sums = direct_sums[j]
        for i in range(part.shape[0]):
            for c in range(part.shape[1]):
                sums[i, c] += part[i, c]


@_jit
def _block_sums(rows, mean, resp_j, centred, weighted, part):
    """``part = sum_r resp [x - mu, 1] [x - mu, 1]^T`` over every row of the block."""
    n_aug, b = centred.shape
    _centre_on(rows, mean, centred)
    centred[n_aug - 1] = 1.0
    for i in range(n_aug):
        ci = centred[i]
        wi = weighted[i]
        for r in range(b):
            wi[r] = ci[r] * resp_j[r]
    np.dot(weighted, centred.T, part)


@_jit
def _packed_sums(packed, index, resp_j, weighted_rows, part):
    """``part = sum_r resp [x - mu, 1] [x - mu, 1]^T`` over the packed rows."""
    m, n_aug = packed.shape
    weighted = weighted_rows[:m]
    for r in range(m):
        weight = resp_j[index[r]]
        for i in range(n_aug):
            weighted[r, i] = packed[r, i] * weight
    np.dot(weighted.T, packed, part)


def _exp_of_differences(values, offsets, out, bits):
    """``out[k, r] = exp(values[k, r] - offsets[r])`` for differences <= 0, vectorised.

    In ``out``'s dtype: float32 responsibilities need no float64
    exponentials, and float32 vectors are twice as wide. ``bits`` is integer
    scratch of shape (2 K, b), int64 for float64 and int32 for float32. Only
    compiled code calls it (the implementations are chosen by dtype when the
    caller compiles).
    """
    raise NotImplementedError("only compiled code calls _exp_of_differences")


@overload(_exp_of_differences, jit_options=_JIT_OPTIONS)
def _exp_of_differences_in_dtype(values, offsets, out, bits):
    """The float32 or float64 implementation, by ``out``'s dtype."""
    if out.dtype == numba.float32:
        return _exp_single.py_func
    return _exp_double.py_func


@_jit
def _exp_double(values, offsets, out, bits):
    """float64 exponentials: ``exp(x) = 2^n exp(t)`` with ``n = round(x / ln 2)``.

    ``exp(t)`` from its Taylor series, ``2^n`` assembled from exponent bits in
    two halves (rows ``:K`` and ``K:`` of ``bits``) so that each stays a
    normal number down to the underflow at ``-746``. Accurate to a few units
    in the last place; libm's ``exp`` is a call per value, which the compiler
    cannot vectorise.
    """
    c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2, c1, c0 = _EXP_TAYLOR
    n_rows, n_cols = out.shape
    high_bits, low_bits = bits[:n_rows], bits[n_rows:]
    for k in range(n_rows):
        for j in range(n_cols):
            x = max(values[k, j] - offsets[j], _EXP_FLOOR)
            n = math.floor(x * _LOG2E + 0.5)
            t = (x - n * _LN2_HI) - n * _LN2_LO
            p = c12
            p = p * t + c11
            p = p * t + c10
            p = p * t + c9
            p = p * t + c8
            p = p * t + c7
            p = p * t + c6
            p = p * t + c5
            p = p * t + c4
            p = p * t + c3
            p = p * t + c2
            p = p * t + c1
            out[k, j] = p * t + c0
            whole = np.int64(n)
            half = whole >> 1
            high_bits[k, j] = (half + 1023) << 52
            low_bits[k, j] = (whole - half + 1023) << 52
    high = high_bits.view(np.float64)
    low = low_bits.view(np.float64)
    for k in range(n_rows):
        for j in range(n_cols):
            out[k, j] = out[k, j] * high[k, j] * low[k, j]


@_jit
def _exp_single(values, offsets, out, bits):
    """float32 exponentials, as :func:`_exp_double` with float32 constants.

    ``2^n`` is one normal float32 for ``n >= -126``; differences below
    :data:`_EXP_FLOOR_SINGLE` give exactly zero (so that rows a component
    does not reach have responsibility zero, see :func:`_direct_moments`).
    Relative error below 1e-7.
    """
    c7, c6, c5, c4, c3, c2, c1, c0 = _EXP_TAYLOR_SINGLE
    n_rows, n_cols = out.shape
    scale_bits = bits[:n_rows]
    for k in range(n_rows):
        for j in range(n_cols):
            difference = np.float32(values[k, j] - offsets[j])
            x = max(difference, _EXP_FLOOR_SINGLE)
            n = (x * np.float32(_LOG2E) + _ROUND_SINGLE) - _ROUND_SINGLE
            t = (x - n * _LN2_HI_SINGLE) - n * _LN2_LO_SINGLE
            p = c7
            p = p * t + c6
            p = p * t + c5
            p = p * t + c4
            p = p * t + c3
            p = p * t + c2
            p = p * t + c1
            p = p * t + c0
            out[k, j] = p if difference > _EXP_FLOOR_SINGLE else np.float32(0.0)
            scale_bits[k, j] = (np.int32(n) + np.int32(127)) << np.int32(23)
    scale = scale_bits.view(np.float32)
    for k in range(n_rows):
        for j in range(n_cols):
            out[k, j] = out[k, j] * scale[k, j]


@_jit
def _log_in_place(values, bits):
    """Natural log of positive normal float64 values, vectorised like :func:`_exp_of_differences`.

    ``x = m 2^e`` with ``m`` in ``[sqrt(1/2), sqrt(2))`` read from the bits;
    ``log m = 2 atanh(s)``, ``s = (m - 1) / (m + 1)``, by its series (``s^2 <=
    0.03``: eleven terms reach 1e-17). ``bits`` is int64 scratch like ``values``.
    """
    c21, c19, c17, c15, c13, c11, c9, c7, c5, c3, c1 = _ATANH_SERIES
    as_bits = values.view(np.int64)
    for j in range(values.size):
        word = as_bits[j]
        exponent = (word >> 52) - 1023
        mantissa_bits = (word & _MANTISSA_MASK) | _EXPONENT_ZERO
        # Mantissas above sqrt(2) are halved (exponent up by one).
        upper = mantissa_bits > _SQRT2_BITS
        exponent += upper
        bits[j] = mantissa_bits - (upper << 52)
        values[j] = exponent
    mantissas = bits.view(np.float64)
    for j in range(values.size):
        m = mantissas[j]
        s = (m - 1.0) / (m + 1.0)
        s2 = s * s
        p = c21
        p = p * s2 + c19
        p = p * s2 + c17
        p = p * s2 + c15
        p = p * s2 + c13
        p = p * s2 + c11
        p = p * s2 + c9
        p = p * s2 + c7
        p = p * s2 + c5
        p = p * s2 + c3
        p = p * s2 + c1
        e = values[j]
        values[j] = e * _LN2_HI + (2.0 * s * p + e * _LN2_LO)


@_jit
def _block_arrays(n_features, n_phi, n_fast, n_components, b, dtype, bits_dtype):
    """Work arrays of one block (see :func:`_soft_pass`); those of the features
    or of the direct components are empty where there are none."""
    b_fast = b if n_fast else 0
    b_direct = b if n_fast < n_components else 0
    return (
        np.empty((n_features, b), dtype),  # rows, feature-major
        np.empty((n_phi, b_fast), dtype),  # features
        np.empty((n_components, b), dtype),  # log densities
        np.empty((n_components, b), dtype),  # exponentials
        np.empty((n_components, b), dtype),  # responsibilities, component-major
        np.empty((b, n_fast), dtype),  # and row-major
        np.empty((2 * n_components, b), bits_dtype),  # scratch bits of the exponential
        np.empty((n_features + 1, b_direct), dtype),  # [x - mu, 1] of a direct component
        np.empty((n_features + 1, b_direct), dtype),  # and times its responsibilities
        np.empty((n_features, b_direct), dtype),  # L^T (x - mu)
    )


@_jit
def _direct_arrays(chol_t, b, dtype):
    """Work arrays of the direct components, for blocks of up to ``b`` rows (empty
    where there are none)."""
    n_direct, n_features = chol_t.shape[:2]
    n_aug = n_features + 1
    b = b if n_direct else 0
    # [L; 0]: the packed rows [x - mu, 1] times it give (x - mu)^T L.
    chol_rows = np.zeros((n_direct, n_aug, n_features), dtype)
    for j in range(n_direct):
        chol_rows[j, :n_features] = chol_t[j].T
    return (
        chol_rows,
        np.empty(b, np.bool_),  # rows of the block a component reaches
        np.empty((n_direct, b, n_aug), dtype),  # and they as [x - mu, 1], row-major
        np.empty((n_direct, b), np.int64),  # and their positions in the block
        np.empty(n_direct, np.int64),  # and their number (-1: the whole block)
        np.empty(b * n_features, dtype),  # (x - mu)^T L of the packed rows
        np.empty((b, n_aug), dtype),  # packed rows times their responsibilities
        np.empty((n_aug, n_aug), dtype),  # the product of the two
    )


@_jit
def _row_max(log_dens, row_max):
    """Largest log density per row (column of ``log_dens``); False if one is ``-inf``."""
    n_components, b = log_dens.shape
    for r in range(b):
        row_max[r] = log_dens[0, r]
    for k in range(1, n_components):
        for r in range(b):
            row_max[r] = max(row_max[r], log_dens[k, r])
    for r in range(b):
        if row_max[r] == -np.inf:
            return False
    return True


@_jit
def _soft_pass(
    X, centre, weights_t, means, chol_t, constants, skip_below, layout, block, moments,
    direct_sums, log_norm, bits_dtype,
):
    n_samples, n_features = X.shape
    n_components, n_phi = weights_t.shape
    n_direct = means.shape[0]
    n_fast = n_components - n_direct
    row_major = n_phi >= _ROW_MAJOR_RESP_FROM
    dtype = weights_t.dtype
    b = min(block, n_samples)
    rows, phi, log_dens, exps, resp, resp_rows, bits, centred, weighted, mapped = (
        _block_arrays(n_features, n_phi, n_fast, n_components, b, dtype, bits_dtype)
    )
    chol_rows, selected, packed, index, n_packed, mapped_rows, weighted_rows, direct_part = (
        _direct_arrays(chol_t, b, dtype)
    )
    part = np.empty((n_phi, n_fast), dtype)
    row_max = np.empty(b)
    total = np.empty(b)
    scratch = np.empty(b, np.int64)
    for start in range(0, n_samples, block):
        if n_samples - start < b:  # the last, shorter block gets arrays of its size
            b = n_samples - start
            rows, phi, log_dens, exps, resp, resp_rows, bits, centred, weighted, mapped = (
                _block_arrays(n_features, n_phi, n_fast, n_components, b, dtype, bits_dtype)
            )
            row_max, total, scratch = row_max[:b], total[:b], scratch[:b]
        if _has_nan(X, start, b):
            return False
        _transpose_block(X, start, rows)
        if n_fast:
            _build_features(rows, centre, layout, phi)
            # The direct components' rows too: approximations, to skip rows.
            np.dot(weights_t, phi, log_dens)
        if n_direct:
            _direct_log_densities(
                X, start, rows, n_fast, means, chol_t, chol_rows, constants, skip_below,
                log_dens, row_max, total, centred, mapped, selected, packed, index, n_packed,
                mapped_rows,
            )
        if not _row_max(log_dens, row_max):
            return False
        _exp_of_differences(log_dens, row_max, exps, bits)
        total[:] = 0.0
        for k in range(n_components):
            for r in range(b):
                total[r] += exps[k, r]
        row_log_norm = log_norm[start : start + b]
        row_log_norm[:] = total
        _log_in_place(row_log_norm, scratch)
        for r in range(b):
            row_log_norm[r] += row_max[r]
            total[r] = 1.0 / total[r]
        if row_major:
            for r in range(b):
                for k in range(n_fast):
                    resp_rows[r, k] = exps[k, r] * total[r]
        for k in range(n_fast if row_major else 0, n_components):
            for r in range(b):
                resp[k, r] = exps[k, r] * total[r]
        if n_fast:
            if row_major:
                np.dot(phi, resp_rows, part)
            else:
                np.dot(phi, resp[:n_fast].T, part)
            for f in range(n_phi):
                for k in range(n_fast):
                    moments[f, k] += part[f, k]
        if n_direct:
            _direct_moments(
                X, start, rows, n_fast, means, resp, centred, weighted, selected, packed, index,
                n_packed, weighted_rows, direct_part, direct_sums,
            )
    return True
