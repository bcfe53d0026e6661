"""RegressionMixture against closed forms, scikit-learn, flexmix fixtures and EM's invariants."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, PoissonRegressor

import emkit
from emkit import RegressionMixture
from emkit.core.engine import expected_stats
from emkit.data.sources import ArraySource
from emkit.distributions.regression import GaussianRegression, combine_r, solve_r, weighted_r

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def npreg():
    data = np.genfromtxt(REFERENCE / "npreg.csv", delimiter=",", names=True)
    expected = json.loads((REFERENCE / "flexmix_npreg.json").read_text())
    return data, expected


def _two_lines(n=600, seed=0, apart=False):
    """Two lines, crossing at x = 7/3 unless ``apart`` (then 9 units, 18 sigma, apart)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    labels = (rng.random(n) < 0.4).astype(int)
    y = np.where(labels == 1, 1 + 2 * x, (40 if apart else 8) - x) + rng.normal(0, 0.5, n)
    return x[:, None], y, labels


# ------------------------------------------------------------------ one component


def test_one_gaussian_component_is_ordinary_least_squares():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    y = X @ [1.0, -2.0, 0.5] + 3 + rng.normal(size=300)
    model = RegressionMixture(1, n_init=1, tol=1e-12).fit(X, y)
    ols = LinearRegression().fit(X, y)
    np.testing.assert_allclose(model.coef_[0], ols.coef_, rtol=1e-10)
    np.testing.assert_allclose(model.intercept_[0], ols.intercept_, rtol=1e-10)
    residual = y - ols.predict(X)
    np.testing.assert_allclose(model.scale_[0], np.sqrt(np.mean(residual**2)), rtol=1e-10)
    # Closed-form Gaussian log-likelihood at the MLE: -n/2 (log(2 pi s^2) + 1).
    s2 = np.mean(residual**2)
    np.testing.assert_allclose(model.score(X, y), -0.5 * (np.log(2 * np.pi * s2) + 1), rtol=1e-10)


def test_one_gaussian_component_with_sample_weights_is_weighted_least_squares():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 2))
    y = X @ [1.0, 2.0] + rng.normal(size=200)
    w = rng.uniform(0.1, 3.0, 200)
    model = RegressionMixture(1, n_init=1).fit(X, y, sample_weight=w)
    ols = LinearRegression().fit(X, y, sample_weight=w)
    np.testing.assert_allclose(model.coef_[0], ols.coef_, rtol=1e-10)
    # Integer weights are frequency weights: the same fit as repeated rows.
    counts = rng.integers(0, 4, 200)
    weighted = RegressionMixture(1, n_init=1).fit(X, y, sample_weight=counts)
    repeated = RegressionMixture(1, n_init=1).fit(np.repeat(X, counts, 0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-10)
    np.testing.assert_allclose(weighted.scale_, repeated.scale_, rtol=1e-10)


def test_one_poisson_component_is_poisson_regression():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    y = rng.poisson(np.exp(0.5 + X @ [0.3, -0.6])).astype(float)
    model = RegressionMixture(1, family="poisson", n_init=1, tol=1e-12).fit(X, y)
    peer = PoissonRegressor(alpha=0, tol=1e-12, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(model.coef_[0], peer.coef_, rtol=1e-6)
    np.testing.assert_allclose(model.intercept_[0], peer.intercept_, rtol=1e-6)


def test_one_binomial_component_is_logistic_regression():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 2))
    y = (rng.random(400) < 1 / (1 + np.exp(-(0.2 + X @ [1.0, -1.5])))).astype(float)
    model = RegressionMixture(1, family="binomial", n_init=1, tol=1e-12).fit(X, y)
    peer = LogisticRegression(C=np.inf, tol=1e-12, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(model.coef_[0], peer.coef_[0], rtol=1e-5)
    np.testing.assert_allclose(model.intercept_[0], peer.intercept_[0], rtol=1e-5)


# ------------------------------------------------------------------ mixtures


def test_known_memberships_give_per_group_fits():
    X, y, labels = _two_lines(apart=True)
    # Well separated lines: the posterior is 0/1 to rounding, so EM from the
    # true labels stays on them and each component is its group's OLS fit.
    model = RegressionMixture(2, tol=1e-12).fit(X, y, init_resp=labels)
    for k in (0, 1):
        group = LinearRegression().fit(X[labels == k], y[labels == k])
        np.testing.assert_allclose(model.coef_[k], group.coef_, rtol=1e-6)
        np.testing.assert_allclose(model.intercept_[k], group.intercept_, rtol=1e-6)
    np.testing.assert_allclose(model.weights_, np.bincount(labels) / len(labels), atol=1e-6)
    np.testing.assert_array_equal(model.predict_proba(X, y).argmax(axis=1), labels)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tol=0
@pytest.mark.parametrize("family", ["gaussian", "poisson", "binomial"])
def test_likelihood_never_decreases(family):
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, 500)
    labels = rng.random(500) < 0.5
    eta = np.where(labels, 0.5 + x, 1.0 - 0.8 * x)
    y = {"gaussian": eta + rng.normal(0, 1, 500),
         "poisson": rng.poisson(np.exp(eta)).astype(float),
         "binomial": (rng.random(500) < 1 / (1 + np.exp(-2 * eta))).astype(float)}[family]
    model = RegressionMixture(2, family=family, n_init=1, tol=0, max_iter=40,
                              random_state=0).fit(x[:, None], y)
    assert len(model.history_) == 40
    assert np.diff(model.history_).min() >= -1e-10


