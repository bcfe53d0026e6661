"""The compiled EM loop's cheaper steps against what they replace (LAPACK's, numpy's).

On tiny data an iteration is a few microseconds, so the loop avoids LAPACK's
eigen-decompositions where it can: EEV's and VEV's eigenvectors by Jacobi's rotations
(ordered as LAPACK orders them, ties included), EVE's and VVE's warm orientation carried
from the last M-step (not re-derived from the covariances), EVV's determinants from a
Cholesky factor. Each must give what the code it replaced gave, to rounding.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from emkit.distributions.gaussian import constrained, small_em

# Diagonal scatters whose ties LAPACK orders its own way (its tridiagonal solver's
# selection sort swaps an axis to the front past tied ones): zero (a one-row
# component), ties before, after and around a larger variance.
_DIAGONALS = ([0.0, 0.0, 0.0], [1.0, 1.0, 2.0], [1.0, 2.0, 1.0], [2.0, 1.0, 1.0],
              [1.0, 1.0, 1.0], [3.0, 1.0, 3.0, 2.0, 1.0])


def _scatters(rng: np.random.Generator, K: int, d: int) -> np.ndarray:
    """Spread and graded (variances 1e-8..1e4) scatters, every third of rank one (a
    two-row component: a tied zero pair where d > 2)."""
    out = []
    for k in range(K):
        B = rng.normal(size=(d, d + 2)) * 10.0 ** rng.uniform(-4, 2, size=(d, 1))
        if k % 3 == 2:
            B = B[:, :1]
        out.append(B @ B.T)
    return np.array(out)


@numba.njit(cache=False)
def _lapack_in_numba(W):
    # What the loop called before (numba's eigh: scipy's LAPACK, not numpy's).
    K, d = W.shape[0], W.shape[1]
    values, vectors = np.empty((K, d)), np.empty((K, d, d))
    for k in range(K):
        vals, vecs = np.linalg.eigh(-W[k])
        values[k] = -vals
        vectors[k] = vecs
    return values, vectors


def _jacobi(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    K, d = W.shape[0], W.shape[1]
    values, vectors = np.empty((K, d)), np.empty((K, d, d))
    small_em._descending_eigen_into(np.ascontiguousarray(W), values, vectors, np.empty((d, d)))
    return values, vectors


@pytest.mark.parametrize("diagonal", _DIAGONALS, ids=str)
def test_tied_eigenvalues_keep_lapacks_axes(diagonal):
    # Ties (and a rank-one scatter's zero pair) leave the axes to LAPACK, as before.
    d = len(diagonal)
    rank_one = np.outer(np.arange(1.0, d + 1), np.arange(1.0, d + 1))
    for W in (np.diag(diagonal)[None], rank_one[None], 1e-20 * rank_one[None]):
        values, vectors = _jacobi(W)
        expected_values, expected_vectors = _lapack_in_numba(W)
        np.testing.assert_array_equal(values, expected_values)
        np.testing.assert_array_equal(vectors, expected_vectors)


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 6, 7])
def test_jacobi_eigenvectors_are_lapacks_largest_first(d):
    # d = 7 takes LAPACK's path itself (more features than _JACOBI_MAX_FEATURES).
    rng = np.random.default_rng(d)
    W = _scatters(rng, 6, d)
    values, vectors = _jacobi(W)
    expected_values, expected_vectors = _lapack_in_numba(W)
    for k in range(len(W)):
        size = np.abs(W[k]).max()
        np.testing.assert_allclose(values[k], expected_values[k], rtol=0, atol=1e-13 * size)
        np.testing.assert_allclose(vectors[k] @ np.diag(values[k]) @ vectors[k].T, W[k],
                                   rtol=0, atol=1e-13 * size)
        # The same axes up to sign, in the same order (wherever a tie did not send the
        # component to LAPACK, which then gave them exactly).
        np.testing.assert_allclose(np.abs(np.sum(vectors[k] * expected_vectors[k], axis=0)),
                                   1.0, rtol=0, atol=1e-9)


@pytest.mark.parametrize("model", ["EEV", "VEV"])
def test_eev_and_vev_m_steps_are_the_lapack_ones(model):
    # Spread scatters and one of a single row (zero); no rank-one one: its null space's
    # axes are LAPACK's arbitrary ones, which numpy's and numba's LAPACK choose apart.
    rng = np.random.default_rng(7)
    for d in (2, 3, 5):
        shifts = np.array([0.0, 0.0, 1.0, 2.0])[:, None, None] * np.eye(d)
        W = _scatters(rng, 2, d)[[0, 1, 1, 0]] + shifts
        W[1] = 0.0
        counts = np.array([3.0, 1.0, 7.0, 2.5])
        for reg_covar in (0.0, 1e-6) if model == "EEV" else (1e-6,):
            ours = small_em._eigen_model(small_em._MODEL_CODES[model], counts, W, reg_covar,
                                         constrained.INNER_TOL, constrained.INNER_MAX_ITER)
            theirs = constrained.full(model, counts, W, reg_covar=reg_covar)
            np.testing.assert_allclose(ours, theirs, rtol=0,
                                       atol=1e-12 * np.abs(theirs).max())


def _orthogonal(rng: np.random.Generator, d: int) -> np.ndarray:
    return np.linalg.qr(rng.normal(size=(d, d)))[0]


@pytest.mark.parametrize("d", [2, 3, 4, 6])
def test_carried_orientation_is_the_covariances_eigenvectors(d):
    # EVE's and VVE's next M-step starts at the eigenvectors of the last covariances'
    # weighted sum (LAPACK's, ascending): the last M-step's D, its columns reordered.
    rng = np.random.default_rng(d)
    for K in (1, 3, 5):
        D = _orthogonal(rng, d)
        variances = rng.uniform(0.1, 5.0, size=(K, d))
        covariances = constrained._oriented(D, variances)
        expected = np.empty((d, d))
        small_em._warm_orientation(covariances, expected)
        carried = D.copy()
        small_em._carried_orientation(carried, variances, np.empty((d, d)))
        np.testing.assert_allclose(np.abs(expected.T @ carried), np.eye(d), rtol=0, atol=1e-9)


def test_carried_orientation_orders_ties_as_lapack():
    # mclust's EVE starts at D = I; tied pooled variances keep LAPACK's order exactly.
    variances = np.array([[2.0, 1.0, 2.0, 0.5], [1.0, 3.0, 1.0, 0.5]])
    expected = np.empty((4, 4))
    small_em._warm_orientation(constrained._oriented(np.eye(4), variances), expected)
    carried = np.eye(4)
    small_em._carried_orientation(carried, variances, np.empty((4, 4)))
    np.testing.assert_array_equal(np.abs(carried), np.abs(expected))


def test_evv_determinants_by_cholesky_are_lapacks():
    rng = np.random.default_rng(1)
    lower = np.empty((4, 4))
    for W in _scatters(rng, 5, 4):  # conditioned: LU's and Cholesky's rounding apart
        W = W + 1e-3 * np.abs(W).max() * np.eye(4)
        assert constrained._cholesky_log_det(W, lower) == pytest.approx(
            np.linalg.slogdet(W)[1], rel=1e-12, abs=1e-12)
    not_definite = np.diag([1.0, -1.0, 2.0, 1.0])
    assert np.isnan(constrained._cholesky_log_det(not_definite, lower))
    counts = np.array([2.0, 5.0, 3.0])
    W = _scatters(rng, 3, 3) + 1e-3 * np.eye(3)
    cov = np.empty_like(W)
    small_em._full_model(small_em._EVV, counts, W, constrained.INNER_TOL,
                         constrained.INNER_MAX_ITER, 5, False, cov, small_em._workspace(3, 3))
    expected = constrained.full("EVV", counts, W)
    np.testing.assert_allclose(cov, expected, rtol=0, atol=1e-13 * np.abs(expected).max())


@pytest.mark.parametrize("n", [31, 4000])
def test_e_step_exponentials_in_one_call_or_per_component(n):
    # Up to _ONE_EXP_CALL responsibilities (31 x 5) the exponentials are one call, above
    # (4000 x 5) one a component: both the mixture's log-likelihood and entropy.
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    assert (5 * n <= small_em._ONE_EXP_CALL) == (n == 31)
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 3)) * [1.0, 2.0, 0.5]
    weights = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    means = rng.normal(size=(5, 3))
    covariances = np.array([np.eye(3) * s + 0.2 for s in (0.5, 1.0, 1.5, 2.0, 3.0)])
    prec = np.linalg.inv(np.linalg.cholesky(covariances)).transpose(0, 2, 1).copy()
    log_lik, entropy = small_em._scores(X, weights, means, prec, 0.0)
    logs = np.log(weights) + np.array(
        [multivariate_normal(m, c).logpdf(X) for m, c in zip(means, covariances, strict=True)]).T
    total = logsumexp(logs, axis=1)
    resp = np.exp(logs - total[:, None])
    assert log_lik == pytest.approx(total.sum(), rel=1e-12)
    assert entropy == pytest.approx(-(resp * np.log(resp)).sum(), rel=1e-10)
