"""M-steps of mclust's constrained covariance models (Celeux & Govaert 1995).

Every covariance is written ``Sigma_k = lambda_k D_k A_k D_k^T``: volume
``lambda_k``, shape ``A_k`` (diagonal, determinant 1) and orientation ``D_k``
(orthogonal). A model name gives, in that order, whether volume, shape and
orientation are Equal across components or Variable; ``I`` means the identity
(shape or orientation). ``EVE`` has one volume and one orientation and a shape
per component.

Given the component sizes ``n_k`` and within-component scatter matrices
``W_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T``, the M-step minimises

    sum_k  n_k log det Sigma_k + tr(W_k Sigma_k^{-1})

under the model's constraints. Closed forms exist for EII VII EEI EVI VVI EEE
EEV EVV VVV (Celeux & Govaert 1995, section 3); VEI VEE VEV alternate exact
block updates of volumes and the shared shape (or shape-orientation); EVE and
VVE update the shared orientation by sweeps of exact pairwise rotations (Flury
& Gautschi 1986, for common principal components), which reach the optimum of
mclust's majorisation-minimisation steps (Browne & McNicholas 2014, kept here as
the reference) in far fewer steps. Every block update lowers the objective, so
the likelihood never decreases.

This module is numpy on those sums (the orientation loop of EVE and VVE compiled
by numba); :mod:`emkit.distributions.gaussian.covariance` wraps it in covariance
structures.
"""

from __future__ import annotations

import numba
import numpy as np

# The 14 multivariate models, and the two univariate ones.
MODEL_NAMES = (
    "EII", "VII", "EEI", "VEI", "EVI", "VVI",
    "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
)
UNIVARIATE_NAMES = ("E", "V")

# Inner iterations of the models without a closed form: relative change of the
# objective, and a cap that is never reached on well-posed data.
INNER_TOL = 1e-12
INNER_MAX_ITER = 5000
# Sweeps of pairwise rotations for EVE's and VVE's shared orientation: a cap for
# an M-step begun afresh (well-posed data settle within tens), and the sweeps of
# an M-step begun at the current orientation. Each sweep lowers the objective, so
# a few make a generalised EM step (the likelihood still rises) and EM's own
# iterations finish the work. Where components are flat in some directions (raw
# pixels, constant within a cluster) the objective falls without end, sweep
# after sweep, towards the reg_covar floor: a cap bounds each M-step's cost. There
# (components of one row on small data: 200 sweeps still moved covariances by 1e-2)
# the start's exact orientation is arbitrary anyway, and EM's warm sweeps go on
# turning it: 20 sweeps cost 0.1 ms where 200 cost 2-4 ms (d = 3..6).
ORIENTATION_MAX_SWEEPS = 20
WARM_INNER_MAX_ITER = 5
# Pairs of orientation columns whose objective's slope along their rotation is
# below this (relative) are left as they are in a sweep (Jacobi's threshold).
PAIR_SLOPE_TOL = 1e-10
# Newton steps on a pair's angle per sweep: later sweeps return to the pair.
PAIR_NEWTON_STEPS = 2
# Newton steps on a pair's angle predicted to lower its objective by at most two
# ulps of its scale (first^2 / 2 second <= 2 eps scale) are not tried (_pair_angle).
_PAIR_ROUNDING = 4.0 * float(np.finfo(np.float64).eps)


def n_var_params(model: str, n_features: int, n_components: int) -> int:
    """Free covariance parameters of a model: mclust's ``nVarParams``.

    Examples
    --------
    >>> n_var_params("VEV", 4, 2)
    17
    """
    d, g = n_features, n_components
    tri = d * (d - 1) // 2  # an orientation
    counts = {
        "E": 1, "V": g,
        "EII": 1, "VII": g, "EEI": d, "VEI": g + d - 1, "EVI": 1 + g * (d - 1), "VVI": g * d,
        "EEE": d * (d + 1) // 2, "VEE": g + d - 1 + tri, "EVE": 1 + g * (d - 1) + tri,
        "VVE": g * d + tri, "EEV": d + g * tri, "VEV": g + d - 1 + g * tri,
        "EVV": 1 - g + g * d * (d + 1) // 2, "VVV": g * d * (d + 1) // 2,
    }
    return counts[model]


def _geometric_mean(values: np.ndarray) -> np.ndarray:
    """Geometric mean over the last axis (the determinant's ``1/d`` power of a diagonal)."""
    return np.exp(np.log(values).mean(axis=-1))


def _log_det(matrices: np.ndarray) -> np.ndarray:
    sign, value = np.linalg.slogdet(matrices)
    return np.where(sign > 0, value, -np.inf)


