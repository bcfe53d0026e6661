"""Whole EM runs of a Gaussian mixture on small in-memory data, compiled in one loop.

The general engine (:func:`emkit.core.engine.run_em`) E-steps chunks through
kernels, sums statistics objects and builds frozen dataclasses every
iteration: on a few hundred rows that fixed cost (~0.5 ms an iteration) is
nearly all of a fit, and a model selection (14 models x 9 sizes, thousands of
iterations) spends seconds in it. Here one numba function runs the same
iterations (E-step with log-sum-exp, log-likelihood, counts, sums and scatter
matrices around the current means, the model's M-step, the convergence test,
the history) without returning to Python, single-threaded. Its exponentials
are :func:`emkit.core._exp.exp_fast`'s (vectorised, within a few ulps of libm's).

The arithmetic is the general path's, step for step: moments around the
current means (:class:`~emkit.distributions.gaussian.family.GaussianStats`),
``10 * eps`` added to the counts, each covariance structure's M-step
(:mod:`emkit.distributions.gaussian.covariance`) with the constrained models
calling the compiled loops of :mod:`emkit.distributions.gaussian.constrained`,
and the stopping rule ``|L_t - L_{t-1}| < tol``. So the iterations, the
history and the parameters are the general path's to rounding. (Sums over
rows are vectorised, so added in another order.)

With a conjugate prior (:mod:`emkit.distributions.gaussian.prior`) the loop runs
MAP EM: the same E-step, and :func:`_map_m_step`, which is
``map_means_and_covariances`` model by model (its constrained models on this
loop's ML routines, given the augmented counts and scatters). The prior goes in
as one tuple of plain numbers and arrays, empty without a prior, so numba
compiles one specialisation for both.

Anything the loop cannot answer exactly as the general path would (a
covariance that is not positive definite or not finite, a row impossible
under every component) stops it with a failure status: the caller then runs
the general path, which raises or carries on as it always did.

Development note: numba's on-disk cache of these functions is keyed by this
file alone, and they compile in the loops of ``constrained.py`` (and
``core/_exp.py``): after editing either, touch this file (or clear ``__pycache__``), or the cached
loop keeps the old code (``tests/test_small_em.py`` would then fail).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from emkit.core._exp import exp_fast
from emkit.distributions.gaussian import constrained
from emkit.distributions.gaussian.covariance import CovarianceStructure
from emkit.distributions.gaussian.family import Gaussian
from emkit.distributions.gaussian.prior import PriorParameters

# Rows up to which fits take the compiled loop (one thread); larger fits keep the
# general path's chunked E-step on every core.
MAX_ROWS = 20_000

# The M-step each model runs in the compiled loop (E and V are EII's and VII's
# formulas for one feature; scikit-learn's names are the same structures).
_MODEL_CODES = {name: code for code, name in enumerate(constrained.MODEL_NAMES)}
_MODEL_CODES.update({"E": _MODEL_CODES["EII"], "V": _MODEL_CODES["VII"]})
(_EII, _VII, _EEI, _VEI, _EVI, _VVI, _EEE, _VEE, _EVE, _VVE, _EEV, _VEV, _EVV,
 _VVV) = range(14)
# mclust's own M-steps of EVE and VVE (Fortran ``meeve``, ``mevve``), for the start
# that follows its path (``mclust_orientation``): the first orientation turned from the
# identity (not the pooled scatter's axes), and VVE's turned by EVE's objective.
_MCLUST_ORIENTATION_CODES = {"EVE": 14, "VVE": 15}
_EVE_MCLUST, _VVE_MCLUST = 14, 15
# E's MAP M-step (with its scale; EII's has none) where a prior is given. (V's is VII's.)
_E_PRIOR = 16
# mclust's inner tolerance (emControl's tol[2], sqrt(.Machine$double.eps)): the relative
# change of its orientation objective at which its M-step stops.
_MCLUST_INNER_TOL = float(np.sqrt(np.finfo(np.float64).eps))

_LOG_2PI = float(np.log(2.0 * np.pi))
_EPS10 = 10 * float(np.finfo(np.float64).eps)

# Sums may be reassociated (vectorised over rows); never assume values finite.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

# Responsibilities (K n) up to which the E-step's exponentials are one call, not one a
# component (measured: 8% faster on 31 x 3, K = 5; 8% slower on 20 000 x 4, K = 9).
_ONE_EXP_CALL = 16_384

# Failure statuses of the loop (0: finished).
_OK, _NOT_FINITE, _NOT_POSITIVE = 0, 1, 2


@dataclass(frozen=True)
class SmallFit:
    """Outcome of :func:`run_small_em`.

    Attributes
    ----------
    weights : ndarray of shape (K,)
    gaussian : Gaussian
        The components after the last M-step, in the structure's shapes.
    history : ndarray of shape (n_iter,)
        Average log-likelihood of the parameters going into each iteration.
    n_iter : int
    converged : bool
    """

    weights: np.ndarray
    gaussian: Gaussian
    history: np.ndarray
    n_iter: int
    converged: bool


def applies(structure: CovarianceStructure, X: np.ndarray) -> bool:
    """Whether the compiled loop covers ``structure`` and rows ``X`` (float64, complete).

    mclust's univariate E and V with more than one feature are refused by the
    general path's M-step, with its message.
    """
    return (
        isinstance(X, np.ndarray)
        and covers(structure, X.shape[-1])
        and X.dtype == np.float64
        and X.ndim == 2
        and 1 <= X.shape[0] <= MAX_ROWS
        and bool(np.isfinite(X.sum()))
    )


@dataclass(frozen=True)
class DenseFit:
    """Outcome of :func:`run_dense`: the parameters as the loop holds them.

    Attributes
    ----------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    covariances, precisions_cholesky : ndarray of shape (K, D, D)
        Whatever the model (a model selection scores and restarts from these
        without converting them).
    history : ndarray of shape (n_iter,)
    n_iter : int
    converged : bool
    log_likelihood, entropy : float
        Of the final parameters (:func:`final_scores`), where asked for; else NaN.
    collapsed : ndarray of shape (K,) or None
        :func:`collapsed_components` of the final parameters, where scores and
        ``stop_collapsed`` were asked for (the same test); else None.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    history: np.ndarray
    n_iter: int
    converged: bool
    log_likelihood: float = np.nan
    entropy: float = np.nan
    collapsed: np.ndarray | None = None


def covers(structure: CovarianceStructure, n_features: int) -> bool:
    """Whether the compiled loop has ``structure``'s M-step for ``n_features`` features."""
    return structure.model in _MODEL_CODES and (
        structure.model not in constrained.UNIVARIATE_NAMES or n_features == 1)


def run_small_em(
    X: np.ndarray, weights: np.ndarray, gaussian: Gaussian, *, tol: float, max_iter: int,
    stop_collapsed: tuple[int, float, float] | None = None,
    noise_log_density: float | None = None,
) -> SmallFit | None:
    """EM from ``weights`` and ``gaussian`` to convergence; None where the loop gave up.

    ``gaussian`` is the start (its ``precisions_cholesky`` give the first
    E-step, as in the general path; its ``prior``, if any, makes the run MAP
    EM); without frozen parameters. ``stop_collapsed``, ``noise_log_density``:
    as for :func:`run_dense`.
    """
    structure = gaussian.structure
    k, d = gaussian.means.shape
    fit = run_dense(_c_array(X), weights, gaussian.means,
                    _dense(structure, gaussian.covariances, k, d),
                    _dense(structure, gaussian.precisions_cholesky, k, d), structure.model,
                    gaussian.reg_covar, tol=tol, max_iter=max_iter,
                    stop_collapsed=stop_collapsed, noise_log_density=noise_log_density,
                    prior=gaussian.prior)
    if fit is None:
        return None
    # The factors the loop checked (LAPACK's to rounding; no scipy call, whose
    # checks and thread pool cost more than this whole fit on small data).
    fitted = Gaussian(structure=structure, means=fit.means,
                      covariances=in_structure_shape(structure, fit.covariances),
                      precisions_cholesky=in_structure_shape(structure, fit.precisions_cholesky),
                      reg_covar=gaussian.reg_covar, prior=gaussian.prior)
    return SmallFit(weights=fit.weights, gaussian=fitted, history=fit.history,
                    n_iter=fit.n_iter, converged=fit.converged)


