"""The exponential-family kernel: every log density of a chunk from one matrix product.

For an exponential family ``log p(x | k) = T(x) . eta_k - A_k(x) + h(x)``, so the
``N x K`` log densities of a chunk are one product ``T(X) @ eta^T`` plus normaliser
terms, and the M-step statistics are ``R^T @ T(X)`` (``R`` the responsibilities).
This module builds that form for a :class:`~emkit.distributions.component_list.ComponentList`
whose components are all of one family with one structure:

=======================  ============================  =============================
family                   ``T`` per column (``eta``)    per observed entry, ``h(x)``
=======================  ============================  =============================
Bernoulli                ``x`` (logit ``p``)           ``log(1 - p)``
Binomial, fixed ``n``    ``x`` (logit ``p``)           ``n log(1 - p)``, ``log C(n, x)``
Binomial, ``"column"``   heads, trials (logit ``p``,   ``log C(n_i, x_i)``
                         ``log(1 - p)``)
Poisson                  ``x`` (``log rate``)          ``-rate``, ``-log x!``
Exponential              ``x`` (``-rate``)             ``log rate``
Geometric                ``x`` (``log(1 - p)``)        ``log p``
Categorical              one-hot (``log probs``)       none
Independent              the parts' side by side       the parts'
=======================  ============================  =============================

The per-entry terms are carried by the *observed* indicator, so a missing
value (NaN) is marginalised by zeroing its features and its indicator: it then
contributes nothing, as in each distribution's own ``log_prob``. Categorical
columns are never expanded to an ``N x levels`` one-hot matrix: in numpy their log
densities are a gather from a (levels x K) table by category code and their
statistics a scatter into it (in the compiled pass too).

Parameters on the boundary (``p`` of 0 or 1, a rate of 0) have an infinite
natural parameter; they are written as 0 with a rule that makes the rows that
break them impossible (``-inf``), which is exactly what ``xlogy`` gives.

Two paths use the form:

- :meth:`Kernel.soft_e_step`: the whole soft E-step of a chunk without missing
  values in one compiled pass (numba, no GIL, block by block so that a block's
  features stay in cache between the two products), as the Gaussian's
  :mod:`emkit.distributions.gaussian._soft_pass`;
- :meth:`Kernel.prepare`, :meth:`Kernel.log_prob`, :meth:`Kernel.stats`: the same
  algebra in numpy for every other chunk (missing values, ``sample_weight``,
  labels, hard and stochastic EM, the hidden Markov models' emissions).

Bernoulli components on 0/1 rows take a third, the table pass (:func:`_binary_pass`):
the rows packed eight columns to a byte, a row's ``x . eta_k`` is a sum of one table
row per byte and ``R^T X`` a scatter into such tables. What depends on a chunk's rows
alone (the packed bits, ``sum h(x)``) is kept in the chunk's memo
(:func:`emkit.data.sources.row_memo`) for the fit's next pass. float32 rows are read
as they are (table pass) or copied to float64 a chunk at a time (general pass);
statistics are float64.

Statistics come as one dense :class:`ExpFamStats` (adding it is three array
additions, whatever the number of components and parts); the M-step turns it
into each component's own statistics (:meth:`Kernel.component_stats`) and calls
the distributions' own ``from_stats``, so priors and frozen components behave
as on the per-component path. :func:`per_component` turns the kernel off (for
benchmarks and tests that compare both paths).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import gammaln

try:
    import numba
except ImportError:  # pragma: no cover - numba is a declared dependency
    numba = None

from emkit.core._exp import exp_fast as _exp_fast
from emkit.core.stats import Stats, StatsTuple
from emkit.distributions._base import Distribution, WeightedSums
from emkit.distributions.bernoulli import Bernoulli
from emkit.distributions.binomial import COLUMN, Binomial, BinomialStats
from emkit.distributions.categorical import Categorical, CategoricalStats
from emkit.distributions.exponential import Exponential
from emkit.distributions.gaussian._soft_pass import (
    AVAILABLE,
    _jit,
    _log_in_place,
    _row_max,
)
from emkit.distributions.geometric import Geometric
from emkit.distributions.independent import Independent
from emkit.distributions.poisson import Poisson

# Kinds of the ``h(x)`` term of a linear column.
_H_NONE, _H_POISSON, _H_BINOMIAL, _H_BINOMIAL_COLUMN = 0, 1, 2, 3
# Rules for a boundary parameter: the rows where the column is not 0, not the
# fixed number of trials, or not the trials column are impossible.
_MUST_BE_ZERO, _MUST_BE_N, _MUST_BE_TRIALS = 0, 1, 2
# log(x!) for whole x below this comes from a table (counts are whole numbers).
_LOG_FACTORIAL = gammaln(np.arange(4096) + 1.0)
# Bytes of features per block of the compiled pass (see gaussian._soft_pass).
_BLOCK_BYTES = 2**19

# Binary columns per code of the table pass, one byte of the packed rows (fixed:
# _pack_chunk packs bytes): tables of 2**8 rows per group (a Bernoulli mixture of
# 64 columns, K = 10 padded to 12: 8 groups, 192 kB, within a core's L2).
_BINARY_WIDTH = 8

_ENABLED = [True]


def enabled() -> bool:
    """Whether component lists use the kernel (see :func:`per_component`)."""
    return _ENABLED[0]


@contextlib.contextmanager
def per_component() -> Iterator[None]:
    """Within this context, component lists take the per-component path (no kernel).

    Private switch for benchmarks and for tests comparing both paths; not thread-aware.
    """
    before = _ENABLED[0]
    _ENABLED[0] = False
    try:
        yield
    finally:
        _ENABLED[0] = before


@dataclass(frozen=True)
class ExpFamStats(Stats):
    """The kernel's additive statistics of ``K`` components.

    Attributes
    ----------
    weight : ndarray of shape (K, n_linear)
        ``sum_i r_ik o_ij``: responsibilities over the rows where linear column ``j`` is
        observed.
    total : ndarray of shape (K, n_linear)
        ``sum_i r_ik T_ij``: the weighted features (0 where missing).
    counts : ndarray of shape (K, n_levels)
        Weighted count of each level of every categorical column.
    """

    weight: np.ndarray
    total: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True, eq=False)
class Prepared:
    """A chunk's features: what :meth:`Kernel.log_prob` and :meth:`Kernel.stats` read.

    Attributes
    ----------
    features : ndarray of shape (n, n_linear)
        The linear columns, 0 where missing.
    observed : ndarray of shape (n, n_linear) or None
        1.0 where observed; None when every entry is.
    codes : ndarray of int of shape (n, n_categorical)
        Row of the level table of each categorical entry (the zero row when missing).
    log_base : ndarray of shape (n,)
        ``h(x)``, the same for every component.
    """

    features: np.ndarray
    observed: np.ndarray | None
    codes: np.ndarray
    log_base: np.ndarray


# ------------------------------------------------------------------ structure


def _leaves(distribution: Distribution) -> list[Distribution] | None:
    """The distribution's parts in column order (Independent flattened), or None if any
    part has no kernel form."""
    if isinstance(distribution, Independent):
        parts: list[Distribution] = []
        for component in distribution.components:
            inner = _leaves(component)
            if inner is None:
                return None
            parts.extend(inner)
        return parts
    if type(distribution) in (Bernoulli, Binomial, Categorical, Poisson, Exponential, Geometric):
        return [distribution]
    return None


def _signature(distribution: Distribution) -> tuple:
    """What must agree between components for one layout to serve them all."""
    if isinstance(distribution, Independent):
        return ("Independent", tuple(_signature(c) for c in distribution.components))
    extra = distribution.n_trials if isinstance(distribution, Binomial) else None
    if isinstance(distribution, Categorical):
        extra = distribution.probs.size
    return (type(distribution).__name__, distribution.n_features, extra)


@dataclass(frozen=True, eq=False)
class _Layout:
    """Where each part's features sit: linear columns and categorical levels."""

    leaves: tuple[Distribution, ...]          # the first component's parts, for their kinds
    linear_columns: np.ndarray                # (n_linear,) columns of X
    linear_start: tuple[int, ...]             # per part: first linear feature (or -1)
    level_start: tuple[int, ...]              # per part: first level (or -1)
    h_kind: np.ndarray                        # (n_linear,) int64
    h_trials: np.ndarray                      # (n_linear,) float: fixed n (1 for Bernoulli)
    partner: np.ndarray                       # (n_linear,) int64: trials of heads and back
    categorical_columns: np.ndarray           # (n_categorical,)
    categorical_offsets: np.ndarray           # (n_categorical,)
    n_levels: int


