"""The uniform noise component (noise=True) against mclust's fits from the same noise start.

Reference: the ``noise`` part of tests/reference/mclust_prior.json (mclust_prior.R):
faithful plus 60 uniform rows, an initial noise guess, Vinv = 1 / hypvol(X).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from emkit import GaussianMixture, load, save
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.distributions.gaussian.family import gaussian_from_resp
from emkit.distributions.gaussian.noise import hypervolume, streamed_hypervolume
from emkit.distributions.gaussian.prior import ConjugatePrior

REFERENCE = Path(__file__).parent / "reference" / "mclust_prior.json"
NOISE = json.loads(REFERENCE.read_text())["noise"]
X = np.asarray(NOISE["data"], dtype=float)
GUESS = np.asarray(NOISE["noise_init"], dtype=bool)
CASES = NOISE["cases"]
IDS = [f"{c['model']}-{c['G']}{'-prior' if c['prior'] else ''}" for c in CASES]


def _start(case):
    """mclust's start: its hc partition of the rows not guessed noise, the guess as noise."""
    G = case["G"]
    z0 = np.zeros((X.shape[0], G + 1))
    z0[np.flatnonzero(~GUESS), np.asarray(case["partition"]) - 1] = 1.0
    z0[GUESS, G] = 1.0
    return z0


def _fit(case, **params):
    model, G = case["model"], case["G"]
    structure = COVARIANCE_STRUCTURES[model]
    z0 = _start(case)
    prior = ConjugatePrior().resolve(X, G, model) if case["prior"] else None
    start = gaussian_from_resp(structure, X, z0[:, :G], 0.0, prior)
    settings = {"reg_covar": 0.0, "tol": 1e-13, "max_iter": 20000,
                "prior": "default" if case["prior"] else None, **params}
    gm = GaussianMixture(G, covariance_type=model, noise=True, weights_init=z0.mean(axis=0),
                         means_init=start.means,
                         precisions_init=structure.precisions(start.precisions_cholesky),
                         **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gm.fit(X)


def test_volume_is_mclusts_hypvol():
    assert hypervolume(X) == pytest.approx(NOISE["hypvol"], rel=1e-12)
    assert 1.0 / hypervolume(X) == pytest.approx(NOISE["Vinv"], rel=1e-12)
    # One feature: the range. A box along the principal axes when that is smaller.
    assert hypervolume(X[:, :1]) == np.ptp(X[:, 0])
    line = np.c_[np.arange(10.0), np.arange(10.0) + 0.01 * (-1.0) ** np.arange(10)]
    assert hypervolume(line) < 0.5 * np.prod(np.ptp(line, axis=0))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_same_noise_fit_as_mclust_from_the_same_start(case):
    # The start is Mclust's own: me() from it reproduces Mclust's fit.
    assert case["me_default_loglik"] == pytest.approx(case["mclust_loglik"], rel=1e-12)
    gm = _fit(case)
    loglik = gm.score(X) * X.shape[0]
    assert loglik == pytest.approx(case["loglik"], rel=1e-9)
    # BIC counts the noise weight and the volume, as mclust's nMclustParams(noise = TRUE).
    assert gm._n_parameters() == case["n_parameters"] == case["mclust_n_parameters"]
    assert -gm.bic(X) == pytest.approx(case["bic"], rel=1e-9)
    weights = np.asarray(case["weights"])
    assert gm.noise_weight_ == pytest.approx(weights[-1], abs=1e-5)
    np.testing.assert_allclose(gm.weights_, weights[:-1], atol=1e-5)
    assert gm.weights_.sum() + gm.noise_weight_ == pytest.approx(1.0)
    means = np.asarray(case["fit"]["means"])
    np.testing.assert_allclose(gm.means_, means, rtol=1e-5)


def test_predict_marks_noise_rows_and_predict_proba_has_a_noise_column(tmp_path):
    case = CASES[0]
    gm = _fit(case)
    proba = gm.predict_proba(X)
    assert proba.shape == (X.shape[0], case["G"] + 1)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    labels = gm.predict(X)
    noise_rows = proba.argmax(axis=1) == case["G"]
    np.testing.assert_array_equal(labels == -1, noise_rows)
    np.testing.assert_array_equal(labels[~noise_rows], proba[~noise_rows].argmax(axis=1))
    # Most of the 60 scattered rows (the last ones) are called noise, few of faithful's.
    assert (labels[-60:] == -1).mean() > 0.5  # uniform rows also fall inside the clusters
    assert (labels[:272] == -1).mean() < 0.1
    # The noise column is the noise weight times 1/V over the mixture density.
    density = np.exp(gm.score_samples(X))
    np.testing.assert_allclose(proba[:, -1], gm.noise_weight_ / gm.noise_volume_ / density)
    loaded = load(save(gm, tmp_path / "noise.emkit"))
    assert loaded.noise and loaded.noise_weight_ == gm.noise_weight_
    assert loaded.noise_volume_ == gm.noise_volume_
    np.testing.assert_array_equal(loaded.predict(X), labels)
    assert loaded.bic(X) == gm.bic(X)


def test_noise_init_and_default_start():
    """noise_init rows start as noise (the Gaussian start from the others); likelihood climbs."""
    gm = GaussianMixture(2, noise=True, noise_init=GUESS, init_params="hc", tol=1e-8,
                         max_iter=500).fit(X)
    assert np.all(np.diff(gm.history_) >= -1e-12)
    plain = GaussianMixture(2, noise=True, random_state=0, tol=1e-8, max_iter=500).fit(X)
    assert np.all(np.diff(plain.history_) >= -1e-12)
    # Both find the noise (about the 60 scattered rows of 332) and beat no noise on BIC.
    without = GaussianMixture(2, random_state=0, tol=1e-8, max_iter=500).fit(X)
    for fit in (gm, plain):
        assert 0.1 < fit.noise_weight_ < 0.3
        assert fit.bic(X) < without.bic(X)


def test_noise_options_are_checked():
    with pytest.raises(ValueError, match="noise_init must be a boolean array"):
        GaussianMixture(2, noise=True, noise_init=np.zeros(5, bool)).fit(X)
    with pytest.raises(ValueError, match="noise=False"):
        GaussianMixture(2, noise_init=GUESS).fit(X)
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match=r"noise_init must be a boolean array of shape \(332,"):
        GaussianMixture(2, noise=True, noise_init=GUESS[1:]).fit(da.from_array(X, chunks=100))
    with pytest.raises(ValueError, match=r"labels must lie in \[-1, 2\]"):  # 2: the noise
        GaussianMixture(2, noise=True).fit(X, labels=np.full(X.shape[0], 3))
    with pytest.raises(ValueError, match="does not draw from a noise"):
        GaussianMixture(2, noise=True, random_state=0).fit(X).sample(5)
    gm = GaussianMixture(2, noise=True, noise_volume=1e6, random_state=0).fit(X)
    assert gm.noise_volume_ == 1e6


