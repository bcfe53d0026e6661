"""EEV's and VEV's orientations: each component's scatter eigenvectors, as mclust takes them.

Their M-step (Celeux & Govaert 1995) turns each component's covariance to the
eigenvectors of its scatter ``W_k``. A component of one row has a scatter of zero,
or only what other rows' tiny responsibilities add: any orientation is then an
optimum of the M-step, and which one EM takes decides where it ends (on mclust's
EuroUnemployment, EEV at K = 7 ends 36 BIC lower from another). Pinned here: tied
eigenvalues keep the axes' order (mclust's SVD of a zero matrix), ``reg_covar``
does not round a small scatter's orientation away (it shifts the eigenvalues), and
a start's one-row component has exactly zero scatter (its mean is its row).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emkit import GaussianMixture
from emkit.distributions.gaussian import constrained, small_em
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.distributions.gaussian.family import gaussian_from_resp

COUNTS = np.array([1.0, 6.0])
# Component 1's scatter: eigenvalues 9, 4, 1 along a rotated basis.
_BASIS = np.linalg.qr(np.array([[1.0, 2.0, 0.5], [0.0, 1.0, 3.0], [2.0, 0.0, 1.0]]))[0]
SPREAD = _BASIS @ np.diag([9.0, 4.0, 1.0]) @ _BASIS.T


def _scatters(first: np.ndarray) -> np.ndarray:
    return np.stack([first, SPREAD])


def _loop(model: str, W: np.ndarray, reg_covar: float) -> np.ndarray:
    """The compiled loop's M-step for EEV or VEV on the same scatters."""
    code = small_em._MODEL_CODES[model]
    return small_em._eigen_model(code, COUNTS, W.copy(), reg_covar, constrained.INNER_TOL,
                                 constrained.INNER_MAX_ITER)


@pytest.mark.parametrize("model", ["EEV", "VEV"])
def test_a_zero_scatter_takes_the_axes_in_order(model):
    # Every orientation is an optimum for a component with W_k = 0; mclust's SVD leaves
    # the axes as they are, the largest variance on the first. (eigh(W) reversed put it
    # on the last.) VEV needs reg_covar here: the component's own volume is its scatter's.
    for reg_covar in (1e-6,) if model == "VEV" else (0.0, 1e-6):
        covariances = constrained.full(model, COUNTS, _scatters(np.zeros((3, 3))),
                                       reg_covar=reg_covar)
        first = covariances[0]
        np.testing.assert_allclose(first, np.diag(np.diag(first)), rtol=0, atol=1e-15)
        assert np.all(np.diff(np.diag(first)) < 0)  # largest first
        np.testing.assert_allclose(_loop(model, _scatters(np.zeros((3, 3))), reg_covar),
                                   covariances, rtol=1e-12)


@pytest.mark.parametrize("model", ["EEV", "VEV"])
def test_reg_covar_keeps_a_tiny_scatters_orientation(model):
    # A one-row component's scatter from other rows' responsibilities of ~1e-20: its
    # eigenvectors orient the component (mclust's EM grows it along them). Added to
    # W_k first, n_k * reg_covar (1e-6) would round them away.
    direction = np.array([1.0, 2.0, 2.0]) / 3.0
    tiny = 1e-20 * np.outer(direction, direction)
    for reg_covar in (0.0, 1e-6):
        for covariances in (constrained.full(model, COUNTS, _scatters(tiny),
                                             reg_covar=reg_covar),
                            _loop(model, _scatters(tiny), reg_covar)):
            values, vectors = np.linalg.eigh(covariances[0])
            assert abs(vectors[:, -1] @ direction) == pytest.approx(1.0, abs=1e-12)
            assert values[-1] > 2 * values[-2]  # the common shape's largest axis there


def test_reg_covar_on_the_eigenvalues_is_reg_covar_on_the_scatter():
    # Where nothing is rounded away (well-spread scatters), the covariances are those of
    # reg_covar added to W_k, as before: EEV's exactly Sigma + reg_covar I.
    spread = _BASIS.T @ np.diag([2.0, 1.0, 0.5]) @ _BASIS
    W = _scatters(spread)
    shifted = W + (COUNTS * 1e-3)[:, None, None] * np.eye(3)
    for model in ("EEV", "VEV"):
        ours = constrained.full(model, COUNTS, W, reg_covar=1e-3)
        np.testing.assert_allclose(ours, constrained.full(model, COUNTS, shifted), rtol=1e-12)
        np.testing.assert_allclose(_loop(model, W, 1e-3), ours, rtol=1e-12)
    np.testing.assert_allclose(constrained.full("EEV", COUNTS, W, reg_covar=1e-3),
                               constrained.full("EEV", COUNTS, W) + 1e-3 * np.eye(3),
                               rtol=1e-12)


def test_a_one_row_component_starts_at_its_row_with_zero_scatter():
    # Means from counts + 10 eps sat 10 eps off the row: a rank-one scatter of ~1e-30
    # along the row itself, which EEV took as the component's orientation.
    rng = np.random.default_rng(0)
    X = np.ascontiguousarray(rng.normal(size=(12, 3)) * [10.0, 3.0, 1.0] + 50.0)
    labels = np.r_[np.zeros(11, int), 1]
    resp = np.eye(2)[labels]
    means, covariances, _ = small_em.start_dense("EEV", X, resp, 0.0)
    assert np.array_equal(means[1], X[11])
    # Its covariance is the common shape on the axes, in order (a zero scatter).
    np.testing.assert_allclose(covariances[1], np.diag(np.diag(covariances[1])), atol=1e-14)
    general = gaussian_from_resp(COVARIANCE_STRUCTURES["EEV"], X, resp, 0.0)
    assert np.array_equal(general.means[1], X[11])
    np.testing.assert_allclose(general.covariances, covariances, rtol=1e-12)


REFERENCE = json.loads((Path(__file__).parent / "reference" / "mclust_hc.json").read_text())
EURO = next(case for case in REFERENCE["cases"] if case["data"] == "EuroUnemployment")


# emkit flags the components of one row (a warning); mclust reports the fit as it is.
@pytest.mark.filterwarnings("ignore::emkit.estimators.gaussian_mixture.DegenerateFitWarning")
@pytest.mark.parametrize("k", [7, 8, 9])
def test_eev_from_mclusts_start_ends_at_mclusts_fit(k):
    # tests/reference/mclust_hc.R: mclustBIC's EEV at K = 7..9 on EuroUnemployment
    # (31 rows), fits with components of one or two rows. Before, 36.1, 20.8 and 3.2
    # lower from the same start.
    X = np.asarray(EURO["X"], dtype=float)
    theirs = np.asarray(EURO["bic"], dtype=float)[k - 1, EURO["models"].index("EEV")]
    model = GaussianMixture(k, covariance_type="EEV", init_params="hc", tol=1e-5,
                            max_iter=500).fit(X)
    assert -model.bic(X) == pytest.approx(theirs, abs=0.01)
