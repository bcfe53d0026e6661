"""Standard errors of mclust's eight curved covariance models (issue 21).

Independent truths: a finite-difference Hessian of the observed log-likelihood
in the documented chart, written here with ``scipy.linalg.expm`` for the
rotation (not the closed-form derivatives of the library); the closed forms of
one Gaussian (one component of a model with a free orientation is the full
model, of VEI and EVI the diagonal one); rotation equivariance.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.linalg import expm

from emkit import GaussianMixture
from emkit.distributions.gaussian.constrained import orientation_of
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.distributions.gaussian.curved import CURVED_MODELS, curved_layout
from emkit.estimators.standard_errors import SingularInformationError
from tests.test_standard_errors import gaussian_log_likelihood, numerical_hessian, two_clusters

ROTATING = ("VEE", "EVE", "VVE", "EEV", "VEV", "EVV")  # orientation estimated


def fitted(X, model, k=2, labels=None):
    return GaussianMixture(k, covariance_type=model, reg_covar=0.0, tol=1e-12, max_iter=3000,
                           random_state=0).fit(X, labels=labels)


def dense_of(gm):
    k, d = gm.means_.shape
    return COVARIANCE_STRUCTURES[gm.covariance_type].dense(gm.covariances_, k, d)


def chart(model, dense):
    """The documented chart, from exponentials: coordinates -> dense covariances."""
    k, d = dense.shape[:2]
    if model[2] == "I":
        frames, values = np.broadcast_to(np.eye(d), (k, d, d)), np.diagonal(dense, 0, 1, 2)
    elif model[2] == "V":
        values, frames = np.linalg.eigh(dense)
    else:
        frame = orientation_of(dense)
        frames = np.broadcast_to(frame, (k, d, d))
        values = np.einsum("ai,kab,bi->ki", frame, dense, frame)
    shapes = values / np.exp(np.log(values).mean(axis=1))[:, None]
    pairs = list(zip(*np.triu_indices(d, 1), strict=True)) if model[2] != "I" else []
    counts = [1 if letter == "E" else k for letter in model[:3]]

    def build(theta):
        theta = np.asarray(theta)
        u, theta = theta[:counts[0]], theta[counts[0]:]
        v, theta = theta[:counts[1] * (d - 1)].reshape(-1, d - 1), theta[counts[1] * (d - 1):]
        omega = theta.reshape(-1, len(pairs)) if pairs else None
        out = []
        for c in range(k):
            def pick(array, letter, c=c):
                return array[0 if letter == "E" else c]

            log_shape = np.log(shapes[c])
            # v is log(a_j / a_{d-1}); the log shape keeps a zero sum.
            shift = np.append(pick(v, model[1]) - (log_shape[:-1] - log_shape[-1]), 0.0)
            log_shape = log_shape + shift - shift.mean()
            skew = np.zeros((d, d))
            for p, (a, b) in enumerate(pairs):
                angle = pick(omega, model[2])[p]
                skew[a, b], skew[b, a] = angle, -angle
            turn = frames[c] @ expm(skew)
            out.append(np.exp(pick(u, model[0])) * turn @ np.diag(np.exp(log_shape)) @ turn.T)
        return np.array(out)

    return build


@pytest.mark.parametrize(("model", "d"), [(model, 2) for model in CURVED_MODELS]
                         + [("VEV", 3)])
def test_information_is_minus_the_hessian_in_the_chart(model, d):
    X = two_clusters(d=d)
    gm = fitted(X, model)
    se = gm.standard_errors(X)
    k, d = gm.means_.shape
    dense = dense_of(gm)
    build = chart(model, dense)
    n_w, n_m = k - 1, k * d
    np.testing.assert_allclose(build(se.estimates[n_w + n_m:]), dense, atol=1e-10)

    def f(t):
        weights = np.append(t[:n_w], 1 - t[:n_w].sum())
        return gaussian_log_likelihood(X, weights, t[n_w:n_w + n_m].reshape(k, d),
                                       build(t[n_w + n_m:]))

    hessian = numerical_hessian(f, se.estimates)
    scale = np.abs(hessian).max()
    np.testing.assert_allclose(se.information, -hessian, atol=2e-6 * scale)
    # mclust's count of covariance parameters
    assert len(se.names) - n_w - n_m == gm._n_parameters() - n_w - n_m


@pytest.mark.parametrize("model", ["VEV", "EVE"])
def test_information_is_exact_away_from_the_maximum(model):
    """The chart's curvature term matters most where the scores do not vanish."""
    X = two_clusters(d=2, seed=4)
    gm = fitted(X, model)
    gm.means_ = gm.means_ + np.array([[0.2, -0.1], [0.1, 0.15]])
    se = gm.standard_errors(X)
    k, d = gm.means_.shape
    build = chart(model, dense_of(gm))

    def f(t):
        weights = np.append(t[:1], 1 - t[0])
        return gaussian_log_likelihood(X, weights, t[1:1 + k * d].reshape(k, d),
                                       build(t[1 + k * d:]))

    hessian = numerical_hessian(f, se.estimates)
    np.testing.assert_allclose(se.information, -hessian, atol=2e-6 * np.abs(hessian).max())