# ---------------------------------------------------------------------------
# Axis-aligned models: W_k enters only through its diagonal w_k (K, D).


def spherical_equal(counts: np.ndarray, traces: np.ndarray, n_features: int) -> np.ndarray:
    """EII: one variance ``sum_k tr W_k / (n d)``, repeated per component (K,)."""
    value = traces.sum() / (counts.sum() * n_features)
    return np.full(counts.shape, value)


def diagonal(model: str, counts: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Variances (K, D) of the axis-aligned models EEI, VEI, EVI from diagonals ``w``."""
    n = counts.sum()
    if model == "EEI":
        return np.broadcast_to(w.sum(axis=0) / n, w.shape).copy()
    if model == "EVI":
        # B_k = w_k / det(w_k)^(1/d); lambda = sum_k det(w_k)^(1/d) / n.
        scale = _geometric_mean(w)
        return (scale.sum() / n) * (w / scale[:, None])
    if model == "VEI":
        return _vei(counts, w)
    raise ValueError(f"{model!r} is not an axis-aligned model with a diagonal layout")


def _vei(counts: np.ndarray, w: np.ndarray) -> np.ndarray:
    """VEI: volumes ``lambda_k`` and one shape ``B``, alternately exact (loop compiled)."""
    return _vei_loop(np.asarray(counts, dtype=np.float64),
                     np.ascontiguousarray(w, dtype=np.float64), INNER_TOL, INNER_MAX_ITER)


@numba.njit(cache=True, nogil=True)
def _vei_loop(counts, w, inner_tol, max_iter):  # pragma: no cover - compiled
    K, d = w.shape
    volume = np.empty(K)
    for k in range(K):
        volume[k] = w[k].sum() / (d * counts[k])
    shape = np.zeros(d)
    previous = np.inf
    for _ in range(max_iter):
        shape[:] = 0.0
        for k in range(K):
            for i in range(d):
                shape[i] += w[k, i] / volume[k]
        # shape /= exp(mean(log(shape))), in its order, without the arrays it allocates
        # (an inner iteration on a few features costs less than an allocation).
        logs = 0.0
        for i in range(d):
            logs += np.log(shape[i])
        scale = np.exp(logs / d)
        for i in range(d):
            shape[i] /= scale
        objective = 0.0
        for k in range(K):
            total = 0.0
            for i in range(d):
                total += w[k, i] / shape[i]
            volume[k] = total / (d * counts[k])
            objective += counts[k] * np.log(volume[k])
        objective *= d  # the trace term is constant, n d
        if abs(previous - objective) <= inner_tol * abs(objective) + 1e-300:
            break
        previous = objective
    out = np.empty((K, d))
    for k in range(K):
        for i in range(d):
            out[k, i] = volume[k] * shape[i]
    return out


# ---------------------------------------------------------------------------
# Models with full matrices: W (K, D, D).


def full(
    model: str, counts: np.ndarray, W: np.ndarray, previous: np.ndarray | None = None,
    reg_covar: float = 0.0,
) -> np.ndarray:
    """Covariances (K, D, D) of the models VEE EVE VVE EEV VEV EVV from scatters ``W``.

    ``previous`` (the covariances before this M-step) starts EVE's and VVE's
    orientation iterations at the current orientation: every iteration lowers the
    objective, so the M-step then improves on the current parameters (EM's
    ascent), and near convergence it needs few iterations instead of thousands.

    ``reg_covar`` enters as ``n_k reg_covar I`` in each ``W_k``. EEV and VEV add it
    to ``W_k``'s eigenvalues instead (the same covariances in exact arithmetic):
    their orientations are ``W_k``'s eigenvectors, and a component of a row or two,
    whose scatter comes from other rows' tiny responsibilities, would have them
    rounded away by the added term (mclust adds nothing, and its EM grows such a
    component from those directions).
    """
    if model in _EIGEN_SOLVERS:
        return _EIGEN_SOLVERS[model](counts, W, np.asarray(counts) * reg_covar)
    if reg_covar:
        W = W + (np.asarray(counts) * reg_covar)[:, None, None] * np.eye(W.shape[-1])
    if model in _SHARED_ORIENTATION:
        if previous is None:
            return _common_orientation(counts, W, _SHARED_ORIENTATION[model])
        return _common_orientation(counts, W, _SHARED_ORIENTATION[model],
                                   orientation_of(previous), WARM_INNER_MAX_ITER)
    solver = _FULL_SOLVERS.get(model)
    if solver is None:
        raise ValueError(f"{model!r} is not a model with a full layout")
    return solver(counts, W)


def orientation_of(covariances: np.ndarray) -> np.ndarray:
    """The orientation ``D`` shared by covariances ``D A_k D^T`` (EVE, VVE).

    The eigenvectors of a sum weighted by unequal coefficients: a single
    component's may be ambiguous where its own eigenvalues tie.
    """
    covariances = np.asarray(covariances, dtype=np.float64)
    weights = 1.0 / (np.arange(covariances.shape[0]) + np.pi)
    return np.ascontiguousarray(np.linalg.eigh(np.tensordot(weights, covariances, 1))[1])


def _eev(counts, W, shifts=0.0):
    # Orientation D_k: eigenvectors of W_k; one shape-volume: the summed eigenvalues / n.
    values, vectors = _eigen_descending(W)
    values = values + np.reshape(shifts, (-1, 1))
    common = values.sum(axis=0) / counts.sum()
    return np.einsum("kij,j,klj->kil", vectors, common, vectors)


def _evv(counts, W):
    # C_k = W_k / det(W_k)^(1/d); lambda = sum_k det(W_k)^(1/d) / n.
    d = W.shape[-1]
    scale = np.exp(_log_det(W) / d)
    return (scale.sum() / counts.sum()) * (W / scale[:, None, None])


def _vee(counts, W):
    """VEE: volumes and one shape-orientation ``C``, alternately exact (loop compiled)."""
    return _vee_loop(np.asarray(counts, dtype=np.float64),
                     np.ascontiguousarray(W, dtype=np.float64), INNER_TOL, INNER_MAX_ITER)


@numba.njit(cache=True, nogil=True)
def _vee_loop(counts, W, inner_tol, max_iter):  # pragma: no cover - compiled
    """VEE's alternation: ``C = S / det(S)^(1/d)`` with ``S = sum_k W_k / lambda_k``, then
    ``lambda_k = tr(W_k C^-1) / (d n_k)``, until the objective settles.

    ``det S`` and ``S^-1`` from one Cholesky factor of ``S`` (symmetric positive
    definite: a sum of scatters with ``reg_covar`` on their diagonals), in arrays
    allocated once; ``C^-1 = det(S)^(1/d) S^-1``. Should a pivot not be positive,
    that iteration takes LAPACK's determinant and inverse as before.
    """
    K, d = W.shape[0], W.shape[1]
    volume = np.empty(K)
    for k in range(K):
        volume[k] = np.trace(W[k]) / (d * counts[k])
    shape = np.zeros((d, d))
    lower = np.zeros((d, d))
    inverse = np.zeros((d, d))
    previous = np.inf
    for _ in range(max_iter):
        shape[:] = 0.0
        for k in range(K):
            weight = 1.0 / volume[k]
            for a in range(d):
                for b in range(d):
                    shape[a, b] += W[k, a, b] * weight
        log_det = _cholesky_inverse(shape, lower, inverse)
        if np.isfinite(log_det):
            scale = np.exp(log_det / d)
            for a in range(d):
                for b in range(d):
                    shape[a, b] /= scale
                    inverse[a, b] *= scale
        else:
            shape /= np.exp(np.linalg.slogdet(shape)[1] / d)
            inverse[:] = np.linalg.inv(shape)
        objective = 0.0
        for k in range(K):
            total = 0.0
            for a in range(d):
                for b in range(d):
                    total += W[k, a, b] * inverse[b, a]
            volume[k] = total / (d * counts[k])
            objective += counts[k] * np.log(volume[k])
        objective *= d
        if abs(previous - objective) <= inner_tol * abs(objective) + 1e-300:
            break
        previous = objective
    out = np.empty((K, d, d))
    for k in range(K):
        out[k] = volume[k] * shape
    return out


@numba.njit(cache=True, nogil=True)
def _cholesky_log_det(S, lower):  # pragma: no cover - compiled
    """``log det S`` of a symmetric matrix from its Cholesky factor (into ``lower``, (D, D));
    NaN where a pivot is not positive."""
    d = S.shape[0]
    log_det = 0.0
    for j in range(d):
        pivot = S[j, j]
        for m in range(j):
            pivot -= lower[j, m] * lower[j, m]
        if not pivot > 0.0:
            return np.nan
        root = np.sqrt(pivot)
        lower[j, j] = root
        log_det += np.log(root)
        for i in range(j + 1, d):
            value = S[i, j]
            for m in range(j):
                value -= lower[i, m] * lower[j, m]
            lower[i, j] = value / root
    return 2.0 * log_det  # (doubling is exact: the sum of the doubled logs, as before)


@numba.njit(cache=True, nogil=True)
def _cholesky_inverse(S, lower, inverse):  # pragma: no cover - compiled
    """``log det S`` and ``S^-1`` (into ``inverse``) of a symmetric positive definite ``S``.

    ``S = L L^T``; ``S^-1 = L^-T L^-1``. Returns NaN (``inverse`` then
    undefined) where a pivot is not positive. ``lower`` is (D, D) scratch.
    """
    d = S.shape[0]
    log_det = _cholesky_log_det(S, lower)
    if np.isnan(log_det):
        return log_det
    # L^-1 by forward substitution, into the lower triangle of ``inverse``'s transpose
    # (column ``col`` of L^-1 held in row ``col``): then S^-1 = (L^-1)^T L^-1.
    for col in range(d):
        for i in range(d):
            inverse[col, i] = 0.0
        for i in range(col, d):
            value = 1.0 if i == col else 0.0
            for m in range(col, i):
                value -= lower[i, m] * inverse[col, m]
            inverse[col, i] = value / lower[i, i]
    # inverse[col, i] = (L^-1)[i, col]; (S^-1)[a, b] = sum_i (L^-1)[i, a] (L^-1)[i, b].
    for a in range(d):
        for b in range(a, d):
            total = 0.0
            for i in range(b, d):
                total += inverse[a, i] * inverse[b, i]
            lower[a, b] = total
    for a in range(d):
        for b in range(a, d):
            inverse[a, b] = lower[a, b]
            inverse[b, a] = lower[a, b]
    return log_det


def _vev(counts, W, shifts=0.0):
    """VEV: VEI on the eigenvalues of each ``W_k``, turned by its eigenvectors ``D_k``.

    With each orientation free, ``tr(W_k D_k A^-1 D_k^T) / lambda_k`` is least
    for ``D_k`` the eigenvectors of ``W_k`` (largest eigenvalue with the largest
    entry of ``A``); what remains is VEI's problem on those eigenvalues.
    """
    values, vectors = _eigen_descending(W)
    diagonals = _vei(counts, values + np.reshape(shifts, (-1, 1)))  # lambda_k A, shape (K, D)
    return np.einsum("kij,kj,klj->kil", vectors, diagonals, vectors)


def _common_orientation(counts, W, variable_volume: bool, start=None,
                        max_iter: int | None = None):
    """EVE (one volume) and VVE (a volume per component): one orientation ``D``.

    Given ``D``, the per-component diagonals ``diag(D^T W_k D)`` give the
    shapes (and volumes) exactly; what remains is a function of ``D`` alone
    (:func:`_orientation_objective`), lowered by sweeps of exact pairwise
    rotations (:func:`_orientation_loop`, compiled). Without ``start`` the
    sweeps begin at the orientation of the pooled scatter; ``max_iter`` caps
    them (default :data:`ORIENTATION_MAX_SWEEPS`).
    """
    W = np.ascontiguousarray(W, dtype=np.float64)
    if start is None:
        start = np.linalg.eigh(W.sum(axis=0))[1]
    if max_iter is None:
        max_iter = ORIENTATION_MAX_SWEEPS
    return _orientation_loop(np.asarray(counts, dtype=np.float64), W, variable_volume,
                             np.ascontiguousarray(start, dtype=np.float64),
                             INNER_TOL, max_iter)


@numba.njit(cache=True, nogil=True)
def _orientation_loop(counts, W, variable_volume, start, inner_tol, max_iter):  # pragma: no cover
    """:func:`_common_orientation`'s iterations: EVE's or VVE's M-step (see
    :func:`_shared_orientation`), the orientation turned by the model's own objective."""
    return _shared_orientation(counts, W, variable_volume, variable_volume, start, inner_tol,
                               max_iter)


