"""emkit.KMeans against scikit-learn's Lloyd k-means from the same initial centres."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans as SkKMeans

from emkit import GaussianMixture, KMeans
from emkit.estimators.kmeans import Farthest, sklearn_kmeans_labels
from tests.conftest import make_blobs


@pytest.fixture(scope="module")
def iris() -> np.ndarray:
    from sklearn.datasets import load_iris

    return load_iris().data


def _both(X, init, **kwargs):
    sk = SkKMeans(init.shape[0], init=init, n_init=1, **kwargs).fit(X)
    em = KMeans(init.shape[0], init=init, **kwargs).fit(X)
    return sk, em


def _assert_same(sk, em):
    np.testing.assert_array_equal(em.labels_, sk.labels_)
    np.testing.assert_allclose(em.inertia_, sk.inertia_, rtol=1e-8)
    np.testing.assert_allclose(em.cluster_centers_, sk.cluster_centers_, rtol=1e-8, atol=1e-10)
    assert em.n_iter_ == sk.n_iter_


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("tol", [1e-4, 0.0])
def test_same_as_sklearn_from_the_same_centres(seed, tol):
    X = make_blobs(n_samples=500, n_features=3, n_components=6, separation=2.0, seed=seed,
                   offset=100.0)
    init = X[np.random.default_rng(seed).choice(len(X), 8, replace=False)]
    sk, em = _both(X, init, tol=tol)
    _assert_same(sk, em)
    chunked = KMeans(8, init=init, tol=tol, chunk_size=37).fit(X)
    np.testing.assert_array_equal(chunked.labels_, sk.labels_)
    np.testing.assert_allclose(chunked.inertia_, sk.inertia_, rtol=1e-8)


def test_empty_clusters_are_relocated_as_sklearn_does():
    X = make_blobs(n_samples=300, n_components=2, separation=8.0, seed=3)
    init = np.array([[0.0, 0.0], [1e3, 1e3], [2e3, -1e3], [1.0, 1.0]])
    sk, em = _both(X, init)
    _assert_same(sk, em)


def test_max_iter_stops_like_sklearn():
    X = make_blobs(n_samples=400, n_components=5, separation=1.0, seed=7)
    init = X[:6]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk, em = _both(X, init, max_iter=2)
    _assert_same(sk, em)


def test_kmeans_initialiser_gives_sklearn_labels():
    for seed in range(5):
        X = make_blobs(n_samples=300, n_features=2 + seed % 2, n_components=4, seed=seed)
        expected = SkKMeans(4, n_init=1, random_state=seed).fit(X).labels_
        np.testing.assert_array_equal(sklearn_kmeans_labels(X, 4, seed), expected)


def test_gaussian_mixture_kmeans_init_matches_sklearn():
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    X = make_blobs(n_samples=300, n_components=3, separation=2.0, seed=1)
    kwargs = dict(tol=0, max_iter=3, random_state=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em = GaussianMixture(3, **kwargs).fit(X)
        sk = SkGaussianMixture(3, **kwargs).fit(X)
    np.testing.assert_allclose(em.means_, sk.means_, rtol=1e-8)
    np.testing.assert_allclose(em.covariances_, sk.covariances_, rtol=1e-8)


@pytest.mark.parametrize("init", ["k-means++", "random"])
@pytest.mark.parametrize("n_init", [1, 4])
def test_same_seed_same_clustering_as_sklearn_on_iris(iris, init, n_init):
    """The drop-in promise: the same random_state draws the same starts, restart after restart."""
    for seed in range(5):
        sk = SkKMeans(3, init=init, n_init=n_init, random_state=seed).fit(iris)
        em = KMeans(3, init=init, n_init=n_init, random_state=seed).fit(iris)
        _assert_same(sk, em)
    # A RandomState is advanced as scikit-learn advances it: two fits in a row agree too.
    sk_state, em_state = np.random.RandomState(7), np.random.RandomState(7)
    for _ in range(2):
        sk = SkKMeans(3, init=init, n_init=n_init, random_state=sk_state).fit(iris)
        em = KMeans(3, init=init, n_init=n_init, random_state=em_state).fit(iris)
        _assert_same(sk, em)


def test_more_initialisations_are_never_worse():
    X = make_blobs(n_samples=400, n_components=6, separation=1.5, seed=2)
    one = KMeans(6, init="random", n_init=1, random_state=0).fit(X)
    five = KMeans(6, init="random", n_init=5, random_state=0).fit(X)
    assert five.inertia_ <= one.inertia_
    again = KMeans(6, init="random", n_init=5, random_state=0).fit(X)
    np.testing.assert_array_equal(again.labels_, five.labels_)


def test_predict_transform_score_agree_with_the_fit(blobs):
    km = KMeans(3, random_state=0).fit(blobs)
    np.testing.assert_array_equal(km.predict(blobs), km.labels_)
    distances = km.transform(blobs)
    assert distances.shape == (len(blobs), 3)
    np.testing.assert_array_equal(distances.argmin(axis=1), km.labels_)
    np.testing.assert_allclose(km.score(blobs), -km.inertia_, rtol=1e-12)
    np.testing.assert_allclose(np.square(distances.min(axis=1)).sum(), km.inertia_)


def test_farthest_rows_combine_like_a_sum():
    rng = np.random.default_rng(0)
    distances, rows, labels = rng.random(50), rng.normal(size=(50, 2)), rng.integers(3, size=50)
    whole = Farthest.select(distances, rows, labels, 4)
    parts = Farthest.select(distances[:20], rows[:20], labels[:20], 4) + Farthest.select(
        distances[20:], rows[20:], labels[20:], 4)
    np.testing.assert_array_equal(parts.distances, whole.distances)
    np.testing.assert_array_equal(parts.rows, whole.rows)
    np.testing.assert_array_equal(whole.distances, np.sort(distances)[::-1][:4])


def test_bad_input_is_named(blobs):
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(500).fit(blobs[:10])
    with pytest.raises(ValueError, match="init must have shape"):
        KMeans(3, init=np.zeros((2, 2))).fit(blobs)
    with pytest.raises(ValueError, match="parameter init"):
        KMeans(3, init="kmeans").fit(blobs)
    with pytest.warns(RuntimeWarning, match="only one init"):
        KMeans(3, init=blobs[:3], n_init=4).fit(blobs)


def test_fewer_distinct_points_than_clusters_warns():
    from sklearn.exceptions import ConvergenceWarning

    X = np.repeat([[0.0, 0.0], [1.0, 1.0]], 5, axis=0)
    with pytest.warns(ConvergenceWarning, match="distinct clusters"):
        km = KMeans(3, random_state=0).fit(X)
    assert km.inertia_ == 0.0
