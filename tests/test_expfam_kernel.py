"""The exponential-family kernel equals the per-component path it replaces.

Truth here is the per-component path (each distribution's own ``log_prob``,
``stats`` and ``from_stats``, forced with ``expfam.per_component()``), scipy's
densities for a mixed row, and EM's invariants (the likelihood never decreases,
statistics do not depend on the chunking).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from emkit import MixtureModel
from emkit.core.engine import expected_stats
from emkit.data.sources import IndexedArraySource
from emkit.distributions import (
    Bernoulli,
    Binomial,
    Categorical,
    Exponential,
    Gaussian,
    Geometric,
    Independent,
    Poisson,
    expfam,
)
from emkit.distributions.codec import ComponentListCodec
from emkit.distributions.component_list import ComponentList
from emkit.latent.mixture import Mixture

K = 3
# The fits run a fixed number of iterations on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _case(name: str, rng: np.random.Generator, n: int = 300):
    """K starting components and data of one family."""
    if name == "bernoulli":
        return [Bernoulli(rng.uniform(0.2, 0.8, 4)) for _ in range(K)], \
            rng.integers(0, 2, (n, 4)).astype(float)
    if name == "binomial":
        return [Binomial(10, p) for p in (0.2, 0.5, 0.7)], \
            rng.binomial(10, rng.choice([0.2, 0.8], n))[:, None].astype(float)
    if name == "binomial_column":
        trials = rng.integers(0, 12, n)
        heads = rng.binomial(trials, rng.choice([0.2, 0.8], n))
        return [Binomial("column", p) for p in (0.3, 0.5, 0.6)], np.c_[heads, trials].astype(float)
    if name == "poisson":
        return [Poisson(rng.uniform(1, 8, 3)) for _ in range(K)], \
            rng.poisson(rng.choice([1.0, 6.0], (n, 1)), (n, 3)).astype(float)
    if name == "exponential":
        return [Exponential(rng.uniform(0.2, 3, 2)) for _ in range(K)], \
            rng.exponential(rng.choice([0.5, 4.0], (n, 1)), (n, 2))
    if name == "geometric":
        return [Geometric(rng.uniform(0.2, 0.8, 2)) for _ in range(K)], \
            rng.geometric(rng.choice([0.2, 0.7], (n, 1)), (n, 2)).astype(float) - 1
    if name == "categorical":
        return [Categorical(rng.dirichlet(np.ones(4))) for _ in range(K)], \
            rng.integers(0, 4, (n, 1)).astype(float)
    # Every kind side by side, one of them nested: the concatenated T blocks.
    comps = [
        Independent([
            Poisson(rng.uniform(1, 5, 2)), Categorical(rng.dirichlet(np.ones(3))),
            Independent([Bernoulli(rng.uniform(0.2, 0.8, 2)), Binomial("column", 0.4)]),
            Binomial(6, rng.uniform(0.2, 0.8)), Exponential(1.5), Geometric(0.4),
            Categorical(rng.dirichlet(np.ones(2))),
        ])
        for _ in range(K)
    ]
    trials = rng.integers(0, 9, n)
    X = np.c_[
        rng.poisson(3, (n, 2)), rng.integers(0, 3, n), rng.integers(0, 2, (n, 2)),
        rng.binomial(trials, 0.5), trials, rng.binomial(6, 0.5, n), rng.exponential(1, n),
        rng.geometric(0.5, n) - 1, rng.integers(0, 2, n),
    ].astype(float)
    return comps, X


FAMILIES = ["bernoulli", "binomial", "binomial_column", "poisson", "exponential", "geometric",
            "categorical", "independent"]


def _with_missing(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    X = X.copy()
    X[rng.random(X.shape) < 0.15] = np.nan
    X[3] = np.nan  # a row with nothing observed
    return X


def _parameters(model: MixtureModel) -> np.ndarray:
    return ComponentListCodec().flatten(ComponentList(tuple(model.components_)))


def _both_paths(make, X, **fit):
    """Fit twice from the same start: with the kernel, and per component."""
    fast = make().fit(X, **fit)
    with expfam.per_component():
        slow = make().fit(X, **fit)
    return fast, slow


def _assert_same_fit(fast, slow):
    np.testing.assert_allclose(_parameters(fast), _parameters(slow), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.weights_, slow.weights_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.history_, slow.history_, rtol=1e-10)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_takes_the_kernel(family):
    comps, X = _case(family, np.random.default_rng(0))
    kernel = ComponentList(tuple(comps))._kernel
    assert kernel is not None
    # No missing values: the compiled pass runs (numba is a dependency).
    assert kernel.soft_e_step(X, np.log(np.full(K, 1 / K))) is not None


def test_other_families_keep_the_per_component_path():
    gaussians = ComponentList((Gaussian([0.0], [[1.0]]), Gaussian([1.0], [[1.0]])))
    mixed = ComponentList((Poisson(1.0), Geometric(0.5)))
    shapes = ComponentList((Independent([Poisson(1.0), Bernoulli(0.5)]),
                            Independent([Bernoulli(0.5), Poisson(1.0)])))
    trials = ComponentList((Binomial(5, 0.5), Binomial(6, 0.5)))
    for family in (gaussians, mixed, shapes, trials):
        assert family._kernel is None
        assert family.soft_e_step(np.zeros((2, 1)), np.zeros(2)) is None


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_e_step_equals_the_per_component_path(family, dtype, missing, weighted):
    rng = np.random.default_rng(1)
    comps, X = _case(family, rng, n=200)
    if missing:
        X = _with_missing(X, rng)
    X = X.astype(dtype)
    family_list = ComponentList(tuple(comps))
    model = Mixture(weights=np.array([0.5, 0.3, 0.2]), components=family_list)
    w = rng.integers(0, 3, X.shape[0]).astype(float) if weighted else None
    source = IndexedArraySource(X, 64, sample_weight=w)
    fast = expected_stats(model, source, n_threads=1)
    log_dens = family_list.log_prob(X)
    # Truth in float64 (the same values): per component, float32 counts would take
    # scipy's float32 gammaln; the kernel computes in float64 whatever the data's dtype.
    exact = IndexedArraySource(X.astype(np.float64), 64, sample_weight=w)
    with expfam.per_component():
        slow = expected_stats(model, exact, n_threads=1)
        slow_log_dens = family_list.log_prob(X.astype(np.float64))
    assert isinstance(fast.components, expfam.ExpFamStats)
    np.testing.assert_allclose(log_dens, slow_log_dens, rtol=1e-12, atol=1e-12)
    assert fast.log_likelihood == pytest.approx(slow.log_likelihood, rel=1e-12)
    assert fast.n_samples == slow.n_samples
    np.testing.assert_allclose(fast.resp_sum, slow.resp_sum, rtol=1e-12)
    codec = ComponentListCodec()
    np.testing.assert_allclose(codec.flatten(family_list.from_stats(fast.components)),
                               codec.flatten(family_list.from_stats(slow.components)),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("missing", [False, True])
def test_fit_equals_the_per_component_path_with_weights_and_frozen(family, missing):
    rng = np.random.default_rng(2)
    comps, X = _case(family, rng)
    if missing:
        X = _with_missing(X, rng)
    w = rng.integers(0, 4, X.shape[0]).astype(float)

    def make(**options):
        return lambda: MixtureModel(comps, tol=0, max_iter=15, **options)

    _assert_same_fit(*_both_paths(make(), X))
    fast, slow = _both_paths(make(frozen=[False, True, False]), X, sample_weight=w)
    _assert_same_fit(fast, slow)
    assert fast.components_[1] is comps[1]


def test_hard_and_stochastic_em_and_labels_equal_the_per_component_path():
    rng = np.random.default_rng(3)
    comps, X = _case("independent", rng)
    labels = np.where(rng.random(X.shape[0]) < 0.2, rng.integers(0, K, X.shape[0]), -1)
    for algorithm in ("hard", "stochastic"):
        def make(algorithm=algorithm):
            return MixtureModel(comps, tol=0, max_iter=8, algorithm=algorithm, random_state=4)

        _assert_same_fit(*_both_paths(make, X, labels=labels))


@pytest.mark.parametrize("family", FAMILIES)
def test_likelihood_never_decreases(family):
    rng = np.random.default_rng(5)
    comps, X = _case(family, rng)
    model = MixtureModel(comps, tol=0, max_iter=40).fit(_with_missing(X, rng))
    assert np.all(np.diff(model.history_) >= -1e-10 * np.abs(model.history_[1:]))


def test_statistics_do_not_depend_on_the_chunks():
    rng = np.random.default_rng(6)
    comps, X = _case("independent", rng, n=500)
    X[:100] = _with_missing(X[:100], rng)  # some chunks compiled, some numpy
    model = Mixture(weights=np.full(K, 1 / K), components=ComponentList(tuple(comps)))
    whole = expected_stats(model, IndexedArraySource(X, 500), n_threads=1)
    for chunk_size in (1, 37, 128):
        parts = expected_stats(model, IndexedArraySource(X, chunk_size), n_threads=2)
        assert parts.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-12)
        for field in ("weight", "total", "counts"):
            np.testing.assert_allclose(getattr(parts.components, field),
                                       getattr(whole.components, field), rtol=1e-12, atol=1e-12)


def test_parameters_on_the_boundary_give_the_same_impossible_rows():
    """p of 0 or 1, a rate of 0 and a probability of 0: infinite natural parameters."""
    nan = np.nan
    X = np.array([[0, 1, 0, 0, 2, 2, 1], [1, 0, 3, 1, 0, 3, 2], [1, 1, 2, 0, 3, 3, 2],
                  [nan, 1, 0, nan, 2, nan, 1]])
    row = Independent([Bernoulli([0.0, 1.0]), Poisson(0.0), Geometric(1.0),
                       Binomial("column", 1.0), Categorical([0.5, 0.5, 0.0])])
    other = Independent([Bernoulli([1.0, 0.0]), Poisson(2.0), Geometric(0.5),
                         Binomial("column", 0.0), Categorical([0.0, 0.5, 0.5])])
    family = ComponentList((row, other))
    fast = family.log_prob(X)
    with expfam.per_component():
        slow = family.log_prob(X)
    np.testing.assert_array_equal(np.isinf(fast), np.isinf(slow))
    np.testing.assert_array_equal(np.isfinite(fast), [[1, 0], [0, 1], [0, 0], [1, 0]])
    np.testing.assert_allclose(fast[np.isfinite(slow)], slow[np.isfinite(slow)], rtol=1e-12)
    # Complete rows, each possible under one component: the compiled pass.
    model = Mixture(weights=np.array([0.4, 0.6]), components=family)
    assert family._kernel.soft_e_step(X[:2], np.log(model.weights)) is not None
    fast = model.e_step(X[:2])
    with expfam.per_component():
        slow = model.e_step(X[:2])
    assert fast.log_likelihood == pytest.approx(slow.log_likelihood, rel=1e-12)
    np.testing.assert_allclose(fast.resp_sum, slow.resp_sum, rtol=1e-12)
    codec = ComponentListCodec()
    np.testing.assert_allclose(codec.flatten(family.from_stats(fast.components)),
                               codec.flatten(family.from_stats(slow.components)), atol=1e-12)
    fixed = ComponentList((Binomial(3, 1.0), Binomial(3, 0.0), Binomial(3, 0.5)))
    counts = np.array([[0.0], [3.0], [1.0], [np.nan]])
    with expfam.per_component():
        slow = fixed.log_prob(counts)
    fast = fixed.log_prob(counts)
    np.testing.assert_array_equal(np.isinf(fast), np.isinf(slow))
    np.testing.assert_allclose(fast[np.isfinite(slow)], slow[np.isfinite(slow)], rtol=1e-12)


def test_log_densities_match_scipy():
    x = np.array([[3, 1, 1, 0, 2, 5, 4, 0.7, 2, 1]], float)
    row = Independent([
        Poisson([2.0, 4.0]), Categorical([0.2, 0.5, 0.3]),
        Independent([Bernoulli([0.3, 0.9]), Binomial("column", 0.4)]),
        Binomial(6, 0.35), Exponential(1.5), Geometric(0.4), Categorical([0.6, 0.4]),
    ])
    x = np.array([[3, 1, 1, 1, 0, 2, 5, 4, 0.7, 2, 1]], float)
    expected = (st.poisson.logpmf(3, 2.0) + st.poisson.logpmf(1, 4.0) + np.log(0.5)
                + np.log(0.3) + np.log(0.1) + st.binom.logpmf(2, 5, 0.4)
                + st.binom.logpmf(4, 6, 0.35) + st.expon.logpdf(0.7, scale=1 / 1.5)
                + st.geom.logpmf(3, 0.4) + np.log(0.4))
    family = ComponentList((row, row))
    assert family._kernel is not None
    np.testing.assert_allclose(family.log_prob(x), [[expected, expected]], rtol=1e-12)


def test_hidden_markov_emissions_take_the_kernel():
    from emkit.hmm import PoissonHMM

    rng = np.random.default_rng(7)
    X = rng.poisson(np.repeat([1.0, 6.0, 2.0], 60)[:, None], (180, 2)).astype(float)

    def make():
        model = PoissonHMM(2, init_params="", n_iter=10, tol=-np.inf)
        model.startprob_ = np.array([0.5, 0.5])
        model.transmat_ = np.array([[0.9, 0.1], [0.2, 0.8]])
        model.lambdas_ = np.array([[1.0, 2.0], [5.0, 4.0]])
        return model

    fast = make().fit(X, [90, 90])
    with expfam.per_component():
        slow = make().fit(X, [90, 90])
    np.testing.assert_allclose(fast.lambdas_, slow.lambdas_, rtol=1e-10)
    np.testing.assert_allclose(fast.transmat_, slow.transmat_, rtol=1e-10)
    assert fast.score(X, [90, 90]) == pytest.approx(slow.score(X, [90, 90]), rel=1e-12)


def test_latent_classes_in_groups_of_columns():
    """The compiled pass reads categorical columns in groups (their levels multiplied):
    the counts summed back per column equal the per-component path's."""
    rng = np.random.default_rng(8)
    sizes = [5, 5, 5, 2, 6, 30, 3, 4]  # groups: 5x5x5, 2x6, 30x3, 4 (at most 128 levels)
    comps = [Independent([Categorical(rng.dirichlet(np.ones(m))) for m in sizes])
             for _ in range(K)]
    X = np.column_stack([rng.integers(0, m, 400) for m in sizes]).astype(float)
    family = ComponentList(tuple(comps))
    assert [len(g) for g in family._kernel.groups.members] == [3, 2, 2, 1]
    model = Mixture(weights=np.array([0.5, 0.3, 0.2]), components=family)
    fast = model.e_step(X)
    with expfam.per_component():
        slow = model.e_step(X)
    assert fast.log_likelihood == pytest.approx(slow.log_likelihood, rel=1e-12)
    codec = ComponentListCodec()
    np.testing.assert_allclose(codec.flatten(family.from_stats(fast.components)),
                               codec.flatten(family.from_stats(slow.components)), atol=1e-13)


