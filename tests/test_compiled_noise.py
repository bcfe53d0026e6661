"""The compiled small-data loop with a uniform noise component (``noise=True``).

It must be the general engine's EM with noise, iteration for iteration: the same
number of iterations, the Gaussian weights, the noise weight, means and
covariances to ~1e-8 relative (the general path is forced with
``gaussian_mixture._SMALL_FIT``), and the same selection table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.datasets import load_iris

import emkit.estimators.gaussian_mixture as gaussian_mixture
from emkit import GaussianMixture, select_model
from emkit.datasets import load_faithful
from emkit.distributions.gaussian import small_em
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES, MCLUST_MODELS
from tests.conftest import assert_same_tables

FAITHFUL = np.asarray(load_faithful(), dtype=float)
IRIS = np.asarray(load_iris().data, dtype=float)
# EVE's and VVE's warm M-steps stop short of their inner optimum, so rounding carries
# from one M-step to the next (as in tests/test_small_em.py, without noise).
SHARED_ORIENTATION = ("EVE", "VVE")


def _noise_guess(X):
    """Rows far from the data's centre (the outer tenth), as a user's noise guess."""
    centred = (X - X.mean(axis=0)) / X.std(axis=0)
    distance = np.linalg.norm(centred, axis=1)
    return distance > np.quantile(distance, 0.9)


def _fit(X, fast, monkeypatch, **params):
    monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", fast)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(noise=True, **params).fit(X)


def _assert_same_fit(fast, general, rtol):
    assert fast.n_iter_ == general.n_iter_
    assert fast.converged_ == general.converged_
    np.testing.assert_allclose(fast.history_, general.history_, rtol=rtol, atol=0)
    assert fast.noise_weight_ == pytest.approx(general.noise_weight_, rel=rtol, abs=1e-300)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        ours, theirs = getattr(fast, name), getattr(general, name)
        assert ours.shape == theirs.shape, name
        np.testing.assert_allclose(ours, theirs, rtol=0,
                                   atol=rtol * np.abs(theirs).max(), err_msg=name)


@pytest.mark.parametrize("model", [*MCLUST_MODELS, "E", "V"])
@pytest.mark.parametrize("data", ["faithful", "iris"])
def test_compiled_noise_fit_is_the_engines(model, data, monkeypatch, loop_runs):
    X = FAITHFUL if data == "faithful" else IRIS
    if model in ("E", "V"):  # mclust's univariate models: one column
        X = X[:, :1]
    for guess in (None, _noise_guess(X)):
        for k in (1, 2, 4):
            params = {"n_components": k, "covariance_type": model, "init_params": "hc",
                      "tol": 1e-8, "max_iter": 300, "noise_init": guess}
            fast = _fit(X, True, monkeypatch, **params)
            assert loop_runs == [True], (model, k)  # the fit did take the compiled loop
            general = _fit(X, False, monkeypatch, **params)
            assert loop_runs == [True], (model, k)  # and the engine's did not
            loop_runs.clear()
            if model in SHARED_ORIENTATION:
                _assert_same_fit(fast, general, rtol=1e-5)
            else:
                _assert_same_fit(fast, general, rtol=1e-8)
            assert 0.0 < fast.noise_weight_ < 1.0
            assert fast.weights_.sum() + fast.noise_weight_ == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("model", ["VVV", "EEE", "VII", "EII", "VVI", "EVE", "VEV", "EVV"])
def test_compiled_noise_log_likelihood_never_decreases(model, monkeypatch):
    for X in (FAITHFUL, IRIS):
        fit = _fit(X, True, monkeypatch, n_components=3, covariance_type=model,
                   init_params="hc", tol=1e-10, max_iter=400, noise_init=_noise_guess(X))
        history = np.asarray(fit.history_)
        assert len(history) > 2
        # (rounding's slack only: EM's bound rises at every step)
        assert np.all(np.diff(history) >= -1e-10 * np.abs(history[1:])), model


def test_noise_selection_is_the_engines(monkeypatch, loop_runs):
    guess = _noise_guess(IRIS[:, 2:])
    results = []
    for fast in (True, False):
        monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", fast)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.append(select_model(IRIS[:, 2:], range(1, 5), ["EII", "VII", "EEE", "VVI",
                                                                   "VEV", "VVV"],
                                        noise=True, noise_init=guess))
    # Every candidate of the first selection took the compiled loop, none of the second.
    assert len(loop_runs) >= 24 and all(loop_runs)
    assert_same_tables(*results)
    best, general = results[0].best_estimator, results[1].best_estimator
    assert best.noise_weight_ == pytest.approx(general.noise_weight_, rel=1e-6)
    row = results[0].table.iloc[0]
    assert row["bic"] == pytest.approx(best.bic(IRIS[:, 2:]), rel=1e-10)


@pytest.mark.parametrize("n", [31, 4000])  # one exponential call for all columns, or one each
def test_noise_scores_are_the_densities(n):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 3)) * [1.0, 2.0, 0.5]
    weights = np.array([0.1, 0.2, 0.3, 0.25, 0.15])  # four Gaussian components, then noise
    means = rng.normal(size=(4, 3))
    covariances = np.array([np.eye(3) * s + 0.2 for s in (0.5, 1.0, 1.5, 2.0)])
    prec = np.linalg.inv(np.linalg.cholesky(covariances)).transpose(0, 2, 1).copy()
    log_noise = -np.log(40.0)
    log_lik, entropy = small_em.final_scores(X, weights, means, prec,
                                             COVARIANCE_STRUCTURES["full"], log_noise)
    logs = np.log(weights) + np.column_stack(
        [multivariate_normal(m, c).logpdf(X) for m, c in zip(means, covariances, strict=True)]
        + [np.full(n, log_noise)])
    total = logsumexp(logs, axis=1)
    resp = np.exp(logs - total[:, None])
    assert log_lik == pytest.approx(total.sum(), rel=1e-12)
    assert entropy == pytest.approx(-(resp * np.log(resp)).sum(), rel=1e-10)


@pytest.mark.parametrize("model", ["VVV", "EEE", "EII", "VEI", "EEV", "VEV", "EVV", "VVE"])
def test_compiled_noise_with_a_prior_is_the_engines(model, monkeypatch, loop_runs):
    # Both at once (mclust's Mclust(prior =, initialization = list(noise =))): the MAP
    # M-step of the Gaussian components, then the weights over K + 1.
    X = IRIS
    for k in (1, 3):
        params = {"n_components": k, "covariance_type": model, "init_params": "hc",
                  "tol": 1e-8, "max_iter": 300, "noise_init": _noise_guess(X),
                  "prior": "default"}
        fast = _fit(X, True, monkeypatch, **params)
        assert loop_runs == [True], (model, k)
        general = _fit(X, False, monkeypatch, **params)
        loop_runs.clear()
        _assert_same_fit(fast, general, rtol=1e-5 if model in SHARED_ORIENTATION else 1e-8)
        # The prior is applied (its fit differs from the plain noise fit's).
        plain = _fit(X, True, monkeypatch, **{**params, "prior": None})
        loop_runs.clear()
        assert not np.allclose(plain.covariances_, fast.covariances_, rtol=1e-6)
