"""Hidden Markov models: hmmlearn parity, brute-force enumeration, MLE, monotonicity, errors."""

from __future__ import annotations

import itertools
import warnings
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import emkit
from emkit import HiddenMarkovModel
from emkit.core.engine import expected_stats
from emkit.distributions import Categorical, Gaussian, Poisson
from emkit.distributions.component_list import ComponentList
from emkit.hmm import CategoricalHMM, GaussianHMM, PoissonHMM
from emkit.latent.hmm import EmptyStateWarning, HiddenMarkovChain, Sequences, sequence_chunks

hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")

RNG = np.random.default_rng(0)
K, D = 3, 2
START = RNG.dirichlet(np.ones(K))
TRANS = RNG.dirichlet(np.ones(K), size=K)
MEANS = RNG.normal(0, 2, (K, D))
COVARS = {
    "full": np.array([np.eye(D) * (1 + k) + 0.3 for k in range(K)]),
    "diag": RNG.uniform(0.5, 2, (K, D)),
    "spherical": RNG.uniform(0.5, 2, K),
    "tied": np.eye(D) + 0.2,
}
X_GAUSS = np.concatenate([RNG.normal(m, 1, (60, D)) for m in (0, 3, -2, 0, 3)])
LENGTHS = [100, 80, 120]


def _set(model, **attributes):
    for name, value in attributes.items():
        setattr(model, name, np.array(value, copy=True))
    return model


def _assert_same_fit(ours, theirs, X, lengths, names):
    for name in names:
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-8,
                                   atol=1e-10, err_msg=name)
    np.testing.assert_allclose(ours.monitor_.history, theirs.monitor_.history, rtol=1e-10)
    assert ours.monitor_.iter == theirs.monitor_.iter
    np.testing.assert_allclose(ours.score(X, lengths), theirs.score(X, lengths), rtol=1e-10)
    our_logprob, our_path = ours.decode(X, lengths)
    their_logprob, their_path = theirs.decode(X, lengths)
    np.testing.assert_allclose(our_logprob, their_logprob, rtol=1e-10)
    if not np.array_equal(our_path, their_path):
        # Paths tied in probability (possible with discrete emissions) may be broken
        # either way: then both must score the best log probability.
        np.testing.assert_allclose(_path_log_prob(ours, X, lengths, their_path), our_logprob,
                                   rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X, lengths), theirs.predict_proba(X, lengths),
                               atol=1e-9)


def _path_log_prob(model, X, lengths, path):
    chain = model._chain()
    log_b = chain.emissions.log_prob(np.asarray(X, float))
    total, start = 0.0, 0
    for n in lengths:
        z = path[start:start + n]
        total += np.log(chain.startprob[z[0]]) + np.log(chain.transmat[z[:-1], z[1:]]).sum()
        total += log_b[np.arange(start, start + n), z].sum()
        start += n
    return total


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_gaussian_hmm_equals_hmmlearn_from_the_same_start(covariance_type):
    fitted = []
    for cls in (GaussianHMM, hmmlearn_hmm.GaussianHMM):
        model = cls(K, covariance_type=covariance_type, init_params="", n_iter=8, tol=-np.inf)
        _set(model, startprob_=START, transmat_=TRANS, means_=MEANS,
             covars_=COVARS[covariance_type])
        fitted.append(model.fit(X_GAUSS, LENGTHS))
    ours, theirs = fitted
    assert ours.monitor_.iter == 8
    _assert_same_fit(ours, theirs, X_GAUSS, LENGTHS, ["startprob_", "transmat_", "means_"])
    if covariance_type == "spherical":
        # hmmlearn keeps spherical variances tiled to (K, D) after an M-step, and its
        # covars_ getter then returns K * D matrices: compare the variances themselves.
        np.testing.assert_allclose(ours._covars_, np.reshape(theirs._covars_, (K, -1))[:, 0],
                                   rtol=1e-8)
    else:
        np.testing.assert_allclose(ours.covars_, theirs.covars_, rtol=1e-8)