@numba.njit(cache=True, nogil=True)
def _shared_orientation(counts, W, turn_variable, variable_volume, start, inner_tol,
                        max_iter):  # pragma: no cover
    """Sweeps of exact pairwise rotations for a shared orientation; the covariances.

    ``turn_variable``: the sweeps lower VVE's profile objective (else EVE's);
    ``variable_volume``: the covariances given the final ``D`` are VVE's (else
    EVE's). The two differ only in mclust's VVE M-step (``turn_variable``
    False, ``variable_volume`` True): its majorisation steps for ``D`` weigh
    every component alike, which is EVE's objective (``sum_k g_k``, below).

    Flury & Gautschi (1986) for common principal components (VVE is that model):
    ``D`` is turned in the plane of each pair of its columns in turn (a Jacobi
    sweep) by an angle that lowers the objective along that rotation: safeguarded
    Newton steps from the current angle towards its minimiser
    (:func:`_pair_angle`). A rotation changes only
    two entries of each ``diag(D^T W_k D)``, so a sweep over the ``d(d-1)/2``
    pairs costs about one majorisation step but converges like Jacobi's method:
    tens of sweeps where the MM steps need thousands. Every accepted rotation
    lowers the objective, so each sweep does (EM's ascent). ``max_iter`` counts
    sweeps; ``B_k = D^T W_k D`` is recomputed from ``D`` before each.

    The state of a sweep lives in arrays allocated once per call (an M-step runs
    this every EM iteration): ``L_k`` (the sum of the logs of ``diag(B_k)``) and,
    for EVE, ``g_k = exp(L_k / d)`` are carried from pair to pair, taken from
    the accepted trial's terms (which computed them at the new angle), so a pair
    costs no transcendental function beyond its trials' (see :func:`_pair_terms`).
    """
    K, d = W.shape[0], W.shape[1]
    orientation = start.copy()
    variances = np.empty((K, d))
    out = np.empty((K, d, d))
    _shared_orientation_into(counts, W, turn_variable, variable_volume, orientation,
                             inner_tol, max_iter, variances, out, np.empty((K, d, d)),
                             np.empty((d, d)), np.empty((6, K)), np.empty(K))
    return out


