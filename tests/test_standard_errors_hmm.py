"""Standard errors of hidden Markov models, the classifier and KMeans (issue 21).

Independent truths for the HMMs: second differences of the forward
log-likelihood (``score``, which the library's information never calls); one
state is an i.i.d. model (closed forms); a Markov chain whose states are
observed (a one-to-one emission) has the multinomial closed forms of its
transition counts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from emkit import GaussianMixtureClassifier, HiddenMarkovModel, KMeans
from emkit.distributions import Gaussian, Poisson
from emkit.estimators.standard_errors import SingularInformationError
from emkit.hmm import CategoricalHMM, GaussianHMM, PoissonHMM
from emkit.latent.hmm_information import hmm_layout, moved
from tests.test_standard_errors import numerical_hessian


def two_state_counts(n=600, seed=0):
    truth = HiddenMarkovModel([Poisson(1.0), Poisson(6.0)], startprob=[0.5, 0.5],
                              transmat=[[0.9, 0.1], [0.2, 0.8]])
    X, _ = truth.sample(n, random_state=seed)
    return X, [n // 3] * 3


def forward_log_likelihood(model, X, lengths):
    """``step -> log p(X)`` at the fit moved by ``step``, through ``model.score``."""
    chain = model._information_chain()[0]
    layout = hmm_layout(chain)

    def f(step):
        c = moved(chain, layout, step)
        other = HiddenMarkovModel(list(c.emissions.distributions))
        other.startprob_, other.transmat_ = c.startprob, c.transmat
        other.emissions_ = list(c.emissions.distributions)
        return other.score(X, lengths)

    return f


def test_poisson_hmm_information_is_minus_the_hessian():
    X, lengths = two_state_counts()
    model = HiddenMarkovModel([Poisson(2.0), Poisson(5.0)], max_iter=2000,
                              tol=1e-13).fit(X, lengths=lengths)
    se = model.standard_errors(X, lengths)
    assert se.names == ("startprob[1]", "transmat[0, 1]", "transmat[1, 0]",
                        "emissions[0].rate[0]", "emissions[1].rate[0]")
    f = forward_log_likelihood(model, X, lengths)
    hessian = numerical_hessian(lambda t: f(t - se.estimates), se.estimates)
    np.testing.assert_allclose(se.information, -hessian, atol=2e-5 * np.abs(hessian).max())
    # A probability row's errors: its reference entry has the others' sum's.
    np.testing.assert_allclose(se.errors["transmat"][:, 0], se.errors["transmat"][:, 1])
    assert se.errors["emissions[1].rate"].shape == (1,)


def test_gaussian_emissions_away_from_the_maximum():
    """Exact away from the maximum too (the score's Jacobian, not an outer product)."""
    truth = HiddenMarkovModel([Gaussian([0.0, 0.0], np.eye(2)),
                               Gaussian([3.0, 3.0], [0.25, 0.25], "diag")],
                              transmat=[[0.9, 0.1], [0.15, 0.85]])
    X, _ = truth.sample(300, random_state=1)
    model = HiddenMarkovModel([Gaussian([0.2, 0.0], np.eye(2)),
                               Gaussian([2.5, 2.5], [0.3, 0.3], "diag")],
                              startprob=[0.6, 0.4], transmat=[[0.8, 0.2], [0.2, 0.8]],
                              max_iter=1).fit(X, [100, 100, 100])
    with pytest.warns(UserWarning, match="not at a maximum"):
        se = model.standard_errors(X, [100, 100, 100])
    f = forward_log_likelihood(model, X, [100, 100, 100])
    hessian = numerical_hessian(lambda t: f(t - se.estimates), se.estimates)
    np.testing.assert_allclose(se.information, -hessian, atol=2e-5 * np.abs(hessian).max())


def test_categorical_emissions_match_the_hessian():
    truth = CategoricalHMM(2, init_params="")
    truth.startprob_, truth.transmat_ = np.array([0.6, 0.4]), np.array([[0.8, 0.2],
                                                                         [0.3, 0.7]])
    truth.emissionprob_ = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    X, _ = truth.sample(400, random_state=np.random.RandomState(7))
    lengths = [100] * 4
    model = CategoricalHMM(2, n_iter=1000, tol=1e-11, random_state=0).fit(X, lengths)
    se = model.standard_errors(X, lengths)
    assert se.names[-4:] == ("emissions[0].probs[0]", "emissions[0].probs[1]",
                             "emissions[1].probs[0]", "emissions[1].probs[1]")
    f = forward_log_likelihood(model, X, lengths)
    hessian = numerical_hessian(lambda t: f(t - se.estimates), se.estimates)
    np.testing.assert_allclose(se.information, -hessian, atol=2e-5 * np.abs(hessian).max())


def test_one_state_is_the_iid_model():
    rng = np.random.default_rng(2)
    X = rng.normal(3.0, 2.0, (400, 1))
    model = HiddenMarkovModel([Gaussian([0.0], [[1.0]], reg_covar=0.0)],
                              max_iter=50).fit(X, [200, 200])
    se = model.standard_errors(X, [200, 200])
    n, var = len(X), X.var()
    assert se.errors["emissions[0].mean"][0] == pytest.approx(np.sqrt(var / n), rel=1e-7)
    assert se.errors["emissions[0].covariance"][0, 0] == pytest.approx(var * np.sqrt(2 / n),
                                                                      rel=1e-7)
    assert np.isnan(se.errors["startprob"]).all() and se.frozen["transmat"].all()
    counts = rng.poisson(4.0, (300, 1)).astype(float)
    poisson = PoissonHMM(1, n_iter=20, random_state=0).fit(counts)
    errors = poisson.standard_errors(counts)
    rate = counts.mean()
    assert errors.errors["emissions[0].rate"][0] == pytest.approx(np.sqrt(rate / 300), rel=1e-7)


def test_an_observed_markov_chain_has_the_multinomial_errors():
    """States emitted one-to-one: the fit is the transition frequencies, whose errors
    are ``sqrt(p (1 - p) / n_j)``; the start probabilities ``sqrt(pi (1 - pi) / S)``."""
    rng = np.random.default_rng(3)
    transmat = np.array([[0.7, 0.2, 0.1], [0.3, 0.5, 0.2], [0.25, 0.25, 0.5]])
    sequences = []
    for _ in range(40):
        state = [rng.choice(3, p=[0.5, 0.3, 0.2])]
        for _ in range(29):
            state.append(rng.choice(3, p=transmat[state[-1]]))
        sequences.append(np.array(state, dtype=float)[:, None])
    X, lengths = np.concatenate(sequences), [30] * 40
    model = CategoricalHMM(3, params="st", init_params="", n_iter=5)
    model.startprob_, model.transmat_ = np.full(3, 1 / 3), np.full((3, 3), 1 / 3)
    model.emissionprob_ = np.eye(3)
    model.fit(X, lengths)
    codes = X[:, 0].astype(int)
    pairs = np.zeros((3, 3))
    for s in sequences:
        np.add.at(pairs, (s[:-1, 0].astype(int), s[1:, 0].astype(int)), 1)
    p = pairs / pairs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.transmat_, p, atol=1e-12)
    se = model.standard_errors(X, lengths)
    np.testing.assert_allclose(se.errors["transmat"],
                               np.sqrt(p * (1 - p) / pairs.sum(axis=1, keepdims=True)),
                               rtol=1e-6)
    first = np.bincount(codes[::30], minlength=3) / 40
    np.testing.assert_allclose(se.errors["startprob"], np.sqrt(first * (1 - first) / 40),
                               rtol=1e-6)
    assert not any(name.startswith("emissions") for name in se.names)  # params="st"


