"""The conjugate prior (Fraley & Raftery 2007): MAP EM against mclust's own fits.

The reference (tests/reference/mclust_prior.json, from mclust_prior.R) holds, per
data set, G and model, mclust's hyperparameters, its hc start, its MAP fit from that
start run to a tight fixed point, and one M-step of its EM from that fit's E-step.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from emkit import ConjugatePrior, GaussianMixture, load, save, select_model
from emkit.distributions.gaussian.covariance import (
    COVARIANCE_STRUCTURES,
    DegenerateComponentError,
)
from emkit.distributions.gaussian.family import gaussian_from_resp
from emkit.distributions.gaussian.prior import log_prior

REFERENCE = json.loads((Path(__file__).parent / "reference" / "mclust_prior.json").read_text())
CASES = [(i, fit["model"]) for i, case in enumerate(REFERENCE["cases"])
         for fit in case["fits"] if fit.get("loglik") is not None]
IDS = [f"{REFERENCE['cases'][i]['data']}-{REFERENCE['cases'][i]['G']}-{m}" for i, m in CASES]
# VEI and VEV alternate inner updates, stopped on a relative change of their
# objective of 1e-12 (constrained.INNER_TOL): their parameters agree to ~1e-7.
INNER = ("VEI", "VEV")


def _case(index, model):
    case = REFERENCE["cases"][index]
    X = np.asarray(REFERENCE["data"][case["data"]], dtype=float)
    fit = next(f for f in case["fits"] if f["model"] == model)
    return X, np.asarray(case["partition"]) - 1, case["G"], fit


def _dense(structure, covariances, G, d):
    return structure.dense(covariances, G, d)


def _fit(X, G, model, start_resp, **params):
    """emkit's MAP EM from a start's responsibilities (its MAP M-step first, as mclust's me)."""
    structure = COVARIANCE_STRUCTURES[model]
    prior = ConjugatePrior().resolve(X, G, model)
    start = gaussian_from_resp(structure, X, start_resp, 0.0, prior)
    settings = {"reg_covar": 0.0, "tol": 1e-13, "max_iter": 20000, "prior": "default", **params}
    gm = GaussianMixture(G, covariance_type=model, weights_init=start_resp.mean(axis=0),
                         means_init=start.means,
                         precisions_init=structure.precisions(start.precisions_cholesky),
                         **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gm.fit(X)


@pytest.mark.parametrize(("index", "model"), CASES, ids=IDS)
def test_default_hyperparameters_are_mclusts(index, model):
    X, _, G, ref = _case(index, model)
    prior = ConjugatePrior().resolve(X, G, model)
    assert prior.shrinkage == ref["prior"]["shrinkage"] == 0.01
    assert prior.dof == ref["prior"]["dof"]
    np.testing.assert_allclose(prior.mean, ref["prior"]["mean"], rtol=1e-13)
    np.testing.assert_allclose(prior.scale, ref["prior"]["scale"], rtol=1e-12)


@pytest.mark.parametrize(("index", "model"), CASES, ids=IDS)
def test_map_m_step_is_mclusts(index, model):
    """One M-step of mclust's EM (me, itmax 1) from the same responsibilities."""
    X, _, G, ref = _case(index, model)
    structure = COVARIANCE_STRUCTURES[model]
    prior = ConjugatePrior().resolve(X, G, model)
    gaussian = gaussian_from_resp(structure, X, np.asarray(ref["z"]), 0.0, prior)
    step = ref["m_step"]
    rtol = 1e-6 if model in INNER else 1e-10
    means = np.asarray(step["means"])
    np.testing.assert_allclose(gaussian.means, means, rtol=rtol, atol=1e-12 * np.abs(means).max())
    covariances = np.asarray(step["covariances"])
    np.testing.assert_allclose(_dense(structure, gaussian.covariances, G, X.shape[1]),
                               covariances, rtol=rtol, atol=rtol * np.abs(covariances).max())


@pytest.mark.parametrize(("index", "model"), CASES, ids=IDS)
def test_same_map_fit_as_mclust_from_its_start(index, model):
    X, partition, G, ref = _case(index, model)
    # The partition is Mclust's own start: me() from it reproduces Mclust's fit.
    assert ref["me_default_loglik"] == pytest.approx(ref["mclust_loglik"], rel=1e-12)
    gm = _fit(X, G, model, np.eye(G)[partition])
    loglik = gm.score(X) * X.shape[0]
    assert loglik == pytest.approx(ref["loglik"], rel=1e-8)
    assert gm._n_parameters() == ref["n_parameters"]
    # BIC = 2 loglik - npar log n: its error is twice the log-likelihood's.
    assert -gm.bic(X) == pytest.approx(ref["bic"], abs=2e-8 * abs(ref["loglik"]))
    fit = ref["fit"]
    np.testing.assert_allclose(gm.weights_, fit["weights"], atol=1e-5)
    means = np.asarray(fit["means"])
    np.testing.assert_allclose(gm.means_, means, rtol=1e-5, atol=1e-6 * np.abs(means).max())
    covariances = np.asarray(fit["covariances"])
    np.testing.assert_allclose(_dense(gm._model().components.structure, gm.covariances_, G,
                                      X.shape[1]),
                               covariances, rtol=1e-4, atol=1e-5 * np.abs(covariances).max())


def test_mclust_reports_the_log_likelihood_at_the_map_estimate():
    """mclust's loglik (and so its BIC) with a prior is the plain log-likelihood there."""
    for index, model in CASES:
        X, _, G, ref = _case(index, model)
        assert ref["loglik"] == pytest.approx(ref["loglik_dens"], rel=1e-12)
        fit = ref["fit"]
        structure = COVARIANCE_STRUCTURES[model]
        covariances = np.asarray(fit["covariances"])
        precisions = structure.reduce_scatter(np.linalg.inv(covariances))
        if model in ("EEE",):
            precisions = np.linalg.inv(covariances[0])
        elif structure.name == "spherical":
            precisions = 1.0 / covariances[:, 0, 0]
        gm = GaussianMixture(G, covariance_type=model, weights_init=fit["weights"],
                             means_init=fit["means"], precisions_init=precisions, max_iter=0,
                             reg_covar=0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(X)
        assert gm.score(X) * X.shape[0] == pytest.approx(ref["loglik"], rel=1e-10)


def _posterior_path(X, G, model, n_iter=15):
    """Penalised log-likelihood (log-likelihood + log prior) after each MAP EM step."""
    values = []
    prior = ConjugatePrior().resolve(X, G, model)

    def record(iteration, lower_bound, change, mixture):
        gaussian = mixture.components
        dense = gaussian.structure.dense(gaussian.covariances, G, X.shape[1])
        loglik = mixture.log_resp(X)[1].sum()
        values.append(loglik + log_prior(gaussian.means, dense, prior))

    GaussianMixture(G, covariance_type=model, prior="default", reg_covar=0.0, tol=0.0,
                    max_iter=n_iter, init_params="random", random_state=1,
                    callback=record).fit(X)
    return np.asarray(values)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("model", ["VEE", "EVE", "VVE", "EVV", "VVV"])
def test_map_em_never_decreases_the_posterior(model):
    """The models mclust has no prior for: each component's conjugate prior, MAP EM monotone."""
    X = np.asarray(REFERENCE["data"]["iris"], dtype=float)
    path = _posterior_path(X, 3, model)
    assert len(path) == 15
    assert np.all(np.diff(path) >= -1e-9 * np.abs(path).max())
    assert path[-1] > path[0]


@pytest.mark.parametrize("model", ["VEE", "EVE", "VVE", "EVV"])
def test_map_m_step_of_new_models_is_the_posterior_maximum(model):
    """The MAP M-step beats nearby points of the model: perturbed weights of its pieces."""
    X = np.asarray(REFERENCE["data"]["diabetes"], dtype=float)
    G = 3
    rng = np.random.default_rng(0)
    resp = rng.dirichlet(np.ones(G), size=X.shape[0])
    structure = COVARIANCE_STRUCTURES[model]
    prior = ConjugatePrior().resolve(X, G, model)
    best = gaussian_from_resp(structure, X, resp, 0.0, prior)

    def objective(means, covariances):
        total = log_prior(means, covariances, prior)
        for k in range(G):
            inverse = np.linalg.inv(covariances[k])
            centred = X - means[k]
            quad = np.einsum("ij,jk,ik->i", centred, inverse, centred)
            total += resp[:, k] @ (-0.5 * (quad + np.linalg.slogdet(covariances[k])[1]))
        return total

    top = objective(best.means, best.covariances)
    # Moves that keep the constraints: scale all volumes, move a mean, or rotate all
    # orientations together (the shared orientation of VEE/EVE/VVE survives).
    for _ in range(20):
        factor = np.exp(rng.normal(scale=0.05))
        angle = rng.normal(scale=0.05)
        rotation = np.eye(3)
        rotation[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
        moved = rotation @ best.covariances @ rotation.T * factor
        shifted = best.means + rng.normal(scale=1.0, size=best.means.shape)
        assert objective(best.means, moved) < top
        assert objective(shifted, best.covariances) < top


def test_prior_keeps_small_data_from_collapsing():
    """12 rounded rows in 4-D, 3 full components: ML collapses, the MAP fit is mclust's."""
    index = next(i for i, m in CASES if REFERENCE["cases"][i]["data"] == "small" and m == "VVV")
    X, partition, G, ref = _case(index, "VVV")
    resp = np.eye(G)[partition]
    with pytest.raises(DegenerateComponentError):
        gaussian_from_resp(COVARIANCE_STRUCTURES["VVV"], X, resp, 0.0)
    gm = _fit(X, G, "VVV", resp)
    assert gm.score(X) * X.shape[0] == pytest.approx(ref["loglik"], rel=1e-10)
    # Sigma_k = (scale + B_k) / (n_k + dof + d + 2): never below the prior's floor.
    prior = ConjugatePrior().resolve(X, G, "VVV")
    floor = np.linalg.eigvalsh(prior.scale)[0] / (X.shape[0] + prior.dof + X.shape[1] + 2)
    assert np.linalg.eigvalsh(gm.covariances_).min() > floor


def test_user_hyperparameters_and_their_checks():
    X = np.asarray(REFERENCE["data"]["faithful"], dtype=float)
    prior = ConjugatePrior(shrinkage=0.5, mean=[3.0, 70.0], dof=10, scale=np.eye(2))
    resolved = prior.resolve(X, 2, "VVV")
    assert (resolved.shrinkage, resolved.dof) == (0.5, 10.0)
    np.testing.assert_array_equal(resolved.scale, np.eye(2))
    assert ConjugatePrior(scale=2.0).resolve(X, 2, "VII").scale == 2.0
    with pytest.raises(ValueError, match="one positive number"):
        ConjugatePrior(scale=np.eye(2)).resolve(X, 2, "EEI")
    with pytest.raises(ValueError, match="symmetric"):
        ConjugatePrior(scale=np.ones((3, 3))).resolve(X, 2, "VVV")
    # A number for a full-matrix model is that times the identity (one number, every model).
    np.testing.assert_array_equal(ConjugatePrior(scale=2.0).resolve(X, 2, "VVV").scale,
                                  2.0 * np.eye(2))
    with pytest.raises(ValueError, match="positive number"):
        ConjugatePrior(scale=-1.0).resolve(X, 2, "EEE")
    with pytest.raises(ValueError, match="2 finite numbers"):
        ConjugatePrior(mean=[1.0]).resolve(X, 2, "VVV")
    with pytest.raises(ValueError, match="shrinkage"):
        ConjugatePrior(shrinkage=-1)
    with pytest.raises(ValueError, match="prior"):
        GaussianMixture(2, prior="flat").fit(X)
    with pytest.raises(ValueError, match="accelerate"):
        GaussianMixture(2, prior="default", accelerate=True).fit(X)
    with pytest.raises(ValueError, match="partial_fit"):
        GaussianMixture(2, prior="default").partial_fit(X)
    # Stronger shrinkage pulls the means further towards the prior mean.
    weak = GaussianMixture(2, prior="default", random_state=0).fit(X)
    strong = GaussianMixture(2, prior=ConjugatePrior(shrinkage=100.0), random_state=0).fit(X)
    centre = X.mean(axis=0)
    assert (np.abs(strong.means_ - centre).sum() < np.abs(weak.means_ - centre).sum())


def test_saved_model_keeps_its_prior(tmp_path):
    X = np.asarray(REFERENCE["data"]["faithful"], dtype=float)
    prior = ConjugatePrior(shrinkage=0.1, dof=5.0)
    gm = GaussianMixture(2, covariance_type="VEV", prior=prior, random_state=0).fit(X)
    loaded = load(save(gm, tmp_path / "m.emkit"))
    assert loaded.prior == prior
    assert loaded.get_params()["prior"] == prior
    np.testing.assert_allclose(loaded.score(X), gm.score(X), rtol=1e-13)
    again = GaussianMixture(2, prior="default").fit(X)
    assert load(save(again, tmp_path / "d.emkit")).prior == "default"


def test_select_model_with_prior_fits_the_small_candidates():
    """With a prior every candidate is fitted (as mclust's), none skipped for lack of rows."""
    X = np.asarray(REFERENCE["data"]["small"], dtype=float)
    result = select_model(X, [1, 2, 3], ("VVV", "EEE"), prior="default", n_init=1,
                          init_params="hc", reg_covar=0.0)
    assert result.table["bic"].notna().all()
    assert len(result.table) == 6


def test_a_small_component_under_the_prior_is_no_spurious_maximum():
    """A prior bounds the covariance: a component of fewer rows than a full covariance
    needs is the posterior's mode, kept as mclust keeps it (iris' petals, VVV,6: a
    component of 2.7 rows; without the prior the same fit is flagged)."""
    from sklearn.datasets import load_iris

    from emkit.estimators.gaussian_mixture import degenerate_components

    X = load_iris().data[:, 2:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = GaussianMixture(6, covariance_type="VVV", init_params="hc", tol=1e-5,
                                prior="default").fit(X)
        table = select_model(X, [5, 6], ("VVV", "VVE"), prior="default").table
    assert (len(X) * alone.weights_).min() < 3  # fewer rows than VVV needs in 2-D
    assert degenerate_components(alone, len(X)) == []
    unprior = GaussianMixture(6, covariance_type="VVV", weights_init=alone.weights_,
                              means_init=alone.means_, precisions_init=alone.precisions_,
                              max_iter=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unprior.fit(X)
    assert degenerate_components(unprior, len(X)) != []
    # The selection keeps the hc start's fit (not a nested start's lower one).
    row = table[(table["covariance_type"] == "VVV") & (table["n_components"] == 6)].iloc[0]
    assert not row["degenerate"] and row["start"] == "hc"
    assert row["bic"] == pytest.approx(alone.bic(X), abs=1e-6)


def test_checkpoint_tells_priors_apart(tmp_path):
    X = np.asarray(REFERENCE["data"]["faithful"], dtype=float)
    path = tmp_path / "fit.emkit"
    first = GaussianMixture(2, prior=ConjugatePrior(dof=7.0), checkpoint=path,
                            random_state=0).fit(X)
    again = GaussianMixture(2, prior=ConjugatePrior(dof=7.0), checkpoint=path,
                            random_state=0).fit(X)
    assert again.score(X) == first.score(X)
    with pytest.raises(ValueError, match="prior"):
        GaussianMixture(2, prior=ConjugatePrior(dof=9.0), checkpoint=path,
                        random_state=0).fit(X)


ONE_COMPONENT = json.loads(
    (Path(__file__).parent / "reference" / "mclust_prior_one_component.json").read_text())


@pytest.mark.parametrize("case", ONE_COMPONENT["cases"], ids=lambda case: case["data"])
def test_one_component_under_the_prior_is_mclusts_mvn_fit_for_every_model(case):
    # mclustBIC fits G = 1 with mvn() (XII, XXI, XXX): one component's MAP fit is the
    # same for every model of a kind. Each model's own M-step (EEI's unshrunk means,
    # VEV's missing dof, ...) gave EEI, VEI, EVI, EII and VEV other, lower numbers.
    X = np.asarray(case["X"], dtype=float)
    table = select_model(X, [1], case["models"], prior="default", reg_covar=0.0).table
    mine = -table.set_index("model").loc[case["models"], "bic"].to_numpy()
    np.testing.assert_allclose(mine, case["bic"], rtol=1e-9)


def test_one_component_with_noise_under_the_prior_takes_its_models_own_m_step():
    # With a noise component mclustBIC runs me(): each model's own MAP M-step.
    case = ONE_COMPONENT["noise"]
    X = np.asarray(next(c["X"] for c in ONE_COMPONENT["cases"] if c["data"] == case["data"]),
                   dtype=float)
    noise = np.isin(np.arange(1, len(X) + 1), case["rows"])
    table = select_model(X, [1], case["models"], prior="default", reg_covar=0.0, noise=True,
                         noise_init=noise).table
    mine = -table.set_index("model").loc[case["models"], "bic"].to_numpy()
    # Within 0.1 (the selection's own yardstick): both EMs stop at a relative change of
    # 1e-5, and the kinds' fits (as without noise) are 0.3-4 away for EEI, VEI, EII.
    np.testing.assert_allclose(mine, case["bic"], rtol=0, atol=0.1)
