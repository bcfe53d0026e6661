"""HiddenMarkovModel: Baum-Welch over sequences for any list of emission distributions.

The estimator validates, builds the starting
:class:`~emkit.latent.hmm.HiddenMarkovChain` and runs the engine's EM loop over
chunks of whole sequences; the maths is in :mod:`emkit.latent.hmm`. The
methods shared with the hmmlearn drop-ins (:mod:`emkit.estimators.hmm`) live
in :class:`HMMMethods`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from emkit.core.acceleration import squarem
from emkit.core.engine import EMResult, run_em
from emkit.data.scale import INIT_SAMPLE_ROWS, is_dask_array
from emkit.distributions import Distribution
from emkit.distributions.codec import ComponentListCodec
from emkit.distributions.component_list import ComponentList, check_components
from emkit.estimators.mixture_starts import SPREAD
from emkit.estimators.standard_errors import HMMStandardErrorMethods
from emkit.io import register_estimator
from emkit.latent.hmm import (
    HiddenMarkovChain,
    HMMCodec,
    Sequences,
    check_lengths,
    check_stochastic,
    sequence_chunks,
)

# Observed steps each state's emissions are fitted to in a random start (n_init > 1).
SUBSET_ROWS = 20


def as_rows(X: Any) -> np.ndarray:
    """``X`` as a float64 2-D array; NaN (missing) allowed, infinities refused."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if np.isinf(X).any():
        row = int(np.argwhere(np.isinf(X))[0][0])
        raise ValueError(f"X holds an infinite value at row {row}")
    return X


def stacked(X: Any, lengths: Any) -> tuple[Any, Any]:
    """Sequences given as a list of 2-D arrays, stacked into rows plus their lengths.

    Any other ``X`` (one array of stacked rows, hmmlearn's convention) is returned as is.
    """
    if isinstance(X, list | tuple) and X and all(np.ndim(x) == 2 for x in X):
        if lengths is not None:
            raise ValueError("give either a list of sequences or X with lengths, not both")
        return np.concatenate([np.asarray(x, dtype=np.float64) for x in X]), [len(x) for x in X]
    return X, lengths


