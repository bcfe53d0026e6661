"""emkit.GaussianMixture against scikit-learn's from the same initialisation.

The oracle is scikit-learn itself: both start from identical weights, means and
precisions and run the same number of iterations (``tol=0``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from emkit import GaussianMixture
from tests.conftest import COVARIANCE_TYPES, make_blobs

FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.maximum(np.abs(a), np.abs(b)).max()
    return float(np.abs(a - b).max() / scale)


def _same_start(X: np.ndarray, covariance_type: str, n_components: int) -> dict:
    """A deliberately rough common start: one sklearn iteration from k-means."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = SkGaussianMixture(
            n_components, covariance_type=covariance_type, max_iter=1, random_state=1
        ).fit(X)
    return {
        "weights_init": ref.weights_,
        "means_init": ref.means_,
        "precisions_init": ref.precisions_,
    }


def _fit_both(X, covariance_type, n_components=3, max_iter=8, **extra):
    start = _same_start(X, covariance_type, n_components)
    kwargs = dict(covariance_type=covariance_type, tol=0, max_iter=max_iter, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SkGaussianMixture(n_components, **kwargs).fit(X)
        em = GaussianMixture(n_components, **kwargs, **extra).fit(X)
    return sk, em


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_parameters_score_and_bic_match_sklearn(covariance_type):
    X = make_blobs(n_samples=500, n_features=3, n_components=3, separation=2.5)
    sk, em = _fit_both(X, covariance_type)
    for name in FITTED:
        assert _relative_error(getattr(sk, name), getattr(em, name)) < 1e-8, name
    assert em.n_iter_ == sk.n_iter_ == 8
    np.testing.assert_allclose(em.score(X), sk.score(X), rtol=1e-8)
    np.testing.assert_allclose(em.bic(X), sk.bic(X), rtol=1e-8)
    np.testing.assert_allclose(em.aic(X), sk.aic(X), rtol=1e-8)
    np.testing.assert_allclose(em.lower_bound_, sk.lower_bound_, rtol=1e-8)
    np.testing.assert_allclose(em.history_, sk.lower_bounds_, rtol=1e-8)
    np.testing.assert_allclose(em.predict_proba(X), sk.predict_proba(X), atol=1e-8)
    np.testing.assert_allclose(em.score_samples(X), sk.score_samples(X), rtol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_chunked_fit_matches_sklearn(covariance_type):
    X = make_blobs(n_samples=700, n_features=2, n_components=3)
    sk, em = _fit_both(X, covariance_type, chunk_size=64)
    for name in FITTED:
        assert _relative_error(getattr(sk, name), getattr(em, name)) < 1e-8, name


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_input_gives_float32_parameters(covariance_type):
    X = make_blobs(n_samples=500, n_features=3, dtype=np.float32)
    sk, em = _fit_both(X, covariance_type, max_iter=5)
    for name in FITTED:
        assert getattr(em, name).dtype == np.float32, name
        assert _relative_error(getattr(sk, name), getattr(em, name)) < 1e-3, name
    assert em.predict_proba(X).dtype == np.float32


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_converged_fit_matches_sklearn(covariance_type):
    X = make_blobs(n_samples=400, n_features=2, n_components=2, separation=5.0, seed=3)
    start = _same_start(X, covariance_type, 2)
    sk = SkGaussianMixture(2, covariance_type=covariance_type, tol=1e-6, **start).fit(X)
    em = GaussianMixture(2, covariance_type=covariance_type, tol=1e-6, **start).fit(X)
    assert em.converged_ and sk.converged_
    assert em.n_iter_ == sk.n_iter_
    np.testing.assert_allclose(em.means_, sk.means_, rtol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_data_far_from_origin_keeps_its_digits(covariance_type):
    """Moments around the current means: a 1e6 offset changes nothing but the means.

    (scikit-learn's tied and diagonal formulas subtract raw second moments and lose
    about twelve digits here; the oracle is the same fit without the offset.)
    """
    X = make_blobs(n_samples=600, n_features=2, n_components=2, separation=5.0, seed=4)
    kwargs = dict(covariance_type=covariance_type, tol=0, max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        near = GaussianMixture(2, **kwargs).fit(X)
        far = GaussianMixture(2, **kwargs).fit(X + 1e6)
    np.testing.assert_allclose(far.means_ - 1e6, near.means_, atol=1e-6)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-6)


@pytest.fixture(scope="module")
def iris() -> np.ndarray:
    from sklearn.datasets import load_iris

    return load_iris().data


def _fit_pair(X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SkGaussianMixture(**kwargs).fit(X), GaussianMixture(**kwargs).fit(X)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_same_random_state_same_fit_as_sklearn(iris, init_params):
    """The drop-in promise: GaussianMixture(3, random_state=s) is scikit-learn's, for any start."""
    for seed in range(5):
        sk, em = _fit_pair(iris, n_components=3, init_params=init_params, random_state=seed)
        for name in FITTED:
            np.testing.assert_allclose(getattr(em, name), getattr(sk, name), rtol=1e-9,
                                       atol=1e-10, err_msg=f"{name}, random_state={seed}")
        assert em.n_iter_ == sk.n_iter_
        np.testing.assert_allclose(em.lower_bound_, sk.lower_bound_, rtol=1e-10)


@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_restarts_draw_from_one_random_state_as_sklearn(iris, init_params):
    """n_init restarts share scikit-learn's RandomState; so does a RandomState given."""
    for seed in (1, 2):
        sk, em = _fit_pair(iris, n_components=3, covariance_type="diag", n_init=3,
                           init_params=init_params, random_state=seed)
        np.testing.assert_allclose(em.means_, sk.means_, rtol=1e-9)
        np.testing.assert_allclose(em.lower_bound_, sk.lower_bound_, rtol=1e-10)
    states = np.random.RandomState(3), np.random.RandomState(3)
    for _ in range(2):  # the second fit continues each RandomState where the first left it
        sk = SkGaussianMixture(4, covariance_type="diag", init_params=init_params,
                               random_state=states[0]).fit(iris)
        em = GaussianMixture(4, covariance_type="diag", init_params=init_params,
                             random_state=states[1]).fit(iris)
        np.testing.assert_allclose(em.means_, sk.means_, rtol=1e-9)