def test_select_model_with_noise():
    from emkit import select_model

    result = select_model(X, [1, 2], ("VVV",), noise=True, init_params="hc", n_init=1)
    best = result.best_estimator
    assert best.noise and best.n_components == 2
    assert 0.1 < best.noise_weight_ < 0.3
    # Every candidate carries the noise: its BIC counts the noise weight and volume.
    assert result.table["bic"].notna().all()


# ----------------------------------------------------------------------------------------
# sample_weight and labels with the noise component.


def _given_start(case):
    """The case's start as *_init values (no draws: the same start for any rows)."""
    model, G = case["model"], case["G"]
    structure = COVARIANCE_STRUCTURES[model]
    z0 = _start(case)
    start = gaussian_from_resp(structure, X, z0[:, :G], 0.0, None)
    return {"n_components": G, "covariance_type": model, "noise": True,
            "weights_init": z0.mean(axis=0), "means_init": start.means,
            "precisions_init": structure.precisions(start.precisions_cholesky)}


@pytest.mark.parametrize("case", [CASES[0], CASES[4]], ids=[IDS[0], IDS[4]])
def test_integer_sample_weight_is_repeated_rows(case):
    # Weighted E- and M-steps, the noise weight's included, and the volume of the rows the
    # weights stand for (zero: the row is left out, also of the noise's box).
    w = np.random.default_rng(1).integers(0, 4, X.shape[0])
    repeated = np.repeat(X, w, axis=0)
    settings = {**_given_start(case), "reg_covar": 0.0, "tol": 0.0, "max_iter": 60}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol=0: "did not converge", by design
        weighted = GaussianMixture(**settings).fit(X, sample_weight=w)
        copies = GaussianMixture(**settings).fit(repeated)
    assert weighted.noise_volume_ == pytest.approx(copies.noise_volume_, rel=1e-12)
    assert weighted.noise_volume_ != pytest.approx(hypervolume(X), rel=1e-3)  # it moved
    assert weighted.noise_weight_ == pytest.approx(copies.noise_weight_, rel=1e-8)
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(copies, name), rtol=1e-8,
                                   err_msg=name)
    assert weighted.n_samples_seen_ == repeated.shape[0]
    # From the default start too, the weighted fit climbs.
    fit = GaussianMixture(2, noise=True, random_state=0, tol=1e-8).fit(X, sample_weight=w)
    assert np.all(np.diff(fit.history_) >= -1e-12) and 0.05 < fit.noise_weight_ < 0.4


