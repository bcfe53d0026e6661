"""Speed rewrites of the compiled small-data loop, against what they replaced.

``core._exp.exp_fast`` (the E-step's vectorised exponential) against numpy's
``exp``; the EVE/VVE orientation sweeps of :mod:`constrained` (rewritten without
allocations, BLAS calls or transcendental calls whose values were known) against
their previous code, kept below in plain Python as the reference, on random
scatter matrices: the same optimum, the same objective after the few warm sweeps
an EM iteration runs.
"""

from __future__ import annotations

import numpy as np
import pytest

from emkit.core._exp import exp_fast
from emkit.distributions.gaussian import constrained as c

# ---------------------------------------------------------------------------
# The orientation sweeps as they were before the rewrite (plain Python).


def _orientation_loop_ref(counts, W, variable_volume, start, inner_tol, max_iter):
    """:func:`_common_orientation`'s iterations: sweeps of exact pairwise rotations.

    Flury & Gautschi (1986) for common principal components (VVE is that model):
    ``D`` is turned in the plane of each pair of its columns in turn (a Jacobi
    sweep) by an angle that lowers the objective along that rotation: safeguarded
    Newton steps from the current angle towards its minimiser
    (:func:`_pair_angle_ref`). A rotation changes only
    two entries of each ``diag(D^T W_k D)``, so a sweep over the ``d(d-1)/2``
    pairs costs about one majorisation step but converges like Jacobi's method:
    tens of sweeps where the MM steps need thousands. Every accepted rotation
    lowers the objective, so each sweep does (EM's ascent). ``max_iter`` counts
    sweeps; ``B_k = D^T W_k D`` is recomputed from ``D`` before each.
    """
    K, d = W.shape[0], W.shape[1]
    orientation = start.copy()
    rotated = np.empty((K, d, d))
    logs = np.empty(K)  # sum_i log B_k[i, i]
    previous = np.inf
    for sweep in range(max_iter + 1):
        for k in range(K):
            rotated[k] = orientation.T @ (W[k] @ orientation)
        objective = _orientation_objective_ref(counts, rotated, variable_volume)
        if (abs(previous - objective) <= inner_tol * abs(objective) + 1e-300
                or sweep == max_iter):
            break
        previous = objective
        for k in range(K):
            total = 0.0
            for i in range(d):
                total += np.log(rotated[k, i, i])
            logs[k] = total
        for i in range(d - 1):
            for j in range(i + 1, d):
                angle = _pair_angle_ref(counts, rotated, logs, variable_volume, i, j)
                if angle != 0.0:
                    _rotate_ref(rotated, orientation, logs, i, j, angle)
    variances = np.empty((K, d))
    if variable_volume:
        for k in range(K):
            for i in range(d):
                variances[k, i] = rotated[k, i, i] / counts[k]
    else:
        scale_sum = 0.0
        scales = np.empty(K)
        for k in range(K):
            total = 0.0
            for i in range(d):
                total += np.log(rotated[k, i, i])
            scales[k] = np.exp(total / d)
            scale_sum += scales[k]
        volume = scale_sum / counts.sum()
        for k in range(K):
            for i in range(d):
                variances[k, i] = volume * rotated[k, i, i] / scales[k]
    return _oriented_ref(orientation, variances)


def _oriented_ref(orientation, variances):
    """``D diag(a_k) D^T`` for each row ``a_k`` of ``variances``: one shared orientation."""
    K, d = variances.shape
    out = np.empty((K, d, d))
    for k in range(K):
        for i in range(d):
            for m in range(d):
                total = 0.0
                for j in range(d):
                    total += orientation[i, j] * variances[k, j] * orientation[m, j]
                out[k, i, m] = total
    return out


def _orientation_objective_ref(counts, rotated, variable_volume):
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


