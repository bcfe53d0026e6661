"""The compiled soft E-step equals the numpy path it replaces, and its exp is exact.

Oracles: ``np.exp`` for the vectorised exponential; the numpy E-step
(quadratic features, BLAS products, log-sum-exp) on the same chunk for the
statistics; scikit-learn agreement of whole fits is in test_speed_kernels.py,
which runs through this pass.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from emkit import GaussianMixture
from emkit.core.variants import HARD
from emkit.distributions.gaussian import _soft_pass, quadratic
from tests.conftest import make_blobs

pytestmark = pytest.mark.skipif(not _soft_pass.AVAILABLE, reason="numba is not installed")


@_soft_pass._jit
def exp_of_differences(values, offsets, out, bits):
    """The exponential as the pass calls it (compiled: it dispatches on dtype)."""
    _soft_pass._exp_of_differences(values, offsets, out, bits)


def exp_of_differences_in(values, offsets):
    """``exp(values - offsets)`` in ``values``' dtype, with the scratch the pass gives."""
    out = np.empty_like(values)
    bits_dtype = np.int32 if values.dtype == np.float32 else np.int64
    exp_of_differences(values, offsets, out, np.empty((2 * values.shape[0], values.shape[1]),
                                                      bits_dtype))
    return out


def exp_of(x):
    """The compiled exponential of ``x`` (as ``x - 0`` on one row), in its dtype."""
    return exp_of_differences_in(x[None, :], np.zeros(x.size))[0]


def log_of(x):
    values = np.array(x, dtype=np.float64)
    _soft_pass._log_in_place(values, np.empty(values.size, np.int64))
    return values


EPS = np.finfo(np.float64).eps


def test_exp_is_within_two_units_in_the_last_place():
    x = np.concatenate([-np.logspace(-12, np.log10(708.0), 5000), [0.0, -1e-300, -np.log(2) / 2]])
    expected = np.exp(x)
    assert np.max(np.abs(exp_of(x) - expected) / expected) <= 2 * EPS


def test_exp_underflows_like_numpy():
    # Subnormal results, the last representable one, and what rounds to zero.
    x = np.array([-709.0, -720.0, -740.0, -744.4, -745.2, -746.0, -800.0, -np.inf])
    values = exp_of(x)
    np.testing.assert_allclose(values, np.exp(x), rtol=1e-12, atol=0)
    assert values[-1] == 0.0 and values[-2] == 0.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_of_differences_subtracts_per_column(dtype):
    values = np.array([[1.0, 5.0, -3.0], [2.0, 0.5, -2.0]], dtype)
    offsets = values.max(axis=0).astype(np.float64)
    out = exp_of_differences_in(values, offsets)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, np.exp(values - offsets), rtol=2 * np.finfo(dtype).eps)


def test_float32_exp_is_within_two_units_in_the_last_place():
    x = np.concatenate([-np.logspace(-7, np.log10(87.3), 20001), [0.0, -np.log(2) / 2]])
    x = x.astype(np.float32)
    expected = np.exp(x.astype(np.float64))
    assert np.max(np.abs(exp_of(x) - expected) / expected) <= 2 * np.finfo(np.float32).eps


def test_float32_exp_is_zero_below_the_smallest_normal_number():
    # Zero, not subnormal: the pass skips rows whose responsibility is exactly zero.
    x = np.array([-87.3, -87.34, -90.0, -103.0, -1e4, -np.inf], np.float32)
    values = exp_of(x)
    assert values[0] >= np.finfo(np.float32).tiny
    np.testing.assert_allclose(values[0], np.exp(np.float64(x[0])), rtol=2.5e-7)
    assert np.all(values[1:] == 0.0)


def test_log_is_within_two_units_in_the_last_place():
    # Totals of exponentials lie in [1, K]; the function is exact far beyond.
    x = np.concatenate([np.linspace(1.0, 64.0, 20001), np.logspace(-300, 300, 2001),
                        [np.sqrt(2), np.nextafter(np.sqrt(2), 2), 0.5, 2.0]])
    expected = np.log(x)
    nonzero = expected != 0
    error = np.abs(log_of(x) - expected)
    assert np.max(error[nonzero] / np.abs(expected[nonzero])) <= 2 * EPS
    assert log_of([1.0])[0] == 0.0
    # Near 1 the log is small; its error stays tiny in absolute terms.
    near_one = np.abs(expected) < 1e-3
    assert np.max(error[near_one]) <= 1e-18