def run_dense(
    X: np.ndarray, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray,
    precisions_cholesky: np.ndarray, model: str, reg_covar: float, *, tol: float,
    max_iter: int, scores: bool = False, mclust_orientation: bool = False,
    stop_collapsed: tuple[int, float, float] | None = None,
    noise_log_density: float | None = None,
    prior: PriorParameters | None = None,
) -> DenseFit | None:
    """:func:`run_small_em` on (K, D, D) matrices, for mclust's ``model`` name.

    ``X`` must be a C-contiguous float64 array that :func:`applies` accepted.
    ``scores``: also the final parameters' log-likelihood and entropy (one more
    E-step). ``mclust_orientation`` (EVE and VVE): mclust's M-step rather than
    the exact one (see :func:`start_dense`). ``stop_collapsed``: ``(layout,
    factor, relative)`` of :func:`collapsed_components`, tested after every
    M-step that did not converge; the run ends there, unconverged, once a
    component is collapsed (as the general engine's ``stop_when``).
    ``noise_log_density``: a uniform noise component of this log density
    (``-log V``), ``weights`` then K + 1 long, the noise's last (as
    :class:`~emkit.distributions.gaussian.noise.NoisyGaussian`'s mixtures); the
    scores are then over the K + 1 columns. ``prior``: the resolved conjugate
    prior (MAP EM, as the engine's with ``Gaussian.prior``), or None. None where
    the loop gave up.
    """
    log_noise = 0.0 if noise_log_density is None else float(noise_log_density)
    code, arguments = _prior_arguments(prior, model, mclust_orientation, means.shape)
    try:
        status, n_iter, converged, history, w, new_means, cov, prec = _em_loop(
            X, _c_array(weights), _c_array(means), _c_array(covariances),
            _c_array(precisions_cholesky), code, float(reg_covar),
            float(tol), int(max_iter), constrained.INNER_TOL, constrained.INNER_MAX_ITER,
            # With a prior every M-step's orientation starts cold (as the engine's).
            constrained.WARM_INNER_MAX_ITER if prior is None
            else constrained.ORIENTATION_MAX_SWEEPS,
            *(stop_collapsed if stop_collapsed is not None else (-1, 0.0, 0.0)), log_noise,
            arguments,
        )
    except ZeroDivisionError:  # a singular scatter (reg_covar=0): the general path says so
        return None
    if status != _OK:
        return None
    log_lik, entropy, collapsed = np.nan, np.nan, None
    if scores and stop_collapsed is not None:  # one compiled call for what scoring reads
        log_lik, entropy, collapsed = _scores_and_collapsed(X, w, new_means, cov, prec,
                                                            *stop_collapsed, float(reg_covar),
                                                            log_noise)
    elif scores:
        log_lik, entropy = _scores(X, w, new_means, prec, log_noise)
    return DenseFit(weights=w, means=new_means, covariances=cov, precisions_cholesky=prec,
                    history=history[:n_iter], n_iter=int(n_iter), converged=bool(converged),
                    log_likelihood=float(log_lik), entropy=float(entropy), collapsed=collapsed)


def start_dense(model: str, X: np.ndarray, resp: np.ndarray, reg_covar: float,
                mclust_orientation: bool = False,
                prior: PriorParameters | None = None) -> tuple[np.ndarray, ...] | None:
    """:func:`start_from_resp` as (K, D, D) matrices: ``(means, covariances, factors)``.

    ``mclust_orientation`` (EVE and VVE): mclust's M-step (``meeve``, ``mevve``)
    rather than the exact one. Its orientation starts from the identity in the
    first M-step (the exact one from the pooled scatter's eigenvectors: where
    the orientation's objective has several minima, the two can reach different
    ones), and VVE's is turned by EVE's objective (mclust's majorisation steps
    weigh every component alike, the exact step each by its inverse volume);
    volumes and shapes are the model's, given the orientation. Not an M-step of
    VVE's likelihood, but the path of mclust's fits. ``prior``: the posterior
    mode (``gaussian_from_resp`` with a prior), or None.
    """
    code, arguments = _prior_arguments(prior, model, mclust_orientation,
                                       (resp.shape[1], X.shape[1]))
    try:
        status, means, cov, prec = _start(
            X, _c_array(resp), code, float(reg_covar),
            constrained.INNER_TOL, constrained.INNER_MAX_ITER,
            constrained.ORIENTATION_MAX_SWEEPS, arguments,
        )
    except ZeroDivisionError:  # a singular scatter (reg_covar=0): the general path says so
        return None
    return None if status != _OK else (means, cov, prec)


# The loop's prior argument without a prior: the same types as with one (numba compiles
# one specialisation), never read.
_NO_PRIOR = (False, 0.0, np.zeros(0), 0.0, 0.0, np.zeros((0, 0)))
# A single Gaussian's MAP fit with a prior (mclustBIC's mvn): its kind's, by layout.
_SINGLE_GAUSSIAN = {**dict.fromkeys(("EII", "VII", "E", "V"), "VII"),
                    **dict.fromkeys(("EEI", "VEI", "EVI", "VVI"), "VVI"), "EEE": "EEE"}


def _prior_arguments(prior: PriorParameters | None, model: str, mclust_orientation: bool,
                     shape: tuple[int, int]) -> tuple[int, tuple]:
    """The loop's model code and prior tuple ``(on, shrinkage, mean, dof, scale, scale
    matrix)`` for ``prior`` (None: maximum likelihood, the code unchanged)."""
    if prior is None:
        return _code(model, mclust_orientation), _NO_PRIOR
    k = shape[0]
    if prior.single_gaussian and k == 1:
        model, mclust_orientation = _SINGLE_GAUSSIAN.get(model, "VVV"), False
    code = _E_PRIOR if model == "E" else _code(model, mclust_orientation)
    if np.ndim(prior.scale) == 0:
        scale, matrix = float(prior.scale), np.zeros((0, 0))
    else:
        scale, matrix = 0.0, _c_array(prior.scale)
    return code, (True, float(prior.shrinkage), _c_array(prior.mean), float(prior.dof), scale,
                  matrix)


def _code(model: str, mclust_orientation: bool) -> int:
    if not mclust_orientation:
        return _MODEL_CODES[model]
    if model not in _MCLUST_ORIENTATION_CODES:
        raise ValueError(f"mclust_orientation is for EVE and VVE, not {model!r}")
    return _MCLUST_ORIENTATION_CODES[model]


def start_from_resp(structure: CovarianceStructure, X: np.ndarray, resp: np.ndarray,
                    reg_covar: float, prior: PriorParameters | None = None) -> Gaussian | None:
    """:func:`~emkit.distributions.gaussian.family.gaussian_from_resp` by the compiled M-step.

    The start's components from responsibilities (means, then moments around
    them, then the model's M-step), as the general path computes them; None
    where a covariance is not finite or not positive definite (the general
    path then raises its error). With a ``prior``, its posterior mode.
    """
    start = start_dense(structure.model, _c_array(X), resp, reg_covar, prior=prior)
    if start is None:
        return None
    means, cov, prec = start
    return Gaussian(structure=structure, means=means,
                    covariances=in_structure_shape(structure, cov),
                    precisions_cholesky=in_structure_shape(structure, prec),
                    reg_covar=reg_covar, prior=prior)