def _pair_terms_ref(counts, rotated, logs, variable_volume, i, j, t):
    """The objective along a rotation of columns ``i, j`` by ``t / 2``, and two derivatives.

    Turned by ``theta``, ``B[i, i]`` becomes ``m + q`` and ``B[j, j]`` ``m - q``
    with ``m`` their mean and ``q = u cos 2 theta + v sin 2 theta`` (``u`` half
    their difference, ``v = B[i, j]``). VVE's objective changes by
    ``sum_k n_k log((m + q)(m - q))``; EVE's is increasing in
    ``sum_k exp((L_k + log((m + q)(m - q)) - log B[i, i] B[j, j]) / d)`` (``L_k``
    the sum of the logs of ``diag(B_k)``): that sum is returned for EVE.
    """
    K, d = rotated.shape[0], rotated.shape[1]
    cos, sin = np.cos(t), np.sin(t)
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
        if variable_volume:
            # Relative to t = 0 (the constant a c dropped): one log, not two.
            value += counts[k] * np.log(plus * minus / (a * c))
            first += counts[k] * dh
            second += counts[k] * d2h
        else:
            e = np.exp((logs[k] + np.log(plus * minus / (a * c))) / d)
            de, d2e = dh / d, d2h / d
            value += e
            first += e * de
            second += e * (d2e + de * de)
    return value, first, second


def _pair_angle_ref(counts, rotated, logs, variable_volume, i, j):
    """The angle ``t`` (twice the rotation's) that lowers the pair's objective most nearby.

    ``c.PAIR_NEWTON_STEPS`` Newton steps from ``t = 0`` (the current ``D``), each at
    most a quarter turn of ``t``, halved until the objective falls; 0 where no
    step lowers it.
    """
    base, first, second = _pair_terms_ref(counts, rotated, logs, variable_volume, i, j, 0.0)
    # A slope this small moves the objective by ~slope^2 / curvature: nothing.
    scale = counts.sum() if variable_volume else base
    t, value = 0.0, base
    for _ in range(c.PAIR_NEWTON_STEPS):
        if abs(first) <= c.PAIR_SLOPE_TOL * scale:
            break
        step = -first / second if second > 0.0 else -np.sign(first) * 0.25
        if abs(step) > 0.785:
            step = np.sign(step) * 0.785
        improved = False
        for _ in range(40):
            trial, trial_first, trial_second = _pair_terms_ref(counts, rotated, logs,
                                                           variable_volume, i, j, t + step)
            if trial < value:
                improved = True
                break
            step *= 0.5
        if not improved:
            break
        t += step
        value, first, second = trial, trial_first, trial_second
        if abs(step) <= 1e-13:
            break
    return t if value < base else 0.0


def _rotate_ref(rotated, orientation, logs, i, j, t):
    """Turn columns ``i, j`` of ``D`` by ``t / 2``; update every ``B_k`` and ``L_k``."""
    K, d = rotated.shape[0], rotated.shape[1]
    c, s = np.cos(0.5 * t), np.sin(0.5 * t)
    for k in range(K):
        before = np.log(rotated[k, i, i]) + np.log(rotated[k, j, j])
        for m in range(d):
            bi, bj = rotated[k, m, i], rotated[k, m, j]
            rotated[k, m, i] = c * bi + s * bj
            rotated[k, m, j] = -s * bi + c * bj
        for m in range(d):
            bi, bj = rotated[k, i, m], rotated[k, j, m]
            rotated[k, i, m] = c * bi + s * bj
            rotated[k, j, m] = -s * bi + c * bj
        logs[k] += np.log(rotated[k, i, i]) + np.log(rotated[k, j, j]) - before
    for m in range(d):
        di, dj = orientation[m, i], orientation[m, j]
        orientation[m, i] = c * di + s * dj
        orientation[m, j] = -s * di + c * dj


# ---------------------------------------------------------------------------


def _scatters(seed: int, n_components: int, n_features: int):
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n_components, 40, n_features))
    rows *= rng.uniform(0.3, 3.0, (n_components, 1, n_features))
    W = np.einsum("kni,knj->kij", rows, rows)
    return rng.uniform(5.0, 60.0, n_components), W


def _objective(counts, W, covariances, variable_volume):
    """The profile objective at the orientation shared by ``covariances``."""
    D = c.orientation_of(covariances)
    rotated = np.einsum("ji,kjl,lm->kim", D, W, D)
    return c._orientation_objective(counts, np.ascontiguousarray(rotated), variable_volume)


