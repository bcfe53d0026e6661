"""Online (stepwise) EM: partial_fit on a stream of batches."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from emkit import GaussianMixture, MixtureModel, load, save
from emkit.distributions import Gaussian as GaussianDistribution
from emkit.distributions.component_list import ComponentList
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.distributions.gaussian.family import gaussian_stats
from emkit.estimators.gaussian_mixture import fitted_online_stats
from emkit.latent.mixture import Mixture
from emkit.latent.online import blend, per_row, recentred, step_size
from tests.conftest import COVARIANCE_TYPES, make_blobs
from tests.test_families import CASES, generate


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    return make_blobs(n_samples=6000, n_components=3, separation=8.0, seed=1)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sixty_batches_approach_the_batch_fit(stream, covariance_type):
    kwargs = dict(n_components=3, covariance_type=covariance_type, random_state=0)
    online = GaussianMixture(**kwargs)
    for batch in np.array_split(stream, 60):
        online.partial_fit(batch)
    batch_fit = GaussianMixture(**kwargs).fit(stream)
    gap = abs(online.score(stream) - batch_fit.score(stream))
    assert gap < 0.005 * abs(batch_fit.score(stream))


def test_one_row_batches_and_history(stream):
    gm = GaussianMixture(3, random_state=0).partial_fit(stream[:200])
    n_iter = gm.n_iter_
    for row in stream[200:210]:
        gm.partial_fit(row[None, :])
    assert gm.n_iter_ == n_iter + 10 == len(gm.history_)
    assert np.isfinite(gm.means_).all() and np.isclose(gm.weights_.sum(), 1.0)


def test_width_change_is_refused_and_a_small_start_is_gathered(stream):
    gm = GaussianMixture(3, random_state=0).partial_fit(stream[:100])
    with pytest.raises(ValueError, match="features"):
        gm.partial_fit(np.hstack([stream[:5], stream[:5]]))
    # 3 components of 2 features start from 3 * max(30, 2 * 3) = 90 rows, gathered first.
    gathering = GaussianMixture(3, random_state=0)
    assert gathering.first_batch_rows(2) == 90
    for start in range(0, 80, 20):
        gathering.partial_fit(stream[start:start + 20])
        with pytest.raises(NotFittedError):
            gathering.predict(stream[:1])
        with pytest.raises(ValueError, match="features"):
            gathering.partial_fit(np.hstack([stream[:5], stream[:5]]))
    gathering.partial_fit(stream[80:100])
    direct = GaussianMixture(3, random_state=0).fit(stream[:100])
    np.testing.assert_array_equal(gathering.means_, direct.means_)
    assert gathering.n_samples_seen_ == 100


def test_a_small_first_batch_no_longer_starves_components():
    """Iris in ten-row batches, one epoch: from its first ten rows a component used to
    end at weight 0.001 (0.998/0.001/0.001); from the gathered start none does."""
    iris = load_iris().data
    for seed in range(4):
        rows = np.random.default_rng(seed).permutation(iris)
        gm = GaussianMixture(3, random_state=seed)
        for start in range(0, len(rows), 10):
            gm.partial_fit(rows[start:start + 10])
        assert gm.weights_.min() > 0.1, seed


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_row_after_a_fit_barely_moves_it(stream, covariance_type, tmp_path):
    """The fitted model is the stream's start, worth its 1000 rows (it used to be
    replaced by the one row: score -4.1 to -2.5e6)."""
    fitted = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(
        stream[:1000])
    # Its running statistics give its own parameters back.
    model = fitted._model()
    again = model.m_step(fitted_online_stats(fitted))
    np.testing.assert_allclose(again.components.covariances, fitted.covariances_, rtol=1e-12)
    np.testing.assert_allclose(again.components.means, fitted.means_, rtol=1e-12)
    before = fitted.score(stream[:1000])
    save(fitted, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    fitted.partial_fit(stream[1000:1001])
    assert abs(fitted.score(stream[:1000]) - before) < 1e-3 * abs(before)
    assert fitted.n_samples_seen_ == 1001 and fitted.n_iter_ == len(fitted.history_)
    # A loaded model continues exactly as the fitted one (its row count is saved).
    loaded.partial_fit(stream[1000:1001])
    np.testing.assert_allclose(loaded.means_, fitted.means_, rtol=1e-12)
    np.testing.assert_allclose(loaded.covariances_, fitted.covariances_, rtol=1e-12)


def test_a_model_file_without_its_row_count_counts_as_its_parameters(stream):
    fitted = GaussianMixture(3, random_state=0).fit(stream[:1000])
    del fitted.n_samples_seen_  # as a file written before it was saved
    before = fitted.score(stream[:1000])
    fitted.partial_fit(stream[1000:1001])
    assert fitted.n_samples_seen_ == fitted._n_parameters() + 1
    assert abs(fitted.score(stream[:1000]) - before) < 0.05 * abs(before)


def test_partial_fit_continues_a_fit(stream):
    gm = GaussianMixture(3, random_state=0).fit(stream)
    means = gm.means_.copy()
    gm.partial_fit(stream[:300])
    np.testing.assert_allclose(gm.means_, means, atol=0.5)


def test_step_size_follows_the_formula():
    assert step_size(1, 2.0, 0.6) == pytest.approx(3**-0.6)
    assert step_size(10, 0.0, 1.0) == pytest.approx(0.1)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_recentred_statistics_equal_statistics_taken_there(covariance_type):
    structure = COVARIANCE_STRUCTURES[covariance_type]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)) * 3 + 50
    resp = rng.dirichlet(np.ones(4), size=60)
    old, new = rng.normal(size=(4, 3)) + 50, rng.normal(size=(4, 3)) * 5 + 50
    moved = gaussian_stats(structure, X, resp, old).recentred(new, structure)
    direct = gaussian_stats(structure, X, resp, new)
    np.testing.assert_allclose(moved.first, direct.first, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(moved.second, direct.second, rtol=1e-10, atol=1e-8)
    np.testing.assert_array_equal(moved.shift, direct.shift)


def test_blending_per_row_statistics_weighs_batches_by_step_not_length(blobs):
    """With step n_b / (n_a + n_b), blending per-row statistics gives the union's."""
    model: Mixture = GaussianMixture(3, random_state=0).fit(blobs)._model()
    a, b = blobs[:300], blobs[300:]
    blended = blend(per_row(model.e_step(a)), per_row(model.e_step(b)), len(b) / len(blobs))
    union = per_row(model.e_step(blobs))
    np.testing.assert_allclose(blended.resp_sum, union.resp_sum, rtol=1e-12)
    np.testing.assert_allclose(blended.components.second, union.components.second, rtol=1e-10)
    np.testing.assert_allclose(blended.log_likelihood, union.log_likelihood, rtol=1e-12)


