"""GaussianMixtureClassifier: EDDA against LDA and closed forms, MclustDA by BIC, NaN, EM."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

import emkit
from emkit import GaussianMixtureClassifier


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _three_classes(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal([0, 0], [1.0, 0.5], (80, 2)),
                   rng.normal([2, 1], [0.7, 1.2], (60, 2)),
                   rng.multivariate_normal([-1, 2], [[1, 0.6], [0.6, 1]], 40)])
    y = np.repeat(np.array(["a", "b", "c"]), [80, 60, 40])
    return X, y


def test_tied_edda_is_linear_discriminant_analysis():
    X, y = _three_classes()
    clf = GaussianMixtureClassifier(covariance_type="tied", reg_covar=0).fit(X, y)
    lda = LinearDiscriminantAnalysis(solver="lsqr").fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), lda.predict_proba(X), atol=1e-10)
    np.testing.assert_array_equal(clf.predict(X), lda.predict(X))
    np.testing.assert_allclose(clf.class_prior_, [80 / 180, 60 / 180, 40 / 180])


def test_full_edda_is_the_closed_form_posterior_with_missing_values():
    X, y = _three_classes(1)
    clf = GaussianMixtureClassifier(reg_covar=0).fit(X, y)
    groups = [X[y == c] for c in "abc"]
    priors = np.array([len(g) for g in groups]) / len(X)
    means = [g.mean(axis=0) for g in groups]
    covs = [np.cov(g.T, bias=True) for g in groups]
    test = np.array([[0.5, 0.5], [2.0, -1.0], [np.nan, 1.5], [np.nan, np.nan]])
    joint = np.array([[multivariate_normal(m, c).pdf(test[:2])[i] for m, c in zip(
        means, covs, strict=True)] for i in range(2)]) * priors
    # A missing coordinate is marginalised out: the second coordinate's normal.
    marginal = np.array([norm(m[1], np.sqrt(c[1, 1])).pdf(1.5) for m, c in zip(
        means, covs, strict=True)]) * priors
    expected = np.vstack([joint, marginal, priors])  # nothing observed: the priors
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(test), expected, atol=1e-10)


def test_mclustda_chooses_components_per_class_by_bic():
    rng = np.random.default_rng(2)
    bimodal = np.vstack([rng.normal(-4, 0.5, (100, 2)), rng.normal(4, 0.5, (100, 2))])
    single = rng.normal([0, 6], 0.7, (150, 2))
    X, y = np.vstack([bimodal, single]), np.r_[np.zeros(200, int), np.ones(150, int)]
    clf = GaussianMixtureClassifier(n_components=[1, 2, 3], random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.n_components_, [2, 1])
    # One Gaussian for the bimodal class would put (0, 0) in it; two components do not.
    assert clf.predict([[0.0, 4.0]])[0] == 1
    assert clf.score(X, y) == 1.0


def test_unlabelled_rows_enter_by_em():
    rng = np.random.default_rng(3)
    n = 400
    X = np.vstack([rng.normal(0, 1, (n, 2)), rng.normal([2.5, 0], 1, (n, 2))])
    truth = np.r_[np.zeros(n, int), np.ones(n, int)]
    few = rng.random(2 * n) < 0.02
    few[[0, n]] = True  # a labelled row in each class at least
    y = np.where(few, truth, -1)
    semi = GaussianMixtureClassifier(semi_supervised=True, random_state=0).fit(X, y)
    supervised = GaussianMixtureClassifier().fit(X[few], truth[few])
    assert semi.score(X, truth) >= supervised.score(X, truth) - 0.01
    # With every row labelled, semi-supervised is the supervised fit.
    both = GaussianMixtureClassifier(semi_supervised=True).fit(X, truth)
    np.testing.assert_allclose(both.predict_proba(X),
                               GaussianMixtureClassifier().fit(X, truth).predict_proba(X),
                               atol=1e-12)
    with pytest.raises(ValueError, match="n_components=1"):
        GaussianMixtureClassifier(n_components=2, semi_supervised=True).fit(X, y)
    # Without semi_supervised, -1 is an ordinary class.
    assert list(GaussianMixtureClassifier().fit(X, np.where(truth == 0, -1, 1)).classes_) == [
        -1, 1]


def test_priors_save_and_load(tmp_path):
    X, y = _three_classes(4)
    clf = GaussianMixtureClassifier(covariance_type="diag", priors=[0.2, 0.3, 0.5]).fit(X, y)
    np.testing.assert_array_equal(clf.class_prior_, [0.2, 0.3, 0.5])
    path = emkit.save(clf, tmp_path / "clf.npz")
    again = emkit.load(path)
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X), atol=1e-12)
    multi = GaussianMixtureClassifier(n_components=2, covariance_type="tied",
                                      random_state=0).fit(X, y)
    again = emkit.load(emkit.save(multi, tmp_path / "multi.npz"))
    np.testing.assert_allclose(again.predict_proba(X), multi.predict_proba(X), atol=1e-12)


def test_bad_input_is_refused():
    X, _ = _three_classes()
    with pytest.raises(ValueError, match="at least 2 classes"):
        GaussianMixtureClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixtureClassifier(n_components=[]).fit(X, np.arange(len(X)) % 2)
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixtureClassifier(priors=[0.5, 0.6]).fit(X, np.arange(len(X)) % 2)
    with pytest.raises(ValueError, match="one per class"):
        GaussianMixtureClassifier(priors=[1.0]).fit(X, np.arange(len(X)) % 2)
