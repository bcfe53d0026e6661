"""Observed information of a fitted hidden Markov model.

An HMM's log-likelihood ``L(theta) = log p(x)`` sums over every path of hidden
states, so Louis' per-row identity of :mod:`emkit.latent.information` does not
apply row by row (the missing information has a term for every pair of
steps). What is exact and cheap is the *score*, by Fisher's identity the
posterior expectation of the complete-data score, from one forward-backward
pass (Baum-Welch's statistics):

- free start probabilities: ``sum_j g0_j d log pi_j`` with ``g0`` the summed
  posterior of the first state of each sequence;
- free transition probabilities: ``sum_jl xi_jl d log A_jl`` with ``xi`` the
  summed posterior transition counts;
- emissions of state ``k``: ``sum_t gamma_tk d log f_k(x_t)``, the per-row
  scores of :mod:`emkit.distributions.scores` weighted by the posteriors.

The observed information is minus the Jacobian of that exact score, taken by
central differences with one Richardson step (error of order ``h^4``), each
coordinate moved by a hundredth of its complete-data standard error (so the
step suits its scale), then symmetrised: ``4 q`` forward-backward passes for
``q`` free parameters.

The free coordinates are: for each probability vector (the start
probabilities, each row of the transition matrix) every entry but the largest
(the reference, one minus the others), the entries on the boundary (below
:data:`BOUNDARY`) held fixed at zero; then each state's emission parameters
(:func:`emkit.distributions.scores.derivatives`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from emkit.distributions.independent import Independent
from emkit.distributions.scores import Slot, derivatives
from emkit.latent.hmm import HiddenMarkovChain, Sequences

#: Start or transition probabilities below this are on the boundary: held fixed at zero.
#: EM drives a probability whose maximum is at zero down geometrically and stops
#: (by ``tol``) anywhere below about this, its score still far from zero there.
BOUNDARY = 1e-6
# Each coordinate moves by this fraction of its complete-data standard error.
RELATIVE_STEP = 1e-2


@dataclass(frozen=True)
class HMMLayout:
    """The free parameters of an HMM and how its stored arrays follow them.

    Attributes
    ----------
    names : tuple of str
    slots : tuple of Slot
        ``startprob``, ``transmat`` and the emissions' parameters
        (``emissions[k].rate`` ...), each entry from the free parameters.
    start_expand, trans_expand : ndarray
        ``d startprob / d free`` (K, q) and ``d transmat.ravel() / d free`` (K*K, q).
    emission_columns : list of ndarray
        Per state, the free columns of its emission coordinates (empty when fixed).
    fixed_at_boundary : tuple of str
        Probabilities held at zero (on the boundary: no derivative there).
    """

    names: tuple[str, ...]
    slots: tuple[Slot, ...]
    start_expand: np.ndarray
    trans_expand: np.ndarray
    emission_columns: list[np.ndarray]
    fixed_at_boundary: tuple[str, ...]


def hmm_layout(chain: HiddenMarkovChain, *, fit_start: bool = True, fit_trans: bool = True,
               emission_free: Any = None) -> HMMLayout:
    """The free coordinates of ``chain`` (its emissions a ComponentList).

    ``emission_free``: ``None`` (every emission parameter free), ``False`` (none) or a
    callable ``name -> bool`` on a state's coordinate names (``"mean[0]"`` ...).
    """
    k = chain.n_states
    names: list[str] = []
    boundary: list[str] = []
    start_rows = _probability_block(np.asarray(chain.startprob, np.float64)[None], fit_start,
                                    "startprob", names, boundary, vector=True)
    trans_rows = _probability_block(np.asarray(chain.transmat, np.float64), fit_trans,
                                    "transmat", names, boundary, vector=False)
    emission_columns, emission_parts = [], []
    for c, distribution in enumerate(chain.emissions.distributions):
        if emission_free is False:
            emission_columns.append(np.zeros(0, np.intp))
            emission_parts.append(None)
            continue
        part = derivatives(distribution)
        keep = np.array([True if emission_free is None else bool(emission_free(name))
                         for name in part.names], dtype=bool)
        start = len(names)
        names += [f"emissions[{c}].{name}" for name, kept in zip(part.names, keep, strict=True)
                  if kept]
        columns = np.full(len(part.names), -1, np.intp)
        columns[keep] = start + np.arange(int(keep.sum()))
        emission_columns.append(columns)
        emission_parts.append(part)
    q = len(names)
    start_expand, trans_expand = _expand(start_rows, k, q), _expand(trans_rows, k, q)
    slots = [Slot("startprob", np.asarray(chain.startprob, np.float64), start_expand),
             Slot("transmat", np.asarray(chain.transmat, np.float64), trans_expand)]
    for c, (part, columns) in enumerate(zip(emission_parts, emission_columns, strict=True)):
        if part is None:
            continue
        for slot in part.slots:
            expand = np.zeros((slot.value.size, q))
            used = columns >= 0
            expand[:, columns[used]] = slot.expand[:, used]
            slots.append(Slot(f"emissions[{c}].{slot.name}", slot.value, expand))
    return HMMLayout(tuple(names), tuple(slots), start_expand, trans_expand, emission_columns,
                     tuple(boundary))


def _probability_block(rows: np.ndarray, free: bool, name: str, names: list[str],
                       boundary: list[str], vector: bool) -> list[list[tuple[int, int, int]]]:
    """Free entries of probability rows: per row, ``(entry, reference, column)`` triples."""
    out = []
    for j, row in enumerate(rows):
        triples = []
        if free and row.size > 1:
            reference = int(np.argmax(row))
            for entry in range(row.size):
                label = f"{name}[{entry}]" if vector else f"{name}[{j}, {entry}]"
                if entry == reference:
                    continue
                if row[entry] < BOUNDARY:
                    boundary.append(f"{label} = {row[entry]:.3g}")
                    continue
                triples.append((entry, reference, len(names)))
                names.append(label)
        out.append(triples)
    return out


def _expand(rows: list[list[tuple[int, int, int]]], width: int, q: int) -> np.ndarray:
    """``d entries / d free`` of probability rows of ``width`` entries, shape (rows * width, q)."""
    out = np.zeros((len(rows) * width, q))
    for j, triples in enumerate(rows):
        for entry, reference, column in triples:
            out[j * width + entry, column] = 1.0
            out[j * width + reference, column] = -1.0
    return out


def observed_information(chain: HiddenMarkovChain, layout: HMMLayout,
                         chunks: Sequence[Sequences]) -> tuple[np.ndarray, np.ndarray]:
    """Minus the Hessian of the log-likelihood in ``layout``'s coordinates, and the score.

    Returns
    -------
    information : ndarray of shape (q, q)
    score : ndarray of shape (q,)
        The gradient at ``chain`` (zero at a maximum).
    """
    q = len(layout.names)
    score, complete = _score(chain, layout, chunks, with_complete=True)
    steps = RELATIVE_STEP / np.sqrt(np.where(complete > 0, complete, np.inf))
    # No information on a coordinate: any step; the inverse names it as singular.
    steps = np.where(steps > 0, steps, 1e-6)
    steps = np.minimum(steps, _room(chain, layout))
    hessian = np.zeros((q, q))
    for j in range(q):
        unit = np.zeros(q)
        unit[j] = steps[j]
        wide = _difference(chain, layout, chunks, unit)
        narrow = _difference(chain, layout, chunks, unit / 2)
        hessian[:, j] = (4.0 * narrow - wide) / 3.0  # Richardson: the h^2 error cancels
    return -0.5 * (hessian + hessian.T), score


def moved(chain: HiddenMarkovChain, layout: HMMLayout, step: np.ndarray) -> HiddenMarkovChain:
    """``chain`` with its free coordinates moved by ``step`` (q,)."""
    k = chain.n_states
    startprob = np.asarray(chain.startprob, np.float64) + layout.start_expand @ step
    transmat = (np.asarray(chain.transmat, np.float64)
                + (layout.trans_expand @ step).reshape(k, k))
    parts = []
    for distribution, columns in zip(chain.emissions.distributions, layout.emission_columns,
                                     strict=True):
        if not (columns >= 0).any():
            parts.append(distribution)
            continue
        local = np.where(columns >= 0, step[np.maximum(columns, 0)], 0.0)
        parts.append(_moved_distribution(distribution, local))
    emissions = replace(chain.emissions, distributions=tuple(parts))
    return replace(chain, startprob=startprob, transmat=transmat, emissions=emissions)


def _moved_distribution(distribution: Any, local: np.ndarray) -> Any:
    """A distribution with its free coordinates (those of ``derivatives``) moved."""
    if isinstance(distribution, Independent):
        parts, offset = [], 0
        for part in distribution.components:
            size = len(derivatives(part).names)
            parts.append(_moved_distribution(part, local[offset:offset + size]))
            offset += size
        return replace(distribution, components=tuple(parts))
    values = {}
    for slot in derivatives(distribution).slots:
        value = np.asarray(slot.value, np.float64)
        new = value.ravel() + slot.expand @ local
        values[slot.name] = float(new[0]) if value.ndim == 0 else new.reshape(value.shape)
    return replace(distribution, **values)


def _difference(chain, layout, chunks, step):
    """Central difference of the score along ``step``, divided by its length."""
    length = float(np.abs(step).max())
    up = _score(moved(chain, layout, step), layout, chunks)[0]
    down = _score(moved(chain, layout, -step), layout, chunks)[0]
    return (up - down) / (2.0 * length)


def _score(chain: HiddenMarkovChain, layout: HMMLayout, chunks: Sequence[Sequences],
           with_complete: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The exact score (Fisher's identity) and, optionally, the complete information's
    diagonal (which sets the step of each coordinate)."""
    k = chain.n_states
    start, trans = np.zeros(k), np.zeros((k, k))
    parts = [None if not (c >= 0).any() else derivatives(d)
             for d, c in zip(chain.emissions.distributions, layout.emission_columns,
                             strict=True)]
    emission = [np.zeros(c.size) for c in layout.emission_columns]
    emission_complete = [np.zeros(c.size) for c in layout.emission_columns]
    for seqs in chunks:
        gamma, _, stats = chain.posteriors(seqs)
        start += stats.start
        trans += stats.trans
        if seqs.empty is not None:
            gamma = gamma.copy()
            gamma[seqs.empty] = 0.0  # a fully missing step has no emission
        for c, part in enumerate(parts):
            if part is None:
                continue
            emission[c] += gamma[:, c] @ part.score(seqs.X)
            if with_complete:
                emission_complete[c] += np.diag(part.curvature(seqs.X, gamma[:, c]))
    startprob = np.asarray(chain.startprob, np.float64)
    transmat = np.asarray(chain.transmat, np.float64).ravel()
    start_ratio = _ratio(start, startprob)
    trans_ratio = _ratio(trans.ravel(), transmat)
    score = layout.start_expand.T @ start_ratio + layout.trans_expand.T @ trans_ratio
    complete = None
    if with_complete:
        complete = (layout.start_expand.T ** 2 @ _ratio(start_ratio, startprob)
                    + layout.trans_expand.T ** 2 @ _ratio(trans_ratio, transmat))
    for c, columns in enumerate(layout.emission_columns):
        used = columns >= 0
        score[columns[used]] += emission[c][used]
        if with_complete:
            complete[columns[used]] += emission_complete[c][used]
    return score, complete


def _ratio(counts: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """``counts / probabilities``, zero where a probability is zero (held fixed there)."""
    return np.divide(counts, probabilities, out=np.zeros_like(counts),
                     where=probabilities > 0)


def _room(chain: HiddenMarkovChain, layout: HMMLayout) -> np.ndarray:
    """The largest step of each coordinate that keeps the probabilities it moves inside."""
    probabilities = np.concatenate([np.asarray(chain.startprob, np.float64),
                                    np.asarray(chain.transmat, np.float64).ravel()])
    expand = np.vstack([layout.start_expand, layout.trans_expand])
    room = np.full(len(layout.names), np.inf)
    for column in range(room.size):
        moved_entries = expand[:, column] != 0
        if moved_entries.any():
            room[column] = 0.25 * probabilities[moved_entries].min()
    return room