@pytest.mark.parametrize("single", [False, True])
def test_latent_class_m_step_equals_each_components_own(single):
    """The kernel's vectorised M-step of Categorical parts gives each component's own
    ``from_stats``, a component without weight keeps its probabilities, a frozen one
    stays the same object, and a prior takes the components' own path."""
    rng = np.random.default_rng(7)
    sizes = [3] if single else [3, 5, 2, 4]
    X = np.column_stack([rng.integers(0, m, 200) for m in sizes]).astype(float)

    def component(prior=None):
        parts = [Categorical(rng.dirichlet(np.ones(m)), prior=prior) for m in sizes]
        return parts[0] if single else Independent(parts)

    family = ComponentList((component(), component(), component()), frozen=(False, True, False))
    resp = rng.dirichlet(np.ones(K), 200)
    resp[:, 2] = 0.0  # the third component gets no weight
    kernel = family._kernel_form
    stats = kernel.stats(kernel.prepare(X), resp)
    fast = kernel.from_stats(family.distributions, stats, family.frozen)
    own = [d.from_stats(s) for d, s in
           zip(family.distributions, kernel.component_stats(stats).parts, strict=True)]
    assert fast is not None and fast[1] is family.distributions[1]
    for k in (0, 2):
        fast_parts = [fast[k]] if single else fast[k].components
        own_parts = [own[k]] if single else own[k].components
        assert type(fast[k]) is type(own[k])
        for a, b in zip(fast_parts, own_parts, strict=True):
            assert type(a) is Categorical and a.prior is None
            np.testing.assert_allclose(a.probs, b.probs, rtol=0, atol=1e-15)
    old = [family.distributions[2]] if single else family.distributions[2].components
    new = [fast[2]] if single else fast[2].components
    for a, b in zip(new, old, strict=True):
        np.testing.assert_array_equal(a.probs, b.probs)
    assert family.from_stats(stats).distributions[0].__class__ is type(own[0])
    with_prior = ComponentList((component(2.0), component(2.0), component(2.0)))
    prior_kernel = with_prior._kernel_form
    assert prior_kernel.from_stats(with_prior.distributions,
                                   prior_kernel.stats(prior_kernel.prepare(X), resp), ()) is None