@numba.njit(cache=True, nogil=True)
def _shared_orientation_into(counts, W, turn_variable, variable_volume, orientation,
                             inner_tol, max_iter, variances, out, rotated, scratch, state,
                             log_counts):  # pragma: no cover
    """:func:`_shared_orientation` in given arrays (the compiled EM loop's, allocated once).

    ``orientation`` (D, D) is the start, turned in place to the final ``D``;
    ``variances`` (K, D) and ``out`` (K, D, D) receive ``diag(A_k)`` (with the
    volume) and the covariances. Scratch: ``rotated`` (K, D, D), ``scratch``
    (D, D), ``state`` (6, K), ``log_counts`` (K).
    """
    K, d = W.shape[0], W.shape[1]
    n = counts.sum()
    # Rows of state: L_k and g_k; a trial's log((m + q)(m - q) / (a c)) and g_k at its
    # angle (written by _pair_terms); those of the last accepted trial (by _pair_angle).
    logs, scales, kept_logs, kept_scales = state[0], state[1], state[4], state[5]
    for k in range(K):
        log_counts[k] = np.log(counts[k])
    previous = np.inf
    for sweep in range(max_iter + 1):
        _turn_scatters(W, orientation, rotated, scratch)
        objective = _sweep_state(counts, n, log_counts, rotated, turn_variable, logs, scales)
        if (abs(previous - objective) <= inner_tol * abs(objective) + 1e-300
                or sweep == max_iter):
            break
        previous = objective
        for i in range(d - 1):
            for j in range(i + 1, d):
                t, cos, sin = _pair_angle(counts, n, rotated, logs, scales, turn_variable,
                                          i, j, state)
                if t != 0.0:
                    _rotate(rotated, orientation, i, j, cos, sin)
                    for k in range(K):
                        logs[k] += kept_logs[k]
                        scales[k] = kept_scales[k]
    if variable_volume:
        for k in range(K):
            for i in range(d):
                variances[k, i] = rotated[k, i, i] / counts[k]
    else:
        volume = scales.sum() / n
        for k in range(K):
            for i in range(d):
                variances[k, i] = volume * rotated[k, i, i] / scales[k]
    _oriented_into(orientation, variances, out)