def test_exp_fast_is_numpys_exp_to_two_ulps():
    x = np.concatenate([np.linspace(-750.0, 1.0, 300_001),
                        [-746.0, -745.2, -708.4, -40.0, -1e-300, 0.0, 1.0]])
    out = np.empty_like(x)
    exp_fast(x, out, np.empty(2 * x.size))
    expected = np.exp(x)
    np.testing.assert_array_equal(out[expected == 0], 0.0)
    positive = expected > 0
    ulps = np.abs(out[positive] - expected[positive]) / np.spacing(expected[positive])
    assert ulps.max() <= 2.0
    in_place = x.copy()
    exp_fast(in_place, in_place, np.empty(2 * x.size))
    np.testing.assert_array_equal(in_place, out)
    special = np.array([np.nan, -np.inf, -1e6])
    exp_fast(special, special, np.empty(6))
    assert np.isnan(special[0]) and special[1] == 0.0 and special[2] == 0.0


@pytest.mark.parametrize("variable_volume", [False, True], ids=["EVE", "VVE"])
@pytest.mark.parametrize(("seed", "n_components", "n_features"),
                         [(0, 2, 3), (1, 3, 4), (2, 5, 6), (3, 4, 5)])
def test_orientation_sweeps_reach_the_previous_codes_optimum(variable_volume, seed,
                                                             n_components, n_features):
    counts, W = _scatters(seed, n_components, n_features)
    start = np.ascontiguousarray(np.linalg.eigh(W.sum(axis=0))[1])
    ours = c._orientation_loop(counts, W, variable_volume, start, c.INNER_TOL,
                               c.ORIENTATION_MAX_SWEEPS)
    theirs = _orientation_loop_ref(counts, W, variable_volume, start, c.INNER_TOL,
                                   c.ORIENTATION_MAX_SWEEPS)
    assert (_objective(counts, W, ours, variable_volume)
            == pytest.approx(_objective(counts, W, theirs, variable_volume), rel=1e-12))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6 * np.abs(theirs).max())
    # Exactly symmetric (one triangle, mirrored).
    np.testing.assert_array_equal(ours, np.swapaxes(ours, 1, 2))


@pytest.mark.parametrize("variable_volume", [False, True], ids=["EVE", "VVE"])
@pytest.mark.parametrize("seed", [4, 5, 6])
def test_warm_sweeps_are_the_previous_codes(variable_volume, seed):
    # An EM iteration's M-step: WARM_INNER_MAX_ITER sweeps from a nearby orientation.
    counts, W = _scatters(seed, 4, 6)
    rng = np.random.default_rng(seed)
    optimum = c._orientation_loop(counts, W, variable_volume,
                                  np.ascontiguousarray(np.linalg.eigh(W.sum(axis=0))[1]),
                                  c.INNER_TOL, c.ORIENTATION_MAX_SWEEPS)
    turn, _ = np.linalg.qr(np.eye(6) + 0.05 * rng.normal(size=(6, 6)))
    start = np.ascontiguousarray(c.orientation_of(optimum) @ turn)
    ours = c._orientation_loop(counts, W, variable_volume, start, c.INNER_TOL,
                               c.WARM_INNER_MAX_ITER)
    theirs = _orientation_loop_ref(counts, W, variable_volume, start, c.INNER_TOL,
                                   c.WARM_INNER_MAX_ITER)
    assert (_objective(counts, W, ours, variable_volume)
            == pytest.approx(_objective(counts, W, theirs, variable_volume), rel=1e-12))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8 * np.abs(theirs).max())


@pytest.mark.parametrize("n_features", [1, 2, 6])
def test_vee_cholesky_gives_lapacks_determinant_and_inverse(n_features):
    # VEE's inner loop: log det S and S^-1 from one Cholesky factor (was slogdet and inv).
    rng = np.random.default_rng(n_features)
    rows = rng.normal(size=(n_features + 4, n_features)) * rng.uniform(0.1, 10, n_features)
    S = rows.T @ rows
    lower, inverse = np.zeros_like(S), np.zeros_like(S)
    log_det = c._cholesky_inverse(S, lower, inverse)
    assert log_det == pytest.approx(np.linalg.slogdet(S)[1], rel=1e-13, abs=1e-13)
    expected = np.linalg.inv(S)
    np.testing.assert_allclose(inverse, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    not_definite = S - 2 * np.linalg.eigvalsh(S)[0] * np.eye(n_features)  # an eigenvalue < 0
    assert np.isnan(c._cholesky_inverse(not_definite, lower, inverse))