@pytest.mark.parametrize("family", ["bernoulli", "poisson", "exponential"])
def test_compiled_pass_leaves_missing_values_to_the_numpy_path(family):
    """Rows read in place are checked for NaN through their log densities: a NaN
    anywhere in the chunk (also where a boundary parameter's rule would write -inf
    over some of them, and where the parameter's natural value is 0) hands the chunk
    to the numpy path, whose E-step equals the per-component one."""
    comps, X = _case(family, np.random.default_rng(3))
    if family == "bernoulli":  # p = 0 (a rule) in one component, p = 0.5 (eta 0) in another
        comps[0] = Bernoulli(np.r_[0.0, comps[0].p[1:]])
        comps[1] = Bernoulli(np.r_[0.5, comps[1].p[1:]])
        X[:, 0] = 0.0
    model = Mixture(weights=np.full(K, 1 / K), components=ComponentList(tuple(comps)))
    kernel = model.components._kernel
    assert kernel.direct and kernel.soft_e_step(X, model._log_weights) is not None
    for row in (0, 150, X.shape[0] - 1):
        gappy = X.copy()
        gappy[row, 0] = np.nan
        assert kernel.soft_e_step(gappy, model._log_weights) is None
        fast = model.e_step(gappy)
        with expfam.per_component():
            slow = model.e_step(gappy)
        np.testing.assert_allclose(fast.resp_sum, slow.resp_sum, rtol=1e-12)
        np.testing.assert_allclose(fast.log_likelihood, slow.log_likelihood, rtol=1e-12)