def generator(random_state: Any) -> np.random.Generator:
    """A numpy Generator from an int, None, a Generator or a RandomState."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    return np.random.default_rng(random_state)


class HMMMethods(HMMStandardErrorMethods):
    """fit / score / decode / sample over the chain ``self._chain()`` describes.

    Subclasses provide ``_chain()`` (the model held in the fitted attributes),
    ``_initial_chain(X, lengths)``, ``_store(chain)``, ``_check_rows(X)`` and
    ``_tol_per_sample(n)``, and the parameters ``n_iter`` (or ``max_iter``).
    """

    def _iterations(self) -> int:
        return int(getattr(self, "n_iter", getattr(self, "max_iter", 100)))

    def _sequences(self, X: Any, lengths: Any) -> list[Sequences]:
        X, lengths = stacked(X, lengths)
        X = as_rows(X)
        self._check_rows(X)
        return sequence_chunks(X, check_lengths(lengths, X.shape[0]))

    def fit(self, X: Any, lengths: Any = None) -> HMMMethods:
        """Estimate the parameters by Baum-Welch (EM).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), list of such arrays, or dask array
            The sequences' observations, stacked (or one array per sequence).
            NaN marks a missing value. A ``dask.array.Array`` is fitted block
            by block where it lives (blocks re-cut at sequence boundaries
            when they split a sequence), with the in-memory fit's answer.
        lengths : array-like of int, optional
            Lengths of the sequences (summing to ``n_samples``); default one
            sequence (or the arrays of a list).

        Returns
        -------
        self
        """
        if is_dask_array(X):
            return self._fit_dask(X, lengths)
        X, lengths = stacked(X, lengths)
        X = as_rows(X)
        self._check_rows(X)
        lengths = check_lengths(lengths, X.shape[0])
        self._check_run_options()
        n_observed = int(X.shape[0] - np.isnan(X).all(axis=1).sum())
        return self._fit_source(self._starts(X, lengths), sequence_chunks(X, lengths),
                                n_observed)

    def _fit_dask(self, X: Any, lengths: Any) -> HMMMethods:
        """Baum-Welch over a Dask array of sequences: blocks of whole sequences E-stepped
        where they live; starts drawn from a uniform sample of at most
        :data:`~emkit.data.scale.INIT_SAMPLE_ROWS` rows (all rows when there are fewer)."""
        from emkit.latent.hmm_dask import DaskSequenceSource

        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D dask array (n_samples, n_features), got {X.ndim}-D")
        lengths = check_lengths(lengths, int(X.shape[0]))
        self._check_run_options()
        source = DaskSequenceSource(X, lengths, check=self._check_block)
        seed = self.random_state if isinstance(self.random_state, int | np.integer) else 0
        sample = source.sample(INIT_SAMPLE_ROWS, np.random.default_rng(seed))
        self._check_rows(sample)
        return self._fit_source(self._starts(sample, None), source, source.n_observed())

    def _check_block(self, X: np.ndarray) -> None:
        self._check_rows(X)

    def _fit_source(self, starts: Any, source: Any, n_observed: int) -> HMMMethods:
        result = self._best_run(starts, source, self._tol_per_sample(max(n_observed, 1)))
        self._store(result.model)
        self.history_ = [float(h) for h in result.history]
        self.n_iter_ = result.n_iter
        self.converged_ = bool(result.converged)
        self.lower_bound_ = float(result.lower_bound)
        self._after_fit(result, n_observed)
        return self

    def _check_run_options(self) -> None:
        n_init = getattr(self, "n_init", 1)
        if not (isinstance(n_init, int | np.integer) and not isinstance(n_init, bool)
                and n_init >= 1):
            raise ValueError(f"n_init must be an integer >= 1, got {n_init!r}")
        if not isinstance(getattr(self, "accelerate", False), bool | np.bool_):
            raise ValueError(f"accelerate must be True or False, got {self.accelerate!r}")

    def _best_run(self, starts: Any, source: Any, tol: float) -> EMResult:
        """EM (or SQUAREM) from every start; the run with the highest final
        log-likelihood wins (the first among equals)."""
        best = None
        for chain in starts:
            if getattr(self, "accelerate", False):
                result = squarem(chain, source, HMMCodec(self._emission_codec()), tol=tol,
                                 max_iter=self._iterations())
            else:
                result = run_em(chain, source, tol=tol, max_iter=self._iterations())
            if best is None or result.lower_bound > best.lower_bound:
                best = result
        return best

    def _emission_codec(self) -> Any:
        """The codec SQUAREM flattens the emissions with."""
        return ComponentListCodec()

    def _after_fit(self, result: Any, n_observed: int) -> None:
        """Hook for drop-ins (hmmlearn's ``monitor_``)."""

    def score_samples(self, X: Any, lengths: Any = None) -> tuple[float, np.ndarray]:
        """Log-likelihood of the sequences (summed) and the state posteriors (n_samples, K)."""
        chain = self._chain()
        total, parts = 0.0, []
        for seqs in self._sequences(X, lengths):
            gamma, loglik, _ = chain.posteriors(seqs)
            total += float(loglik.sum())
            parts.append(gamma)
        return total, np.vstack(parts)

    def score(self, X: Any, lengths: Any = None) -> float:
        """Log-likelihood of the sequences, summed over them (hmmlearn's convention)."""
        return self.score_samples(X, lengths)[0]

    def predict_proba(self, X: Any, lengths: Any = None) -> np.ndarray:
        """Posterior probability of each state at each step, shape (n_samples, K)."""
        return self.score_samples(X, lengths)[1]

    def decode(self, X: Any, lengths: Any = None, algorithm: str | None = None
               ) -> tuple[float, np.ndarray]:
        """The most likely states: ``"viterbi"`` (the best path, and its summed log
        probability) or ``"map"`` (each step's most probable state, and the
        log-likelihood)."""
        algorithm = algorithm or self._decoder()
        if algorithm == "map":
            logprob, posteriors = self.score_samples(X, lengths)
            return logprob, posteriors.argmax(axis=1)
        if algorithm != "viterbi":
            raise ValueError(f"algorithm must be 'viterbi' or 'map', got {algorithm!r}")
        chain = self._chain()
        total, parts = 0.0, []
        for seqs in self._sequences(X, lengths):
            states, best = chain.decode(seqs)
            total += float(best.sum())
            parts.append(states)
        return total, np.concatenate(parts)

    def _decoder(self) -> str:
        """The default of :meth:`decode`."""
        return "viterbi"

    def predict(self, X: Any, lengths: Any = None) -> np.ndarray:
        """The most likely state of each step (Viterbi path by default)."""
        return self.decode(X, lengths)[1]

    def sample(self, n_samples: int = 1, random_state: Any = None,
               currstate: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw one sequence: observations (n_samples, n_features) and states (n_samples,)."""
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        rng = generator(self.random_state if random_state is None else random_state)
        return self._sampling_chain().sample(int(n_samples), rng, currstate)

    def _sampling_chain(self) -> HiddenMarkovChain:
        return self._chain()

    def get_stationary_distribution(self) -> np.ndarray:
        """The stationary distribution of the transition matrix (its left eigenvector for 1)."""
        transmat = self._chain().transmat
        values, vectors = np.linalg.eig(transmat.T)
        vector = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
        return vector / vector.sum()

    @property
    def n_parameters(self) -> int:
        """Free parameters of the fitted parts (start, transitions, emissions)."""
        chain = self._chain()
        return replace(chain, fit_start=True, fit_trans=True, fit_emissions=True).n_parameters

    def bic(self, X: Any, lengths: Any = None) -> float:
        """Bayesian information criterion ``-2 log L + p log n`` (lower is better)."""
        X, lengths = stacked(X, lengths)
        n = as_rows(X).shape[0]
        return -2 * self.score(X, lengths) + self.n_parameters * np.log(n)

    def aic(self, X: Any, lengths: Any = None) -> float:
        """Akaike information criterion ``-2 log L + 2 p`` (lower is better)."""
        return -2 * self.score(X, lengths) + 2 * self.n_parameters


@register_estimator
class HiddenMarkovModel(HMMMethods, BaseEstimator):
    """A hidden Markov model with any emission distributions, fitted by Baum-Welch.

    Parameters
    ----------
    emissions : list of emkit.distributions distributions
        One per hidden state, the starting emission parameters (all reading
        the same columns; kinds may differ: Gaussian, Poisson, Categorical,
        Bernoulli, Binomial, Independent products of them, ...).
    startprob : array of shape (K,), optional
        Starting start probabilities; default uniform.
    transmat : array of shape (K, K), optional
        Starting transition matrix (rows sum to one); default uniform.
    max_iter : int, default=100
    tol : float, default=1e-6
        Convergence threshold on the change of the average log-likelihood per
        observed step.
    algorithm : {"em", "hard"}, default="em"
        ``"em"``: Baum-Welch. ``"hard"``: Viterbi training, each iteration
        re-estimating from the most likely paths; ``history_`` then holds the
        paths' average log probability, which never decreases.
    n_init : int, default=1
        Number of starts: the first from the parameters given, each further one
        with each state's emissions fitted to its own small random set of
        observed steps (and the given ``startprob``/``transmat``); the fit with the highest final
        log-likelihood is kept. Baum-Welch finds a local maximum, so restarts
        guard against a poor one.
    accelerate : bool, default=False
        SQUAREM (:mod:`emkit.core.acceleration`) around Baum-Welch: fewer
        passes over the data to converge, the log-likelihood still never
        decreasing (``algorithm="em"`` only); ``max_iter`` then counts passes.
    random_state : int, Generator or None
        Seed of the random starts (``n_init > 1``) and of :meth:`sample`
        (which, before ``fit``, draws from the model as given).

    Attributes
    ----------
    startprob_, transmat_ : ndarray
    emissions_ : list of Distribution
    history_ : list of float
        Average log-likelihood per observed step of the parameters going into each
        iteration (never decreases).
    n_iter_, converged_, lower_bound_

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import HiddenMarkovModel
    >>> from emkit.distributions import Poisson
    >>> truth = HiddenMarkovModel([Poisson(1.0), Poisson(10.0)], transmat=[[0.9, 0.1], [0.2, 0.8]])
    >>> X, states = truth.sample(2000, random_state=0)  # before fit: the model as given
    >>> model = HiddenMarkovModel([Poisson(2.0), Poisson(5.0)]).fit(X, lengths=[1000, 1000])
    >>> bool(np.all(np.diff(model.history_) >= -1e-12))
    True
    >>> [round(float(d.rate[0]), 1) for d in model.emissions_]
    [1.0, 10.0]
    >>> float((model.predict(X, lengths=[1000, 1000]) == states).mean()) > 0.95
    True
    """

    _saved_arrays = ("startprob_", "transmat_")
    _saved_scalars = ("emissions_", "history_", "n_iter_", "converged_", "lower_bound_")

    def __init__(
        self,
        emissions: list[Distribution],
        startprob: Any = None,
        transmat: Any = None,
        *,
        max_iter: int = 100,
        tol: float = 1e-6,
        algorithm: str = "em",
        n_init: int = 1,
        accelerate: bool = False,
        random_state: Any = None,
    ) -> None:
        self.emissions = emissions
        self.startprob = startprob
        self.transmat = transmat
        self.max_iter = max_iter
        self.tol = tol
        self.algorithm = algorithm
        self.n_init = n_init
        self.accelerate = accelerate
        self.random_state = random_state

    def _n_states(self) -> int:
        emissions = list(self.emissions)
        check_components(emissions)
        return len(emissions)

    def _initial_chain(self, X: np.ndarray, lengths: np.ndarray) -> HiddenMarkovChain:
        if not (isinstance(self.max_iter, int | np.integer) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if not (np.isfinite(self.tol) and self.tol >= 0):
            raise ValueError(f"tol must be a finite number >= 0, got {self.tol!r}")
        if self.algorithm not in ("em", "hard"):
            raise ValueError(f"algorithm must be 'em' or 'hard', got {self.algorithm!r}")
        if self.accelerate and self.algorithm != "em":
            raise ValueError(
                "accelerate=True needs algorithm='em': extrapolating Viterbi-training "
                "iterates has no monotone objective to safeguard it"
            )
        k = self._n_states()
        startprob = (np.full(k, 1.0 / k) if self.startprob is None
                     else check_stochastic(self.startprob, "startprob", (k,)))
        transmat = (np.full((k, k), 1.0 / k) if self.transmat is None
                    else check_stochastic(self.transmat, "transmat", (k, k)))
        return HiddenMarkovChain(startprob, transmat, ComponentList(tuple(self.emissions)),
                                 hard=self.algorithm == "hard")

    def _starts(self, X: np.ndarray, lengths: np.ndarray) -> Any:
        """The given start, then ``n_init - 1`` random-partition starts (lazily)."""
        chain = self._initial_chain(X, lengths)
        yield chain
        rng = generator(self.random_state)
        for _ in range(self.n_init - 1):
            yield random_subset_start(chain, X, rng)

    def _check_rows(self, X: np.ndarray) -> None:
        family = ComponentList(tuple(getattr(self, "emissions_", None) or self.emissions))
        family.check_data(X)

    def _tol_per_sample(self, n_observed: int) -> float:
        return float(self.tol)

    def _store(self, chain: HiddenMarkovChain) -> None:
        self.startprob_ = chain.startprob
        self.transmat_ = chain.transmat
        self.emissions_ = list(chain.emissions.distributions)

    def _chain(self) -> HiddenMarkovChain:
        if not hasattr(self, "emissions_"):
            raise ValueError("this HiddenMarkovModel is not fitted yet: call fit first")
        k = len(self.emissions_)
        return HiddenMarkovChain(
            check_stochastic(self.startprob_, "startprob_", (k,)),
            check_stochastic(self.transmat_, "transmat_", (k, k)),
            ComponentList(tuple(self.emissions_)),
        )

    def _sampling_chain(self) -> HiddenMarkovChain:
        # Before fit, the model as specified (to simulate data from known parameters).
        if hasattr(self, "emissions_"):
            return self._chain()
        return self._initial_chain(np.empty((0, 0)), np.empty(0, dtype=np.int64))

    def _check_fitted_state(self) -> None:
        self._chain()


def random_subset_start(chain: HiddenMarkovChain, X: np.ndarray,
                        rng: np.random.Generator) -> HiddenMarkovChain:
    """``chain`` with each state's emissions fitted to its own small random set of steps.

    Each state gets :data:`SUBSET_ROWS` observed steps drawn at random (fewer
    when the data are short), disjoint between states, plus
    :data:`~emkit.estimators.mixture_starts.SPREAD` of its weight spread over
    every observed step, so that no probability starts at exactly 0 or 1 and
    every covariance is positive definite. A random partition of all steps
    (the mixtures' random start) gives nearly equal emissions on long data,
    close to the symmetric point Baum-Welch cannot leave; small sets make
    the starts differ as much as the data allow.
    """
    k = chain.n_states
    observed = np.flatnonzero(~np.isnan(X).all(axis=1))
    size = max(1, min(SUBSET_ROWS, observed.size // k))
    chosen = rng.permutation(observed)[: k * size]
    weights = np.zeros((X.shape[0], k))
    weights[observed] = SPREAD / (1.0 - SPREAD) * chosen.size / k / observed.size
    weights[chosen, np.repeat(np.arange(k), size)[: chosen.size]] += 1.0
    family = chain.emissions
    prepare = getattr(family, "prepare", None)
    chunk = X if prepare is None else prepare(X)
    return replace(chain, emissions=family.from_stats(family.stats(chunk, weights)))