def test_chunked_statistics_add_up():
    X, y, _ = _two_lines(n=1000)
    whole = RegressionMixture(2, random_state=0, chunk_size=10_000).fit(X, y)
    chunked = RegressionMixture(2, random_state=0, chunk_size=97).fit(X, y)
    np.testing.assert_allclose(chunked.coef_, whole.coef_, rtol=1e-9)
    np.testing.assert_allclose(chunked.scale_, whole.scale_, rtol=1e-9)
    np.testing.assert_allclose(chunked.history_, whole.history_, rtol=1e-9)
    # The QR statistics of two chunks combine to those of their union.
    model = whole._model()
    packed = whole._packed(X, y)
    total = expected_stats(model, ArraySource(packed, 10_000), n_threads=1)
    parts = expected_stats(model, ArraySource(packed, 123), n_threads=1)
    np.testing.assert_allclose(parts.log_likelihood, total.log_likelihood, rtol=1e-12)
    for a, b in zip(parts.components.r, total.components.r, strict=True):
        np.testing.assert_allclose(np.abs(a), np.abs(b), rtol=1e-8, atol=1e-9)


def test_qr_statistics_solve_weighted_least_squares_without_normal_equations():
    # Columns 1e6 apart in scale: the normal equations square the condition number.
    rng = np.random.default_rng(6)
    X = np.column_stack([np.ones(100), rng.normal(size=100) * 1e6, rng.normal(size=100)])
    y = X @ [1.0, 3e-6, -2.0] + rng.normal(size=100) * 1e-3
    w = rng.uniform(0.5, 2, 100)
    r = combine_r(weighted_r(X[:40], y[:40], w[:40]), weighted_r(X[40:], y[40:], w[40:]))
    coef, rss = solve_r(r)
    root = np.sqrt(w)
    expected, residuals, *_ = np.linalg.lstsq(X * root[:, None], y * root, rcond=None)
    np.testing.assert_allclose(coef, expected, rtol=1e-9)
    np.testing.assert_allclose(rss, residuals[0], rtol=1e-6)
    family = GaussianRegression(coef=np.zeros((1, 3)), scale=np.ones(1))
    fitted = family.from_stats(family.stats(X, y, w[:, None]))
    np.testing.assert_allclose(fitted.coef[0], expected, rtol=1e-9)


# ------------------------------------------------------------------ flexmix


def test_gaussian_matches_flexmix_npreg(npreg):
    data, expected = npreg
    ref = expected["gaussian_ml"]
    X = np.column_stack([data["x"], data["x"] ** 2])
    model = RegressionMixture(2, tol=1e-13).fit(X, data["yn"], init_resp=data["class"] - 1)
    coef = np.column_stack([model.intercept_, model.coef_])
    np.testing.assert_allclose(coef, ref["coef"], atol=1e-4)
    np.testing.assert_allclose(model.scale_, ref["sigma"], atol=1e-4)
    np.testing.assert_allclose(model.weights_, ref["prior"], atol=1e-4)
    total = model.score(X, data["yn"]) * len(X)
    np.testing.assert_allclose(total, ref["loglik"], atol=1e-4)
    for criterion in ("bic", "aic", "icl"):
        np.testing.assert_allclose(getattr(model, criterion)(X, data["yn"]), ref[criterion],
                                   atol=1e-3)
    # flexmix's own driver estimates sigma with a degrees-of-freedom correction,
    # which is not the likelihood's maximum: emkit's likelihood is at least as high.
    assert total >= expected["gaussian_stock"]["loglik"]


