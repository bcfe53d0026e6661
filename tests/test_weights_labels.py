"""Sample weights and partial labels (issue 21).

Integer weights must give exactly the fit of the repeated rows from the same
explicit start; labelling every row must give the complete-data MLE in closed
form; bad weights and labels get errors that name the problem.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from emkit import GaussianMixture, KMeans, MixtureModel
from emkit.distributions import Bernoulli, Exponential, Gaussian, Independent, Poisson

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _blobs(seed: int = 0, n: int = 60) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(0, 1, (n, 3)), rng.normal(3, 1.5, (n, 3))])


def _start(X: np.ndarray, covariance_type: str) -> dict:
    """An explicit start (weights, means, precisions) shared by the fits compared."""
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0, max_iter=5).fit(X)
    return dict(weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_)


def _assert_same_gaussian_fit(a: GaussianMixture, b: GaussianMixture, atol: float = 1e-10):
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=atol,
                                   err_msg=name)


# ---------------------------------------------------------------- weights


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_fit_as_repeated_rows(covariance_type):
    X = _blobs()
    w = np.random.default_rng(1).integers(0, 4, X.shape[0])
    start = _start(X, covariance_type)
    kwargs = dict(covariance_type=covariance_type, tol=0, max_iter=25, **start)
    weighted = GaussianMixture(2, **kwargs).fit(X, sample_weight=w)
    repeated = GaussianMixture(2, **kwargs).fit(np.repeat(X, w, axis=0))
    _assert_same_gaussian_fit(weighted, repeated)
    assert weighted.n_samples_seen_ == w.sum()
    np.testing.assert_allclose(weighted.bic(X, sample_weight=w),
                               repeated.bic(np.repeat(X, w, axis=0)), rtol=1e-12)
    np.testing.assert_allclose(weighted.aic(X, sample_weight=w),
                               repeated.aic(np.repeat(X, w, axis=0)), rtol=1e-12)


@pytest.mark.parametrize("algorithm", ["em", "hard"])
def test_integer_weights_with_missing_values_and_variants(algorithm):
    X = _blobs(2)
    rng = np.random.default_rng(3)
    X[rng.random(X.shape) < 0.15] = np.nan
    X[0] = np.nan  # a row with nothing observed
    w = rng.integers(0, 4, X.shape[0])
    start = _start(np.nan_to_num(X), "full")
    kwargs = dict(tol=0, max_iter=20, algorithm=algorithm, **start)
    weighted = GaussianMixture(2, **kwargs).fit(X, sample_weight=w)
    repeated = GaussianMixture(2, **kwargs).fit(np.repeat(X, w, axis=0))
    _assert_same_gaussian_fit(weighted, repeated)


def test_fractional_weights_scale_free_and_compiled_path_untouched():
    """Weights times a constant give the same fit; unit weights give the unweighted fit."""
    X = _blobs(4)
    w = np.random.default_rng(5).uniform(0.1, 2.0, X.shape[0])
    start = _start(X, "full")
    one = GaussianMixture(2, tol=0, max_iter=15, **start).fit(X, sample_weight=w)
    three = GaussianMixture(2, tol=0, max_iter=15, **start).fit(X, sample_weight=3 * w)
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_allclose(getattr(one, name), getattr(three, name), atol=1e-10)
    plain = GaussianMixture(2, tol=0, max_iter=15, **start).fit(X)
    unit = GaussianMixture(2, tol=0, max_iter=15, **start).fit(X, sample_weight=np.ones(len(X)))
    _assert_same_gaussian_fit(plain, unit)


def test_zero_weight_rows_are_absent():
    X = _blobs(6)
    w = np.ones(X.shape[0])
    w[::7] = 0
    start = _start(X, "diag")
    kwargs = dict(covariance_type="diag", tol=0, max_iter=20, **start)
    weighted = GaussianMixture(2, **kwargs).fit(X, sample_weight=w)
    dropped = GaussianMixture(2, **kwargs).fit(X[w > 0])
    _assert_same_gaussian_fit(weighted, dropped)


def test_weights_enter_the_start():
    X = _blobs(7)
    w = np.random.default_rng(8).uniform(0.0, 3.0, X.shape[0])
    # One component, no iteration: the start is the weighted mean and covariance.
    gm = GaussianMixture(1, max_iter=0, reg_covar=0).fit(X, sample_weight=w)
    np.testing.assert_allclose(gm.means_[0], np.average(X, axis=0, weights=w), atol=1e-12)
    np.testing.assert_allclose(gm.covariances_[0], np.cov(X.T, aweights=w, bias=True),
                               atol=1e-12)
    # Far rows of weight zero never seed a k-means or k-means++ start.
    far = np.vstack([X, np.full((20, 3), 1e3)])
    w_far = np.r_[np.ones(len(X)), np.zeros(20)]
    for init in ("kmeans", "k-means++", "random_from_data"):
        for seed in range(3):
            gm = GaussianMixture(3, max_iter=0, init_params=init, random_state=seed)
            gm.fit(far, sample_weight=w_far)
            assert np.abs(gm.means_).max() < 50, init


@pytest.mark.parametrize("family", ["poisson", "exponential", "gaussian", "independent"])
def test_mixture_model_integer_weights_fit_as_repeated_rows(family):
    rng = np.random.default_rng(9)
    n = 80
    if family == "poisson":
        X = np.r_[rng.poisson(2, n), rng.poisson(9, n)][:, None].astype(float)
        comps = [Poisson(1.0), Poisson(5.0)]
    elif family == "exponential":
        X = np.r_[rng.exponential(1, n), rng.exponential(6, n)][:, None]
        comps = [Exponential(2.0), Exponential(0.3)]
    elif family == "gaussian":
        X = _blobs(10, n // 2)[:, :2]
        comps = [Gaussian(np.zeros(2), np.eye(2)), Gaussian(np.full(2, 2.0), np.eye(2))]
    else:
        X = np.c_[rng.integers(0, 2, (2 * n, 2)), rng.poisson(3, 2 * n)].astype(float)
        comps = [Independent([Bernoulli([0.3, 0.6]), Poisson(2.0)]),
                 Independent([Bernoulli([0.7, 0.4]), Poisson(4.0)])]
    w = rng.integers(0, 4, X.shape[0])
    weighted = MixtureModel(comps, tol=0, max_iter=20).fit(X, sample_weight=w)
    repeated = MixtureModel(comps, tol=0, max_iter=20).fit(np.repeat(X, w, axis=0))
    np.testing.assert_allclose(weighted.weights_, repeated.weights_, atol=1e-10)
    np.testing.assert_allclose(weighted.history_, repeated.history_, atol=1e-10)
    from emkit.distributions.codec import ComponentListCodec  # flat parameter vectors
    from emkit.distributions.component_list import ComponentList

    codec = ComponentListCodec()
    flat = [codec.flatten(ComponentList(tuple(m.components_))) for m in (weighted, repeated)]
    np.testing.assert_allclose(flat[0], flat[1], atol=1e-10)
    np.testing.assert_allclose(weighted.bic(X, sample_weight=w),
                               repeated.bic(np.repeat(X, w, axis=0)), rtol=1e-12)


def test_partial_fit_weights_count_as_repeated_rows():
    X = _blobs(11)
    batch = _blobs(12, 5)
    w = np.random.default_rng(13).integers(1, 4, batch.shape[0])
    gm_w = GaussianMixture(2, random_state=0).fit(X)
    gm_r = GaussianMixture(2, random_state=0).fit(X)
    gm_w.partial_fit(batch, sample_weight=w)
    gm_r.partial_fit(np.repeat(batch, w, axis=0))
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(gm_w, name), getattr(gm_r, name), atol=1e-10)
    assert gm_w.n_samples_seen_ == gm_r.n_samples_seen_

    comps = [Poisson(1.0), Poisson(5.0)]
    counts = np.r_[np.arange(10), np.arange(10) + 6][:, None].astype(float)
    mm_w = MixtureModel(comps, max_iter=10).fit(counts)
    mm_r = MixtureModel(comps, max_iter=10).fit(counts)
    mm_w.partial_fit(counts[:4], sample_weight=[2, 1, 3, 1])
    mm_r.partial_fit(np.repeat(counts[:4], [2, 1, 3, 1], axis=0))
    np.testing.assert_allclose(mm_w.weights_, mm_r.weights_, atol=1e-12)


def test_kmeans_integer_weights_fit_as_repeated_rows():
    X = _blobs(14)
    w = np.random.default_rng(15).integers(0, 4, X.shape[0])
    init = X[[0, 70, 100]]
    weighted = KMeans(3, init=init).fit(X, sample_weight=w)
    repeated = KMeans(3, init=init).fit(np.repeat(X, w, axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, atol=1e-10)
    np.testing.assert_allclose(weighted.inertia_, repeated.inertia_, rtol=1e-12)
    assert weighted.n_iter_ == repeated.n_iter_


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (lambda n: -np.ones(n), "non-negative"),
        (lambda n: np.r_[np.nan, np.ones(n - 1)], "finite"),
        (lambda n: np.r_[np.inf, np.ones(n - 1)], "finite"),
        (lambda n: np.ones(n - 1), "one weight per row"),
        (lambda n: np.zeros(n), "zero for every row"),
        (lambda n: np.array(["a"] * n), "numbers"),
    ],
)
def test_bad_weights_are_refused(weights, message):
    X = _blobs(16)
    for estimator in (GaussianMixture(2), MixtureModel(Gaussian(np.zeros(3), np.eye(3)),
                                                       n_components=2), KMeans(2)):
        with pytest.raises(ValueError, match=message):
            estimator.fit(X, sample_weight=weights(X.shape[0]))


# ----------------------------------------------------------------- labels


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_all_rows_labelled_gives_the_complete_data_mle(covariance_type):
    X = np.vstack([_blobs(18, 50), np.random.default_rng(19).normal(-4, 0.5, (30, 3))])
    z = np.r_[np.zeros(50, int), np.ones(50, int), np.full(30, 2)]
    gm = GaussianMixture(3, covariance_type=covariance_type, reg_covar=0, tol=0, max_iter=3,
                         random_state=0).fit(X, labels=z)
    groups = [X[z == k] for k in range(3)]
    np.testing.assert_allclose(gm.weights_, [50 / 130, 50 / 130, 30 / 130], atol=1e-12)
    np.testing.assert_allclose(gm.means_, [g.mean(axis=0) for g in groups], atol=1e-12)
    scatters = [np.cov(g.T, bias=True) for g in groups]
    expected = {
        "full": np.array(scatters),
        "tied": sum(len(g) * s for g, s in zip(groups, scatters, strict=True)) / len(X),
        "diag": np.array([np.diag(s) for s in scatters]),
        "spherical": np.array([np.trace(s) / 3 for s in scatters]),
    }[covariance_type]
    np.testing.assert_allclose(gm.covariances_, expected, atol=1e-12)
    # The objective is then the complete-data log-likelihood, constant from the start.
    np.testing.assert_allclose(gm.history_, gm.history_[0], atol=1e-12)


def test_partial_labels_improve_clustering_of_overlapping_clusters():
    """20% labelled rows: better ARI on average over data sets, history still monotone."""
    plain, semi = [], []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        n = 300
        X = np.vstack([rng.normal(0, 1, (n, 2)), rng.normal([1.8, 0.0], 1, (n, 2))])
        truth = np.r_[np.zeros(n, int), np.ones(n, int)]
        labels = np.where(rng.random(2 * n) < 0.2, truth, -1)
        gm = GaussianMixture(2, random_state=0, tol=1e-5, max_iter=300)
        plain.append(adjusted_rand_score(truth, gm.fit(X).predict(X)))
        fitted = gm.fit(X, labels=labels)
        semi.append(adjusted_rand_score(truth, fitted.predict(X)))
        assert np.all(np.diff(fitted.history_) >= -1e-12)  # still monotone
    assert np.mean(semi) > np.mean(plain) + 0.05, (plain, semi)


@pytest.mark.parametrize("algorithm", ["em", "hard", "stochastic"])
def test_labels_work_with_every_variant_and_family(algorithm):
    rng = np.random.default_rng(21)
    X = np.r_[rng.poisson(2, 50), rng.poisson(9, 50)][:, None].astype(float)
    z = np.r_[np.zeros(50, int), np.ones(50, int)]
    model = MixtureModel([Poisson(4.0), Poisson(5.0)], algorithm=algorithm, max_iter=5,
                         random_state=0).fit(X, labels=z)
    np.testing.assert_allclose([c.rate[0] for c in model.components_],
                               [X[:50].mean(), X[50:].mean()], rtol=1e-12)
    np.testing.assert_allclose(model.weights_, [0.5, 0.5], atol=1e-12)
    gm = GaussianMixture(2, algorithm=algorithm, reg_covar=0, max_iter=5,
                         random_state=0).fit(X, labels=z)
    np.testing.assert_allclose(np.sort(gm.means_[:, 0]), [X[:50].mean(), X[50:].mean()],
                               rtol=1e-12)


def test_labels_follow_rows_with_missing_values():
    """Rows with gaps are regrouped by pattern inside the fit: labels must move with them."""
    X = _blobs(22, 40)
    X[np.random.default_rng(23).random(X.shape) < 0.2] = np.nan
    z = np.r_[np.zeros(40, int), np.ones(40, int)]
    gm = GaussianMixture(2, max_iter=50, random_state=0).fit(X, labels=z)
    assert gm.means_[0, 0] < 1.5 < gm.means_[1, 0]
    assert np.all(np.diff(gm.history_) >= -1e-12)


def test_bad_labels_are_refused():
    X = _blobs(24)
    n = X.shape[0]
    with pytest.raises(ValueError, match=r"labels must lie in \[-1, 1\]"):
        GaussianMixture(2).fit(X, labels=np.full(n, 2))
    with pytest.raises(ValueError, match=r"labels must lie in \[-1, 1\]"):
        GaussianMixture(2).fit(X, labels=np.full(n, -2))
    with pytest.raises(ValueError, match="per row of X"):
        GaussianMixture(2).fit(X, labels=np.zeros(n - 1, int))
    with pytest.raises(ValueError, match="integers"):
        MixtureModel(Poisson(1.0), n_components=2).fit(np.ones((n, 1)), labels=np.full(n, 0.5))


def test_y_is_ignored_as_pipelines_pass_it():
    X = _blobs(25)
    y = np.r_[np.zeros(60, int), np.ones(60, int)][::-1]
    a = GaussianMixture(2, random_state=0).fit(X)
    b = GaussianMixture(2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.means_, b.means_)


# ------------------------------------------------------------ frozen params

PARAMS = ("", "w", "m", "c", "wm", "wc", "mc")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("params", PARAMS)
def test_frozen_parameters_stay_bit_identical(covariance_type, params):
    X = _blobs(30, 80)[:, :2]
    start = _start(X, covariance_type)
    gm = GaussianMixture(2, covariance_type=covariance_type, params=params, tol=0,
                         max_iter=15, **start).fit(X)
    given = {"w": ("weights_", "weights_init"), "m": ("means_", "means_init"),
             "c": ("precisions_", "precisions_init")}
    for letter, (fitted, init) in given.items():
        if letter not in params:
            np.testing.assert_array_equal(getattr(gm, fitted), start[init])
        else:
            assert not np.array_equal(getattr(gm, fitted), start[init]), letter
    assert np.all(np.diff(gm.history_) >= -1e-12)
    free = GaussianMixture(2, covariance_type=covariance_type, **start).fit(X)
    k, d = 2, 2
    counts = {"w": k - 1, "m": k * d,
              "c": free._n_parameters() - (k - 1) - k * d}
    expected = sum(counts[letter] for letter in params)
    assert gm._n_parameters() == expected
    n = X.shape[0]
    np.testing.assert_allclose(gm.bic(X), -2 * gm.score(X) * n + expected * np.log(n))


def test_frozen_values_from_the_initialisation():
    """Without *_init the frozen values are those of the start (a fit with no iteration)."""
    X = _blobs(31)
    start = GaussianMixture(3, max_iter=0, random_state=4).fit(X)
    gm = GaussianMixture(3, params="c", random_state=4, max_iter=30).fit(X)
    np.testing.assert_array_equal(gm.weights_, start.weights_)
    np.testing.assert_array_equal(gm.means_, start.means_)
    assert np.all(np.diff(gm.history_) >= -1e-12)


def test_covariances_around_frozen_means_are_the_closed_form():
    X = _blobs(32)
    mean = np.array([[0.5, -1.0, 2.0]])
    gm = GaussianMixture(1, params="c", means_init=mean, reg_covar=0, tol=0,
                         max_iter=2).fit(X)
    np.testing.assert_allclose(gm.covariances_[0], (X - mean).T @ (X - mean) / len(X),
                               atol=1e-12)
    assert gm.means_ is not None and np.array_equal(gm.means_, mean)


def test_bad_params_and_accelerate_are_refused():
    X = _blobs(33)
    with pytest.raises(ValueError, match="wmc"):
        GaussianMixture(2, params="wx").fit(X)
    with pytest.raises(ValueError, match="frozen"):
        GaussianMixture(2, params="wm", accelerate=True).fit(X)


def test_frozen_components_of_a_mixture_model():
    rng = np.random.default_rng(34)
    X = np.r_[rng.poisson(2, 80), rng.poisson(9, 80)][:, None].astype(float)
    background = Poisson(5.0)
    model = MixtureModel([Poisson(1.0), background], frozen=[False, True], tol=0,
                         max_iter=30).fit(X)
    assert model.components_[1] is background
    assert model.components_[0].rate[0] != 1.0
    assert np.all(np.diff(model.history_) >= -1e-12)
    assert model._n_parameters() == 1 + 1  # one free rate, one free weight
    n = X.shape[0]
    np.testing.assert_allclose(model.bic(X), -2 * model.score(X) * n + 2 * np.log(n))
    # Every component frozen, weights fixed: nothing moves.
    still = MixtureModel([Poisson(1.0), background], frozen=True, fit_weights=False,
                         max_iter=5).fit(X)
    assert still._n_parameters() == 0
    np.testing.assert_array_equal(still.weights_, [0.5, 0.5])
    with pytest.raises(ValueError, match="template"):
        MixtureModel(Poisson(1.0), n_components=2, frozen=True).fit(X)
    with pytest.raises(ValueError, match="2 components"):
        MixtureModel([Poisson(1.0), background], frozen=[True]).fit(X)
    with pytest.raises(ValueError, match="accelerate"):
        MixtureModel([Poisson(1.0), background], frozen=[False, True], accelerate=True).fit(X)


def test_fit_predict_takes_weights_and_labels():
    X = _blobs(35)
    z = np.r_[np.zeros(60, int), np.full(60, -1)]
    w = np.random.default_rng(36).integers(1, 3, X.shape[0])
    gm = GaussianMixture(2, random_state=0)
    np.testing.assert_array_equal(gm.fit_predict(X, labels=z, sample_weight=w),
                                  gm.fit(X, labels=z, sample_weight=w).predict(X))
    assert (gm.predict(X[:60]) == 0).mean() > 0.9  # the known rows keep their component


def test_accelerated_weighted_and_labelled_fits():
    """SQUAREM over weighted chunks: the repeated rows' optimum; with labels, still monotone."""
    X = _blobs(37, 100)[:, :2]
    rng = np.random.default_rng(38)
    w = rng.integers(0, 4, X.shape[0])
    start = _start(X, "full")
    kwargs = dict(tol=1e-10, max_iter=500, accelerate=True, **start)
    weighted = GaussianMixture(2, **kwargs).fit(X, sample_weight=w)
    repeated = GaussianMixture(2, **kwargs).fit(np.repeat(X, w, axis=0))
    _assert_same_gaussian_fit(weighted, repeated, atol=1e-9)
    labels = np.where(rng.random(X.shape[0]) < 0.2, np.r_[np.zeros(100, int),
                                                           np.ones(100, int)], -1)
    fitted = GaussianMixture(2, **kwargs).fit(X, labels=labels)
    assert np.all(np.diff(fitted.history_) >= -1e-12)
