"""``emkit.em``: the engine's EM loop for a model you write as two functions."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from emkit.core.runs import run_variant

# The user's model reads no data chunks (its data live in its own closures), so the
# engine gets a source of exactly one placeholder chunk per pass.
_ONE_PASS = (None,)


# A fall of the log-likelihood larger than this (relative, plus an absolute floor
# for values near zero) is no rounding error: the E-step or M-step is wrong.
DECREASE_RTOL = 1e-9
DECREASE_ATOL = 1e-12


class LikelihoodDecreaseWarning(UserWarning):
    """The log-likelihood fell after an M-step: EM never lowers it, so the model is wrong."""


@dataclass
class _Monitor:
    """What :func:`em` watches across E-steps: their count and the log-likelihood's falls.

    Shared (mutable) by every :class:`_UserModel` of one run.
    """

    e_steps: int = 0
    falls: list[tuple[int, float]] = field(default_factory=list)

    def check(self, log_likelihood: float, parent: float | None, extrapolated: bool) -> None:
        """Count one E-step; raise on NaN, record a fall from ``parent`` beyond rounding."""
        self.e_steps += 1
        if np.isnan(log_likelihood) and not extrapolated:
            source = ("theta0" if self.e_steps == 1 else
                      f"the parameters m_step returned at iteration {self.e_steps - 1}")
            raise FloatingPointError(
                f"em: e_step returned a NaN log-likelihood at iteration {self.e_steps} (for "
                f"{source}); the model or its parameters are invalid there"
            )
        if parent is None or not np.isfinite(parent):
            return
        slack = DECREASE_RTOL * max(abs(parent), abs(log_likelihood)) + DECREASE_ATOL
        if log_likelihood < parent - slack:
            self.falls.append((self.e_steps, parent - log_likelihood))

    def warn_falls(self) -> None:
        """One warning for the whole run: how often, where first, and by how much."""
        if not self.falls:
            return
        iteration, amount = self.falls[0]
        worst = max(amount for _, amount in self.falls)
        warnings.warn(
            f"em: the log-likelihood fell after {len(self.falls)} M-step(s), first at "
            f"iteration {iteration} (by {amount:.6g}; largest fall {worst:.6g}). EM never "
            "lowers the log-likelihood: check that m_step maximises the expected "
            "complete-data log-likelihood and that e_step's log-likelihood matches it",
            LikelihoodDecreaseWarning,
            stacklevel=3,
        )


@dataclass(frozen=True)
class _Expected:
    """The user's expected statistics with the fields the engine reads.

    Never added: the single placeholder chunk makes one E-step per iteration.
    """

    statistics: Any
    log_likelihood: float
    n_samples: int = 1


@dataclass(frozen=True)
class _UserModel:
    """Adapts ``theta`` and the user's two functions to the engine's model interface.

    Attributes
    ----------
    parent : float or None
        Log-likelihood of the E-step whose statistics made ``theta`` (None for
        ``theta0`` and for extrapolated parameters): an M-step must not go below it.
    extrapolated : bool
        ``theta`` is a SQUAREM jump, whose log-likelihood may be NaN (it is then
        rejected) or lower (likewise), neither a fault of the user's model.
    """

    theta: Any
    expectation: Callable[[Any], tuple[Any, float]]
    maximization: Callable[[Any], Any]
    monitor: _Monitor = field(default_factory=_Monitor)
    parent: float | None = None
    extrapolated: bool = False

    def e_step(self, chunk: None) -> _Expected:
        statistics, log_likelihood = self.expectation(self.theta)
        log_likelihood = float(log_likelihood)
        self.monitor.check(log_likelihood, self.parent, self.extrapolated)
        return _Expected(statistics, log_likelihood)

    def m_step(self, expected: _Expected) -> _UserModel:
        return replace(self, theta=self.maximization(expected.statistics),
                       parent=expected.log_likelihood, extrapolated=False)


@dataclass(frozen=True)
class _UserCodec:
    """The SQUAREM codec of a :class:`_UserModel`, from the user's (or default) functions."""

    flatten_theta: Callable[[Any], np.ndarray]
    unflatten_theta: Callable[[np.ndarray], Any]

    @classmethod
    def of(cls, theta0: Any, flatten: Any, unflatten: Any) -> _UserCodec:
        if flatten is not None and unflatten is not None:
            return cls(flatten, unflatten)
        if flatten is not None or unflatten is not None:
            raise ValueError("give both flatten and unflatten, or neither")
        shape = np.shape(theta0)
        # A scalar theta stays a Python float, as the user's functions expect.
        restore = (lambda v: float(v[0])) if shape == () else (lambda v: v.reshape(shape))
        return cls(lambda t: np.asarray(t, dtype=np.float64).ravel(), restore)

    def flatten(self, model: _UserModel) -> np.ndarray:
        return np.asarray(self.flatten_theta(model.theta), dtype=np.float64)

    def unflatten(self, vector: np.ndarray, like: _UserModel) -> _UserModel:
        if not np.isfinite(vector).all():
            raise ValueError("extrapolated parameters are not finite")
        return replace(like, theta=self.unflatten_theta(vector), parent=None, extrapolated=True)


@dataclass
class EMFunctionResult:
    """Outcome of :func:`em`.

    Attributes
    ----------
    theta : the parameters after the last M-step.
    history : ndarray of shape (n_iter,)
        Log-likelihood returned by each iteration's E-step, that is of the
        parameters going *into* that iteration. Never decreases for a correct EM.
    n_iter : int
    converged : bool
        Whether the change in log-likelihood fell below ``tol``.
    """

    theta: Any
    history: np.ndarray
    n_iter: int
    converged: bool


