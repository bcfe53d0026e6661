"""A hidden Markov chain over any emission family: Baum-Welch as an E-step and an M-step.

A hidden Markov model draws a state path ``z_1 .. z_T`` from a Markov chain
(start probabilities ``pi``, transition matrix ``A``) and each observation
``x_t`` from the emission distribution of state ``z_t``. EM for it is
Baum-Welch: the E-step of a sequence is the forward-backward pass, whose
posteriors give

- expected start counts ``sum_seq P(z_1 = k)``,
- expected transition counts ``sum_seq sum_t P(z_t = i, z_{t+1} = j)``,
- per-state weights ``P(z_t = k)`` for the emission family's weighted statistics,

all sums over sequences, so a chunk of whole sequences is to the chain what a
chunk of rows is to a mixture, and the engine's loop, threads and ordered
sums carry over. The M-step normalises the counts (a Dirichlet prior adds
``alpha - 1`` to them) and hands the summed emission statistics to the
family's ``from_stats``.

Missing values: NaN entries are marginalised by the emission family; a step
with every entry missing has emission density 1 in every state, so it
contributes only its transition, and it adds nothing to the emission
statistics nor to ``n_samples``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
from scipy.special import softmax

from emkit.core.engine import expected_stats
from emkit.core.stats import Stats
from emkit.distributions.component_list import ComponentList
from emkit.latent._forward_backward import forward_backward, viterbi


class EmptyStateWarning(UserWarning):
    """A hidden state received no expected observations in an M-step."""


@dataclass(frozen=True)
class Sequences:
    """A chunk of whole sequences: their rows stacked, and their lengths.

    Attributes
    ----------
    X : ndarray of shape (n_rows, n_features)
    lengths : ndarray of int64, summing to ``n_rows``
    first : int
        Index of the chunk's first sequence among all sequences (for messages).
    """

    X: np.ndarray
    lengths: np.ndarray
    first: int = 0

    @cached_property
    def offsets(self) -> np.ndarray:
        """Row offsets of the sequences, (S + 1,)."""
        return np.concatenate(([0], np.cumsum(self.lengths))).astype(np.int64)

    @cached_property
    def empty(self) -> np.ndarray | None:
        """Mask of the rows with every value missing, None when there are none.

        Computed once per chunk, not once per iteration.
        """
        empty = np.isnan(self.X).all(axis=1)
        return empty if empty.any() else None

    def __len__(self) -> int:
        return self.X.shape[0]


def check_lengths(lengths: Any, n_rows: int) -> np.ndarray:
    """Validated sequence lengths: positive integers summing to ``n_rows``.

    ``None`` means one sequence of all rows.
    """
    if lengths is None:
        if n_rows == 0:
            raise ValueError("X has no rows: an HMM needs at least one observation")
        return np.array([n_rows], dtype=np.int64)
    array = np.asarray(lengths)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"lengths must be a non-empty 1-D list of integers, got {lengths!r}")
    if not np.issubdtype(array.dtype, np.integer):
        if not (np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array))):
            raise ValueError(f"lengths must be integers, got {array.dtype} values")
    array = array.astype(np.int64)
    if (array <= 0).any():
        index = int(np.flatnonzero(array <= 0)[0])
        raise ValueError(
            f"sequence {index} has length {int(array[index])}: every sequence needs at "
            "least one observation"
        )
    if int(array.sum()) != n_rows:
        raise ValueError(
            f"lengths sum to {int(array.sum())} but X has {n_rows} rows: the lengths must "
            "cut X into its sequences exactly"
        )
    return array


class SequenceSource(list):
    """Chunks of sequences as the engine's source.

    A single chunk is E-stepped in the calling thread: handing one small
    chunk to a worker costs more than it saves on short data. More chunks go
    to :func:`emkit.core.engine.expected_stats` (threads, summed in chunk order).
    """

    def expected_stats(self, model: Any) -> Stats:
        if len(self) == 1:  # the common short case: no pool, no generator, no sum
            return model.e_step(self[0])
        return expected_stats(model, self)


def sequence_groups(lengths: np.ndarray, rows: int) -> list[tuple[int, int]]:
    """Consecutive whole sequences ``[first, last)`` of about ``rows`` rows each (a long
    sequence alone)."""
    groups, start, first = [], 0, 0
    ends = np.cumsum(lengths)
    while first < lengths.size:
        # the last sequence ending within ``rows`` of the start, at least one
        last = max(int(np.searchsorted(ends, start + rows, side="right")), first + 1)
        groups.append((first, last))
        start, first = int(ends[last - 1]), last
    return groups


def sequence_chunks(X: np.ndarray, lengths: np.ndarray, rows: int = 20_000,
                    first_sequence: int = 0) -> SequenceSource:
    """Whole sequences grouped into chunks of about ``rows`` rows (a long one stays whole).

    The chunks depend only on the lengths and ``rows``, never on the threads, so
    the statistics add in the same order on every machine. ``first_sequence``
    numbers the sequences in messages (a Dask block's place among all).
    """
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    return SequenceSource(
        Sequences(X[offsets[first]:offsets[last]], lengths[first:last], first_sequence + first)
        for first, last in sequence_groups(lengths, rows)
    )


def check_stochastic(matrix: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float array of ``shape`` with non-negative entries whose rows sum to one."""
    array = np.asarray(matrix, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError(f"{name} must hold finite non-negative probabilities")
    sums = array.sum(axis=-1)
    bad = np.flatnonzero(~(np.abs(sums - 1.0) <= 1e-8))  # np.isclose costs 10x more
    if bad.size:
        where = "" if array.ndim == 1 else f" (row {int(bad[0])})"
        raise ValueError(
            f"{name} must sum to one{where}, got {float(np.ravel(sums)[bad[0]]):.10g}: "
            "not a stochastic " + ("vector" if array.ndim == 1 else "matrix")
        )
    return array


@dataclass(frozen=True)
class HMMStats(Stats):
    """Additive statistics of a hidden Markov chain over some sequences.

    Attributes
    ----------
    start : ndarray (K,)
        Expected number of sequences starting in each state.
    trans : ndarray (K, K)
        Expected transition counts.
    occupancy : ndarray (K,)
        Expected number of observed steps in each state (the emission weights' sums).
    emissions : Stats
        The emission family's weighted statistics.
    log_likelihood : float
        Summed log-likelihood of the sequences.
    n_samples : int
        Observed steps (rows with at least one value).
    """

    start: np.ndarray
    trans: np.ndarray
    occupancy: np.ndarray
    emissions: Stats
    log_likelihood: float
    n_samples: int


@dataclass(frozen=True)
class HiddenMarkovChain:
    """Start probabilities, a transition matrix and an emission family.

    Attributes
    ----------
    startprob : ndarray (K,)
    transmat : ndarray (K, K)
    emissions : family
        ``log_prob(X) -> (n, K)``, ``stats(X, resp)``, ``from_stats(stats)``,
        ``n_parameters`` and ``sample(counts, rng)``: a
        :class:`~emkit.distributions.component_list.ComponentList` or a
        vectorised family such as the Gaussian one.
    start_prior, trans_prior : float or ndarray, default 1
        Dirichlet concentrations: the M-step adds ``prior - 1`` to the counts
        and clips at 0 (1 is maximum likelihood).
    fit_start, fit_trans, fit_emissions : bool
        Which parts the M-step re-estimates.
    hard : bool, default False
        Hard EM (Viterbi training): the E-step counts the most likely path
        instead of the posteriors, and ``log_likelihood`` holds the paths' log
        probability, the objective hard EM never decreases.
    """

    startprob: np.ndarray
    transmat: np.ndarray
    emissions: Any
    start_prior: Any = 1.0
    trans_prior: Any = 1.0
    fit_start: bool = True
    fit_trans: bool = True
    fit_emissions: bool = True
    hard: bool = False

    @property
    def n_states(self) -> int:
        return self.startprob.size

    def log_emissions(self, X: np.ndarray) -> tuple[Any, np.ndarray]:
        """The family's prepared chunk and the log densities (n, K)."""
        prepare = getattr(self.emissions, "prepare", None)
        chunk = X if prepare is None else prepare(X)
        # Any memory order: the compiled passes read either (the Gaussian family's is
        # component-major), and a copy would cost a tenth of a short pass.
        return chunk, np.asarray(self.emissions.log_prob(chunk), dtype=np.float64)

    def posteriors(self, seqs: Sequences) -> tuple[np.ndarray, np.ndarray, HMMStats]:
        """State posteriors (n, K), per-sequence log-likelihoods (S,) and the statistics."""
        chunk, log_b = self.log_emissions(seqs.X)
        k = self.n_states
        gamma = np.empty_like(log_b)
        xi_sum, start_sum = np.zeros((k, k)), np.zeros(k)
        loglik = np.empty(seqs.lengths.size)
        forward_backward(log_b, seqs.offsets, self.startprob, self.transmat,
                         gamma, xi_sum, start_sum, loglik)
        impossible = np.flatnonzero(~np.isfinite(loglik))
        if impossible.size:
            raise ValueError(
                f"sequence {seqs.first + int(impossible[0])} has probability 0 under the "
                "current parameters (an observation no reachable state can emit)"
            )
        weights, n_observed = gamma, seqs.X.shape[0]
        if seqs.empty is not None:
            # A fully missing step has density 1 in every state: no emission information.
            weights = gamma.copy()
            weights[seqs.empty] = 0.0
            n_observed -= int(seqs.empty.sum())
        stats = HMMStats(
            start=start_sum, trans=xi_sum, occupancy=weights.sum(axis=0),
            emissions=self.emissions.stats(chunk, weights),
            log_likelihood=float(loglik.sum()), n_samples=n_observed,
        )
        return gamma, loglik, stats

    def e_step(self, seqs: Sequences) -> HMMStats:
        """Forward-backward (or Viterbi, for hard EM) over a chunk of sequences, as
        additive statistics."""
        if self.hard:
            return self._viterbi_stats(seqs)
        return self.posteriors(seqs)[2]

    def _viterbi_stats(self, seqs: Sequences) -> HMMStats:
        """Counts of the most likely paths: starts, transitions and one-hot emission weights."""
        chunk, log_b = self.log_emissions(seqs.X)
        states, best = self._viterbi(log_b, seqs)
        k = self.n_states
        if not np.isfinite(best).all():
            first = int(np.flatnonzero(~np.isfinite(best))[0])
            raise ValueError(
                f"sequence {seqs.first + first} has probability 0 under the current parameters"
            )
        offsets = seqs.offsets
        inner = np.ones(states.size, dtype=bool)
        inner[offsets[1:] - 1] = False  # no transition out of a sequence's last step
        steps = np.flatnonzero(inner)
        trans = np.bincount(states[steps] * k + states[steps + 1],
                            minlength=k * k).reshape(k, k).astype(np.float64)
        weights = np.zeros_like(log_b)
        weights[np.arange(states.size), states] = 1.0
        n_observed = seqs.X.shape[0]
        if seqs.empty is not None:
            weights[seqs.empty] = 0.0
            n_observed -= int(seqs.empty.sum())
        return HMMStats(
            start=np.bincount(states[offsets[:-1]], minlength=k).astype(np.float64),
            trans=trans, occupancy=weights.sum(axis=0),
            emissions=self.emissions.stats(chunk, weights),
            log_likelihood=float(best.sum()), n_samples=n_observed,
        )

    def m_step(self, stats: HMMStats) -> HiddenMarkovChain:
        """New start probabilities, transitions and emissions from summed statistics."""
        startprob, transmat, emissions = self.startprob, self.transmat, self.emissions
        if self.fit_start:
            startprob = _normalised(stats.start + np.asarray(self.start_prior) - 1, startprob)
        if self.fit_trans:
            transmat = _normalised(stats.trans + np.asarray(self.trans_prior) - 1, transmat)
        if self.fit_emissions:
            empty = np.flatnonzero(stats.occupancy <= 0)
            if empty.size:
                warnings.warn(
                    f"hidden state {int(empty[0])} received no observations: its emission "
                    "parameters keep their previous values", EmptyStateWarning, stacklevel=2,
                )
            emissions = _keep_empty(emissions, emissions.from_stats(stats.emissions), empty)
        return replace(self, startprob=startprob, transmat=transmat, emissions=emissions)

    def decode(self, seqs: Sequences) -> tuple[np.ndarray, np.ndarray]:
        """Viterbi paths (n,) and their log probabilities (S,)."""
        return self._viterbi(self.log_emissions(seqs.X)[1], seqs)

    def _viterbi(self, log_b: np.ndarray, seqs: Sequences) -> tuple[np.ndarray, np.ndarray]:
        states = np.empty(seqs.X.shape[0], dtype=np.int64)
        best = np.empty(seqs.lengths.size)
        with np.errstate(divide="ignore"):
            log_start, log_trans = np.log(self.startprob), np.log(self.transmat)
        viterbi(log_b, seqs.offsets, log_start, log_trans, states, best)
        return states, best

    def sample(
        self, n_samples: int, rng: np.random.Generator, first_state: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One sequence of ``n_samples`` steps: observations and states."""
        states = np.empty(n_samples, dtype=np.int64)
        cumulative = np.cumsum(self.transmat, axis=1)
        state = (rng.choice(self.n_states, p=self.startprob) if first_state is None
                 else int(first_state))
        draws = rng.random(n_samples)
        for t in range(n_samples):
            if t:
                row = cumulative[state]
                state = min(int(np.searchsorted(row, draws[t] * row[-1], side="right")),
                            self.n_states - 1)
            states[t] = state
        counts = np.bincount(states, minlength=self.n_states)
        stacked = self.emissions.sample(counts, rng)  # grouped by state, in state order
        X = np.empty((n_samples, stacked.shape[1]), dtype=stacked.dtype)
        X[np.argsort(states, kind="stable")] = stacked
        return X, states

    @property
    def n_parameters(self) -> int:
        """Free parameters of the fitted parts."""
        k = self.n_states
        total = k - 1 if self.fit_start else 0
        total += k * (k - 1) if self.fit_trans else 0
        return total + (self.emissions.n_parameters if self.fit_emissions else 0)


@dataclass(frozen=True)
class HMMCodec:
    """Flattens a :class:`HiddenMarkovChain` for SQUAREM (``accelerate=True``).

    The vector holds, for the parts the M-step fits only (so fixed parts stay
    exactly as they are), the log start probabilities, the log transition
    rows (mapped back by softmax, as the log-simplex codec of a
    :class:`~emkit.distributions.Categorical`) and the emissions as their
    own codec flattens them.

    Attributes
    ----------
    emissions : codec
        ``flatten(family)`` / ``unflatten(vector, like)`` for the emission family.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions import Poisson
    >>> from emkit.distributions.codec import ComponentListCodec
    >>> chain = HiddenMarkovChain(np.array([0.3, 0.7]), np.array([[0.9, 0.1], [0.2, 0.8]]),
    ...                           ComponentList((Poisson(1.0), Poisson(5.0))))
    >>> codec = HMMCodec(ComponentListCodec())
    >>> codec.flatten(chain).shape   # 2 start + 4 transition logs + 2 rates
    (8,)
    >>> back = codec.unflatten(codec.flatten(chain), like=chain)
    >>> bool(np.allclose(back.transmat, chain.transmat))
    True
    """

    emissions: Any

    def flatten(self, chain: HiddenMarkovChain) -> np.ndarray:
        parts = [np.empty(0)]
        if chain.fit_start:
            parts.append(_log_probabilities(chain.startprob))
        if chain.fit_trans:
            parts.append(_log_probabilities(chain.transmat).ravel())
        if chain.fit_emissions:
            parts.append(np.asarray(self.emissions.flatten(chain.emissions), dtype=np.float64))
        return np.concatenate(parts)

    def unflatten(self, vector: np.ndarray, like: HiddenMarkovChain) -> HiddenMarkovChain:
        if not np.isfinite(vector).all():
            raise ValueError("extrapolated parameters are not finite")
        k, offset, values = like.n_states, 0, {}
        if like.fit_start:
            values["startprob"] = softmax(vector[:k])
            offset = k
        if like.fit_trans:
            values["transmat"] = softmax(vector[offset:offset + k * k].reshape(k, k), axis=1)
            offset += k * k
        if like.fit_emissions:
            values["emissions"] = self.emissions.unflatten(vector[offset:], like.emissions)
        elif offset != vector.size:
            raise ValueError(f"expected {offset} parameters, got {vector.size}")
        return replace(like, **values)


def _log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Logs of probabilities, an exact 0 pulled in to the smallest float (finite)."""
    return np.log(np.maximum(np.asarray(probabilities, dtype=np.float64),
                             np.finfo(np.float64).tiny))


def _keep_empty(previous: Any, fitted: Any, empty: np.ndarray) -> Any:
    """Distributions of states without data put back as they were.

    A :class:`ComponentList` member's M-step may collapse on zero weight (a
    Gaussian's covariance falls to ``reg_covar``); vectorised families such as
    :class:`~emkit.latent.hmm_gaussian.PriorGaussian` keep them themselves.
    """
    if not empty.size or not isinstance(fitted, ComponentList):
        return fitted
    kept = list(fitted.distributions)
    for k in empty:
        kept[int(k)] = previous.distributions[int(k)]
    return ComponentList(tuple(kept))


def _normalised(counts: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Counts clipped at 0 and normalised along the last axis; a row with no counts
    keeps its previous probabilities (a state never left has nothing to estimate from)."""
    counts = np.maximum(counts, 0.0)
    sums = counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sums > 0, counts / sums, previous)