@pytest.mark.parametrize("n_components", [3, 8, 9])
def test_compiled_latent_class_pass_equals_the_numpy_path(n_components):
    """The compiled pass's categorical gather (eight sums in registers for K <= 8, a
    loop over K above) gives the numpy path's log-likelihood and level counts."""
    rng = np.random.default_rng(11)
    sizes = [5, 5, 5, 3, 2, 6]
    X = np.column_stack([rng.integers(0, m, 500) for m in sizes]).astype(float)
    comps = tuple(Independent([Categorical(rng.dirichlet(np.ones(m))) for m in sizes])
                  for _ in range(n_components))
    model = Mixture(weights=rng.dirichlet(np.ones(n_components)),
                    components=ComponentList(comps))
    kernel = model.components._kernel
    fused = kernel.soft_e_step(X, model._log_weights)
    assert fused is not None
    resp_sum, stats, log_likelihood = fused
    log_dens = kernel.log_prob(kernel.prepare(X)) + model._log_weights
    top = log_dens.max(axis=1, keepdims=True)
    resp = np.exp(log_dens - top)
    norm = resp.sum(axis=1, keepdims=True)
    resp /= norm
    np.testing.assert_allclose(log_likelihood, float((np.log(norm) + top).sum()), rtol=1e-12)
    np.testing.assert_allclose(resp_sum, resp.sum(axis=0), rtol=1e-12)
    expected = kernel.stats(kernel.prepare(X), resp)
    np.testing.assert_allclose(stats.counts, expected.counts, rtol=1e-12, atol=1e-12)


