"""Standard errors of mixture fits (issue 21): Louis' observed information.

Independent truths: the closed forms of one Gaussian (the standard error of a
mean is ``sd / sqrt(n)``, that of a covariance entry ``sqrt((s_aa s_bb + s_ab^2) / n)``,
ML estimates), and a finite-difference Hessian of the observed log-likelihood
written here with scipy's densities, in the estimator's parametrisation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from emkit import GaussianMixture, MixtureModel, RegressionMixture
from emkit.distributions import (
    Bernoulli,
    Binomial,
    Categorical,
    Exponential,
    Gaussian,
    Geometric,
    Independent,
    Poisson,
)
from emkit.estimators.standard_errors import SingularInformationError

LINEAR_TYPES = ["full", "tied", "diag", "spherical", "EII", "EEI"]
REFERENCE = Path(__file__).parent / "reference"


# ----------------------------------------------------------------- test helpers


def numerical_hessian(f, theta, rel_step=1e-4):
    """Central second differences of ``f`` at ``theta``."""
    theta = np.asarray(theta, dtype=np.float64)
    h = rel_step * np.maximum(1.0, np.abs(theta))
    q = theta.size
    out = np.zeros((q, q))
    for i in range(q):
        for j in range(i, q):
            total = 0.0
            for si, sj, sign in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
                point = theta.copy()
                point[i] += si * h[i]
                point[j] += sj * h[j]
                total += sign * f(point)
            out[i, j] = out[j, i] = total / (4 * h[i] * h[j])
    return out


def assert_matches_hessian(information, hessian, rtol=2e-5):
    scale = np.abs(hessian).max()
    np.testing.assert_allclose(information, -hessian, rtol=rtol, atol=rtol * scale)


def gaussian_parameters(theta, covariance_type, k, d):
    """weights, means, dense covariances from the free parameters, in the documented order."""
    theta = list(theta)
    w = np.array(theta[:k - 1])
    weights = np.append(w, 1 - w.sum())
    rest = theta[k - 1:]
    means = np.array(rest[:k * d]).reshape(k, d)
    cov = np.array(rest[k * d:])
    rows, cols = np.triu_indices(d)
    m = rows.size

    def sym(v):
        s = np.zeros((d, d))
        s[rows, cols] = v
        s[cols, rows] = v
        return s

    if covariance_type == "full":
        dense = np.array([sym(cov[c * m:(c + 1) * m]) for c in range(k)])
    elif covariance_type == "tied":
        dense = np.array([sym(cov)] * k)
    elif covariance_type == "diag":
        dense = np.array([np.diag(cov[c * d:(c + 1) * d]) for c in range(k)])
    elif covariance_type == "spherical":
        dense = np.array([cov[c] * np.eye(d) for c in range(k)])
    elif covariance_type == "EII":
        dense = np.array([cov[0] * np.eye(d)] * k)
    elif covariance_type == "EEI":
        dense = np.array([np.diag(cov)] * k)
    return weights, means, dense


def normal_logpdf(X, mean, covariance):
    """The multivariate normal log density, written out (scipy's is slow to build)."""
    _, logdet = np.linalg.slogdet(covariance)
    centred = X - mean
    quad = np.einsum("ij,ij->i", centred, np.linalg.solve(covariance, centred.T).T)
    return -0.5 * (quad + logdet + X.shape[1] * np.log(2 * np.pi))


def test_the_written_out_density_is_scipys():
    X = two_clusters()
    cov = np.array([[2.0, 0.3], [0.3, 0.5]])
    np.testing.assert_allclose(normal_logpdf(X, [1.0, 2.0], cov),
                               stats.multivariate_normal([1.0, 2.0], cov).logpdf(X))


def gaussian_log_likelihood(X, weights, means, dense, sample_weight=None, labels=None):
    log = np.column_stack([
        np.log(w) + normal_logpdf(X, mu, s)
        for w, mu, s in zip(weights, means, dense, strict=True)
    ])
    rows = logsumexp(log, axis=1)
    if labels is not None:
        known = labels >= 0
        rows[known] = log[known, labels[known]]
    return float(rows @ (np.ones(len(X)) if sample_weight is None else sample_weight))


def two_clusters(n=(120, 180), d=2, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.multivariate_normal(np.zeros(d), np.eye(d) + 0.3, size=n[0])
    b = rng.multivariate_normal(np.full(d, 3.0), 1.5 * np.eye(d), size=n[1])
    return np.vstack([a, b])


def fitted(X, covariance_type, k=2, **kwargs):
    return GaussianMixture(k, covariance_type=covariance_type, reg_covar=0.0, tol=1e-12,
                           max_iter=2000, random_state=0, **kwargs).fit(X)


# ------------------------------------------------------------- one Gaussian


def test_one_gaussian_closed_forms():
    rng = np.random.default_rng(1)
    X = rng.multivariate_normal([1.0, -2.0, 0.5], [[2, 0.5, 0], [0.5, 1, 0.2], [0, 0.2, 3]],
                                size=500)
    se = fitted(X, "full", k=1).standard_errors(X)
    n, s = len(X), np.cov(X.T, bias=True)  # ML estimates
    np.testing.assert_allclose(se.means[0], np.sqrt(np.diag(s) / n), rtol=1e-8)
    np.testing.assert_allclose(se.covariances[0], np.sqrt((np.outer(np.diag(s), np.diag(s))
                                                           + s**2) / n), rtol=1e-8)
    assert np.isnan(se.weights).all() and se.frozen["weights"].all()


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_one_gaussian_variance_closed_form(covariance_type):
    rng = np.random.default_rng(2)
    X = rng.normal([0.0, 5.0], [1.0, 1.0], size=(400, 2))
    se = fitted(X, covariance_type, k=1).standard_errors(X)
    n = len(X)
    if covariance_type == "diag":
        var = X.var(axis=0)
        np.testing.assert_allclose(se.covariances[0], var * np.sqrt(2 / n), rtol=1e-8)
    else:  # one variance from 2n squared deviations
        var = X.var(axis=0).mean()
        np.testing.assert_allclose(se.covariances[0], var * np.sqrt(2 / (2 * n)), rtol=1e-8)
        np.testing.assert_allclose(se.means[0], np.sqrt(var / n), rtol=1e-8)


# ---------------------------------------------- mixtures: the numerical Hessian


@pytest.mark.parametrize("covariance_type", LINEAR_TYPES)
def test_information_is_minus_the_hessian(covariance_type):
    X = two_clusters()
    gm = fitted(X, covariance_type)
    se = gm.standard_errors(X)
    k, d = gm.means_.shape
    f = lambda t: gaussian_log_likelihood(X, *gaussian_parameters(t, covariance_type, k, d))  # noqa: E731
    assert_matches_hessian(se.information, numerical_hessian(f, se.estimates))
    np.testing.assert_allclose(np.sqrt(np.diag(se.covariance))[:1], se.weights[:1])


def test_three_components_full():
    rng = np.random.default_rng(3)
    X = np.vstack([two_clusters(n=(80, 100), seed=3),
                   rng.multivariate_normal([-3, 4], [[1, -0.4], [-0.4, 0.8]], 90)])
    gm = fitted(X, "full", k=3)
    se = gm.standard_errors(X)
    f = lambda t: gaussian_log_likelihood(X, *gaussian_parameters(t, "full", 3, 2))  # noqa: E731
    assert_matches_hessian(se.information, numerical_hessian(f, se.estimates))
    # The last weight's error is that of one minus the others' sum.
    w = np.zeros(len(se.names))
    w[:2] = -1
    assert se.weights[2] == pytest.approx(np.sqrt(w @ se.covariance @ w))


def test_louis_is_exact_away_from_the_maximum():
    """Complete minus missing information is minus the Hessian at any point, not only
    at the maximum (where the empirical information is only an estimate of it)."""
    X = two_clusters()
    gm = fitted(X, "diag")
    gm.means_ = gm.means_ + np.array([[0.3, -0.2], [0.1, 0.2]])
    se = gm.standard_errors(X)
    f = lambda t: gaussian_log_likelihood(X, *gaussian_parameters(t, "diag", 2, 2))  # noqa: E731
    hessian = numerical_hessian(f, se.estimates)
    assert_matches_hessian(se.information, hessian)
    empirical = gm.standard_errors(X, method="empirical").information
    assert not np.allclose(empirical, -hessian, rtol=0.05)


def test_weights_and_labels_enter_the_information():
    X = two_clusters(n=(60, 80))
    rng = np.random.default_rng(4)
    weight = rng.integers(1, 4, len(X)).astype(float)
    labels = np.where(rng.random(len(X)) < 0.3, (np.arange(len(X)) >= 60).astype(int), -1)
    gm = fitted(X, "full").fit(X, sample_weight=weight, labels=labels)
    se = gm.standard_errors(X, sample_weight=weight, labels=labels)
    f = lambda t: gaussian_log_likelihood(X, *gaussian_parameters(t, "full", 2, 2),  # noqa: E731
                                          sample_weight=weight, labels=labels)
    assert_matches_hessian(se.information, numerical_hessian(f, se.estimates))
    # Integer weights are repeated rows.
    repeated = np.repeat(X, weight.astype(int), axis=0)
    again = gm.standard_errors(repeated, labels=np.repeat(labels, weight.astype(int)))
    np.testing.assert_allclose(again.covariance, se.covariance, rtol=1e-8)


def test_frozen_parameters_have_no_standard_error():
    X = two_clusters()
    full = fitted(X, "full")
    se = full.standard_errors(X)
    frozen = GaussianMixture(2, covariance_type="full", reg_covar=0.0, params="wm",
                             weights_init=full.weights_, means_init=full.means_,
                             precisions_init=full.precisions_, max_iter=0).fit(X)
    partial = frozen.standard_errors(X)
    assert np.isnan(partial.covariances).all() and partial.frozen["covariances"].all()
    assert partial.names == se.names[:5]
    # Frozen covariances are constants: the information of the others is the sub-block.
    np.testing.assert_allclose(partial.information, se.information[:5, :5], rtol=1e-6)
    assert "fixed" in partial.table()


def test_nonlinear_models_with_frozen_covariances_work():
    """Frozen covariances are constants, whatever their model: weights and means have
    errors, the sub-block of the Hessian of those."""
    X = two_clusters()
    full = GaussianMixture(2, covariance_type="VEV", random_state=0).fit(X)
    frozen = GaussianMixture(2, covariance_type="VEV", params="wm", reg_covar=0.0,
                             weights_init=full.weights_, means_init=full.means_,
                             precisions_init=full.precisions_, max_iter=0).fit(X)
    se = frozen.standard_errors(X)
    dense = frozen.covariances_

    def f(t):
        weights = np.array([t[0], 1 - t[0]])
        return gaussian_log_likelihood(X, weights, t[1:].reshape(2, 2), dense)

    assert_matches_hessian(se.information, numerical_hessian(f, se.estimates))
    assert np.isnan(se.covariances).all()


def marginal_log_likelihood(X, weights, means, dense):
    """Each row's density is the marginal of its observed entries."""
    total = 0.0
    missing = np.isnan(X)
    for pattern in np.unique(missing, axis=0):
        rows = (missing == pattern).all(axis=1)
        o = np.flatnonzero(~pattern)
        if o.size == 0:
            continue
        log = np.column_stack([np.log(w) + normal_logpdf(X[rows][:, o], mu[o], s[np.ix_(o, o)])
                               for w, mu, s in zip(weights, means, dense, strict=True)])
        total += float(logsumexp(log, axis=1).sum())
    return total


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_missing_values_give_the_marginal_hessian(covariance_type):
    X = two_clusters(n=(90, 110), d=2, seed=13)
    rng = np.random.default_rng(13)
    X[rng.random(X.shape) < 0.15] = np.nan
    X[0] = np.nan  # a row with nothing observed adds nothing
    gm = GaussianMixture(2, covariance_type=covariance_type, reg_covar=0.0, tol=1e-10,
                         max_iter=1000, random_state=0).fit(X)
    se = gm.standard_errors(X)
    f = lambda t: marginal_log_likelihood(  # noqa: E731
        X, *gaussian_parameters(t, covariance_type, 2, 2))
    assert_matches_hessian(se.information, numerical_hessian(f, se.estimates))


# ------------------------------------------------------------------- families


def family_log_likelihood(X, weights, logpdfs):
    log = np.column_stack([np.log(w) + f(X) for w, f in zip(weights, logpdfs, strict=True)])
    return float(logsumexp(log, axis=1).sum())


def test_poisson_mixture_matches_the_hessian():
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.poisson(2, 150), rng.poisson(9, 100), rng.poisson(20, 50)])[:, None]
    mm = MixtureModel([Poisson(1.0), Poisson(8.0), Poisson(25.0)], tol=1e-12,
                      max_iter=5000).fit(X)
    se = mm.standard_errors(X)

    def f(t):
        w = np.append(t[:2], 1 - t[:2].sum())
        return family_log_likelihood(X[:, 0], w, [lambda x, r=r: stats.poisson.logpmf(x, r)
                                                  for r in t[2:]])

    assert_matches_hessian(se.information, numerical_hessian(f, se.estimates))
    assert se.component(2)["rate"].shape == (1,)


