"""Mixtures of regressions and of experts: EM where the components model ``y`` given ``x``.

A chunk is one array whose columns are packed as ``[y, w, design..., gate...]``:
the response, the row's sample weight, the ``p`` design columns of the
component regressions and the ``q`` concomitant (gating) columns. Packing keeps
the engine's contract (a chunk is rows of one array), so every driver of
:mod:`emkit.core.engine` carries over.

The prior probability of component ``k`` for row ``i`` is either a fixed
weight ``pi_k`` (a mixture of regressions) or ``softmax(z_i G)_k`` (a mixture
of experts, flexmix's ``FLXPmultinom``), with ``G`` (q, K) and its first column
zero (the reference component). The gate's M-step is a weighted multinomial
logistic regression of the responsibilities on ``z``, solved by L-BFGS from
the previous gate; like the components' M-step it never lowers the expected
complete-data log-likelihood, so EM stays monotone.

The assignment policies of :mod:`emkit.core.variants` (hard and stochastic EM)
apply to the responsibilities before they are summed, as for
:class:`~emkit.latent.mixture.Mixture`; :class:`ExpertsCodec` flattens the
model for SQUAREM.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from emkit.core.stats import Stats
from emkit.core.variants import SOFT
from emkit.data.sources import row_start
from emkit.distributions.regression import GaussianRegression, RowStats


@dataclass(frozen=True)
class ExpertStats(Stats):
    """Additive statistics of a mixture of regressions over some rows.

    Attributes
    ----------
    resp_sum : ndarray of shape (K,)
        Summed weighted responsibilities.
    components : Stats
        The regression family's statistics.
    gate : RowStats or None
        The gate's rows ``(z, targets)``, for a mixture of experts.
    log_likelihood : float
        Weighted log-likelihood of the rows.
    n_samples : float
        Summed sample weights (the engine averages over it).
    prior_sum : ndarray of shape (K,) or None
        Summed weighted prior probabilities of the components (a gated model's
        average mixing weights); None with constant weights.
    """

    resp_sum: np.ndarray
    components: Stats
    gate: Any
    log_likelihood: float
    n_samples: float
    prior_sum: Any = None

    def __add__(self, other: Stats) -> Stats:
        if type(other) is not type(self):
            return NotImplemented
        gate = None if self.gate is None else self.gate + other.gate
        prior_sum = None if self.prior_sum is None else self.prior_sum + other.prior_sum
        return ExpertStats(
            resp_sum=self.resp_sum + other.resp_sum, components=self.components + other.components,
            gate=gate, log_likelihood=self.log_likelihood + other.log_likelihood,
            n_samples=self.n_samples + other.n_samples, prior_sum=prior_sum,
        )


@dataclass(frozen=True)
class RegressionMixtureModel:
    """Weights (or a gate) and a regression family, with ``e_step`` and ``m_step``.

    Attributes
    ----------
    family : GaussianRegression or GLMRegression
    n_design : int
        Design columns ``p`` in a packed chunk.
    weights : ndarray of shape (K,) or None
        Mixing proportions; None for a mixture of experts.
    gate : ndarray of shape (q, K) or None
        Multinomial logit coefficients (first column zero); None for fixed weights.
    assignment : policy, default soft EM
        How responsibilities become the weights the statistics sum
        (:mod:`emkit.core.variants`).
    """

    family: Any
    n_design: int
    weights: np.ndarray | None = None
    gate: np.ndarray | None = None
    assignment: Any = SOFT

    def unpack(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``y``, sample weights, design and gate columns of a packed chunk (views)."""
        p = self.n_design
        return chunk[:, 0], chunk[:, 1], chunk[:, 2 : 2 + p], chunk[:, 2 + p :]

    def log_prior(self, gate_rows: np.ndarray) -> np.ndarray:
        """Log prior probabilities of the components per row, shape (n, K)."""
        if self.gate is None:
            with np.errstate(divide="ignore"):
                return np.broadcast_to(np.log(self.weights), (len(gate_rows), len(self.weights)))
        return log_softmax(gate_rows @ self.gate, axis=1)

    def joint_log_prob(self, chunk: np.ndarray) -> np.ndarray:
        """``log prior_ik + log p(y_i | x_i, k)``, shape (n, K)."""
        y, _, design, gate_rows = self.unpack(chunk)
        return self.family.log_prob(design, y) + self.log_prior(gate_rows)

    def e_step(self, chunk: np.ndarray) -> ExpertStats:
        """Posterior memberships of a chunk, weighted by the assignment policy, as statistics.

        ``log_likelihood`` holds the policy's objective: the observed-data
        log-likelihood for soft and stochastic EM, the classification
        log-likelihood for hard EM.
        """
        start = row_start(chunk)
        chunk = np.asarray(chunk)
        y, w, design, gate_rows = self.unpack(chunk)
        log_prior = self.log_prior(gate_rows)
        posterior = getattr(self.family, "posterior", None)  # a family's faster route
        if posterior is not None:
            resp, log_norm = posterior(design, y, log_prior)
        else:
            resp = self.family.log_prob(design, y)
            resp += log_prior
            log_norm = _normalise_in_place(resp)
        resp, objective = self.assignment.assign(resp, log_norm, start)
        prior_sum = None if self.gate is None else w @ np.exp(log_prior)
        stats = self.stats_from_resp(chunk, resp)
        return replace(stats, log_likelihood=float(w @ objective), prior_sum=prior_sum)

    def stats_from_resp(self, chunk: np.ndarray, resp: np.ndarray) -> ExpertStats:
        """Statistics for given memberships (a start from labels uses this before any E-step)."""
        y, w, design, gate_rows = self.unpack(np.asarray(chunk))
        weighted = resp * w[:, None]
        gate = None if self.gate is None else RowStats(pieces=((gate_rows, weighted),))
        return ExpertStats(
            resp_sum=weighted.sum(axis=0), components=self.family.stats(design, y, weighted),
            gate=gate, log_likelihood=0.0, n_samples=float(w.sum()),
            prior_sum=None if self.gate is None else np.zeros(self.family.n_components),
        )

    def m_step(self, stats: ExpertStats) -> RegressionMixtureModel:
        """New components and weights (or gate) from summed statistics."""
        family = self.family.from_stats(stats.components)
        assignment = self.assignment.advanced()
        if self.gate is not None:
            return replace(self, family=family, gate=fit_gate(stats.gate.pieces, self.gate),
                           assignment=assignment)
        counts = stats.resp_sum + 10 * np.finfo(np.float64).eps
        return replace(self, family=family, weights=counts / counts.sum(), assignment=assignment)

    @property
    def n_parameters(self) -> int:
        """Free parameters: the components', plus ``K - 1`` weights or ``q (K - 1)`` gate ones."""
        k = self.family.n_components
        free = (k - 1) if self.gate is None else self.gate.shape[0] * (k - 1)
        return self.family.n_parameters + free