@numba.njit(cache=True, nogil=True)
def _turn_scatters(W, orientation, rotated, scratch):  # pragma: no cover - compiled
    """``B_k = D^T W_k D`` into ``rotated`` (upper triangle, mirrored); ``scratch`` (D, D)."""
    K, d = W.shape[0], W.shape[1]
    for k in range(K):
        for a in range(d):
            for j in range(d):
                total = 0.0
                for b in range(d):
                    total += W[k, a, b] * orientation[b, j]
                scratch[a, j] = total
        for i in range(d):
            for j in range(i, d):
                total = 0.0
                for a in range(d):
                    total += orientation[a, i] * scratch[a, j]
                rotated[k, i, j] = total
                rotated[k, j, i] = total


@numba.njit(cache=True, nogil=True)
def _sweep_state(counts, n, log_counts, rotated, variable_volume, logs,
                 scales):  # pragma: no cover - compiled
    """``L_k`` and (EVE) ``g_k`` into ``logs`` and ``scales``; the profile objective of ``D``.

    VVE: ``sum_k n_k sum_i log(B_k[i, i] / n_k) = sum_k n_k (L_k - d log n_k)``;
    EVE: ``n d log(sum_k g_k / n)`` with ``g_k = exp(L_k / d)`` the geometric mean
    of ``diag(B_k)`` (:func:`_orientation_objective`).
    """
    K, d = rotated.shape[0], rotated.shape[1]
    objective = 0.0
    for k in range(K):
        total = 0.0
        for i in range(d):
            total += np.log(rotated[k, i, i])
        logs[k] = total
        if variable_volume:
            objective += counts[k] * (total - d * log_counts[k])
        else:
            scales[k] = np.exp(total / d)
            objective += scales[k]
    if variable_volume:
        return objective
    return n * d * np.log(objective / n)


