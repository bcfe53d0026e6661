"""select_model lists a candidate whose fit raises (criteria NaN, as mclust's NA) and goes on."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from emkit import GaussianMixture, select_model
from emkit.distributions.gaussian.covariance import DegenerateComponentError
from emkit.estimators import gaussian_mixture

# The models of equal volume: with reg_covar=0 they fit the data below at every K.
EQUAL_VOLUME = ("EII", "EEI", "EVI", "EEE", "EVE", "EEV", "EVV")
VARIABLE_VOLUME = ("VII", "VEI", "VVI", "VEE", "VVE", "VEV", "VVV")


def _repeated_rows() -> np.ndarray:
    # Two groups of identical rows: a component on one has a zero scatter, singular
    # without reg_covar (the variable-volume models give it one from K = 3 on).
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(size=(40, 2)), np.repeat([[5.0, 5.0]], 8, axis=0),
                      np.repeat([[-4.0, 3.0]], 6, axis=0)])


def _select(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return select_model(*args, **kwargs)


def _failed(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["note"].str.startswith("fit failed: ")]


def test_the_failing_fits_raise_on_their_own():
    # The independent truth for the tests below: these candidates' own fits raise.
    X = _repeated_rows()
    for model in ("VVV", "VEI", "VEE", "EVI"):  # the last three divided by zero before
        with pytest.raises(DegenerateComponentError, match="ill-defined covariance"), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the log of a zero variance, on the way
            GaussianMixture(3, covariance_type=model, init_params="hc", reg_covar=0).fit(X)


@pytest.mark.parametrize("compiled", [True, False])
def test_failed_candidates_are_listed_never_chosen_and_leave_the_others_as_they_are(
        compiled, monkeypatch):
    monkeypatch.setattr(gaussian_mixture, "_SMALL_FIT", compiled)
    X = _repeated_rows()
    rows = []
    result = _select(X, [3, 4], "all", reg_covar=0, progress=rows.append)
    table = result.table
    assert len(rows) == len(table) == 28  # progress: once per candidate, failed ones too
    failed = _failed(table)
    assert set(failed["model"]) == set(VARIABLE_VOLUME)
    assert len(failed) == 14
    assert failed[["bic", "aic", "icl", "log_likelihood"]].isna().all().all()
    assert failed["degenerate"].all() and not failed["skipped"].any()
    assert not failed["converged"].any()
    assert failed["note"].str.contains("ill-defined covariance").all()
    assert result.mclust_bic()[list(VARIABLE_VOLUME)].isna().all().all()  # mclust's NA
    assert result.best_estimator.covariance_type in EQUAL_VOLUME
    # Nested starts skipped them: no row started from a failed model's fit.
    starts = table.loc[table["start"].str.endswith(" fit"), "start"]
    assert not starts.str.removesuffix(" fit").isin(VARIABLE_VOLUME).any()
    # A failed hc fit (EVI's, above) that a nested model's fit starts well is replaced.
    evi = table[(table["model"] == "EVI") & (table["n_components"] == 3)].iloc[0]
    assert evi["start"] == "EEI fit" and np.isfinite(evi["bic"]) and not evi["degenerate"]
    # The other rows are those of a selection that never asked for the failing models.
    alone = _select(X, [3, 4], EQUAL_VOLUME, reg_covar=0).table
    pd.testing.assert_frame_equal(table[~table.index.isin(failed.index)].reset_index(drop=True),
                                  alone)


def test_a_selection_where_every_fit_fails_says_why():
    with pytest.raises(ValueError, match=r"every candidate's fit failed.*ill-defined covariance"):
        _select(_repeated_rows(), [3, 4], ("VVV", "VII"), reg_covar=0)


def test_failed_candidates_come_back_from_parallel_workers():
    # With n_jobs the failures are caught in the workers and listed the same way.
    from joblib import parallel_config

    X = _repeated_rows()
    serial = _select(X, [2, 3], ("VVV", "EEE"), reg_covar=0)
    with parallel_config(backend="threading"):
        parallel = _select(X, [2, 3], ("VVV", "EEE"), reg_covar=0, n_jobs=2)
    pd.testing.assert_frame_equal(serial.table, parallel.table)
    assert _failed(parallel.table)["model"].tolist() == ["VVV"]


def test_a_univariate_model_for_several_features_is_refused_not_listed():
    # A wrong choice raises at once (as the fit would), rather than failing one candidate.
    with pytest.raises(ValueError, match=r"\['E'\] are mclust's models for one feature; the "
                                         "data have 2"):
        _select(_repeated_rows(), [1, 2], ("E", "VVV"))


def test_with_several_starts_a_failing_hc_start_leaves_the_k_means_starts(monkeypatch):
    # n_init > 1: the hc start's fit, then n_init - 1 k-means starts. Where the hc start's
    # fit raises, the k-means starts' fit is the candidate's; where every start raises,
    # the candidate is listed as failed with the hc start's reason.
    from emkit.estimators import selection

    real = selection._fit_candidate_estimator
    failing = {"hc"}

    def fit(model, chosen):
        if model.init_params in failing:
            raise DegenerateComponentError(f"the {model.init_params} start broke down")
        return real(model, chosen)

    monkeypatch.setattr(selection, "_fit_candidate_estimator", fit)
    X = _repeated_rows()[:40]
    table = _select(X, [2], ("VVV",), n_init=3, random_state=0).table
    reference = GaussianMixture(2, init_params="kmeans", n_init=2, random_state=0, tol=1e-5,
                                max_iter=500).fit(X)  # (select_model's tol and max_iter)
    assert not table["degenerate"].iloc[0]
    assert table["log_likelihood"].iloc[0] == pytest.approx(reference.score(X) * 40, rel=1e-9)
    assert table["start"].iloc[0] == "kmeans"  # the start whose fit is listed
    failing.add("kmeans")
    with pytest.raises(ValueError, match=r"every candidate's fit failed; .*the hc start broke"):
        _select(X, [2], ("VVV",), n_init=3, random_state=0)


def test_the_start_column_names_the_start_whose_fit_won():
    # n_init > 1 adds k-means starts to the hc start: the table says which one won, and
    # its fit is that start's (as GaussianMixture's own fits from either start).
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(load_wine().data[:, :4])
    table = _select(X, range(2, 6), ("VVV", "VVI"), n_init=4, random_state=0).table
    assert set(table["start"]) <= {"hc", "kmeans", "VVI fit"}
    for row in table.itertuples():
        if row.start not in ("hc", "kmeans"):
            continue
        settings = ({"init_params": "hc"} if row.start == "hc"
                    else {"init_params": "kmeans", "n_init": 3})
        alone = GaussianMixture(row.n_components, covariance_type=row.covariance_type,
                                random_state=0, tol=1e-5, max_iter=500, **settings).fit(X)
        assert row.log_likelihood == pytest.approx(alone.score(X) * len(X), rel=1e-8), row
    assert {"hc", "kmeans"} <= set(table["start"])  # both won somewhere