def test_bernoulli_mixture_matches_the_hessian():
    rng = np.random.default_rng(6)
    p = np.array([[0.8, 0.2, 0.7], [0.1, 0.6, 0.3]])
    z = rng.random(400) < 0.4
    X = (rng.random((400, 3)) < np.where(z[:, None], p[0], p[1])).astype(float)
    mm = MixtureModel([Bernoulli([0.6, 0.4, 0.5]), Bernoulli([0.3, 0.5, 0.4])], tol=1e-12,
                      max_iter=5000).fit(X)
    se = mm.standard_errors(X)

    def f(t):
        rows = [lambda x, q=t[1 + 3 * c:4 + 3 * c]: stats.bernoulli.logpmf(x, q).sum(axis=1)
                for c in range(2)]
        return family_log_likelihood(X, [t[0], 1 - t[0]], rows)

    assert_matches_hessian(se.information, numerical_hessian(f, se.estimates))
    assert se.names[1:4] == ("components[0].p[0]", "components[0].p[1]", "components[0].p[2]")


def test_other_families_match_the_hessian():
    """Categorical, Geometric, Exponential, Binomial and Gaussian parts of one Independent,
    with missing entries."""
    rng = np.random.default_rng(7)
    n = 300
    z = rng.random(n) < 0.5
    X = np.column_stack([
        np.where(z, rng.choice(3, n, p=[0.6, 0.3, 0.1]), rng.choice(3, n, p=[0.2, 0.3, 0.5])),
        rng.geometric(np.where(z, 0.5, 0.2)) - 1,
        rng.exponential(np.where(z, 1.0, 3.0)),
        rng.binomial(8, np.where(z, 0.3, 0.7)),
        rng.normal(np.where(z, 0.0, 2.0), 1.0),
    ])
    X[rng.random(X.shape) < 0.05] = np.nan  # missing entries add nothing

    def part(probs, p, rate, pb, mean):
        return Independent([Categorical(probs), Geometric(p), Exponential(rate),
                            Binomial(8, pb), Gaussian([mean], 1.0, "spherical", reg_covar=0)])

    mm = MixtureModel([part([0.5, 0.3, 0.2], 0.4, 0.8, 0.4, 0.5),
                       part([0.3, 0.3, 0.4], 0.3, 0.5, 0.6, 1.5)], tol=1e-12,
                      max_iter=5000).fit(X)
    se = mm.standard_errors(X)

    def logpdf(t):  # probs0, probs1, p, rate, p_binomial, mean, variance
        probs = np.array([t[0], t[1], 1 - t[0] - t[1]])
        return lambda x: np.nansum(np.column_stack([
            np.where(np.isnan(x[:, 0]), np.nan, np.log(probs[np.nan_to_num(x[:, 0]).astype(int)])),
            stats.geom.logpmf(x[:, 1] + 1, t[2]),
            stats.expon.logpdf(x[:, 2], scale=1 / t[3]),
            stats.binom.logpmf(x[:, 3], 8, t[4]),
            stats.norm.logpdf(x[:, 4], t[5], np.sqrt(t[6]))]), axis=1)

    def f(t):
        return family_log_likelihood(X, [t[0], 1 - t[0]], [logpdf(t[1:8]), logpdf(t[8:])])

    assert len(se.names) == 15
    assert_matches_hessian(se.information, numerical_hessian(f, se.estimates, 1e-5), 1e-4)