def _normalise_in_place(joint: np.ndarray) -> np.ndarray:
    """Turn joint log-probabilities (n, K) into responsibilities in place; return log-normalisers.

    scipy's ``logsumexp`` plus a second ``exp`` cost more than the rest of
    the E-step's arithmetic on (n, 3) arrays: one shift, one ``exp``.
    """
    row_max = joint.max(axis=1, keepdims=True)
    row_max[~np.isfinite(row_max)] = 0.0
    joint -= row_max
    # exp below -700 would give subnormal numbers, which are slow in every later
    # product; a responsibility under 1e-304 is zero for the statistics anyway.
    np.maximum(joint, -700.0, out=joint)
    np.exp(joint, out=joint)
    total = joint.sum(axis=1, keepdims=True)
    joint /= total
    return (np.log(total) + row_max)[:, 0]


def fit_gate(pieces: tuple, gate: np.ndarray, max_iter: int = 500) -> np.ndarray:
    """Weighted multinomial logistic regression of memberships on the gate rows.

    Maximises ``sum_i sum_k a_ik log softmax(z_i G)_k`` over ``G`` (its first
    column fixed at zero) with ``a_ik = w_i r_ik``, by L-BFGS from ``gate``.
    L-BFGS only accepts steps that lower the objective, so the result is never
    worse than ``gate``.
    """
    q, k = gate.shape

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        g = np.zeros((q, k))
        g[:, 1:] = flat.reshape(q, k - 1)
        value, grad = 0.0, np.zeros((q, k))
        for z, targets in pieces:
            log_p = log_softmax(z @ g, axis=1)
            value -= float(np.sum(targets * log_p))
            residual = softmax(z @ g, axis=1) * targets.sum(axis=1, keepdims=True) - targets
            grad += z.T @ residual
        return value, grad[:, 1:].ravel()

    result = minimize(objective, gate[:, 1:].ravel(), jac=True, method="L-BFGS-B",
                      options={"maxiter": max_iter, "gtol": 1e-10, "ftol": 1e-15})
    start_value, _ = objective(gate[:, 1:].ravel())
    if not result.fun <= start_value:
        return gate
    out = np.zeros((q, k))
    out[:, 1:] = result.x.reshape(q, k - 1)
    return out


