"""Hard and stochastic EM: policies applied to responsibilities inside Mixture.e_step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from emkit import GaussianMixture
from emkit.core.variants import HARD, Stochastic
from emkit.estimators.gaussian_mixture import DegenerateFitWarning
from emkit.latent.mixture import Mixture
from tests.conftest import COVARIANCE_TYPES, make_blobs

REG = 1e-10


def _fit(X, **kwargs):
    # Hard EM from a random start may empty a component, which then collapses:
    # expected here, and flagged by a warning these tests do not check.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DegenerateFitWarning)
        return GaussianMixture(**kwargs).fit(X)


def _class_mle(X, labels, k, covariance_type):
    """Per-class maximum-likelihood covariances, from numpy alone (the oracle)."""
    parts = [X[labels == c] for c in range(k)]
    covs = np.stack([np.cov(p.T, bias=True).reshape(X.shape[1], X.shape[1]) for p in parts])
    eye = np.eye(X.shape[1])
    if covariance_type == "full":
        return covs + REG * eye
    if covariance_type == "tied":
        counts = np.array([len(p) for p in parts])
        return (covs * counts[:, None, None]).sum(axis=0) / len(X) + REG * eye
    variances = np.diagonal(covs, axis1=1, axis2=2) + REG
    return variances if covariance_type == "diag" else variances.mean(axis=1)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_hard_em_ends_at_the_per_class_maximum_likelihood(covariance_type):
    X = make_blobs(n_samples=400, n_components=3, separation=3.0, seed=4)
    gm = _fit(X, n_components=3, covariance_type=covariance_type, algorithm="hard",
              tol=1e-12, max_iter=200, reg_covar=REG, random_state=0)
    assert gm.converged_
    labels = gm.predict(X)
    counts = np.bincount(labels, minlength=3)
    np.testing.assert_allclose(gm.weights_, counts / len(X), rtol=1e-12)
    for c in range(3):
        np.testing.assert_allclose(gm.means_[c], X[labels == c].mean(axis=0), rtol=1e-10)
    expected = _class_mle(X, labels, 3, covariance_type)
    np.testing.assert_allclose(gm.covariances_, expected, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_em_classification_likelihood_never_decreases(covariance_type, seed):
    X = make_blobs(n_samples=300, n_components=4, separation=1.5, seed=seed)
    gm = _fit(X, n_components=4, covariance_type=covariance_type, algorithm="hard",
              init_params="random", tol=0, max_iter=30, reg_covar=REG, random_state=seed)
    steps = np.diff(gm.history_)
    assert np.all(steps >= -1e-12 * np.abs(gm.history_[1:])), steps.min()


def test_hard_em_history_is_the_classification_log_likelihood():
    X = make_blobs(n_samples=300, separation=3.0)
    gm = _fit(X, n_components=3, algorithm="hard", tol=1e-12, random_state=0)
    weighted = gm._model().weighted_log_prob(X)
    # Converged: the last E-step saw the final parameters.
    np.testing.assert_allclose(gm.lower_bound_, weighted.max(axis=1).mean(), rtol=1e-12)
    assert gm.lower_bound_ < gm.score(X)  # classification <= observed log-likelihood


def _stochastic(X, seed, **kwargs):
    params = dict(n_components=3, algorithm="stochastic", max_iter=25, random_state=seed)
    return _fit(X, **{**params, **kwargs})


def test_stochastic_em_same_seed_same_path_other_seed_other_path(blobs):
    first, again, other = (_stochastic(blobs, s) for s in (3, 3, 4))
    np.testing.assert_array_equal(first.history_, again.history_)
    np.testing.assert_array_equal(first.means_, again.means_)
    assert not np.allclose(first.history_, other.history_)
    assert np.any(np.diff(first.history_) < 0)  # overlapping rows: a noisy path


def test_stochastic_draws_do_not_depend_on_chunking(blobs):
    whole = _stochastic(blobs, 3)
    chunked = _stochastic(blobs, 3, chunk_size=7)
    np.testing.assert_allclose(chunked.history_, whole.history_, rtol=1e-12)
    np.testing.assert_allclose(chunked.means_, whole.means_, rtol=1e-10)


def test_stochastic_em_reports_the_best_parameters_seen():
    X = make_blobs(n_samples=1500, n_components=3, separation=8.0, seed=5)
    stochastic = _stochastic(X, 0, max_iter=40)
    soft = _fit(X, n_components=3, random_state=0)
    assert stochastic.n_iter_ == 40 and not stochastic.converged_
    assert stochastic.lower_bound_ == stochastic.history_.max()
    np.testing.assert_allclose(stochastic.score(X), stochastic.lower_bound_, rtol=1e-12)
    assert abs(stochastic.score(X) - soft.score(X)) < 0.01 * abs(soft.score(X))


def test_stochastic_draws_follow_the_responsibilities():
    resp = np.tile([0.2, 0.5, 0.3], (20000, 1))
    weights, _ = Stochastic(key=(1, 2)).assign(resp, np.zeros(20000), start=0)
    assert np.all(weights.sum(axis=1) == 1)
    frequencies = weights.mean(axis=0)
    np.testing.assert_allclose(frequencies, [0.2, 0.5, 0.3], atol=4 * np.sqrt(0.25 / 20000))


def test_stochastic_uniforms_are_keyed_on_the_row_index():
    policy = Stochastic(key=(7,), iteration=3)
    whole = policy.uniforms(0, 25)
    for start in range(0, 25, 5):
        np.testing.assert_array_equal(policy.uniforms(start, 5), whole[start : start + 5])
    assert not np.array_equal(policy.advanced().uniforms(0, 25), whole)


def test_stochastic_policy_needs_row_indices():
    with pytest.raises(ValueError, match="first row"):
        Stochastic(key=(1,)).assign(np.full((3, 2), 0.5), np.zeros(3), start=None)


def test_the_policy_plugs_into_any_mixture(blobs):
    soft = GaussianMixture(3, random_state=0).fit(blobs)._model()
    hard = Mixture(weights=soft.weights, components=soft.components, assignment=HARD)
    stats = hard.e_step(blobs)
    np.testing.assert_array_equal(stats.resp_sum, np.bincount(
        soft.log_resp(blobs)[0].argmax(axis=1), minlength=3))
    assert hard.m_step(stats).assignment is HARD


def test_bad_algorithm_settings_are_named(blobs):
    with pytest.raises(ValueError, match="algorithm"):
        GaussianMixture(2, algorithm="soft").fit(blobs)
    with pytest.raises(ValueError, match="accelerate=True needs algorithm='em'"):
        GaussianMixture(2, algorithm="hard", accelerate=True).fit(blobs)


def test_stochastic_callback_sees_the_noisy_path(blobs):
    seen = []
    gm = _stochastic(blobs, 1, max_iter=6, callback=lambda it, lb, ch, m: seen.append(lb))
    np.testing.assert_array_equal(seen, gm.history_)
