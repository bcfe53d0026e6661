"""hmmlearn drop-ins: GaussianHMM, CategoricalHMM and PoissonHMM on emkit's Baum-Welch.

Same constructor parameters, attributes (``startprob_``, ``transmat_``,
``means_``, ``covars_``, ``emissionprob_``, ``lambdas_``, ``monitor_``) and
methods as :mod:`hmmlearn.hmm`; from the same start and the same number of
iterations they give hmmlearn's numbers (M-steps with hmmlearn's priors,
``tol`` on the total log-likelihood). The forward-backward pass is emkit's
compiled one and sequences are spread over threads. Public as ``emkit.hmm``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from emkit.distributions.categorical import Categorical
from emkit.distributions.component_list import ComponentList
from emkit.distributions.gaussian.distribution import Gaussian
from emkit.distributions.poisson import Poisson
from emkit.estimators.hidden_markov import HMMMethods
from emkit.estimators.kmeans import KMeans
from emkit.io import register_estimator
from emkit.latent.hmm import HiddenMarkovChain, check_stochastic
from emkit.latent.hmm_gaussian import PriorGaussian, PriorGaussianCodec

COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")


@dataclass
class ConvergenceMonitor:
    """hmmlearn's ``monitor_``: total log-likelihood per iteration, iterations, convergence."""

    tol: float
    n_iter: int
    history: list[float] = field(default_factory=list)
    iter: int = 0
    converged: bool = False


class _BaseHMM(HMMMethods, BaseEstimator):
    """Start and transition handling shared by the drop-ins (hmmlearn's ``BaseHMM``)."""

    _letters = "st"

    def _tol_per_sample(self, n_observed: int) -> float:
        # hmmlearn's tol is on the total log-likelihood; the engine compares averages.
        return float(self.tol) / n_observed

    def _after_fit(self, result: Any, n_observed: int) -> None:
        self.monitor_ = ConvergenceMonitor(
            tol=self.tol, n_iter=self.n_iter, history=[h * n_observed for h in result.history],
            iter=result.n_iter, converged=bool(result.converged),
        )

    def _decoder(self) -> str:
        return self.algorithm

    def _check_letters(self) -> None:
        for name in ("params", "init_params"):
            unknown = set(getattr(self, name)) - set(self._letters)
            if unknown:
                raise ValueError(
                    f"{name} may hold the letters {self._letters!r}, "
                    f"got {''.join(sorted(unknown))!r}"
                )

    def _starts(self, X: np.ndarray, lengths: np.ndarray) -> Any:
        """``n_init`` starts drawn one after the other from one ``RandomState``, so the
        first is hmmlearn's start for the same ``random_state``."""
        random_state = check_random_state(self.random_state)
        for _ in range(self.n_init):
            yield self._initial_chain(X, lengths, random_state)

    def _n_fit_scalars_per_param(self) -> dict[str, int]:
        """Free scalars per ``params`` letter (hmmlearn's ``_get_n_fit_scalars_per_param``)."""
        k = self.n_components
        return {"s": k - 1, "t": k * (k - 1), **self._emission_scalars()}

    @property
    def n_parameters(self) -> int:
        """Free parameters of the letters in ``params``: those ``fit`` estimates.

        hmmlearn 0.3's ``bic``/``aic`` count every letter whatever ``params``
        holds; parameters kept fixed are not free, so they are not counted
        here (the two agree for the default ``params``).
        """
        self._check_fitted_state()
        per_letter = self._n_fit_scalars_per_param()
        return sum(per_letter[letter] for letter in set(self.params))

    def _init_chain_parts(self, X: np.ndarray,
                          random_state: np.random.RandomState) -> np.random.RandomState:
        self._check_letters()
        k = self.n_components
        if "s" in self.init_params:
            self.startprob_ = random_state.dirichlet(np.full(k, 1.0 / k))
        if "t" in self.init_params:
            self.transmat_ = random_state.dirichlet(np.full(k, 1.0 / k), size=k)
        return random_state

    def _needs(self, name: str, letter: str) -> None:
        if not hasattr(self, name):
            raise ValueError(
                f"{name} is not set: set it before fit or put {letter!r} in init_params"
            )

    def _chain_of(self, emissions: Any, fitting: bool = False) -> HiddenMarkovChain:
        k = self.n_components
        self._needs("startprob_", "s")
        self._needs("transmat_", "t")
        params = self.params if fitting else ""
        return HiddenMarkovChain(
            check_stochastic(self.startprob_, "startprob_", (k,)),
            check_stochastic(self.transmat_, "transmat_", (k, k)),
            emissions, start_prior=self.startprob_prior, trans_prior=self.transmat_prior,
            fit_start="s" in params, fit_trans="t" in params,
            fit_emissions=bool(set(params) - {"s", "t"}),
        )

    def _information_chain(self) -> tuple[HiddenMarkovChain, bool, bool, Any]:
        """The chain for standard errors, and which of its parts ``params`` fits."""
        params = set(self.params)
        letters = params - {"s", "t"}
        return (self._chain(), "s" in params, "t" in params,
                self._emission_free(letters) if letters else False)

    def _emission_free(self, letters: set[str]) -> Any:
        return None  # one emission letter: every emission parameter

    def _store_chain_parts(self, chain: HiddenMarkovChain) -> None:
        self.startprob_ = chain.startprob
        self.transmat_ = chain.transmat

    def _check_fitted_state(self) -> None:
        self._chain()


