"""MixtureModel on the rows and starts a new user meets: impossible rows, priors, automatic starts.

Oracles: the closed-form MAP estimates under Beta, Dirichlet and Gamma priors
written out here; the log prior kernels written out here; known true parameters.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.base import clone

import emkit
from emkit.distributions import (
    Bernoulli,
    Binomial,
    Categorical,
    Exponential,
    Gaussian,
    Independent,
    Poisson,
)
from emkit.estimators.mixture_model import IdenticalComponentsWarning, MixtureModel

TWO_COLUMNS = [[1, 0], [1, 0], [0, 0], [1, 0], [0, 0], [1, 0]]


def two_bernoullis(prior=None):
    return [Bernoulli([0.3, 0.5], prior=prior), Bernoulli([0.8, 0.5], prior=prior)]


# --- rows impossible under every component ---------------------------------------------------

def test_predict_proba_and_predict_name_the_impossible_rows():
    # The reproduction: column 1 is all zeros, so both components fit p = 0 there.
    model = MixtureModel(two_bernoullis()).fit(TWO_COLUMNS)
    assert [float(c.p[1]) for c in model.components_] == [0.0, 0.0]
    X = [[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
    for method in (model.predict_proba, model.predict):
        with pytest.raises(ValueError, match=r"^rows 0, 2 have probability zero under every "
                                             r"fitted component"):
            method(X)
    with pytest.raises(ValueError, match=r"^row 0 has probability zero .* prior=\(2, 2\)"):
        model.predict_proba([[1.0, 1.0]])
    # Possible rows still get responsibilities that sum to one.
    np.testing.assert_allclose(model.predict_proba([[1.0, 0.0]]).sum(axis=1), 1.0)


def test_score_samples_gives_minus_infinity_without_numpy_warnings():
    model = MixtureModel(two_bernoullis()).fit(TWO_COLUMNS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value in subtract" was the only sign
        scores = model.score_samples([[1.0, 1.0], [1.0, 0.0]])
    assert scores[0] == -np.inf
    expected = logsumexp(
        np.log(model.weights_) + np.log([c.p[0] * (1 - c.p[1]) for c in model.components_])
    )
    assert scores[1] == pytest.approx(expected, rel=1e-12)


def test_fit_names_every_impossible_row():
    start = [Categorical([0.5, 0.5, 0.0]), Categorical([0.2, 0.8, 0.0])]
    with pytest.raises(ValueError, match=r"rows 1, 3 have probability zero under every "
                                         r"starting component"):
        MixtureModel(start).fit([[0], [2], [1], [2]])


def test_dask_predict_names_global_rows():
    da = pytest.importorskip("dask.array")
    model = MixtureModel(two_bernoullis()).fit(TWO_COLUMNS)
    X = np.zeros((10, 2))
    X[7] = 1.0
    lazy = model.predict_proba(da.from_array(X, chunks=(4, 2)))
    with pytest.raises(ValueError, match=r"^row 7 has probability zero"):
        lazy.compute()
    labels = model.predict(da.from_array(X[:6], chunks=(4, 2))).compute()
    np.testing.assert_array_equal(labels, model.predict(X[:6]))
    proba = model.predict_proba(da.from_array(X[:6], chunks=(4, 2))).compute()
    np.testing.assert_array_equal(proba, model.predict_proba(X[:6]))


def test_dask_fit_refuses_an_impossible_row_instead_of_nan():
    da = pytest.importorskip("dask.array")
    X = np.zeros((10, 1))
    X[5] = 3.0
    with pytest.raises(ValueError, match=r"a row has probability zero under every component"):
        MixtureModel([Poisson(0.0), Poisson(0.0)]).fit(da.from_array(X, chunks=(4, 1)))


def test_partial_fit_refuses_an_impossible_row_and_keeps_the_model():
    # Issue 22.7: Poisson rates fitted to 0, then a 3, turned the weights into NaN.
    with pytest.warns(IdenticalComponentsWarning):  # both rates 0: identical, rightly flagged
        model = MixtureModel([Poisson(1.0), Poisson(2.0)]).fit(np.zeros((5, 1)))
    assert [float(c.rate[0]) for c in model.components_] == [0.0, 0.0]
    before = (model.weights_.copy(), [c.rate.copy() for c in model.components_],
              model.history_.copy(), model.n_iter_)
    with pytest.raises(ValueError, match=r"^rows 1, 3 have probability zero under every "
                                         r"fitted component"):
        model.partial_fit([[0], [3], [0], [5]])
    np.testing.assert_array_equal(model.weights_, before[0])
    for c, rate in zip(model.components_, before[1], strict=True):
        np.testing.assert_array_equal(c.rate, rate)
    np.testing.assert_array_equal(model.history_, before[2])
    assert model.n_iter_ == before[3]
    model.partial_fit([[0], [0]])  # a possible batch still updates the model
    assert np.isfinite(model.weights_).all() and model.n_iter_ == before[3] + 1


def test_a_prior_makes_every_row_possible():
    model = MixtureModel(two_bernoullis(prior=(2, 2))).fit(TWO_COLUMNS)
    proba = model.predict_proba([[1.0, 1.0]])
    assert np.isfinite(proba).all() and proba.sum() == pytest.approx(1.0)
    # Add-one smoothing: no fitted probability reaches 0 or 1.
    for c in model.components_:
        assert ((c.p > 0) & (c.p < 1)).all()


# --- conjugate priors: the MAP M-step -------------------------------------------------------

RNG = np.random.default_rng(0)
W = RNG.uniform(0.1, 1.0, size=40)


def test_bernoulli_map_is_the_beta_posterior_mode():
    X = (RNG.random((40, 3)) < [0.0, 0.4, 1.0]).astype(float)
    a, b = np.array([2.0, 3.0, 1.5]), 4.0
    fitted = Bernoulli([0.5, 0.5, 0.5], prior=(a, b)).fit(X, W)
    expected = (W @ X + a - 1) / (W.sum() + a + b - 2)
    np.testing.assert_allclose(fitted.p, expected, rtol=1e-12)
    assert 0 < fitted.p[0] and fitted.p[2] < 1  # no hard zeros left


def test_binomial_map_is_the_beta_posterior_mode():
    X = RNG.binomial(10, 0.3, size=(40, 1)).astype(float)
    fitted = Binomial(10, 0.5, prior=(3, 2)).fit(X, W)
    assert fitted.p == pytest.approx((W @ X[:, 0] + 2) / (10 * W.sum() + 3), rel=1e-12)


def test_categorical_map_is_the_dirichlet_posterior_mode():
    X = RNG.choice(3, size=(40, 1), p=[0.5, 0.5, 0.0]).astype(float)
    alpha = np.array([2.0, 1.0, 3.0])
    fitted = Categorical([0.2, 0.3, 0.5], prior=alpha).fit(X, W)
    counts = np.array([W[X[:, 0] == c].sum() for c in range(3)])
    np.testing.assert_allclose(fitted.probs, (counts + alpha - 1) / (W.sum() + alpha.sum() - 3),
                               rtol=1e-12)
    assert fitted.probs[2] > 0


def test_poisson_map_is_the_gamma_posterior_mode():
    X = np.zeros((40, 2))
    X[:, 1] = RNG.poisson(4.0, size=40)
    fitted = Poisson([1.0, 1.0], prior=(2.0, 0.5)).fit(X, W)
    np.testing.assert_allclose(fitted.rate, (W @ X + 1.0) / (W.sum() + 0.5), rtol=1e-12)
    assert fitted.rate[0] > 0  # a column of zeros no longer gives a rate of 0


def test_exponential_map_is_the_gamma_posterior_mode():
    X = RNG.exponential(2.0, size=(40, 1))
    fitted = Exponential(1.0, prior=(3.0, 2.0)).fit(X, W)
    assert fitted.rate[0] == pytest.approx((W.sum() + 2.0) / (W @ X[:, 0] + 2.0), rel=1e-12)
    assert Exponential(1.0, prior=(1.0, 1.0)).fit(np.zeros((3, 1))).rate[0] == 3.0


def test_no_prior_is_maximum_likelihood():
    X = (RNG.random((40, 2)) < 0.3).astype(float)
    np.testing.assert_array_equal(Bernoulli([0.5, 0.5], prior=(1, 1)).fit(X, W).p,
                                  Bernoulli([0.5, 0.5]).fit(X, W).p)


def bernoulli_data(n=60, seed=1):
    rng = np.random.default_rng(seed)
    truth = np.array([[0.9, 0.0, 0.8], [0.1, 0.0, 0.3]])
    labels = rng.integers(2, size=n)
    return (rng.random((n, 3)) < truth[labels]).astype(float)


def objective(model: MixtureModel, X: np.ndarray, a: float, b: float) -> float:
    """Average log-likelihood plus the Beta(a, b) log prior kernel, written out here."""
    log_prior = sum(
        np.sum((a - 1) * np.log(c.p) + (b - 1) * np.log1p(-c.p)) for c in model.components_
    )
    return (model.score_samples(X).sum() + log_prior) / len(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_map_em_never_decreases_log_likelihood_plus_log_prior():
    X = bernoulli_data()
    start = [Bernoulli([0.6, 0.5, 0.5], prior=(2, 3)), Bernoulli([0.4, 0.5, 0.5], prior=(2, 3))]
    fits = [MixtureModel(start, tol=0, max_iter=k).fit(X) for k in range(1, 9)]
    history = fits[-1].history_
    assert np.all(np.diff(history) >= -1e-12)
    # history_[k] is the objective of the parameters after k M-steps (those of fits[k - 1]).
    for k in range(1, 8):
        assert history[k] == pytest.approx(objective(fits[k - 1], X, 2, 3), rel=1e-12)
    assert fits[-1].components_[0].p[1] > 0  # the all-zero column keeps p off 0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_accelerated_and_hard_map_em_are_monotone_in_the_map_objective():
    X = bernoulli_data(seed=2)
    start = [Bernoulli([0.6, 0.5, 0.5], prior=(2, 2)), Bernoulli([0.4, 0.5, 0.5], prior=(2, 2))]
    for params in ({"accelerate": True}, {"algorithm": "hard"}):
        history = MixtureModel(start, tol=0, max_iter=15, **params).fit(X).history_
        assert np.all(np.diff(history) >= -1e-12), params


def test_partial_fit_weighs_the_prior_against_the_rows_seen():
    X = bernoulli_data(n=20, seed=3)[:, :1]
    model = MixtureModel([Bernoulli(0.5, prior=(2, 2))]).partial_fit(X)
    s, n = X.sum(), len(X)
    assert model.components_[0].p[0] == pytest.approx((s + 1) / (n + 2), rel=1e-9)
    model.partial_fit(X)  # the same batch again: blended averages unchanged, 2n rows seen
    assert model.components_[0].p[0] == pytest.approx((2 * s + 1) / (2 * n + 2), rel=1e-9)


def test_priors_survive_save_and_load(tmp_path):
    X = bernoulli_data()
    start = [Independent([Bernoulli([0.6, 0.5], prior=(2, 2)), Poisson(1.0, prior=(2, 1))]),
             Independent([Bernoulli([0.4, 0.5], prior=(2, 2)), Poisson(2.0, prior=(2, 1))])]
    X = np.column_stack([X[:, :2], np.random.default_rng(0).poisson(2, len(X))])
    model = MixtureModel(start).fit(X)
    loaded = emkit.load(emkit.save(model, tmp_path / "map.npz"))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.components_[0].components[1].prior[0], [2.0])
    refit = clone(loaded).fit(X)
    np.testing.assert_allclose(refit.weights_, model.weights_, rtol=1e-12)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Bernoulli(0.5, prior=(0.5, 2)), r"prior a must lie in \[1, inf\]"),
        (lambda: Bernoulli([0.5, 0.5], prior=([2, 2, 2], 2)), r"prior a must be a number or "
                                                              r"have shape \(2,\)"),
        (lambda: Bernoulli(0.5, prior=2), r"prior must be None or a pair"),
        (lambda: Binomial(10, 0.5, prior=(2, np.nan)), r"prior b must lie in"),
        (lambda: Categorical([0.5, 0.5], prior=0.5), r"prior must lie in \[1, inf\]"),
        (lambda: Poisson(1.0, prior=(2, -1)), r"prior b must lie in \[0, inf\]"),
        (lambda: Exponential(1.0, prior=(2, np.inf)), r"prior b must be finite"),
    ],
)
def test_bad_priors_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --- automatic starts from a template --------------------------------------------------------

def matched(fitted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``fitted`` rows reordered to best match ``truth`` rows (label switching)."""
    best = min(itertools.permutations(range(len(truth))),
               key=lambda order: np.abs(fitted[list(order)] - truth).sum())
    return fitted[list(best)]