def test_gaussian_hmm_priors_params_and_tol_as_hmmlearn():
    options = dict(covariance_type="diag", init_params="", params="tm", n_iter=50, tol=1e-2,
                   means_prior=0.5, means_weight=2.0, transmat_prior=1.5)
    fitted = []
    for cls in (GaussianHMM, hmmlearn_hmm.GaussianHMM):
        model = _set(cls(K, **options), startprob_=START, transmat_=TRANS, means_=MEANS,
                     covars_=COVARS["diag"])
        fitted.append(model.fit(X_GAUSS, LENGTHS))
    ours, theirs = fitted
    assert ours.monitor_.iter == theirs.monitor_.iter < 50  # both stop on the same iteration
    np.testing.assert_array_equal(ours.startprob_, START)  # "s" not in params
    _assert_same_fit(ours, theirs, X_GAUSS, LENGTHS, ["transmat_", "means_", "covars_"])


def test_categorical_hmm_equals_hmmlearn():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 4, (300, 1))
    emission = rng.dirichlet(np.ones(4), size=K)
    fitted = []
    for cls in (CategoricalHMM, hmmlearn_hmm.CategoricalHMM):
        model = _set(cls(K, init_params="", n_iter=10, tol=-np.inf), startprob_=START,
                     transmat_=TRANS, emissionprob_=emission)
        fitted.append(model.fit(X, LENGTHS))
    _assert_same_fit(*fitted, X, LENGTHS, ["startprob_", "transmat_", "emissionprob_"])


def test_poisson_hmm_equals_hmmlearn():
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.poisson(lam, (100, 2)) for lam in (1, 6, 15)])
    lambdas = rng.uniform(1, 15, (K, 2))
    fitted = []
    for cls in (PoissonHMM, hmmlearn_hmm.PoissonHMM):
        model = _set(cls(K, init_params="", n_iter=10, tol=-np.inf), startprob_=START,
                     transmat_=TRANS, lambdas_=lambdas)
        fitted.append(model.fit(X, LENGTHS))
    _assert_same_fit(*fitted, X, LENGTHS, ["startprob_", "transmat_", "lambdas_"])


def _gaussian_chain():
    emissions = ComponentList(tuple(
        Gaussian(MEANS[k], COVARS["full"][k], reg_covar=0.0) for k in range(K)
    ))
    return HiddenMarkovChain(START, TRANS, emissions)


def _enumerate(chain, X):
    """Path probabilities of every state path (K ** T of them), by brute force."""
    log_b = chain.emissions.log_prob(X)
    paths = np.array(list(itertools.product(range(K), repeat=len(X))))
    log_p = np.log(START[paths[:, 0]]) + log_b[0, paths[:, 0]]
    for t in range(1, len(X)):
        log_p += np.log(TRANS[paths[:, t - 1], paths[:, t]]) + log_b[t, paths[:, t]]
    return paths, log_p


def test_forward_backward_equals_enumeration_of_all_81_paths():
    chain = _gaussian_chain()
    X = np.random.default_rng(3).normal(0, 2, (4, D))
    paths, log_p = _enumerate(chain, X)
    assert len(paths) == 81
    total = np.logaddexp.reduce(log_p)
    weights = np.exp(log_p - total)
    gamma, loglik, stats = chain.posteriors(Sequences(X, np.array([4])))
    np.testing.assert_allclose(loglik[0], total, rtol=1e-12)
    expected_gamma = np.array([[weights[paths[:, t] == k].sum() for k in range(K)]
                               for t in range(4)])
    np.testing.assert_allclose(gamma, expected_gamma, atol=1e-12)
    expected_trans = np.zeros((K, K))
    for t in range(3):
        np.add.at(expected_trans, (paths[:, t], paths[:, t + 1]), weights)
    np.testing.assert_allclose(stats.trans, expected_trans, atol=1e-12)
    np.testing.assert_allclose(stats.start, expected_gamma[0], atol=1e-12)
    states, best = chain.decode(Sequences(X, np.array([4])))
    np.testing.assert_array_equal(states, paths[np.argmax(log_p)])
    np.testing.assert_allclose(best[0], log_p.max(), rtol=1e-12)