@pytest.mark.parametrize("model", ROTATING)
def test_one_component_is_the_full_model(model):
    """One component: the chart is a local reparametrisation of the full covariance,
    so by the delta method the errors are the full model's closed forms."""
    rng = np.random.default_rng(1)
    X = rng.multivariate_normal([1.0, -2.0, 0.5], [[2, 0.5, 0], [0.5, 1, 0.2], [0, 0.2, 3]],
                                size=500)
    se = fitted(X, model, k=1).standard_errors(X)
    n, s = len(X), np.cov(X.T, bias=True)
    np.testing.assert_allclose(se.means[0], np.sqrt(np.diag(s) / n), rtol=1e-7)
    np.testing.assert_allclose(
        se.covariances[0], np.sqrt((np.outer(np.diag(s), np.diag(s)) + s**2) / n), rtol=1e-6)
    # the log-volume: (1/d) log det S has variance 2 / (d n)
    assert se.errors["covariances"] is se.covariances
    assert np.sqrt(se.covariance[3, 3]) == pytest.approx(np.sqrt(2 / (3 * n)), rel=1e-6)


@pytest.mark.parametrize("model", ["VEI", "EVI"])
def test_one_axis_aligned_component_is_the_diagonal_model(model):
    rng = np.random.default_rng(2)
    X = rng.normal([0.0, 5.0, 1.0], [1.0, 2.0, 0.5], size=(400, 3))
    se = fitted(X, model, k=1).standard_errors(X)
    var, n = X.var(axis=0), len(X)
    np.testing.assert_allclose(se.covariances[0], var * np.sqrt(2 / n), rtol=1e-7)
    np.testing.assert_allclose(se.means[0], np.sqrt(var / n), rtol=1e-7)


def rotated(gm, turn):
    """The fit moved by the rotation ``turn``: the maximum on the rotated rows."""
    out = copy.deepcopy(gm)
    structure = COVARIANCE_STRUCTURES[gm.covariance_type]
    out.means_ = gm.means_ @ turn.T
    out.covariances_ = np.einsum("ia,kab,jb->kij", turn, gm.covariances_, turn)
    out.precisions_cholesky_ = structure.precisions_cholesky(out.covariances_)
    out.precisions_ = structure.precisions(out.precisions_cholesky_)
    return out


@pytest.mark.parametrize("model", ["VEV", "EVE", "VVE"])
def test_errors_rotate_with_the_data(model):
    """Equivariance: for rows R x the fit is R mu_k, R Sigma_k R', and the covariance of
    the estimates turns with it; volumes, shapes and weights keep their errors."""
    X = two_clusters(d=3, seed=5)
    gm = fitted(X, model)
    turn = expm(np.array([[0, 0.4, -0.3], [-0.4, 0, 0.8], [0.3, -0.8, 0]]))
    se = gm.standard_errors(X)
    moved = rotated(gm, turn).standard_errors(X @ turn.T)
    k = gm.means_.shape[0]

    def cov_of(result, name):
        expand = result.expand[name]
        return expand @ result.covariance @ expand.T

    means_turn = np.kron(np.eye(k), turn)
    np.testing.assert_allclose(cov_of(moved, "means"),
                               means_turn @ cov_of(se, "means") @ means_turn.T,
                               atol=1e-8 * np.abs(cov_of(se, "means")).max())
    cov_turn = np.kron(np.eye(k), np.kron(turn, turn))  # vec(R S R') = (R x R) vec(S)
    expected = cov_turn @ cov_of(se, "covariances") @ cov_turn.T
    np.testing.assert_allclose(cov_of(moved, "covariances"), expected,
                               atol=1e-7 * np.abs(expected).max())
    np.testing.assert_allclose(moved.weights, se.weights, rtol=1e-7)
    volume_and_shape = [i for i, name in enumerate(se.names) if "log_" in name]
    np.testing.assert_allclose(np.diag(moved.covariance)[volume_and_shape],
                               np.diag(se.covariance)[volume_and_shape], rtol=1e-6)