def _weighted_m_step(resp, w):
    """The complete-data M-step by hand: weights, means and full covariances (K + 1 columns
    of ``resp``, the noise's last)."""
    resp = resp * w[:, None]
    counts = resp.sum(axis=0)
    means = (resp[:, :-1].T @ X) / counts[:-1, None]
    covariances = np.array([(resp[:, k, None] * (X - m)).T @ (X - m) / counts[k]
                            for k, m in enumerate(means)])
    return counts / counts.sum(), means, covariances


def test_labels_fix_rows_to_their_component_and_label_k_is_noise():
    # Every row labelled (2, the noise, for the guessed scatter): EM is one M-step of the
    # complete data, weighted. Its fit and objective by hand.
    from scipy.stats import multivariate_normal

    labels = np.where(GUESS, 2, (X[:, 0] > 3).astype(int))
    w = np.random.default_rng(2).uniform(0.5, 2.0, X.shape[0])
    gm = GaussianMixture(2, noise=True, reg_covar=0.0, random_state=0).fit(
        X, labels=labels, sample_weight=w)
    weights, means, covariances = _weighted_m_step(np.eye(3)[labels], w)
    np.testing.assert_allclose(np.append(gm.weights_, gm.noise_weight_), weights, rtol=1e-12)
    np.testing.assert_allclose(gm.means_, means, rtol=1e-12)
    np.testing.assert_allclose(gm.covariances_, covariances, rtol=1e-10)
    volume = hypervolume(X, sample_weight=w)
    assert gm.noise_volume_ == volume
    # The start (max_iter=0) is that M-step already: the labelled rows, weighted.
    start = GaussianMixture(2, noise=True, reg_covar=0.0, max_iter=0, random_state=0).fit(
        X, labels=labels, sample_weight=w)
    np.testing.assert_allclose(np.append(start.weights_, start.noise_weight_), weights,
                               rtol=1e-12)
    np.testing.assert_allclose(start.covariances_, covariances, rtol=1e-10)
    # The objective: the complete-data log-likelihood of the labelled rows, weighted.
    log_density = np.column_stack(
        [multivariate_normal(m, c).logpdf(X) for m, c in zip(means, covariances, strict=True)]
        + [np.full(X.shape[0], -np.log(volume))])
    terms = np.log(weights[labels]) + log_density[np.arange(X.shape[0]), labels]
    assert gm.lower_bound_ == pytest.approx(np.average(terms, weights=w), rel=1e-10)


def test_partial_labels_are_em_with_those_rows_responsibilities_fixed():
    # At convergence the fit is a fixed point of EM whose E-step gives the labelled rows
    # one-hot responsibilities (the noise's column for label 2) and the others their posterior.
    labels = np.full(X.shape[0], -1)
    short, long = np.flatnonzero(X[:272, 0] < 2.5)[:15], np.flatnonzero(X[:272, 0] > 4)[:15]
    labels[short], labels[long], labels[np.flatnonzero(GUESS)[:10]] = 0, 1, 2
    gm = GaussianMixture(2, noise=True, reg_covar=0.0, tol=1e-12, max_iter=5000,
                         random_state=0).fit(X, labels=labels)
    assert gm.converged_ and np.all(np.diff(gm.history_) >= -1e-12)
    resp = gm.predict_proba(X)
    known = labels >= 0
    resp[known] = np.eye(3)[labels[known]]
    weights, means, covariances = _weighted_m_step(resp, np.ones(X.shape[0]))
    np.testing.assert_allclose(np.append(gm.weights_, gm.noise_weight_), weights, rtol=1e-6)
    np.testing.assert_allclose(gm.means_, means, rtol=1e-6)
    np.testing.assert_allclose(gm.covariances_, covariances, rtol=1e-6)
    # The labelled components keep their names (the start is aligned to the labels).
    assert gm.means_[0, 0] < 2.5 < 4 < gm.means_[1, 0]
    # No known row: the same fit as without labels.
    unlabelled = GaussianMixture(2, noise=True, random_state=0).fit(
        X, labels=np.full(X.shape[0], -1))
    plain = GaussianMixture(2, noise=True, random_state=0).fit(X)
    np.testing.assert_allclose(unlabelled.means_, plain.means_, rtol=1e-12)
    assert unlabelled.noise_weight_ == pytest.approx(plain.noise_weight_, rel=1e-12)


