"""The EM variants: how responsibilities become the weights the M-step sums.

Soft EM sums the responsibilities themselves, hard (classification) EM the
one-hot argmax, stochastic EM a one-hot draw from them. A variant is a small
immutable *assignment policy* stored on the :class:`~emkit.latent.mixture.Mixture`
(its ``assignment`` field), applied inside ``Mixture.e_step`` before the
statistics are summed; so every component family and every driver (in
memory, chunked, online) gets the variants without a second implementation.

A policy has two methods:

``assign(resp, log_norm, start) -> (weights, objective)``
    ``resp`` are the responsibilities (n_samples, K), ``log_norm`` the rows'
    log-likelihoods; ``weights`` of shape (n_samples, K) replace ``resp`` in the
    statistics; ``objective`` of shape (n_samples,) holds each row's term of the
    value the engine records in ``history`` (the E-step sums them, leaving out
    rows with nothing observed). ``start`` is the index of the chunk's first
    row in the whole data set, or ``None`` if unknown.
``advanced() -> policy``
    The policy for the next iteration (``Mixture.m_step`` calls it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from emkit.core.engine import Callback, EMResult, run_em

ALGORITHMS = ("em", "hard", "stochastic")


def _one_hot(labels: np.ndarray, n_components: int, dtype: Any) -> np.ndarray:
    weights = np.zeros((labels.shape[0], n_components), dtype=dtype)
    weights[np.arange(labels.shape[0]), labels] = 1
    return weights


@dataclass(frozen=True)
class Soft:
    """Ordinary EM: the responsibilities are the weights; the objective is the log-likelihood."""

    def assign(
        self, resp: np.ndarray, log_norm: np.ndarray, start: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return resp, log_norm

    def advanced(self) -> Soft:
        return self


@dataclass(frozen=True)
class Hard:
    """Classification EM: each row wholly to its most likely component.

    The objective is the classification log-likelihood
    ``sum_i log pi_{z_i} + log p(x_i | theta_{z_i})`` of the argmax labels
    ``z``, which hard EM never decreases (the E-step maximises it over ``z``,
    the M-step over the parameters).

    Examples
    --------
    >>> import numpy as np
    >>> resp = np.array([[0.9, 0.1], [0.4, 0.6]])
    >>> weights, objective = HARD.assign(resp, np.zeros(2), start=None)
    >>> weights
    array([[1., 0.],
           [0., 1.]])
    >>> np.allclose(objective, [np.log(0.9), np.log(0.6)])
    True
    """

    def assign(
        self, resp: np.ndarray, log_norm: np.ndarray, start: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        labels = resp.argmax(axis=1)
        rows = np.arange(labels.shape[0])
        # log pi_z + log p(x | z) = log r_z + log p(x): no second pass over the
        # densities; r_z >= 1/K at the argmax, so its log loses no precision.
        objective = np.log(resp[rows, labels]) + log_norm
        return _one_hot(labels, resp.shape[1], resp.dtype), objective

    def advanced(self) -> Hard:
        return self


@dataclass(frozen=True)
class Stochastic:
    """Stochastic EM: each row wholly to a component drawn from its responsibilities.

    Draws are keyed on ``(key, iteration, row index)`` with a counter-based
    generator (Philox), so they depend neither on how the rows are cut into
    chunks nor on the order in which chunks are processed (threads, Dask).
    The objective is the observed-data log-likelihood of the parameters going
    into the E-step, so ``history`` shows the noisy path.

    Attributes
    ----------
    key : tuple of int
        Entropy of the draws, from the estimator's ``random_state``.
    iteration : int
        Which iteration's draws this policy makes.

    Examples
    --------
    >>> import numpy as np
    >>> policy = Stochastic.from_seed(np.random.SeedSequence(0))
    >>> resp = np.full((6, 3), 1 / 3)
    >>> weights, _ = policy.assign(resp, np.zeros(6), start=0)
    >>> weights.sum(axis=1)
    array([1., 1., 1., 1., 1., 1.])
    >>> # Rows 2..5 drawn as a chunk of their own get the same components.
    >>> bool((policy.assign(resp[2:], np.zeros(4), start=2)[0] == weights[2:]).all())
    True
    """

    key: tuple[int, ...]
    iteration: int = 0

    @classmethod
    def from_seed(cls, seed: np.random.SeedSequence) -> Stochastic:
        """A policy whose draws are seeded by ``seed``."""
        return cls(key=tuple(int(w) for w in seed.generate_state(4, np.uint32)))

    def assign(
        self, resp: np.ndarray, log_norm: np.ndarray, start: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if start is None:
            raise ValueError(
                "stochastic EM needs chunks that know the index of their first row "
                "(iterate the data with emkit.data.sources.IndexedArraySource)"
            )
        uniforms = self.uniforms(start, resp.shape[0])
        # First component whose cumulative responsibility exceeds the uniform;
        # the clip catches a last cumulative value that rounds below one.
        labels = (resp.cumsum(axis=1) < uniforms[:, None]).sum(axis=1)
        labels = np.minimum(labels, resp.shape[1] - 1)
        return _one_hot(labels, resp.shape[1], resp.dtype), log_norm

    def uniforms(self, start: int, n_rows: int) -> np.ndarray:
        """Uniform draws of rows ``start .. start + n_rows - 1`` in this iteration."""
        philox_key = np.random.SeedSequence([*self.key, self.iteration]).generate_state(
            2, np.uint64
        )
        bit_generator = np.random.Philox(key=philox_key)
        # One Philox counter step yields four 64-bit words, one double each.
        bit_generator.advance(start // 4)
        skip = start % 4
        return np.random.Generator(bit_generator).random(skip + n_rows)[skip:]

    def advanced(self) -> Stochastic:
        return replace(self, iteration=self.iteration + 1)


SOFT = Soft()
HARD = Hard()


def labelled_terms(weighted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``log pi_z + log p(x | z)`` of each row at its label (garbage where ``labels == -1``).

    Taken from the weighted log densities before they are normalised (and
    overwritten): a known row's objective term stays exact even where its
    responsibility would underflow to zero.
    """
    rows = np.arange(labels.shape[0])
    return weighted[rows, np.maximum(labels, 0)].astype(np.float64)