@numba.njit(cache=True, nogil=True)
def _oriented(orientation, variances):  # pragma: no cover - compiled
    """``D diag(a_k) D^T`` for each row ``a_k`` of ``variances``: one shared orientation."""
    K, d = variances.shape
    out = np.empty((K, d, d))
    _oriented_into(orientation, variances, out)
    return out


@numba.njit(cache=True, nogil=True)
def _oriented_into(orientation, variances, out):  # pragma: no cover - compiled
    """:func:`_oriented` into ``out`` (K, D, D)."""
    K, d = variances.shape
    for k in range(K):
        for i in range(d):
            for m in range(i, d):
                total = 0.0
                for j in range(d):
                    total += orientation[i, j] * variances[k, j] * orientation[m, j]
                out[k, i, m] = total
                out[k, m, i] = total


@numba.njit(cache=True, nogil=True)
def _orientation_objective(counts, rotated, variable_volume):  # pragma: no cover
    """The profile objective of ``D`` from ``B_k = D^T W_k D``: what the M-step lowers.

    VVE: ``sum_k n_k sum_i log(B_k[i, i] / n_k)``; EVE: ``n d log(sum_k g_k / n)``
    with ``g_k`` the geometric mean of ``diag(B_k)``.
    """
    K, d = rotated.shape[0], rotated.shape[1]
    if variable_volume:
        objective = 0.0
        for k in range(K):
            for i in range(d):
                objective += counts[k] * np.log(rotated[k, i, i] / counts[k])
        return objective
    n = counts.sum()
    scale_sum = 0.0
    for k in range(K):
        total = 0.0
        for i in range(d):
            total += np.log(rotated[k, i, i])
        scale_sum += np.exp(total / d)
    return n * d * np.log(scale_sum / n)


@numba.njit(cache=True, nogil=True)
def _pair_slope(counts, rotated, scales, variable_volume, i, j):  # pragma: no cover
    """:func:`_pair_terms` at ``t = 0`` (the current ``D``), with no transcendental call.

    There ``q = u``, ``dq = v``, ``m + q = a`` and ``m - q = c``; VVE's value
    (relative to ``t = 0``) is 0 and EVE's is ``sum_k g_k``, carried in ``scales``.
    """
    K = rotated.shape[0]
    d = rotated.shape[1]
    value, first, second = 0.0, 0.0, 0.0
    for k in range(K):
        a, c, b = rotated[k, i, i], rotated[k, j, j], rotated[k, i, j]
        if a <= 0.0 or c <= 0.0:
            return np.inf, 0.0, 0.0
        u = 0.5 * (a - c)
        ip, im = 1.0 / a, 1.0 / c
        dh = b * (ip - im)
        d2h = u * (im - ip) - b * b * (ip * ip + im * im)
        if variable_volume:
            first += counts[k] * dh
            second += counts[k] * d2h
        else:
            e = scales[k]
            de, d2e = dh / d, d2h / d
            value += e
            first += e * de
            second += e * (d2e + de * de)
    return value, first, second