def final_scores(X: np.ndarray, weights: np.ndarray, means: np.ndarray,
                 precisions_cholesky: np.ndarray,
                 structure: CovarianceStructure,
                 noise_log_density: float | None = None) -> tuple[float, float]:
    """Total log-likelihood of ``X`` and the entropy ``-sum r log r`` of its responsibilities.

    One compiled E-step of the mixture (what ``score``, ``bic`` and
    ``predict_proba`` would each compute again); NaN where a row's density is
    not finite. ``noise_log_density``: as for :func:`run_dense` (``weights``
    then K + 1 long, the noise's last).
    """
    k, d = means.shape
    prec = _dense(structure, precisions_cholesky, k, d)
    log_noise = 0.0 if noise_log_density is None else float(noise_log_density)
    return _scores(_c_array(X), _c_array(weights), _c_array(means), prec, log_noise)


def collapse_bounds(weights: np.ndarray, means: np.ndarray, covariances: np.ndarray,
                    precisions_cholesky: np.ndarray) -> tuple[float, float]:
    """A lower bound on every component's smallest variance, and the mixture's total variance.

    ``min_k 1 / |P_k|_F^2`` (``P_k`` the precision factor: ``|P_k|_F^2 =
    tr(S_k^-1)``, at least the inverse of ``S_k``'s smallest eigenvalue) and
    ``sum_k w_k (tr S_k + |mu_k - mu|^2)`` (at least the mixture's variance
    along any axis), for :func:`~emkit.estimators.gaussian_mixture.clearly_not_collapsed`.
    Arrays as :func:`run_dense` holds them.
    """
    return _collapse_bounds(_c_array(weights), _c_array(means), _c_array(covariances),
                            _c_array(precisions_cholesky))


# Layouts of collapsed_components: a full (or tied) matrix, a diagonal, one variance.
FULL_LAYOUT, DIAG_LAYOUT, SPHERICAL_LAYOUT = 0, 1, 2


def collapsed_components(weights: np.ndarray, means: np.ndarray, covariances: np.ndarray,
                         precisions_cholesky: np.ndarray, layout: int, reg_covar: float,
                         factor: float, relative: float) -> np.ndarray:
    """Which components have a variance at the floor (bool, (K,)), in one compiled call.

    ``degenerate_components``' collapse test of
    :mod:`emkit.estimators.gaussian_mixture` on the loop's arrays: a component
    is collapsed where, along one of its principal axes, its variance is at most
    ``max(factor * reg_covar, 1e-12 * the data's)`` and at most ``relative`` times
    the data's (the mixture's total covariance along that axis). Principal axes
    per ``layout``: eigenvectors (``FULL_LAYOUT``), the features (``DIAG_LAYOUT``),
    or one variance against the data's mean variance (``SPHERICAL_LAYOUT``).
    :func:`collapse_bounds` settles it without eigenvalues where it can.
    """
    return _collapsed(_c_array(weights), _c_array(means), _c_array(covariances),
                      _c_array(precisions_cholesky), layout, float(reg_covar), float(factor),
                      float(relative))


@numba.njit(cache=True, nogil=True)
def _collapsed(weights, means, cov, prec, layout, reg_covar, factor,
               relative):  # pragma: no cover
    K, d = means.shape
    out = np.zeros(K, dtype=np.bool_)
    if _clearly_apart(weights, means, cov, prec, reg_covar, factor):
        return out
    # The mixture's total covariance: within-component plus between-means.
    centre = np.zeros(d)
    for k in range(K):
        for a in range(d):
            centre[a] += weights[k] * means[k, a]
    total = np.zeros((d, d))
    for k in range(K):
        for a in range(d):
            for b in range(d):
                total[a, b] += weights[k] * (cov[k, a, b] + (means[k, a] - centre[a])
                                             * (means[k, b] - centre[b]))
    mean_variance = 0.0
    for a in range(d):
        mean_variance += total[a, a] / d
    values = np.empty(d)
    vectors = np.empty((d, d))
    work = np.empty((d, d))
    for k in range(K):
        if layout == FULL_LAYOUT:
            _jacobi_eigen(cov[k], values, vectors, work)
        for j in range(d if layout != SPHERICAL_LAYOUT else 1):
            if layout == FULL_LAYOUT:
                own = values[j]
                data = 0.0
                for a in range(d):
                    for b in range(d):
                        data += vectors[a, j] * total[a, b] * vectors[b, j]
            elif layout == DIAG_LAYOUT:
                own, data = cov[k, j, j], total[j, j]
            else:
                own, data = cov[k, 0, 0], mean_variance
            if own <= max(factor * reg_covar, 1e-12 * data) and own <= relative * data:
                out[k] = True
    return out


@numba.njit(cache=True, nogil=True)
def _clearly_apart(weights, means, cov, prec, reg_covar, factor):  # pragma: no cover
    """Whether :func:`_collapse_bounds` alone shows that no component is collapsed."""
    smallest, spread = _collapse_bounds(weights, means, cov, prec)
    return np.isfinite(spread) and smallest > max(factor * reg_covar, 1e-12 * spread)


@numba.njit(cache=True, nogil=True)
def _jacobi_eigen(matrix, values, vectors, work):  # pragma: no cover
    """Eigenvalues and eigenvectors (columns) of a small symmetric matrix, in any order.

    Cyclic Jacobi rotations until the off-diagonal part is below rounding: on the few
    features of small data a tenth of the time of LAPACK's call from compiled code
    (its copies and workspace queries), and as accurate.
    """
    d = matrix.shape[0]
    scale = 0.0
    for a in range(d):
        for b in range(d):
            work[a, b] = matrix[a, b]
            vectors[a, b] = 1.0 if a == b else 0.0
            scale += matrix[a, b] * matrix[a, b]
    _jacobi_sweeps(work, vectors, scale)
    for a in range(d):
        values[a] = work[a, a]


@numba.njit(cache=True, nogil=True)
def _jacobi_eigen_from(matrix, values, vectors, work, turned):  # pragma: no cover
    """:func:`_jacobi_eigen` begun from the basis in ``vectors`` (columns), not the axes.

    EM's scatters change little from one iteration to the next, so in the last
    eigenvectors ``V`` the matrix ``V^T M V`` is nearly diagonal and its rotations
    converge in two or three sweeps instead of five to seven (d = 6). ``V`` is made
    orthonormal first (modified Gram-Schmidt), so rounding does not accumulate over
    the iterations. ``turned`` (D, D) scratch.
    """
    d = matrix.shape[0]
    for j in range(d):
        for i in range(j):
            dot = 0.0
            for a in range(d):
                dot += vectors[a, i] * vectors[a, j]
            for a in range(d):
                vectors[a, j] -= dot * vectors[a, i]
        norm = 0.0
        for a in range(d):
            norm += vectors[a, j] * vectors[a, j]
        norm = np.sqrt(norm)
        if not norm > 0.5:  # not a basis (cannot happen from eigenvectors): start afresh
            _jacobi_eigen(matrix, values, vectors, work)
            return
        for a in range(d):
            vectors[a, j] /= norm
    scale = 0.0
    for a in range(d):
        for b in range(d):
            scale += matrix[a, b] * matrix[a, b]
    # V^T M V, as the orientation sweeps turn their scatters.
    constrained._turn_scatters(matrix.reshape((1, d, d)), vectors, work.reshape((1, d, d)),
                               turned)
    _jacobi_sweeps(work, vectors, scale)
    for a in range(d):
        values[a] = work[a, a]


