"""NaN in the other families: the factor a missing value belongs to is marginalised out."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as ss

from emkit import GaussianMixture, MixtureModel
from emkit.distributions import (
    Bernoulli,
    Binomial,
    Categorical,
    Exponential,
    Gaussian,
    Independent,
    Poisson,
)

CASES = {
    "bernoulli": (Bernoulli([0.3, 0.8]), np.array([[1, np.nan], [np.nan, 0], [0, 1]])),
    "poisson": (Poisson([2.0, 5.0]), np.array([[3, np.nan], [np.nan, 4], [0, 7]])),
    "exponential": (Exponential([0.5, 2.0]), np.array([[1.5, np.nan], [np.nan, 0.2], [3, 1]])),
    "gaussian": (Gaussian([0.0, 1.0], [[2.0, 0.6], [0.6, 1.0]]),
                 np.array([[0.5, np.nan], [np.nan, 2.0], [1.0, -1.0]])),
}


def oracle(name, dist, row):
    """Log density of the observed entries only, from scipy.stats."""
    o = ~np.isnan(row)
    if name == "bernoulli":
        return ss.bernoulli(dist.p[o]).logpmf(row[o]).sum()
    if name == "poisson":
        return ss.poisson(dist.rate[o]).logpmf(row[o]).sum()
    if name == "exponential":
        return ss.expon(scale=1 / dist.rate[o]).logpdf(row[o]).sum()
    return ss.multivariate_normal(dist.mean[o], dist.covariance[np.ix_(o, o)]).logpdf(row[o])


@pytest.mark.parametrize("name", sorted(CASES))
def test_log_prob_marginalises_missing_entries(name):
    dist, X = CASES[name]
    expected = [oracle(name, dist, row) for row in X]
    np.testing.assert_allclose(dist.log_prob(X), expected, rtol=1e-12)
    assert dist.log_prob(np.full((1, 2), np.nan))[0] == 0.0


def test_categorical_and_binomial_rows_with_missing_values_carry_nothing():
    cat = Categorical([0.2, 0.3, 0.5])
    np.testing.assert_allclose(cat.log_prob(np.array([[2.0], [np.nan]])), [np.log(0.5), 0.0])
    fitted = cat.fit(np.array([[0.0], [2.0], [np.nan], [2.0]]))
    np.testing.assert_allclose(fitted.probs, [1 / 3, 0, 2 / 3])
    coin = Binomial("column", 0.5)
    X = np.array([[3.0, 10.0], [np.nan, 10.0], [4.0, np.nan], [7.0, 10.0]])
    np.testing.assert_allclose(coin.log_prob(X)[1:3], 0.0)
    assert coin.fit(X).p == pytest.approx(10 / 20)


@pytest.mark.parametrize(
    ("dist", "mle"),
    [
        (Bernoulli([0.5, 0.5]), lambda X: np.nanmean(X, axis=0)),
        (Poisson([1.0, 1.0]), lambda X: np.nanmean(X, axis=0)),
        (Exponential([1.0, 1.0]), lambda X: 1 / np.nanmean(X, axis=0)),
    ],
)
def test_one_component_fit_is_the_per_column_mle_over_observed_entries(dist, mle):
    rng = np.random.default_rng(0)
    X = dist.sample(200, rng)
    X[rng.random(X.shape) < 0.3] = np.nan
    model = MixtureModel([dist], tol=1e-12).fit(X)
    np.testing.assert_allclose(flat_parameter(model.components_[0]), mle(X), rtol=1e-10)


def flat_parameter(dist):
    return getattr(dist, "p", getattr(dist, "rate", None))


def test_gaussian_distribution_with_gaps_matches_gaussian_mixture():
    rng = np.random.default_rng(1)
    X = rng.multivariate_normal([0, 1, 2], np.eye(3) + 0.5, size=300)
    X[rng.random(X.shape) < 0.25] = np.nan
    model = MixtureModel([Gaussian(np.zeros(3), np.eye(3))], tol=1e-13, max_iter=5000).fit(X)
    gm = GaussianMixture(1, tol=1e-13, max_iter=5000).fit(X)
    # Both reach the same maximum; the likelihood is flat near it, so parameters
    # from different starts agree less tightly than the likelihood does.
    np.testing.assert_allclose(model.history_[-1], gm.history_[-1], rtol=1e-12)
    np.testing.assert_allclose(model.components_[0].mean, gm.means_[0], rtol=1e-5)
    np.testing.assert_allclose(model.components_[0].covariance, gm.covariances_[0], rtol=1e-5)


def test_mixed_type_mixture_with_gaps_clusters_and_climbs():
    rng = np.random.default_rng(2)
    n = 600
    z = rng.integers(2, size=n)
    X = np.column_stack([
        rng.normal(np.where(z, 4.0, 0.0), 1.0),
        rng.poisson(np.where(z, 9.0, 2.0)),
        rng.binomial(1, np.where(z, 0.9, 0.1)),
        np.where(z, rng.choice(3, n, p=[0.1, 0.1, 0.8]), rng.choice(3, n, p=[0.8, 0.1, 0.1])),
    ]).astype(float)
    X[rng.random(X.shape) < 0.2] = np.nan
    X[7] = np.nan  # a row with nothing observed

    def start(mean, rate, p, probs):
        return Independent([Gaussian([mean], 1.0, "spherical"), Poisson(rate), Bernoulli(p),
                            Categorical(probs)])

    model = MixtureModel(
        [start(1.0, 3.0, 0.4, [0.4, 0.3, 0.3]), start(3.0, 6.0, 0.6, [0.3, 0.3, 0.4])],
        tol=0, max_iter=40,
    ).fit(X)
    assert np.all(np.diff(model.history_) >= -1e-10)
    labels = model.predict(X)
    agreement = max(np.mean(labels == z), np.mean(labels != z))
    assert agreement > 0.95
    np.testing.assert_allclose(model.predict_proba(X[7:8])[0], model.weights_, rtol=1e-12)
