"""The Geometric family (the worked example of docs/design.md) against scipy.stats."""

import numpy as np
import pytest
import scipy.stats as ss
from scipy.optimize import minimize_scalar

from emkit import MixtureModel, load, save
from emkit.distributions import Geometric, from_spec, to_spec


def test_log_prob_matches_scipy_geom_shifted_to_failures():
    rng = np.random.default_rng(0)
    p = np.array([0.2, 0.7, 1.0])
    X = rng.integers(0, 12, size=(50, 3)).astype(float)
    X[:, 2] = 0.0  # p = 1: all mass at 0
    X[3, 1] = np.nan  # a missing entry contributes nothing
    expected = ss.geom.logpmf(X, p, loc=-1)
    expected = np.where(np.isnan(X), 0.0, expected).sum(axis=1)
    np.testing.assert_allclose(Geometric(p).log_prob(X), expected, rtol=1e-12)


def test_weighted_m_step_is_the_closed_form_and_maximises_scipy_likelihood():
    rng = np.random.default_rng(1)
    x = rng.geometric(0.3, size=200) - 1.0
    w = rng.uniform(0.1, 2.0, size=200)
    fitted = Geometric(0.5).fit(x[:, None], w).p[0]
    assert fitted == pytest.approx(w.sum() / (w.sum() + w @ x), rel=1e-12)
    best = minimize_scalar(lambda q: -(w @ ss.geom.logpmf(x, q, loc=-1)),
                           bounds=(1e-6, 1 - 1e-6), method="bounded",
                           options={"xatol": 1e-10})
    assert fitted == pytest.approx(best.x, abs=1e-6)


def test_checks_and_sampling():
    with pytest.raises(ValueError, match="row 1, column 0: geometric counts"):
        Geometric(0.5).fit(np.array([[1.0], [2.5]]))
    with pytest.raises(ValueError, match="p must be above 0"):
        Geometric(0.0)
    draws = Geometric([0.25]).sample(20_000, np.random.default_rng(2))
    assert draws.min() == 0 and draws.mean() == pytest.approx(3.0, rel=0.05)
    assert from_spec(to_spec(Geometric([0.25, 0.5]))).p.tolist() == [0.25, 0.5]


@pytest.mark.parametrize("accelerate", [False, True])
def test_mixture_of_two_geometrics_recovers_them_and_round_trips(tmp_path, accelerate):
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.geometric(0.6, 1500), rng.geometric(0.08, 1500)])[:, None] - 1.0
    model = MixtureModel([Geometric(0.5), Geometric(0.2)], tol=1e-10, max_iter=500,
                         accelerate=accelerate).fit(X)
    ps = sorted(float(c.p[0]) for c in model.components_)
    assert ps == pytest.approx([0.08, 0.6], rel=0.1)
    again = load(save(model, tmp_path / "geometric.npz"))
    np.testing.assert_allclose(again.score_samples(X), model.score_samples(X))
