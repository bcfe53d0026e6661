"""SQUAREM-accelerated EM: the same optimum in far fewer passes, never going down."""

from __future__ import annotations

import numpy as np
import pytest

from emkit import GaussianMixture, em
from emkit.core.acceleration import MixtureCodec, squarem
from emkit.core.engine import run_em
from emkit.data.sources import ArraySource
from emkit.datasets import load_faithful
from emkit.distributions.gaussian.codec import GaussianCodec
from emkit.distributions.gaussian.covariance import DegenerateComponentError
from tests.conftest import COVARIANCE_TYPES, make_blobs


@pytest.fixture(scope="module")
def overlapping() -> np.ndarray:
    """Three heavily overlapping 2-D Gaussians: plain EM needs hundreds of iterations."""
    rng = np.random.default_rng(0)
    return np.vstack([
        rng.normal(0, 1, (250, 2)),
        rng.normal([1.5, 0.5], 1, (250, 2)),
        rng.normal([0.5, 2], 1.2, (250, 2)),
    ])


# Full covariances too (benchmarks/bench_acceleration.py), but their plain run
# of about 1400 iterations is too slow for the test suite.
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_same_optimum_in_at_most_half_the_passes(overlapping, covariance_type):
    kwargs = dict(n_components=3, covariance_type=covariance_type, tol=1e-10,
                  max_iter=5000, random_state=1)
    plain = GaussianMixture(**kwargs).fit(overlapping)
    fast = GaussianMixture(accelerate=True, **kwargs).fit(overlapping)
    assert plain.converged_ and fast.converged_
    assert plain.n_iter_ >= 200  # the slow case acceleration is for
    assert 2 * fast.n_iter_ <= plain.n_iter_
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-8 * abs(plain.lower_bound_)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("data", ["faithful", "blobs"])
def test_reported_log_likelihood_never_decreases(covariance_type, data):
    X = load_faithful() if data == "faithful" else make_blobs(300, n_components=4,
                                                              separation=1.5)
    gm = GaussianMixture(3, covariance_type=covariance_type, accelerate=True, tol=0,
                         max_iter=60, init_params="random", random_state=0)
    with pytest.warns(Warning):
        gm.fit(X)
    assert gm.n_iter_ == 60 == len(gm.history_)  # passes over the data, as max_iter says
    assert np.all(np.diff(gm.history_) >= 0)
    # The fitted parameters are the best evaluated, the ones lower_bound_ reports.
    np.testing.assert_allclose(gm.score(X), gm.lower_bound_, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_codec_round_trip(blobs, covariance_type):
    mixture = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(
        blobs)._model()
    codec = MixtureCodec(GaussianCodec())
    back = codec.unflatten(codec.flatten(mixture), like=mixture)
    np.testing.assert_allclose(back.weights, mixture.weights, rtol=1e-12)
    np.testing.assert_allclose(back.components.means, mixture.components.means, rtol=1e-12)
    np.testing.assert_allclose(
        back.components.covariances, mixture.components.covariances, rtol=1e-10)


def test_codec_refuses_invalid_vectors(blobs):
    mixture = GaussianMixture(2, random_state=0).fit(blobs)._model()
    codec = MixtureCodec(GaussianCodec())
    vector = codec.flatten(mixture)
    with pytest.raises(ValueError, match="finite"):
        codec.unflatten(np.full_like(vector, np.nan), like=mixture)
    degenerate = vector.copy()
    degenerate[-3:] = [-400.0, 0.0, -400.0]  # log Cholesky diagonal: variance ~ 0
    with pytest.raises(DegenerateComponentError):
        codec.unflatten(degenerate, like=mixture)


def test_squarem_is_generic_over_the_engine_model(overlapping):
    """squarem drives any e_step/m_step model given a codec, counting passes exactly."""
    start = GaussianMixture(3, max_iter=0, random_state=1).fit(overlapping)._model()
    source = ArraySource(overlapping, 500)
    codec = MixtureCodec(GaussianCodec())
    result = squarem(start, source, codec, tol=0, max_iter=25)
    assert result.n_iter == 25 and not result.converged
    assert np.all(np.diff(result.history) >= 0)
    none = squarem(start, source, codec, tol=0, max_iter=0)
    assert none.n_iter == 0 and none.model is start


def _linkage():
    """Dempster, Laird and Rubin's genetic linkage example (see emkit.em)."""
    y1, y2, y3, y4 = 125, 18, 20, 34

    def e_step(t):
        loglik = y1 * np.log(2 + t) + (y2 + y3) * np.log(1 - t) + y4 * np.log(t)
        return y1 * (t / 4) / (1 / 2 + t / 4), loglik

    def m_step(hidden):
        return (hidden + y4) / (hidden + y2 + y3 + y4)

    return e_step, m_step


def test_em_function_accelerates_with_default_and_own_codecs():
    e_step, m_step = _linkage()
    plain = em(e_step, m_step, 0.5, tol=1e-13)
    fast = em(e_step, m_step, 0.5, tol=1e-13, accelerate=True)
    logit = em(e_step, m_step, 0.5, tol=1e-13, accelerate=True,
               flatten=lambda t: np.array([np.log(t / (1 - t))]),
               unflatten=lambda v: float(1 / (1 + np.exp(-v[0]))))
    root = (15 + np.sqrt(15**2 + 4 * 197 * 68)) / (2 * 197)  # 197 t^2 - 15 t - 68 = 0
    # Near the root the log-likelihood is flat to rounding: 0.5 |L''| d**2 with
    # |L''| ~ 380 stays below its last digit (~1e-14) for d up to ~5e-9, so the best
    # point evaluated is the root to that precision, not closer.
    for result in (plain, fast, logit):
        np.testing.assert_allclose(result.theta, root, rtol=1e-8)
    assert fast.n_iter < plain.n_iter and logit.n_iter < plain.n_iter
    assert np.all(np.diff(fast.history) >= 0)
    with pytest.raises(ValueError, match="both flatten and unflatten"):
        em(e_step, m_step, 0.5, accelerate=True, flatten=np.atleast_1d)


def test_variants_with_missing_values(overlapping):
    """Missing values (NaN) go through every variant; the accelerated fit stays monotone."""
    X = overlapping.copy()
    X[np.random.default_rng(3).random(X.shape) < 0.1] = np.nan
    kwargs = dict(n_components=3, covariance_type="diag", tol=1e-10, max_iter=3000,
                  random_state=1)
    plain = GaussianMixture(**kwargs).fit(X)
    fast = GaussianMixture(accelerate=True, **kwargs).fit(X)
    assert 2 * fast.n_iter_ <= plain.n_iter_
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-8 * abs(plain.lower_bound_)
    assert np.all(np.diff(fast.history_) >= 0)
    hard = GaussianMixture(3, algorithm="hard", tol=1e-12, random_state=0).fit(X)
    assert np.all(np.diff(hard.history_) >= -1e-12 * np.abs(hard.history_[1:]))
    online = GaussianMixture(3, random_state=0).partial_fit(X[:300])
    online.partial_fit(np.full((2, 2), np.nan))  # nothing observed: no step
    assert online.n_iter_ == len(online.history_)
    online.partial_fit(X[300:310])
    assert np.isfinite(online.means_).all()


class _RefusingCodec(MixtureCodec):
    """A codec whose every extrapolated point is invalid."""

    def unflatten(self, vector, like):
        raise ValueError("refused")


def test_with_every_jump_refused_squarem_is_plain_em(overlapping):
    start = GaussianMixture(3, max_iter=0, random_state=1).fit(overlapping)._model()
    source = ArraySource(overlapping, 500)
    refused = squarem(start, source, _RefusingCodec(GaussianCodec()), tol=0, max_iter=20)
    plain = run_em(start, source, tol=0, max_iter=20)
    np.testing.assert_allclose(refused.history, plain.history, rtol=1e-13)


def test_callback_sees_every_pass(overlapping):
    seen = []
    gm = GaussianMixture(3, accelerate=True, tol=0, max_iter=15, random_state=1,
                         callback=lambda it, lb, change, model: seen.append((it, lb)))
    with pytest.warns(Warning):
        gm.fit(overlapping)
    assert [it for it, _ in seen] == list(range(1, 16))
    np.testing.assert_allclose([lb for _, lb in seen], gm.history_)
