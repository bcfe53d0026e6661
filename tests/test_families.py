"""Component distributions and MixtureModel, driven by one table of families.

Oracles: scipy.stats for every log density; numpy closed forms (weighted means,
frequencies, ``np.cov``) for every maximum-likelihood estimate.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as ss
from sklearn.base import clone

import emkit
from emkit.distributions import (
    Bernoulli,
    Binomial,
    Categorical,
    Distribution,
    Exponential,
    Gaussian,
    Independent,
    Poisson,
    from_spec,
    to_spec,
)
from emkit.distributions.component_list import ComponentList
from emkit.estimators.mixture_model import IdenticalComponentsWarning, MixtureModel
from emkit.io import ModelFileError


def flat(distribution: Distribution) -> np.ndarray:
    """All numeric parameters of a distribution, flattened (strings such as types skipped)."""
    def numbers(value):
        if isinstance(value, dict):
            return [x for v in value.values() for x in numbers(v)]
        if isinstance(value, list):
            return [x for v in value for x in numbers(v)]
        return [] if isinstance(value, str) or value is None else [float(value)]

    return np.array(numbers(to_spec(distribution)["params"]))


REG = 1e-6  # Gaussian's default reg_covar


def weighted_cov(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.atleast_2d(np.cov(X.T, aweights=w, bias=True))


# --- closed-form weighted MLEs, written independently of emkit's statistics -----------------

def mle_binomial(n):
    return lambda X, w: Binomial(n, (w @ X[:, 0]) / (n * w.sum()))


def mle_bernoulli(X, w):
    return Bernoulli((w @ X) / w.sum())


def mle_categorical(m):
    return lambda X, w: Categorical(
        np.array([w[X[:, 0] == c].sum() for c in range(m)]) / w.sum()
    )


def mle_poisson(X, w):
    return Poisson((w @ X) / w.sum())


def mle_exponential(X, w):
    return Exponential(w.sum() / (w @ X))


def mle_gaussian(kind):
    def fit(X, w):
        mean = (w @ X) / w.sum()
        # reg_covar is part of the documented M-step: added to every variance.
        cov = weighted_cov(X, w) + REG * np.eye(len(mean))
        covariance = {"full": cov, "diag": np.diag(cov), "spherical": np.diag(cov).mean()}[kind]
        return Gaussian(mean, covariance, kind)

    return fit


def mle_mixed(X, w):
    return Independent([
        mle_gaussian("diag")(X[:, 0:2], w),
        mle_poisson(X[:, 2:3], w),
        mle_categorical(3)(X[:, 3:4], w),
        mle_bernoulli(X[:, 4:6], w),
        mle_binomial(8)(X[:, 6:7], w),
    ])


# --- scipy.stats log densities ----------------------------------------------------------------

def dense(d: Gaussian) -> np.ndarray:
    cov = np.asarray(d.covariance)
    if d.covariance_type == "full":
        return cov
    return np.diag(np.broadcast_to(cov, d.mean.shape))


ORACLES: dict[type, Callable[[Distribution, np.ndarray], np.ndarray]] = {
    Binomial: lambda d, X: ss.binom.logpmf(X[:, 0], d.n_trials, d.p),
    Bernoulli: lambda d, X: ss.bernoulli.logpmf(X, d.p).sum(axis=1),
    Categorical: lambda d, X: ss.multinomial.logpmf(
        np.eye(d.probs.size)[X[:, 0].astype(int)], 1, d.probs
    ),
    Poisson: lambda d, X: ss.poisson.logpmf(X, d.rate).sum(axis=1),
    Exponential: lambda d, X: ss.expon.logpdf(X, scale=1 / d.rate).sum(axis=1),
    Gaussian: lambda d, X: ss.multivariate_normal.logpdf(X, d.mean, dense(d)),
    Independent: lambda d, X: sum(
        oracle(c, X[:, a:b]) for c, a, b in d._blocks()
    ),
}


def oracle(d: Distribution, X: np.ndarray) -> np.ndarray:
    return ORACLES[type(d)](d, X)


@dataclass(frozen=True)
class Case:
    """A family: two true components to generate from, a start, and the closed-form MLE."""

    truth: tuple[Distribution, Distribution]
    start: tuple[Distribution, Distribution]
    mle: Callable[[np.ndarray, np.ndarray], Distribution]
    atol: float  # parameter recovery tolerance at 3000 rows


def mixed(g, r, p, b, q):
    return Independent([
        Gaussian(g, [1.0, 0.5], "diag"), Poisson(r), Categorical(p),
        Bernoulli(b), Binomial(8, q),
    ])


def three_categoricals(probs):
    return Independent([Categorical(probs), Categorical(probs[::-1]), Categorical(probs)])


CASES = {
    "binomial": Case(
        (Binomial(10, 0.2), Binomial(10, 0.75)), (Binomial(10, 0.4), Binomial(10, 0.6)),
        mle_binomial(10), 0.03,
    ),
    "bernoulli": Case(
        (Bernoulli([0.9, 0.1, 0.8, 0.2]), Bernoulli([0.1, 0.8, 0.2, 0.9])),
        (Bernoulli([0.6, 0.4, 0.5, 0.5]), Bernoulli([0.4, 0.6, 0.5, 0.5])),
        mle_bernoulli, 0.05,
    ),
    # One categorical column alone is a categorical again (not identifiable as a
    # mixture), so the family is tested as latent class analysis: three columns.
    "categorical": Case(
        (three_categoricals([0.7, 0.2, 0.1, 0.0]), three_categoricals([0.05, 0.05, 0.3, 0.6])),
        (three_categoricals([0.4, 0.3, 0.2, 0.1]), three_categoricals([0.1, 0.2, 0.3, 0.4])),
        lambda X, w: Independent([mle_categorical(4)(X[:, j : j + 1], w) for j in range(3)]),
        0.06,
    ),
    "poisson": Case(
        (Poisson([1.0, 8.0]), Poisson([9.0, 2.0])), (Poisson([3.0, 5.0]), Poisson([5.0, 3.0])),
        mle_poisson, 0.3,
    ),
    "exponential": Case(
        (Exponential([5.0]), Exponential([0.2])), (Exponential([2.0]), Exponential([0.5])),
        mle_exponential, 0.4,
    ),
    "gaussian-full": Case(
        (Gaussian([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]]),
         Gaussian([5.0, 3.0], [[1.0, -0.3], [-0.3, 0.5]])),
        (Gaussian([1.0, 1.0], np.eye(2)),
         Gaussian([4.0, 2.0], np.eye(2))),
        mle_gaussian("full"), 0.12,
    ),
    "gaussian-diag": Case(
        (Gaussian([0.0, 0.0], [1.0, 2.0], "diag"),
         Gaussian([5.0, 3.0], [0.5, 1.0], "diag")),
        (Gaussian([1.0, 1.0], [1.0, 1.0], "diag"),
         Gaussian([4.0, 2.0], [1.0, 1.0], "diag")),
        mle_gaussian("diag"), 0.12,
    ),
    "gaussian-spherical": Case(
        (Gaussian([0.0, 0.0], 1.0, "spherical"), Gaussian([5.0, 3.0], 0.5, "spherical")),
        (Gaussian([1.0, 1.0], 2.0, "spherical"), Gaussian([4.0, 2.0], 2.0, "spherical")),
        mle_gaussian("spherical"), 0.1,
    ),
    "mixed-independent": Case(
        (mixed([0.0, 0.0], 1.0, [0.8, 0.1, 0.1], [0.9, 0.2], 0.2),
         mixed([2.0, -1.0], 6.0, [0.1, 0.2, 0.7], [0.3, 0.7], 0.7)),
        (mixed([0.5, 0.0], 2.0, [0.4, 0.3, 0.3], [0.6, 0.4], 0.4),
         mixed([1.5, -0.5], 4.0, [0.3, 0.3, 0.4], [0.5, 0.6], 0.6)),
        mle_mixed, 0.15,
    ),
}
case_params = pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())


def generate(case: Case, n_samples: int, seed: int, weights=(0.4, 0.6)):
    """Rows from the case's true two-component mixture, with their labels."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_samples, weights)
    X = ComponentList(case.truth).sample(counts, rng)
    labels = np.repeat([0, 1], counts)
    order = rng.permutation(n_samples)
    return X[order], labels[order]