def test_an_unidentified_orientation_is_named():
    """A round component has no orientation: the information on it is zero."""
    square = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    X = np.tile(square, (25, 1))
    gm = fitted(X, "VEV", k=1)
    with pytest.raises(SingularInformationError, match=r"rotation\[0, 0, 1\]"):
        gm.standard_errors(X)


def test_names_estimates_and_table():
    X = two_clusters(d=2)
    gm = fitted(X, "VEV")
    se = gm.standard_errors(X)
    assert se.names[5:] == ("log_volume[0]", "log_volume[1]", "log_shape[0]",
                            "rotation[0, 0, 1]", "rotation[1, 0, 1]")
    dense = dense_of(gm)
    values = np.linalg.eigvalsh(dense)
    np.testing.assert_allclose(se.estimates[5:7], np.log(values).mean(axis=1))
    np.testing.assert_allclose(se.estimates[7], np.log(values[0, 0] / values[0, 1]))
    assert (se.estimates[8:] == 0).all()
    lines = se.table().splitlines()
    assert len(lines) == 1 + 2 + 4 + 2 * 3  # weights, means, each upper triangle
    assert se.covariances.shape == gm.covariances_.shape


def test_the_chart_reproduces_the_fit_and_rejects_linear_models():
    X = two_clusters(d=3)
    for model in ("EVI", "VEE", "EEV"):
        gm = fitted(X, model)
        layout = curved_layout(model, dense_of(gm))
        assert layout.expand.shape == (gm.covariances_.size, len(layout.names))
    with pytest.raises(ValueError, match="not a curved model"):
        curved_layout("VVV", np.eye(2)[None])


def test_where_the_full_fit_keeps_the_constraint_the_chart_is_its_restriction():
    """Class 1 is a rotated copy of class 0 about its mean, all rows labelled: the full
    (VVV) fit has equal volumes and shapes, so it is EEV's fit too; the full score is zero
    there, so the chart's curvature term vanishes and EEV's information is ``J' I J``
    with ``J`` the chart's Jacobian (the delta method read backwards)."""
    rng = np.random.default_rng(8)
    base = rng.multivariate_normal([0, 0], [[2.0, 0.6], [0.6, 0.7]], 150)
    base -= base.mean(axis=0)
    turn = expm(np.array([[0.0, 1.1], [-1.1, 0.0]]))
    X = np.vstack([base, base @ turn.T + [4.0, 1.0]])
    labels = np.repeat([0, 1], 150)
    eev = fitted(X, "EEV", labels=labels)
    full = fitted(X, "full", labels=labels)
    np.testing.assert_allclose(eev.covariances_, full.covariances_, atol=1e-12)
    se, reference = eev.standard_errors(X, labels=labels), full.standard_errors(X, labels=labels)
    rows, cols = np.triu_indices(2)
    upper = [c * 4 + a * 2 + b for c in range(2) for a, b in zip(rows, cols, strict=True)]
    jacobian = np.vstack([se.expand["weights"][:1], se.expand["means"],
                          se.expand["covariances"][upper]])
    expected = jacobian.T @ reference.information @ jacobian
    np.testing.assert_allclose(se.information, expected, atol=1e-9 * np.abs(expected).max())


def test_missing_values_in_a_curved_model_give_the_marginal_hessian():
    from tests.test_standard_errors import marginal_log_likelihood

    X = two_clusters(n=(90, 110), d=2, seed=13)
    X[np.random.default_rng(13).random(X.shape) < 0.15] = np.nan
    gm = GaussianMixture(2, covariance_type="VVE", reg_covar=0.0, tol=1e-11, max_iter=2000,
                         random_state=0).fit(X)
    se = gm.standard_errors(X)
    build = chart("VVE", dense_of(gm))

    def f(t):
        return marginal_log_likelihood(X, np.array([t[0], 1 - t[0]]), t[1:5].reshape(2, 2),
                                       build(t[5:]))

    hessian = numerical_hessian(f, se.estimates)
    np.testing.assert_allclose(se.information, -hessian, atol=2e-6 * np.abs(hessian).max())
