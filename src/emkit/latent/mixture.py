"""A finite mixture: mixing weights over any component family, with its E-step and M-step."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from emkit.core.stats import Stats
from emkit.core.variants import SOFT, Soft, labelled_terms, with_labels
from emkit.data.sources import row_labels, row_memo, row_start, row_weights


@dataclass(frozen=True)
class MixtureStats(Stats):
    """Additive statistics of a mixture over some rows.

    Attributes
    ----------
    resp_sum : ndarray of shape (K,)
        Summed responsibilities (expected counts per component).
    components : Stats
        The component family's statistics.
    log_likelihood : float
        Summed log-likelihood of the rows under the parameters of the E-step.
    n_samples : int or float
        Number of rows (their summed ``sample_weight`` in a weighted fit).
    """

    resp_sum: np.ndarray
    components: Stats
    log_likelihood: float
    n_samples: int


@dataclass(frozen=True)
class Mixture:
    """Mixing weights and a component family.

    Attributes
    ----------
    weights : ndarray of shape (K,)
        Mixing proportions, summing to one.
    components : family
        Any object with ``log_prob(X) -> (n, K)``, ``stats(X, resp)``,
        ``from_stats(stats)`` and ``n_parameters``.
    fit_weights : bool
        Whether the M-step re-estimates the weights; False keeps them fixed
        (as the coin example's prior of 0.5).
    assignment : policy, default soft EM
        How the E-step turns responsibilities into the weights it sums: the EM
        variant (see :mod:`emkit.core.variants`). ``m_step`` passes on its
        ``advanced()`` successor, so a stochastic policy draws afresh each iteration.
    """

    weights: np.ndarray
    components: Any
    fit_weights: bool = True
    assignment: Any = SOFT

    def weighted_log_prob(self, X: Any) -> np.ndarray:
        """``log pi_k + log p(x_i | theta_k)``, shape (n_samples, K).

        ``X`` is a chunk of rows, or what the components' ``prepare`` made of it.
        """
        out = self.components.log_prob(X)
        if not out.flags.writeable:  # a family may return a broadcast or cached array
            return out + self._log_weights
        out += self._log_weights.astype(out.dtype, copy=False)
        return out

    @cached_property
    def _log_weights(self) -> np.ndarray:
        # Computed once per model, not once per chunk.
        with np.errstate(divide="ignore"):
            return np.log(self.weights)

    def log_resp(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log responsibilities (n_samples, K) and per-row log-likelihoods (n_samples,)."""
        weighted = self.weighted_log_prob(X)
        log_resp = weighted.copy(order="K")
        _, log_norm = _resp_and_log_norm(weighted)
        # A row impossible under every component gives -inf - -inf: NaN, which
        # the estimators report by row; numpy's bare warning would say nothing.
        with np.errstate(invalid="ignore"):
            log_resp -= log_norm[:, None]
        return log_resp, log_norm

    def e_step(self, X: np.ndarray) -> MixtureStats:
        """Responsibilities of a chunk, weighted by the assignment policy, as additive statistics.

        ``log_likelihood`` holds the policy's objective: the observed-data
        log-likelihood for soft and stochastic EM, the classification
        log-likelihood for hard EM.

        A chunk carrying ``sample_weight`` (see
        :class:`~emkit.data.sources.IndexedRows`) multiplies each row's
        weights and objective by its weight before they are summed, so an
        integer weight counts as that many copies of the row; ``n_samples``
        is then the summed weight. Rows of weight zero are left out. A chunk
        carrying ``labels`` keeps its known rows wholly in their component
        whatever the policy (see :func:`~emkit.core.variants.with_labels`).
        """
        start, row_weight, labels = row_start(X), row_weights(X), row_labels(X)
        memo = row_memo(X)
        X = np.asarray(X)
        fused = (self._soft_e_step(X, memo) if row_weight is None and labels is None
                 else None)
        if fused is not None:
            return fused
        # Families that can precompute per-chunk features (shared by log_prob and
        # stats) offer ``prepare``; others take the rows as they are.
        prepare = getattr(self.components, "prepare", None)
        chunk = X if prepare is None else prepare(X)
        weighted = self.weighted_log_prob(chunk)
        known = None if labels is None else labelled_terms(weighted, labels)
        resp, log_norm = _resp_and_log_norm(weighted)
        resp, row_objective = self.assignment.assign(resp, log_norm, start)
        if labels is not None:
            resp, row_objective = with_labels(resp, row_objective, labels, known)
        # A row with every value missing (NaN) carries no information: it
        # contributes nothing to the statistics and is not counted.
        empty = np.isnan(X).all(axis=1)
        if row_weight is None:
            resp[empty] = 0.0
            return MixtureStats(
                resp_sum=resp.sum(axis=0, dtype=np.float64),
                components=self.components.stats(chunk, resp),
                log_likelihood=float(row_objective[~empty].sum(dtype=np.float64)),
                n_samples=int(X.shape[0] - empty.sum()),
            )
        # Weight zero means "absent", like an empty row (0 * -inf would give NaN).
        absent = empty | (row_weight == 0)
        resp *= row_weight[:, None].astype(resp.dtype, copy=False)
        resp[absent] = 0.0
        kept = ~absent
        return MixtureStats(
            resp_sum=resp.sum(axis=0, dtype=np.float64),
            components=self.components.stats(chunk, resp),
            log_likelihood=float(np.dot(row_objective[kept].astype(np.float64),
                                        row_weight[kept].astype(np.float64))),
            n_samples=float(row_weight[kept].sum(dtype=np.float64)),
        )

    def _soft_e_step(self, X: np.ndarray, memo: dict | None = None) -> MixtureStats | None:
        """The family's own one-pass soft E-step (``soft_e_step``), where it has one.

        Families may fuse the whole soft E-step of a chunk (densities,
        responsibilities, statistics) into one pass; they return None for
        chunks it does not cover, which then take the general path. Families
        with ``uses_chunk_memo`` also get the chunk's memo (see
        :func:`emkit.data.sources.row_memo`).
        """
        soft_e_step = getattr(self.components, "soft_e_step", None)
        if soft_e_step is None or not isinstance(self.assignment, Soft):
            return None
        if memo is not None and getattr(self.components, "uses_chunk_memo", False):
            result = soft_e_step(X, self._log_weights, memo=memo)
        else:
            result = soft_e_step(X, self._log_weights)
        if result is None:
            return None
        resp_sum, stats, log_likelihood = result
        return MixtureStats(
            resp_sum=resp_sum, components=stats, log_likelihood=float(log_likelihood),
            n_samples=int(X.shape[0]),
        )

    def m_step(self, stats: MixtureStats) -> Mixture:
        """New weights (unless fixed) and components from summed statistics."""
        weights = self.weights
        if self.fit_weights:
            counts = stats.resp_sum + 10 * np.finfo(self.weights.dtype).eps
            weights = (counts / counts.sum()).astype(self.weights.dtype, copy=False)
        return replace(
            self, weights=weights, components=self.components.from_stats(stats.components),
            assignment=self.assignment.advanced(),
        )

    @property
    def n_parameters(self) -> int:
        """Free parameters: the components' plus ``K - 1`` weights when they are fitted."""
        free_weights = len(self.weights) - 1 if self.fit_weights else 0
        return self.components.n_parameters + free_weights


def _resp_and_log_norm(weighted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities (n_samples, K) and row log-normalisers, with one ``exp``.

    Overwrites ``weighted`` (the responsibilities are returned in its memory):
    the log-sum-exp and the normalised ``exp`` share the shifted exponentials.
    Works on the (K, n) transpose, which is contiguous when the family returns
    component-major log densities, so each step runs along whole rows.
    """
    by_component = weighted.T
    row_max = by_component.max(axis=0)
    if np.isfinite(row_max).all():
        return weighted, _normalise(by_component, row_max)
    # Rows with every component at -inf keep -inf as their log-likelihood.
    row_max[~np.isfinite(row_max)] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return weighted, _normalise(by_component, row_max)


def _normalise(by_component: np.ndarray, row_max: np.ndarray) -> np.ndarray:
    """Exponentiate and normalise (K, n) in place; return the log-normalisers (n,)."""
    by_component -= row_max
    np.exp(by_component, out=by_component)
    total = by_component.sum(axis=0)
    by_component /= total
    log_norm = np.log(total)
    log_norm += row_max
    return log_norm
