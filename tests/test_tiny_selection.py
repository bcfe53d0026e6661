"""A model selection's fixed costs per candidate, compiled: the same answers as before.

``select_model`` checks every candidate for collapsed components in one compiled
call (:func:`emkit.estimators.gaussian_mixture.collapsed_components`); it must flag
exactly what :func:`~emkit.estimators.gaussian_mixture.degeneracy_reasons` flags
from the eigenvalues (its eigenvalues from a compiled Jacobi routine, checked against
LAPACK's).
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


def test_jacobi_eigen_is_lapacks():
    # The collapse check's eigen-decomposition: graded (variances 1e-16 to 1e8), tied,
    # diagonal and zero matrices, against numpy's LAPACK eigh.
    from emkit.distributions.gaussian import small_em

    rng = np.random.default_rng(0)
    for d in (1, 2, 3, 6, 10):
        for trial in range(60):
            B = rng.normal(size=(d, d)) * 10.0 ** rng.uniform(-8, 4, size=d)
            A = B @ B.T
            if trial % 5 == 0:
                A = np.diag(rng.uniform(0, 1, d))
                A[0, 0] = A[-1, -1]
            if trial % 7 == 0:
                A = np.zeros((d, d))
            values, vectors = np.empty(d), np.empty((d, d))
            small_em._jacobi_eigen(A, values, vectors, np.empty((d, d)))
            size = max(np.abs(A).max(), 1e-300)
            np.testing.assert_allclose(np.sort(values), np.linalg.eigvalsh(A), rtol=0,
                                       atol=1e-13 * size)
            np.testing.assert_allclose(vectors.T @ vectors, np.eye(d), rtol=0, atol=1e-13)
            np.testing.assert_allclose(vectors @ np.diag(values) @ vectors.T, A, rtol=0,
                                       atol=1e-13 * size)


def _collapsing_fit(stop: bool, max_iter: int = 1000) -> GaussianMixture:
    # Component 0 starts narrow on four repeated rows: it collapses onto them, and EM then
    # climbs the collapse's unbounded likelihood for about a hundred iterations.
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(40, 2)), np.zeros((4, 2))]
    model = GaussianMixture(3, weights_init=[0.1, 0.45, 0.45],
                            means_init=[[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0]],
                            precisions_init=np.array([np.eye(2) * 1e2, np.eye(2), np.eye(2)]),
                            tol=1e-10, max_iter=max_iter)
    model._stop_when_collapsed = stop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X)


@pytest.mark.parametrize("fast", [True, False])
def test_a_candidates_run_ends_at_the_first_collapsed_m_step(fast, monkeypatch):
    # A model selection's runs (the private flag) end once a component is collapsed (a
    # spurious maximum the selection lists but never chooses), the compiled loop and the
    # engine at the same M-step; a plain fit runs on to convergence.
    monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", fast)
    plain, stopped = _collapsing_fit(False), _collapsing_fit(True)
    assert plain.converged_ and plain.n_iter_ > 50
    assert not stopped.converged_ and stopped.n_iter_ < 10
    assert gaussian_mixture.degeneracy_reasons(stopped) == {0: "collapsed"}
    # The first such M-step: one iteration fewer is not collapsed yet.
    before = _collapsing_fit(False, max_iter=stopped.n_iter_ - 1)
    assert gaussian_mixture.degeneracy_reasons(before) == {}
    # Until it, the same iterations as the plain fit's.
    np.testing.assert_allclose(stopped.history_, plain.history_[:stopped.n_iter_], rtol=1e-12)
    monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", not fast)
    other = _collapsing_fit(True)
    assert other.n_iter_ == stopped.n_iter_
    np.testing.assert_allclose(other.means_, stopped.means_, rtol=1e-9, atol=1e-12)


def test_a_selection_hands_back_an_estimator_that_refits_as_any_other(monkeypatch):
    # The general path's candidates are estimators: the chosen one refits in full.
    from emkit import select_model

    monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", False)
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(40, 2)), np.zeros((4, 2))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = select_model(X, range(1, 4), ("VVV", "EII"))
    assert result.best_estimator._stop_when_collapsed is False


@pytest.mark.parametrize("model", ["VII", "VVI", "VEV", "VVV"])
def test_a_compiled_fits_own_collapse_flags_are_the_stand_alone_checks(model):
    # run_dense's final scoring call also flags collapsed components (what a selection
    # reads); they must be collapsed_components' on the same parameters, collapsed or not.
    from emkit.distributions.gaussian import small_em
    from emkit.estimators.gaussian_mixture import collapse_test

    layout, factor, relative = collapse_test(model)
    clean = np.random.default_rng(3).normal(size=(40, 3)) * [1, 5, 0.5]
    # Five repeated rows that start in one component: it collapses onto them.
    datasets = [(clean, 0), (np.r_[clean, np.tile([[4.0, 4.0, 4.0]], (5, 1))], 5)]
    starts = [(X, k, seed, repeated) for X, repeated in datasets for k in (2, 3, 5)
              for seed in range(4)]
    flagged = seen = 0
    for X, k, seed, repeated in starts:
        resp = np.eye(k)[np.random.default_rng(seed).integers(0, k, len(X))]
        resp[len(X) - repeated:] = np.eye(k)[0]
        start = small_em.start_dense(model, X, resp, 1e-6)
        if start is None:
            continue
        weights = resp.mean(axis=0) + 1e-12
        fit = small_em.run_dense(X, weights / weights.sum(), *start, model, 1e-6, tol=1e-5,
                                 max_iter=200, scores=True,
                                 stop_collapsed=(layout, factor, relative))
        if fit is None:
            continue
        alone = small_em.collapsed_components(fit.weights, fit.means, fit.covariances,
                                              fit.precisions_cholesky, layout, 1e-6, factor,
                                              relative)
        assert fit.collapsed.tolist() == alone.tolist(), (model, k, seed, repeated)
        flagged += bool(alone.any())
        seen += 1
    assert 0 < flagged < seen  # both outcomes were seen