@numba.njit(cache=True, nogil=True)
def _jacobi_sweeps(work, vectors, scale):  # pragma: no cover
    """Cyclic Jacobi rotations of symmetric ``work`` (accumulated into ``vectors``'
    columns) until its off-diagonal part is below rounding of ``scale`` (its squared norm)."""
    d = work.shape[0]
    for _ in range(64):
        off = 0.0
        for a in range(d):
            for b in range(a + 1, d):
                off += work[a, b] * work[a, b]
        if not off > 1e-34 * scale:  # (eps^2 of the norm), or NaN
            break
        for p in range(d - 1):
            for q in range(p + 1, d):
                apq = work[p, q]
                if apq == 0.0:
                    continue
                theta = (work[q, q] - work[p, p]) / (2.0 * apq)
                t = 1.0 / (abs(theta) + np.sqrt(theta * theta + 1.0))
                if theta < 0.0:
                    t = -t
                c = 1.0 / np.sqrt(t * t + 1.0)
                s = t * c
                for m in range(d):
                    x, y = work[m, p], work[m, q]
                    work[m, p], work[m, q] = c * x - s * y, s * x + c * y
                for m in range(d):
                    x, y = work[p, m], work[q, m]
                    work[p, m], work[q, m] = c * x - s * y, s * x + c * y
                for m in range(d):
                    x, y = vectors[m, p], vectors[m, q]
                    vectors[m, p], vectors[m, q] = c * x - s * y, s * x + c * y


@numba.njit(cache=True, nogil=True)
def _collapse_bounds(weights, means, cov, prec):  # pragma: no cover
    K, d = means.shape
    centre = np.zeros(d)
    for k in range(K):
        for a in range(d):
            centre[a] += weights[k] * means[k, a]
    smallest = np.inf
    total = 0.0
    for k in range(K):
        squares = 0.0
        for a in range(d):
            for b in range(d):
                squares += prec[k, a, b] * prec[k, a, b]
        smallest = min(smallest, 1.0 / squares)
        spread = 0.0
        for a in range(d):
            spread += cov[k, a, a] + (means[k, a] - centre[a]) ** 2
        total += weights[k] * spread
    return smallest, total


