"""Hidden Markov models: restarts (n_init), SQUAREM (accelerate), free-parameter counts, Dask."""

from __future__ import annotations

import numpy as np
import pytest

from emkit import HiddenMarkovModel
from emkit.distributions import Categorical, Gaussian, Poisson
from emkit.distributions.codec import ComponentListCodec
from emkit.distributions.component_list import ComponentList
from emkit.hmm import CategoricalHMM, GaussianHMM, PoissonHMM
from emkit.latent.hmm import HiddenMarkovChain, HMMCodec
from emkit.latent.hmm_gaussian import PriorGaussian, PriorGaussianCodec

hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")

FAIR, LOADED = np.full(6, 1 / 6), np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.5])
CASINO = HiddenMarkovModel([Categorical(FAIR), Categorical(LOADED)],
                           transmat=[[0.95, 0.05], [0.1, 0.9]])
ROLLS, DICE = CASINO.sample(3000, random_state=1)
ROLLS = ROLLS.astype(np.int64)  # hmmlearn wants integer symbols
RNG = np.random.default_rng(0)
X_GAUSS = np.concatenate([RNG.normal(m, 1.0, (50, 2)) for m in (0, 1.2, 0, 1.2, 0, 1.2)])
LENGTHS = [100, 100, 100]


def _monotone(history, atol=1e-10):
    return bool(np.all(np.diff(history) >= -atol))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_squarem_reaches_the_plain_em_maximum(covariance_type):
    fits = [GaussianHMM(2, covariance_type=covariance_type, n_iter=500, tol=1e-8,
                        random_state=0, accelerate=accelerate).fit(X_GAUSS, LENGTHS)
            for accelerate in (False, True)]
    plain, fast = fits
    assert plain.monitor_.converged and fast.monitor_.converged
    assert _monotone(fast.monitor_.history)
    np.testing.assert_allclose(fast.score(X_GAUSS, LENGTHS), plain.score(X_GAUSS, LENGTHS),
                               rtol=1e-7)
    order = [np.argsort(f.means_[:, 0]) for f in fits]
    np.testing.assert_allclose(fast.means_[order[1]], plain.means_[order[0]], atol=1e-3)
    np.testing.assert_allclose(fast.transmat_[np.ix_(order[1], order[1])],
                               plain.transmat_[np.ix_(order[0], order[0])], atol=1e-3)


def test_squarem_on_any_emissions_takes_fewer_passes_and_keeps_its_best():
    # the casino's states overlap: plain Baum-Welch crawls, SQUAREM jumps
    start = [Categorical(np.full(6, 1 / 6)), Categorical([0.15, 0.15, 0.15, 0.15, 0.15, 0.25])]
    plain = HiddenMarkovModel(start, max_iter=3000, tol=1e-10).fit(ROLLS)
    fast = HiddenMarkovModel(start, max_iter=3000, tol=1e-10, accelerate=True).fit(ROLLS)
    assert fast.n_iter_ < plain.n_iter_ / 2
    assert _monotone(fast.history_, atol=0)
    # history_ is the best average log-likelihood seen, and the kept model is that one
    assert fast.score(ROLLS) / len(ROLLS) == pytest.approx(fast.history_[-1], abs=1e-12)
    assert fast.score(ROLLS) == pytest.approx(plain.score(ROLLS), rel=1e-7)


