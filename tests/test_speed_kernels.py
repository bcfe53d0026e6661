"""The fast E-step kernels (quadratic features, threads, float32) give scikit-learn's answer.

Oracles: scikit-learn's GaussianMixture run from the same initialisation with
``tol=0`` and the same ``max_iter``; where scikit-learn itself loses digits
(its diag, spherical and tied M-steps expand ``E[x^2] - E[x]^2`` around the
origin), scikit-learn on the same data translated to the origin, or emkit's
own direct per-component form (the one that matches scikit-learn on ordinary
data, checked below).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from threadpoolctl import threadpool_limits

from emkit import GaussianMixture
from emkit.core.engine import expected_stats
from emkit.data.sources import ArraySource
from emkit.distributions.gaussian import quadratic

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_")


def make_blobs(n_samples=1500, n_features=3, n_components=3, separation=4.0, seed=0):
    """Correlated Gaussian blobs, centres ~ N(0, separation^2), shuffled."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=separation, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    mixing = rng.normal(size=(n_components, n_features, n_features)) / (2 * np.sqrt(n_features))
    noise = rng.normal(size=(n_samples, n_features))
    return centres[labels] + np.einsum("nd,nde->ne", noise, mixing[labels] + np.eye(n_features))


def relative_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / np.abs(a).max())


