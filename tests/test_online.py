"""Online (stepwise) EM: partial_fit on a stream of batches."""

from __future__ import annotations

import numpy as np
import pytest

from emkit import GaussianMixture
from emkit.families.covariance import COVARIANCE_STRUCTURES
from emkit.families.gaussian import gaussian_stats
from emkit.mixture import Mixture
from emkit.online import blend, per_row, step_size
from tests.conftest import COVARIANCE_TYPES, make_blobs


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


def test_width_change_and_too_small_first_batch_are_refused(stream):
    gm = GaussianMixture(3, random_state=0).partial_fit(stream[:100])
    with pytest.raises(ValueError, match="features"):
        gm.partial_fit(np.hstack([stream[:5], stream[:5]]))
    with pytest.raises(ValueError, match="n_components=3 is larger than the number of samples"):
        GaussianMixture(3).partial_fit(stream[:2])


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