def test_hard_e_step_counts_the_best_of_all_81_paths():
    chain = replace(_gaussian_chain(), hard=True)
    X = np.random.default_rng(3).normal(0, 2, (4, D))
    paths, log_p = _enumerate(chain, X)
    best = paths[np.argmax(log_p)]
    stats = chain.e_step(Sequences(X, np.array([4])))
    np.testing.assert_allclose(stats.log_likelihood, log_p.max(), rtol=1e-12)
    np.testing.assert_array_equal(stats.start, np.eye(K)[best[0]])
    expected = np.zeros((K, K))
    np.add.at(expected, (best[:-1], best[1:]), 1.0)
    np.testing.assert_array_equal(stats.trans, expected)
    np.testing.assert_array_equal(stats.occupancy, np.bincount(best, minlength=K))


def test_hard_em_never_decreases_the_best_path_probability():
    rng = np.random.default_rng(9)
    X = rng.poisson(rng.uniform(0.5, 12, 4)[rng.integers(0, 4, 300)])[:, None].astype(float)
    emissions = [Poisson(r) for r in (1.0, 4.0, 9.0)]
    model = HiddenMarkovModel(emissions, algorithm="hard", max_iter=30, tol=0).fit(
        X, lengths=[100, 200])
    assert model.n_iter_ == 30
    assert np.all(np.diff(model.history_) >= -1e-12)
    _, path = model.decode(X, [100, 200])
    assert model.history_[-1] <= _path_log_prob(model, X, [100, 200], path) / len(X) + 1e-12
    with pytest.raises(ValueError, match="algorithm must be 'em' or 'hard'"):
        HiddenMarkovModel(emissions, algorithm="viterbi").fit(X)


def test_a_fully_missing_step_contributes_only_its_transition():
    chain = _gaussian_chain()
    X = np.random.default_rng(4).normal(0, 2, (4, D))
    X[2] = np.nan  # no emission: only the transition through step 2 counts
    X[1, 0] = np.nan  # partly missing: the marginal density of the observed coordinate
    log_b = np.zeros((4, K))
    for k in range(K):
        for t in (0, 3):
            log_b[t, k] = sps.multivariate_normal(MEANS[k], COVARS["full"][k]).logpdf(X[t])
        log_b[1, k] = sps.norm(MEANS[k, 1], np.sqrt(COVARS["full"][k][1, 1])).logpdf(X[1, 1])
    np.testing.assert_allclose(chain.emissions.log_prob(X), log_b, rtol=1e-10)
    paths = np.array(list(itertools.product(range(K), repeat=4)))
    log_p = np.log(START[paths[:, 0]]) + log_b[0, paths[:, 0]]
    for t in range(1, 4):
        log_p += np.log(TRANS[paths[:, t - 1], paths[:, t]]) + log_b[t, paths[:, t]]
    _, loglik, stats = chain.posteriors(Sequences(X, np.array([4])))
    np.testing.assert_allclose(loglik[0], np.logaddexp.reduce(log_p), rtol=1e-12)
    assert stats.n_samples == 3  # the empty step is not an observation


def test_missing_values_keep_the_likelihood_monotone():
    X = X_GAUSS.copy()
    rng = np.random.default_rng(5)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[::17] = np.nan
    emissions = [Gaussian(MEANS[k], COVARS["diag"][k], "diag") for k in range(K)]
    model = HiddenMarkovModel(emissions, max_iter=30, tol=0).fit(X, LENGTHS)
    assert np.all(np.diff(model.history_) >= -1e-10)
    assert all(np.isfinite(e.mean).all() for e in model.emissions_)
    # covars_prior=0: maximum likelihood, whose EM never decreases the likelihood itself
    dropin = _set(GaussianHMM(K, covariance_type="full", covars_prior=0.0, init_params="",
                              n_iter=30, tol=-np.inf),
                  startprob_=START, transmat_=TRANS, means_=MEANS, covars_=COVARS["full"])
    history = dropin.fit(X, LENGTHS).monitor_.history
    assert np.all(np.diff(history) >= -1e-8 * abs(history[0]))