@dataclass(frozen=True)
class ExpertsCodec:
    """Flattens a :class:`RegressionMixtureModel` for SQUAREM (:mod:`emkit.core.acceleration`).

    The vector holds the log weights (mapped back by softmax) or the gate's
    free columns, then the coefficients as they are, then the logarithms of
    the Gaussian scales: every vector maps back to a valid model unless it is
    not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions.regression import GaussianRegression
    >>> family = GaussianRegression(coef=np.array([[0.0, 1.0], [2.0, -1.0]]),
    ...                             scale=np.array([0.5, 2.0]))
    >>> model = RegressionMixtureModel(family, 2, weights=np.array([0.25, 0.75]))
    >>> vector = ExpertsCodec().flatten(model)
    >>> vector.shape  # 2 log weights, 4 coefficients, 2 log scales
    (8,)
    >>> back = ExpertsCodec().unflatten(vector, like=model)
    >>> bool(np.allclose(back.weights, model.weights) and np.allclose(back.family.scale, [0.5, 2]))
    True
    """

    def flatten(self, model: RegressionMixtureModel) -> np.ndarray:
        if model.gate is None:
            with np.errstate(divide="ignore"):
                head = np.maximum(np.log(model.weights), np.log(np.finfo(np.float64).tiny))
        else:
            head = model.gate[:, 1:].ravel()
        parts = [head, model.family.coef.ravel()]
        if isinstance(model.family, GaussianRegression):
            parts.append(np.log(model.family.scale))
        return np.concatenate(parts)

    def unflatten(
        self, vector: np.ndarray, like: RegressionMixtureModel
    ) -> RegressionMixtureModel:
        if not np.isfinite(vector).all():
            raise ValueError("extrapolated parameters are not finite")
        family = like.family
        k, p = family.coef.shape
        if like.gate is None:
            head = k
            changes: dict[str, Any] = {"weights": softmax(vector[:k])}
        else:
            q = like.gate.shape[0]
            head = q * (k - 1)
            gate = np.zeros((q, k))
            gate[:, 1:] = vector[:head].reshape(q, k - 1)
            changes = {"gate": gate}
        coef = vector[head : head + k * p].reshape(k, p)
        if isinstance(family, GaussianRegression):
            scale = np.maximum(np.exp(vector[head + k * p :]), family.min_scale)
            family = replace(family, coef=coef, scale=scale)
        else:
            family = replace(family, coef=coef)
        return replace(like, family=family, **changes)