def test_poisson_matches_flexmix_npreg(npreg):
    data, expected = npreg
    ref = expected["poisson"]
    X = data["x"][:, None]
    model = RegressionMixture(2, family="poisson", tol=1e-14).fit(
        X, data["yp"], init_resp=data["class"] - 1)
    coef = np.column_stack([model.intercept_, model.coef_])
    np.testing.assert_allclose(coef, ref["coef"], atol=1e-4)
    np.testing.assert_allclose(model.weights_, ref["prior"], atol=1e-4)
    np.testing.assert_allclose(model.score(X, data["yp"]) * len(X), ref["loglik"], atol=1e-4)
    for criterion in ("bic", "aic", "icl"):
        np.testing.assert_allclose(getattr(model, criterion)(X, data["yp"]), ref[criterion],
                                   atol=1e-3)


def test_logistic_gate_matches_flexmix_multinom_npreg(npreg):
    data, expected = npreg
    ref = expected["gaussian_ml_gate"]
    X = np.column_stack([data["x"], data["x"] ** 2])
    z = data["x"][:, None]
    model = RegressionMixture(2, gating="logistic", tol=1e-13).fit(
        X, data["yn"], concomitant=z, init_resp=data["class"] - 1)
    coef = np.column_stack([model.intercept_, model.coef_])
    np.testing.assert_allclose(coef, ref["coef"], atol=1e-4)
    np.testing.assert_allclose(model.scale_, ref["sigma"], atol=1e-4)
    gate = np.column_stack([model.gate_intercept_, model.gate_coef_])
    np.testing.assert_allclose(gate, ref["gate"], atol=1e-4)
    total = model.score(X, data["yn"], concomitant=z) * len(X)
    np.testing.assert_allclose(total, ref["loglik"], atol=1e-4)
    for criterion in ("bic", "aic", "icl"):
        np.testing.assert_allclose(getattr(model, criterion)(X, data["yn"], concomitant=z),
                                   ref[criterion], atol=1e-3)


# ------------------------------------------------------------------ gating, prediction, files


def test_logistic_gate_recovers_a_membership_that_depends_on_z():
    rng = np.random.default_rng(7)
    n = 2000
    z = rng.normal(size=n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-(0.5 + 2 * z)))).astype(int)
    x = rng.uniform(0, 10, n)
    y = np.where(labels == 1, 1 + 2 * x, 8 - x) + rng.normal(0, 0.5, n)
    model = RegressionMixture(2, gating="logistic", random_state=0).fit(
        x[:, None], y, concomitant=z[:, None], init_resp=labels)
    np.testing.assert_allclose(model.gate_intercept_, [0, 0.5], atol=0.2)
    np.testing.assert_allclose(model.gate_coef_[:, 0], [0, 2.0], atol=0.3)
    assert np.diff(model.history_).min() >= -1e-10


def test_predict_is_the_mixture_mean_and_sample_follows_the_model():
    X, y, _ = _two_lines(n=4000)
    model = RegressionMixture(2, random_state=0).fit(X, y)
    means = model.intercept_ + X * model.coef_[:, 0]
    np.testing.assert_allclose(model.predict(X), means @ model.weights_, rtol=1e-12)
    draws, drawn_labels = model.sample(X, random_state=1)
    refit = RegressionMixture(2, tol=1e-10).fit(X, draws, init_resp=drawn_labels)
    np.testing.assert_allclose(refit.coef_, model.coef_, atol=0.05)
    np.testing.assert_allclose(refit.weights_, model.weights_, atol=0.03)


def test_bic_and_aic_count_parameters():
    X, y, _ = _two_lines()
    model = RegressionMixture(2, random_state=0).fit(X, y)
    total = model.score(X, y) * len(y)
    n_parameters = 2 * 2 + 2 + 1  # coefficients, scales, one free weight
    np.testing.assert_allclose(model.bic(X, y), -2 * total + n_parameters * np.log(len(y)))
    np.testing.assert_allclose(model.aic(X, y), -2 * total + 2 * n_parameters)
    one = RegressionMixture(1).fit(X, y)
    assert model.bic(X, y) < one.bic(X, y)