def test_frozen_component_and_fixed_weights():
    rng = np.random.default_rng(8)
    X = np.concatenate([rng.poisson(2, 200), rng.poisson(9, 100)])[:, None]
    mm = MixtureModel([Poisson(2.0), Poisson(8.0)], frozen=[True, False], fit_weights=False,
                      weights=[0.6, 0.4], tol=1e-12).fit(X)
    se = mm.standard_errors(X)
    assert se.names == ("components[1].rate[0]",)
    assert np.isnan(se.component(0)["rate"]).all() and np.isnan(se.weights).all()

    def f(t):
        return family_log_likelihood(X[:, 0], [0.6, 0.4], [
            lambda x: stats.poisson.logpmf(x, 2.0), lambda x: stats.poisson.logpmf(x, t[0])])

    assert_matches_hessian(se.information, numerical_hessian(f, se.estimates))


# ---------------------------------------------------------------- regressions


def regression_data(family, n=300, seed=12):
    rng = np.random.default_rng(seed)
    if family == "binomial":  # weakly identified: more rows, steep curves
        n, seed = 600, 13
        rng = np.random.default_rng(seed)
        x = rng.uniform(-3, 3, n)
        z = rng.random(n) < 0.45
        eta = np.where(z, -1 + 2.5 * x, 1.5 - 2 * x)
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
        return x[:, None], y, z.astype(int)
    x = rng.uniform(0, 3, n)
    z = rng.random(n) < 0.45
    eta = np.where(z, 0.5 + 0.8 * x, 2.0 - 0.6 * x)
    if family == "gaussian":
        y = 3 * eta + rng.normal(0, np.where(z, 0.4, 0.7))
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return x[:, None], y, z.astype(int)


