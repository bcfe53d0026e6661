"""EM with missing values (NaN = missing at random) in GaussianMixture, and imputation."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import optimize
from scipy.stats import multivariate_normal
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit import GaussianMixture, GaussianMixtureImputer
from emkit.distributions.gaussian import _gap_pass
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.distributions.gaussian.family import gaussian_from_resp
from emkit.distributions.gaussian.missing import (
    GappyChunk,
    GapRows,
    gap_features,
    incomplete_log_prob,
    incomplete_moments,
)
from tests.conftest import COVARIANCE_TYPES, make_blobs


def with_gaps(X, fraction, seed=0, keep_one=True):
    """Knock out a random ``fraction`` of entries, keeping at least one per row if asked."""
    rng = np.random.default_rng(seed)
    mask = rng.random(X.shape) < fraction
    if keep_one:
        mask[np.arange(len(X)), rng.integers(X.shape[1], size=len(X))] = False
    out = X.copy()
    out[mask] = np.nan
    return out


def _quiet(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X)


def observed_loglik(X, mean, cov):
    """Direct observed-data log-likelihood of one Gaussian, row by row (the oracle)."""
    total = 0.0
    for row in X:
        o = ~np.isnan(row)
        total += multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(row[o])
    return total


def direct_mle(X):
    """Maximise the observed-data likelihood over (mean, Cholesky factor) with scipy."""
    d = X.shape[1]
    rows, cols = np.tril_indices(d)

    def unpack(theta):
        L = np.zeros((d, d))
        L[rows, cols] = theta[d:]
        L[np.diag_indices(d)] = np.exp(L[np.diag_indices(d)])
        return theta[:d], L @ L.T

    start = np.concatenate([np.nanmean(X, axis=0), np.eye(d)[rows, cols] * 0])
    result = optimize.minimize(
        lambda t: -observed_loglik(X, *unpack(t)), start, method="BFGS",
        options={"gtol": 1e-9, "maxiter": 5000},
    )
    return unpack(result.x)


@pytest.mark.parametrize("seed", [0, 1])
def test_one_component_is_the_incomplete_data_mle(seed):
    X = with_gaps(make_blobs(n_samples=40, n_features=3, n_components=1, seed=seed), 0.3, seed)
    gm = GaussianMixture(1, reg_covar=0.0, tol=1e-13, max_iter=10000).fit(X)
    mean, cov = direct_mle(X)
    np.testing.assert_allclose(gm.means_[0], mean, atol=1e-5)
    np.testing.assert_allclose(gm.covariances_[0], cov, atol=1e-5)
    np.testing.assert_allclose(gm.score(X) * len(X), observed_loglik(X, mean, cov), rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_expected_statistics_of_a_fully_observed_pattern_equal_the_complete_path(
    covariance_type,
):
    """The missing-data path and the complete path are the same maths: check to 1e-12."""
    X = make_blobs(n_samples=60, n_features=3, n_components=2)
    resp = np.random.default_rng(0).dirichlet([1, 1], size=60)
    structure = COVARIANCE_STRUCTURES[covariance_type]
    gaussian = gaussian_from_resp(structure, X, resp, 1e-6)
    complete = gaussian.stats(X, resp)
    # Every row as one pattern of the missing-data path, observing everything.
    everything = GapRows(rows=np.arange(60), bounds=np.array([0, 60]),
                         observed=np.ones((1, 3), dtype=bool), key=b"all observed")
    centre = X.mean(axis=0)
    chunk = GappyChunk(X=X, complete_rows=np.arange(0), complete=gaussian.kernel.prepare(X[:0]),
                       gaps=everything, centre=centre, features=gap_features(X, centre))
    counts, first, second = incomplete_moments(gaussian, chunk, resp)
    np.testing.assert_allclose(counts, complete.counts, rtol=1e-12)
    np.testing.assert_allclose(first, complete.first, atol=1e-12 * np.abs(X).sum())
    np.testing.assert_allclose(structure.reduce_scatter(second), complete.second, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_patterns_at_once_equal_one_pattern_at_a_time(covariance_type, dtype):
    """The stacked, zero-padded factors and the features give the same as each pattern's
    own marginal and conditional, rows centred on each mean (the fallback path)."""
    rng = np.random.default_rng(3)
    X = make_blobs(n_samples=400, n_features=5, n_components=3).astype(dtype)
    X[rng.random(X.shape) < 0.35] = np.nan
    X[:5] = np.nan  # rows with nothing observed are left out
    resp = rng.dirichlet(np.ones(3), size=len(X))
    structure = COVARIANCE_STRUCTURES[covariance_type]
    filled = np.where(np.isnan(X), 0, X)
    gaussian = gaussian_from_resp(structure, filled, resp, 1e-2)
    stacked = gaussian.prepare(X)
    assert stacked.features is not None
    one_at_a_time = dataclasses.replace(stacked, features=None)
    log_prob, expected = np.zeros((2, len(X), 3), dtype=dtype)
    incomplete_log_prob(gaussian, stacked, log_prob)
    incomplete_log_prob(gaussian, one_at_a_time, expected)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(log_prob, expected, rtol=rtol, atol=rtol)
    moments = zip(incomplete_moments(gaussian, stacked, resp),
                  incomplete_moments(gaussian, one_at_a_time, resp), strict=True)
    for got, want in moments:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.mark.skipif(not _gap_pass.AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_by_row_pass_equals_one_pattern_at_a_time(covariance_type, dtype):
    """Scattered gaps (nearly every row its own pattern) take the compiled row-by-row
    pass: precisions and their missing block for full/tied, closed forms for diag and
    spherical. It gives each pattern's own marginal and conditional (Cholesky of
    Sigma_oo, rows centred on each mean) to rounding."""
    rng = np.random.default_rng(4)
    X = make_blobs(n_samples=120, n_features=7, n_components=3).astype(dtype)
    X[rng.random(X.shape) < 0.3] = np.nan
    X[:3] = np.nan  # rows with nothing observed are left out
    resp = rng.dirichlet(np.ones(3), size=len(X))
    structure = COVARIANCE_STRUCTURES[covariance_type]
    gaussian = gaussian_from_resp(structure, np.where(np.isnan(X), 0, X), resp, 1e-2)
    row_by_row = gaussian.prepare(X)
    assert row_by_row.row_by_row is not None
    one_at_a_time = dataclasses.replace(row_by_row, row_by_row=None, features=None)
    log_prob, expected = np.zeros((2, len(X), 3), dtype=dtype)
    incomplete_log_prob(gaussian, row_by_row, log_prob)
    incomplete_log_prob(gaussian, one_at_a_time, expected)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(log_prob, expected, rtol=rtol)
    moments = zip(incomplete_moments(gaussian, row_by_row, resp),
                  incomplete_moments(gaussian, one_at_a_time, resp), strict=True)
    for got, want in moments:
        # A diagonal structure reads only the diagonal of the second moments.
        if covariance_type in ("diag", "spherical") and got.ndim == 3:
            got, want = structure.reduce_scatter(got), structure.reduce_scatter(want)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.mark.skipif(not _gap_pass.AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_row_by_row_log_density_is_scipys(covariance_type):
    """Per-row observed-data log density of a fitted mixture with scattered gaps,
    against scipy's multivariate normal on each row's observed coordinates."""
    X = with_gaps(make_blobs(n_samples=60, n_features=5, n_components=2), 0.3, seed=5)
    model = _quiet(GaussianMixture(2, covariance_type=covariance_type, random_state=0,
                                   max_iter=5), X)
    covariances = COVARIANCE_STRUCTURES[covariance_type].dense(model.covariances_, 2, 5)
    expected = []
    for row in X:
        o = ~np.isnan(row)
        expected.append(np.logaddexp(*[
            np.log(w) + multivariate_normal(mu[o], cov[np.ix_(o, o)]).logpdf(row[o])
            for w, mu, cov in zip(model.weights_, model.means_, covariances, strict=True)
        ]))
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=1e-10)


@pytest.mark.skipif(not _gap_pass.AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_scattered_gaps_fit_equals_the_pattern_path(covariance_type, monkeypatch):
    """A weighted fit of breast cancer with 20% of cells missing (every row its own
    pattern), row by row, equals the batched per-pattern path from the same start."""
    from sklearn.datasets import load_breast_cancer

    from emkit.distributions.gaussian import missing

    X = load_breast_cancer().data[:200, :12]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    holed = with_gaps(X, 0.2, seed=6)
    weights = np.random.default_rng(7).uniform(0.5, 2.0, size=len(X))
    start = _quiet(GaussianMixture(3, covariance_type=covariance_type, max_iter=1,
                                   random_state=0), X)

    def fit():
        model = GaussianMixture(
            3, covariance_type=covariance_type, tol=0, max_iter=3,
            weights_init=start.weights_, means_init=start.means_,
            precisions_init=start.precisions_,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(holed, sample_weight=weights)

    assert missing.prepare_gappy(start._model().components.kernel, holed,
                                 np.isnan(holed)).row_by_row is not None
    row_by_row = fit()
    monkeypatch.setattr(missing, "_ROWS_PER_PATTERN", 0)  # never row by row
    by_pattern = fit()
    assert missing.prepare_gappy(start._model().components.kernel, holed,
                                 np.isnan(holed)).row_by_row is None
    np.testing.assert_allclose(row_by_row.score(holed),
                               by_pattern.score(holed), rtol=1e-10)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(row_by_row, name), getattr(by_pattern, name),
                                   rtol=1e-10, atol=1e-10)


def test_far_apart_clusters_take_the_patterns_one_at_a_time():
    """Where the kernel finds the feature expansion too imprecise, the gaps are taken
    pattern by pattern, rows centred on each mean; fits still find the clusters."""
    rng = np.random.default_rng(0)
    tight = rng.normal(size=(400, 3)) * 1e-3
    tight[200:] += 1e3
    X = with_gaps(tight, 0.2)
    resp = np.repeat(np.eye(2), 200, axis=0)
    gaussian = gaussian_from_resp(COVARIANCE_STRUCTURES["full"], np.nan_to_num(X), resp, 1e-6)
    assert gaussian.prepare(X).features is None
    whole = _quiet(GaussianMixture(2, random_state=0), X)
    chunked = _quiet(GaussianMixture(2, random_state=0, chunk_size=37), X)
    np.testing.assert_allclose(chunked.means_, whole.means_, rtol=1e-10)
    np.testing.assert_allclose(np.sort(whole.means_[:, 0]), [0, 1e3], atol=1e-3)


# Identity precisions for two components in two dimensions: a start that does not
# depend on the data (k-means on mean-filled rows would see the empty rows).
UNIT_PRECISIONS = {
    "full": np.array([np.eye(2), np.eye(2)]), "tied": np.eye(2),
    "diag": np.ones((2, 2)), "spherical": np.ones(2),
}


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_rows_with_nothing_observed_change_nothing(covariance_type):
    X = with_gaps(make_blobs(n_samples=300, n_components=2, seed=2), 0.2)
    padded = np.vstack([X[:100], np.full((7, 2), np.nan), X[100:]])
    kwargs = dict(covariance_type=covariance_type, tol=0, max_iter=15,
                  means_init=[[-3, 0], [3, 0]], weights_init=[0.5, 0.5],
                  precisions_init=UNIT_PRECISIONS[covariance_type])
    plain = GaussianMixture(2, **kwargs).fit(X)
    padded_fit = GaussianMixture(2, **kwargs).fit(padded)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(padded_fit, name), getattr(plain, name), rtol=1e-12)
    np.testing.assert_allclose(padded_fit.history_, plain.history_, rtol=1e-12)
    np.testing.assert_allclose(padded_fit.predict_proba(np.full((1, 2), np.nan))[0],
                               plain.weights_, rtol=1e-12)


def test_a_column_with_no_value_is_named():
    X = make_blobs(n_samples=50, n_features=3)
    X[:, 1] = np.nan
    with pytest.raises(ValueError, match="column 1 has no observed value"):
        GaussianMixture(2).fit(X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_observed_value_per_row_still_fits(covariance_type, dtype):
    X = make_blobs(n_samples=400, n_features=3, n_components=2, separation=6.0).astype(dtype)
    keep = np.random.default_rng(0).integers(3, size=400)
    sparse = np.full_like(X, np.nan)
    sparse[np.arange(400), keep] = X[np.arange(400), keep]
    gm = _quiet(GaussianMixture(2, covariance_type=covariance_type, random_state=0), sparse)
    assert gm.means_.dtype == dtype
    for name in ("weights_", "means_", "covariances_"):
        assert np.isfinite(getattr(gm, name)).all()
    assert np.all(np.diff(gm.history_) >= -1e-6 * np.abs(gm.history_[1:]))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_missing_only_at_predict_time(covariance_type):
    X = make_blobs(n_samples=300, n_components=2, separation=6.0)
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    holed = X.copy()
    holed[:, 1] = np.nan
    proba = gm.predict_proba(holed)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # With the second coordinate unknown, the score is the marginal density of the first.
    dense = COVARIANCE_STRUCTURES[covariance_type].dense(gm.covariances_, 2, 2)
    marginal = np.log(sum(
        w * multivariate_normal(m[0], c[0, 0]).pdf(X[:, 0])
        for w, m, c in zip(gm.weights_, gm.means_, dense, strict=True)
    ))
    np.testing.assert_allclose(gm.score_samples(holed), marginal, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_chunking_does_not_change_a_fit_with_gaps(covariance_type):
    X = with_gaps(make_blobs(n_samples=500, n_features=3, n_components=3), 0.25)
    kwargs = dict(covariance_type=covariance_type, tol=0, max_iter=10, random_state=0)
    whole = _quiet(GaussianMixture(3, **kwargs), X)
    chunked = _quiet(GaussianMixture(3, chunk_size=37, **kwargs), X)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-10)


@settings(max_examples=20, deadline=None)
@example(2, "full", 0.125, 2, 2)  # nearly singular covariances, likelihood near zero
@given(
    st.integers(0, 2**16), st.sampled_from(COVARIANCE_TYPES), st.floats(0.05, 0.6),
    st.integers(1, 3), st.integers(2, 4),
)
def test_observed_log_likelihood_never_decreases(seed, covariance_type, fraction, k, d):
    X = make_blobs(n_samples=60 * k * d, n_features=d, n_components=k, seed=seed)
    X = with_gaps(X, fraction, seed)
    gm = _quiet(GaussianMixture(k, covariance_type=covariance_type, random_state=seed, tol=0,
                                max_iter=15, reg_covar=1e-10), X)
    steps = np.diff(gm.history_)
    # Relative to the likelihood, with an absolute floor for likelihoods near zero.
    assert np.all(steps >= -1e-9 * np.maximum(np.abs(gm.history_[1:]), 1.0)), steps.min()


def _clustered_with_holes(seed=0):
    X = make_blobs(n_samples=600, n_features=4, n_components=3, separation=6.0, seed=seed)
    holed = with_gaps(X, 0.2, seed + 1)
    return X, holed


def test_imputer_fills_with_the_conditional_mean_and_keeps_observed_values():
    X, holed = _clustered_with_holes()
    filled = GaussianMixtureImputer(3, random_state=0).fit_transform(holed)
    observed = ~np.isnan(holed)
    np.testing.assert_array_equal(filled[observed], holed[observed])
    assert not np.isnan(filled).any()
    error = np.sqrt(np.mean((filled[~observed] - X[~observed]) ** 2))
    naive = np.sqrt(np.mean((np.nanmean(holed, axis=0)[np.nonzero(~observed)[1]]
                             - X[~observed]) ** 2))
    assert error < 0.6 * naive


def test_one_component_imputation_is_the_regression_on_observed_values():
    mean = np.array([1.0, -2.0])
    cov = np.array([[2.0, 1.2], [1.2, 1.5]])
    X = np.random.default_rng(0).multivariate_normal(mean, cov, size=4000)
    holed = X.copy()
    holed[:10, 1] = np.nan
    imputer = GaussianMixtureImputer(1, random_state=0).fit(holed)
    gm = imputer.gaussian_mixture_
    m, c = gm.means_[0], gm.covariances_[0]
    expected = m[1] + c[1, 0] / c[0, 0] * (X[:10, 0] - m[0])
    np.testing.assert_allclose(imputer.transform(holed)[:10, 1], expected, rtol=1e-10)


def test_sample_posterior_is_reproducible_and_varies():
    _, holed = _clustered_with_holes()

    def draw(seed):
        return GaussianMixtureImputer(3, sample_posterior=True, random_state=seed) \
            .fit_transform(holed)

    np.testing.assert_array_equal(draw(4), draw(4))
    assert not np.allclose(draw(4), draw(5))
    holed_rows = np.isnan(holed)
    assert not np.isnan(draw(4)).any()
    assert np.std(draw(4)[holed_rows] - draw(5)[holed_rows]) > 0.1


def test_imputer_in_a_pipeline_and_empty_rows():
    _, holed = _clustered_with_holes()
    holed[3] = np.nan
    pipe = make_pipeline(GaussianMixtureImputer(3, random_state=0), StandardScaler())
    out = pipe.fit_transform(holed)
    assert out.shape == holed.shape and not np.isnan(out).any()
    imputer = pipe[0]
    gm = imputer.gaussian_mixture_
    np.testing.assert_allclose(imputer.transform(holed[3:4])[0], gm.weights_ @ gm.means_)


@parametrize_with_checks([GaussianMixtureImputer(), GaussianMixtureImputer(2, random_state=0)])
def test_imputer_is_a_scikit_learn_transformer(estimator, check):
    check(estimator)


def test_partial_fit_and_the_variants_take_gaps():
    """Online, hard, stochastic and accelerated EM all run on data with NaN."""
    X = with_gaps(make_blobs(n_samples=3000, n_features=3, n_components=3, separation=6.0,
                             seed=1), 0.2)
    batch = _quiet(GaussianMixture(3, random_state=0), X)
    online = GaussianMixture(3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for part in np.array_split(X, 60):
            online.partial_fit(part)
    assert abs(online.score(X) / batch.score(X) - 1) < 0.005
    accelerated = _quiet(GaussianMixture(3, random_state=0, accelerate=True), X)
    assert np.all(np.diff(accelerated.history_) >= -1e-12)
    assert accelerated.score(X) >= batch.score(X) - 1e-3
    hard = _quiet(GaussianMixture(3, random_state=0, algorithm="hard"), X)
    assert np.all(np.diff(hard.history_) >= -1e-12)
