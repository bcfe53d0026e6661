"""``emkit.em`` for a model written as two functions.

Genetic linkage (Dempster, Laird and Rubin 1977, section 1): counts 125, 18, 20,
34 with cell probabilities (1/2 + t/4, (1 - t)/4, (1 - t)/4, t/4). The MLE is
the root in (0, 1) of 197 t**2 - 15 t - 68 = 0, 0.62682149787; the paper
reports 0.6268214980.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import binom
from sklearn.exceptions import ConvergenceWarning

import emkit
from emkit import MixtureModel, em
from emkit.core.custom import LikelihoodDecreaseWarning
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
    with pytest.warns(ConvergenceWarning):
        one = em(linkage_e_step, linkage_m_step, 0.5, max_iter=1)
    assert one.theta == pytest.approx(59 / 97)


def test_max_iter_and_callback():
    seen = []
    with pytest.warns(ConvergenceWarning, match="did not converge in 4 iterations"):
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

    with pytest.warns(ConvergenceWarning):  # tol=0 never converges
        mine = em(e_step, m_step, (0.6, 0.5), tol=0, max_iter=10)
    model = MixtureModel([Binomial(10, 0.6), Binomial(10, 0.5)], fit_weights=False,
                         tol=0, max_iter=10)
    with pytest.warns(ConvergenceWarning):  # tol=0 never converges
        model.fit(heads[:, None])
    np.testing.assert_allclose(mine.theta, [c.p for c in model.components_], rtol=1e-12)
    np.testing.assert_allclose(mine.history, model.history_ * 5, rtol=1e-12)


def overshooting_m_step(hidden: float) -> float:
    """A faulty M-step: goes 1.9 times too far past the maximiser from 0.5 (kept in (0, 1))."""
    t = linkage_m_step(hidden)
    return min(max(t + 1.9 * (t - 0.5), 0.01), 0.99)


def test_correct_em_runs_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for accelerate in (False, True):
            assert em(linkage_e_step, linkage_m_step, 0.5, tol=1e-12,
                      accelerate=accelerate).converged


@pytest.mark.parametrize("accelerate", [False, True])
def test_a_falling_log_likelihood_warns_once_with_where_and_how_much(accelerate):
    with pytest.warns(LikelihoodDecreaseWarning) as caught:
        result = em(linkage_e_step, overshooting_m_step, 0.5, tol=1e-12, max_iter=50,
                    accelerate=accelerate)
    assert len([w for w in caught if w.category is LikelihoodDecreaseWarning]) == 1
    # Truth from the log-likelihood of theta0 and of one faulty step, computed by hand.
    first_fall = linkage_e_step(0.5)[1] - linkage_e_step(overshooting_m_step(25.0))[1]
    message = str(caught[0].message)
    assert "first at iteration 2" in message and f"(by {first_fall:.6g};" in message
    if not accelerate:  # every fall of the history beyond rounding is counted
        h = result.history
        falls = np.sum(h[1:] < h[:-1] - (1e-9 * np.abs(h[:-1]) + 1e-12))
        assert falls > 10 and f"fell after {falls} M-step(s)" in message


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_a_nan_log_likelihood_stops_naming_the_iteration():
    def beyond_one(hidden):  # a faulty M-step: t > 1, where log(1 - t) is NaN
        return (hidden + Y4) / (Y2 + Y3)

    with pytest.raises(
        FloatingPointError, match=r"NaN log-likelihood at iteration 2 .*returned at iteration 1"
    ):
        em(linkage_e_step, beyond_one, 0.5, max_iter=50)
    with pytest.raises(FloatingPointError, match=r"at iteration 1 \(for theta0\)"):
        em(lambda t: (t, np.nan), lambda s: s, 0.5)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_a_nan_at_a_rejected_jump_is_no_error():
    """A SQUAREM jump outside the model (here every jump, t = 1.5) is rejected, no fault."""
    def outside(vector):
        return 1.5

    result = em(linkage_e_step, linkage_m_step, 0.5, tol=1e-12, accelerate=True,
                flatten=np.atleast_1d, unflatten=outside)
    assert result.converged and result.theta == pytest.approx(MLE, abs=1e-7)
    assert np.isnan(linkage_e_step(1.5)[1])


def test_no_convergence_warns():
    with pytest.warns(ConvergenceWarning, match="did not converge in 3 iterations"):
        result = em(linkage_e_step, linkage_m_step, 0.5, max_iter=3)
    assert not result.converged


def test_public_names():
    assert emkit.em is em
    assert emkit.MixtureModel is MixtureModel
    assert emkit.distributions.Binomial is Binomial