def _c_array(values: np.ndarray) -> np.ndarray:
    """A writeable C-contiguous float64 array (a copy only where ``values`` is not one)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    return values if values.flags.writeable else values.copy()


def _dense(structure: CovarianceStructure, values: np.ndarray, k: int, d: int) -> np.ndarray:
    """(K, D, D) matrices as a writeable C array: the compiled loop's one signature
    (a read-only broadcast, as a tied structure gives, would load another)."""
    return np.array(structure.dense(values, k, d), dtype=np.float64, order="C")


def in_structure_shape(structure: CovarianceStructure, dense: np.ndarray) -> np.ndarray:
    """Dense (K, D, D) covariances as the structure stores them."""
    if structure.name == "full":
        return dense
    if structure.name == "tied":
        return dense[0].copy()
    diagonals = np.diagonal(dense, axis1=1, axis2=2)
    return diagonals[:, 0].copy() if structure.name == "spherical" else diagonals.copy()


# ---------------------------------------------------------------------------
# The compiled loop.


@numba.njit(cache=True, nogil=True)
def _em_loop(X, weights, means, cov, prec, model, reg_covar, tol, max_iter,
             inner_tol, inner_max_iter, warm_max_iter, stop_layout, stop_factor,
             stop_relative, log_noise, prior):  # pragma: no cover
    """The general engine's ``_em_loop`` for one Gaussian mixture, compiled.

    ``cov`` and ``prec`` (upper-triangular precision Cholesky factors) are
    dense (K, D, D) whatever the model. With a noise component ``weights`` has
    K + 1 entries, the noise's last, of log density ``log_noise`` (``-log V``;
    ignored without one). ``prior``: :func:`_prior_arguments`' tuple (its flag
    off: maximum likelihood). Returns ``(status, n_iter, converged, history,
    weights, means, covariances, precision factors)``.
    """
    n, d = X.shape
    K = means.shape[0]
    weights = weights.copy()
    means = means.copy()
    cov = cov.copy()
    prec = prec.copy()
    history = np.empty(max_iter)
    log_det = np.empty(K)
    counts = np.empty(weights.shape[0])  # (the noise's count last)
    first = np.empty((K, d))
    second = np.empty((K, d, d))
    Xt = np.ascontiguousarray(X.T)  # feature-major: the E-step's loops run over rows
    work = np.empty(_e_step_scratch(weights.shape[0], d, n))
    ws = _workspace(K, d)
    lower = ws[8]
    for k in range(K):
        total = 0.0
        for a in range(d):
            total += np.log(prec[k, a, a])
        log_det[k] = total
    lower_bound = -np.inf
    n_iter = 0
    converged = False
    for iteration in range(1, max_iter + 1):
        log_lik, _ = _e_step(Xt, weights, means, prec, log_det, counts, first, second,
                             work, False, log_noise)
        if not np.isfinite(log_lik):
            return _NOT_FINITE, n_iter, converged, history, weights, means, cov, prec
        # From the second M-step on, EVE's and VVE's orientation is the last one's.
        if prior[0]:
            # The engine's MAP M-step has no previous covariances: EVE's and VVE's
            # orientation starts cold every time (``warm_max_iter`` carries its sweeps).
            status = _map_m_step(counts, first, second, weights, means, cov, model,
                                 reg_covar, inner_tol, inner_max_iter, warm_max_iter, ws,
                                 prior)
        else:
            status = _m_step(counts, first, second, weights, means, cov, model, reg_covar,
                             inner_tol, inner_max_iter, warm_max_iter, False, iteration > 1,
                             ws)
        if weights.shape[0] > K:
            _noise_weights(counts, weights)
        if status != _OK:
            return status, n_iter, converged, history, weights, means, cov, prec
        if not _precisions(cov, prec, log_det, lower):
            return _NOT_POSITIVE, n_iter, converged, history, weights, means, cov, prec
        previous = lower_bound
        lower_bound = log_lik / n
        history[iteration - 1] = lower_bound
        n_iter = iteration
        if abs(lower_bound - previous) < tol:
            converged = True
            break
        # (Negative: no test.) The bounds of _collapsed settle it in O(K D^2) but near a
        # collapse, so the test costs little next to an iteration; they are checked here
        # first, sparing _collapsed's array where they settle it.
        if (stop_layout >= 0
                and not _clearly_apart(weights, means, cov, prec, reg_covar, stop_factor)
                and _collapsed(weights, means, cov, prec, stop_layout, reg_covar, stop_factor,
                               stop_relative).any()):
            break
    return _OK, n_iter, converged, history, weights, means, cov, prec


@numba.njit(cache=True, nogil=True)
def _start(X, resp, model, reg_covar, inner_tol, inner_max_iter,
           orientation_sweeps, prior):  # pragma: no cover
    """``(status, means, covariances, precision factors)`` of a start from ``resp``.

    As ``gaussian_from_resp``: means ``resp^T X / (counts + 10 eps)``, sums
    around them (``first = resp^T X - counts * means``, as ``direct_stats``),
    then the M-step without previous covariances.
    """
    n, d = X.shape
    K = resp.shape[1]
    counts = np.zeros(K)
    sums = np.zeros((K, d))
    for i in range(n):
        for k in range(K):
            r = resp[i, k]
            counts[k] += r
            for a in range(d):
                sums[k, a] += r * X[i, a]
    means = np.empty((K, d))
    first = np.empty((K, d))
    for k in range(K):
        # The rows' own weighted means (the guard only for an empty component), as
        # gaussian_from_resp: a component of one row then has a scatter of exactly zero.
        divisor = counts[k] if counts[k] > 0.0 else _EPS10
        for a in range(d):
            means[k, a] = sums[k, a] / divisor
            first[k, a] = sums[k, a] - counts[k] * means[k, a]
    second = np.zeros((K, d, d))
    centred = np.empty(d)
    for k in range(K):
        for i in range(n):
            r = resp[i, k]
            if r == 0.0:
                continue
            for a in range(d):
                centred[a] = X[i, a] - means[k, a]
            for a in range(d):
                for b in range(a, d):
                    second[k, a, b] += r * centred[a] * centred[b]
        for a in range(d):
            for b in range(a + 1, d):
                second[k, b, a] = second[k, a, b]
    cov = np.zeros((K, d, d))
    prec = np.zeros((K, d, d))
    ws = _workspace(K, d)
    if prior[0]:
        status = _map_m_step(counts, first, second, np.empty(K), means, cov, model,
                             reg_covar, inner_tol, inner_max_iter, orientation_sweeps, ws,
                             prior)
    else:
        status = _m_step(counts, first, second, np.empty(K), means, cov, model, reg_covar,
                         inner_tol, inner_max_iter, orientation_sweeps, True, False, ws)
    if status == _OK and not _precisions(cov, prec, np.empty(K), ws[8]):
        status = _NOT_POSITIVE
    return status, means, cov, prec


@numba.njit(cache=True, nogil=True)
def _scores(X, weights, means, prec, log_noise):  # pragma: no cover
    K, d = means.shape
    log_det = np.empty(K)
    for k in range(K):
        total = 0.0
        for a in range(d):
            total += np.log(prec[k, a, a])
        log_det[k] = total
    n = X.shape[0]
    J = weights.shape[0]  # K, or K + 1 with a noise component
    return _e_step(np.ascontiguousarray(X.T), weights, means, prec, log_det, np.empty(J),
                   np.empty((K, d)), np.empty((K, d, d)), np.empty(_e_step_scratch(J, d, n)), True,
                   log_noise)


@numba.njit(cache=True, nogil=True)
def _scores_and_collapsed(X, weights, means, cov, prec, layout, factor, relative,
                          reg_covar, log_noise):  # pragma: no cover
    log_lik, entropy = _scores(X, weights, means, prec, log_noise)
    return log_lik, entropy, _collapsed(weights, means, cov, prec, layout, reg_covar, factor,
                                        relative)


@numba.njit(cache=True, nogil=True)
def _e_step_scratch(K, d, n):  # pragma: no cover
    """The floats :func:`_e_step`'s ``scratch`` holds: (K + 4 + D) rows of ``n``, then
    the shifted log-densities and twice as many for the exponential (of every component
    at once where ``K n <= _ONE_EXP_CALL``, else of one)."""
    shifted = K * n if K * n <= _ONE_EXP_CALL else n
    return (K + 4 + d) * n + 3 * shifted


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _e_step(Xt, weights, means, prec, log_det, counts, first, second, scratch,
            with_entropy, log_noise):  # pragma: no cover
    """Sums of one soft E-step of rows ``Xt`` (D, n), moments around ``means``.

    Returns ``(log-likelihood, entropy)``; the log-likelihood is NaN when a
    row's density is not finite under every component (the general path then
    decides what that means). Component by component, every loop runs over
    the rows (contiguous, so they vectorise); ``scratch`` is
    :func:`_e_step_scratch` floats (rows of the responsibilities and sums, the
    shifted log-densities, then the exponential's).

    With a noise component (``weights`` of K + 1 entries, ``scratch`` of
    ``_e_step_scratch(K + 1, ...)``) its column of log density ``log_noise`` is
    the last of the responsibilities, the log-likelihood's and the entropy's,
    its count ``counts[K]``; the moments are the Gaussian components'.
    """
    d, n = Xt.shape
    K = means.shape[0]
    J = weights.shape[0]  # columns: K, or K + 1 with the noise last
    rows = (J + 4 + d) * n
    size = J * n if J * n <= _ONE_EXP_CALL else n
    shifted = scratch[rows:rows + size]
    exp_scratch = scratch[rows + size:rows + 3 * size]
    work = scratch[:rows].reshape((J + 4 + d, n))
    log_weights = np.log(weights)
    constant = 0.5 * d * _LOG_2PI
    resp = work[:J]
    largest = work[J]
    total = work[J + 1]
    y = work[J + 2]
    weighted = work[J + 3]
    centred = work[J + 4:]
    for k in range(K):
        for a in range(d):
            mean = means[k, a]
            for i in range(n):
                centred[a, i] = Xt[a, i] - mean
        # The squared norms of P_k^T (x - mu_k), a column j of P at a time (P upper
        # triangular). Each sum starts at its first term, not at zero (the same
        # numbers, with fewer loops: on tens of rows loops, not flops, cost the time).
        row = resp[k]
        for j in range(d):
            p = prec[k, 0, j]
            for i in range(n):
                y[i] = centred[0, i] * p
            for a in range(1, j + 1):
                p = prec[k, a, j]
                for i in range(n):
                    y[i] += centred[a, i] * p
            if j == 0:
                for i in range(n):
                    row[i] = y[i] * y[i]
            else:
                for i in range(n):
                    row[i] += y[i] * y[i]
        offset = log_weights[k] - constant + log_det[k]
        for i in range(n):
            row[i] = offset - 0.5 * row[i]
    if J > K:
        resp[K, :] = log_weights[K] + log_noise
    for i in range(n):
        largest[i] = resp[0, i]
    for k in range(1, J):
        for i in range(n):
            if resp[k, i] > largest[i]:
                largest[i] = resp[k, i]
    for i in range(n):
        if not np.isfinite(largest[i]):
            return np.nan, np.nan
        total[i] = 0.0
    # Into other rows: in place, the compiled loops' overlap check fails and they run
    # unvectorised (measured 2.5x slower).
    if J * n <= _ONE_EXP_CALL:
        # One call for every component: on tens of rows its loops' set-up is the cost.
        for k in range(J):
            row = resp[k]
            for i in range(n):
                shifted[k * n + i] = row[i] - largest[i]
        exp_fast(shifted, work[:J].reshape(J * n), exp_scratch)
    else:  # a component at a time, its rows in cache
        for k in range(J):
            row = resp[k]
            for i in range(n):
                shifted[i] = row[i] - largest[i]
            exp_fast(shifted, row, exp_scratch)
    for k in range(J):
        row = resp[k]
        for i in range(n):
            total[i] += row[i]
    log_lik = 0.0
    for i in range(n):
        log_lik += largest[i] + np.log(total[i])
        total[i] = 1.0 / total[i]
    entropy = 0.0
    for k in range(J):
        row = resp[k]
        count = 0.0
        for i in range(n):
            row[i] *= total[i]
            count += row[i]
        counts[k] = count
        if with_entropy:
            for i in range(n):
                if row[i] > 0.0:
                    entropy -= row[i] * np.log(row[i])
        if k == K:  # the noise: no moments
            break
        for a in range(d):
            mean = means[k, a]
            for i in range(n):
                centred[a, i] = Xt[a, i] - mean
        for a in range(d):
            moment = 0.0
            for i in range(n):
                weighted[i] = row[i] * centred[a, i]
                moment += weighted[i]
            first[k, a] = moment
            for b in range(a, d):
                moment = 0.0
                for i in range(n):
                    moment += weighted[i] * centred[b, i]
                second[k, a, b] = moment
                second[k, b, a] = moment
    return log_lik, entropy


@numba.njit(cache=True, nogil=True)
def _noise_weights(counts, weights):  # pragma: no cover
    """The weights of K Gaussian components and the noise (``counts`` of K + 1), in place.

    As the engine's M-step: every count plus 10 eps, over their sum (the noise's
    included, where :func:`_m_step` divides the Gaussian ones by theirs alone).
    """
    total = 0.0
    for k in range(counts.shape[0]):
        total += counts[k] + _EPS10
    for k in range(counts.shape[0]):
        weights[k] = (counts[k] + _EPS10) / total


@numba.njit(cache=True, nogil=True)
def _workspace(K, d):  # pragma: no cover
    """The arrays an M-step works in, allocated once per EM run (see :func:`_m_step`).

    On tiny data (tens of rows) an iteration is a few microseconds, and a dozen
    allocations in it were a good part of that.
    """
    return (np.empty(K),  # c: counts + 10 eps
            np.empty((K, d)),  # offsets: the means' shifts
            np.empty((K, d, d)),  # W: scatters around the new means
            np.empty((K, d)),  # values: diagonals, eigenvalues
            np.empty((K, d, d)),  # vectors: eigenvectors; EVE's and VVE's B_k
            np.empty((d, d)),  # orientation: EVE's and VVE's D, kept between M-steps
            np.empty((K, d)),  # variances: EVE's and VVE's diag(A_k), kept likewise
            np.empty((d, d)),  # work
            np.empty((d, d)),  # lower: Cholesky factors
            np.empty((6, K)),  # state: orientation sweeps
            np.empty(K))  # per_k: log counts (sweeps), scales (EVI, EVV)


@numba.njit(cache=True, nogil=True)
def _m_step(counts, first, second, weights, means, cov, model, reg_covar, inner_tol,
            inner_max_iter, warm_max_iter, cold, carried, ws):  # pragma: no cover
    """New weights, means and (dense) covariances in place; a status.

    Each model's formulas are those of its structure in
    :mod:`emkit.distributions.gaussian.covariance` (``covariances`` and
    ``covariances_after``), in the same order of operations where it matters.
    ``cold``: no covariances before this M-step (a start), so EVE's and VVE's
    orientation iterations start from the pooled scatter and run to convergence.
    ``carried``: the last M-step was this one's (EVE, VVE), so its orientation
    and variances are in ``ws`` (:func:`_workspace`): the start of this one's
    orientation sweeps is taken from them, not from the covariances' eigenvectors.
    """
    K, d = first.shape
    c, offsets, W, values, vectors, orientation, variances, work, _, _, per_k = ws
    shared = (model == _EVE or model == _VVE or model == _EVE_MCLUST
              or model == _VVE_MCLUST)
    if shared and not cold:
        # The orientation of the covariances going in (before they are overwritten).
        if carried:
            _carried_orientation(orientation, variances, work)
        else:
            _warm_orientation(cov, orientation)
    total = _weights_and_offsets(counts, first, weights, c, offsets)
    for k in range(K):
        for a in range(d):
            means[k, a] += offsets[k, a]
    cov[:] = 0.0
    if model == _VVV:
        for k in range(K):
            for a in range(d):
                for b in range(d):
                    cov[k, a, b] = second[k, a, b] / c[k] - offsets[k, a] * offsets[k, b]
                cov[k, a, a] += reg_covar
    elif model == _EEE:
        for a in range(d):
            for b in range(d):
                scatter = 0.0
                between = 0.0
                for k in range(K):
                    scatter += second[k, a, b]
                    between += offsets[k, a] * c[k] * offsets[k, b]
                work[a, b] = (scatter - between) / total
            work[a, a] += reg_covar
        for k in range(K):
            cov[k] = work
    elif model == _VVI:
        for k in range(K):
            for a in range(d):
                cov[k, a, a] = second[k, a, a] / c[k] - offsets[k, a] ** 2 + reg_covar
    elif model == _VII:
        for k in range(K):
            trace = 0.0
            squares = 0.0
            for a in range(d):
                trace += second[k, a, a]
                squares += offsets[k, a] ** 2
            value = (trace / c[k] - squares) / d + reg_covar
            for a in range(d):
                cov[k, a, a] = value
    elif model == _EII:
        traces = 0.0
        for k in range(K):
            trace = 0.0
            squares = 0.0
            for a in range(d):
                trace += second[k, a, a]
                squares += offsets[k, a] ** 2
            traces += trace - c[k] * squares + c[k] * reg_covar * d
        value = traces / (total * d)
        for k in range(K):
            for a in range(d):
                cov[k, a, a] = value
    elif model == _EEI or model == _VEI or model == _EVI:
        for k in range(K):
            for a in range(d):
                values[k, a] = (second[k, a, a] - c[k] * offsets[k, a] ** 2
                                + c[k] * reg_covar)
        _diagonal_model(model, c, values, inner_tol, inner_max_iter, cov, per_k)
    else:
        for k in range(K):
            for a in range(d):
                for b in range(d):
                    W[k, a, b] = second[k, a, b] - c[k] * offsets[k, a] * offsets[k, b]
        if model == _EEV or model == _VEV:
            # From the second M-step of a run, the Jacobi rotations start from the last
            # one's eigenvectors (kept in ``vectors``); ``lower`` is free until _precisions.
            _eigen_model_into(model, c, W, reg_covar, inner_tol, inner_max_iter, cov, values,
                              vectors, work, carried, ws[8])
        else:
            for k in range(K):
                for a in range(d):
                    W[k, a, a] += c[k] * reg_covar
            _full_model(model, c, W, inner_tol, inner_max_iter, warm_max_iter, cold, cov, ws)
    return _finite_status(cov)


@numba.njit(cache=True, nogil=True)
def _finite_status(cov):  # pragma: no cover
    """An M-step's status: _NOT_FINITE where a covariance entry is not finite, else _OK."""
    K, d = cov.shape[0], cov.shape[1]
    for k in range(K):
        for a in range(d):
            for b in range(d):
                if not np.isfinite(cov[k, a, b]):
                    return _NOT_FINITE
    return _OK