def sample(truth, weights, n, seed, draw):
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(weights), size=n, p=weights)
    return draw(rng, truth[labels]).astype(float)


def test_bernoulli_mixture_recovered_from_an_automatic_start():
    truth = np.array([[0.9, 0.9, 0.1, 0.1, 0.8, 0.2],
                      [0.1, 0.1, 0.9, 0.9, 0.8, 0.2],
                      [0.1, 0.9, 0.1, 0.9, 0.2, 0.8]])
    X = sample(truth, [0.3, 0.3, 0.4], 1500, 4, lambda rng, p: rng.random(p.shape) < p)
    model = MixtureModel(Bernoulli(np.full(6, 0.5)), n_components=3, n_init=3,
                         random_state=0, tol=1e-6).fit(X)
    assert model.converged_
    fitted = np.array([c.p for c in model.components_])
    np.testing.assert_allclose(matched(fitted, truth), truth, atol=0.06)
    np.testing.assert_allclose(np.sort(model.weights_), [0.3, 0.3, 0.4], atol=0.05)


@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_poisson_mixture_recovered_from_an_automatic_start(init_params):
    truth = np.array([[1.0, 10.0], [6.0, 2.0], [15.0, 12.0]])
    X = sample(truth, [0.3, 0.4, 0.3], 900, 5, lambda rng, lam: rng.poisson(lam))
    model = MixtureModel(Poisson([1.0, 1.0]), n_components=3, init_params=init_params,
                         n_init=3, random_state=0, tol=1e-6).fit(X)
    fitted = np.array([c.rate for c in model.components_])
    np.testing.assert_allclose(matched(fitted, truth), truth, rtol=0.1)


