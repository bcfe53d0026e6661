"""Fit semantics: iterations, restarts, warm starts, seeding, verbosity, sampling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from emkit import GaussianMixture, load, save
from tests.conftest import COVARIANCE_TYPES, make_blobs


def _quiet_fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


@pytest.mark.parametrize("max_iter", [1, 4, 17])
def test_tol_zero_runs_exactly_max_iter(blobs, max_iter):
    gm = _quiet_fit(GaussianMixture(3, tol=0, max_iter=max_iter, random_state=0), blobs)
    assert gm.n_iter_ == max_iter == len(gm.history_)
    assert not gm.converged_
    assert gm.lower_bound_ == gm.history_[-1]


def test_history_climbs_and_convergence_is_on_the_average_change(blobs):
    gm = GaussianMixture(3, tol=1e-4, random_state=0).fit(blobs)
    assert gm.converged_
    assert len(gm.history_) == gm.n_iter_
    assert np.all(np.diff(gm.history_) >= -1e-12)
    changes = np.abs(np.diff(gm.history_))
    assert changes[-1] < 1e-4 <= changes[:-1].min()


def test_max_iter_zero_keeps_the_initialisation(blobs):
    gm = GaussianMixture(3, max_iter=0, random_state=0).fit(blobs)
    assert gm.n_iter_ == 0 and gm.history_.shape == (0,)
    assert gm.lower_bound_ == -np.inf


def test_not_converging_warns(blobs):
    with pytest.warns(ConvergenceWarning):
        GaussianMixture(3, max_iter=2, random_state=0).fit(blobs)


def test_random_state_reproduces_and_varies(blobs):
    def fit(seed):
        return _quiet_fit(
            GaussianMixture(3, init_params="random", max_iter=3, random_state=seed), blobs
        )
    np.testing.assert_array_equal(fit(5).means_, fit(5).means_)
    assert not np.allclose(fit(5).means_, fit(6).means_)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_more_restarts_are_never_worse(init_params):
    X = make_blobs(n_samples=300, n_components=5, separation=2.0, seed=2)
    kwargs = dict(n_components=5, init_params=init_params, random_state=3, max_iter=30)
    one = _quiet_fit(GaussianMixture(n_init=1, **kwargs), X)
    four = _quiet_fit(GaussianMixture(n_init=4, **kwargs), X)
    assert four.lower_bound_ >= one.lower_bound_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_warm_start_continues_where_it_stopped(blobs, covariance_type):
    kwargs = dict(covariance_type=covariance_type, tol=0, random_state=0)
    straight = _quiet_fit(GaussianMixture(3, max_iter=10, **kwargs), blobs)
    warm = GaussianMixture(3, max_iter=4, warm_start=True, **kwargs)
    _quiet_fit(warm, blobs)
    warm.set_params(max_iter=6)
    _quiet_fit(warm, blobs)
    np.testing.assert_allclose(warm.means_, straight.means_, rtol=1e-12)
    np.testing.assert_allclose(warm.covariances_, straight.covariances_, rtol=1e-12)
    np.testing.assert_allclose(warm.history_, straight.history_[4:], rtol=1e-12)


def test_warm_start_refuses_a_width_change(blobs):
    gm = GaussianMixture(2, warm_start=True, random_state=0).fit(blobs)
    with pytest.raises(ValueError, match="features"):
        gm.fit(np.hstack([blobs, blobs]))


@pytest.mark.parametrize("change", [{"n_components": 3}, {"covariance_type": "diag"},
                                    {"n_components": 1, "covariance_type": "tied"}])
def test_warm_start_with_another_shape_starts_afresh_with_a_warning(blobs, change, tmp_path):
    """It used to continue the old mixture under the new parameters, saving a file that
    emkit.load refuses; the fit is now the fresh fit of the new model."""
    gm = GaussianMixture(2, warm_start=True, random_state=0).fit(blobs)
    gm.set_params(**change)
    with pytest.warns(UserWarning, match="starting afresh"):
        gm.fit(blobs)
    fresh = GaussianMixture(**{**gm.get_params(), "warm_start": False}).fit(blobs)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(gm, name), getattr(fresh, name))
    save(gm, tmp_path / "m.npz")
    np.testing.assert_array_equal(load(tmp_path / "m.npz").means_, gm.means_)
    # The same shape again: warm started, quietly.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        gm.fit(blobs)


def test_a_loaded_model_warm_starts_only_as_what_it_is(blobs, tmp_path):
    save(GaussianMixture(2, random_state=0).fit(blobs), tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    loaded.set_params(warm_start=True, tol=0, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _quiet_fit(loaded, blobs)  # continues: one iteration from the loaded parameters
    loaded = load(tmp_path / "m.npz")
    loaded.set_params(warm_start=True, n_components=3)
    with pytest.warns(UserWarning, match="another shape"):
        loaded.fit(blobs)
    assert loaded.means_.shape == (3, 2)


def test_verbose_prints_progress(blobs, capsys):
    _quiet_fit(
        GaussianMixture(3, verbose=2, verbose_interval=2, max_iter=4, tol=0, random_state=0),
        blobs,
    )
    out = capsys.readouterr().out
    assert "Initialization 0" in out
    assert "Iteration 2" in out and "Iteration 4" in out and "Iteration 3" not in out


def test_callback_sees_every_iteration(blobs):
    seen = []
    gm = _quiet_fit(
        GaussianMixture(
            3, max_iter=5, tol=0, random_state=0,
            callback=lambda it, lb, change, mixture: seen.append((it, lb, mixture.weights)),
        ),
        blobs,
    )
    assert [it for it, _, _ in seen] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([lb for _, lb, _ in seen], gm.history_)
    np.testing.assert_allclose(seen[-1][2], gm.weights_)


def test_fit_predict_equals_fit_then_predict(blobs):
    labels = GaussianMixture(3, random_state=0).fit_predict(blobs)
    np.testing.assert_array_equal(
        labels, GaussianMixture(3, random_state=0).fit(blobs).predict(blobs)
    )


def test_probabilities_sum_to_one_and_agree_with_predict(blobs):
    gm = GaussianMixture(3, random_state=0).fit(blobs)
    proba = gm.predict_proba(blobs)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(proba.argmax(axis=1), gm.predict(blobs))
    np.testing.assert_allclose(gm.score(blobs), gm.score_samples(blobs).mean())


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_recovers_the_mixture(covariance_type):
    X = make_blobs(n_samples=2000, n_components=2, separation=8.0, seed=1)
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    drawn, labels = gm.sample(20000)
    assert drawn.shape == (20000, 2) and labels.shape == (20000,)
    np.testing.assert_allclose(np.bincount(labels) / 20000, gm.weights_, atol=0.015)
    for k in range(2):
        np.testing.assert_allclose(drawn[labels == k].mean(axis=0), gm.means_[k], atol=0.1)
    again, _ = gm.sample(20000)
    np.testing.assert_array_equal(drawn, again)  # same random_state, same draw


def test_bic_and_aic_count_parameters():
    X = make_blobs(n_samples=300, n_features=3)
    n = X.shape[0]
    expected = {"full": 3 * 3 + 3 * 6 + 2, "tied": 3 * 3 + 6 + 2,
                "diag": 3 * 3 + 3 * 3 + 2, "spherical": 3 * 3 + 3 + 2}
    for covariance_type, n_params in expected.items():
        gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
        log_lik = gm.score(X) * n
        np.testing.assert_allclose(gm.bic(X), -2 * log_lik + n_params * np.log(n))
        np.testing.assert_allclose(gm.aic(X), -2 * log_lik + 2 * n_params)


def test_clone_pipeline_and_grid_search(blobs):
    gm = GaussianMixture(2, covariance_type="diag", chunk_size=50, random_state=0)
    assert clone(gm).get_params() == gm.get_params()
    pipe = make_pipeline(StandardScaler(), GaussianMixture(2, random_state=0)).fit(blobs)
    assert pipe.predict(blobs).shape == (blobs.shape[0],)
    search = GridSearchCV(
        GaussianMixture(random_state=0), {"n_components": [1, 3]}, cv=3
    ).fit(blobs)
    assert search.best_params_ == {"n_components": 3}


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_a_row_with_nothing_observed_scores_nan_not_zero(blobs, covariance_type):
    """It has no likelihood: as 0.0 it would rank as the most typical row."""
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(blobs)
    rows = np.vstack([blobs[:4], np.full((1, 2), np.nan)])
    scores = gm.score_samples(rows)
    assert np.isnan(scores[4]) and np.isfinite(scores[:4]).all()
    # score and the criteria leave it out, as the fit's E-step does.
    assert gm.score(rows) == pytest.approx(scores[:4].mean(), rel=1e-12)
    assert gm.bic(rows) == pytest.approx(gm.bic(blobs[:4]), rel=1e-12)
    np.testing.assert_allclose(gm.predict_proba(rows[4:]), gm.weights_[None], rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_far_rows_score_minus_inf_not_nan(blobs, covariance_type):
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(blobs)
    far = np.array([[1e200, 1e200], [1e200, -1e200], [-1e200, 3.0], [np.nan, 1e200]])
    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow notes
        scores = gm.score_samples(far)
    np.testing.assert_array_equal(scores, -np.inf)


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e200), (np.float32, 1e19)])
def test_data_whose_squares_overflow_are_refused_naming_the_scale(blobs, dtype, scale):
    X = (blobs * [1.0, scale]).astype(dtype)
    with pytest.raises(ValueError, match=r"column 1 is on too large a scale.*Standardise"):
        GaussianMixture(2, random_state=0).fit(X)
    # Within range, the same data fit (and then score) without infinities.
    fine = GaussianMixture(2, random_state=0).fit((blobs * scale ** 0.5).astype(dtype))
    assert np.isfinite(fine.covariances_).all()


@pytest.mark.parametrize("random_state", [-1, 2**32])
def test_seeds_outside_numpys_range_are_refused(blobs, random_state):
    with pytest.raises(ValueError, match=r"random_state must be .*integer in \[0, 4294967295\]"):
        GaussianMixture(2, random_state=random_state).fit(blobs)
