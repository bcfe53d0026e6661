"""Invariants of EM over random mixtures, shapes and scales (hypothesis)."""

from __future__ import annotations

import os
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emkit import GaussianMixture
from emkit.data.sources import ArraySource
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.distributions.gaussian.family import gaussian_from_resp
from emkit.latent.mixture import Mixture
from tests.conftest import COVARIANCE_TYPES, make_blobs

# EMKIT_EXAMPLES=300 for a deeper search than CI's default.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("EMKIT_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def problems(draw):
    """A random data set and mixture settings: shape, scale, offset, structure."""
    n_components = draw(st.integers(1, 4))
    n_features = draw(st.integers(1, 4))
    # Enough rows per parameter that no component collapses: reg_covar then stays
    # negligible and the M-step is the exact maximiser EM's monotonicity relies on.
    n_samples = draw(st.integers(max(30, 15 * n_components * n_features), 300))
    scale = 10.0 ** draw(st.integers(-3, 3))
    offset = draw(st.sampled_from([0.0, 1.0, -50.0, 1e4]))
    X = make_blobs(
        n_samples=n_samples, n_features=n_features, n_components=n_components,
        separation=draw(st.floats(0.5, 6.0)), seed=draw(st.integers(0, 2**16)),
    )
    X = X * scale + offset * scale
    return {
        "X": X,
        "n_components": n_components,
        "covariance_type": draw(st.sampled_from(COVARIANCE_TYPES)),
        "seed": draw(st.integers(0, 2**16)),
        "scale": scale,
    }


def _fit(problem, **kwargs):
    params = dict(
        n_components=problem["n_components"], covariance_type=problem["covariance_type"],
        random_state=problem["seed"], init_params="random", tol=0, max_iter=12,
        reg_covar=1e-10 * problem["scale"] ** 2,
    )
    params.update(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(**params).fit(problem["X"])


@PROPERTY_SETTINGS
@given(problems())
def test_log_likelihood_never_decreases(problem):
    history = _fit(problem).history_
    steps = np.diff(history)
    assert np.all(steps >= -1e-9 * np.abs(history[1:]) - 1e-12), steps.min()


@PROPERTY_SETTINGS
@given(problems(), st.integers(1, 40))
def test_statistics_add_over_chunks(problem, chunk_size):
    X = problem["X"]
    structure = COVARIANCE_STRUCTURES[problem["covariance_type"]]
    rng = np.random.default_rng(problem["seed"])
    resp = rng.dirichlet(np.ones(problem["n_components"]), size=X.shape[0])
    mixture = Mixture(
        weights=resp.mean(axis=0),
        components=gaussian_from_resp(structure, X, resp, 1e-6 * problem["scale"] ** 2),
    )
    whole = mixture.e_step(X)
    summed = sum(mixture.e_step(chunk) for chunk in ArraySource(X, chunk_size))
    np.testing.assert_allclose(summed.resp_sum, whole.resp_sum, rtol=1e-10)
    np.testing.assert_allclose(summed.log_likelihood, whole.log_likelihood, rtol=1e-10)
    assert summed.n_samples == whole.n_samples == X.shape[0]
    spread = np.ptp(X)  # "first" sums centred values, which may cancel to ~0
    for name, power in (("counts", 0), ("first", 1), ("second", 2)):
        a, b = getattr(summed.components, name), getattr(whole.components, name)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * X.shape[0] * spread**power)


@PROPERTY_SETTINGS
@given(problems(), st.integers(1, 50))
def test_chunked_fit_equals_unchunked(problem, chunk_size):
    whole = _fit(problem)
    chunked = _fit(problem, chunk_size=chunk_size)
    for name in ("weights_", "means_", "covariances_"):
        a, b = getattr(chunked, name), getattr(whole, name)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())


@PROPERTY_SETTINGS
@given(problems())
def test_permuting_rows_changes_nothing(problem):
    """From a fixed start (row order cannot affect it), a permutation changes only rounding."""
    start = _fit(problem, max_iter=1)
    fixed = dict(
        weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_
    )
    original = _fit(problem, **fixed)
    order = np.random.default_rng(problem["seed"]).permutation(problem["X"].shape[0])
    permuted = _fit({**problem, "X": problem["X"][order]}, **fixed)
    # The fast kernel's log densities carry up to ~1e-8 relative rounding (it falls
    # back to the exact form beyond that); EM can amplify it over the iterations.
    for name in ("weights_", "means_", "covariances_"):
        a, b = getattr(permuted, name), getattr(original, name)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8 * np.abs(b).max())
    np.testing.assert_allclose(permuted.history_, original.history_, rtol=1e-7)