def test_a_symmetric_start_warns_and_a_template_does_not():
    # The reproduction: ten identical Bernoulli(0.5) components stay identical.
    X = sample(np.array([[0.9, 0.9, 0.1], [0.1, 0.2, 0.9]]), [0.5, 0.5], 300, 6,
               lambda rng, p: rng.random(p.shape) < p)
    with pytest.warns(IdenticalComponentsWarning,
                      match=r"components 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 have identical"):
        stuck = MixtureModel([Bernoulli(np.full(3, 0.5))] * 10).fit(X)
    assert stuck.converged_ and stuck.n_iter_ <= 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdenticalComponentsWarning)
        auto = MixtureModel(Bernoulli(np.full(3, 0.5)), n_components=2, random_state=0).fit(X)
    assert auto.score(X) > stuck.score(X) + 0.3


def test_template_fits_are_reproducible_and_clone_save_and_load(tmp_path):
    X = sample(np.array([[1.0], [8.0]]), [0.5, 0.5], 200, 7, lambda rng, lam: rng.poisson(lam))
    model = MixtureModel(Poisson(1.0), n_components=2, n_init=2, random_state=3).fit(X)
    again = clone(model).fit(X)
    assert [c.rate[0] for c in again.components_] == [c.rate[0] for c in model.components_]
    loaded = emkit.load(emkit.save(model, tmp_path / "template.npz"))
    assert isinstance(loaded.components, Poisson) and loaded.n_components == 2
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_list_can_restart_from_kmeans():
    X = sample(np.array([[1.0], [8.0]]), [0.5, 0.5], 200, 8, lambda rng, lam: rng.poisson(lam))
    stuck = [Poisson(4.0), Poisson(4.0)]
    with pytest.warns(IdenticalComponentsWarning):
        MixtureModel(stuck, random_state=0).fit(X)
    model = MixtureModel(stuck, init_params="kmeans", n_init=2, random_state=0).fit(X)
    assert sorted(round(float(c.rate[0])) for c in model.components_) == [1, 8]