@numba.njit(cache=True, nogil=True)
def _weights_and_offsets(counts, first, weights, c, offsets):  # pragma: no cover
    """Counts ``c`` (+ 10 eps), weights ``c / sum c`` and the means' offsets ``first / c``
    of the K Gaussian components, in place; returns ``sum c``."""
    K, d = first.shape
    total = 0.0
    for k in range(K):
        c[k] = counts[k] + _EPS10
        total += c[k]
    for k in range(K):
        weights[k] = c[k] / total
    for k in range(K):
        for a in range(d):
            offsets[k, a] = first[k, a] / c[k]
    return total


@numba.njit(cache=True, nogil=True)
def _map_m_step(counts, first, second, weights, means, cov, model, reg_covar, inner_tol,
                inner_max_iter, orientation_sweeps, ws, prior):  # pragma: no cover
    """The MAP M-step (``prior.map_means_and_covariances``) in place; a status.

    ``prior`` is :func:`_prior_arguments`' tuple ``(on, shrinkage, mean, dof,
    scale, scale matrix)``: ``scale`` the number of the spherical and diagonal
    models, ``scale matrix`` the (D, D) one of the others. ``model`` is the
    model whose formulas apply (a single Gaussian's kind already substituted;
    :data:`_E_PRIOR` for E). The constrained models run the loop's ML routines on
    the augmented counts and scatters, ``reg_covar`` added to those scatters as
    the Python M-step adds it; EVE's and VVE's orientation starts cold (the
    Python M-step has no previous covariances), ``orientation_sweeps`` its limit.
    """
    K, d = first.shape
    c, offsets, W, values, vectors, _, _, work, _, _, per_k = ws
    kappa, prior_mean, nu, scale, scale_matrix = prior[1], prior[2], prior[3], prior[4], prior[5]
    s = 1.0 if kappa > 0 else 0.0
    # The means' offsets xbar_k - means_k (the rows' means via the shift); W_k around xbar_k.
    total = _weights_and_offsets(counts, first, weights, c, offsets)
    for k in range(K):
        for a in range(d):
            for b in range(d):
                W[k, a, b] = second[k, a, b] - c[k] * offsets[k, a] * offsets[k, b]
    dev = values  # (K, D): xbar_k - mean
    for k in range(K):
        shrunk = kappa * c[k] / (c[k] + kappa)
        per_k[k] = shrunk
        for a in range(d):
            xbar = means[k, a] + offsets[k, a]
            dev[k, a] = xbar - prior_mean[a]
            if model == _EEI:  # mclust leaves EEI's means unshrunk
                means[k, a] = xbar
            else:
                means[k, a] = (c[k] * xbar + kappa * prior_mean[a]) / (c[k] + kappa)
    # B_k = W_k + c_k dev dev^T (the full matrix; the layouts reduce it below).
    for k in range(K):
        for a in range(d):
            for b in range(d):
                W[k, a, b] += per_k[k] * dev[k, a] * dev[k, b]
    cov[:] = 0.0
    # The augmented counts overwrite ``c`` (spent once the weights and means are), so the
    # M-step allocates nothing (see _workspace).
    added = c
    if model == _EEE:
        grand = total + nu + d + 1 + K * s
        for a in range(d):
            for b in range(d):
                pooled = 0.0
                for k in range(K):
                    pooled += W[k, a, b]
                work[a, b] = pooled + scale_matrix[a, b]
            work[a, a] += grand * reg_covar
        for k in range(K):
            for a in range(d):
                for b in range(d):
                    cov[k, a, b] = work[a, b] / grand
    elif model == _VVI:
        for k in range(K):
            added[k] = c[k] + nu + 2 + s
            for a in range(d):
                cov[k, a, a] = (W[k, a, a] + scale) / added[k] + reg_covar
    elif model == _EEI:
        grand = total + nu + 1 + s
        for a in range(d):
            summed = 0.0
            for k in range(K):
                summed += W[k, a, a]
            for k in range(K):
                cov[k, a, a] = (summed + scale) / grand + reg_covar
    elif model == _EVI or model == _VEI:
        for k in range(K):
            added[k] = c[k] + ((nu + 1 + s) / K if model == _EVI else (nu + 2 + s) / d)
        diagonals = values  # (dev is spent once B_k holds it)
        for k in range(K):
            for a in range(d):
                diagonals[k, a] = W[k, a, a] + scale + added[k] * reg_covar
        _diagonal_model(model, added, diagonals, inner_tol, inner_max_iter, cov, per_k)
    elif model == _EII or model == _E_PRIOR or model == _VII:
        traces = 0.0
        for k in range(K):
            trace = 0.0
            for a in range(d):
                trace += W[k, a, a]
            per_k[k] = trace
            traces += trace
        for k in range(K):
            if model == _EII:  # no scale (as mclust)
                grand = d * total + nu + 2 + K * d
                value = (traces + grand * reg_covar) / grand
            elif model == _E_PRIOR:
                value = (traces + scale) / (total + nu + 2 + K * s) + reg_covar
            else:  # VII, and V (d = 1)
                value = (per_k[k] + scale) / (d * c[k] + nu + 2 + d * s) + reg_covar
            for a in range(d):
                cov[k, a, a] = value
    else:  # the full layout: VVV, EEV, VEV, and the per-component prior of VEE EVE VVE EVV
        for k in range(K):
            if model == _VEV:  # no dof (as mclust)
                added[k] = c[k]
            elif model == _EEV:
                added[k] = c[k] + (nu + d + 1 + s) / K
            else:
                added[k] = c[k] + nu + d + 1 + s
            for a in range(d):
                for b in range(d):
                    W[k, a, b] += scale_matrix[a, b]
                W[k, a, a] += added[k] * reg_covar
        if model == _VVV:
            for k in range(K):
                for a in range(d):
                    for b in range(d):
                        cov[k, a, b] = W[k, a, b] / added[k]
        elif model == _EEV or model == _VEV:
            _eigen_model_into(model, added, W, 0.0, inner_tol, inner_max_iter, cov, values,
                              vectors, work, False, ws[8])
        else:
            _full_model(model, added, W, inner_tol, inner_max_iter, orientation_sweeps, True,
                        cov, ws)
    return _finite_status(cov)


