"""The compiled small-data EM loop (emkit.distributions.gaussian.small_em).

It must be the general engine's EM, iteration for iteration: the same number of
iterations, history and convergence flag, parameters to ~1e-10, the selection
table to ~1e-8 (the general path is forced with ``gaussian_mixture._SMALL_FIT``),
and mclust's fixed points from mclust's starts (``tests/reference/``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import emkit.estimators.gaussian_mixture as gaussian_mixture
from emkit import GaussianMixture, select_model
from emkit.datasets import load_faithful
from emkit.distributions.gaussian import small_em
from emkit.distributions.gaussian.covariance import (
    COVARIANCE_STRUCTURES,
    MCLUST_MODELS,
    DegenerateComponentError,
)
from emkit.distributions.gaussian.family import gaussian_from_resp

FAITHFUL = np.asarray(load_faithful(), dtype=float)
# A closed form, an iterative diagonal, shared and free orientations, and VVV.
SOME_MODELS = ("EII", "VEI", "EVE", "VVE", "EEV", "VVV")
REFERENCE = json.loads((Path(__file__).parent / "reference" / "mclust_models.json").read_text())


def _fit(X, fast, monkeypatch, **params):
    monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", fast)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(**params).fit(X)


def _assert_same_fit(fast, general, rtol=1e-10, param_rtol=None):
    assert fast.n_iter_ == general.n_iter_
    assert fast.converged_ == general.converged_
    np.testing.assert_allclose(fast.history_, general.history_, rtol=rtol, atol=0)
    assert fast.lower_bound_ == pytest.approx(general.lower_bound_, rel=rtol)
    param_rtol = rtol if param_rtol is None else param_rtol
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        ours, theirs = getattr(fast, name), getattr(general, name)
        assert ours.shape == theirs.shape, name
        np.testing.assert_allclose(ours, theirs, rtol=0,
                                   atol=param_rtol * np.abs(theirs).max(), err_msg=name)


# EVE's and VVE's warm M-steps stop after a few rotation sweeps, short of their inner
# optimum, so the loop's different order of summation (rounding) carries from one
# M-step to the next: log-likelihoods agree to ~1e-9, parameters to ~1e-6 after
# hundreds of iterations (the same iterations, the same fixed point).
SHARED_ORIENTATION = ("EVE", "VVE")


@pytest.mark.parametrize("model", [*MCLUST_MODELS, "E", "V"])
def test_compiled_loop_is_the_general_engine(model, monkeypatch, loop_runs):
    # Old Faithful (one column for mclust's univariate E and V), K = 1..4 from the hc
    # start, run to selection's tolerance: the same iterations and fixed points.
    X = FAITHFUL[:, :1] if model in ("E", "V") else FAITHFUL
    for k in range(1, 5):
        params = {"n_components": k, "covariance_type": model, "init_params": "hc",
                  "tol": 1e-5, "max_iter": 500}
        fast = _fit(X, True, monkeypatch, **params)
        assert loop_runs == [True], (model, k)  # the fit did take the compiled loop
        general = _fit(X, False, monkeypatch, **params)
        assert loop_runs == [True], (model, k)  # and the general path did not
        loop_runs.clear()
        if model in SHARED_ORIENTATION:
            _assert_same_fit(fast, general, rtol=1e-8, param_rtol=1e-5)
        else:
            _assert_same_fit(fast, general)


def test_compiled_loop_is_the_general_engine_in_six_dimensions(monkeypatch, loop_runs):
    # Banknote-like data, D = 6: the shared orientation (EVE, VVE) and eigen-based
    # models (EEV, VEV) on a larger orientation; a few random starts.
    rng = np.random.default_rng(3)
    A = rng.normal(size=(6, 6))
    X = np.vstack([rng.normal(size=(120, 6)) @ A, rng.normal(2, 1, size=(80, 6)) @ A.T])
    for model in ("EVE", "VVE", "EEV", "VEV", "VEE", "EVV", "VEI"):
        params = {"n_components": 3, "covariance_type": model, "init_params": "kmeans",
                  "random_state": 1, "tol": 1e-5, "max_iter": 300}
        fast = _fit(X, True, monkeypatch, **params)
        general = _fit(X, False, monkeypatch, **params)
        if model in SHARED_ORIENTATION:
            # Six columns: 15 rotation pairs a sweep, each kept only where it lowers the
            # objective; rounding tips a few of those choices in the first warm M-steps.
            _assert_same_fit(fast, general, rtol=1e-6, param_rtol=1e-4)
        else:
            _assert_same_fit(fast, general, rtol=1e-9)
    assert loop_runs and all(loop_runs)


def test_selection_is_the_general_paths(monkeypatch, loop_runs):
    frame = pd.DataFrame(FAITHFUL, columns=["eruptions", "waiting"])
    results = []
    for fast in (True, False):
        monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", fast)
        results.append(select_model(frame, range(1, 4), SOME_MODELS))
    fast, general = results
    # Every fit of the first selection (18 candidates, then the nested starts' refits),
    # none of the second.
    assert len(loop_runs) > 18 and all(loop_runs)
    # One-component candidates tie (the models coincide): compare in a fixed order.
    ours, theirs = (result.table.sort_values(["model", "n_components"]).reset_index(drop=True)
                    for result in results)
    scores = ["bic", "aic", "icl", "log_likelihood"]
    pd.testing.assert_frame_equal(ours.drop(columns=scores), theirs.drop(columns=scores))
    for column in scores:
        np.testing.assert_allclose(ours[column], theirs[column], rtol=1e-8, err_msg=column)
    _assert_same_fit(fast.best_estimator, general.best_estimator)
    assert list(fast.best_estimator.feature_names_in_) == ["eruptions", "waiting"]
    # The table's scores are the estimator's own.
    best = fast.best_estimator
    row = fast.table.iloc[0]
    assert row["bic"] == pytest.approx(best.bic(frame), rel=1e-10)
    assert row["aic"] == pytest.approx(best.aic(frame), rel=1e-10)


def test_selection_keeps_skipped_and_degenerate_rows(monkeypatch):
    # Few rows: large K are skipped (listed, not fitted); repeated values collapse.
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(12, 2)), np.zeros((4, 2))]
    tables = []
    for fast in (True, False):
        monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", fast)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tables.append(select_model(X, range(1, 7), ("VVV", "EII", "VVI")).table)
    fast, general = (table.sort_values(["model", "n_components"]).reset_index(drop=True)
                     for table in tables)
    assert fast["skipped"].any() and fast["degenerate"].any()
    pd.testing.assert_frame_equal(fast[["n_components", "model", "skipped", "degenerate",
                                        "note", "converged"]],
                                  general[["n_components", "model", "skipped", "degenerate",
                                           "note", "converged"]])
    np.testing.assert_allclose(fast["bic"], general["bic"], rtol=1e-8)


def test_a_collapse_inside_the_loop_raises_as_the_engine_does(monkeypatch, loop_runs):
    # Component 0 starts on five repeated zeros, every other row ~100 sd away: its
    # responsibilities there underflow to 0, so its variance is exactly 0 after one
    # M-step (reg_covar=0). The loop gives up; the engine raises the usual error.
    rng = np.random.default_rng(0)
    X = np.r_[np.zeros(5), rng.normal(10, 1, 100)][:, None]
    params = {"n_components": 2, "covariance_type": "V", "reg_covar": 0.0,
              "weights_init": [0.05, 0.95], "means_init": [[0.0], [10.0]],
              "precisions_init": [100.0, 1.0]}
    messages = []
    for fast in (True, False):
        monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", fast)
        with pytest.raises(DegenerateComponentError) as error:
            GaussianMixture(**params).fit(X)
        messages.append(str(error.value))
    assert loop_runs == [False]
    assert messages[0] == messages[1]


# (A prior's MAP EM and a noise component take the loop: tests/test_compiled_prior.py,
# tests/test_compiled_noise.py.)
@pytest.mark.parametrize(("case", "why"), [
    ({"accelerate": True}, "acceleration"),
    ({"algorithm": "hard"}, "hard EM"),
    ({"params": "wc"}, "frozen means"),
    ({"callback": lambda *args: None}, "callback"),
])
def test_other_fits_take_the_general_engine(case, why, loop_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(2, random_state=0, **case).fit(FAITHFUL)
    assert loop_runs == [], why


def test_streamed_fits_take_the_general_engine(tmp_path, loop_runs):
    # A file source's fit starts from an in-memory sample; the loop must not fit the sample.
    from emkit.data import sources

    path = tmp_path / "faithful.npy"
    np.save(path, FAITHFUL)
    streamed = GaussianMixture(2, covariance_type="VEV", random_state=0).fit(sources.open(path))
    assert loop_runs == []
    assert streamed.n_samples_seen_ == len(FAITHFUL)


def test_univariate_models_on_two_features_are_refused_as_before(loop_runs):
    with pytest.raises(ValueError, match="'V' is mclust's model for one feature"):
        GaussianMixture(2, covariance_type="V").fit(FAITHFUL)
    assert loop_runs == []


def test_weights_gaps_and_float32_take_the_general_engine(loop_runs):
    gappy = FAITHFUL.copy()
    gappy[3, 1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(2, random_state=0).fit(FAITHFUL, sample_weight=np.ones(len(FAITHFUL)))
        GaussianMixture(2, random_state=0).fit(gappy)
        GaussianMixture(2, random_state=0).fit(FAITHFUL.astype(np.float32))
    assert loop_runs == []
    GaussianMixture(2, random_state=0).fit(FAITHFUL)
    assert loop_runs == [True]


def test_final_scores_are_the_estimators(monkeypatch):
    monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", True)
    gm = GaussianMixture(3, covariance_type="VEV", init_params="hc").fit(FAITHFUL)
    log_lik, entropy = small_em.final_scores(FAITHFUL, gm.weights_, gm.means_,
                                             gm.precisions_cholesky_,
                                             COVARIANCE_STRUCTURES["VEV"])
    assert log_lik == pytest.approx(gm.score(FAITHFUL) * len(FAITHFUL), rel=1e-12)
    resp = gm.predict_proba(FAITHFUL)
    assert entropy == pytest.approx(-np.sum(resp * np.log(resp)), rel=1e-10)


MODEL_CASES = [(i, fit["model"]) for i, case in enumerate(REFERENCE["cases"])
               for fit in case["fits"]]


@pytest.mark.parametrize(("index", "model"), MODEL_CASES,
                         ids=[f"{REFERENCE['cases'][i]['data']}-{REFERENCE['cases'][i]['G']}-{m}"
                              for i, m in MODEL_CASES])
def test_compiled_loop_reaches_mclusts_fixed_points(index, model, loop_runs):
    # mclust's me() from a saved hard partition, run to its fixed point
    # (tests/reference/mclust_models.R): the compiled loop from the same start.
    case = REFERENCE["cases"][index]
    X = np.asarray(REFERENCE["data"][case["data"]], dtype=float)
    G, partition = case["G"], np.asarray(case["partition"]) - 1
    ref = next(f for f in case["fits"] if f["model"] == model)
    structure = COVARIANCE_STRUCTURES[model]
    resp = np.eye(G)[partition]
    start = gaussian_from_resp(structure, X, resp, 0.0)
    gm = GaussianMixture(G, covariance_type=model, reg_covar=0.0, tol=1e-13, max_iter=20000,
                         weights_init=resp.mean(axis=0), means_init=start.means,
                         precisions_init=structure.precisions(start.precisions_cholesky))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    assert loop_runs == [True]
    loglik = gm.score(X) * X.shape[0]
    if model == "VVE":  # mclust's VVE stops short of its fixed point; EM climbs on
        assert loglik > ref["loglik"] + 0.1
    else:
        assert loglik == pytest.approx(ref["loglik"], rel=1e-8)
        assert -gm.bic(X) == pytest.approx(ref["bic"], rel=1e-8)


def test_a_selections_choice_is_an_estimator_that_refits_to_itself():
    # Wine's first five columns: VVE,3 wins from the EVE fit's start (a nested start).
    # The selection's compiled fits make no estimator; the chosen one is built at the
    # end, with its start as *_init, so fitting it again ends where the selection did.
    from sklearn.base import clone
    from sklearn.datasets import load_wine

    X = load_wine().data[:, :5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = select_model(X, range(1, 5), ("EVE", "VVE", "EEE", "VVV"))
    best, row = result.best_estimator, result.table.iloc[0]
    assert (row["model"], row["n_components"], row["start"]) == ("VVE", 3, "EVE fit")
    assert best.weights_init is not None and best.precisions_init is not None
    again = clone(best).fit(X)
    assert again.n_iter_ == best.n_iter_
    assert again.lower_bound_ == pytest.approx(best.lower_bound_, rel=1e-10)
    np.testing.assert_allclose(again.means_, best.means_, rtol=1e-6)
    assert row["bic"] == pytest.approx(best.bic(X), rel=1e-10)
    assert best.n_samples_seen_ == len(X) and best.n_features_in_ == 5
    assert not row["degenerate"] and gaussian_mixture.degenerate_components(best, len(X)) == []


def test_the_cheap_collapse_bound_agrees_with_the_eigenvalues(monkeypatch):
    # degeneracy_reasons skips the eigenvalues where a bound shows no collapse; on fits
    # with and without collapsed components (repeated rows, reg_covar floors) it must
    # flag exactly what the eigenvalues alone flag.
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(size=(60, 3)) * [1, 10, 0.1], np.tile([[5.0, 5.0, 5.0]], (6, 1))]
    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model in ("EII", "VII", "VVI", "EEE", "VEV", "VVV"):
            for k in (2, 4, 6):
                for seed in range(3):
                    fits.append(GaussianMixture(k, covariance_type=model, random_state=seed,
                                                init_params="random_from_data").fit(X))
    with_bound = [gaussian_mixture.degeneracy_reasons(fit, len(X)) for fit in fits]
    bounded = [gaussian_mixture._clearly_not_collapsed(fit) for fit in fits]
    assert 0 < sum(bounded) < len(fits)  # the bound settles some fits, not all
    monkeypatch.setattr(gaussian_mixture, "_clearly_not_collapsed", lambda model: False)
    without = [gaussian_mixture.degeneracy_reasons(fit, len(X)) for fit in fits]
    assert with_bound == without
    assert any("collapsed" in reasons.values() for reasons in without)
    assert any(not reasons for reasons in without)


def test_two_names_of_one_model_both_get_nested_starts():
    # "full" and "VVV" are one model: each candidate of either name is started from
    # the nested fits too (the first name's candidates used to hide the second's).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = select_model(FAITHFUL, range(1, 4), ("full", "VVV", "tied")).table
    table = table.set_index(["covariance_type", "n_components"])
    for k in (2, 3):
        assert table.loc[("full", k), "start"] == table.loc[("VVV", k), "start"] == "EEE fit"
        assert table.loc[("full", k), "bic"] == pytest.approx(table.loc[("VVV", k), "bic"],
                                                              rel=1e-12)
