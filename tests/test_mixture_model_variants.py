"""The EM variants and acceleration on MixtureModel, over the table of families."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from emkit import MixtureModel
from emkit.distributions import Poisson
from emkit.distributions.codec import ComponentListCodec
from emkit.distributions.component_list import ComponentList
from tests.test_families import CASES, case_params, flat, generate


def _fit(case, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MixtureModel(list(case.start), **kwargs).fit(X)


@case_params
def test_codec_round_trip(case):
    family = ComponentList(case.truth)
    codec = ComponentListCodec()
    back = codec.unflatten(codec.flatten(family), like=family)
    for got, want in zip(back.distributions, family.distributions, strict=True):
        np.testing.assert_allclose(flat(got), flat(want), rtol=1e-10, atol=1e-12)


@case_params
def test_accelerated_reaches_the_plain_optimum_never_decreasing(case):
    X, _ = generate(case, 600, seed=7)
    plain = _fit(case, X, tol=1e-10, max_iter=2000)
    fast = _fit(case, X, tol=1e-10, max_iter=2000, accelerate=True)
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-8 * abs(plain.lower_bound_)
    assert fast.n_iter_ <= plain.n_iter_ + 2  # one jump may be wasted at the very end
    assert np.all(np.diff(fast.history_) >= 0)


@case_params
def test_hard_em_never_decreases_and_stochastic_reproduces(case):
    X, _ = generate(case, 300, seed=8)
    hard = _fit(case, X, algorithm="hard", tol=0, max_iter=15)
    assert np.all(np.diff(hard.history_) >= -1e-12 * np.abs(hard.history_[1:]))
    first, again = (_fit(case, X, algorithm="stochastic", max_iter=10, random_state=3)
                    for _ in range(2))
    np.testing.assert_array_equal(first.history_, again.history_)
    assert first.lower_bound_ == first.history_.max()


def test_poisson_overlap_in_at_most_half_the_passes():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.poisson(3, 400), rng.poisson(5, 400), rng.poisson(8, 200)])
    start = [Poisson(1.0), Poisson(4.0), Poisson(9.0)]
    kwargs = dict(tol=1e-10, max_iter=5000)
    plain = MixtureModel(start, **kwargs).fit(X[:, None])
    fast = MixtureModel(start, accelerate=True, **kwargs).fit(X[:, None])
    assert plain.n_iter_ >= 200 and 2 * fast.n_iter_ <= plain.n_iter_
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-8 * abs(plain.lower_bound_)


def test_accelerate_needs_plain_em():
    with pytest.raises(ValueError, match="accelerate=True needs algorithm='em'"):
        MixtureModel(list(CASES["poisson"].start), algorithm="hard", accelerate=True).fit(
            np.ones((5, 2)))