@pytest.mark.parametrize("gating", ["constant", "logistic"])
def test_save_and_load_round_trip(tmp_path, gating):
    X, y, labels = _two_lines()
    z = X if gating == "logistic" else None
    model = RegressionMixture(2, gating=gating, random_state=0).fit(
        X, y, concomitant=z, init_resp=labels)
    loaded = emkit.load(emkit.save(model, tmp_path / "m.emkit"))
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    np.testing.assert_array_equal(loaded.predict_proba(X, y, concomitant=z),
                                  model.predict_proba(X, y, concomitant=z))
    emkit.save(loaded, tmp_path / "again.emkit")  # a loaded model saves everything again


# ------------------------------------------------------------------ bad input


def test_missing_y_rows_are_dropped_with_a_warning():
    X, y, labels = _two_lines()
    y_missing = y.copy()
    y_missing[[3, 10, 50]] = np.nan
    with pytest.warns(UserWarning, match="3 of 600 rows have a missing"):
        model = RegressionMixture(2, tol=1e-12).fit(X, y_missing, init_resp=labels)
    keep = ~np.isnan(y_missing)
    same = RegressionMixture(2, tol=1e-12).fit(X[keep], y[keep], init_resp=labels[keep])
    np.testing.assert_allclose(model.coef_, same.coef_, rtol=1e-12)


@pytest.mark.parametrize(("kwargs", "data", "message"), [
    ({}, "nan_x", "X contains NaN at row 2, column 0"),
    ({}, "one_d", "must be 2-D"),
    ({"family": "poisson"}, "negative", "non-negative integer counts; got -1.0 at row 0"),
    ({"family": "binomial"}, "two", "0 or 1; got 2.0 at row 0"),
    ({"family": "student"}, "ok", "parameter family must be one of"),
    ({}, "concomitant", "concomitant variables need gating='logistic'"),
    ({}, "labels", "init_resp labels must be"),
])
def test_bad_input_is_refused_by_name(kwargs, data, message):
    X, y, _ = _two_lines(n=20)
    fit_kwargs = {}
    if data == "nan_x":
        X = X.copy()
        X[2, 0] = np.nan
    elif data == "one_d":
        X = X[:, 0]
    elif data in ("negative", "two"):
        y = np.where(np.arange(20) == 0, -1.0 if data == "negative" else 2.0, 1.0)
    elif data == "concomitant":
        fit_kwargs["concomitant"] = X
    elif data == "labels":
        fit_kwargs["init_resp"] = np.full(20, 5)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        RegressionMixture(2, **kwargs).fit(X, y, **fit_kwargs)


def test_readme_section_runs():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("\n## Mixtures of regressions\n")
    end = readme.index("\n## ", start + 1)
    code = "\n".join(re.findall(r"```python\n(.*?)```", readme[start:end], flags=re.S))
    namespace: dict = {}
    exec(code, namespace)
    np.testing.assert_allclose(np.sort(namespace["model"].coef_[:, 0]), [-1, 2], atol=0.05)
    assert namespace["experts"].gate_coef_.shape == (2, 1)


def test_a_component_with_too_few_rows_is_reported():
    X, y, _ = _two_lines(n=50, apart=True)
    labels = np.zeros(50, dtype=int)
    labels[:2] = 1  # two rows for a line of two coefficients: fitted exactly
    with pytest.warns(UserWarning, match=r"component\(s\) \[1\] hold about"):
        RegressionMixture(2, max_iter=5).fit(X, y, init_resp=labels)