def model_for(X, covariance_type, n_components=3):
    """A mixture after two EM iterations (so the parameters are not the start's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = GaussianMixture(n_components, covariance_type=covariance_type, max_iter=2,
                                 tol=0, random_state=0).fit(X)
    return fitted._model()


def blobs(n_samples=2000, n_features=4, dtype=np.float64, separation=4.0):
    return make_blobs(n_samples=n_samples, n_features=n_features, dtype=dtype,
                      separation=separation)


def numpy_e_step(model, X, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(_soft_pass, "AVAILABLE", False)
        return model.e_step(X)


def assert_same_stats(model, fused, reference, rtol):
    """Same counts and log-likelihood, and the same parameters from the M-step."""
    assert fused.n_samples == reference.n_samples
    np.testing.assert_allclose(fused.log_likelihood, reference.log_likelihood, rtol=rtol)
    np.testing.assert_allclose(fused.resp_sum, reference.resp_sum, rtol=rtol)
    np.testing.assert_allclose(fused.components.counts, reference.components.counts, rtol=rtol)
    # ``first`` (sums of x - mu) nearly cancels: compare what it means, the new means.
    new, expected = model.m_step(fused).components, model.m_step(reference).components
    for name in ("means", "covariances"):
        a = getattr(new, name).astype(np.float64)
        b = getattr(expected, name).astype(np.float64)
        assert np.abs(a - b).max() <= rtol * np.abs(b).max(), name


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
@pytest.mark.parametrize("block_bytes", [2**10, 2**19], ids=["many-blocks", "one-block"])
def test_fused_e_step_equals_numpy_path(covariance_type, block_bytes, monkeypatch):
    # 2**10 bytes gives the minimum block (64 rows): 2000 rows end in a short block.
    monkeypatch.setattr(_soft_pass, "_BLOCK_BYTES", block_bytes)
    X = blobs()
    model = model_for(X, covariance_type)
    assert model.components.soft_e_step(X, model._log_weights) is not None
    assert_same_stats(model, model.e_step(X), numpy_e_step(model, X, monkeypatch), 1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_fused_e_step_float32(covariance_type, monkeypatch):
    X = blobs(dtype=np.float32, separation=1.5)  # close enough for float32 features
    model = model_for(X, covariance_type)
    assert model.components.kernel.weights.dtype == np.float32  # float32 features
    fused = model.e_step(X)
    assert fused.components.second.dtype == np.float64  # sums kept in float64
    # Both paths round the features and products in float32, in a different order.
    assert_same_stats(model, fused, numpy_e_step(model, X, monkeypatch), 1e-5)


def under_budget(model, dtype, budget, monkeypatch):
    """``model`` with its kernel rebuilt under another rounding budget for ``dtype``."""
    monkeypatch.setitem(quadratic._ROUNDING_BUDGET, np.dtype(dtype), budget)
    return replace(model, components=replace(model.components))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_direct_components_inside_the_pass(covariance_type, dtype, rtol, monkeypatch):
    # 2**10 bytes: many blocks and a short last one, for the direct sums too.
    monkeypatch.setattr(_soft_pass, "_BLOCK_BYTES", 2**10)
    X = blobs(dtype=dtype)
    model = model_for(X, covariance_type)
    # A budget between the two smallest roundings: one component from the
    # features, the other two around their own means, in the same pass.
    smallest = np.sort(model.components.kernel.rounding)[:2]
    model = under_budget(model, dtype, np.sqrt(smallest.prod()), monkeypatch)
    assert model.components.kernel.fast.sum() == 1
    assert model.components.soft_e_step(X, model._log_weights) is not None
    assert_same_stats(model, model.e_step(X), numpy_e_step(model, X, monkeypatch), rtol)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_every_component_direct(dtype, rtol, monkeypatch):
    X = blobs(dtype=dtype)
    model = under_budget(model_for(X, "full"), dtype, -1.0, monkeypatch)
    assert not model.components.kernel.fast.any()
    assert model.components.soft_e_step(X, model._log_weights) is not None
    assert_same_stats(model, model.e_step(X), numpy_e_step(model, X, monkeypatch), rtol)


def direct_block(rng, n_features, b, start):
    """A block ``X[start:]`` and one direct component: mean, ``L^T``, constant."""
    X = rng.normal(size=(start + b, n_features))
    means = rng.normal(size=(1, n_features))
    chol_t = np.triu(rng.normal(size=(n_features, n_features)), 1) + np.diag(
        rng.uniform(0.5, 2.0, n_features)
    )
    return X, means, chol_t[None], np.array([-1.5])


@pytest.mark.parametrize(
    "reachable, responsible, n_packed",
    [(0.0, 0.0, 0), (0.1, 0.1, None), (0.9, 0.9, -1), (0.9, 0.1, -1)],
    ids=["none", "few-packed", "most-whole-block", "few-responsible"],
)
def test_direct_component_skips_only_rows_it_cannot_reach(reachable, responsible, n_packed):
    # One fast component (log densities 0) and one direct one whose
    # approximation says which rows lie beyond the exponential's floor.
    rng = np.random.default_rng(0)
    n_features, b, start = 3, 50, 7
    X, means, chol_t, constants = direct_block(rng, n_features, b, start)
    rows = np.ascontiguousarray(X[start:].T)
    skip_below = _soft_pass.skip_distance(np.array([0.01]), np.float64)
    reach = rng.random(b) < reachable
    log_dens = np.zeros((2, b))
    log_dens[1] = np.where(reach, 0.0, -skip_below[0] - 1.0)
    log_dens[1, np.flatnonzero(reach)[:1]] = np.nan  # a NaN approximation counts as reached
    approx = log_dens[1].copy()
    block = _soft_pass._block_arrays(n_features, 10, 1, 2, b, np.dtype(np.float64),
                                     np.dtype(np.int64))
    centred, weighted, mapped = block[-3:]
    (chol_rows, selected, packed, index, packed_count, mapped_rows, weighted_rows,
     part) = _soft_pass._direct_arrays(chol_t, b, np.dtype(np.float64))
    _soft_pass._direct_log_densities(
        X, start, rows, 1, means, chol_t, chol_rows, constants, skip_below, log_dens,
        np.empty(b), np.empty(b), centred, mapped, selected, packed, index, packed_count,
        mapped_rows,
    )
    exact = constants[0] - 0.5 * np.sum(np.square((X[start:] - means[0]) @ chol_t[0].T), axis=1)
    assert packed_count[0] == (reach.sum() if n_packed is None else n_packed)
    computed = reach if packed_count[0] >= 0 else np.ones(b, bool)
    np.testing.assert_allclose(log_dens[1, computed], exact[computed], rtol=1e-13)
    np.testing.assert_array_equal(log_dens[1, ~computed], approx[~computed])
    # Their sums over the rows computed (elsewhere the responsibility is zero),
    # packed or whole-block, and packed again where few rows carry weight.
    resp = np.zeros((2, b))
    carries_weight = reach & (rng.random(b) * reachable < responsible)
    resp[1] = rng.random(b) * carries_weight
    sums = np.zeros((1, n_features + 1, n_features + 1))
    _soft_pass._direct_moments(
        X, start, rows, 1, means, resp, centred, weighted, selected, packed, index,
        packed_count, weighted_rows, part, sums,
    )
    augmented = np.hstack([X[start:] - means[0], np.ones((b, 1))])
    expected = (augmented * resp[1][:, None]).T @ augmented
    np.testing.assert_allclose(sums[0], expected, rtol=1e-12, atol=1e-14)


def test_skip_distance_passes_the_floor_of_each_dtype():
    rounding = np.array([0.0, 1e-3, 1.0])
    for dtype, floor in ((np.float64, 746.0), (np.float32, 87.33)):
        distance = _soft_pass.skip_distance(rounding, dtype)
        assert np.all(distance > floor + 100 * rounding)
        # Beyond it the exponential is exactly zero in that dtype.
        assert exp_of(np.array([-distance[0]], dtype))[0] == 0.0


def test_missing_values_take_the_general_path(monkeypatch):
    X = blobs()
    model = model_for(X, "full")
    gappy = X.copy()
    gappy[1500, 2] = np.nan  # in a later block: the pass stops there
    assert model.components.soft_e_step(gappy, model._log_weights) is None
    assert_same_stats(
        model, model.e_step(gappy), numpy_e_step(model, gappy, monkeypatch), 1e-12
    )


def test_rows_without_density_take_the_general_path():
    X = blobs(n_samples=100)
    model = model_for(X, "full")
    impossible = np.full(3, -np.inf)
    assert model.components.soft_e_step(X, impossible) is None


def test_tied_and_hard_em_take_the_general_path():
    X = blobs(n_samples=300)
    assert model_for(X, "tied").components.soft_e_step(X, np.log(np.full(3, 1 / 3))) is None
    hard = replace(model_for(X, "full"), assignment=HARD)
    stats = hard.e_step(X)
    # Hard EM's statistics are one-hot: whole counts.
    np.testing.assert_array_equal(stats.resp_sum, np.round(stats.resp_sum))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_fit_without_numba_equals_fit_with_it(covariance_type, monkeypatch):
    # Whole fits, chunking included: without numba the fit takes the numpy
    # path (and its shorter chunks) and must reach the same parameters.
    X = blobs(n_samples=3000, n_features=5)
    params = dict(n_components=3, covariance_type=covariance_type, max_iter=10, tol=0,
                  random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = GaussianMixture(**params).fit(X)
        monkeypatch.setattr(_soft_pass, "AVAILABLE", False)
        plain = GaussianMixture(**params).fit(X)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(compiled, name), getattr(plain, name), rtol=1e-10,
                                   atol=1e-12, err_msg=name)
    np.testing.assert_allclose(compiled.history_, plain.history_, rtol=1e-12)


def test_column_major_input_gives_the_same_fit():
    X = blobs(n_samples=1000)
    params = dict(n_components=3, max_iter=5, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = GaussianMixture(**params).fit(X)
        columns = GaussianMixture(**params).fit(np.asfortranarray(X))
    np.testing.assert_allclose(columns.covariances_, rows.covariances_, rtol=1e-12)
    assert _soft_pass._soft_pass.signatures == [
        s for s in _soft_pass._soft_pass.signatures if s[0].layout == "C"
    ]