def _layout(leaves: Sequence[Distribution]) -> _Layout:
    columns, h_kind, h_trials, partner = [], [], [], []
    cat_columns, cat_offsets = [], []
    linear_start, level_start = [], []
    column, n_levels = 0, 0
    for leaf in leaves:
        width = leaf.n_features
        if isinstance(leaf, Categorical):
            linear_start.append(-1)
            level_start.append(n_levels)
            cat_columns.append(column)
            cat_offsets.append(n_levels)
            n_levels += leaf.probs.size
        else:
            first = len(columns)
            linear_start.append(first)
            level_start.append(-1)
            columns.extend(range(column, column + width))
            partner.extend(range(first, first + width))
            if isinstance(leaf, Binomial) and leaf.n_trials == COLUMN:
                h_kind += [_H_BINOMIAL_COLUMN, _H_NONE]
                h_trials += [0.0, 0.0]
                partner[first], partner[first + 1] = first + 1, first
            elif isinstance(leaf, Binomial):
                h_kind.append(_H_BINOMIAL)
                h_trials.append(float(leaf.n_trials))
            else:
                h_kind += [_H_POISSON if isinstance(leaf, Poisson) else _H_NONE] * width
                h_trials += [1.0] * width
        column += width
    return _Layout(
        leaves=tuple(leaves), linear_columns=np.asarray(columns, np.int64),
        linear_start=tuple(linear_start), level_start=tuple(level_start),
        h_kind=np.asarray(h_kind, np.int64), h_trials=np.asarray(h_trials, np.float64),
        partner=np.asarray(partner, np.int64),
        categorical_columns=np.asarray(cat_columns, np.int64),
        categorical_offsets=np.asarray(cat_offsets, np.int64), n_levels=n_levels,
    )


def kernel_for(distributions: Sequence[Distribution]) -> Kernel | None:
    """The kernel of ``K`` components, or None unless all are one family of one structure."""
    leaves = _leaves(distributions[0])
    if leaves is None:
        return None
    signature = _signature(distributions[0])
    if any(_signature(d) != signature for d in distributions[1:]):
        return None
    return Kernel(_layout(leaves), [_leaves(d) for d in distributions],
                  _shape_of(distributions[0]))


# ----------------------------------------------------------------- parameters


def _log_odds(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p) - np.log1p(-p), np.log1p(-p)


class _Parameters:
    """Natural parameters of every component, filled part by part."""

    def __init__(self, layout: _Layout, n_components: int) -> None:
        n_linear = layout.linear_columns.size
        self.eta = np.zeros((n_components, n_linear))
        self.per_entry = np.zeros((n_components, n_linear))
        # Row n_levels stays zero: the code of a missing categorical entry.
        self.table = np.zeros((layout.n_levels + 1, n_components))
        self.rules: list[tuple[int, int, int]] = []

    def linear(self, k: int, j: int, eta: float, per_entry: float, rule: int | None) -> None:
        """Column ``j`` of component ``k``; a boundary value (``rule``) takes zeros."""
        if rule is not None:
            self.rules.append((k, j, rule))
            return
        self.eta[k, j], self.per_entry[k, j] = eta, per_entry

    def fill(self, k: int, leaf: Distribution, first: int, level: int) -> None:
        if isinstance(leaf, Categorical):
            with np.errstate(divide="ignore"):
                self.table[level : level + leaf.probs.size, k] = np.log(leaf.probs)
            return
        if isinstance(leaf, Bernoulli | Binomial):
            p = np.atleast_1d(leaf.p)
            logit, log_q = _log_odds(p)
            if isinstance(leaf, Binomial) and leaf.n_trials == COLUMN:
                rule = _boundary(p[0], _MUST_BE_TRIALS)
                self.linear(k, first, logit[0], 0.0, rule)
                self.linear(k, first + 1, log_q[0], 0.0, None if rule is None else -1)
                return
            n = 1.0 if isinstance(leaf, Bernoulli) else float(leaf.n_trials)
            for j, pj in enumerate(p):
                per_entry = n * log_q[j] if pj < 1 else 0.0
                self.linear(k, first + j, logit[j], per_entry, _boundary(pj, _MUST_BE_N))
            return
        values = leaf.rate if not isinstance(leaf, Geometric) else leaf.p
        for j, v in enumerate(values):
            if isinstance(leaf, Poisson):
                rule = _MUST_BE_ZERO if v == 0 else None
                self.linear(k, first + j, math.log(v) if v > 0 else 0.0, -v, rule)
            elif isinstance(leaf, Exponential):
                self.linear(k, first + j, -v, math.log(v), None)
            else:  # Geometric: p = 1 is the point mass at 0
                rule = _MUST_BE_ZERO if v == 1 else None
                self.linear(k, first + j, math.log1p(-v) if v < 1 else 0.0, math.log(v), rule)