def test_gaussian_hmm_params_and_tied():
    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(m, 1, (150, 1)) for m in (0, 5, 0, 5)])
    model = GaussianHMM(2, covariance_type="diag", covars_prior=0.0, n_iter=500, tol=1e-10,
                        params="stm", random_state=0).fit(X)
    with pytest.warns(UserWarning, match="startprob"):  # one sequence: a vertex
        se = model.standard_errors(X)
    assert [n for n in se.names if n.startswith("emissions")] == [
        "emissions[0].mean[0]", "emissions[1].mean[0]"]
    assert np.isnan(se.errors["emissions[0].covariance"]).all()
    # The states as Gaussian distributions: the same likelihood as the drop-in's.
    same = forward_log_likelihood(model, X, None)(np.zeros(len(hmm_layout(
        model._information_chain()[0]).names)))
    assert same == pytest.approx(model.score(X), rel=1e-12)
    tied = GaussianHMM(2, covariance_type="tied", n_iter=5, random_state=0).fit(X)
    with pytest.raises(NotImplementedError, match="tied"):
        tied.standard_errors(X)


def test_a_start_probability_on_the_boundary_is_held_fixed_with_a_warning():
    X, _ = two_state_counts(300, seed=5)
    model = HiddenMarkovModel([Poisson(1.0), Poisson(6.0)], max_iter=500,
                              tol=1e-12).fit(X)  # one sequence: the start is a vertex
    assert model.startprob_.min() < 1e-10
    with pytest.warns(UserWarning, match=r"startprob\[\d\] = .*boundary"):
        se = model.standard_errors(X)
    assert np.isnan(se.errors["startprob"]).all()
    assert "fixed" in se.table().splitlines()[1]