@case_params
def test_log_prob_matches_scipy(case):
    X, _ = generate(case, 50, seed=1)
    for d in case.truth + case.start:
        np.testing.assert_allclose(d.log_prob(X), oracle(d, X), rtol=1e-10, atol=1e-10)


@case_params
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_one_component_fit_is_the_closed_form_mle(case):
    X, _ = generate(case, 300, seed=2)
    model = MixtureModel([case.start[0]], tol=0, max_iter=2).fit(X)
    expected = case.mle(X, np.ones(len(X)))
    np.testing.assert_allclose(flat(model.components_[0]), flat(expected), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.weights_, [1.0])
    assert model.n_iter_ == 2 and model.history_[1] >= model.history_[0]


@case_params
def test_one_hot_responsibilities_give_per_class_mle(case):
    X, labels = generate(case, 300, seed=3)
    family = ComponentList(case.start)
    fitted = family.from_stats(family.stats(X, np.eye(2)[labels]))
    for k, d in enumerate(fitted.distributions):
        rows = labels == k
        expected = case.mle(X[rows], np.ones(rows.sum()))
        np.testing.assert_allclose(flat(d), flat(expected), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(flat(case.start[k].fit(X[rows])), flat(expected), rtol=1e-9)


@case_params
def test_weighted_stats_are_additive(case):
    X, _ = generate(case, 120, seed=4)
    w = np.random.default_rng(4).uniform(size=120)
    d = case.start[0]
    whole = d.from_stats(d.stats(X, w))
    parts = d.from_stats(d.stats(X[:50], w[:50]) + d.stats(X[50:], w[50:]))
    np.testing.assert_allclose(flat(parts), flat(whole), rtol=1e-12)
    np.testing.assert_allclose(flat(whole), flat(case.mle(X, w)), rtol=1e-9, atol=1e-12)


@case_params
def test_recovers_known_parameters(case):
    X, _ = generate(case, 3000, seed=5)
    model = MixtureModel(list(case.start), tol=1e-8, max_iter=300).fit(X)
    assert model.converged_
    for fitted, true in zip(model.components_, case.truth, strict=True):
        np.testing.assert_allclose(flat(fitted), flat(true), atol=case.atol)
    np.testing.assert_allclose(model.weights_, [0.4, 0.6], atol=0.03)


@case_params
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_samples=st.integers(5, 60))
def test_log_likelihood_never_decreases(case, seed, n_samples):
    X, _ = generate(case, n_samples, seed)
    model = MixtureModel(list(case.start), tol=0, max_iter=12, n_init=2, random_state=seed)
    model.fit(X)
    history = model.history_
    assert np.all(np.diff(history) >= -1e-9 * np.maximum(1.0, np.abs(history[1:])))