def em(
    e_step: Callable[[Any], tuple[Any, float]],
    m_step: Callable[[Any], Any],
    theta0: Any,
    *,
    tol: float = 1e-8,
    max_iter: int = 1000,
    callback: Callable[[int, float, float, Any], None] | None = None,
    accelerate: bool | str = False,
    flatten: Callable[[Any], np.ndarray] | None = None,
    unflatten: Callable[[np.ndarray], Any] | None = None,
) -> EMFunctionResult:
    """Run EM for your own model, with the same loop that fits emkit's mixtures.

    Parameters
    ----------
    e_step : callable
        ``e_step(theta) -> (expected_statistics, log_likelihood)``: the expected
        complete-data statistics under ``theta`` and the observed-data
        log-likelihood of ``theta``.
    m_step : callable
        ``m_step(expected_statistics) -> theta``: the parameters maximising the
        expected complete-data log-likelihood.
    theta0 : any
        Starting parameters, passed to ``e_step`` as they are.
    tol : float, default=1e-8
        Stop when the log-likelihood changes by less than this.
    max_iter : int, default=1000
    callback : callable, optional
        Called as ``callback(iteration, log_likelihood, change, theta)`` after
        every M-step, ``theta`` being the new parameters.
    accelerate : bool or {"squarem", "daarem"}, default=False
        SQUAREM (True or ``"squarem"``) or DAAREM (``"daarem"``) extrapolation
        (:mod:`emkit.core.acceleration`): ``history`` is then the best value
        after each E-step, so it never decreases; ``n_iter`` and ``max_iter`` count
        E-steps, and ``theta`` is the best parameters evaluated.
    flatten, unflatten : callable, optional
        For ``accelerate``: ``flatten(theta) -> 1-D float array`` and
        ``unflatten(vector) -> theta``, ideally onto unconstrained reals (logs
        of rates, logits of probabilities); ``unflatten`` raises ValueError for
        a vector that is no valid ``theta``. By default ``theta`` is taken as
        a number or array, as it is.

    Returns
    -------
    EMFunctionResult
        ``theta``, ``history``, ``n_iter`` and ``converged``.

    Raises
    ------
    FloatingPointError
        If ``e_step`` returns a NaN log-likelihood (for ``theta0`` or for the
        parameters of an M-step), naming the iteration; EM stops there.

    Warns
    -----
    LikelihoodDecreaseWarning
        Once per run, if the log-likelihood fell after an M-step by more than
        rounding (``1e-9`` of its size plus ``1e-12``), with the number of
        falls, the first iteration and the amounts: EM never lowers it, so
        ``e_step`` or ``m_step`` is wrong.
    sklearn.exceptions.ConvergenceWarning
        If ``max_iter`` iterations ran without the change falling below ``tol``
        (as the estimators warn); ``converged`` is then False.

    Examples
    --------
    Genetic linkage (Dempster, Laird and Rubin, 1977): 197 animals fall into four
    cells with probabilities ``(1/2 + t/4, (1 - t)/4, (1 - t)/4, t/4)``. The first
    cell hides two: ``1/2`` and ``t/4``. The E-step splits its 125 animals in
    expectation; the M-step counts the ``t`` cells over all informative ones.

    >>> import numpy as np
    >>> from emkit import em
    >>> y1, y2, y3, y4 = 125, 18, 20, 34
    >>> def e_step(t):
    ...     hidden = y1 * (t / 4) / (1 / 2 + t / 4)
    ...     loglik = y1 * np.log(2 + t) + (y2 + y3) * np.log(1 - t) + y4 * np.log(t)
    ...     return hidden, loglik
    >>> def m_step(hidden):
    ...     return (hidden + y4) / (hidden + y2 + y3 + y4)
    >>> result = em(e_step, m_step, 0.5, tol=1e-12)
    >>> print(f"{result.theta:.8f}", result.n_iter, result.converged)
    0.62682150 10 True
    >>> faster = em(e_step, m_step, 0.5, tol=1e-12, accelerate=True)
    >>> print(f"{faster.theta:.8f}", faster.n_iter < result.n_iter)
    0.62682150 True

    Dempster, Laird and Rubin report 0.6268214980; the closed form, the root of
    ``197 t**2 - 15 t - 68``, is 0.62682149787.
    """
    def adapted(iteration: int, loglik: float, change: float, model: _UserModel) -> None:
        callback(iteration, loglik, change, model.theta)

    monitor = _Monitor()
    result = run_variant(
        _UserModel(theta0, e_step, m_step, monitor), _ONE_PASS, algorithm="em",
        accelerate=accelerate, codec=_UserCodec.of(theta0, flatten, unflatten), tol=tol,
        max_iter=max_iter, callback=None if callback is None else adapted,
    )
    monitor.warn_falls()
    if not result.converged and max_iter > 0:
        last = result.history[-2:]
        change = last[-1] - last[0] if len(last) == 2 else np.inf
        warnings.warn(
            f"em did not converge in {result.n_iter} iterations (last change of the "
            f"log-likelihood {change:.3g}, tol={tol:g}): increase max_iter or tol, or check "
            "the model",
            ConvergenceWarning,
            stacklevel=2,
        )
    return EMFunctionResult(
        theta=result.model.theta,
        history=np.asarray(result.history, dtype=np.float64),
        n_iter=result.n_iter,
        converged=result.converged,
    )