def _numpy_e_step(kernel, X, log_weights):
    """The soft E-step on the kernel's numpy path: (resp_sum, R^T T, log-likelihood)."""
    log_dens = kernel.log_prob(kernel.prepare(X)) + log_weights
    top = log_dens.max(axis=1, keepdims=True)
    resp = np.exp(log_dens - top)
    norm = resp.sum(axis=1, keepdims=True)
    resp /= norm
    return resp.sum(axis=0), kernel.stats(kernel.prepare(X), resp).total, \
        float((np.log(norm) + top).sum())


@pytest.mark.parametrize(("n_components", "n_columns"), [(3, 5), (10, 64), (12, 70), (1, 9)])
def test_binary_table_pass_equals_the_numpy_path(n_components, n_columns):
    """0/1 rows of a Bernoulli mixture take the table pass (bytes of packed bits, K padded
    to a multiple of 4, several words and a partial last byte for 70 columns, several
    blocks and a short last one for 64): its responsibilities, statistics and
    log-likelihood equal the numpy path's products."""
    rng = np.random.default_rng(n_columns)
    X = rng.integers(0, 2, (2500, n_columns)).astype(float)
    comps = tuple(Bernoulli(rng.uniform(0.05, 0.95, n_columns)) for _ in range(n_components))
    model = Mixture(weights=rng.dirichlet(np.ones(n_components)),
                    components=ComponentList(comps))
    kernel = model.components._kernel
    assert kernel.binary_table is not None
    assert X.shape[0] > kernel.block or n_columns < 64
    resp_sum, stats, log_likelihood = kernel.soft_e_step(X, model._log_weights)
    expected_sum, expected_total, expected_ll = _numpy_e_step(kernel, X, model._log_weights)
    np.testing.assert_allclose(resp_sum, expected_sum, rtol=1e-12)
    np.testing.assert_allclose(stats.total, expected_total, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.weight, np.repeat(expected_sum[:, None], n_columns, 1),
                               rtol=1e-12)
    assert log_likelihood == pytest.approx(expected_ll, rel=1e-13)
    # float32 rows are packed as they are: the same codes, the same answers.
    single = kernel.soft_e_step(X.astype(np.float32), model._log_weights)
    np.testing.assert_array_equal(single[0], resp_sum)
    np.testing.assert_array_equal(single[1].total, stats.total)