def test_frozen_parameters_with_noise_are_em_over_the_free_ones():
    # Frozen weights include the noise's (weights_init has its entry, last); the free
    # parameters are at a fixed point of EM's M-step given the frozen ones (by hand).
    w0, m0 = np.array([0.4, 0.4, 0.2]), np.array([[2.0, 55.0], [4.5, 80.0]])
    settings = {"noise": True, "weights_init": w0, "means_init": m0, "tol": 1e-12,
                "max_iter": 3000, "reg_covar": 0.0, "random_state": 0}
    frozen_weights = GaussianMixture(2, params="mc", **settings).fit(X)
    np.testing.assert_array_equal(np.append(frozen_weights.weights_,
                                            frozen_weights.noise_weight_), w0)
    _, means, covariances = _weighted_m_step(frozen_weights.predict_proba(X), np.ones(len(X)))
    np.testing.assert_allclose(frozen_weights.means_, means, rtol=1e-6)
    np.testing.assert_allclose(frozen_weights.covariances_, covariances, rtol=1e-5)
    frozen_means = GaussianMixture(2, params="wc", **settings).fit(X)
    np.testing.assert_array_equal(frozen_means.means_, m0)
    resp = frozen_means.predict_proba(X)
    weights = resp.mean(axis=0)
    around = [(resp[:, k, None] * (X - m)).T @ (X - m) / resp[:, k].sum()
              for k, m in enumerate(m0)]  # the scatter around the frozen means
    np.testing.assert_allclose(np.append(frozen_means.weights_, frozen_means.noise_weight_),
                               weights, rtol=1e-6)
    np.testing.assert_allclose(frozen_means.covariances_, around, rtol=1e-5)
    for fit in (frozen_weights, frozen_means):
        assert np.all(np.diff(fit.history_) >= -1e-12)
    # BIC counts the free parameters, and the volume as mclust does: 4 means, 6 covariance
    # entries, 1 volume with the weights frozen; 3 weights less 1, 6 and 1 with the means.
    assert frozen_weights._n_parameters() == 11 and frozen_means._n_parameters() == 9


@pytest.mark.parametrize("accelerate", [True, "daarem"])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_accelerated_noise_fit_reaches_plain_ems_optimum(accelerate, covariance_type):
    # SQUAREM and DAAREM extrapolate the Gaussian parameters and every weight, the noise's
    # (the last) included; the likelihood never falls, and the optimum is plain EM's.
    settings = {"covariance_type": covariance_type, "noise": True, "tol": 1e-10,
                "max_iter": 5000, "random_state": 0}
    plain = GaussianMixture(2, **settings).fit(X)
    fast = GaussianMixture(2, accelerate=accelerate, **settings).fit(X)
    assert fast.converged_ and np.all(np.diff(fast.history_) >= -1e-12)
    assert fast.lower_bound_ == pytest.approx(plain.lower_bound_, rel=1e-9)
    assert fast.noise_weight_ == pytest.approx(plain.noise_weight_, rel=1e-3)
    np.testing.assert_allclose(fast.means_, plain.means_, rtol=1e-4)
    assert fast.n_iter_ < plain.n_iter_


def test_streamed_volume_is_the_in_memory_one():
    w = np.random.default_rng(3).integers(0, 3, X.shape[0]).astype(float)

    def chunks(rows, weights=None, size=50):
        return lambda: ((rows[i:i + size], None if weights is None else weights[i:i + size])
                        for i in range(0, len(rows), size))

    assert streamed_hypervolume(chunks(X)) == pytest.approx(hypervolume(X), rel=1e-12)
    assert streamed_hypervolume(chunks(X, w)) == pytest.approx(
        hypervolume(X, sample_weight=w), rel=1e-12)
    assert streamed_hypervolume(chunks(X[:, :1])) == np.ptp(X[:, 0])
    with pytest.raises(ValueError, match="no NaN"):
        streamed_hypervolume(chunks(np.vstack([X, [[np.nan, 1.0]]])))