@numba.njit(cache=True, nogil=True)
def _diagonal_model(model, c, w, inner_tol, inner_max_iter, cov, scale):  # pragma: no cover
    """constrained.diagonal: EEI, EVI, VEI variances from diagonals ``w`` (K, D) onto
    ``cov``'s diagonals; ``scale`` (K) scratch."""
    K, d = w.shape
    n = c.sum()
    if model == _EEI:
        for a in range(d):
            total = 0.0
            for k in range(K):
                total += w[k, a]
            for k in range(K):
                cov[k, a, a] = total / n
    elif model == _EVI:
        for k in range(K):
            logs = 0.0  # np.log(w[k]).mean(), in its order
            for a in range(d):
                logs += np.log(w[k, a])
            scale[k] = np.exp(logs / d)
        volume = scale.sum() / n
        for k in range(K):
            for a in range(d):
                cov[k, a, a] = volume * (w[k, a] / scale[k])
    else:
        variances = constrained._vei_loop(c, w, inner_tol, inner_max_iter)
        for k in range(K):
            for a in range(d):
                cov[k, a, a] = variances[k, a]


# Features up to which EEV's and VEV's eigenvectors are Jacobi's (_jacobi_eigen), not
# LAPACK's: there it is the faster (its cost grows with the sweeps, LAPACK's call has a
# fixed cost of copies and workspace queries). At d = 6 a cold start (6-7 sweeps, ~5.9 us)
# is slower than LAPACK (~4.5 us), but EM's warm starts (_jacobi_eigen_from, 2-3 sweeps)
# are faster: banknote's EEV 47.7 -> 39.4 us an iteration.
_JACOBI_MAX_FEATURES = 6
# Eigenvalues closer than this (relative to the largest) leave their eigenvectors to
# LAPACK, as before: in a (near) tie any basis of the pair's plane is an optimum of the
# M-step (a component of one row or two), and which one each method returns differs.
_JACOBI_MIN_GAP = 1e-6


@numba.njit(cache=True, nogil=True)
def _descending_eigen_into(W, values, vectors, work):  # pragma: no cover
    """Eigenvalues (K, D) and eigenvectors (K, D, D) of each W_k, largest first.

    As ``constrained._eigen_descending`` (LAPACK's of ``-W_k``, whose ties keep
    the axes' order): on few features by Jacobi's rotations where the eigenvalues
    are apart (there the two agree to rounding, signs aside, which ``V diag(a)
    V^T`` ignores), by LAPACK's call where two are tied or nearly
    (:data:`_JACOBI_MIN_GAP`), so that a degenerate component's axes are LAPACK's
    arbitrary ones, as they were.
    """
    _descending_eigen_warm(W, values, vectors, work, False, work)


@numba.njit(cache=True, nogil=True)
def _descending_eigen_warm(W, values, vectors, work, warm, turned):  # pragma: no cover
    """:func:`_descending_eigen_into`; ``warm``: Jacobi's rotations begin from the
    eigenvectors in ``vectors`` (:func:`_jacobi_eigen_from`, ``turned`` its scratch)."""
    K, d = W.shape[0], W.shape[1]
    for k in range(K):
        own, axes = values[k], vectors[k]
        if d <= _JACOBI_MAX_FEATURES:
            if warm:  # the last M-step's eigenvectors in ``vectors``
                _jacobi_eigen_from(W[k], own, axes, work, turned)
            else:
                _jacobi_eigen(W[k], own, axes, work)
            _sort_descending(own, axes)
            largest = 0.0
            for j in range(d):
                largest = max(largest, abs(own[j]))
            apart = largest > 0.0
            for j in range(d - 1):
                if not own[j] - own[j + 1] > _JACOBI_MIN_GAP * largest:
                    apart = False
            if apart:
                continue
        vals, vecs = np.linalg.eigh(-W[k])
        for j in range(d):
            own[j] = -vals[j]
            for a in range(d):
                axes[a, j] = vecs[a, j]


