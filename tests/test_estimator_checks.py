"""scikit-learn's own estimator checks: clone, pipelines, grid search and friends work."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit import GaussianMixture, KMeans


@parametrize_with_checks(
    [
        GaussianMixture(),
        GaussianMixture(n_components=2, covariance_type="diag", chunk_size=7, random_state=0),
        GaussianMixture(n_components=2, covariance_type="tied", init_params="random_from_data"),
        GaussianMixture(n_components=2, covariance_type="spherical", init_params="k-means++"),
        GaussianMixture(n_components=2, algorithm="hard", random_state=0),
        GaussianMixture(n_components=2, algorithm="stochastic", max_iter=20, chunk_size=7),
        GaussianMixture(n_components=2, accelerate=True, random_state=0),
        KMeans(),
        KMeans(n_clusters=3, init="random", n_init=2, chunk_size=7, random_state=0),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