def regression_log_likelihood(family, t, x, y):
    w = np.array([t[0], 1 - t[0]])
    step = 3 if family == "gaussian" else 2
    rows = []
    for c in range(2):
        b = t[1 + step * c:3 + step * c]
        eta = b[0] + b[1] * x[:, 0]
        if family == "gaussian":
            rows.append(stats.norm.logpdf(y, eta, t[3 + step * c]))
        elif family == "poisson":
            rows.append(stats.poisson.logpmf(y, np.exp(eta)))
        else:
            rows.append(stats.bernoulli.logpmf(y, 1 / (1 + np.exp(-eta))))
    log = np.column_stack(rows) + np.log(w)
    return float(logsumexp(log, axis=1).sum())


@pytest.mark.parametrize("family", ["gaussian", "poisson", "binomial"])
def test_regression_mixture_matches_the_hessian(family):
    x, y, z = regression_data(family)
    model = RegressionMixture(2, family=family, tol=1e-8).fit(x, y, init_resp=z)
    se = model.standard_errors(x, y)
    f = lambda t: regression_log_likelihood(family, t, x, y)  # noqa: E731
    assert_matches_hessian(se.information, numerical_hessian(f, se.estimates))
    expected = ["weights[0]", "intercept[0]", "coef[0, 0]"]
    assert list(se.names[:3]) == expected and se.coef.shape == model.coef_.shape
    if family == "gaussian":
        assert se.names[3] == "scale[0]"


