"""``emkit.em`` for a model written as two functions.

Genetic linkage (Dempster, Laird and Rubin 1977, section 1): counts 125, 18, 20,
34 with cell probabilities (1/2 + t/4, (1 - t)/4, (1 - t)/4, t/4). The MLE is
the root in (0, 1) of 197 t**2 - 15 t - 68 = 0, 0.62682149787; the paper
reports 0.6268214980.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom
from sklearn.exceptions import ConvergenceWarning

import emkit
from emkit import MixtureModel, em
from emkit.distributions import Binomial

Y1, Y2, Y3, Y4 = 125, 18, 20, 34
MLE = (15 + np.sqrt(15**2 + 4 * 197 * 68)) / (2 * 197)


def linkage_e_step(t: float) -> tuple[float, float]:
    hidden = Y1 * (t / 4) / (1 / 2 + t / 4)
    loglik = Y1 * np.log(2 + t) + (Y2 + Y3) * np.log(1 - t) + Y4 * np.log(t)
    return hidden, loglik


def linkage_m_step(hidden: float) -> float:
    return (hidden + Y4) / (hidden + Y2 + Y3 + Y4)


def test_genetic_linkage_reaches_the_mle():
    result = em(linkage_e_step, linkage_m_step, 0.5, tol=1e-14)
    assert result.converged
    assert result.theta == pytest.approx(MLE, abs=1e-11)
    assert abs(result.theta - 0.6268214980) < 1e-9
    assert result.history.shape == (result.n_iter,)
    assert np.all(np.diff(result.history) >= 0)


def test_default_tolerance_and_first_step():
    result = em(linkage_e_step, linkage_m_step, 0.5)
    assert result.converged and result.theta == pytest.approx(MLE, abs=1e-6)
    # One step by hand from 0.5: hidden = 125 * 0.125 / 0.625 = 25, t = 59 / 97.
    assert em(linkage_e_step, linkage_m_step, 0.5, max_iter=1).theta == pytest.approx(59 / 97)


def test_max_iter_and_callback():
    seen = []
    result = em(linkage_e_step, linkage_m_step, 0.5, tol=0, max_iter=4,
                callback=lambda i, ll, change, t: seen.append((i, ll, change, t)))
    assert result.n_iter == 4 and not result.converged
    assert [s[0] for s in seen] == [1, 2, 3, 4]
    assert seen[-1][3] == result.theta
    np.testing.assert_array_equal([s[1] for s in seen], result.history)
    assert seen[0][2] == np.inf  # no previous log-likelihood before the first step


def test_user_written_coin_em_agrees_with_mixture_model():
    heads = np.array([5, 9, 8, 4, 7])

    def e_step(theta):
        like = binom.pmf(heads[:, None], 10, np.asarray(theta))
        resp = like / like.sum(axis=1, keepdims=True)
        return (resp.T @ heads, 10 * resp.sum(axis=0)), np.log(0.5 * like.sum(axis=1)).sum()

    def m_step(expected):
        credited_heads, credited_flips = expected
        return tuple(credited_heads / credited_flips)

    mine = em(e_step, m_step, (0.6, 0.5), tol=0, max_iter=10)
    model = MixtureModel([Binomial(10, 0.6), Binomial(10, 0.5)], fit_weights=False,
                         tol=0, max_iter=10)
    with pytest.warns(ConvergenceWarning):  # tol=0 never converges
        model.fit(heads[:, None])
    np.testing.assert_allclose(mine.theta, [c.p for c in model.components_], rtol=1e-12)
    np.testing.assert_allclose(mine.history, model.history_ * 5, rtol=1e-12)


def test_public_names():
    assert emkit.em is em
    assert emkit.MixtureModel is MixtureModel
    assert emkit.distributions.Binomial is Binomial
