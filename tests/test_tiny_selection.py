"""A model selection's fixed costs per candidate, compiled: the same answers as before.

``select_model`` checks every candidate for collapsed components in one compiled
call (:func:`emkit.estimators.gaussian_mixture.collapsed_components`); it must flag
exactly what :func:`~emkit.estimators.gaussian_mixture.degeneracy_reasons` flags
from the eigenvalues.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import emkit.estimators.gaussian_mixture as gaussian_mixture
from emkit import GaussianMixture
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES


def _dense(fit, name):
    k, d = fit.means_.shape
    structure = COVARIANCE_STRUCTURES[fit.covariance_type]
    return np.asarray(structure.dense(getattr(fit, name), k, d), dtype=float)


@pytest.mark.parametrize("model", ["EII", "VII", "EEI", "VVI", "EEE", "VEV", "VVV",
                                   "spherical", "diag", "tied", "full"])
def test_compiled_collapse_check_is_degeneracy_reasons(model, monkeypatch):
    # Rows with repeated values (collapses at the reg_covar floor), features on scales
    # 0.1 to 10 (small variances that are not collapses), random starts.
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(size=(60, 3)) * [1, 10, 0.1], np.tile([[5.0, 5.0, 5.0]], (6, 1))]
    flagged = 0
    # Without the cheap bound: every fit's eigenvalues decide, on both sides.
    for k in (2, 4, 6):
        for seed in range(3):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = GaussianMixture(k, covariance_type=model, random_state=seed,
                                      init_params="random_from_data").fit(X)
            expected = sorted(i for i, why in gaussian_mixture.degeneracy_reasons(fit).items()
                              if why == "collapsed")
            ours = gaussian_mixture.collapsed_components(
                fit.weights_, fit.means_, _dense(fit, "covariances_"),
                _dense(fit, "precisions_cholesky_"), model, fit.reg_covar)
            assert np.flatnonzero(ours).tolist() == expected, (model, k, seed)
            flagged += bool(expected)
    # The repeated rows collapse a component wherever its variances are its own (one
    # shared covariance cannot collapse onto six rows of sixty-six).
    assert bool(flagged) == (model not in ("EII", "EEI", "EEE", "tied"))