def test_regression_mixture_matches_flexmix_refit():
    """flexmix's refit() inverts optim's numerical Hessian of the same likelihood."""
    data = np.genfromtxt(REFERENCE / "npreg.csv", delimiter=",", names=True)
    ref = json.loads((REFERENCE / "flexmix_refit_se.json").read_text())["poisson"]
    X, y = data["x"][:, None], data["yp"]
    model = RegressionMixture(2, family="poisson", tol=1e-14).fit(
        X, y, init_resp=data["class"] - 1)
    se = model.standard_errors(X, y)
    r_se = np.sqrt(np.diag(ref["vcov"]))
    np.testing.assert_allclose(np.column_stack([se.errors["intercept"], se.coef[:, 0]]),
                               r_se[:4].reshape(2, 2), rtol=5e-4)
    # alpha = log(w1 / w0): d w0 / d alpha = -w0 w1, so se(w0) = w0 w1 se(alpha).
    w0, w1 = model.weights_
    assert se.weights[0] == pytest.approx(w0 * w1 * r_se[4], rel=5e-4)


@pytest.mark.parametrize("k", [2, 3])
def test_regression_mixture_with_a_gate_matches_the_hessian(k):
    """A mixture of experts: softmax(gamma_0 + gamma_1 v) priors, first component the
    reference."""
    rng = np.random.default_rng(15)
    n = 400
    x, v = rng.uniform(0, 3, n), rng.normal(size=n)
    logits = np.column_stack([np.zeros(n), 0.5 + 1.5 * v, -0.5 - v][:k])
    z = (rng.random(n)[:, None] > np.cumsum(np.exp(logits) / np.exp(logits).sum(1, keepdims=True),
                                             axis=1)).sum(axis=1)
    y = np.array([1.0, 4.0, -2.0])[z] + np.array([2.0, -1.0, 0.5])[z] * x + rng.normal(0, 0.5, n)
    model = RegressionMixture(k, gating="logistic", tol=1e-12).fit(
        x[:, None], y, concomitant=v[:, None], init_resp=z)
    se = model.standard_errors(x[:, None], y, concomitant=v[:, None])
    n_gate = 2 * (k - 1)
    assert se.names[:2] == ("gate_intercept[1]", "gate_coef[1, 0]")
    assert np.isnan(se.errors["gate_intercept"][0]) and se.errors["gate_coef"].shape == (k, 1)

    def f(t):
        gamma = np.column_stack([np.zeros(2), t[:n_gate].reshape(k - 1, 2).T])
        log_prior = np.column_stack([np.ones(n), v]) @ gamma
        log_prior -= logsumexp(log_prior, axis=1, keepdims=True)
        b = t[n_gate:].reshape(k, 3)  # intercept, slope, scale
        log = np.column_stack([stats.norm.logpdf(y, b[c, 0] + b[c, 1] * x, b[c, 2])
                               for c in range(k)]) + log_prior
        return float(logsumexp(log, axis=1).sum())

    assert_matches_hessian(se.information, numerical_hessian(f, se.estimates))