def test_demo_recovers_the_two_lines(tmp_path):
    from emkit.demos import regression as demo

    fig, model = demo.figure()
    order = np.argsort(model.coef_[:, 0])
    fitted = np.column_stack([model.intercept_, model.coef_[:, 0]])[order]
    np.testing.assert_allclose(fitted, [demo.TRUE_LINES[1], demo.TRUE_LINES[0]], atol=0.3)
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[0].collections) == 1
    demo.main([str(tmp_path / "demo.png")])
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_poisson_experts_do_not_depend_on_the_chunking():
    rng = np.random.default_rng(8)
    x = rng.uniform(-1, 1, 300)
    z = rng.normal(size=(300, 1))
    labels = (rng.random(300) < 1 / (1 + np.exp(-z[:, 0]))).astype(int)
    y = rng.poisson(np.exp(np.where(labels == 1, 2 + x, 0.5 - x))).astype(float)
    fits = [RegressionMixture(2, family="poisson", gating="logistic", chunk_size=size,
                              tol=1e-10).fit(x[:, None], y, concomitant=z, init_resp=labels)
            for size in (1000, 37)]
    np.testing.assert_allclose(fits[1].coef_, fits[0].coef_, rtol=1e-7)
    np.testing.assert_allclose(fits[1].gate_coef_, fits[0].gate_coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fits[1].lower_bound_, fits[0].lower_bound_, rtol=1e-10)


# ------------------------------------------------------------------ files and dask