def test_binary_table_pass_hands_other_values_on():
    """A chunk holding a NaN is not packed (it goes to the numpy path, as before); a
    boundary parameter (p = 0) keeps the general compiled pass."""
    rng = np.random.default_rng(8)
    X = rng.integers(0, 2, (3000, 64)).astype(float)
    comps = tuple(Bernoulli(rng.uniform(0.2, 0.8, 64)) for _ in range(3))
    model = Mixture(weights=np.full(3, 1 / 3), components=ComponentList(comps))
    kernel = model.components._kernel
    gappy = X.copy()
    gappy[2100, 5] = np.nan  # in the third block of 1024 rows
    assert kernel.soft_e_step(gappy, model._log_weights) is None
    fast = model.e_step(gappy)
    with expfam.per_component():
        slow = model.e_step(gappy)
    np.testing.assert_allclose(fast.resp_sum, slow.resp_sum, rtol=1e-12)
    boundary = ComponentList((Bernoulli(np.r_[0.0, comps[0].p[1:]]), *comps[1:]))
    assert boundary._kernel.binary_table is None
    X[:, 0] = 0.0
    resp_sum, stats, log_likelihood = boundary._kernel.soft_e_step(X, model._log_weights)
    expected = _numpy_e_step(boundary._kernel, X, model._log_weights)
    np.testing.assert_allclose(resp_sum, expected[0], rtol=1e-12)
    np.testing.assert_allclose(stats.total, expected[1], rtol=1e-12, atol=1e-12)
    assert log_likelihood == pytest.approx(expected[2], rel=1e-13)


def _float32_case(name: str, rng: np.random.Generator, n: int = 2000):
    if name == "bernoulli":
        truth = rng.uniform(0.1, 0.9, (3, 16))
        X = (rng.random((n, 16)) < truth[rng.integers(3, size=n)]).astype(float)
        return [Bernoulli(rng.uniform(0.3, 0.7, 16)) for _ in range(3)], X
    if name == "poisson":
        X = rng.poisson(rng.uniform(1, 10, (3, 6))[rng.integers(3, size=n)]).astype(float)
        return [Poisson(rng.uniform(1, 10, 6)) for _ in range(3)], X
    X = rng.integers(0, 4, (n, 8)).astype(float)
    return [Independent([Categorical(rng.dirichlet(np.ones(4))) for _ in range(8)])
            for _ in range(3)], X