@register_estimator
class GaussianHMM(_BaseHMM):
    """Hidden Markov model with Gaussian emissions (hmmlearn's ``GaussianHMM``).

    Parameters are hmmlearn's: ``n_components, covariance_type ("diag", "full",
    "spherical", "tied"), min_covar, startprob_prior, transmat_prior, means_prior,
    means_weight, covars_prior, covars_weight, algorithm, random_state, n_iter,
    tol, verbose, params, init_params, implementation`` (``verbose`` and
    ``implementation`` are accepted and ignored: the pass is always emkit's),
    and two of emkit's: ``n_init`` (starts drawn in turn from ``random_state``
    for the letters of ``init_params``; the best final log-likelihood wins; the
    first start is hmmlearn's) and ``accelerate`` (SQUAREM around Baum-Welch;
    ``n_iter`` then counts passes over the data).

    Attributes
    ----------
    startprob_ : (n_components,)
    transmat_ : (n_components, n_components)
    means_ : (n_components, n_features)
    covars_ : (n_components, n_features, n_features) when read, for every
        covariance type (as hmmlearn); set it in the type's own shape.
    monitor_ : ConvergenceMonitor

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.hmm import GaussianHMM
    >>> X = np.concatenate([np.random.default_rng(0).normal(m, 1, (300, 1)) for m in (0, 8, 0)])
    >>> model = GaussianHMM(n_components=2, n_iter=20, random_state=0).fit(X)
    >>> [int(m) for m in np.sort(model.means_[:, 0]).round()]
    [0, 8]
    """

    _letters = "stmc"
    _saved_arrays = ("startprob_", "transmat_", "means_", "_covars_")
    _saved_scalars = ("history_", "n_iter_", "converged_", "lower_bound_", "n_features")

    def __init__(self, n_components=1, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0, means_weight=0,
                 covars_prior=1e-2, covars_weight=1, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="stmc", init_params="stmc",
                 implementation="log", n_init=1, accelerate=False):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.accelerate = accelerate

    @property
    def covars_(self) -> np.ndarray:
        """Covariances as (n_components, n_features, n_features) matrices."""
        k, d = self.n_components, self.means_.shape[1]
        covars = self._covars_
        if self.covariance_type == "full":
            return covars
        if self.covariance_type == "diag":
            return np.array([np.diag(c) for c in covars])
        if self.covariance_type == "tied":
            return np.tile(covars, (k, 1, 1))
        return np.eye(d)[None] * np.ravel(covars)[:, None, None]

    @covars_.setter
    def covars_(self, covars: Any) -> None:
        covars = np.asarray(covars, dtype=np.float64)
        if self.covariance_type == "spherical" and covars.ndim == 2:
            covars = covars.mean(axis=1)  # hmmlearn's tiled (K, D) form
        self._covars_ = covars.copy()

    def _check_rows(self, X: np.ndarray) -> None:
        if hasattr(self, "means_") and X.shape[1] != np.shape(self.means_)[1]:
            raise ValueError(
                f"X has {X.shape[1]} features but the model has {np.shape(self.means_)[1]}"
            )

    def _emissions(self, fitting: bool = False) -> PriorGaussian:
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES}, got {self.covariance_type!r}"
            )
        self._needs("means_", "m")
        self._needs("_covars_", "c")
        means = np.asarray(self.means_, dtype=np.float64)
        k, d = self.n_components, means.shape[-1]
        expected = {"spherical": (k,), "diag": (k, d), "full": (k, d, d), "tied": (d, d)}
        if means.shape != (k, d) or self._covars_.shape != expected[self.covariance_type]:
            raise ValueError(
                f"means_ must have shape {(k, d)} and a {self.covariance_type} covars_ shape "
                f"{expected[self.covariance_type]}, got {means.shape} and {self._covars_.shape}"
            )
        params = self.params if fitting else ""
        return PriorGaussian.build(
            means, self._covars_, self.covariance_type, means_prior=self.means_prior,
            means_weight=self.means_weight, covars_prior=self.covars_prior,
            covars_weight=self.covars_weight, fit_means="m" in params, fit_covars="c" in params,
        )

    def _initial_chain(self, X: np.ndarray, lengths: np.ndarray,
                       random_state: np.random.RandomState) -> HiddenMarkovChain:
        random_state = self._init_chain_parts(X, random_state)
        k, d = self.n_components, X.shape[1]
        if "m" in self.init_params:
            kmeans = KMeans(n_clusters=k, random_state=random_state.randint(2**31), n_init=1)
            self.means_ = kmeans.fit(X[~np.isnan(X).any(axis=1)]).cluster_centers_
        if "c" in self.init_params:
            cv = np.atleast_2d(np.cov(X[~np.isnan(X).any(axis=1)].T)) + self.min_covar * np.eye(d)
            self.covars_ = {
                "full": np.tile(cv, (k, 1, 1)), "tied": cv,
                "diag": np.tile(np.diag(cv), (k, 1)),
                "spherical": np.full(k, np.diag(cv).mean()),
            }[self.covariance_type]
        self.n_features = d
        return self._chain_of(self._emissions(fitting=True), fitting=True)

    def _chain(self) -> HiddenMarkovChain:
        return self._chain_of(self._emissions())

    def _information_chain(self) -> tuple[HiddenMarkovChain, bool, bool, Any]:
        # Each state's emission as a Gaussian distribution, which has derivatives.
        chain, fit_start, fit_trans, free = super()._information_chain()
        if self.covariance_type == "tied":
            raise NotImplementedError(
                "standard errors are not implemented for GaussianHMM(covariance_type='tied') "
                "(one covariance shared by the states); use 'full', 'diag' or 'spherical'"
            )
        covars = np.asarray(self._covars_, dtype=np.float64)
        states = tuple(Gaussian(np.asarray(mean, dtype=np.float64),
                                float(c) if self.covariance_type == "spherical" else c,
                                self.covariance_type)
                       for mean, c in zip(self.means_, covars, strict=True))
        return replace(chain, emissions=ComponentList(states)), fit_start, fit_trans, free

    def _emission_free(self, letters: set[str]) -> Any:
        return lambda name: ("m" if name.startswith("mean") else "c") in letters

    def _emission_codec(self) -> PriorGaussianCodec:
        return PriorGaussianCodec()

    def _emission_scalars(self) -> dict[str, int]:
        k, d = self.n_components, np.shape(self.means_)[1]
        covars = {"spherical": k, "diag": k * d, "full": k * d * (d + 1) // 2,
                  "tied": d * (d + 1) // 2}[self.covariance_type]
        return {"m": k * d, "c": covars}

    def _store(self, chain: HiddenMarkovChain) -> None:
        self._store_chain_parts(chain)
        self.means_ = chain.emissions.family.means
        self._covars_ = chain.emissions.family.covariances


@register_estimator
class CategoricalHMM(_BaseHMM):
    """Hidden Markov model with categorical emissions (hmmlearn's ``CategoricalHMM``).

    ``X`` is one column of category codes ``0 .. n_features - 1``. Parameters are
    hmmlearn's, plus ``n_init`` and ``accelerate`` as for :class:`GaussianHMM`.

    Attributes
    ----------
    startprob_, transmat_
    emissionprob_ : (n_components, n_features)
    monitor_ : ConvergenceMonitor

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.hmm import CategoricalHMM
    >>> X = np.array([[0], [0], [1], [2], [2], [2], [0], [1]])
    >>> model = CategoricalHMM(n_components=2, random_state=0, n_iter=50).fit(X)
    >>> model.emissionprob_.shape
    (2, 3)
    """

    _letters = "ste"
    _saved_arrays = ("startprob_", "transmat_", "emissionprob_")
    _saved_scalars = ("history_", "n_iter_", "converged_", "lower_bound_")

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0,
                 emissionprob_prior=1.0, n_features=None, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="ste",
                 init_params="ste", implementation="log", n_init=1, accelerate=False):
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.accelerate = accelerate

    def _check_rows(self, X: np.ndarray) -> None:
        if X.shape[1] != 1:
            raise ValueError(f"X must be one column of category codes, got {X.shape[1]} columns")
        observed = X[~np.isnan(X)]
        if observed.size and ((observed < 0).any() or (observed != np.round(observed)).any()):
            raise ValueError("X must hold non-negative integer category codes")

    def _emissions(self, fitting: bool = False) -> ComponentList:
        self._needs("emissionprob_", "e")
        probs = np.atleast_2d(np.asarray(self.emissionprob_, dtype=np.float64))
        if probs.shape[0] != self.n_components:
            raise ValueError(
                f"emissionprob_ must have {self.n_components} rows, got shape {probs.shape}"
            )
        prior = self.emissionprob_prior
        prior = None if np.all(np.asarray(prior) == 1) else prior
        return ComponentList(tuple(Categorical(row, prior=prior) for row in probs))

    def _initial_chain(self, X: np.ndarray, lengths: np.ndarray,
                       random_state: np.random.RandomState) -> HiddenMarkovChain:
        random_state = self._init_chain_parts(X, random_state)
        m = self.n_features if self.n_features is not None else int(np.nanmax(X)) + 1
        if "e" in self.init_params:
            probs = random_state.rand(self.n_components, m)
            self.emissionprob_ = probs / probs.sum(axis=1, keepdims=True)
        if np.nanmax(X) >= np.shape(self.emissionprob_)[1]:
            raise ValueError(
                f"X holds category {int(np.nanmax(X))} but the model has "
                f"{np.shape(self.emissionprob_)[1]} categories (n_features)"
            )
        return self._chain_of(self._emissions(), fitting=True)

    def _chain(self) -> HiddenMarkovChain:
        return self._chain_of(self._emissions())

    def _emission_scalars(self) -> dict[str, int]:
        return {"e": self.n_components * (np.shape(self.emissionprob_)[1] - 1)}

    def _check_block(self, X: np.ndarray) -> None:
        # A Dask block, checked during the fit: its categories against the model's.
        self._check_rows(X)
        n_categories = np.shape(self.emissionprob_)[1]
        if np.nanmax(X, initial=-1) >= n_categories:
            raise ValueError(
                f"X holds category {int(np.nanmax(X))} but the model has {n_categories} "
                "categories (n_features): give n_features"
            )

    def _store(self, chain: HiddenMarkovChain) -> None:
        self._store_chain_parts(chain)
        self.emissionprob_ = np.array([d.probs for d in chain.emissions.distributions])
        self.n_features = self.emissionprob_.shape[1]


