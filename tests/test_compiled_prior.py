"""MAP EM (the conjugate prior) in the compiled small-data loop.

Truth is the general engine's Python MAP M-step
(:func:`emkit.distributions.gaussian.prior.map_means_and_covariances`), forced
with ``gaussian_mixture._SMALL_FIT = False``: from the same start the compiled
fit must take the same iterations to the same parameters, for every model.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris

import emkit.estimators.gaussian_mixture as gaussian_mixture
from emkit import GaussianMixture, select_model
from emkit.datasets import load_faithful
from emkit.distributions.gaussian import small_em
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.distributions.gaussian.family import gaussian_from_resp
from emkit.distributions.gaussian.prior import ConjugatePrior, log_prior, resolve_prior
from tests.conftest import assert_same_tables

MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV",
          "EVV", "VVV")
IRIS = np.ascontiguousarray(load_iris().data, dtype=float)
FAITHFUL = np.asarray(load_faithful(), dtype=float)
# Three of diabetes' standardised columns (age, bmi, bp): another scale of data.
DIABETES = np.ascontiguousarray(load_diabetes().data[:, [0, 2, 3]], dtype=float)
PETALS = np.ascontiguousarray(IRIS[:, 2:3])


def _fit(X, fast, monkeypatch, **params):
    monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", fast)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(random_state=0, **params).fit(X)


def _assert_same_fit(fast, general, X, rtol=1e-8):
    assert fast.n_iter_ == general.n_iter_
    assert fast.converged_ == general.converged_
    # EVE's and VVE's orientation iterations stop at their inner tolerance, so the loop's
    # other order of summation shows at ~1e-10 in their log-likelihoods.
    shared = fast.covariance_type in ("EVE", "VVE")
    np.testing.assert_allclose(fast.history_, general.history_, rtol=1e-8 if shared else 1e-10,
                               atol=0)
    for name in ("weights_", "means_", "covariances_"):
        ours, theirs = getattr(fast, name), getattr(general, name)
        assert ours.shape == theirs.shape, name
        # (Means on the data's scale: diabetes' columns are centred, its means near 0.)
        size = np.abs(theirs).max() if name != "means_" else np.abs(X).max()
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=rtol * size, err_msg=name)


CASES = ([(model, k, data) for model in MODELS for k in (1, 2, 4)
          for data in ("iris", "faithful", "diabetes")]
         + [(model, k, "petals") for model in ("E", "V") for k in (1, 2, 4)])
DATA = {"iris": IRIS, "faithful": FAITHFUL, "diabetes": DIABETES, "petals": PETALS}


@pytest.mark.parametrize(("model", "k", "data"), CASES)
def test_compiled_map_fit_is_the_engines(model, k, data, monkeypatch, loop_runs):
    X = DATA[data]
    params = dict(n_components=k, covariance_type=model, prior="default", max_iter=200)
    fast = _fit(X, True, monkeypatch, **params)
    assert loop_runs and all(loop_runs)
    loop_runs.clear()
    general = _fit(X, False, monkeypatch, **params)
    assert not loop_runs
    _assert_same_fit(fast, general, X)


@pytest.mark.parametrize("model", [*MODELS, "E", "V"])
def test_compiled_map_start_is_gaussian_from_resp(model):
    """The start's M-step alone, for a user-given prior (no shrinkage) and the default."""
    X = PETALS if model in ("E", "V") else IRIS
    d = X.shape[1]
    rng = np.random.default_rng(0)
    resp = rng.dirichlet(np.ones(3), size=X.shape[0])
    structure = COVARIANCE_STRUCTURES[model]
    scalar = model in ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "E", "V")
    given = ConjugatePrior(shrinkage=0.0, mean=X.mean(axis=0) + 0.3, dof=d + 5.0,
                           scale=0.7 if scalar else 0.5 * np.cov(X, rowvar=False)
                           + 0.1 * np.eye(d))
    for prior in ("default", given):
        resolved = resolve_prior(prior, X, 3, structure.model)
        ours = small_em.start_from_resp(structure, X, resp, 1e-6, resolved)
        theirs = gaussian_from_resp(structure, X, resp, 1e-6, resolved)
        for name in ("means", "covariances"):
            a, b = getattr(ours, name), getattr(theirs, name)
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(b).max(),
                                       err_msg=f"{model} {prior} {name}")


@pytest.mark.parametrize("model", ["VVV", "EEV", "VEI", "E"])
def test_user_prior_fits_are_the_engines(model, monkeypatch, loop_runs):
    X = PETALS if model == "E" else FAITHFUL
    d = X.shape[1]
    scale = 0.4 if model in ("VEI", "E") else np.array([[0.2, 0.5], [0.5, 20.0]])
    prior = ConjugatePrior(shrinkage=0.0, mean=X.mean(axis=0) - 0.5, dof=d + 3.0, scale=scale)
    params = dict(n_components=2, covariance_type=model, prior=prior)
    fast = _fit(X, True, monkeypatch, **params)
    assert loop_runs and all(loop_runs)
    _assert_same_fit(fast, _fit(X, False, monkeypatch, **params), X)


@pytest.mark.parametrize("model", ["VVV", "EVE", "VVE", "VEE", "EVV"])
def test_log_posterior_never_decreases_along_a_compiled_map_run(model):
    """MAP EM raises log_prior + log-likelihood at every step (VVV and the models whose
    prior is the per-component conjugate one)."""
    X = IRIS
    k = 3
    structure = COVARIANCE_STRUCTURES[model]
    prior = resolve_prior("default", X, k, model)
    resp = np.random.default_rng(1).dirichlet(np.ones(k), size=X.shape[0])
    means, cov, prec = small_em.start_dense(model, X, resp, 0.0, prior=prior)
    weights = resp.sum(axis=0) / X.shape[0]
    posteriors = []
    for _ in range(30):  # one iteration at a time: the parameters after each M-step
        log_lik, _ = small_em.final_scores(X, weights, means, prec,
                                           COVARIANCE_STRUCTURES["full"])
        posteriors.append(log_lik + log_prior(means, cov, prior))
        fit = small_em.run_dense(X, weights, means, cov, prec, model, 0.0, tol=0.0,
                                 max_iter=1, prior=prior)
        weights, means = fit.weights, fit.means
        cov, prec = fit.covariances, fit.precisions_cholesky
    steps = np.diff(posteriors)
    assert np.all(steps >= -1e-9 * np.abs(posteriors).max()), (structure.name, steps)


@pytest.mark.parametrize("data", ["faithful", "diabetes"])
def test_selection_with_a_prior_is_the_engines(data, monkeypatch, loop_runs):
    X = DATA[data]
    frame = pd.DataFrame(X)
    results = []
    for fast in (True, False):
        monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", fast)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.append(select_model(frame, range(1, 5), prior="default"))
    assert loop_runs and all(loop_runs)
    assert_same_tables(*results)
    best, general = results[0].best_estimator, results[1].best_estimator
    np.testing.assert_allclose(best.means_, general.means_, rtol=1e-6)
    assert best.bic(frame) == pytest.approx(general.bic(frame), rel=1e-8)