def _frame(n=500, seed=9):
    """A table: two design columns, a concomitant, weights and a response with some NaN."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, (n, 2))
    z = rng.normal(size=n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    y = np.where(labels == 1, 1 + 2 * x[:, 0] - x[:, 1], 8 - x[:, 0]) + rng.normal(0, 0.5, n)
    y[[5, 77]] = np.nan
    w = rng.integers(1, 4, n).astype(float)
    return pd.DataFrame({"x1": x[:, 0], "y": y, "z": z, "x2": x[:, 1], "w": w})


@pytest.mark.filterwarnings("ignore:RegressionMixture. 2 of 500 rows")
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
@pytest.mark.parametrize("gating", ["constant", "logistic"])
def test_file_fit_equals_the_in_memory_fit(tmp_path, suffix, gating):
    frame = _frame()
    path = tmp_path / f"rows{suffix}"
    names = {"y": "y", "w": "w", "z": "z"}
    keep = ["x1", "y", "x2", "w"]  # without the gate, z is left out (else it is a design column)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
        # pandas' parser may differ from the written floats in the last bit: compare
        # with what it reads.
        frame = pd.read_csv(path)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:  # no names in a .npy: columns are x0, x1, ...
        np.save(path, np.ascontiguousarray(frame.to_numpy()))
        names = {"y": "x1", "w": 4, "z": "x2"}
        keep = ["x0", "x1", "x3", "x4"]
        if gating == "constant":
            names["w"] = "x4"  # a name: the index would count the columns kept
    X = frame[["x1", "x2"]].to_numpy()
    z = frame[["z"]].to_numpy() if gating == "logistic" else None
    params = dict(gating=gating, random_state=0, tol=1e-10, chunk_size=64, n_init=1)
    memory = RegressionMixture(2, **params).fit(X, frame["y"], sample_weight=frame["w"],
                                               concomitant=z)
    # File chunks of 128 rows cut into E-step chunks of 64: the same pieces as in memory,
    # so even the gate's L-BFGS (which sums over pieces) sees the same numbers.
    source = emkit.sources.open(path, chunk_size=128,
                                columns=keep if gating == "constant" else None)
    streamed = RegressionMixture(2, **params).fit(
        source, names["y"], sample_weight=names["w"],
        concomitant=None if z is None else [names["z"]])
    np.testing.assert_allclose(streamed.coef_, memory.coef_, rtol=1e-8)
    np.testing.assert_allclose(streamed.intercept_, memory.intercept_, rtol=1e-8)
    np.testing.assert_allclose(streamed.scale_, memory.scale_, rtol=1e-8)
    np.testing.assert_allclose(streamed.weights_, memory.weights_, rtol=1e-8)
    np.testing.assert_allclose(streamed.history_, memory.history_, rtol=1e-10)
    assert streamed.n_iter_ == memory.n_iter_ and streamed.n_features_in_ == 2


def test_a_file_fit_warns_of_missing_y_and_names_bad_cells(tmp_path):
    frame = _frame()
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    with pytest.warns(UserWarning, match="2 of 500 rows have a missing"):
        RegressionMixture(2, random_state=0, n_init=1).fit(emkit.sources.open(path), "y")
    with pytest.raises(ValueError, match=r"y 'response' is not a column of .*columns are x1, y"):
        RegressionMixture(2).fit(emkit.sources.open(path), "response")
    frame.loc[321, "x2"] = np.nan
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match="x2 contains nan at row 321: the design"):
        RegressionMixture(2).fit(emkit.sources.open(path, chunk_size=100), "y")
    with pytest.raises(ValueError, match="with a file source, y names the response column"):
        RegressionMixture(2).fit(emkit.sources.open(path), frame["y"].to_numpy())


@pytest.mark.filterwarnings("ignore:RegressionMixture. 2 of 500 rows")
@pytest.mark.parametrize("gating", ["constant", "logistic"])
def test_dask_fit_equals_the_in_memory_fit(gating):
    da = pytest.importorskip("dask.array")
    frame = _frame()
    X = frame[["x1", "x2"]].to_numpy()
    z = frame[["z"]].to_numpy() if gating == "logistic" else None
    params = dict(gating=gating, random_state=0, tol=1e-10, chunk_size=64, n_init=1)
    memory = RegressionMixture(2, **params).fit(X, frame["y"], sample_weight=frame["w"],
                                               concomitant=z)
    distributed = RegressionMixture(2, **params).fit(
        da.from_array(X, chunks=(130, 2)), da.from_array(frame["y"].to_numpy(), chunks=70),
        sample_weight=frame["w"].to_numpy(),
        concomitant=None if z is None else da.from_array(z, chunks=(200, 1)))
    np.testing.assert_allclose(distributed.coef_, memory.coef_, rtol=1e-8)
    np.testing.assert_allclose(distributed.weights_, memory.weights_, rtol=1e-8)
    # Other pieces, summed in a tree: equal to rounding (which the gate's L-BFGS amplifies).
    np.testing.assert_allclose(distributed.history_, memory.history_, rtol=1e-8)
    bad = X.copy()
    bad[444, 1] = np.inf
    with pytest.raises(ValueError, match="X column 1 contains inf at row 444"):
        RegressionMixture(2).fit(da.from_array(bad, chunks=(100, 2)), frame["y"].to_numpy())


# ------------------------------------------------------------------ variants


def _classification_em(x, y, labels, n_iter):
    """Hard (classification) EM for a mixture of two Gaussian lines, written out by hand."""
    design = np.column_stack([np.ones_like(x), x])
    for _ in range(n_iter):
        coef, scale, weight = [], [], []
        for k in (0, 1):
            rows = labels == k
            b, *_ = np.linalg.lstsq(design[rows], y[rows], rcond=None)
            coef.append(b)
            scale.append(np.sqrt(np.mean((y[rows] - design[rows] @ b) ** 2)))
            weight.append(rows.mean())
        coef, scale, weight = np.array(coef), np.array(scale), np.array(weight)
        z = (y[:, None] - design @ coef.T) / scale
        joint = np.log(weight) - np.log(scale) - 0.5 * z**2
        labels = joint.argmax(axis=1)
    return coef, scale, weight


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tol=0
def test_hard_em_is_classification_em():
    X, y, labels = _two_lines(n=40, seed=3)
    start = labels.copy()
    start[:8] = 1 - start[:8]  # a start that hard EM has to correct
    model = RegressionMixture(2, algorithm="hard", tol=0, max_iter=6).fit(
        X, y, init_resp=start)
    # fit's first M-step is on the start; 6 iterations give 7 M-steps in all.
    coef, scale, weight = _classification_em(X[:, 0], y, start, 7)
    np.testing.assert_allclose(np.column_stack([model.intercept_, model.coef_]), coef, rtol=1e-9)
    np.testing.assert_allclose(model.scale_, scale, rtol=1e-9)
    np.testing.assert_allclose(model.weights_, weight, rtol=1e-9)
    # The classification likelihood never decreases.
    assert np.diff(model.history_).min() >= -1e-12


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_accelerated_em_is_monotone_and_reaches_the_same_maximum():
    # Two overlapping lines: plain EM crawls (hundreds of iterations).
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 10, 800)
    y = np.where(rng.random(800) < 0.4, 1 + 0.6 * x, 3 + 0.2 * x) + rng.normal(0, 1.0, 800)
    X = x[:, None]
    plain = RegressionMixture(2, n_init=1, random_state=1, tol=1e-10, max_iter=3000).fit(X, y)
    fast = RegressionMixture(2, n_init=1, random_state=1, tol=1e-10, max_iter=3000,
                             accelerate=True).fit(X, y)
    assert np.diff(fast.history_).min() >= 0
    assert np.diff(plain.history_).min() >= -1e-12
    np.testing.assert_allclose(fast.lower_bound_, plain.lower_bound_, atol=1e-8)
    np.testing.assert_allclose(fast.coef_, plain.coef_, atol=1e-4)
    assert fast.n_iter_ < 0.6 * plain.n_iter_
    with pytest.raises(ValueError, match="accelerate=True needs algorithm='em'"):
        RegressionMixture(2, accelerate=True, algorithm="hard").fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_accelerated_poisson_experts_are_monotone():
    rng = np.random.default_rng(10)
    x = rng.uniform(-1, 1, 400)
    z = rng.normal(size=(400, 1))
    labels = (rng.random(400) < 1 / (1 + np.exp(-z[:, 0]))).astype(int)
    y = rng.poisson(np.exp(np.where(labels == 1, 1.5 + x, 0.5 - x))).astype(float)
    model = RegressionMixture(2, family="poisson", gating="logistic", accelerate=True,
                              n_init=1, random_state=0, max_iter=60).fit(
        x[:, None], y, concomitant=z)
    assert np.diff(model.history_).min() >= 0


def test_stochastic_em_does_not_depend_on_the_chunking():
    X, y, _ = _two_lines(n=300, seed=5)
    fits = [RegressionMixture(2, algorithm="stochastic", max_iter=15, n_init=1,
                              random_state=3, chunk_size=size).fit(X, y)
            for size in (1000, 41)]
    np.testing.assert_allclose(fits[1].coef_, fits[0].coef_, rtol=1e-9)
    np.testing.assert_allclose(fits[1].history_, fits[0].history_, rtol=1e-9)
    assert len(fits[0].history_) == 15 and not fits[0].converged_
    np.testing.assert_allclose(np.sort(fits[0].coef_[:, 0]), [-1, 2], atol=0.1)


# ------------------------------------------------------------------ choosing K


def test_select_regression_model_on_npreg_chooses_two_with_flexmix_bic(npreg):
    data, expected = npreg
    X = np.column_stack([data["x"], data["x"] ** 2])
    result = emkit.select_regression_model(X, data["yn"], range(1, 4), random_state=0,
                                           tol=1e-12)
    assert result.best_estimator.n_components == 2
    table = result.table.set_index("n_components")
    assert table["bic"].idxmin() == 2 and list(table.columns[:2]) == ["family", "bic"]
    # K = 2: the maximum flexmix reaches from the true memberships.
    np.testing.assert_allclose(table.loc[2, "bic"], expected["gaussian_ml"]["bic"], atol=1e-3)
    np.testing.assert_allclose(table.loc[2, "icl"], expected["gaussian_ml"]["icl"], atol=1e-3)
    # K = 1: ordinary least squares, closed form: -2 log L + (3 coefficients + scale) log n.
    n = len(X)
    rss = np.sum((data["yn"] - LinearRegression().fit(X, data["yn"]).predict(X)) ** 2)
    loglik = -n / 2 * (np.log(2 * np.pi * rss / n) + 1)
    np.testing.assert_allclose(table.loc[1, "bic"], -2 * loglik + 4 * np.log(n), rtol=1e-9)
    np.testing.assert_allclose(table.loc[1, "aic"], -2 * loglik + 8, rtol=1e-9)
    assert result.plot().get_legend().get_title().get_text() == "family"
    with pytest.raises(ValueError, match=r"mclust_bic\(\) is the table of a Gaussian mixture"):
        result.mclust_bic()


def test_select_regression_model_skips_what_the_rows_cannot_support():
    X, y, _ = _two_lines(n=12)
    result = emkit.select_regression_model(X, y, [1, 5], n_init=1, random_state=0)
    row = result.table.set_index("n_components").loc[5]
    assert row["skipped"] and "need at least 15 rows, the data have 12" in row["note"]
    with pytest.raises(ValueError, match="criterion must be one of"):
        emkit.select_regression_model(X, y, criterion="loglik")


# ------------------------------------------------------------------ command line


def test_cli_fits_saves_and_predicts(tmp_path):
    from click.testing import CliRunner

    from emkit.cli import main

    X, y, _ = _two_lines(n=300, seed=11, apart=True)
    y[4] = np.nan
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(300), "x": X[:, 0], "y": y,
                          "z": rng.normal(size=300)})
    data = tmp_path / "rows.csv"
    frame.to_csv(data, index=False)
    runner = CliRunner()
    done = runner.invoke(main, ["regmix", "fit", str(data), "-y", "y", "--exclude", "id,z",
                                "-k", "1-3", "--out", str(tmp_path / "m.emkit"), "--json"])
    assert done.exit_code == 0, done.output
    # The output mixes in stderr's warning line: decode the JSON object alone.
    report, _ = json.JSONDecoder().raw_decode(done.output[done.output.index("{"):])
    assert report["model"]["n_components"] == 2 and report["model"]["columns"] == ["x"]
    assert report["selection"][0]["n_components"] == 2
    assert "1 of 300 rows have a missing (NaN) y" in done.output
    model = emkit.load(tmp_path / "m.emkit")
    keep = ~np.isnan(y)
    same = emkit.select_regression_model(X[keep], y[keep], range(1, 4), random_state=0)
    np.testing.assert_allclose(model.coef_, same.best_estimator.coef_, rtol=1e-9)
    np.testing.assert_allclose(report["model"]["bic"], same.best_estimator.bic(X[keep], y[keep]))
    done = runner.invoke(main, ["regmix", "predict", str(tmp_path / "m.emkit"), str(data),
                                "-y", "y", "--proba", "--out", str(tmp_path / "p.csv")])
    assert done.exit_code == 0, done.output
    out = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(out["prediction"], model.predict(X), rtol=1e-12)
    assert out["component"].isna().tolist() == (~keep).tolist()
    np.testing.assert_allclose(out.loc[keep, ["p0", "p1"]], model.predict_proba(X[keep], y[keep]))
    # One K, streamed from the file: the in-memory fit from the same seed.
    done = runner.invoke(main, ["regmix", "fit", str(data), "-y", "y", "--exclude", "id,z",
                                "-k", "2", "--stream", "--chunk-size", "64", "--json"])
    assert done.exit_code == 0, done.output
    streamed = json.JSONDecoder().raw_decode(done.output[done.output.index("{"):])[0]["model"]
    one = emkit.RegressionMixture(2, random_state=0).fit(X[keep], y[keep])
    assert streamed["n_iter"] >= 1 and np.isclose(streamed["average_log_likelihood"],
                                                  one.lower_bound_, rtol=1e-6)
    # A model fitted on unnamed arrays takes the columns besides y by position.
    unnamed = emkit.RegressionMixture(2, random_state=0).fit(X[keep], y[keep])
    emkit.save(unnamed, tmp_path / "u.emkit")
    frame[["x", "y"]].to_csv(data, index=False)
    done = runner.invoke(main, ["regmix", "predict", str(tmp_path / "u.emkit"), str(data),
                                "-y", "y", "--out", str(tmp_path / "u.csv")])
    assert done.exit_code == 0, done.output
    np.testing.assert_allclose(pd.read_csv(tmp_path / "u.csv")["prediction"], unnamed.predict(X))
    done = runner.invoke(main, ["regmix", "fit", str(data), "-y", "yy"])
    assert done.exit_code == 1 and "has no column 'yy' (-y); its columns: x, y" in done.output


def test_r_from_the_cross_product_only_where_it_is_as_accurate_as_qr():
    from emkit.distributions.regression import _r_by_cross_product, _r_factor

    rng = np.random.default_rng(12)
    rows = np.column_stack([np.ones(5000), rng.normal(size=(5000, 3)) * [1, 1e6, 1e-4],
                            rng.normal(size=5000)])
    fast = _r_by_cross_product(rows)  # column units do not count: equilibrated first
    assert fast is not None
    np.testing.assert_allclose(np.abs(fast), np.abs(_r_factor(rows)), rtol=1e-10, atol=1e-6)
    # y almost a linear function of X (residual 1e-9 of its size): QR's case, refused.
    near = rows.copy()
    near[:, -1] = rows[:, :-1] @ [1.0, 2.0, 3e-6, 1e4] + 1e-9 * rng.normal(size=5000)
    assert _r_by_cross_product(near) is None
    r = weighted_r(near[:, :-1], near[:, -1], np.ones(5000))
    coef, rss = solve_r(r)
    np.testing.assert_allclose(coef, [1.0, 2.0, 3e-6, 1e4], rtol=1e-7)
    assert rss < 1e-14 * 5000