@numba.njit(cache=True, nogil=True)
def _pair_terms(counts, rotated, logs, variable_volume, i, j, cos, sin,
                state):  # pragma: no cover
    """The objective along a rotation of columns ``i, j`` by ``t / 2``, and two derivatives.

    ``cos`` and ``sin`` are those of ``t``. Turned by ``theta``, ``B[i, i]``
    becomes ``m + q`` and ``B[j, j]`` ``m - q`` with ``m`` their mean and
    ``q = u cos 2 theta + v sin 2 theta`` (``u`` half their difference,
    ``v = B[i, j]``). VVE's objective changes by
    ``sum_k n_k log((m + q)(m - q))``; EVE's is increasing in
    ``sum_k exp((L_k + log((m + q)(m - q)) - log B[i, i] B[j, j]) / d)`` (``L_k``
    the sum of the logs of ``diag(B_k)``): that sum is returned for EVE. Each
    ``k``'s log ratio and (EVE) exponential go to rows 2 and 3 of ``state``:
    ``L_k`` and ``g_k`` after the rotation, should it be taken.
    """
    K, d = rotated.shape[0], rotated.shape[1]
    value, first, second = 0.0, 0.0, 0.0
    for k in range(K):
        a, c, b = rotated[k, i, i], rotated[k, j, j], rotated[k, i, j]
        m, u = 0.5 * (a + c), 0.5 * (a - c)
        q = u * cos + b * sin
        dq = -u * sin + b * cos
        plus, minus = m + q, m - q
        if plus <= 0.0 or minus <= 0.0:
            return np.inf, 0.0, 0.0
        ip, im = 1.0 / plus, 1.0 / minus
        dh = dq * (ip - im)
        d2h = q * (im - ip) - dq * dq * (ip * ip + im * im)
        # Relative to t = 0 (the constant a c dropped): one log, not two.
        ratio = np.log(plus * minus / (a * c))
        state[2, k] = ratio
        if variable_volume:
            value += counts[k] * ratio
            first += counts[k] * dh
            second += counts[k] * d2h
        else:
            e = np.exp((logs[k] + ratio) / d)
            state[3, k] = e
            de, d2e = dh / d, d2h / d
            value += e
            first += e * de
            second += e * (d2e + de * de)
    return value, first, second


@numba.njit(cache=True, nogil=True)
def _pair_angle(counts, n, rotated, logs, scales, variable_volume, i, j,
                state):  # pragma: no cover
    """The angle ``t`` (twice the rotation's) that lowers the pair's objective most nearby.

    ``PAIR_NEWTON_STEPS`` Newton steps from ``t = 0`` (the current ``D``), each at
    most a quarter turn of ``t``, halved until the objective falls; 0 where no
    step lowers it. Returns ``(t, cos t, sin t)``; the accepted trial's log
    ratios and (EVE) exponentials are left in rows 4 and 5 of ``state``.
    """
    base, first, second = _pair_slope(counts, rotated, scales, variable_volume, i, j)
    # A slope this small moves the objective by ~slope^2 / curvature: nothing.
    scale = n if variable_volume else base
    t, value = 0.0, base
    cos_t, sin_t = 1.0, 0.0
    K = rotated.shape[0]
    for _ in range(PAIR_NEWTON_STEPS):
        if abs(first) <= PAIR_SLOPE_TOL * scale:
            break
        # A Newton step predicted to lower the objective (first^2 / 2 second) by at
        # most two ulps of the pair's scale is not tried: its trials would compare
        # values equal to rounding (sums of K terms, each within an ulp or two) and
        # fail, up to 40 halvings of K logs each, or pass by chance.
        if second > 0.0 and first * first <= _PAIR_ROUNDING * second * scale:
            break
        step = -first / second if second > 0.0 else -np.sign(first) * 0.25
        if abs(step) > 0.785:
            step = np.sign(step) * 0.785
        improved = False
        for _ in range(40):
            cos, sin = np.cos(t + step), np.sin(t + step)
            trial, trial_first, trial_second = _pair_terms(counts, rotated, logs,
                                                           variable_volume, i, j, cos, sin,
                                                           state)
            if trial < value:
                improved = True
                break
            step *= 0.5
        if not improved:
            break
        t += step
        cos_t, sin_t = cos, sin
        for k in range(K):
            state[4, k] = state[2, k]
            state[5, k] = state[3, k]
        value, first, second = trial, trial_first, trial_second
        if abs(step) <= 1e-13:
            break
    if value < base:
        return t, cos_t, sin_t
    return 0.0, 1.0, 0.0


@numba.njit(cache=True, nogil=True)
def _rotate(rotated, orientation, i, j, cos, sin):  # pragma: no cover
    """Turn columns ``i, j`` of ``D`` by ``t / 2`` (from cos and sin of ``t``); update all ``B_k``.

    ``|t| <= pi / 2`` (two Newton steps of at most 0.785), so ``cos(t / 2) > 0`` and
    the half-angle formulas give it without a trigonometric call.
    """
    K, d = rotated.shape[0], rotated.shape[1]
    c = np.sqrt(0.5 * (1.0 + cos))
    s = sin / (2.0 * c)
    for k in range(K):
        for m in range(d):
            bi, bj = rotated[k, m, i], rotated[k, m, j]
            rotated[k, m, i] = c * bi + s * bj
            rotated[k, m, j] = -s * bi + c * bj
        for m in range(d):
            bi, bj = rotated[k, i, m], rotated[k, j, m]
            rotated[k, i, m] = c * bi + s * bj
            rotated[k, j, m] = -s * bi + c * bj
    for m in range(d):
        di, dj = orientation[m, i], orientation[m, j]
        orientation[m, i] = c * di + s * dj
        orientation[m, j] = -s * di + c * dj