@pytest.mark.parametrize(
    ("kwargs", "X", "message"),
    [
        ({"components": Poisson(1.0)}, [[1], [2]], r"a single distribution is a template .* "
                                                   r"pass n_components"),
        ({"components": [Poisson(1.0)] * 2, "n_components": 3}, [[1], [2]],
         r"n_components=3 but 2 starting components"),
        ({"components": Poisson(1.0), "n_components": 3}, [[1], [2]],
         r"n_components=3 automatic starts need at least as many rows, got 2"),
        ({"components": Poisson(1.0), "n_components": 2, "init_params": "k-means++"}, [[1]],
         r"parameter init_params must be None or one of 'kmeans', 'random'"),
        ({"components": Poisson, "n_components": 2}, [[1]], r"parameter components must be"),
    ],
)
def test_bad_template_settings_are_named(kwargs, X, message):
    with pytest.raises(ValueError, match=message):
        MixtureModel(**kwargs).fit(np.asarray(X, dtype=float))


def test_gaussian_parameters_are_validated():
    for make, message in [
        (lambda: Gaussian([np.nan], 1.0, "spherical"), r"mean must be finite, got nan at 0"),
        (lambda: Gaussian([0.0, np.inf], np.eye(2)), r"mean must be finite, got inf at 1"),
        (lambda: Gaussian([0.0], [[np.nan]]), r"covariance must be finite"),
        (lambda: Gaussian([0.0, 0.0], [1.0, 0.0], "diag"), r"variances, which must be positive"),
        (lambda: Gaussian([0.0], -1.0, "spherical"), r"variances, which must be positive"),
        (lambda: Gaussian([0.0], 1.0, "spherical", reg_covar=np.nan), r"reg_covar must be"),
        (lambda: Poisson(np.inf), r"rate must be finite"),
        (lambda: Exponential([1.0, np.nan]), r"rate must lie in"),
        (lambda: Bernoulli([0.5, np.nan]), r"p must lie in \[0.0, 1.0\], got nan at 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            make()