def test_streamed_and_dask_noise_fits_are_the_in_memory_fit(tmp_path, monkeypatch):
    # From the same given start, weighted or not: the volume of every row (two streamed
    # passes, not the start's sample, cut here to 100 rows), then the same EM as in memory.
    da = pytest.importorskip("dask.array")
    from emkit import sources
    from emkit.data import scale

    monkeypatch.setattr(scale, "INIT_SAMPLE_ROWS", 100)

    np.save(tmp_path / "x.npy", X)
    settings = {**_given_start(CASES[0]), "reg_covar": 0.0, "tol": 1e-10, "max_iter": 500,
                "chunk_size": 50}
    w = np.random.default_rng(1).integers(0, 4, X.shape[0]).astype(float)
    for weights in (None, w):
        in_memory = GaussianMixture(**settings).fit(X, sample_weight=weights)
        for data in (sources.open(tmp_path / "x.npy", chunk_size=64),
                     da.from_array(X, chunks=(100, 2))):
            fit = GaussianMixture(**settings).fit(data, sample_weight=weights)
            assert fit.noise_volume_ == pytest.approx(in_memory.noise_volume_, rel=1e-12)
            assert fit.noise_weight_ == pytest.approx(in_memory.noise_weight_, rel=1e-10)
            np.testing.assert_allclose(fit.means_, in_memory.means_, rtol=1e-10)
            np.testing.assert_allclose(fit.covariances_, in_memory.covariances_, rtol=1e-9)
    # Labels ride with the chunks; n_components labels the noise there too.
    labels = np.full(X.shape[0], -1)
    labels[np.flatnonzero(GUESS)[:10]] = 2
    dask_fit = GaussianMixture(**settings).fit(da.from_array(X, chunks=(100, 2)), labels=labels)
    memory_fit = GaussianMixture(**settings).fit(X, labels=labels)
    assert dask_fit.noise_weight_ == pytest.approx(memory_fit.noise_weight_, rel=1e-10)


def _streamed_inputs(tmp_path):
    """X as a Dask array, an .npy file source (rows known) and a CSV (rows counted)."""
    da = pytest.importorskip("dask.array")
    from emkit import sources

    np.save(tmp_path / "x.npy", X)
    np.savetxt(tmp_path / "x.csv", X, delimiter=",", fmt="%.17g")
    return {"dask": da.from_array(X, chunks=(100, 2)),
            "npy": sources.open(tmp_path / "x.npy", chunk_size=64),
            "csv": sources.open(tmp_path / "x.csv", chunk_size=64)}


def test_noise_init_streamed_is_the_in_memory_fit(tmp_path):
    # Up to INIT_SAMPLE_ROWS rows the streamed start's sample is every row, in order: the
    # guess starts the same rows as noise, and the fit is the in-memory one.
    settings = {"noise": True, "noise_init": GUESS, "init_params": "hc", "tol": 1e-10,
                "max_iter": 500, "reg_covar": 0.0}
    in_memory = GaussianMixture(2, **settings).fit(X)
    unguessed = GaussianMixture(2, **{**settings, "noise_init": None}).fit(X)
    # The guess matters: another start, another path (to the same maximum here).
    assert abs(unguessed.history_[0] - in_memory.history_[0]) > 1e-3
    for name, data in _streamed_inputs(tmp_path).items():
        fit = GaussianMixture(2, **settings).fit(data)
        assert fit.noise_weight_ == pytest.approx(in_memory.noise_weight_, rel=1e-9), name
        np.testing.assert_allclose(fit.means_, in_memory.means_, rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(fit.covariances_, in_memory.covariances_, rtol=1e-8)
        np.testing.assert_allclose(fit.history_[:3], in_memory.history_[:3], rtol=1e-10)
        with pytest.raises(ValueError, match=r"shape \(332,\) \(True for the rows"):
            GaussianMixture(2, **{**settings, "noise_init": np.append(GUESS, True)}).fit(data)


def test_streamed_noise_init_starts_the_sampled_rows_as_their_guess(tmp_path, monkeypatch):
    # With more rows than the start's sample, the start is the in-memory start of the
    # sampled rows with their own guesses (max_iter=0: the start itself), for the volume
    # of every row.
    from emkit.data import scale

    monkeypatch.setattr(scale, "INIT_SAMPLE_ROWS", 150)
    prepared = []
    original = scale.prepare

    def spy(*args, **kwargs):
        sample, source = original(*args, **kwargs)
        prepared.append(source.init_index)
        return sample, source

    monkeypatch.setattr(scale, "prepare", spy)
    settings = {"noise": True, "init_params": "hc", "max_iter": 0, "reg_covar": 0.0,
                "noise_volume": hypervolume(X)}
    for name, data in _streamed_inputs(tmp_path).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter=0 does not converge
            fit = GaussianMixture(2, noise_init=GUESS, **settings).fit(data)
            index = prepared[-1]
            assert index.shape == (150,) and GUESS[index].any(), name
            start = GaussianMixture(2, noise_init=GUESS[index], **settings).fit(X[index])
        assert fit.noise_weight_ == pytest.approx(start.noise_weight_, rel=1e-12), name
        np.testing.assert_allclose(fit.means_, start.means_, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(fit.covariances_, start.covariances_, rtol=1e-10)