@numba.njit(cache=True, nogil=True)
def _mm_orientation_loop(counts, W, variable_volume, start, inner_tol,
                         max_iter):  # pragma: no cover
    """The majorisation (MM) iterations for the shared orientation (numba; numpy's steps).

    Browne & McNicholas (2014), as mclust runs them: each step lowers the
    objective, but in many dimensions thousands are needed (digits' 64 features:
    tens of milliseconds a step, and still far off after 50). Kept as the
    reference for :func:`_orientation_loop`, which reaches the same optimum.
    """
    K, d = W.shape[0], W.shape[1]
    n = counts.sum()
    largest_w = np.empty(K)
    for k in range(K):
        largest_w[k] = np.linalg.eigvalsh(W[k])[-1]
    orientation = start.copy()
    rotated = np.empty((K, d))
    variances = np.empty((K, d))
    previous = np.inf
    for iteration in range(max_iter):
        for k in range(K):  # diag(D^T W_k D)
            for i in range(d):
                total = 0.0
                for j in range(d):
                    inner = 0.0
                    for m in range(d):
                        inner += W[k, j, m] * orientation[m, i]
                    total += orientation[j, i] * inner
                rotated[k, i] = total
        objective = 0.0
        if variable_volume:
            for k in range(K):
                for i in range(d):
                    variances[k, i] = rotated[k, i] / counts[k]
                    objective += counts[k] * np.log(variances[k, i])
        else:
            scale_sum = 0.0
            for k in range(K):
                scale = np.exp(np.log(rotated[k]).mean())
                scale_sum += scale
                for i in range(d):
                    variances[k, i] = rotated[k, i] / scale
            volume = scale_sum / n
            variances *= volume
            objective = n * d * np.log(volume)
        if abs(previous - objective) <= inner_tol * abs(objective) + 1e-300:
            break
        previous = objective
        inverse = 1.0 / variances
        # W_k D, for every k: the product both majorisers use.
        H = np.zeros((d, d))
        second = iteration % 2 == 1
        for k in range(K):
            WD = W[k] @ orientation
            if second:
                beta = inverse[k].max()
                for i in range(d):
                    for m in range(d):
                        H[i, m] += WD[i, m] * (beta - inverse[k, m])
            else:
                for i in range(d):
                    for m in range(d):
                        H[i, m] += (largest_w[k] * orientation[i, m] - WD[i, m]) * inverse[k, m]
        u, _, vt = np.linalg.svd(H)
        orientation = u @ vt
    return _oriented(orientation, variances)


def _majorised_orientation(W, orientation, inverse, largest_w, second: bool):
    """One MM step for ``D`` (Browne & McNicholas 2014; Kiers 2002).

    ``f(D) = sum_k tr(W_k D M_k D^T)`` is majorised at ``D0`` by a function linear
    in ``D``: with ``alpha_k`` the largest eigenvalue of ``W_k``,
    ``tr((W_k - alpha_k I) D M_k D^T)`` is concave in ``D`` (and the rest constant
    on orthogonal matrices); or, in turn, with ``beta_k`` the largest entry of
    ``M_k``, ``tr(W_k D (M_k - beta_k I) D^T)`` is. The minimiser of
    ``-tr(H^T D)`` over orthogonal ``D`` is ``U V^T`` from the SVD ``H = U S V^T``.
    """
    if second:
        beta = inverse.max(axis=1)
        H = np.einsum("kij,jl,kl->il", W, orientation, beta[:, None] - inverse)
    else:
        H = (largest_w[:, None, None] * orientation[None] * inverse[:, None, :]).sum(axis=0)
        H -= np.einsum("kij,jl,kl->il", W, orientation, inverse)
    u, _, vt = np.linalg.svd(H)
    return u @ vt


def _eigen_descending(W):
    # Those of -W: largest first, and tied eigenvalues (the zero scatter of a component
    # of one row) keep the axes' order, as mclust's SVD leaves them. (Reversing eigh(W)'s
    # order reverses the axes: another of the M-step's equal optima, from which EM
    # takes another path.)
    values, vectors = np.linalg.eigh(-W)
    return -values, vectors


# EVE and VVE share one orientation; the value: whether volumes vary.
_SHARED_ORIENTATION = {"EVE": False, "VVE": True}

_FULL_SOLVERS = {
    "EVV": _evv,
    "VEE": _vee,
}
# Orientations from each W_k's eigenvectors; reg_covar shifts the eigenvalues (see full).
_EIGEN_SOLVERS = {
    "EEV": _eev,
    "VEV": _vev,
}