@register_estimator
class PoissonHMM(_BaseHMM):
    """Hidden Markov model with independent Poisson emissions (hmmlearn's ``PoissonHMM``).

    Parameters are hmmlearn's, plus ``n_init`` and ``accelerate`` as for
    :class:`GaussianHMM`.

    Attributes
    ----------
    startprob_, transmat_
    lambdas_ : (n_components, n_features)
    monitor_ : ConvergenceMonitor

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.hmm import PoissonHMM
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.poisson(2, (200, 1)), rng.poisson(20, (200, 1))])
    >>> model = PoissonHMM(n_components=2, random_state=0, n_iter=50).fit(X)
    >>> np.round(np.sort(model.lambdas_[:, 0]))
    array([ 2., 20.])
    """

    _letters = "stl"
    _saved_arrays = ("startprob_", "transmat_", "lambdas_")
    _saved_scalars = ("history_", "n_iter_", "converged_", "lower_bound_")

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0,
                 lambdas_prior=0.0, lambdas_weight=0.0, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="stl",
                 init_params="stl", implementation="log", n_init=1, accelerate=False):
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.accelerate = accelerate

    def _check_rows(self, X: np.ndarray) -> None:
        observed = X[~np.isnan(X)]
        if observed.size and ((observed < 0).any() or (observed != np.round(observed)).any()):
            raise ValueError("X must hold non-negative integer counts")

    def _emissions(self) -> ComponentList:
        self._needs("lambdas_", "l")
        lambdas = np.atleast_2d(np.asarray(self.lambdas_, dtype=np.float64))
        if lambdas.shape[0] != self.n_components:
            raise ValueError(f"lambdas_ must have {self.n_components} rows, got {lambdas.shape}")
        prior = None
        if np.any(np.asarray(self.lambdas_prior) != 0) or np.any(
                np.asarray(self.lambdas_weight) != 0):
            # hmmlearn's (prior + sum x) / (weight + N) is the Gamma(a, b) MAP with
            # a - 1 = lambdas_prior, b = lambdas_weight.
            prior = (np.asarray(self.lambdas_prior, float) + 1, self.lambdas_weight)
        return ComponentList(tuple(Poisson(row, prior=prior) for row in lambdas))

    def _initial_chain(self, X: np.ndarray, lengths: np.ndarray,
                       random_state: np.random.RandomState) -> HiddenMarkovChain:
        random_state = self._init_chain_parts(X, random_state)
        if "l" in self.init_params:
            mean, var = np.nanmean(X), np.nanvar(X)
            self.lambdas_ = random_state.gamma(shape=mean**2 / var, scale=var / mean,
                                               size=(self.n_components, X.shape[1]))
        return self._chain_of(self._emissions(), fitting=True)

    def _chain(self) -> HiddenMarkovChain:
        return self._chain_of(self._emissions())

    def _emission_scalars(self) -> dict[str, int]:
        return {"l": int(np.size(self.lambdas_))}

    def _store(self, chain: HiddenMarkovChain) -> None:
        self._store_chain_parts(chain)
        self.lambdas_ = np.array([d.rate for d in chain.emissions.distributions])
        self.n_features = self.lambdas_.shape[1]