def with_labels(
    weights: np.ndarray, objective: np.ndarray, labels: np.ndarray, terms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Semi-supervised EM: rows with a known component (``labels >= 0``) go wholly to it.

    Applied after any policy (soft, hard, stochastic), so every variant becomes
    semi-supervised: a known row's weights are one-hot at its label and its
    objective term is ``log pi_z + log p(x | z)`` (``terms``, from
    :func:`labelled_terms`), unknown rows (``-1``) keep the policy's. The sum
    is the log-likelihood of the unknown rows plus the complete-data
    log-likelihood of the known ones, which EM never decreases.

    Examples
    --------
    >>> import numpy as np
    >>> resp = np.array([[0.9, 0.1], [0.4, 0.6]])
    >>> weights, objective = with_labels(resp.copy(), np.zeros(2), np.array([1, -1]),
    ...                                  np.array([-3.0, 0.0]))
    >>> weights
    array([[0. , 1. ],
           [0.4, 0.6]])
    >>> objective
    array([-3.,  0.])
    """
    known = labels >= 0
    if not known.any():
        return weights, objective
    weights = weights.copy()
    weights[known] = _one_hot(labels[known], weights.shape[1], weights.dtype)
    objective = np.array(objective, dtype=np.float64)
    objective[known] = terms[known]
    return weights, objective


def assignment_for(algorithm: str, seed: np.random.SeedSequence) -> Any:
    """The policy of an ``algorithm=`` string; ``seed`` seeds stochastic draws."""
    if algorithm == "em":
        return SOFT
    if algorithm == "hard":
        return HARD
    if algorithm == "stochastic":
        return Stochastic.from_seed(seed)
    raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")


@dataclass
class BestSeenResult(EMResult):
    """An EM run that reports the best parameters it evaluated, not the last.

    ``history`` keeps the whole (noisy) path; ``lower_bound`` is the best value.
    """

    best: float = field(default=-np.inf)

    @property
    def lower_bound(self) -> float:
        return self.best


def run_best_seen(
    model: Any,
    source: Any,
    *,
    max_iter: int,
    callback: Callback | None = None,
) -> BestSeenResult:
    """Run exactly ``max_iter`` iterations; return the parameters with the best log-likelihood.

    For stochastic EM, whose path never settles: no ``tol``, so the run is
    never marked converged. The log-likelihood an E-step reports belongs to the
    parameters that went *into* it, so the tracker keeps the model of the
    previous call.
    """
    tracker = {"current": model, "best": model, "value": -np.inf}

    def track(iteration: int, lower_bound: float, change: float, new_model: Any) -> None:
        if lower_bound > tracker["value"]:
            tracker["best"], tracker["value"] = tracker["current"], lower_bound
        tracker["current"] = new_model
        if callback is not None:
            callback(iteration, lower_bound, change, new_model)

    result = run_em(model, source, tol=0.0, max_iter=max_iter, callback=track)
    return BestSeenResult(
        model=tracker["best"], history=result.history, n_iter=result.n_iter,
        converged=False, best=tracker["value"],
    )
