"""mclust's 14 covariance models: M-steps, likelihoods and BIC against mclust itself.

The reference numbers come from ``tests/reference/mclust_models.R`` (mclust's
``me()`` from a saved hard partition, run to its fixed point); R is not needed here.
"""

import json
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize

import emkit
from emkit import GaussianMixture, select_model
from emkit.distributions.gaussian import constrained
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES, MCLUST_MODELS
from emkit.distributions.gaussian.family import gaussian_from_resp
from emkit.estimators.initialization import hc_labels

REFERENCE = json.loads((Path(__file__).parent / "reference" / "mclust_models.json").read_text())
CASES = [(i, fit["model"]) for i, case in enumerate(REFERENCE["cases"]) for fit in case["fits"]]
CONSTRAINED = ("EEI", "VEI", "EVI", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV")


def _case(index, model):
    case = REFERENCE["cases"][index]
    X = np.asarray(REFERENCE["data"][case["data"]], dtype=float)
    fit = next(f for f in case["fits"] if f["model"] == model)
    return X, np.asarray(case["partition"]) - 1, case["G"], fit


def _fit_from_partition(X, partition, G, model, **params):
    """emkit's EM from mclust's start: the M-step of the hard partition, then EM."""
    structure = COVARIANCE_STRUCTURES[model]
    resp = np.eye(G)[partition]
    start = gaussian_from_resp(structure, X, resp, 0.0)
    return _fit_from(X, G, model, resp.mean(axis=0), start.means,
                     structure.precisions(start.precisions_cholesky), **params)


def _fit_from(X, G, model, weights, means, precisions, **params):
    settings = {"reg_covar": 0.0, "tol": 1e-13, "max_iter": 20000, **params}
    gm = GaussianMixture(G, covariance_type=model, weights_init=weights, means_init=means,
                         precisions_init=precisions, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gm.fit(X)


def _dense(gm):
    k, d = gm.means_.shape
    return COVARIANCE_STRUCTURES[gm.covariance_type].dense(gm.covariances_, k, d)


@pytest.mark.parametrize(("index", "model"), CASES,
                         ids=[f"{REFERENCE['cases'][i]['data']}-{REFERENCE['cases'][i]['G']}-{m}"
                              for i, m in CASES])
def test_same_fit_as_mclust_from_the_same_start(index, model):
    X, partition, G, ref = _case(index, model)
    gm = _fit_from_partition(X, partition, G, model)
    loglik = gm.score(X) * X.shape[0]
    # Parameter counts and BIC exactly mclust's (mclust's BIC = 2 loglik - npar log n).
    assert gm._n_parameters() == ref["n_parameters"]
    assert np.isclose(-gm.bic(X), 2 * loglik - ref["n_parameters"] * np.log(X.shape[0]))
    if model == "VVE":
        # mclust's VVE stops short of its EM fixed point: from its own end point
        # emkit's EM (same model, each step monotone) still climbs. emkit ends higher.
        assert loglik > ref["loglik"] + 0.1
        resumed = _fit_from(X, G, model, np.asarray(ref["weights"]), np.asarray(ref["means"]),
                            np.linalg.inv(np.asarray(ref["covariances"])), max_iter=1)
        assert resumed.score(X) * X.shape[0] > ref["loglik"] + 1e-6
        return
    assert loglik == pytest.approx(ref["loglik"], rel=1e-8)
    assert -gm.bic(X) == pytest.approx(ref["bic"], rel=1e-8)
    # Where the likelihood is flat (faithful's three components) EM creeps: at
    # mclust's stop (relative change 1e-12) the likelihoods agree to 1e-11 but
    # the parameters to ~1e-4 of their scale; so do its inner iterations' (EVE ...).
    np.testing.assert_allclose(gm.weights_, ref["weights"], atol=2e-4)
    means = np.asarray(ref["means"])
    np.testing.assert_allclose(gm.means_, means, rtol=1e-3, atol=1e-4 * np.abs(means).max())
    covariances = np.asarray(ref["covariances"])
    np.testing.assert_allclose(_dense(gm), covariances, rtol=2e-3,
                               atol=2e-4 * np.abs(covariances).max())


def test_parameter_counts_are_mclusts_nvarparams():
    for case in REFERENCE["cases"]:
        d = len(REFERENCE["data"][case["data"]][0])
        for fit in case["fits"]:
            structure = COVARIANCE_STRUCTURES[fit["model"]]
            assert structure.n_parameters(case["G"], d) == fit["n_var_parameters"], fit["model"]


# --- The M-steps against an independent numerical optimisation (two features) -----------


def _rotation(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def _parametrised(model, K):
    """Sigma_k = lambda_k R(theta_k) diag(e^a_k, e^-a_k) R(theta_k)^T, tied as the name says."""
    sizes = {"E": 1, "V": K, "I": 0}
    counts = [sizes[letter] for letter in model]

    def covariances(theta):
        volume, shape, angle = np.split(theta, np.cumsum(counts)[:-1])

        def take(values, k, default):
            return default if values.size == 0 else values[min(k, values.size - 1)]

        return np.stack([
            np.exp(take(volume, k, 0.0)) * _rotation(take(angle, k, 0.0))
            @ np.diag([np.exp(take(shape, k, 0.0)), np.exp(-take(shape, k, 0.0))])
            @ _rotation(take(angle, k, 0.0)).T
            for k in range(K)
        ])

    return covariances, sum(counts)


def _objective(covariances, counts, W):
    _, logdet = np.linalg.slogdet(covariances)
    return float((counts * logdet).sum()
                 + np.einsum("kij,kji->", W, np.linalg.inv(covariances)))


def _scatters(rng, K, d):
    counts = rng.uniform(5, 40, size=K)
    W = []
    for n in counts:
        A = rng.normal(size=(d, d)) * rng.uniform(0.3, 3.0, size=d)
        W.append(n * (A @ A.T + 0.1 * np.eye(d)))
    return counts, np.asarray(W)


def _m_step(model, counts, W):
    d = W.shape[-1]
    structure = COVARIANCE_STRUCTURES[model]
    zero = np.zeros((counts.size, d))
    if structure.name == "full":
        return structure.covariances(counts, zero, W, 0.0)
    if structure.name == "tied":
        return np.broadcast_to(structure.covariances(counts, zero, W.sum(axis=0), 0.0), W.shape)
    diagonal = np.diagonal(W, axis1=1, axis2=2)
    scatter = diagonal.sum(axis=1) if structure.name == "spherical" else diagonal
    return structure.dense(structure.covariances(counts, zero, scatter, 0.0), counts.size, d)


@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_m_step_is_the_constrained_optimum(model):
    rng = np.random.default_rng(sum(map(ord, model)))
    K = 2
    counts, W = _scatters(rng, K, 2)
    ours = _objective(_m_step(model, counts, W), counts, W)
    covariances, size = _parametrised(model, K)
    best = min(
        optimize.minimize(lambda t: _objective(covariances(t), counts, W),
                          rng.normal(scale=0.5, size=size), method="L-BFGS-B",
                          bounds=[(-8.0, 8.0)] * size,
                          options={"ftol": 1e-15, "gtol": 1e-10}).fun
        for _ in range(3)
    )
    # The M-step's value is the constrained minimum: a generic optimiser over an
    # explicit parametrisation of the model finds nothing lower, and reaches it.
    assert ours <= best + 1e-7 * abs(best)
    assert ours == pytest.approx(best, rel=1e-6)


@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_m_step_keeps_the_constraints(model):
    rng = np.random.default_rng(7)
    counts, W = _scatters(rng, 4, 3)
    sigma = _m_step(model, counts, W)
    volume_letter, shape_letter, orientation_letter = model
    volumes = np.exp(np.linalg.slogdet(sigma)[1] / 3)
    if volume_letter == "E":
        np.testing.assert_allclose(volumes, volumes[0], rtol=1e-9)
    if orientation_letter == "I":
        off = sigma - np.einsum("kii->ki", sigma)[:, :, None] * np.eye(3)
        assert np.abs(off).max() < 1e-12 * np.abs(sigma).max()
    if orientation_letter == "E":
        for a, b in combinations(sigma, 2):  # one set of axes: the matrices commute
            np.testing.assert_allclose(a @ b, b @ a, atol=1e-8 * np.abs(a @ b).max())
    if shape_letter == "E":
        shapes = np.linalg.eigvalsh(sigma) / volumes[:, None]
        np.testing.assert_allclose(shapes, np.broadcast_to(shapes[0], shapes.shape), rtol=1e-8)
    if shape_letter == "I":
        np.testing.assert_allclose(sigma, volumes[:, None, None] * np.eye(3), rtol=1e-12)


@pytest.mark.parametrize("model", (*CONSTRAINED, "EII"))
def test_likelihood_never_decreases(model):
    X = np.asarray(REFERENCE["data"]["diabetes"], dtype=float)
    bounds = []
    gm = GaussianMixture(3, covariance_type=model, tol=0.0, max_iter=40, random_state=0,
                         init_params="random",
                         callback=lambda it, bound, change, mixture: bounds.append(bound))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    assert len(bounds) >= 10
    assert np.all(np.diff(bounds) >= -1e-10 * np.abs(bounds[1:]))


# --- The estimator, selection, files ------------------------------------------------


def test_sklearn_names_are_the_same_models():
    X = np.asarray(REFERENCE["data"]["faithful"], dtype=float)
    for alias, model in {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}.items():
        assert COVARIANCE_STRUCTURES[alias] is COVARIANCE_STRUCTURES[model]
        a = GaussianMixture(2, covariance_type=alias, random_state=0).fit(X)
        b = GaussianMixture(2, covariance_type=model, random_state=0).fit(X)
        np.testing.assert_array_equal(a.covariances_, b.covariances_)
        assert b.covariance_type == model


def test_univariate_models_e_and_v():
    X = np.asarray(REFERENCE["data"]["faithful"], dtype=float)[:, :1]
    for short, model in (("E", "EII"), ("V", "VII")):
        a = GaussianMixture(2, covariance_type=short, random_state=0).fit(X)
        b = GaussianMixture(2, covariance_type=model, random_state=0).fit(X)
        np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-12)
        assert a._n_parameters() == b._n_parameters()
    assert np.ptp(GaussianMixture(2, covariance_type="E", random_state=0)
                  .fit(X).covariances_) == 0
    with pytest.raises(ValueError, match="'E' is mclust's model for one feature"):
        GaussianMixture(2, covariance_type="E").fit(np.c_[X, X[::-1]])


def test_unknown_name_and_acceleration_are_refused():
    X = np.asarray(REFERENCE["data"]["faithful"], dtype=float)
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(2, covariance_type="VVX").fit(X)
    with pytest.raises(ValueError, match="accelerate=True works with the unconstrained"):
        GaussianMixture(2, covariance_type="EVE", accelerate=True).fit(X)


def test_saved_model_keeps_its_name(tmp_path):
    X = np.asarray(REFERENCE["data"]["diabetes"], dtype=float)
    for model in ("EVE", "VEI", "EII"):
        gm = GaussianMixture(3, covariance_type=model, random_state=0).fit(X)
        emkit.save(gm, tmp_path / model)
        loaded = emkit.load(tmp_path / model)
        assert loaded.covariance_type == model
        np.testing.assert_allclose(loaded.score_samples(X), gm.score_samples(X))


def test_select_model_all_is_mclusts_14_with_their_names():
    X = np.asarray(REFERENCE["data"]["faithful"], dtype=float)
    result = select_model(X, [2, 3], n_init=1, random_state=0)  # "all" is the default
    assert sorted(result.table["covariance_type"].unique()) == sorted(MCLUST_MODELS)
    assert (result.table["model"] == result.table["covariance_type"]).all()
    best = result.table.iloc[0]
    # mclust's choice on faithful is EEE with three components.
    assert (best["covariance_type"], best["n_components"]) == ("EEE", 3)
    four = select_model(X, [2], ("full", "tied", "diag", "spherical"), random_state=0)
    assert dict(zip(four.table["covariance_type"], four.table["model"], strict=True)) == {
        "full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}


def test_n_var_params_reduce_to_univariate_forms():
    for model in MCLUST_MODELS:
        expected = 1 if model[0] == "E" else 4
        # One feature: volume is all there is (mclust's E and V).
        assert constrained.n_var_params(model, 1, 4) == expected, model


# --- The hierarchical start ---------------------------------------------------------


@pytest.mark.parametrize("case", REFERENCE["hc_eii"], ids=lambda c: c["data"])
def test_hc_eii_is_mclusts_ward_agglomeration(case):
    X = np.asarray(REFERENCE["data"][case["data"]], dtype=float)
    ours = hc_labels(X, case["G"], model="EII")
    theirs = np.asarray(case["partition"]) - 1
    # The same partition, up to the names of the clusters.
    pairs = set(zip(ours.tolist(), theirs.tolist(), strict=True))
    assert len(pairs) == case["G"]


def test_hc_start_finds_mclusts_choice_on_diabetes():
    # The example: from k-means starts emkit's VVV,3 stopped 70 BIC units
    # short of mclust's; from the hierarchical start it is at least as good.
    X = np.asarray(REFERENCE["data"]["diabetes"], dtype=float)
    selection = REFERENCE["selection"]
    assert (selection["best_model"], selection["best_G"]) == ("VVV", 3)
    result = select_model(X, range(1, 10), "VVV", init_params="hc", n_init=1)
    best = result.best_estimator
    assert (best.covariance_type, best.n_components) == ("VVV", 3)
    assert -best.bic(X) >= selection["best_bic"] - 1e-3


def test_hc_start_on_a_subset_of_many_rows():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (1500, 2)), rng.normal(8, 1, (1500, 2))]
    labels = hc_labels(X, 2, np.random.RandomState(0))
    assert labels.shape == (3000,)
    truth = np.repeat([0, 1], 1500)
    assert max((labels == truth).mean(), (labels != truth).mean()) == 1.0


def test_one_component_bic_table_is_mclusts():
    # With one component every model has a single optimum, whatever the start:
    # the whole row of mclust's BIC table on diabetes, in mclust's sign.
    X = np.asarray(REFERENCE["data"]["diabetes"], dtype=float)
    selection = REFERENCE["selection"]
    table = select_model(X, [1], "all", n_init=1, reg_covar=0.0, tol=1e-10).mclust_bic()
    theirs = dict(zip(selection["models"], selection["bic"][0], strict=True))
    for model in MCLUST_MODELS:
        assert table.loc[1, model] == pytest.approx(theirs[model], rel=1e-7), model