def test_squarem_leaves_parameters_outside_params_exactly_as_set():
    model = GaussianHMM(2, covariance_type="full", init_params="", params="tm", n_iter=50,
                        accelerate=True)
    model.startprob_ = np.array([0.3, 0.7])
    model.transmat_ = np.array([[0.8, 0.2], [0.3, 0.7]])
    model.means_ = np.array([[0.0, 0.0], [2.0, 2.0]])
    model.covars_ = np.array([np.eye(2) * 2.0, np.eye(2) * 0.5])
    model.fit(X_GAUSS, LENGTHS)
    np.testing.assert_array_equal(model.startprob_, [0.3, 0.7])
    np.testing.assert_array_equal(model.covars_, [np.eye(2) * 2.0, np.eye(2) * 0.5])
    assert not np.allclose(model.means_, [[0.0, 0.0], [2.0, 2.0]])
    assert _monotone(model.monitor_.history)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_codecs_round_trip(covariance_type):
    covars = {"full": np.array([np.eye(2) + 0.3, np.eye(2) * 2]), "diag": np.ones((2, 2)),
              "spherical": np.array([1.0, 2.0]), "tied": np.eye(2) + 0.2}[covariance_type]
    emissions = PriorGaussian.build(np.array([[0.0, 1.0], [2.0, 3.0]]), covars, covariance_type)
    chain = HiddenMarkovChain(np.array([0.4, 0.6]), np.array([[0.9, 0.1], [0.0, 1.0]]),
                              emissions)
    codec = HMMCodec(PriorGaussianCodec())
    back = codec.unflatten(codec.flatten(chain), like=chain)
    np.testing.assert_allclose(back.startprob, chain.startprob, rtol=1e-12)
    np.testing.assert_allclose(back.transmat, chain.transmat, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(back.emissions.family.covariances, covars, rtol=1e-12)
    np.testing.assert_allclose(back.emissions.family.means, emissions.family.means)
    size = 2 + 4 + 4 + {"full": 6, "diag": 4, "spherical": 2, "tied": 3}[covariance_type]
    assert codec.flatten(chain).size == size
    with pytest.raises(ValueError, match="finite"):
        codec.unflatten(np.full(size, np.nan), like=chain)


def test_codec_leaves_out_the_parts_not_fitted():
    family = ComponentList((Poisson([1.0, 2.0]), Poisson([3.0, 4.0])))
    chain = HiddenMarkovChain(np.array([0.5, 0.5]), np.full((2, 2), 0.5), family,
                              fit_start=False, fit_emissions=False)
    codec = HMMCodec(ComponentListCodec())
    vector = codec.flatten(chain)
    assert vector.size == 4
    moved = codec.unflatten(vector + np.array([1.0, 0.0, 0.0, 0.0]), like=chain)
    np.testing.assert_allclose(moved.transmat[0], [np.e / (1 + np.e), 1 / (1 + np.e)])
    assert moved.emissions is family and moved.startprob is chain.startprob


def test_accelerate_refuses_viterbi_training():
    model = HiddenMarkovModel([Poisson(1.0), Poisson(5.0)], algorithm="hard", accelerate=True)
    with pytest.raises(ValueError, match="accelerate=True needs algorithm='em'"):
        model.fit(np.arange(10.0)[:, None])


@pytest.mark.parametrize("n_init", [0, 1.5, True])
def test_bad_n_init_is_refused(n_init):
    with pytest.raises(ValueError, match="n_init must be an integer >= 1"):
        PoissonHMM(2, n_init=n_init).fit(np.arange(10.0)[:, None])


def test_drop_in_restarts_are_hmmlearns_successive_starts():
    # hmmlearn fitted three times with one RandomState draws three successive starts;
    # n_init=3 runs the same three and keeps the best final log-likelihood.
    rs = np.random.RandomState(5)
    theirs = [hmmlearn_hmm.CategoricalHMM(2, n_iter=30, tol=-np.inf, random_state=rs).fit(ROLLS)
              for _ in range(3)]
    finals = [t.monitor_.history[-1] for t in theirs]
    assert np.ptp(finals) > 1  # the starts differ
    best = theirs[int(np.argmax(finals))]
    ours = CategoricalHMM(2, n_iter=30, tol=-np.inf, random_state=5, n_init=3).fit(ROLLS)
    np.testing.assert_allclose(ours.emissionprob_, best.emissionprob_, rtol=1e-8)
    np.testing.assert_allclose(ours.transmat_, best.transmat_, rtol=1e-8)
    np.testing.assert_allclose(ours.monitor_.history, best.monitor_.history, rtol=1e-10)
    first = CategoricalHMM(2, n_iter=30, tol=-np.inf, random_state=5).fit(ROLLS)
    np.testing.assert_allclose(first.emissionprob_, theirs[0].emissionprob_, rtol=1e-8)


def test_random_starts_leave_the_symmetric_start_and_find_the_loaded_die():
    uniform = [Categorical(np.full(6, 1 / 6))] * 2
    single = HiddenMarkovModel(uniform, max_iter=300).fit(ROLLS)
    # identical starting states stay identical: Baum-Welch cannot separate them
    np.testing.assert_allclose(single.emissions_[0].probs, single.emissions_[1].probs)
    restarted = HiddenMarkovModel(uniform, max_iter=300, n_init=6, random_state=0).fit(ROLLS)
    assert restarted.score(ROLLS) > single.score(ROLLS) + 20
    sixes = sorted(d.probs[5] for d in restarted.emissions_)
    assert sixes[0] == pytest.approx(1 / 6, abs=0.05) and sixes[1] == pytest.approx(0.5, abs=0.1)
    # every restart is a fit of its own: the kept one has the best final log-likelihood
    assert restarted.lower_bound_ >= single.lower_bound_


def test_n_parameters_count_the_letters_in_params():
    k, d = 3, 2
    fitted = []
    for cls in (GaussianHMM, hmmlearn_hmm.GaussianHMM):
        model = cls(k, covariance_type="full", n_iter=3, init_params="")
        model.startprob_, model.transmat_ = np.full(k, 1 / k), np.full((k, k), 1 / k)
        model.means_ = X_GAUSS[[0, 60, 120]].copy()
        model.covars_ = np.tile(np.eye(d), (k, 1, 1))
        fitted.append(model.fit(X_GAUSS))
    model, reference = fitted
    # default params: every letter, as hmmlearn's bic/aic
    assert model.bic(X_GAUSS) == pytest.approx(reference.bic(X_GAUSS), rel=1e-10)
    assert model.aic(X_GAUSS) == pytest.approx(reference.aic(X_GAUSS), rel=1e-10)
    per_letter = {"s": k - 1, "t": k * (k - 1), "m": k * d, "c": k * d * (d + 1) // 2}
    for params in ("stmc", "tm", "c", "st"):
        model.set_params(params=params)
        assert model.n_parameters == sum(per_letter[p] for p in params)
        assert model.bic(X_GAUSS) == pytest.approx(
            -2 * model.score(X_GAUSS) + model.n_parameters * np.log(len(X_GAUSS)))
    tied = GaussianHMM(k, covariance_type="tied", params="c", n_iter=1).fit(X_GAUSS)
    assert tied.n_parameters == d * (d + 1) // 2
    categorical = CategoricalHMM(2, params="se", n_iter=1, random_state=0).fit(ROLLS)
    assert categorical.n_parameters == 1 + 2 * 5
    counts = np.random.default_rng(0).poisson(3, (50, 3))
    poisson = PoissonHMM(2, params="l", n_iter=1, random_state=0).fit(counts)
    assert poisson.n_parameters == 2 * 3


# ----------------------------------------------------------------------------------------
# Dask arrays of many sequences

da = pytest.importorskip("dask.array")
DASK_LENGTHS = [40, 75, 60, 25, 100]  # 300 rows; blocks of 70 rows cut most sequences


def _same_fit(ours, theirs, names):
    for name in names:
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-10,
                                   atol=1e-13, err_msg=name)
    np.testing.assert_allclose(ours.history_, theirs.history_, rtol=1e-12)
    assert ours.n_iter_ == theirs.n_iter_


def test_dask_fit_of_any_emissions_equals_the_in_memory_fit():
    X = np.concatenate([RNG.poisson(lam, (60, 2)) for lam in (1, 6, 1, 6, 12)]).astype(float)
    X[5, 0] = X[77] = np.nan  # a missing value and a fully missing step
    start = [Poisson([1.0, 2.0]), Poisson([5.0, 5.0]), Poisson([10.0, 9.0])]
    memory = HiddenMarkovModel(start, max_iter=15, tol=0).fit(X, DASK_LENGTHS)
    dask = HiddenMarkovModel(start, max_iter=15, tol=0).fit(
        da.from_array(X, chunks=(70, 1)), DASK_LENGTHS)
    _same_fit(dask, memory, ["startprob_", "transmat_"])
    for ours, theirs in zip(dask.emissions_, memory.emissions_, strict=True):
        np.testing.assert_allclose(ours.rate, theirs.rate, rtol=1e-10)


@pytest.mark.parametrize("options", [dict(), dict(accelerate=True, n_init=2)])
def test_dask_fit_of_a_drop_in_equals_the_in_memory_fit_from_its_default_start(options):
    # fewer rows than the start's sample: k-means sees every row, as in memory
    memory = GaussianHMM(3, covariance_type="full", n_iter=20, tol=1e-6, random_state=0,
                         **options).fit(X_GAUSS, DASK_LENGTHS)
    dask = GaussianHMM(3, covariance_type="full", n_iter=20, tol=1e-6, random_state=0,
                       **options).fit(da.from_array(X_GAUSS, chunks=70), DASK_LENGTHS)
    _same_fit(dask, memory, ["startprob_", "transmat_", "means_", "covars_"])
    np.testing.assert_allclose(dask.monitor_.history, memory.monitor_.history, rtol=1e-12)


def test_dask_blocks_are_cut_at_sequence_boundaries():
    from emkit.latent.hmm_dask import DaskSequenceSource

    lengths = np.array(DASK_LENGTHS)
    aligned = DaskSequenceSource(da.from_array(X_GAUSS, chunks=((115, 85, 100), 2)), lengths)
    assert aligned.X.chunks[0] == (115, 85, 100)  # already whole sequences: kept
    assert aligned.blocks == [(0, 2), (2, 4), (4, 5)]
    cut = DaskSequenceSource(da.from_array(X_GAUSS, chunks=70), lengths)
    ends = set(np.cumsum(lengths).tolist())
    assert set(np.cumsum(cut.X.chunks[0]).tolist()) <= ends


def test_dask_errors_name_the_global_row_and_the_lengths():
    X = X_GAUSS.copy()
    X[233, 1] = np.inf
    model = HiddenMarkovModel([Gaussian([0.0, 0.0], np.eye(2)), Gaussian([1.0, 1.0], np.eye(2))])
    with pytest.raises(ValueError, match="row 233"):
        model.fit(da.from_array(X, chunks=70), DASK_LENGTHS)
    with pytest.raises(ValueError, match="lengths sum to 299 but X has 300 rows"):
        model.fit(da.from_array(X_GAUSS, chunks=70), [40, 75, 60, 25, 99])
    codes = da.from_array(np.r_[np.zeros(150), np.full(150, 3.0)][:, None], chunks=100)
    with pytest.raises(ValueError, match="X holds category 3 but the model has 3 categories"):
        CategoricalHMM(2, n_features=3, n_iter=2).fit(codes, [150, 150])