def _boundary(p: float, at_one: int) -> int | None:
    """The rule of a probability on the boundary: 0 forbids successes, 1 failures."""
    if p == 0:
        return _MUST_BE_ZERO
    if p == 1:
        return at_one
    return None


# --------------------------------------------------------------------- kernel


class Kernel:
    """The exponential-family form of ``K`` components of one structure (see the module)."""

    def __init__(self, layout: _Layout, leaves: list[list[Distribution]], shape: Any) -> None:
        self.layout = layout
        # None for a single family; the nesting of the Independent parts otherwise.
        self.shape = shape
        n_components = len(leaves)
        params = _Parameters(layout, n_components)
        for k, parts in enumerate(leaves):
            for leaf, first, level in zip(parts, layout.linear_start, layout.level_start,
                                          strict=True):
                params.fill(k, leaf, first, level)
        self.n_components = n_components
        self.leaves = leaves
        self.eta = params.eta                                   # (K, n_linear)
        self.eta_rows = np.ascontiguousarray(params.eta.T)      # (n_linear, K)
        self.per_entry = params.per_entry                       # (K, n_linear)
        self.per_entry_sum = params.per_entry.sum(axis=1)       # (K,)
        self.table = params.table                               # (n_levels + 1, K)
        self.groups = _Groups(layout, params.table)
        # Boundary rules; the second column of a Binomial "column" pair needs none.
        rules = [r for r in params.rules if r[2] >= 0]
        self.rule_component = np.asarray([r[0] for r in rules], np.int64)
        self.rule_column = np.asarray([r[1] for r in rules], np.int64)
        self.rule_kind = np.asarray([r[2] for r in rules], np.int64)
        n_linear = layout.linear_columns.size
        # Only linear columns, all of them in order: the compiled pass reads rows in place.
        self.direct = bool(layout.categorical_columns.size == 0
                           and np.array_equal(layout.linear_columns, np.arange(n_linear)))
        width = max(n_linear + layout.categorical_columns.size, 1)  # values per row
        self.block = int(np.clip(_BLOCK_BYTES // (8 * width), 64, 8192))
        # Bernoulli columns alone, no parameter on the boundary: chunks of 0/1 rows
        # take the table pass (_binary_pass), the product being a sum of table rows.
        self.binary_table = None
        if (self.direct and n_linear and not rules
                and all(type(leaf) is Bernoulli for leaf in layout.leaves)):
            self.binary_table = _binary_table(self.eta, _BINARY_WIDTH)
        # Rows per block of the table pass: its (rows, K padded) arrays in half of L2.
        self.binary_block = 2048

    # ------------------------------------------------------------ numpy path

    def prepare(self, X: np.ndarray) -> Prepared:
        """Features of a chunk of rows (any float dtype; computed in float64)."""
        X = np.asarray(X, dtype=np.float64)
        layout = self.layout
        features = X[:, layout.linear_columns]
        missing = np.isnan(features)
        observed = None
        if missing.any():
            pairs = np.flatnonzero(layout.h_kind == _H_BINOMIAL_COLUMN)
            if pairs.size:  # heads and trials are missing together
                both = missing[:, pairs] | missing[:, layout.partner[pairs]]
                missing[:, pairs] = both
                missing[:, layout.partner[pairs]] = both
            features[missing] = 0.0
            observed = (~missing).astype(np.float64)
        raw = X[:, layout.categorical_columns]
        absent = np.isnan(raw)
        codes = np.where(absent, 0, raw).astype(np.intp) + layout.categorical_offsets
        codes[absent] = layout.n_levels
        return Prepared(features=features, observed=observed, codes=codes,
                        log_base=_log_base(features, layout))

    def log_prob(self, chunk: Prepared) -> np.ndarray:
        """Log density of each row under each component, shape (n, K)."""
        out = chunk.features @ self.eta_rows
        if chunk.observed is None:
            out += self.per_entry_sum
        else:
            out += chunk.observed @ self.per_entry.T
        for c in range(chunk.codes.shape[1]):
            out += self.table[chunk.codes[:, c]]
        out += chunk.log_base[:, None]
        for k, j, kind in zip(self.rule_component, self.rule_column, self.rule_kind,
                              strict=True):
            broken = chunk.features[:, j] != self._target(chunk.features, j, kind)
            if chunk.observed is not None:
                broken &= chunk.observed[:, j] > 0
            out[broken, k] = -np.inf
        return out

    def _target(self, features: np.ndarray, j: int, kind: int) -> Any:
        if kind == _MUST_BE_ZERO:
            return 0.0
        if kind == _MUST_BE_N:
            return self.layout.h_trials[j]
        return features[:, self.layout.partner[j]]

    def stats(self, chunk: Prepared, resp: np.ndarray) -> ExpFamStats:
        """The weighted statistics ``R^T T`` of a chunk (``resp`` of shape (n, K))."""
        resp = np.asarray(resp, dtype=np.float64)
        total = resp.T @ chunk.features
        if chunk.observed is None:
            weight = np.repeat(resp.sum(axis=0)[:, None], total.shape[1], axis=1)
        else:
            weight = resp.T @ chunk.observed
        n_levels, k = self.layout.n_levels, self.n_components
        if chunk.codes.shape[1]:
            # One bincount over (code, component) pairs; missing codes land in the extra row.
            index = (chunk.codes[:, :, None] * k + np.arange(k)).ravel()
            weights = np.broadcast_to(resp[:, None, :], (*chunk.codes.shape, k)).ravel()
            counts = np.bincount(index, weights=weights, minlength=(n_levels + 1) * k)
            counts = counts.reshape(n_levels + 1, k)[:n_levels].T.copy()
        else:
            counts = np.zeros((k, 0))
        return ExpFamStats(weight=weight, total=total, counts=counts)

    # ---------------------------------------------------------- compiled path

    def soft_e_step(
        self, X: np.ndarray, log_weights: np.ndarray, memo: dict | None = None
    ) -> tuple[np.ndarray, ExpFamStats, float] | None:
        """Soft E-step of a chunk in one compiled pass: ``(resp_sum, stats, log_likelihood)``.

        None where the pass does not apply (numba missing, a missing value, a row
        impossible under every component): the caller then takes the numpy path.
        ``memo`` (see :func:`emkit.data.sources.row_memo`) keeps what depends on the
        rows alone for the next pass over them: the packed bits of binary data,
        which the table pass then reads instead of the rows, and ``sum h(x)``.
        """
        if not AVAILABLE or X.ndim != 2 or X.shape[0] == 0:
            return None
        layout, k = self.layout, self.n_components
        n_linear = layout.linear_columns.size
        constant = self.per_entry_sum + log_weights
        if self.binary_table is not None:
            codes = _memoised(memo, ("expfam bits",), lambda: _packed(X))
            if codes is not None:
                return self._binary_e_step(codes, constant)
        # float64 rows (a copy of the chunk, never of more, for float32 data).
        X = np.ascontiguousarray(X, dtype=np.float64)
        groups = self.groups
        total = np.zeros((k, n_linear))
        group_counts = np.zeros((groups.table.shape[0], k))
        resp_sum = np.zeros(k)
        log_likelihood = np.zeros(2)
        base_key = ("expfam h(x)", layout.linear_columns.tobytes(), layout.h_kind.tobytes(),
                    layout.h_trials.tobytes(), layout.partner.tobytes())
        base = None if memo is None else memo.get(base_key)
        done = _soft_pass(
            X, self.direct, layout.linear_columns, layout.h_kind, layout.h_trials,
            layout.partner, self.eta, constant, layout.categorical_columns, groups.index,
            groups.stride, groups.offsets, groups.pass_table, self.rule_component,
            self.rule_column, self.rule_kind, _LOG_FACTORIAL, self.block, base is None,
            total, group_counts, resp_sum, log_likelihood,
        )
        if not done:
            return None
        if base is None:
            base = float(log_likelihood[1])
            if memo is not None:
                memo[base_key] = base
        weight = np.repeat(resp_sum[:, None], n_linear, axis=1)
        stats = ExpFamStats(weight=weight, total=total, counts=groups.level_counts(group_counts))
        return resp_sum, stats, float(log_likelihood[0]) + base

    def _binary_e_step(
        self, codes: np.ndarray, constant: np.ndarray
    ) -> tuple[np.ndarray, ExpFamStats, float] | None:
        """The soft E-step of packed 0/1 rows by the table pass (see _binary_pass)."""
        k, n_linear = self.n_components, self.layout.linear_columns.size
        padded = np.full(self.binary_table.shape[2], -np.inf)
        padded[:k] = constant
        group_counts = np.zeros(self.binary_table.shape)
        resp_sum = np.zeros(k)
        log_likelihood = np.zeros(1)
        if not _binary_pass(codes, self.binary_table, padded, self.binary_block, group_counts,
                            resp_sum, log_likelihood):
            return None  # a row impossible under every component
        total = np.zeros((k, n_linear))
        _binary_totals(group_counts, n_linear, total)
        weight = np.repeat(resp_sum[:, None], n_linear, axis=1)
        stats = ExpFamStats(weight=weight, total=total, counts=np.zeros((k, 0)))
        return resp_sum, stats, float(log_likelihood[0])

    # ---------------------------------------------------------------- M-step

    def component_stats(self, stats: ExpFamStats) -> StatsTuple:
        """Each component's own statistics (those of its per-component path)."""
        return StatsTuple(parts=tuple(
            self._leaf_stats(stats, k) for k in range(self.n_components)
        ))

    def from_stats(
        self, distributions: Sequence[Distribution], stats: ExpFamStats,
        frozen: Sequence[bool],
    ) -> tuple[Distribution, ...] | None:
        """The M-step of latent-class components in a few array operations, or None.

        Applies to components whose parts are all Categorical without a prior (a
        single Categorical, or an Independent of them, not nested): each column's
        ``probs`` are its level counts over their sum, as :meth:`Categorical.from_stats`
        gives, computed for every component and column at once and checked once
        (finite, in ``[0, 1]``), so the components are built without each
        distribution's own validation: measured on latent classes (20 columns, K = 6),
        the per-component M-step was 2.5 ms of a 30 ms iteration. None otherwise
        (priors, other families, nested parts, non-finite statistics): the caller
        takes each component's own ``from_stats``, which also raises its errors.
        """
        layout = self.layout
        if not all(type(leaf) is Categorical for leaf in layout.leaves):
            return None
        if self.shape is not None and (any(node is not None for node in self.shape) or any(
                type(d) is not Independent for d in distributions)):  # nested, or a subclass
            return None
        if any(leaf.prior is not None for parts in self.leaves for leaf in parts):
            return None
        counts = stats.counts
        offsets = layout.categorical_offsets
        sizes = np.diff(np.r_[offsets, layout.n_levels])
        denominator = np.repeat(np.add.reduceat(counts, offsets, axis=1), sizes, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            probs = counts / denominator
        empty = ~(denominator > 0)
        if empty.any():  # a component without weight keeps its probabilities (see ratio)
            old = np.array([np.concatenate([leaf.probs for leaf in parts])
                            for parts in self.leaves])
            probs[empty] = old[empty]
        if not (np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()):
            return None
        bounds = list(zip(offsets.tolist(), (offsets + sizes).tolist(), strict=True))
        out = []
        for k, (distribution, keep) in enumerate(
                zip(distributions, frozen or (False,) * len(distributions), strict=True)):
            if keep:
                out.append(distribution)
                continue
            # Copies: no component shares memory with another.
            parts = tuple(_unchecked(Categorical, probs=probs[k, a:b].copy(), prior=None)
                          for a, b in bounds)
            out.append(parts[0] if self.shape is None
                       else _unchecked(Independent, components=parts))
        return tuple(out)

    def _leaf_stats(self, stats: ExpFamStats, k: int) -> Stats:
        layout = self.layout
        parts = []
        for leaf, first, level in zip(layout.leaves, layout.linear_start, layout.level_start,
                                      strict=True):
            if isinstance(leaf, Categorical):
                parts.append(CategoricalStats(counts=stats.counts[k, level:level + leaf.probs.size]
                                              .copy()))
            elif isinstance(leaf, Binomial):
                heads = float(stats.total[k, first])
                if leaf.n_trials == COLUMN:
                    trials = float(stats.total[k, first + 1])
                else:
                    trials = float(leaf.n_trials * stats.weight[k, first])
                parts.append(BinomialStats(heads=heads, trials=trials))
            else:
                columns = slice(first, first + leaf.n_features)
                parts.append(WeightedSums(weight=stats.weight[k, columns].copy(),
                                          total=stats.total[k, columns].copy()))
        if self.shape is None:
            return parts[0]
        return StatsTuple(parts=_nest(parts, self.shape))


def _memoised(memo: dict | None, key: tuple, compute: Any) -> Any:
    """``memo[key]``, computed (and kept) on first use; computed each time without a memo."""
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def _packed(X: np.ndarray) -> np.ndarray | None:
    """The rows' 0/1 values packed eight columns to a byte (n, ceil(d / 8)), or None
    if a value is neither 0 nor 1 (NaN included). float32 rows are read as they are."""
    X = np.ascontiguousarray(X, dtype=X.dtype if X.dtype == np.float32 else np.float64)
    codes = np.empty((X.shape[0], -(-X.shape[1] // 8)), np.uint8)
    return codes if _pack_chunk(X, codes) else None


def _unchecked(cls: type, **fields: Any) -> Any:
    """A frozen dataclass built from fields the M-step computed and checked itself,
    without its ``__post_init__`` validation (private: every field must be given)."""
    instance = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(instance, name, value)
    return instance


def _nest(parts: list[Stats], shape: Any) -> tuple[Stats, ...]:
    """The flat list of part statistics nested as the Independent components are."""
    flat = iter(parts)

    def build(node: Any) -> Stats:
        if node is None:
            return next(flat)
        return StatsTuple(parts=tuple(build(child) for child in node))

    return tuple(build(child) for child in shape)


def _shape_of(distribution: Distribution) -> Any:
    """None for a leaf; the tuple of its parts' shapes for an Independent."""
    if isinstance(distribution, Independent):
        return tuple(_shape_of(c) for c in distribution.components)
    return None


def _log_base(features: np.ndarray, layout: _Layout) -> np.ndarray:
    """``h(x)`` of each row (``-log x!`` of Poisson entries, ``log C(n, x)`` of Binomial ones)."""
    out = np.zeros(features.shape[0])
    for j in np.flatnonzero(layout.h_kind != _H_NONE):
        x = features[:, j]
        kind = layout.h_kind[j]
        if kind == _H_POISSON:
            out -= gammaln(x + 1)
            continue
        n = layout.h_trials[j] if kind == _H_BINOMIAL else features[:, layout.partner[j]]
        out += gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1)
    return out


class _Groups:
    """Categorical columns of the compiled pass, gathered in groups.

    Consecutive columns of ``m1, m2, ...`` levels are one column of ``m1 m2 ...``
    levels whose table rows are the sums of theirs: one gather and one scatter per
    group instead of one per column (their counts are the group's, summed over the
    other members' levels). Measured on latent classes (20 columns of 5 levels,
    K = 6): groups made the pass 1.6x faster than single columns.
    """

    # Most levels of a group (its table's rows): three columns of 5 levels ran 1.1x
    # faster than pairs, four no faster than three; larger tables leave the cache.
    MAX_LEVELS = 128

    def __init__(self, layout: _Layout, table: np.ndarray) -> None:
        sizes = np.diff(np.r_[layout.categorical_offsets, layout.n_levels]).astype(int)
        members: list[list[int]] = []
        for c, size in enumerate(sizes):
            last = members[-1] if members else None
            if last is not None and int(np.prod(sizes[last])) * size <= self.MAX_LEVELS:
                last.append(c)
            else:
                members.append([c])
        self.members, self.sizes, self.layout = members, sizes, layout
        index, stride = np.zeros(sizes.size, np.int64), np.ones(sizes.size, np.int64)
        offsets, parts, start = [], [], 0
        for g, group in enumerate(members):
            offsets.append(start)
            rows = table[layout.categorical_offsets[group[0]]:][: sizes[group[0]]]
            for c in group[1:]:  # the rows of the product of levels, last column fastest
                levels = table[layout.categorical_offsets[c]:][: sizes[c]]
                rows = (rows[:, None, :] + levels[None, :, :]).reshape(-1, table.shape[1])
                stride[group[: group.index(c)]] *= sizes[c]
            index[group] = g
            parts.append(rows)
            start += rows.shape[0]
        self.index, self.stride = index, stride
        # Level of each member column at each row of the groups' table (-1: no
        # member), so that a chunk's level counts are one compiled loop
        # (_level_counts): numpy sums per group and column were 4.4 ms of a 24 ms
        # latent-class iteration.
        widest = max((len(group) for group in members), default=0)
        level_of = []
        for group in members:
            shape = tuple(int(sizes[c]) for c in group)
            levels = np.full((int(np.prod(shape)), widest), -1, np.int64)
            for axis, index_along in enumerate(np.indices(shape).reshape(len(group), -1)):
                levels[:, axis] = layout.categorical_offsets[group[axis]] + index_along
            level_of.append(levels)
        self.level_of = (np.concatenate(level_of) if level_of
                         else np.zeros((0, 0), np.int64))
        self.offsets = np.asarray(offsets, np.int64)
        self.table = (np.ascontiguousarray(np.concatenate(parts)) if parts
                      else np.zeros((0, table.shape[1])))
        # The compiled pass's table: zero-padded to 8 columns when K <= 8 (see
        # _gather_eight); its counts keep K columns.
        n_components = table.shape[1]
        self.pass_table = self.table
        if parts and n_components < 8:
            self.pass_table = np.zeros((self.table.shape[0], 8))
            self.pass_table[:, :n_components] = self.table

    def level_counts(self, group_counts: np.ndarray) -> np.ndarray:
        """Counts per level of every column (K, n_levels) from the groups' (rows, K)."""
        counts = np.zeros((group_counts.shape[1], self.layout.n_levels))
        _level_counts(group_counts, self.level_of, counts)
        return counts


# ----------------------------------------------------------- compiled pass


@_jit
def _log_factorial(x, table):
    """``log(x!)``, from the table for whole numbers below its size."""
    if x >= 0.0 and x < table.size:
        i = int(x)
        if i == x:
            return table[i]
    return math.lgamma(x + 1.0)


@_jit
def _soft_pass(
    X, direct, columns, h_kind, h_trials, partner, eta, constant, cat_columns, cat_group,
    cat_stride, group_offsets, table, rule_component, rule_column, rule_kind, log_factorial,
    block, with_base, total, counts_rows, resp_sum, log_likelihood,
):
    """Soft E-step of ``X`` block by block; False at the first missing value or impossible row.

    Adds the log-normalisers to ``log_likelihood[0]`` and, ``with_base``, the summed
    ``h(x)`` to ``log_likelihood[1]`` (without, it is not computed: the caller has it).

    Per block of ``b`` rows: features ``T`` (n_linear, b), log densities
    ``eta @ T`` plus the constants and the categorical gather (K, b), responsibilities
    by log-sum-exp, then ``R @ T^T`` and the categorical scatter. Gather and scatter run
    row by row over rows of a (levels, K) table: measured on latent classes (20 x 5
    levels, K = 6), 1.5x faster than along each column, and 1.1x faster than
    multiplying by a one-hot block of the levels.
    With ``direct`` (the linear columns are all of ``X``'s, in order) the rows of
    ``X`` are the features, read in place; otherwise they are copied out, transposed.
    """
    n_samples = X.shape[0]
    n_components, n_linear = eta.shape
    n_cat = group_offsets.size
    b = min(block, n_samples)
    copied = np.empty((n_linear, 0 if direct else b))
    log_dens = np.empty((n_components, b))
    exps = np.empty((n_components, b))
    bits = np.empty((2 * n_components, b), np.int64)
    codes = np.empty((b, n_cat), np.int64)
    row_max = np.empty(b)
    row_total = np.empty(b)
    norm = np.empty(b)
    scratch = np.empty(b, np.int64)
    part = np.empty((n_components, n_linear))
    sums = np.zeros(2)  # summed log-normalisers and h(x)
    has_base = False  # any h(x) term (Bernoulli, Exponential, Categorical have none)
    for j in range(h_kind.size):
        has_base |= with_base and h_kind[j] != 0
    for start in range(0, n_samples, block):
        if n_samples - start < b:  # the last, shorter block gets arrays of its size
            b = n_samples - start
            copied = np.empty((n_linear, 0 if direct else b))
            log_dens = np.empty((n_components, b))
            exps = np.empty((n_components, b))
            bits = np.empty((2 * n_components, b), np.int64)
            codes = np.empty((b, n_cat), np.int64)
            row_max, row_total, norm, scratch = row_max[:b], row_total[:b], norm[:b], scratch[:b]
        rows = X[start : start + b]
        if direct:
            # A missing value is found in the block's log densities (see _block), not
            # by reading the rows once more: measured 5 ms of a 56 ms Bernoulli pass.
            if has_base:
                sums[1] += _rows_log_base(rows, h_kind, h_trials, partner, log_factorial)
            # rows.T and the copied features are typed apart: each call is compiled
            # for its own layout, so both products stay BLAS calls.
            done = _block(
                rows.T, codes, eta, constant, table, h_kind, h_trials, partner,
                rule_component, rule_column, rule_kind, log_factorial, log_dens, exps, bits,
                row_max, row_total, norm, scratch, part, total, counts_rows, resp_sum, sums,
                direct, has_base,
            )
        else:
            if not _gather_features(rows, columns, cat_columns, cat_group, cat_stride,
                                    group_offsets, copied, codes):
                return False
            done = _block(
                copied, codes, eta, constant, table, h_kind, h_trials, partner,
                rule_component, rule_column, rule_kind, log_factorial, log_dens, exps, bits,
                row_max, row_total, norm, scratch, part, total, counts_rows, resp_sum, sums,
                direct, has_base,
            )
        if not done:
            return False
    log_likelihood[0] += sums[0]
    log_likelihood[1] += sums[1]
    return True


@_jit
def _block(
    features, codes, eta, constant, table, h_kind, h_trials, partner, rule_component,
    rule_column, rule_kind, log_factorial, log_dens, exps, bits, row_max, row_total, norm,
    scratch, part, total, counts_rows, resp_sum, sums, direct, has_base,
):
    """One block's soft E-step from its features (n_linear, b) and codes (b, n_cat).

    Adds ``R @ T^T`` to ``total``, the level counts to ``counts_rows``, the responsibilities to
    ``resp_sum``, the log-normalisers to ``sums[0]`` and, ``has_base``, ``h`` to ``sums[1]``
    (unless ``direct``: the caller adds it, reading the rows in place);
    False if a row is impossible under every component.
    """
    n_components, n_linear = eta.shape
    b = log_dens.shape[1]
    if n_linear:
        np.dot(eta, features, log_dens)
    else:
        log_dens[:] = 0.0
    for k in range(n_components):
        for r in range(b):
            log_dens[k, r] += constant[k]
    n_cat = codes.shape[1]
    if n_cat and table.shape[1] == 8:
        _gather_eight(codes, table, log_dens)
    elif n_cat:
        # Row by row, each code's K log probabilities are one contiguous row of the table.
        acc = np.empty(n_components)
        for r in range(b):
            acc[:] = 0.0
            for c in range(n_cat):
                levels = table[codes[r, c]]
                for k in range(n_components):
                    acc[k] += levels[k]
            for k in range(n_components):
                log_dens[k, r] += acc[k]
    if direct and _any_nan(log_dens):
        # Read in place, every linear column enters the product: a NaN in a row
        # makes all its log densities NaN (0 * NaN is NaN), before the rules below
        # may overwrite some with -inf.
        return False
    _apply_rules(features, h_trials, partner, rule_component, rule_column, rule_kind,
                 log_dens)
    if has_base and not direct:
        sums[1] += _block_log_base(features, h_kind, h_trials, partner, log_factorial)
    if not _row_max(log_dens, row_max):
        return False
    # Shifted in place (the log densities are not read again), then the fast
    # exponential along the flat block (see _exp_fast).
    for k in range(n_components):
        for r in range(b):
            log_dens[k, r] -= row_max[r]
    _exp_fast(log_dens.reshape(-1), exps.reshape(-1), bits.view(np.float64).reshape(-1))
    row_total[:] = 0.0
    for k in range(n_components):
        for r in range(b):
            row_total[r] += exps[k, r]
    norm[:] = row_total
    _log_in_place(norm, scratch)
    objective = 0.0
    for r in range(b):
        objective += norm[r] + row_max[r]
        row_total[r] = 1.0 / row_total[r]
    sums[0] += objective
    for k in range(n_components):
        s = 0.0
        for r in range(b):
            exps[k, r] *= row_total[r]
            s += exps[k, r]
        resp_sum[k] += s
    if n_linear:
        np.dot(exps, features.T, part)
        for k in range(n_components):
            for j in range(n_linear):
                total[k, j] += part[k, j]
    if n_cat:
        # Consecutive codes of a row fall in different columns' levels: the additions
        # do not wait on each other as a scatter along one column would.
        for r in range(b):
            for c in range(n_cat):
                counts = counts_rows[codes[r, c]]
                for k in range(n_components):
                    counts[k] += exps[k, r]
    return True


@_jit
def _level_counts(group_counts, level_of, counts):
    """Adds each groups' table row's counts (rows, K) to its members' levels (K, n_levels)."""
    for i in range(level_of.shape[0]):
        for m in range(level_of.shape[1]):
            level = level_of[i, m]
            if level < 0:
                continue
            for k in range(group_counts.shape[1]):
                counts[k, level] += group_counts[i, k]


@_jit
def _gather_eight(codes, table, log_dens):
    """The categorical gather from a table of 8 columns (``K <= 8``, zero-padded: see
    ``_Groups``), its sums held in eight scalars, which the compiler keeps in registers:
    measured on latent classes (K = 6), 3x faster than the loop over ``K`` in
    :func:`_block`, whose sums make a round trip through memory per code. The same
    additions in the same order."""
    n_components = log_dens.shape[0]
    b, n_cat = codes.shape
    sums = np.empty((b, 8))
    for r in range(b):
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
        for c in range(n_cat):
            i = codes[r, c]
            a0 += table[i, 0]
            a1 += table[i, 1]
            a2 += table[i, 2]
            a3 += table[i, 3]
            a4 += table[i, 4]
            a5 += table[i, 5]
            a6 += table[i, 6]
            a7 += table[i, 7]
        sums[r, 0], sums[r, 1], sums[r, 2], sums[r, 3] = a0, a1, a2, a3
        sums[r, 4], sums[r, 5], sums[r, 6], sums[r, 7] = a4, a5, a6, a7
    for k in range(n_components):
        for r in range(b):
            log_dens[k, r] += sums[r, k]


@_jit
def _any_nan(rows):
    """Whether a 2-D array holds a NaN (a whole-array test, which vectorises)."""
    found = False
    for r in range(rows.shape[0]):
        for j in range(rows.shape[1]):
            found |= rows[r, j] != rows[r, j]
    return found


@_jit
def _gather_features(rows, columns, cat_columns, cat_group, cat_stride, group_offsets,
                     features, codes):
    """Linear columns transposed into ``features``, each categorical group's table row
    into ``codes``; False on a missing value."""
    found = False
    for r in range(rows.shape[0]):
        for j in range(columns.size):
            value = rows[r, columns[j]]
            found |= value != value
            features[j, r] = value
        for g in range(group_offsets.size):
            codes[r, g] = group_offsets[g]
        for c in range(cat_columns.size):
            value = rows[r, cat_columns[c]]
            if value != value:
                return False
            codes[r, cat_group[c]] += int(value) * cat_stride[c]
    return not found


@_jit
def _apply_rules(features, h_trials, partner, rule_component, rule_column, rule_kind,
                 log_dens):
    """``-inf`` where a boundary parameter's rule is broken (see ``_Parameters.linear``)."""
    for f in range(rule_component.size):
        k, j, kind = rule_component[f], rule_column[f], rule_kind[f]
        for r in range(features.shape[1]):
            target = 0.0
            if kind == 1:
                target = h_trials[j]
            elif kind == 2:
                target = features[partner[j], r]
            if features[j, r] != target:
                log_dens[k, r] = -np.inf


@_jit
def _rows_log_base(rows, h_kind, h_trials, partner, log_factorial):
    """Summed ``h(x)`` of a block read in place (rows (b, n_features)), row by row:
    along memory, where :func:`_block_log_base` would stride across rows."""
    base = 0.0
    for r in range(rows.shape[0]):
        for j in range(rows.shape[1]):
            kind = h_kind[j]
            if kind == 0:
                continue
            x = rows[r, j]
            if kind == 1:
                base -= _log_factorial(x, log_factorial)
            else:
                n = h_trials[j] if kind == 2 else rows[r, partner[j]]
                base += (_log_factorial(n, log_factorial) - _log_factorial(x, log_factorial)
                         - _log_factorial(n - x, log_factorial))
    return base


@_jit
def _block_log_base(features, h_kind, h_trials, partner, log_factorial):
    """Summed ``h(x)`` of a block (features (n_linear, b))."""
    base = 0.0
    for j in range(features.shape[0]):
        kind = h_kind[j]
        if kind == 0:
            continue
        for r in range(features.shape[1]):
            x = features[j, r]
            if kind == 1:
                base -= _log_factorial(x, log_factorial)
            else:
                n = h_trials[j] if kind == 2 else features[partner[j], r]
                base += (_log_factorial(n, log_factorial) - _log_factorial(x, log_factorial)
                         - _log_factorial(n - x, log_factorial))
    return base


# ------------------------------------------------------- binary (0/1) pass


def _binary_table(eta: np.ndarray, width: int) -> np.ndarray:
    """Log-density tables of binary columns taken ``width`` at a time.

    Row ``code`` of group ``g`` (of shape (n_groups, 2**width, K)) is the sum of
    ``eta[:, j]`` over the columns ``j = g * width + t`` whose bit ``t`` of ``code``
    is set: a row's ``x . eta_k`` is then one table row per group. Built by
    doubling (codes with bit ``t`` set are those without it, plus column ``t``).
    """
    n_components, n_linear = eta.shape
    n_groups = -(-n_linear // width)
    # Rows padded with zeros to a multiple of 4 components: whole AVX2 vectors in the
    # pass's gather and scatter, measured 1.25x faster for K = 10 (and 16 columns
    # slower than 12).
    table = np.zeros((n_groups, 2**width, -(-n_components // 4) * 4))
    for g in range(n_groups):
        columns = range(g * width, min((g + 1) * width, n_linear))
        for t, j in enumerate(columns):
            table[g, 2**t : 2 ** (t + 1), :n_components] = (
                table[g, : 2**t, :n_components] + eta[:, j])
    return table


@_jit
def _binary_pass(codes, table, constant, block, group_counts, resp_sum, log_likelihood):
    """Soft E-step of 0/1 rows (Bernoulli columns) from their packed bits, block by block.

    ``codes`` holds each row's columns eight to a byte (see :func:`_pack_chunk`),
    made once per fit and kept in the chunk's memo: later passes read an eighth
    of a byte per value, not the rows. The log densities are one table row per
    byte, ``table[g, byte]`` (see :func:`_binary_table`), instead of a product over
    every column, and the statistics ``R^T X`` a scatter of the responsibilities
    into ``group_counts[g, byte]`` (turned into column totals once per chunk by
    :func:`_binary_totals`). Everything is row-major, ``K`` padded as the table's
    rows (``constant`` too, with ``-inf``, so that the padding's exponentials are
    0): no transposes. False if a row is impossible under every component.
    """
    n_samples = codes.shape[0]
    n_padded = table.shape[2]
    b = min(block, n_samples)
    # Flat buffers seen as (rows, K padded): the exponential runs along them.
    log_dens_flat, exps_flat = np.empty(b * n_padded), np.empty(b * n_padded)
    log_dens = log_dens_flat.reshape((b, n_padded))
    exps = exps_flat.reshape((b, n_padded))
    scale = np.empty(2 * b * n_padded)
    row_max, norm, inverse = np.empty(b), np.empty(b), np.empty(b)
    scratch = np.empty(b, np.int64)
    sums = np.zeros(n_padded)
    for start in range(0, n_samples, block):
        if n_samples - start < b:
            b = n_samples - start
            log_dens_flat, exps_flat = log_dens_flat[: b * n_padded], exps_flat[: b * n_padded]
            log_dens = log_dens_flat.reshape((b, n_padded))
            exps = exps_flat.reshape((b, n_padded))
            row_max, norm, inverse, scratch = row_max[:b], norm[:b], inverse[:b], scratch[:b]
        block_codes = codes[start : start + b]
        _gather_rows(block_codes, table, constant, log_dens)
        if not _shift_rows(log_dens, row_max):
            return False
        _exp_fast(log_dens_flat, exps_flat, scale[: 2 * b * n_padded])
        for r in range(b):
            total = 0.0
            for k in range(n_padded):
                total += exps[r, k]
            norm[r] = total
            inverse[r] = 1.0 / total
        _log_in_place(norm, scratch)
        objective = 0.0
        for r in range(b):
            objective += norm[r] + row_max[r]
        log_likelihood[0] += objective
        _scatter_rows(block_codes, exps, inverse, sums, group_counts)
    for k in range(resp_sum.size):
        resp_sum[k] += sums[k]
    return True


@_jit
def _shift_rows(log_dens, row_max):
    """Subtracts each row's largest log density from it; False if one is ``-inf``."""
    for r in range(log_dens.shape[0]):
        top = log_dens[r, 0]
        for k in range(1, log_dens.shape[1]):
            top = max(top, log_dens[r, k])
        if top == -np.inf:
            return False
        row_max[r] = top
        for k in range(log_dens.shape[1]):
            log_dens[r, k] -= top
    return True


@_jit
def _pack_chunk(X, codes):
    """Bit ``t`` of byte ``g`` of each row of ``codes``: whether column ``8 g + t`` of
    ``X`` is 1; False if a value is neither 0 nor 1. Packed a word (64 columns) at a
    time, a block of rows at a time, then copied out as bytes."""
    n_samples, n_columns = X.shape
    n_words = (n_columns + 63) // 64
    n_bytes = codes.shape[1]
    block = 1024
    words = np.empty((block, n_words), np.uint64)
    as_bytes = words.view(np.uint8)
    other = False
    for start in range(0, n_samples, block):
        b = min(block, n_samples - start)
        for r in range(b):
            for w in range(n_words):
                first = 64 * w
                word = np.uint64(0)
                for t in range(min(64, n_columns - first)):
                    x = X[start + r, first + t]
                    one = x == 1.0
                    other |= (x != 0.0) & ~one
                    word |= np.uint64(one) << np.uint64(t)
                words[r, w] = word
        if other:
            return False
        for r in range(b):
            for g in range(n_bytes):
                codes[start + r, g] = as_bytes[r, g]
    return True


@_jit
def _gather_rows(codes, table, constant, rows_dens):
    """Each row's ``constant + x . eta_k``: the sum of its bytes' table rows."""
    n_groups, _, n_components = table.shape
    for r in range(rows_dens.shape[0]):
        acc = rows_dens[r]
        for k in range(n_components):
            acc[k] = constant[k]
        for g in range(n_groups):
            levels = table[g, codes[r, g]]
            for k in range(n_components):
                acc[k] += levels[k]


@_jit
def _scatter_rows(codes, exps, inverse, sums, group_counts):
    """Each row's responsibilities (its exponentials times ``inverse``, made here while
    the row is in cache: a separate sweep was 2 of 26 ms) added to ``sums`` and to its
    bytes' rows of ``group_counts``."""
    n_groups, _, n_components = group_counts.shape
    for r in range(exps.shape[0]):
        resp = exps[r]
        for k in range(n_components):
            resp[k] *= inverse[r]
            sums[k] += resp[k]
        for g in range(n_groups):
            counts = group_counts[g, codes[r, g]]
            for k in range(n_components):
                counts[k] += resp[k]


@_jit
def _binary_totals(group_counts, n_linear, total):
    """Adds ``R^T X`` (K, n_linear) from the responsibilities summed per byte
    (``group_counts`` of shape (n_groups, 256, K padded)).

    Column ``8 g + t`` totals the codes of group ``g`` with bit ``t`` set. From the
    highest bit down: the upper half of the codes (bit set) is summed, then folded
    onto the lower half, so that every code is read twice, not once per bit.
    Overwrites ``group_counts``.
    """
    n_groups, n_components = group_counts.shape[0], total.shape[0]
    for g in range(n_groups):
        counts = group_counts[g]
        for t in range(min(8, n_linear - 8 * g) - 1, -1, -1):
            half = 1 << t
            column = 8 * g + t
            for code in range(half, 2 * half):
                for k in range(n_components):
                    total[k, column] += counts[code, k]
                    counts[code - half, k] += counts[code, k]