def start(X, covariance_type, n_components=3):
    """A common start: one scikit-learn iteration from k-means."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = SkGaussianMixture(
            n_components, covariance_type=covariance_type, max_iter=1, random_state=1
        ).fit(X)
    return {"weights_init": ref.weights_, "means_init": ref.means_,
            "precisions_init": ref.precisions_}


def fit(estimator_class, X, covariance_type, init, max_iter=8, **extra):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator_class(
            len(init["weights_init"]), covariance_type=covariance_type, tol=0,
            max_iter=max_iter, **init, **extra,
        ).fit(X)


def assert_same_fit(reference, fitted, rtol, shift=0.0):
    for name in FITTED:
        value = getattr(fitted, name)
        if name == "means_":
            value = value.astype(np.float64) - shift
        assert relative_error(getattr(reference, name), value) < rtol, name


@pytest.fixture
def direct_only(monkeypatch):
    """Route every component through the direct per-component form."""
    monkeypatch.setattr(quadratic, "_ROUNDING_BUDGET", dict.fromkeys(
        quadratic._ROUNDING_BUDGET, -1.0))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fast_path_matches_sklearn_float64(covariance_type):
    X = make_blobs()
    init = start(X, covariance_type)
    em = fit(GaussianMixture, X, covariance_type, init)
    assert em._model().components.kernel.fast.all()  # the expansion was used throughout
    sk = fit(SkGaussianMixture, X, covariance_type, init)
    assert_same_fit(sk, em, 1e-8)
    np.testing.assert_allclose(em.history_, sk.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(em.score_samples(X), sk.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(em.predict_proba(X), sk.predict_proba(X), atol=1e-10)
    np.testing.assert_array_equal(em.predict(X), sk.predict(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_direct_path_matches_sklearn_float64(covariance_type, direct_only):
    X = make_blobs()
    init = start(X, covariance_type)
    em = fit(GaussianMixture, X, covariance_type, init)
    assert not em._model().components.kernel.fast.any()
    assert_same_fit(fit(SkGaussianMixture, X, covariance_type, init), em, 1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fast_path_matches_sklearn_float32(covariance_type):
    X = make_blobs()
    init = start(X, covariance_type)
    em = fit(GaussianMixture, X.astype(np.float32), covariance_type, init)
    for name in FITTED:
        assert getattr(em, name).dtype == np.float32, name
    assert_same_fit(fit(SkGaussianMixture, X.astype(np.float32), covariance_type, init), em, 1e-4)
    # And against the float64 answer, which float32 should approach as closely.
    sk64 = fit(SkGaussianMixture, X, covariance_type, init)
    assert_same_fit(sk64, em, 1e-4)
    scores = em.score_samples(X.astype(np.float32))
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, sk64.score_samples(X), rtol=1e-4)


def test_float32_components_over_budget_take_the_direct_form():
    X = make_blobs(separation=1.5).astype(np.float32)
    init = start(X, "full")
    em = fit(GaussianMixture, X, "full", init, max_iter=2)
    kernel = em._model().components.kernel
    assert kernel.fast.all() and kernel.weights.dtype == np.float32
    # Components far apart in their own units would round too much in float32
    # features: they are computed around their own means, in float32 as
    # scikit-learn does, and the fit stays as close to the float64 answer.
    X_far = make_blobs(separation=300.0).astype(np.float32)
    init = start(X_far, "full")
    em = fit(GaussianMixture, X_far, "full", init, max_iter=2)
    assert not em._model().components.kernel.fast.any()
    assert_same_fit(fit(SkGaussianMixture, X_far.astype(np.float64), "full", init), em, 1e-4)
    assert_same_fit(fit(SkGaussianMixture, X_far, "full", init), em, 1e-4)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_large_common_offset_float64(covariance_type):
    X = make_blobs()
    init = start(X, covariance_type)
    offset = 1e6
    shifted = {**init, "means_init": init["means_init"] + offset}
    em = fit(GaussianMixture, X + offset, covariance_type, shifted)
    assert em._model().components.kernel.fast.all()  # the centre absorbs the offset
    assert_same_fit(fit(SkGaussianMixture, X, covariance_type, init), em, 1e-8, shift=offset)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_common_offset_float32(covariance_type):
    # 1e3 is large for float32 (spacing 6e-5 there); the reference fits the
    # same float32 numbers, moved back to the origin exactly in float64.
    offset = 1e3
    X32 = (make_blobs() + offset).astype(np.float32)
    X_ref = X32.astype(np.float64) - offset
    init = start(X_ref, covariance_type)
    shifted = {**init, "means_init": init["means_init"] + offset}
    em = fit(GaussianMixture, X32, covariance_type, shifted)
    assert_same_fit(fit(SkGaussianMixture, X_ref, covariance_type, init), em, 1e-4, shift=offset)


def far_apart_blobs():
    """Three blobs 1e5 standard deviations apart, and two close to each other."""
    X = make_blobs(n_components=3, separation=3.0)
    far = make_blobs(n_samples=500, n_components=1, seed=3) + 1e5
    return np.vstack([X, far])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_far_apart_components(covariance_type, monkeypatch):
    X = far_apart_blobs()
    init = start(X, covariance_type, n_components=4)
    em = fit(GaussianMixture, X, covariance_type, init)
    fast = em._model().components.kernel.fast
    assert not fast.all()  # the far component fell back to the direct form
    if covariance_type == "full":  # scikit-learn's full M-step centres per component
        assert_same_fit(fit(SkGaussianMixture, X, covariance_type, init), em, 1e-8)
    monkeypatch.setattr(quadratic, "_ROUNDING_BUDGET", dict.fromkeys(
        quadratic._ROUNDING_BUDGET, -1.0))
    assert_same_fit(fit(GaussianMixture, X, covariance_type, init), em, 1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_chunked_equals_unchunked(covariance_type):
    X = make_blobs()
    init = start(X, covariance_type)
    whole = fit(GaussianMixture, X, covariance_type, init, chunk_size=len(X))
    for chunk_size in (37, 512):
        chunked = fit(GaussianMixture, X, covariance_type, init, chunk_size=chunk_size)
        assert_same_fit(whole, chunked, 1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_threads_do_not_change_the_result(covariance_type):
    X = make_blobs()
    init = start(X, covariance_type)
    model = fit(GaussianMixture, X, covariance_type, init, max_iter=2)._model()
    source = ArraySource(X, 100)
    serial = expected_stats(model, source, n_threads=1)
    for n_threads in (2, 3):
        threaded = expected_stats(model, source, n_threads=n_threads)
        # Chunk statistics are summed in chunk order: identical, not merely close.
        np.testing.assert_array_equal(threaded.components.second, serial.components.second)
        assert threaded.log_likelihood == serial.log_likelihood
    threaded_fit = fit(GaussianMixture, X, covariance_type, init, chunk_size=100)
    with threadpool_limits(limits=1):  # the user's limit: chunks run in one thread
        serial_fit = fit(GaussianMixture, X, covariance_type, init, chunk_size=100)
    for name in FITTED:
        np.testing.assert_array_equal(getattr(threaded_fit, name), getattr(serial_fit, name))


def test_wide_data_uses_the_direct_form():
    X = make_blobs(n_samples=600, n_features=48, n_components=2, separation=3.0)
    init = start(X, "full", n_components=2)
    em = fit(GaussianMixture, X, "full", init, max_iter=3)
    assert not em._model().components.kernel.fast.any()
    assert_same_fit(fit(SkGaussianMixture, X, "full", init, max_iter=3), em, 1e-8)