@pytest.mark.parametrize("name", ["bernoulli", "poisson", "latent_classes"])
def test_float32_data_fit_as_float64_data(name):
    """float32 data are kept (the kernel computes chunk by chunk in float64): the fit
    equals the float64 fit of the same values, and its outputs keep the data's dtype."""
    comps, X = _float32_case(name, np.random.default_rng(12))
    X[5, 1] = np.nan  # a chunk on the numpy path too
    double = MixtureModel(comps, tol=0, max_iter=10).fit(X)
    single = MixtureModel(comps, tol=0, max_iter=10).fit(X.astype(np.float32))
    np.testing.assert_allclose(_parameters(single), _parameters(double), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(single.history_, double.history_, rtol=1e-6)
    assert single.predict_proba(X[:4].astype(np.float32)).dtype == np.float32
    automatic = dict(components=comps[0], n_components=3, tol=0, max_iter=10, random_state=0)
    np.testing.assert_allclose(
        MixtureModel(**automatic).fit(X.astype(np.float32)).history_,
        MixtureModel(**automatic).fit(X).history_, rtol=1e-5)


def test_float32_fit_makes_no_float64_copy_of_the_data():
    """A float32 fit from given starts makes no copy of the data: its peak memory (the
    Bernoulli data check's two boolean masks, a quarter of the data each, and a few
    chunks' features) stays under the size of the data, half of the float64 copy
    that converting them would make."""
    import tracemalloc

    comps, X = _float32_case("bernoulli", np.random.default_rng(13), n=100_000)
    X = X.astype(np.float32)
    MixtureModel(comps, tol=0, max_iter=2).fit(X[:5000])  # compiled, imports done
    tracemalloc.start()
    try:
        MixtureModel(comps, tol=0, max_iter=3).fit(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes


def test_chunk_memo_keeps_packed_bits_and_h_for_the_next_pass():
    """An IndexedArraySource gives each chunk a memo that lives as long as the source:
    the first pass keeps the packed bits of binary rows (numpy's unpackbits gives the
    rows back) and the summed h(x) of count rows (scipy's gammaln); the second pass,
    reading them, equals the first and a pass without memo. Views of a chunk carry none."""
    from scipy.special import gammaln

    from emkit.data.sources import ArraySource, row_memo

    rng = np.random.default_rng(14)
    for name in ("bernoulli", "poisson"):
        comps, X = _float32_case(name, rng, n=1100)
        X[700, 2] = np.nan  # its chunk is not packed: the numpy path, each pass
        model = Mixture(weights=np.full(3, 1 / 3), components=ComponentList(tuple(comps)))
        source = IndexedArraySource(X, 500)
        first = expected_stats(model, source, n_threads=1)
        second = expected_stats(model, source, n_threads=1)
        plain = expected_stats(model, ArraySource(X, 500), n_threads=1)
        for stats in (second, plain):
            assert stats.log_likelihood == first.log_likelihood
            np.testing.assert_array_equal(stats.resp_sum, first.resp_sum)
            np.testing.assert_array_equal(stats.components.total, first.components.total)
        chunks = list(source)
        assert row_memo(chunks[0][1:]) is None and row_memo(np.asarray(chunks[0])) is None
        memos = [row_memo(chunk) for chunk in chunks]
        if name == "bernoulli":
            codes = [memo[("expfam bits",)] for memo in memos]
            assert codes[1] is None  # the chunk with the NaN
            for chunk, packed in zip(chunks[::2], codes[::2], strict=True):
                assert packed.dtype == np.uint8 and packed.shape == (len(chunk), 2)
                np.testing.assert_array_equal(
                    np.unpackbits(packed, axis=1, bitorder="little"), chunk)
        else:
            bases = [value for memo in memos for key, value in memo.items()
                     if key[0] == "expfam h(x)"]
            expected = [-gammaln(chunks[i] + 1).sum() for i in (0, 2)]
            np.testing.assert_allclose(bases, expected, rtol=1e-13)