@case_params
def test_spec_round_trip(case):
    for d in case.truth:
        spec = json.loads(json.dumps(to_spec(d)))
        np.testing.assert_array_equal(flat(from_spec(spec)), flat(d))
        assert type(from_spec(spec)) is type(d)


@case_params
def test_sample_shape_and_parameter_count(case):
    d = case.truth[0]
    X = d.sample(7, np.random.default_rng(0))
    assert X.shape == (7, d.n_features)
    assert np.isfinite(d.log_prob(X)).all()
    assert d.n_parameters == len(flat(d)) - _fixed_numbers(d)


def _fixed_numbers(d: Distribution) -> int:
    """Numbers in the spec that are not free parameters (n_trials, reg_covar, the probs
    constraint, the symmetric half of a full covariance)."""
    if isinstance(d, Independent):
        return sum(_fixed_numbers(c) for c in d.components)
    if isinstance(d, Binomial):
        return 1
    if isinstance(d, Categorical):
        return 1
    if isinstance(d, Gaussian):
        dim = d.mean.size
        return 1 + (dim * (dim - 1) // 2 if d.covariance_type == "full" else 0)
    return 0


# --- Binomial with the number of trials as a data column ------------------------------------

def test_binomial_trials_per_row():
    rng = np.random.default_rng(6)
    trials = rng.integers(1, 30, size=2000)
    labels = rng.integers(2, size=2000)
    heads = rng.binomial(trials, np.array([0.2, 0.7])[labels])
    X = np.column_stack([heads, trials])
    d = Binomial("column", 0.3)
    np.testing.assert_allclose(d.log_prob(X), ss.binom.logpmf(heads, trials, 0.3), rtol=1e-10)
    assert d.fit(X).p == pytest.approx(heads.sum() / trials.sum(), rel=1e-12)
    model = MixtureModel([Binomial("column", 0.4), Binomial("column", 0.6)], tol=1e-8).fit(X)
    np.testing.assert_allclose([c.p for c in model.components_], [0.2, 0.7], atol=0.02)
    with pytest.raises(ValueError, match="trials of each row is data"):
        model.sample(3)


# --- the estimator ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixed_data():
    return generate(CASES["mixed-independent"], 400, seed=7)[0]


@pytest.fixture(scope="module")
def mixed_model(mixed_data):
    return MixtureModel(list(CASES["mixed-independent"].start), tol=1e-6).fit(mixed_data)


def test_estimator_conventions(mixed_model, mixed_data):
    X = mixed_data
    proba = mixed_model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(mixed_model.predict(X), proba.argmax(axis=1))
    assert mixed_model.score(X) == pytest.approx(mixed_model.score_samples(X).mean())
    assert mixed_model.lower_bound_ == mixed_model.history_[-1]
    assert mixed_model.n_features_in_ == 7
    unfitted = clone(mixed_model)
    assert not hasattr(unfitted, "components_")
    np.testing.assert_array_equal(unfitted.fit_predict(X), mixed_model.predict(X))


def test_bic_and_aic_count_free_parameters(mixed_model, mixed_data):
    n = len(mixed_data)
    # Per component: Gaussian diag 2 means + 2 variances, Poisson 1, Categorical 2,
    # Bernoulli 2, Binomial 1 -> 10; two components and one free weight.
    loglik = mixed_model.score(mixed_data) * n
    assert mixed_model.bic(mixed_data) == pytest.approx(-2 * loglik + 21 * np.log(n))
    assert mixed_model.aic(mixed_data) == pytest.approx(-2 * loglik + 2 * 21)


def test_mixture_sample_follows_components(mixed_model):
    X, y = mixed_model.sample(50)
    assert X.shape == (50, 7) and y.shape == (50,)
    mixed_model.components_[0].check_data(X)


def test_fixed_weights_stay_fixed():
    X, _ = generate(CASES["poisson"], 200, seed=8)
    model = MixtureModel(list(CASES["poisson"].start), weights=[0.3, 0.7], fit_weights=False)
    model.fit(X)
    np.testing.assert_array_equal(model.weights_, [0.3, 0.7])
    free = MixtureModel(list(CASES["poisson"].start), weights=[0.3, 0.7]).fit(X)
    assert free.weights_[0] != 0.3
    assert model.bic(X) - free.bic(X) == pytest.approx(
        -2 * len(X) * (model.score(X) - free.score(X)) - np.log(len(X))
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_does_not_depend_on_chunk_size(mixed_data):
    start = list(CASES["mixed-independent"].start)
    a = MixtureModel(start, tol=0, max_iter=5).fit(mixed_data)
    b = MixtureModel(start, tol=0, max_iter=5, chunk_size=37).fit(mixed_data)
    for ca, cb in zip(a.components_, b.components_, strict=True):
        np.testing.assert_allclose(flat(ca), flat(cb), rtol=1e-10)
    np.testing.assert_allclose(a.history_, b.history_, rtol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_more_starts_are_never_worse():
    # Symmetric starting coins put EM on a saddle; random restarts leave it.
    X, _ = generate(CASES["binomial"], 300, seed=9)
    stuck = [Binomial(10, 0.5), Binomial(10, 0.5)]
    with pytest.warns(IdenticalComponentsWarning, match="components 0, 1 have identical"):
        one = MixtureModel(stuck, max_iter=50, random_state=0).fit(X)
    many = MixtureModel(stuck, max_iter=50, n_init=3, random_state=0).fit(X)
    assert many.lower_bound_ >= one.lower_bound_
    assert sorted(round(c.p, 1) for c in many.components_) == [0.2, 0.8]
    again = MixtureModel(stuck, max_iter=50, n_init=3, random_state=0).fit(X)
    assert [c.p for c in again.components_] == [c.p for c in many.components_]


def test_components_of_different_kinds_can_mix():
    rng = np.random.default_rng(10)
    X = np.concatenate([rng.poisson(3.0, 300), rng.geometric(0.05, 300) - 1])[:, None]
    model = MixtureModel([Poisson(2.0), Exponential(0.1)], tol=1e-8).fit(X.astype(float))
    assert model.components_[0].rate[0] == pytest.approx(3.0, abs=0.4)


def test_save_and_load_round_trip(mixed_model, mixed_data, tmp_path):
    path = emkit.save(mixed_model, tmp_path / "mixed.npz")
    loaded = emkit.load(path)
    assert type(loaded) is MixtureModel
    np.testing.assert_array_equal(loaded.predict_proba(mixed_data),
                                  mixed_model.predict_proba(mixed_data))
    for a, b in zip(loaded.components_, mixed_model.components_, strict=True):
        np.testing.assert_array_equal(flat(a), flat(b))
    assert loaded.get_params()["fit_weights"] is True
    with zipfile.ZipFile(path) as archive:
        metadata = json.loads(archive.read("metadata.json"))
    assert metadata["scalars"]["components_"][0]["distribution"] == "Independent"


def test_load_refuses_unknown_distribution(mixed_model, tmp_path):
    path = emkit.save(mixed_model, tmp_path / "mixed.npz")
    altered = tmp_path / "altered.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(altered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "metadata.json":
                data = data.replace(b'"Poisson"', b'"os.system"')
                # Past the metadata's checksum, to reach the distribution check.
                target.writestr("metadata.sha256", hashlib.sha256(data).hexdigest())
            if item.filename != "metadata.sha256":
                target.writestr(item, data)
    with pytest.raises(ModelFileError, match=r"unknown distribution 'os\.system'"):
        emkit.load(altered)


# --- bad input --------------------------------------------------------------------------------

def coins(n=10):
    return [Binomial(n, 0.4), Binomial(n, 0.6)]


@pytest.mark.parametrize(
    ("components", "X", "message"),
    [
        (coins(), [[5], [9], [11]], r"row 2, column 0: heads 11 exceed .* n_trials=10"),
        (coins(), [[5], [-1]], r"row 1, column 0: counts must be non-negative integers, got -1"),
        (coins(), [[5], [2.5]], r"row 1, column 0: .*integers, got 2.5"),
        ([Binomial("column", 0.5)] * 2, [[1, 4], [5, 3]], r"row 1, column 0: heads 5 exceed"),
        ([Poisson(1.0)] * 2, [[1], [0], [-2]], r"row 2, column 0: Poisson counts must be "
                                                r"non-negative integers, got -2"),
        ([Bernoulli([0.5, 0.5])] * 2, [[0, 1], [1, 2]], r"row 1, column 1: .*0 or 1, got 2"),
        ([Categorical([0.5, 0.3, 0.2])] * 2, [[0], [3]],
         r"row 1, column 0: categories must be integers in 0..2, got 3"),
        ([Exponential(1.0)] * 2, [[1.0], [-0.5]], r"row 1, column 0: .*non-negative"),
        ([Independent([Poisson(1.0), Bernoulli(0.5)])] * 2, [[1, 0], [2, 3]],
         r"row 1, column 1: Bernoulli data must be 0 or 1"),
        (coins(), [[5, 1], [9, 1]], r"X has 2 columns but the components read 1"),
        (coins(), [[5], [np.inf]], r"row 1, column 0"),
        ([Bernoulli([0.5, 0.5]), Bernoulli([0.5, 0.5, 0.5])], [[0, 1]],
         r"component 0 \(Bernoulli\) reads 2, component 1 \(Bernoulli\) reads 3"),
        ([Binomial(10, 0.5), 0.5], [[1]], r"component 1 is a float"),
        ([], [[1]], r"components must be .* a non-empty list of distributions"),
        ([Categorical([1.0, 0.0])] * 2, [[0], [1]],
         r"row 1 has probability zero under every starting component"),
        ([Binomial(10, 1.0)] * 2, [[10], [3]], r"row 1 has probability zero"),
    ],
)
def test_bad_input_names_the_row(components, X, message):
    with pytest.raises(ValueError, match=message):
        MixtureModel(components).fit(np.asarray(X, dtype=float))


def test_a_row_possible_under_one_component_is_fine():
    model = MixtureModel([Categorical([1.0, 0.0]), Categorical([0.5, 0.5])], tol=1e-8)
    model.fit([[0], [0], [1], [0]])
    np.testing.assert_array_equal(model.predict([[1]]), [1])


def test_bad_input_at_predict_time_names_the_row():
    model = MixtureModel(coins()).fit([[5], [9], [8], [4], [7]])
    with pytest.raises(ValueError, match=r"row 1, column 0: heads 12 exceed"):
        model.predict([[3], [12]])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Categorical([0.5, 0.6]), r"probs must sum to one, got sum 1.1"),
        (lambda: Categorical([1.2, -0.2]), r"probs must lie in \[0.0, 1.0\]"),
        (lambda: Binomial(10, 1.5), r"p must lie in \[0.0, 1.0\]"),
        (lambda: Binomial(-1, 0.5), r"n_trials must be an integer >= 0 or 'column'"),
        (lambda: Binomial(10, [0.2, 0.3]), r"p must be a single probability"),
        (lambda: Poisson(-1.0), r"rate must lie in"),
        (lambda: Exponential(0.0), r"rate must be positive"),
        (lambda: Gaussian([0, 0], np.eye(3)), r"must have shape \(2, 2\)"),
        (lambda: Gaussian([0, 0], [[1, 2], [2, 1]]), r"not positive definite"),
        (lambda: Gaussian([0, 0], np.eye(2), "tied"), r"covariance_type must be one of"),
        (lambda: Independent([]), r"non-empty sequence of distributions"),
        (lambda: from_spec({"distribution": "Pickle", "params": {}}), r"unknown distribution"),
        (lambda: Bernoulli([0.5, 0.5]).fit([[0, 1, 1]]), r"X must have shape \(n_samples, 2\)"),
    ],
)
def test_bad_parameters_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([0.3, 0.3], r"weights must sum to one, got sum 0.6"),
        ([1.2, -0.2], r"weights must be non-negative"),
        ([1.0], r"weights must have shape \(2,\)"),
    ],
)
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(ValueError, match=message):
        MixtureModel(coins(), weights=weights).fit([[5], [9]])


def test_bad_estimator_parameters_are_named():
    with pytest.raises(ValueError, match="parameter n_init must be an integer >= 1"):
        MixtureModel(coins(), n_init=0).fit([[5], [9]])


def test_verbose_reports_each_start(capsys):
    MixtureModel(coins(), n_init=2, verbose=2, verbose_interval=1, tol=1e-6,
                 random_state=0).fit([[5], [9], [8], [4], [7]])
    out = capsys.readouterr().out
    assert "Start 0" in out and "Start 1" in out and "Iteration 1" in out
