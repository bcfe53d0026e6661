"""Accelerated EM: SQUAREM and DAAREM extrapolation around the plain EM map, for any model.

EM converges linearly, and slowly where components overlap: each step moves
the parameters a little further along nearly the same direction. Two schemes
extrapolate along it, both as their reference R packages do:

SQUAREM (Varadhan and Roland, 2008, *Simple and globally convergent methods
for accelerating the convergence of any EM algorithm*, Scand. J. Statist. 35;
R package SQUAREM, ``squarem1``) takes two EM steps ``theta1 = F(theta0)``,
``theta2 = F(theta1)`` and jumps along that direction with the "SqS3" step
length, then takes one EM step from where it lands:

    r = theta1 - theta0,  v = theta2 - 2 theta1 + theta0,  alpha = |r| / |v|
    theta' = F(theta0 + 2 alpha r + alpha**2 v)

(``alpha = 1`` gives back ``theta2``). The reference's rules, kept here:
``alpha`` is bounded to ``[1, step_max]``; ``step_max`` starts at 1, is
multiplied by ``MSTEP`` (4) each time a step reaches it and divided by it
when a step that long fails; a step within 0.01 of 1 skips the stabilising EM
step; and a jump is kept unless its log-likelihood is more than
``OBJECTIVE_SLACK`` (1, in units of the total log-likelihood) below that of
``theta0``, the bounded non-monotone acceptance that lets the run cross a
ridge. A jump that is not kept, or whose parameters are invalid, gives way to
``theta2``. The parameters are the reference's too where the M-step computes
them as averages (mixture weights, Poisson rates: see :class:`MixtureCodec`),
so that on Hasselblad's Poisson mixture the run is the reference's, step
length for step length.

Three safeguards depart from the reference (``safeguards=False`` drops them);
each keeps a jump from landing in another basin than plain EM's, which the
reference's rules allow early in a run, while components still trade places:

- the step length is 1 (plain EM, no pass wasted) where the two EM steps turn
  by more than about 25 degrees (``MIN_ALIGNMENT``), or where the second is
  longer than the first (``MAX_STEP_RATIO``): SqS3's step length is that of a
  linear contraction, ``|r| / |v| = 1 / (1 - rho)`` for
  ``theta2 - theta1 = rho r``, and EM steps that turn or grow are leaving a
  saddle, not contracting;
- the reference's acceptance test is applied to the extrapolated point itself,
  whose log-likelihood the pass for the stabilising EM step gives for free
  (the reference would need one more objective evaluation), against
  ``theta1``, the EM step it extrapolates: a jump that lands more than
  ``OBJECTIVE_SLACK`` below it has overshot the region where the linear
  model holds, and gives way to ``theta2`` at once (a pass sooner than the
  reference's test on its EM step would).

On the wine data (raw and standardised; diagonal, full and spherical
covariances; 2 to 5 components; seeds 0 to 5) the reference's rules end below
plain EM from the same start in 11 of the 144 runs, these in none, for a fifth
more passes (3820 in all against 3192; plain EM 5817;
``python -m benchmarks.bench_acceleration --wine-scan``).

DAAREM (Henderson and Varadhan, 2019, *Damped Anderson acceleration with
restarts and monotonicity control for accelerating EM and EM-like algorithms*,
J. Comput. Graph. Statist. 28; R package daarem) extrapolates from the last
``order`` EM steps at once (Anderson acceleration), damped by a ridge penalty
whose strength relaxes while proposals are kept and tightens when a cycle of
them loses log-likelihood; the differences restart every ``order`` steps, and
a proposal is kept unless it loses more than ``DAAREM_SLACK`` (0.01).

Both count passes over the data (E-steps), the cost plain EM is compared by,
and both are monotone where it matters: the run's result is the best
parameters evaluated, ``history`` the best log-likelihood known after each
pass, so it never decreases even where an accepted step went down a little.

The extrapolation happens in a parametrisation supplied by a *codec*
(mixtures: the free weights as they are, Poisson rates as they are, Gaussian
covariances as Cholesky factors with log diagonals, see :class:`MixtureCodec`
and :mod:`emkit.distributions.codec`): any object with ``flatten(model) -> ndarray`` and
``unflatten(vector, like) -> model``, raising ``ValueError`` when the vector
is not a valid model. :class:`MixtureCodec` is the codec of a
:class:`~emkit.latent.mixture.Mixture` given a codec of its component family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.optimize import brentq

from emkit.core._parallel import single_threaded_blas
from emkit.core.engine import Callback, EMResult, total_stats

# The accelerations a fit may ask for (``accelerate=True`` is SQUAREM).
ACCELERATIONS = ("squarem", "daarem")

# SQUAREM's control defaults in the reference implementation (R package
# SQUAREM, squarem1: step.min0 = 1, step.max0 = 1, mstep = 4, objfn.inc = 1).
STEP_MIN = 1.0
STEP_MAX0 = 1.0
MSTEP = 4.0
# Slack of the non-monotone acceptance, in units of the total (not average)
# log-likelihood, as the reference measures its objective.
OBJECTIVE_SLACK = 1.0
# A step length this close to 1 lands next to theta2: no stabilising EM step.
NEAR_ONE = 0.01
# Safeguard (a departure from the reference): where the two EM steps turn by
# more than about 25 degrees (cosine below this), the run is not in the
# near-linear regime the extrapolation assumes (a saddle being left, components
# trading roles), and the step length is 1 (plain EM, no pass wasted). On
# standardised breast cancer (4 full components, seed 0) the reference's rule
# otherwise ends at a lower optimum than plain EM from the same start.
MIN_ALIGNMENT = 0.9
# Safeguard: nor where the second EM step is longer than the first by more than
# this factor (not contracting). Not 1: just after a long jump, with a rate of
# nearly 1, a step may be longer by rounding and transients (1.0006 on
# Hasselblad's data), and the jump is then the one to take; at 1.1 the wine
# scan of tests/test_acceleration.py loses 4 runs, at 1.01 none.
MAX_STEP_RATIO = 1.01
# Kept for callers of the previous release (the growth factor of step_max).
MAX_STEP_GROWTH = MSTEP

# DAAREM's control defaults in the reference implementation (R package daarem:
# order = 5, mon.tol = 0.01, cycl.mon.tol = 0, kappa = 25, alpha = 1.2).
DAAREM_ORDER = 5
DAAREM_SLACK = 0.01
DAAREM_CYCLE_SLACK = 0.0
DAAREM_KAPPA = 25.0
DAAREM_ALPHA = 1.2


@dataclass(frozen=True)
class MixtureCodec:
    """Flattens a :class:`~emkit.latent.mixture.Mixture`: its free weights, then its components.

    The weights are the free ones, all but the last (which is 1 minus their
    sum), as they are: the reference SQUAREM's parameters for a mixture (its
    vignette's ``p`` of a two-component one). The M-step computes them as
    averages of responsibilities, and the EM map is closer to linear in them
    than in their logarithms (earlier releases' coordinates): on Hasselblad's
    Poisson mixture the run is then the reference's, and fewer passes on the
    Gaussian benchmark cases (benchmarks/bench_acceleration.py). An
    extrapolation with a negative weight is refused (``ValueError``: the jump
    gives way to plain EM).

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
    >>> codec.flatten(mixture).shape  # 1 free weight, 2 x 2 means, 2 x 3 Cholesky entries
    (11,)
    >>> back = codec.unflatten(codec.flatten(mixture), like=mixture)
    >>> bool(np.allclose(back.weights, mixture.weights))
    True
    """

    components: Any

    # ``model`` is a Mixture (any value with ``weights`` and ``components``), not
    # imported: the mixture layer sits above this module.
    def flatten(self, model: Any) -> np.ndarray:
        free = model.weights[:-1].astype(np.float64)  # the last is 1 minus their sum
        return np.concatenate([free, self.components.flatten(model.components)])

    def unflatten(self, vector: np.ndarray, like: Any) -> Any:
        if not np.isfinite(vector).all():
            raise ValueError("extrapolated parameters are not finite")
        n_free = like.weights.shape[0] - 1
        free = vector[:n_free]
        if np.array_equal(free, like.weights[:n_free]):
            weights = like.weights  # unchanged (frozen): bit for bit, not 1 - sum
        else:
            weights = np.append(free, 1.0 - free.sum()).astype(like.weights.dtype)
        if np.any(weights < 0):
            raise ValueError("extrapolated weights leave the simplex (a negative weight)")
        components = self.components.unflatten(vector[n_free:], like.components)
        return replace(like, weights=weights, components=components)


@dataclass(frozen=True)
class _Point:
    """Parameters whose E-step has been run: their statistics and average log-likelihood."""

    model: Any
    stats: Any
    value: float

    @property
    def total(self) -> float:
        """The total log-likelihood (the objective's own scale, as the references use)."""
        return self.value * float(self.stats.n_samples)


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

    def try_evaluate(self, model: Any) -> _Point | None:
        """The point, or None where the parameters cannot be evaluated (no pass is lost
        beyond the one tried): extrapolated parameters may give rows no probability."""
        try:
            point = self.evaluate(model)
        except (ValueError, FloatingPointError):
            return None
        return point if np.isfinite(point.value) else None

    def result(self, model: Any, converged: bool) -> EMResult:
        if self.best is None:
            return EMResult(model=model)
        return EMResult(model=self.best.model, history=self.history,
                        n_iter=len(self.history), converged=converged)


def _m_step(point: _Point) -> Any:
    # Many tiny factorisations: a multi-threaded BLAS only adds wake-up latency
    # (see emkit.core.engine.run_em).
    with single_threaded_blas():
        return point.model.m_step(point.stats)


def _m_step_of_jump(point: _Point | None) -> Any | None:
    """The EM step from an extrapolated point, None if it fails (a collapsed component)."""
    if point is None:
        return None
    try:
        return _m_step(point)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        return None


def _step_length(r: np.ndarray, v: np.ndarray, step_min: float, step_max: float) -> float:
    """SqS3's ``|r| / |v|``, bounded to ``[step_min, step_max]`` (``|v| = 0``: the bound)."""
    r_norm, v_norm = np.linalg.norm(r), np.linalg.norm(v)
    if v_norm == 0:
        return step_max if r_norm > 0 else 1.0
    step = r_norm / v_norm
    return float(np.clip(step, step_min, step_max)) if np.isfinite(step) else 1.0


def _alignment(r1: np.ndarray, r2: np.ndarray) -> float:
    """Cosine of the angle between two successive EM steps (1 where either is zero)."""
    norms = np.linalg.norm(r1) * np.linalg.norm(r2)
    return float(r1 @ r2 / norms) if norms > 0 else 1.0


def _contracting(r1: np.ndarray, r2: np.ndarray) -> bool:
    """Whether two successive EM steps look like a linear contraction: nearly
    aligned, the second shorter (SqS3's step length assumes one)."""
    return (_alignment(r1, r2) >= MIN_ALIGNMENT
            and np.linalg.norm(r2) < MAX_STEP_RATIO * np.linalg.norm(r1))


def _extrapolate(
    codec: Any, models: tuple[Any, Any, Any], max_step: float, min_step: float = STEP_MIN,
    safeguards: bool = True,
) -> tuple[Any | None, float]:
    """The S3 jump from three successive EM iterates, ``None`` if it is not a valid model."""
    theta0, theta1, theta2 = (codec.flatten(m) for m in models)
    r = theta1 - theta0
    v = theta2 - 2 * theta1 + theta0
    step = _step_length(r, v, min_step, max_step)
    if safeguards and not _contracting(r, theta2 - theta1):
        step = 1.0
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
    safeguards: bool = True,
) -> EMResult:
    """EM accelerated by SQUAREM (SqS3), with the reference implementation's rules.

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
    safeguards : bool
        Whether to apply the module's departures from the reference (no jump
        where EM steps turn or grow; the acceptance test on the jump itself).
        Without them the cycles are the reference's ``squarem1``.

    Returns
    -------
    EMResult
        ``model`` holds the best parameters evaluated (so ``lower_bound`` is
        exactly their average log-likelihood, not that of a further M-step,
        which ``reg_covar`` may lower by rounding); ``history[t]`` the best
        average log-likelihood known after ``t + 1`` passes (so it never
        decreases); ``n_iter`` the number of passes.

    Notes
    -----
    One cycle costs three passes, as the reference's three EM evaluations:
    ``theta1``, the extrapolated point, and its EM step (whose pass also
    starts the next cycle, and gives the log-likelihood the reference
    evaluates separately); a jump not kept costs one more, for ``theta2`` (the
    reference's extra objective evaluation). A jump refused at the
    extrapolated point (a safeguard) costs that pass and ``theta2``'s. The
    stopping rule is :func:`~emkit.core.engine.run_em`'s, on the
    log-likelihood; the reference's is on the parameters, ``|F(p) - p| < tol``.
    """
    passes = _Passes(source, max_iter, callback)
    if max_iter <= 0:
        return passes.result(model, False)
    current = passes.evaluate(model)
    converged = abs(current.value - previous_lower_bound) < tol
    step_max = STEP_MAX0
    while not (converged or passes.exhausted):
        first = _m_step(current)
        after_one = passes.evaluate(first)
        converged = abs(after_one.value - current.value) < tol
        if converged or passes.exhausted:
            break
        second = _m_step(after_one)
        with single_threaded_blas():  # tiny factorisations, as in the M-step
            jump, step = _extrapolate(codec, (current.model, first, second), step_max,
                                      safeguards=safeguards)
        if jump is not None and abs(step - 1.0) > NEAR_ONE:
            at_jump = passes.try_evaluate(jump)
            if passes.exhausted:
                break
            if safeguards and at_jump is not None and not _kept(at_jump, after_one):
                at_jump = None  # overshot already: straight to theta2
            jump = _m_step_of_jump(at_jump)  # the stabilising EM step
        landed = passes.try_evaluate(jump) if jump is not None else None
        if landed is not None and _kept(landed, current):
            current = landed
        else:
            if passes.exhausted:
                break
            # Plain EM from theta1; a bound the step reached was too long.
            if step == step_max:
                step_max = max(STEP_MAX0, step_max / MSTEP)
            step = 1.0
            current = passes.evaluate(second)
        if step == step_max:
            step_max *= MSTEP
    return passes.result(model, converged)


def _kept(point: _Point, start: _Point) -> bool:
    """The reference's bounded non-monotone acceptance: at most OBJECTIVE_SLACK lower."""
    return point.total >= start.total - OBJECTIVE_SLACK


def _flat(codec: Any, model: Any) -> np.ndarray:
    with single_threaded_blas():  # tiny factorisations, as in the M-step
        return codec.flatten(model)


def _damping_target(shrink: float) -> float:
    """DAAREM's ``sqrt(delta_k)``: the ratio of the damped to the undamped coefficients' norm."""
    return float(np.exp(-0.5 * np.log1p(DAAREM_ALPHA ** (DAAREM_KAPPA - shrink))))


def _damped_coefficients(F: np.ndarray, f: np.ndarray, shrink: float) -> np.ndarray:
    """Ridge coefficients ``gamma`` of ``f`` on the columns of ``F`` with ``|gamma|`` equal
    to ``sqrt(delta_k)`` times the least-squares ``|gamma|`` (Henderson and Varadhan, 2019).

    The reference finds the ridge penalty by a few safeguarded Newton steps to
    within a band around the target; here it is solved for (Brent's method on
    the decreasing norm), which is the same penalty to more digits.
    """
    u, d, vt = np.linalg.svd(F, full_matrices=False)
    keep = d > d[0] * np.finfo(np.float64).eps * max(F.shape) if d.size and d[0] > 0 else d > 0
    u, d, vt = u[:, keep], d[keep], vt[keep]
    if d.size == 0:
        return np.zeros(F.shape[1])
    uy = u.T @ f
    least_squares_norm = np.sqrt(np.sum((uy / d) ** 2))
    goal = _damping_target(shrink) * least_squares_norm
    if goal == 0:
        return np.zeros(F.shape[1])

    def excess(penalty: float) -> float:
        return float(np.sqrt(np.sum((uy * d / (d**2 + penalty)) ** 2)) - goal)

    # The norm falls from the least-squares one at 0 to below |F^T f| / penalty. Once
    # many proposals were kept the target is 1 to rounding: no damping.
    upper = np.sqrt(np.sum((uy * d) ** 2)) / goal
    if not (np.isfinite(least_squares_norm) and np.isfinite(upper)):
        return np.zeros(F.shape[1])  # no usable extrapolation: the plain EM step
    if excess(0.0) <= 0:
        penalty = 0.0
    elif excess(upper) >= 0:
        penalty = upper
    else:
        penalty = brentq(excess, 0.0, upper, xtol=1e-14 * upper, rtol=1e-12)
    return vt.T @ (d * uy / (d**2 + penalty))


@dataclass
class _AndersonHistory:
    """The last differences of iterates and of their EM steps, restarted every ``order``."""

    order: int
    x_diffs: list[np.ndarray] = field(default_factory=list)
    f_diffs: list[np.ndarray] = field(default_factory=list)

    def add(self, x_diff: np.ndarray, f_diff: np.ndarray) -> None:
        self.x_diffs.append(x_diff)
        self.f_diffs.append(f_diff)

    @property
    def full(self) -> bool:
        return len(self.x_diffs) >= self.order

    def restart(self) -> None:
        self.x_diffs.clear()
        self.f_diffs.clear()

    def proposal(self, x: np.ndarray, f: np.ndarray, shrink: float) -> np.ndarray:
        X, F = np.column_stack(self.x_diffs), np.column_stack(self.f_diffs)
        gamma = _damped_coefficients(F, f, shrink)
        return x - X @ gamma + f - F @ gamma


def daarem(
    model: Any,
    source: Any,
    codec: Any,
    *,
    tol: float,
    max_iter: int,
    previous_lower_bound: float = -np.inf,
    callback: Callback | None = None,
    order: int = DAAREM_ORDER,
) -> EMResult:
    """EM accelerated by DAAREM (damped Anderson acceleration with restarts).

    Parameters and result as for :func:`squarem`; ``order`` is the number of
    past steps the extrapolation uses (the reference's ``order``; at most half
    the number of parameters, rounded up, as there).

    Notes
    -----
    Each iteration costs one pass (the proposal's E-step also gives its EM
    step); a proposal not kept costs one more, for the plain EM step. Converged
    when successive iterates' average log-likelihoods differ by less than
    ``tol`` (the reference's ``convtype = "objfn"``).
    """
    passes = _Passes(source, max_iter, callback)
    if max_iter <= 0:
        return passes.result(model, False)
    old = passes.evaluate(model)
    converged = abs(old.value - previous_lower_bound) < tol
    if converged or passes.exhausted:
        return passes.result(model, converged)
    new = passes.evaluate(_m_step(old))
    converged = abs(new.value - old.value) < tol
    x_old, x_new = _flat(codec, old.model), _flat(codec, new.model)
    f_old = x_new - x_old
    history = _AndersonHistory(max(1, min(order, -(-x_new.size // 2))))
    shrink, cycle_start = 0.0, new.total
    while not (converged or passes.exhausted):
        mapped = _m_step(new)
        f_new = _flat(codec, mapped) - x_new
        history.add(x_new - x_old, f_new - f_old)
        try:
            with single_threaded_blas():  # tiny factorisations, as in the M-step
                proposed = codec.unflatten(history.proposal(x_new, f_new, shrink), like=mapped)
        except ValueError:
            landed = None
        else:
            landed = passes.try_evaluate(proposed)
        if landed is not None and landed.total >= new.total - DAAREM_SLACK:
            shrink += 1
            following = landed
        else:
            if passes.exhausted:
                break
            if landed is None:  # an invalid proposal: the differences restart
                history.restart()
            following = passes.evaluate(mapped)
        if history.full:
            history.restart()
            if following.total < cycle_start - DAAREM_CYCLE_SLACK:
                shrink = max(shrink - history.order, -2 * DAAREM_KAPPA)
            cycle_start = following.total
        converged = abs(following.value - new.value) < tol
        x_old, f_old = x_new, f_new
        x_new, new = _flat(codec, following.model), following
    return passes.result(model, converged)


def accelerated_driver(accelerate: bool | str) -> Callable[..., EMResult] | None:
    """The driver ``accelerate`` names: SQUAREM for True or ``"squarem"``, DAAREM for
    ``"daarem"``, None for False (plain EM)."""
    if accelerate is False or accelerate is None:
        return None
    if accelerate is True or accelerate == "squarem":
        return squarem
    if accelerate == "daarem":
        return daarem
    raise ValueError(
        f"accelerate must be True, False or one of {ACCELERATIONS}, got {accelerate!r}"
    )