@pytest.mark.parametrize("name", ["poisson", "gaussian-full", "mixed-independent"])
def test_mixture_model_stream_approaches_its_batch_fit(name):
    case = CASES[name]
    X, _ = generate(case, 3000, seed=1)
    batch_fit = MixtureModel(list(case.start), tol=1e-8, max_iter=500).fit(X)
    online = MixtureModel(list(case.start))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for batch in np.array_split(X, 60):
            online.partial_fit(batch)
    # Less separated than the Gaussian stream above: a looser, still tight, bound.
    assert abs(online.score(X) - batch_fit.score(X)) < 0.01 * abs(batch_fit.score(X))
    n_iter = online.n_iter_
    online.partial_fit(X[:1])
    assert online.n_iter_ == n_iter + 1
    with pytest.raises(ValueError, match="features"):
        online.partial_fit(np.hstack([X[:3], X[:3]]))


def test_recentred_walks_component_lists_of_gaussians():
    rng = np.random.default_rng(2)
    X, weights = rng.normal(size=(40, 2)) + 30, rng.random(40)
    old = ComponentList((GaussianDistribution([0.0, 0.0], np.eye(2)),
                         GaussianDistribution([1.0, 0.0], [1.0, 2.0], "diag")))
    new = ComponentList((GaussianDistribution([30.0, 31.0], np.eye(2)),
                         GaussianDistribution([29.0, 30.0], [1.0, 2.0], "diag")))
    resp = np.column_stack([weights, 1 - weights])
    moved = recentred(old.stats(X, resp), new)
    direct = new.stats(X, resp)
    for a, b in zip(moved.parts, direct.parts, strict=True):
        np.testing.assert_allclose(a.first, b.first, atol=1e-9)
        np.testing.assert_allclose(a.second, b.second, rtol=1e-10, atol=1e-8)