# ----------------------------------------------------- coverage and refusals


def test_interval_coverage_is_near_the_level():
    hits, total = 0, 0
    truth = np.array([0.4, -2.0, 2.0])  # weights[0], means
    for seed in range(30):
        rng = np.random.default_rng(100 + seed)
        z = rng.random(300) < truth[0]
        X = np.where(z, rng.normal(-2, 1, 300), rng.normal(2, 1, 300))[:, None]
        gm = GaussianMixture(2, covariance_type="spherical", means_init=[[-2], [2]],
                             reg_covar=0.0, tol=1e-8).fit(X)
        ci = gm.confidence_intervals(X, level=0.9)
        lower = np.concatenate([ci.lower["weights"][:1], ci.lower["means"][:, 0]])
        upper = np.concatenate([ci.upper["weights"][:1], ci.upper["means"][:, 0]])
        hits += int(((lower <= truth) & (truth <= upper)).sum())
        total += 3
    assert 0.8 <= hits / total <= 0.97


def test_an_empty_component_is_named():
    rng = np.random.default_rng(9)
    X = rng.poisson(3, (200, 1)).astype(float)
    mm = MixtureModel([Poisson(3.0), Poisson(30.0)], tol=1e-12).fit(X)
    with pytest.raises(SingularInformationError, match=r"component\(s\) 1 stand for"):
        mm.standard_errors(X)


def test_identical_components_give_singular_information():
    rng = np.random.default_rng(10)
    X = rng.poisson(3, (200, 1)).astype(float)
    with pytest.warns(UserWarning, match="identical"):
        mm = MixtureModel([Poisson(3.0), Poisson(3.0)], max_iter=0).fit(X)
    match = r"no information on weights\[0\].*identical"
    with pytest.raises(SingularInformationError, match=match):
        mm.standard_errors(X)


def test_a_point_that_is_not_a_maximum_is_named():
    rng = np.random.default_rng(0)
    X = np.r_[rng.poisson(2, 150), rng.poisson(9, 150)][:, None].astype(float)
    mm = MixtureModel([Poisson(5.0), Poisson(5.5)], max_iter=0).fit(X)  # not fitted at all
    with pytest.raises(SingularInformationError, match="not at a maximum"):
        mm.standard_errors(X)


def test_a_collapsed_gaussian_component_is_named():
    rng = np.random.default_rng(11)
    X = np.vstack([rng.normal(0, 1, (200, 2)), np.tile([[5.0, 5.0]], (30, 1))])
    with pytest.warns(UserWarning, match="collapsed"):
        gm = GaussianMixture(2, covariance_type="full", random_state=0).fit(X)
    with pytest.raises(SingularInformationError, match="collapsed"):
        gm.standard_errors(X)