@pytest.mark.parametrize("distribution, X", [
    (Gaussian([0.0, 0.0], np.eye(2), reg_covar=0.0),
     np.random.default_rng(6).normal(size=(50, 2))),
    (Poisson([1.0, 2.0]), np.random.default_rng(6).poisson(3.0, (50, 2)).astype(float)),
    (Categorical([0.2, 0.3, 0.5]), np.random.default_rng(6).integers(0, 3, (50, 1)).astype(float)),
])
def test_one_state_hmm_is_the_family_mle(distribution, X):
    model = HiddenMarkovModel([distribution], max_iter=3).fit(X, lengths=[20, 30])
    expected = distribution.fit(X)
    (fitted,) = model.emissions_
    for name in ("mean", "covariance", "rate", "probs"):
        if hasattr(expected, name):
            np.testing.assert_allclose(getattr(fitted, name), getattr(expected, name),
                                       rtol=1e-12)
    np.testing.assert_allclose(model.transmat_, [[1.0]])
    np.testing.assert_allclose(model.score(X, [20, 30]), expected.log_prob(X).sum(), rtol=1e-12)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), n_states=st.integers(2, 4))
def test_baum_welch_never_decreases_the_likelihood(seed, n_states):
    rng = np.random.default_rng(seed)
    X = rng.poisson(rng.uniform(0.5, 12, 5)[rng.integers(0, 5, 200)])[:, None].astype(float)
    emissions = [Poisson(r) for r in rng.uniform(0.5, 12, n_states)]
    model = HiddenMarkovModel(emissions, transmat=rng.dirichlet(np.ones(n_states), n_states),
                              max_iter=25, tol=0).fit(X, lengths=[50, 70, 80])
    assert np.all(np.diff(model.history_) >= -1e-10 * abs(model.history_[0]))


def test_statistics_do_not_depend_on_chunks_or_threads():
    chain = _gaussian_chain()
    lengths = np.array(LENGTHS)
    one = expected_stats(chain, sequence_chunks(X_GAUSS, lengths, rows=10**6), n_threads=1)
    many = sequence_chunks(X_GAUSS, lengths, rows=50)
    assert len(many) == 3
    serial = expected_stats(chain, many, n_threads=1)
    threaded = expected_stats(chain, many, n_threads=3)
    for a, b in ((serial, threaded),):
        np.testing.assert_array_equal(a.trans, b.trans)
        np.testing.assert_array_equal(a.emissions.parts[0].second, b.emissions.parts[0].second)
    np.testing.assert_allclose(one.trans, serial.trans, rtol=1e-12)
    np.testing.assert_allclose(one.log_likelihood, serial.log_likelihood, rtol=1e-13)


def test_a_state_without_data_stays_finite_and_warns():
    X = np.random.default_rng(7).normal(0, 1, (100, 1))
    emissions = [Gaussian([0.0], [[1.0]]), Gaussian([1e4], [[1.0]])]
    model = HiddenMarkovModel(emissions, max_iter=3)
    with pytest.warns(EmptyStateWarning, match="state 1 received no observations"):
        model.fit(X)
    # kept as it was (the Gaussian M-step alone would collapse it onto reg_covar)
    np.testing.assert_array_equal(model.emissions_[1].mean, [1e4])
    np.testing.assert_array_equal(model.emissions_[1].covariance, [[1.0]])
    assert np.isfinite(model.transmat_).all() and np.isfinite(model.history_).all()


def test_clear_errors():
    model = HiddenMarkovModel([Poisson(1.0), Poisson(3.0)])
    X = np.ones((10, 1))
    with pytest.raises(ValueError, match="lengths sum to 9 but X has 10 rows"):
        model.fit(X, lengths=[4, 5])
    with pytest.raises(ValueError, match="sequence 1 has length 0"):
        model.fit(X, lengths=[10, 0])
    with pytest.raises(ValueError, match=r"transmat must sum to one \(row 1\)"):
        HiddenMarkovModel([Poisson(1.0), Poisson(3.0)], transmat=[[0.5, 0.5], [0.5, 0.6]]).fit(X)
    with pytest.raises(ValueError, match="startprob must have shape"):
        HiddenMarkovModel([Poisson(1.0), Poisson(3.0)], startprob=[1.0]).fit(X)
    with pytest.raises(ValueError, match="counts must be non-negative integers"):
        model.fit(np.full((10, 1), 0.5))
    with pytest.raises(ValueError, match="means_ is not set"):
        GaussianHMM(2, init_params="st").fit(np.ones((10, 1)))