def test_a_state_never_visited_is_singular():
    X = np.random.default_rng(6).poisson(3.0, (200, 1)).astype(float)
    model = HiddenMarkovModel([Poisson(3.0), Poisson(3.0)], max_iter=1).fit(X, [100, 100])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SingularInformationError, match="information"):
            model.standard_errors(X, [100, 100])


# ------------------------------------------------------- classifier and KMeans


def labelled_classes(seed=7):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.multivariate_normal([0, 0], [[1, 0.3], [0.3, 2]], 120),
                   rng.multivariate_normal([3, 1], [[0.5, 0], [0, 0.8]], 80)])
    return X, np.repeat(["a", "b"], [120, 80])


def test_edda_errors_are_the_labelled_closed_forms():
    """All labels known: each class mean has ``sqrt(s_jj / n_c)``, each prior the
    multinomial ``sqrt(p (1 - p) / n)``."""
    X, y = labelled_classes()
    clf = GaussianMixtureClassifier(covariance_type="full", reg_covar=0.0).fit(X, y)
    se = clf.standard_errors(X, y)
    for c, name in enumerate(clf.classes_):
        rows = X[y == name]
        s = np.cov(rows.T, bias=True)
        np.testing.assert_allclose(se.means[c], np.sqrt(np.diag(s) / len(rows)), rtol=1e-6)
    p = np.array([120, 80]) / 200
    np.testing.assert_allclose(se.weights, np.sqrt(p * (1 - p) / 200), rtol=1e-6)
    ci = clf.confidence_intervals(X, y, level=0.9)
    assert (ci.lower["means"] < clf.mixtures_[0].means_[0]).any()


def test_edda_with_given_priors_holds_them_fixed():
    X, y = labelled_classes()
    clf = GaussianMixtureClassifier(covariance_type="tied", priors=[0.5, 0.5],
                                    reg_covar=0.0).fit(X, y)
    se = clf.standard_errors(X, y)
    assert np.isnan(se.weights).all()
    assert se.names[0] == "means[0, 0]"
    with pytest.raises(ValueError, match="not a class"):
        clf.standard_errors(X, np.where(y == "a", "c", y))


def test_mclustda_is_refused_with_the_per_class_recipe():
    X, y = labelled_classes()
    clf = GaussianMixtureClassifier(n_components=2, covariance_type="diag", reg_covar=0.0,
                                    random_state=0).fit(X, y)
    with pytest.raises(NotImplementedError, match=r"mixtures_\[c\]\.standard_errors"):
        clf.standard_errors(X, y)
    per_class = clf.mixtures_[1].standard_errors(X[y == clf.classes_[1]])
    assert np.isfinite(per_class.means).all()


def test_kmeans_says_it_has_no_likelihood():
    X, _ = labelled_classes()
    km = KMeans(2, random_state=0, n_init=1).fit(X)
    with pytest.raises(NotImplementedError, match=r"KMeans has no standard errors: .*likelihood"):
        km.standard_errors(X)
    with pytest.raises(NotImplementedError, match=r"no likelihood|not a likelihood"):
        km.confidence_intervals(X)


def test_the_imputer_and_the_noise_component_say_why():
    from emkit import GaussianMixture, GaussianMixtureImputer

    X, _ = labelled_classes()
    imputer = GaussianMixtureImputer(random_state=0).fit(X)
    with pytest.raises(NotImplementedError, match=r"gaussian_mixture_\.standard_errors"):
        imputer.standard_errors(X)
    assert np.isfinite(imputer.gaussian_mixture_.standard_errors(X).means).all()
    noisy = GaussianMixture(2, noise=True, random_state=0).fit(X)
    with pytest.raises(NotImplementedError, match=r"noise=True"):
        noisy.standard_errors(X)


def test_the_hmm_information_does_not_depend_on_the_step(monkeypatch):
    """Richardson-extrapolated differences of an exact score: a step three times longer
    or shorter changes the information by rounding only (second differences of the
    log-likelihood, the other tests' reference, agree to about 1e-6)."""
    import emkit.latent.hmm_information as information

    X, lengths = two_state_counts()
    model = HiddenMarkovModel([Poisson(2.0), Poisson(5.0)], max_iter=2000,
                              tol=1e-13).fit(X, lengths=lengths)
    reference = model.standard_errors(X, lengths).information
    for step in (3e-2, 3e-3):
        monkeypatch.setattr(information, "RELATIVE_STEP", step)
        other = model.standard_errors(X, lengths).information
        np.testing.assert_allclose(other, reference, atol=1e-9 * np.abs(reference).max())