def test_boundary_probability_is_refused_with_its_name():
    X = np.array([[1.0], [1.0], [0.0], [1.0]])
    mm = MixtureModel([Bernoulli(1.0), Bernoulli(0.0)], max_iter=0).fit(X)
    with pytest.raises(ValueError, match=r"p\[0\] = 1.*boundary"):
        mm.standard_errors(X)


def test_bad_arguments():
    X = two_clusters()
    gm = fitted(X, "spherical")
    with pytest.raises(ValueError, match="level"):
        gm.confidence_intervals(X, level=95)
    with pytest.raises(ValueError, match="method"):
        gm.standard_errors(X, method="sandwich")


def test_a_file_source_is_refused_and_dask_is_read(tmp_path):
    import dask.array as da

    from emkit import sources

    X = two_clusters()
    gm = fitted(X, "diag")
    np.save(tmp_path / "rows.npy", X)
    with pytest.raises(ValueError, match="in memory"):
        gm.standard_errors(sources.open(tmp_path / "rows.npy"))
    lazy = gm.standard_errors(da.from_array(X, chunks=100))
    np.testing.assert_array_equal(lazy.covariance, gm.standard_errors(X).covariance)


def test_table_lists_each_parameter_once():
    X = two_clusters()
    table = fitted(X, "tied").standard_errors(X).table()
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["parameter", "estimate"]
    # weights (2), means (4), the tied covariance's upper triangle (3)
    assert len(lines) == 1 + 2 + 4 + 3


def test_map_fits_give_the_log_posterior_hessian():
    """With conjugate priors the fit maximises log-likelihood plus log prior: the
    information is minus the Hessian of that sum."""
    rng = np.random.default_rng(14)
    X = np.column_stack([
        np.concatenate([rng.poisson(2, 120), rng.poisson(7, 80)]),
        np.concatenate([rng.choice(3, 120, p=[0.7, 0.2, 0.1]), rng.choice(3, 80)]),
    ]).astype(float)
    gamma, alpha = (3.0, 0.5), np.array([2.0, 3.0, 1.5])
    mm = MixtureModel([Independent([Poisson(1.0, prior=gamma), Categorical([0.5, 0.3, 0.2],
                                                                           prior=alpha)]),
                       Independent([Poisson(6.0, prior=gamma), Categorical([0.3, 0.3, 0.4],
                                                                           prior=alpha)])],
                      tol=1e-13, max_iter=5000).fit(X)
    se = mm.standard_errors(X)

    def log_posterior(t):  # weights[0], then (rate, probs0, probs1) per component
        total, logs = 0.0, []
        for c in range(2):
            rate, p0, p1 = t[1 + 3 * c:4 + 3 * c]
            probs = np.array([p0, p1, 1 - p0 - p1])
            logs.append(stats.poisson.logpmf(X[:, 0], rate) + np.log(probs[X[:, 1].astype(int)]))
            total += stats.gamma.logpdf(rate, gamma[0], scale=1 / gamma[1])
            total += stats.dirichlet.logpdf(probs, alpha)
        w = np.array([t[0], 1 - t[0]])
        return total + float(logsumexp(np.column_stack(logs) + np.log(w), axis=1).sum())

    assert_matches_hessian(se.information, numerical_hessian(log_posterior, se.estimates))


def test_reprs_are_one_line_summaries():
    X = np.random.default_rng(0).normal(size=(200, 2))
    fit = GaussianMixture(1, reg_covar=0.0).fit(X)
    se = fit.standard_errors(X)
    assert repr(se) == ("StandardErrors(method='louis', 5 free parameters, weights (1,), "
                        "means (1, 2), covariances (1, 2, 2); .table() lists them)")
    ci = fit.confidence_intervals(X, level=0.9)
    assert "\n" not in repr(ci) and repr(ci).startswith("ConfidenceIntervals(level=0.9, ")


def test_a_map_fit_warns_that_the_prior_is_left_out():
    rng = np.random.default_rng(3)
    X = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(4, 1, (60, 2))]
    fit = GaussianMixture(2, prior="default", random_state=0).fit(X)
    with pytest.warns(UserWarning, match="prior's"):
        fit.standard_errors(X)
