"""EEV's and VEV's eigenvectors begun from the last M-step's: LAPACK's, to rounding.

From the second M-step of a compiled run, Jacobi's rotations start from the eigenvectors
the last M-step left (``small_em._descending_eigen_warm``), made orthonormal first. Any
start must give what LAPACK gives (the eigen-decomposition of each scatter, largest
first), ties still LAPACK's own axes.
"""

from __future__ import annotations

import numpy as np
import pytest

from emkit.distributions.gaussian import small_em
from tests.test_loop_shortcuts import _lapack_in_numba


def _warm(W: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    K, d = W.shape[0], W.shape[1]
    values, vectors = np.empty((K, d)), np.ascontiguousarray(start, dtype=float).copy()
    small_em._descending_eigen_warm(np.ascontiguousarray(W), values, vectors,
                                    np.empty((d, d)), True, np.empty((d, d)))
    return values, vectors


def _scatters(rng: np.random.Generator, K: int, d: int) -> np.ndarray:
    out = []
    for _ in range(K):
        B = rng.normal(size=(d, d + 2)) * 10.0 ** rng.uniform(-4, 2, size=(d, 1))
        out.append(B @ B.T)
    return np.array(out)


def _starts(rng: np.random.Generator, W: np.ndarray) -> list[np.ndarray]:
    """Bases a run can hand over: a nearby scatter's eigenvectors (the last M-step's),
    shuffled and with flipped signs; the same, off orthonormal by 1e-8 (rounding carried
    over many iterations would be far less); an unrelated rotation; the axes."""
    K, d = W.shape[0], W.shape[1]
    nearby = np.linalg.eigh(W * (1.0 + 1e-3 * rng.normal(size=W.shape)))[1]
    order = rng.permutation(d)
    signs = rng.choice([-1.0, 1.0], size=d)
    shuffled = nearby[:, :, order] * signs
    skewed = shuffled + 1e-8 * rng.normal(size=shuffled.shape)
    unrelated = np.linalg.qr(rng.normal(size=(K, d, d)))[0]
    return [shuffled, skewed, unrelated, np.broadcast_to(np.eye(d), (K, d, d))]


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 6])
def test_warm_jacobi_is_lapacks_decomposition(d):
    rng = np.random.default_rng(10 + d)
    W = _scatters(rng, 5, d)
    expected_values, expected_vectors = _lapack_in_numba(W)
    for start in _starts(rng, W):
        values, vectors = _warm(W, start)
        for k in range(len(W)):
            size = np.abs(W[k]).max()
            np.testing.assert_allclose(values[k], expected_values[k], rtol=0,
                                       atol=1e-13 * size)
            np.testing.assert_allclose(vectors[k] @ np.diag(values[k]) @ vectors[k].T, W[k],
                                       rtol=0, atol=1e-13 * size)
            np.testing.assert_allclose(vectors[k].T @ vectors[k], np.eye(d), rtol=0,
                                       atol=1e-14)
            np.testing.assert_allclose(
                np.abs(np.sum(vectors[k] * expected_vectors[k], axis=0)), 1.0, rtol=0,
                atol=1e-9)


def test_warm_ties_keep_lapacks_axes():
    # A one-row component (zero scatter) and a tied pair: LAPACK's axes, whatever the start.
    rng = np.random.default_rng(5)
    W = np.array([np.zeros((3, 3)), np.diag([1.0, 2.0, 1.0])])
    expected_values, expected_vectors = _lapack_in_numba(W)
    for start in _starts(rng, W + np.eye(3)):
        values, vectors = _warm(W, start)
        np.testing.assert_array_equal(values, expected_values)
        np.testing.assert_array_equal(vectors, expected_vectors)