def test_a_list_of_sequences_equals_x_with_lengths():
    parts = np.split(X_GAUSS, np.cumsum(LENGTHS)[:-1])
    emissions = [Gaussian(MEANS[k], COVARS["diag"][k], "diag") for k in range(K)]
    a = HiddenMarkovModel(emissions, max_iter=4).fit(parts)
    b = HiddenMarkovModel(emissions, max_iter=4).fit(X_GAUSS, LENGTHS)
    np.testing.assert_array_equal(a.transmat_, b.transmat_)
    assert a.score(parts) == b.score(X_GAUSS, LENGTHS)
    with pytest.raises(ValueError, match="not both"):
        a.score(parts, LENGTHS)


def test_information_criteria_count_every_free_parameter():
    emissions = [Gaussian(MEANS[k], COVARS["full"][k]) for k in range(K)]
    model = HiddenMarkovModel(emissions, max_iter=3).fit(X_GAUSS, LENGTHS)
    p = (K - 1) + K * (K - 1) + K * (D + D * (D + 1) // 2)
    assert model.n_parameters == p
    log_l = model.score(X_GAUSS, LENGTHS)
    assert model.bic(X_GAUSS, LENGTHS) == pytest.approx(-2 * log_l + p * np.log(len(X_GAUSS)))
    assert model.aic(X_GAUSS, LENGTHS) == pytest.approx(-2 * log_l + 2 * p)


def test_stationary_distribution_is_where_the_chain_settles():
    model = PoissonHMM(K, init_params="")
    _set(model, startprob_=START, transmat_=TRANS, lambdas_=np.ones((K, 1)))
    stationary = model.get_stationary_distribution()
    np.testing.assert_allclose(stationary, np.linalg.matrix_power(TRANS, 200)[0], rtol=1e-10)
    np.testing.assert_allclose(stationary @ TRANS, stationary, rtol=1e-12)


def test_sampling_follows_the_chain():
    transmat = np.array([[0.9, 0.1], [0.3, 0.7]])
    truth = HiddenMarkovModel([Poisson(1.0), Poisson(20.0)], transmat=transmat)
    X, states = truth.sample(20_000, random_state=0)
    counts = np.zeros((2, 2))
    np.add.at(counts, (states[:-1], states[1:]), 1)
    np.testing.assert_allclose(counts / counts.sum(axis=1, keepdims=True), transmat, atol=0.02)
    assert abs(X[states == 1].mean() - 20.0) < 0.3
    fitted = HiddenMarkovModel([Poisson(2.0), Poisson(10.0)], max_iter=200).fit(X)
    np.testing.assert_allclose(fitted.transmat_, transmat, atol=0.03)
    assert (fitted.predict(X) == states).mean() > 0.98


@pytest.mark.parametrize("make", [
    lambda: HiddenMarkovModel([Gaussian([0.0], [[1.0]]), Gaussian([3.0], [[1.0]])], max_iter=5),
    lambda: GaussianHMM(2, covariance_type="tied", random_state=0, n_iter=5),
    lambda: CategoricalHMM(2, random_state=0, n_iter=5),
    lambda: PoissonHMM(2, random_state=0, n_iter=5),
])
def test_save_and_load_round_trip(tmp_path, make):
    X = np.random.default_rng(8).poisson(3.0, (60, 1)).astype(float)
    model = make().fit(X, [30, 30])
    loaded = emkit.load(emkit.save(model, tmp_path / "hmm.emkit"))
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded.transmat_, model.transmat_)
    np.testing.assert_allclose(loaded.predict_proba(X, [30, 30]), model.predict_proba(X, [30, 30]))
    assert loaded.score(X, [30, 30]) == model.score(X, [30, 30])


def test_default_start_of_the_drop_ins_fits_and_converges():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on a well-posed fit
        model = GaussianHMM(2, covariance_type="full", n_iter=100, random_state=0).fit(
            X_GAUSS, LENGTHS)
    assert model.monitor_.converged
    assert np.all(np.diff(model.monitor_.history) > -1e-8)


def test_the_readme_section_runs():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Hidden Markov models", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```python\n")[1:]
    assert blocks
    for block in blocks:
        exec(block.split("```", 1)[0], {})