@numba.njit(cache=True, nogil=True)
def _sort_descending(values, vectors):  # pragma: no cover
    """Eigenvalues largest first, with their eigenvectors (columns), in place."""
    d = values.shape[0]
    for i in range(d - 1):
        best = i
        largest = values[i]
        for j in range(i + 1, d):
            if values[j] > largest:
                best = j
                largest = values[j]
        if best != i:
            values[best] = values[i]
            values[i] = largest
            for a in range(d):
                x = vectors[a, i]
                vectors[a, i] = vectors[a, best]
                vectors[a, best] = x


@numba.njit(cache=True, nogil=True)
def _eigen_model(model, c, W, reg_covar, inner_tol, inner_max_iter):  # pragma: no cover
    """constrained.full for EEV and VEV: ``c_k reg_covar`` added to W_k's eigenvalues."""
    K, d = W.shape[0], W.shape[1]
    out = np.empty((K, d, d))
    _eigen_model_into(model, c, W, reg_covar, inner_tol, inner_max_iter, out,
                      np.empty((K, d)), np.empty((K, d, d)), np.empty((d, d)), False,
                      np.empty((d, d)))
    return out


@numba.njit(cache=True, nogil=True)
def _eigen_model_into(model, c, W, reg_covar, inner_tol, inner_max_iter, out, values,
                      vectors, work, warm, turned):  # pragma: no cover
    """:func:`_eigen_model` into ``out``; scratch ``values`` (K, D), ``vectors``
    (K, D, D), ``work`` (D, D)."""
    K, d = W.shape[0], W.shape[1]
    _descending_eigen_warm(W, values, vectors, work, warm, turned)
    for k in range(K):
        for j in range(d):
            values[k, j] += c[k] * reg_covar
    if model == _EEV:
        n = c.sum()
        for j in range(d):
            total = 0.0
            for k in range(K):
                total += values[k, j]
            for k in range(K):
                values[k, j] = total / n
        _turned(vectors, values, out)
        return
    # VEV: VEI on the eigenvalues, turned by each component's eigenvectors.
    _turned(vectors, constrained._vei_loop(c, values, inner_tol, inner_max_iter), out)


@numba.njit(cache=True, nogil=True)
def _turned(vectors, diagonals, out):  # pragma: no cover
    """``V_k diag(a_k) V_k^T`` for each k, into ``out``."""
    K, d = diagonals.shape
    for k in range(K):
        for i in range(d):
            for m in range(d):
                total = 0.0
                for j in range(d):
                    total += vectors[k, i, j] * diagonals[k, j] * vectors[k, m, j]
                out[k, i, m] = total


@numba.njit(cache=True, nogil=True)
def _full_model(model, c, W, inner_tol, inner_max_iter, warm_max_iter, cold, cov,
                ws):  # pragma: no cover
    """constrained.full: VEE EVE VVE EVV covariances from scatters ``W`` into ``cov``.

    EVE and VVE (not ``cold``) start from ``ws``'s orientation (:func:`_m_step`
    put it there) and leave theirs and their variances there.
    """
    K, d = W.shape[0], W.shape[1]
    _, _, _, _, vectors, orientation, variances, work, lower, state, per_k = ws
    n = c.sum()
    if model == _EVE_MCLUST or model == _VVE_MCLUST:
        # mclust's first orientation (R's meEVE, meVVE) is the identity; later ones start
        # where the last M-step left it. Its inner tolerance, and EVE's objective.
        if cold:
            for a in range(d):
                for b in range(d):
                    orientation[a, b] = 1.0 if a == b else 0.0
        constrained._shared_orientation_into(
            c, W, False, model == _VVE_MCLUST, orientation, max(inner_tol, _MCLUST_INNER_TOL),
            warm_max_iter, variances, cov, vectors, work, state, per_k)
        return
    if model == _EVE or model == _VVE:
        if cold:
            # _common_orientation without a start: the pooled scatter's eigenvectors.
            pooled = np.zeros((d, d))
            for k in range(K):
                pooled += W[k]
            orientation[:] = np.linalg.eigh(pooled)[1]
        # Cold: warm_max_iter carries constrained.ORIENTATION_MAX_SWEEPS (see _start).
        constrained._shared_orientation_into(c, W, model == _VVE, model == _VVE, orientation,
                                             inner_tol, warm_max_iter, variances, cov,
                                             vectors, work, state, per_k)
        return
    if model == _VEE:
        cov[:] = constrained._vee_loop(c, W, inner_tol, inner_max_iter)
        return
    if model == _EVV:
        for k in range(K):
            log_det = constrained._cholesky_log_det(W[k], lower)
            if np.isnan(log_det):  # not positive definite: LAPACK's answer, as before
                sign, value = np.linalg.slogdet(W[k])
                log_det = value if sign > 0 else -np.inf
            per_k[k] = np.exp(log_det / d)
        volume = per_k.sum() / n
        for k in range(K):
            for a in range(d):
                for b in range(d):
                    cov[k, a, b] = volume * (W[k, a, b] / per_k[k])
        return
    raise ValueError("EEV's and VEV's covariances are _eigen_model's")


@numba.njit(cache=True, nogil=True)
def _warm_orientation(previous, orientation):  # pragma: no cover
    """constrained.orientation_of(previous), into ``orientation``: eigenvectors of a sum
    with unequal weights."""
    K, d = previous.shape[0], previous.shape[1]
    pooled = np.zeros((d, d))
    for k in range(K):
        weight = 1.0 / (k + np.pi)
        for a in range(d):
            for b in range(d):
                pooled[a, b] += weight * previous[k, a, b]
    orientation[:] = np.linalg.eigh(pooled)[1]


@numba.njit(cache=True, nogil=True)
def _carried_orientation(orientation, variances, work):  # pragma: no cover
    """:func:`_warm_orientation` of covariances ``D diag(a_k) D^T`` that the last M-step left.

    Their weighted sum is ``D diag(p) D^T`` with ``p = sum_k a_k / (k + pi)``: its
    eigenvectors are ``D``'s columns (to rounding; signs are immaterial), which LAPACK
    would order by ascending ``p``. So ``D``'s columns are put in that order (the
    selection sort of LAPACK's ``dsteqr``, for ties) instead of an eigen-decomposition
    each EM iteration. ``work`` (D, D) scratch.
    """
    K, d = variances.shape
    pooled = work[0]
    for j in range(d):
        total = 0.0
        for k in range(K):
            total += (1.0 / (k + np.pi)) * variances[k, j]
        pooled[j] = -total  # ascending p: the same selection sort, largest -p first
    _sort_descending(pooled, orientation)


@numba.njit(cache=True, nogil=True)
def _precisions(cov, prec, log_det, lower):  # pragma: no cover
    """Upper-triangular precision Cholesky factors of ``cov`` in place; False if not PD.

    ``P = inv(L)^T`` with ``L`` the lower Cholesky factor, so ``P P^T = inv(cov)``
    and ``log det P = -sum log diag L``. ``lower`` is (D, D) scratch.
    """
    K, d = cov.shape[0], cov.shape[1]
    for k in range(K):
        log_det_cov = constrained._cholesky_log_det(cov[k], lower)  # L in lower's triangle
        if np.isnan(log_det_cov):
            return False
        # inv(L) column by column (forward substitution), stored transposed in prec.
        prec[k] = 0.0
        for col in range(d):
            for i in range(col, d):
                value = 1.0 if i == col else 0.0
                for m in range(col, i):
                    value -= lower[i, m] * prec[k, col, m]
                prec[k, col, i] = value / lower[i, i]
        log_det[k] = -0.5 * log_det_cov  # (exactly -sum log diag L: halving is exact)
    return True
