"""Accelerated EM: SQUAREM extrapolation around the plain EM map, for any model.

EM converges linearly, and slowly where components overlap: each step moves
the parameters a little further along nearly the same direction. SQUAREM
(Varadhan and Roland, 2008, *Simple and globally convergent methods for
accelerating the convergence of any EM algorithm*, Scand. J. Statist. 35)
takes two EM steps ``theta1 = F(theta0)``, ``theta2 = F(theta1)`` and jumps
along that direction with the "S3" step length

    r = theta1 - theta0,  v = theta2 - 2 theta1 + theta0,  alpha = |r| / |v|
    theta' = theta0 + 2 alpha r + alpha**2 v

(``alpha = 1`` gives back ``theta2``). Safeguard: the jump is kept only if its
parameters are valid and its log-likelihood is at least that of ``theta1``;
otherwise the run continues with plain EM from ``theta1``, and no pass over
the data is wasted beyond the rejected point's own. So the log-likelihood the
run reports never decreases.

The extrapolation happens in an unconstrained parametrisation (logits of the
weights, Cholesky factors of covariances with log diagonals), supplied by a
*codec*: any object with ``flatten(model) -> ndarray`` and
``unflatten(vector, like) -> model``, raising ``ValueError`` when the vector
is not a valid model. :class:`MixtureCodec` is the codec of a
:class:`~emkit.latent.mixture.Mixture` given a codec of its component family.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.special import softmax

from emkit.core._parallel import single_threaded_blas
from emkit.core.engine import Callback, EMResult, total_stats

# Step-length bounds of Varadhan and Roland's reference implementation
# (R package SQUAREM): the largest step starts at 1 (plain EM) and is multiplied
# by MAX_STEP_GROWTH each time a step reaches it, divided when a step that long
# fails. Departure: after two failures in a row the bound drops below the last
# failed length, else on flat ridges the same too-long jump fails turn after turn
# (seen on overlapping 2-D clusters, costing one wasted pass per cycle).
MAX_STEP_GROWTH = 4.0


@dataclass(frozen=True)
class MixtureCodec:
    """Flattens a :class:`~emkit.latent.mixture.Mixture`: weight logits, then its components.

    Attributes
    ----------
    components : codec
        Codec of the component family.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import GaussianMixture
    >>> from emkit.distributions.gaussian.codec import GaussianCodec
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> mixture = GaussianMixture(2, random_state=0).fit(X)._model()
    >>> codec = MixtureCodec(GaussianCodec())
    >>> codec.flatten(mixture).shape  # 2 logits, 2 x 2 means, 2 x 3 Cholesky entries
    (12,)
    >>> back = codec.unflatten(codec.flatten(mixture), like=mixture)
    >>> bool(np.allclose(back.weights, mixture.weights))
    True
    """

    components: Any

    # ``model`` is a Mixture (any value with ``weights`` and ``components``), not
    # imported: the mixture layer sits above this module.
    def flatten(self, model: Any) -> np.ndarray:
        with np.errstate(divide="ignore"):
            logits = np.log(model.weights.astype(np.float64))
        # An empty component's weight may be exactly 0: keep it finite, negligible.
        logits = np.maximum(logits, np.log(np.finfo(np.float64).tiny))
        return np.concatenate([logits, self.components.flatten(model.components)])

    def unflatten(self, vector: np.ndarray, like: Any) -> Any:
        if not np.isfinite(vector).all():
            raise ValueError("extrapolated parameters are not finite")
        n_components = like.weights.shape[0]
        weights = softmax(vector[:n_components]).astype(like.weights.dtype)
        components = self.components.unflatten(vector[n_components:], like.components)
        return replace(like, weights=weights, components=components)


@dataclass(frozen=True)
class _Point:
    """Parameters whose E-step has been run: their statistics and average log-likelihood."""

    model: Any
    stats: Any
    value: float


@dataclass
class _Passes:
    """Counts passes over the data and records the best log-likelihood after each."""

    source: Any
    max_iter: int
    callback: Callback | None
    history: list[float] = field(default_factory=list)
    best: _Point | None = None

    @property
    def exhausted(self) -> bool:
        return len(self.history) >= self.max_iter

    def evaluate(self, model: Any) -> _Point:
        stats = total_stats(model, self.source)
        point = _Point(model, stats, stats.log_likelihood / stats.n_samples)
        if self.best is None or point.value > self.best.value:
            self.best = point
        previous = self.history[-1] if self.history else -np.inf
        self.history.append(self.best.value)
        if self.callback is not None:
            self.callback(len(self.history), self.best.value, self.best.value - previous, model)
        return point


def _m_step(point: _Point) -> Any:
    # Many tiny factorisations: a multi-threaded BLAS only adds wake-up latency
    # (see emkit.core.engine.run_em).
    with single_threaded_blas():
        return point.model.m_step(point.stats)


def _extrapolate(
    codec: Any, models: tuple[Any, Any, Any], max_step: float
) -> tuple[Any | None, float]:
    """The S3 jump from three successive EM iterates, ``None`` if it is not a valid model."""
    theta0, theta1, theta2 = (codec.flatten(m) for m in models)
    r = theta1 - theta0
    v = theta2 - 2 * theta1 + theta0
    v_norm = np.linalg.norm(v)
    step = np.linalg.norm(r) / v_norm if v_norm > 0 else 1.0
    step = float(np.clip(step, 1.0, max_step)) if np.isfinite(step) else 1.0
    try:
        return codec.unflatten(theta0 + 2 * step * r + step**2 * v, like=models[2]), step
    except ValueError:
        return None, step


def squarem(
    model: Any,
    source: Any,
    codec: Any,
    *,
    tol: float,
    max_iter: int,
    previous_lower_bound: float = -np.inf,
    callback: Callback | None = None,
) -> EMResult:
    """EM accelerated by SQUAREM, with a monotonicity safeguard.

    Parameters
    ----------
    model : initial model (``e_step``/``m_step`` as for :func:`emkit.core.engine.run_em`).
    source : re-iterable of row chunks.
    codec : object with ``flatten(model)`` and ``unflatten(vector, like)``.
    tol : float
        Converged when one plain EM step changes the average log-likelihood
        by less than ``tol``: the same test as :func:`~emkit.core.engine.run_em`.
    max_iter : int
        Maximum number of passes over the data (E-steps), so that plain and
        accelerated runs are compared by the work they do.
    previous_lower_bound : float
        Average log-likelihood before the first pass (for warm starts).
    callback : callable, optional
        ``callback(pass, best_avg_loglik, change, model)`` after every pass.

    Returns
    -------
    EMResult
        ``model`` holds the best parameters evaluated (so ``lower_bound`` is
        exactly their average log-likelihood, not that of a further M-step,
        which ``reg_covar`` may lower by rounding); ``history[t]`` the best
        average log-likelihood known after ``t + 1`` passes (so it never
        decreases); ``n_iter`` the number of passes.
    """
    passes = _Passes(source, max_iter, callback)
    converged = False
    if max_iter > 0:
        current = passes.evaluate(model)
        converged = abs(current.value - previous_lower_bound) < tol
    max_step, failed_before = 1.0, False
    while not (converged or passes.exhausted):
        first = _m_step(current)
        after_one = passes.evaluate(first)
        converged = abs(after_one.value - current.value) < tol
        if converged or passes.exhausted:
            break
        second = _m_step(after_one)
        with single_threaded_blas():  # tiny factorisations, as in the M-step
            jump, step = _extrapolate(codec, (current.model, first, second), max_step)
        accepted = jump is not None
        if accepted:
            landed = passes.evaluate(jump)
            accepted = landed.value >= after_one.value
        if accepted:
            current = landed
            max_step = max_step * MAX_STEP_GROWTH if step == max_step else max_step
        else:
            # Plain EM from theta1: its next iterate, ``second``, is evaluated next turn.
            current = after_one
            if step == max_step or failed_before:
                max_step = max(1.0, step / MAX_STEP_GROWTH)
        failed_before = not accepted
    if passes.best is None:
        return EMResult(model=model)
    return EMResult(
        model=passes.best.model, history=passes.history,
        n_iter=len(passes.history), converged=converged,
    )
