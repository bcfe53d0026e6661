"""``emkit.GaussianMixture``: a drop-in for scikit-learn's, driven by the emkit engine."""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from emkit.core._parallel import single_threaded_blas
from emkit.core.acceleration import MixtureCodec
from emkit.core.engine import EMResult, expected_stats
from emkit.core.runs import check_accelerate, run_variant
from emkit.core.variants import ALGORITHMS, assignment_for
from emkit.data import _validation as v
from emkit.data import scale
from emkit.data.sources import IndexedArraySource, row_weights
from emkit.distributions.gaussian import small_em
from emkit.distributions.gaussian.codec import GaussianCodec
from emkit.distributions.gaussian.covariance import (
    COVARIANCE_STRUCTURES,
    CovarianceStructure,
    is_constrained,
)
from emkit.distributions.gaussian.family import (
    Gaussian,
    GaussianStats,
    chunk_rows,
    fit_source,
    gaussian_from_precisions,
    gaussian_from_resp,
)
from emkit.distributions.gaussian.missing import fill_with_column_means
from emkit.distributions.gaussian.noise import (
    NoisyGaussian,
    NoisyGaussianCodec,
    hypervolume,
    streamed_hypervolume,
)
from emkit.distributions.gaussian.prior import ConjugatePrior, resolve_prior
from emkit.estimators._mixture_methods import MixtureMethods
from emkit.estimators.checkpoint import Checkpoint, FitState, continue_em, data_digest
from emkit.estimators.initialization import INIT_METHODS, aligned_to_labels, initial_resp
from emkit.estimators.standard_errors import StandardErrorMethods
from emkit.io import register_estimator
from emkit.latent.mixture import Mixture, MixtureStats
from emkit.latent.online import online_step

# A component has collapsed onto (nearly) repeated values when, along some direction,
# its variance is essentially the reg_covar added to it (its own scatter is at most
# DEGENERATE_FACTOR - 1 times reg_covar) while the data vary along that direction at
# least 1 / DEGENERATE_RELATIVE times more: the regularisation, not the data, then sets
# that variance, and the likelihood is a spurious maximum. Measured against the data,
# so features on small scales are not mistaken for collapses.
DEGENERATE_FACTOR = 10.0
DEGENERATE_RELATIVE = 1e-3
# Rows of slack in the support check (effective counts are sums of responsibilities).
SUPPORT_SLACK = 0.05
# Whether plain small fits take the compiled loop (emkit.distributions.gaussian.small_em);
# False forces the general engine (the tests compare the two).
_SMALL_FIT = True


class DegenerateFitWarning(UserWarning):
    """A fit ended with a component collapsed or supported by too few rows."""


def degenerate_components(model: GaussianMixture, n_samples: int | None = None) -> list[int]:
    """Components that are a spurious maximum of the likelihood rather than a cluster.

    A component is flagged when, along one of its principal directions, its
    variance is at the regularisation floor (within ``DEGENERATE_FACTOR`` times
    ``reg_covar``) and below ``DEGENERATE_RELATIVE`` times the data's variance
    along the same direction: it sits on rows with (nearly) repeated values, and
    its likelihood is huge and meaningless. The data's variances are the
    mixture's total covariance, which at an EM fixed point is the sample
    covariance plus ``reg_covar`` (per feature for "diag", their mean for
    "spherical"), so no pass over the data is needed. With ``n_samples``, a
    component is also flagged when its effective number of rows
    (``n_samples * weights_[k]``) is below what its covariance needs
    (:func:`rows_needed`), unless it was fitted with a ``prior``: the prior's
    scale bounds its covariance, so a small component is the posterior's mode,
    not a spurious maximum. A one-component fit is never flagged: its maximum is
    unique.

    Parameters
    ----------
    model : fitted GaussianMixture
    n_samples : int, optional
        Rows the model was fitted on; enables the support check.

    Returns
    -------
    list of int
        Indices of the flagged components, ascending.
    """
    return sorted(degeneracy_reasons(model, n_samples))


def degeneracy_reasons(model: GaussianMixture, n_samples: int | None = None) -> dict[int, str]:
    """Why each flagged component is degenerate (see :func:`degenerate_components`).

    Returns
    -------
    dict of component index -> "collapsed" or "unsupported"
    """
    k, d = model.means_.shape
    if k == 1:
        return {}
    reasons = {}
    if not _clearly_not_collapsed(model):
        own, data = _variances_and_data_variances(model)
        floor = np.maximum(DEGENERATE_FACTOR * model.reg_covar, 1e-12 * data)
        collapsed = ((own <= floor) & (own <= DEGENERATE_RELATIVE * data)).any(axis=1)
        reasons = {int(i): "collapsed" for i in np.flatnonzero(collapsed)}
    if n_samples is not None:
        reasons = with_unsupported(reasons, model.weights_, model.covariance_type, d, n_samples,
                                   getattr(model, "prior", None))
    return reasons


def with_unsupported(reasons: dict[int, str], weights: np.ndarray, covariance_type: str,
                     n_features: int, n_samples: float, prior: Any = None) -> dict[int, str]:
    """``reasons`` with every :func:`unsupported_components` not already flagged added.

    None are under a ``prior``: its scale bounds every covariance, so a component of
    few rows is the posterior's mode (as mclust reports it), not a spurious maximum.
    """
    if prior is not None:
        return reasons
    for i, why in unsupported_components(weights, covariance_type, n_features,
                                         n_samples).items():
        reasons.setdefault(i, why)
    return reasons


def unsupported_components(weights: np.ndarray, covariance_type: str, n_features: int,
                           n_samples: float) -> dict[int, str]:
    """Components whose weight stands for fewer rows than their covariance needs."""
    # Soft responsibilities leave two rows' worth at 1.99999...: a little slack.
    least = rows_needed(covariance_type, n_features) - SUPPORT_SLACK
    return dict.fromkeys(np.flatnonzero(n_samples * np.asarray(weights) < least).tolist(),
                         "unsupported")


def degeneracy_after_fit(model: GaussianMixture, n_samples: int | None) -> dict[int, str]:
    """:func:`degeneracy_reasons`, as the fit that just ended found them (else computed)."""
    known = getattr(model, "_fit_degeneracy", None)
    if known is not None and known[0] == n_samples:
        return known[1]
    return degeneracy_reasons(model, n_samples)


def describe_degeneracy(model: GaussianMixture, reasons: dict[int, str],
                        n_samples: int | None = None) -> str:
    """One sentence naming the flagged components and why (empty if none)."""
    parts = []
    collapsed = [i for i, why in sorted(reasons.items()) if why == "collapsed"]
    if collapsed:
        parts.append(
            f"{_components(collapsed)} collapsed onto repeated values (variance at the "
            f"reg_covar floor, {model.reg_covar:g}, where the data vary "
            f"over {1 / DEGENERATE_RELATIVE:g} times more)"
        )
    unsupported = [i for i, why in sorted(reasons.items()) if why == "unsupported"]
    if unsupported:
        rows = ", ".join(f"{n_samples * model.weights_[i]:.1f}" for i in unsupported)
        needed = rows_needed(model.covariance_type, model.means_.shape[1])
        parts.append(
            f"{_components(unsupported)} supported by {rows} rows (a component with "
            f"{model.covariance_type} covariance needs at least {needed})"
        )
    return "; ".join(parts)


def _components(indices: list[int]) -> str:
    label = "component" if len(indices) == 1 else "components"
    return f"{label} {', '.join(map(str, indices))}"


def rows_needed(covariance_type: str, n_features: int) -> int:
    """Rows a component needs to be a cluster rather than a fit to single rows.

    A full covariance (VVV, EVV) in ``d`` dimensions needs ``d + 1`` rows in general
    position (fewer leave it singular but for ``reg_covar``); any other component
    needs two (one row is an outlier, not a cluster; a diagonal or spherical
    variance is zero on one row).
    """
    # VVV and EVV estimate a whole matrix per component (mclust's other models share
    # shape or orientation, so one row per component does not make them singular).
    model = COVARIANCE_STRUCTURES[covariance_type].model
    return n_features + 1 if model in ("VVV", "EVV") else 2


def _clearly_not_collapsed(model: GaussianMixture) -> bool:
    """:func:`clearly_not_collapsed` of a fitted estimator."""
    k, d = model.means_.shape
    structure = COVARIANCE_STRUCTURES[model.covariance_type]
    return clearly_not_collapsed(model.weights_, model.means_,
                                 structure.dense(model.covariances_, k, d),
                                 structure.dense(model.precisions_cholesky_, k, d),
                                 model.reg_covar)


def clearly_not_collapsed(weights: np.ndarray, means: np.ndarray, covariances: np.ndarray,
                          precisions_cholesky: np.ndarray, reg_covar: float) -> bool:
    """Whether no component can be collapsed, from bounds that need no eigenvalues.

    A collapsed component has a variance along some axis at most
    ``max(DEGENERATE_FACTOR * reg_covar, 1e-12 * the data's variance there)``
    (see :func:`degenerate_components`); the data's variance along any axis is
    at most the mixture's total variance ``sum_k w_k (tr S_k + |mu_k - mu|^2)``,
    and a component's smallest variance is at least ``1 / tr(S_k^-1) =
    1 / |P_k|_F^2`` (``P_k`` its precision factor). When those bounds clear the
    floor the answer is known without the eigenvalues (a model selection
    checks hundreds of fits); False means: compute them.

    Parameters
    ----------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    covariances, precisions_cholesky : ndarray of shape (K, D, D)
    reg_covar : float
    """
    smallest, total = small_em.collapse_bounds(weights, means, covariances, precisions_cholesky)
    floor = max(DEGENERATE_FACTOR * reg_covar, 1e-12 * total)
    return bool(np.isfinite(total) and smallest > floor)


def collapsed_components(weights: np.ndarray, means: np.ndarray, covariances: np.ndarray,
                         precisions_cholesky: np.ndarray, covariance_type: str,
                         reg_covar: float) -> np.ndarray:
    """:func:`degeneracy_reasons`' collapse test on dense (K, D, D) arrays, compiled.

    A boolean per component (see :func:`degenerate_components`); one compiled call,
    for a model selection that checks hundreds of fits on small data.
    """
    layout, factor, relative = collapse_test(covariance_type)
    return small_em.collapsed_components(weights, means, covariances, precisions_cholesky,
                                         layout, reg_covar, factor, relative)


def collapse_test(covariance_type: str) -> tuple[int, float, float]:
    """``(layout, factor, relative)``: the collapse test of :func:`degenerate_components`
    as :func:`~emkit.distributions.gaussian.small_em.collapsed_components` takes it."""
    return _COLLAPSE_TESTS[covariance_type]


_COLLAPSE_TESTS = {
    name: ({"spherical": small_em.SPHERICAL_LAYOUT, "diag": small_em.DIAG_LAYOUT}.get(
        structure.name, small_em.FULL_LAYOUT), DEGENERATE_FACTOR, DEGENERATE_RELATIVE)
    for name, structure in COVARIANCE_STRUCTURES.items()}


def _variances_and_data_variances(model: GaussianMixture) -> tuple[np.ndarray, np.ndarray]:
    """Each component's variances along its principal axes, and the data's along them.

    Both of shape (K, m): m = n_features, or 1 for "spherical".
    """
    weights = np.asarray(model.weights_, dtype=np.float64)
    means = np.asarray(model.means_, dtype=np.float64)
    k, d = means.shape
    structure = COVARIANCE_STRUCTURES[model.covariance_type]
    dense = np.asarray(structure.dense(model.covariances_, k, d), dtype=np.float64)
    offsets = means - weights @ means
    # The mixture's total covariance: within-component plus between-means.
    total = np.einsum("k,kij->ij", weights, dense) + (offsets.T * weights) @ offsets
    covariances = np.asarray(model.covariances_, dtype=np.float64)
    if structure.name == "spherical":
        return covariances[:, None], np.full((k, 1), np.trace(total) / d)
    if structure.name == "diag":
        return covariances, np.broadcast_to(np.diag(total), (k, d))
    values, vectors = np.linalg.eigh(dense)
    along = np.einsum("kdi,de,kei->ki", vectors, total, vectors)
    return values, along


def _n_rows(X: Any, init_X: np.ndarray) -> int | None:
    """Rows a fit saw: all of an in-memory array, a Dask array's or file's when known."""
    if not scale.is_scalable(X):
        return init_X.shape[0]
    return int(X.shape[0]) if scale.is_dask_array(X) else getattr(X, "n_samples", None)


_PARAMETER_RULES = {
    "n_components": v.integer(1),
    "covariance_type": v.one_of(*COVARIANCE_STRUCTURES),
    "tol": v.real(0.0),
    "reg_covar": v.real(0.0),
    "max_iter": v.integer(0),
    "n_init": v.integer(1),
    "init_params": v.one_of(*INIT_METHODS),
    "weights_init": v.OPTIONAL_ARRAY,
    "means_init": v.OPTIONAL_ARRAY,
    "precisions_init": v.OPTIONAL_ARRAY,
    "random_state": v.RANDOM_STATE,
    "warm_start": v.BOOLEAN,
    "verbose": v.integer(0),
    "verbose_interval": v.integer(1),
    "chunk_size": v.Rule(
        lambda value: value is None or v.integer(1).accepts(value), "None or an integer >= 1"
    ),
    "callback": v.Rule(lambda c: c is None or callable(c), "None or a callable"),
    "algorithm": v.one_of(*ALGORITHMS),
    "accelerate": v.ACCELERATE,
    "online_kappa": v.Rule(
        lambda k: v.real(0.0).accepts(k) and 0.5 < k <= 1, "a number in (0.5, 1]"
    ),
    "online_t0": v.real(0.0),
    "checkpoint": v.Rule(lambda c: c is None or isinstance(c, str | os.PathLike),
                         "None or a file path"),
    "checkpoint_every": v.integer(1),
    "prior": v.Rule(
        lambda p: p is None or (isinstance(p, str) and p == "default")
        or isinstance(p, ConjugatePrior),
        'None, "default" or a ConjugatePrior',
    ),
    "noise": v.BOOLEAN,
    "noise_init": v.OPTIONAL_ARRAY,
    "noise_volume": v.Rule(lambda x: x is None or v.real(0.0).accepts(x), "None or a number > 0"),
    "params": v.Rule(
        lambda p: isinstance(p, str) and set(p) <= set("wmc") and len(set(p)) == len(p),
        'a string of distinct letters from "wmc" (weights, means, covariances)',
    ),
}

# Letters of ``params`` and the Gaussian family's parameter each one frees.
_FREE_COMPONENT_PARAMETERS = {"m": "means", "c": "covariances"}


def _fixed_parameters(params: str) -> frozenset:
    """The Gaussian family's parameters that ``params`` leaves frozen."""
    return frozenset(name for letter, name in _FREE_COMPONENT_PARAMETERS.items()
                     if letter not in params)


def _rows_fitted(X: Any, init_X: np.ndarray) -> int:
    """Rows a fit's statistics stand for: in memory, those with something observed.

    Streamed and Dask inputs give their length where known (the rows are not
    re-read to count the empty ones), else the initialisation sample's.
    """
    if scale.is_dask_array(X):
        n = X.shape[0]
        return int(n) if np.isfinite(n) else init_X.shape[0]
    if scale.is_scalable(X):
        return int(getattr(X, "n_samples", None) or init_X.shape[0])
    if not np.isnan(init_X.sum()):  # no missing value (the usual case): no (n, D) mask
        return init_X.shape[0]
    return int((~np.isnan(init_X).all(axis=1)).sum())


def _checked_noise_init(noise_init: Any, n_samples: int) -> np.ndarray:
    """``noise_init`` as a boolean mask of ``n_samples`` rows, or a ValueError naming why not."""
    mask = np.asarray(noise_init)
    if mask.dtype != bool or mask.shape != (n_samples,):
        raise ValueError(f"noise_init must be a boolean array of shape ({n_samples},) "
                         f"(True for the rows that start as noise), got {mask.dtype} "
                         f"{mask.shape}")
    return mask


def _rows_and_weights(source: Any) -> Any:
    """``(rows, sample_weight or None)`` of a streamed or Dask source, chunk by chunk."""
    blocks = getattr(getattr(source, "X", None), "blocks", None)
    if blocks is None:  # a file source: its chunks carry their weights
        for chunk in source:
            yield np.asarray(chunk), row_weights(chunk)
        return
    weights = getattr(source, "weight_column", None)  # a Dask source: block by block
    for i in range(source.X.numblocks[0]):
        yield (np.asarray(blocks[i].compute()),
               None if weights is None else np.asarray(weights.blocks[i].compute()))


def _with_known_rows(
    resp: np.ndarray, labels: np.ndarray | None, row_weight: np.ndarray | None
) -> np.ndarray:
    """Starting responsibilities aligned to the known rows' labels, times the row weights."""
    resp = aligned_to_labels(resp, labels)
    if row_weight is not None:
        resp = resp * row_weight[:, None].astype(resp.dtype)
    return resp


def fitted_online_stats(estimator: GaussianMixture) -> MixtureStats:
    """Per-row statistics a fitted mixture expects of its own rows.

    ``E[r_k] = w_k``, ``E[r_k (x - mu_k)] = 0`` and ``E[r_k (x - mu_k)(x - mu_k)^T] =
    w_k (Sigma_k - reg_covar I)`` (the M-step adds ``reg_covar`` back): so their
    M-step returns the parameters (to rounding), and online EM blends new
    batches into the fitted model rather than replacing it.
    """
    model = estimator._model()
    gaussian: Gaussian = model.components
    structure, (k, d) = gaussian.structure, gaussian.means.shape
    weights = model.weights.astype(np.float64)
    dense = structure.dense(gaussian.covariances.astype(np.float64), k, d)
    dense = dense - estimator.reg_covar * np.eye(d)
    second = structure.reduce_scatter(weights[:, None, None] * dense)
    components = GaussianStats(counts=weights, first=np.zeros((k, d)), second=second,
                               shift=gaussian.means)
    return MixtureStats(resp_sum=weights, components=components,
                        log_likelihood=float(estimator.lower_bound_), n_samples=1)


@register_estimator
class GaussianMixture(MixtureMethods, StandardErrorMethods, DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by EM over additive sufficient statistics.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture`: the same
    parameters, fitted attributes and methods, the same answers from the same
    initialisation, plus ``chunk_size`` and the per-iteration ``history_``.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : str, default="full"
        Structure of the covariance matrices: scikit-learn's "full", "tied",
        "diag", "spherical", or one of mclust's 14 models "EII", "VII", "EEI",
        "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV",
        "VVV" (volume, shape, orientation Equal or Variable across components,
        I: axis-aligned; "E", "V" for one feature). scikit-learn's names are
        VVV, EEE, VVI and VII. The other ten are stored as full (K, D, D),
        diagonal (K, D) or, for EII, spherical (K,) arrays; ``reg_covar``
        enters their M-step as ``n_k * reg_covar * I`` added to each
        component's scatter. See :mod:`emkit.distributions.gaussian.constrained`.
    tol : float, default=1e-3
        Convergence threshold on the change of the average log-likelihood.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance, keeping them positive definite.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the highest final
        log-likelihood is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data", "hc"}, default="kmeans"
        How starting responsibilities are chosen. ``"hc"``: mclust's start, a
        deterministic model-based hierarchical agglomeration under VVV, the same
        partitions as mclust's ``hc()``
        (:func:`emkit.estimators.initialization.hc_labels`); with one feature,
        mclust's quantile classes, and with no more rows than features, its
        agglomeration under EII
        (:func:`emkit.estimators.initialization.mclust_start_labels`).
    weights_init : array of shape (n_components,), optional
        Starting mixing weights.
    means_init : array of shape (n_components, n_features), optional
        Starting means.
    precisions_init : array, optional
        Starting precision matrices, shaped as ``covariances_``.
    random_state : int, RandomState, Generator or None, default=None
        Seeds initialisation and sampling. The starts are drawn as
        scikit-learn draws them (one ``sklearn.utils.check_random_state``
        RandomState, advanced restart after restart, through scikit-learn's
        own ``kmeans_plusplus``), so for in-memory data the same value gives
        the same start, hence the same fit to rounding, as
        :class:`sklearn.mixture.GaussianMixture`, for every ``init_params`` and
        ``n_init``. Rounding can still tell apart restarts that tie (the same
        optimum, components in another order), and one-row starts
        (``k-means++``, ``random_from_data``) of diag, spherical and tied fits,
        whose variance scikit-learn computes with rounding errors near
        ``reg_covar``; their ``history_[0]`` is that of weights summing to one,
        scikit-learn's of weights summing to K/n. A Generator (which
        scikit-learn refuses) seeds a new RandomState; integers must lie in
        [0, 2**32 - 1]. Streamed and Dask fits start from a random sample of
        rows (:mod:`emkit.data.scale`), so their starts are emkit's own;
        ``algorithm="stochastic"`` draws its E-steps from separate seeds.
    warm_start : bool, default=False
        Start a new ``fit`` from the previous solution. If ``n_components``
        or ``covariance_type`` changed since, that solution is no start for
        the new model: the fit warns and starts afresh from ``init_params``.
    verbose : int, default=0
        1 prints per initialisation, 2 also every ``verbose_interval`` iterations.
    verbose_interval : int, default=10
        Iterations between progress lines when ``verbose >= 2``.
    chunk_size : int or None, default=None
        Rows per chunk of the E-step; memory scales with ``chunk_size`` times
        the E-step's working row width (about ``n_components`` plus
        ``n_features**2 / 2`` for full covariances). None picks a size whose
        working arrays take a few MiB (cache-sized), split evenly over the
        threads; fits of complete rows by soft EM, whose compiled E-step works
        block by block in cache whatever the chunk, take longer chunks (fewer
        handoffs between threads). Results do not depend on it (nor on the
        number of CPUs) beyond rounding.
    callback : callable, optional
        Called after every iteration as ``callback(iteration, lower_bound, change,
        mixture)``, where ``mixture`` is the :class:`emkit.latent.mixture.Mixture` after
        the M-step: for logging, plotting snapshots, or stopping early by raising.
    algorithm : {"em", "hard", "stochastic"}, default="em"
        The EM variant. ``"em"``: soft responsibilities. ``"hard"``:
        classification EM, each row wholly to its most likely component;
        ``history_`` and ``lower_bound_`` then hold the classification
        log-likelihood (which never decreases). At a fixed point (assignments
        unchanged, so the change is exactly 0) each component is the
        maximum-likelihood fit of its rows and the weights are the class
        proportions; a ``tol`` > 0 may stop a few iterations short of it.
        ``"stochastic"``: each row wholly to a component drawn from its
        responsibilities (seeded by ``random_state``, independent
        of ``chunk_size``); the path never settles, so exactly ``max_iter``
        iterations run, ``tol`` is not used, ``converged_`` is False, and the
        fitted parameters are the *best* ones seen (highest observed-data
        log-likelihood, which ``lower_bound_`` holds), while ``history_`` shows
        the noisy path.
    accelerate : bool or {"squarem", "daarem"}, default=False
        Accelerate EM (see :mod:`emkit.core.acceleration`), for
        ``algorithm="em"`` only: True or ``"squarem"``, SQUAREM extrapolation
        with the R package's rules; ``"daarem"``, damped Anderson acceleration.
        The fitted parameters are the best evaluated, so ``history_`` (the best
        average log-likelihood after each pass) never decreases. ``n_iter_`` and ``max_iter`` count
        passes over the data (E-steps), as for plain EM, so the two compare
        honestly; convergence is the same ``tol`` test on a plain EM step.
        ``callback`` is then called after every pass, with the best value so
        far and the parameters that pass evaluated.
    online_kappa : float in (0.5, 1], default=0.6
        Decay of the step of online EM (:meth:`partial_fit`): batch ``t`` gets
        weight ``g_t = (t + online_t0) ** -online_kappa``. Smaller values
        forget old batches faster.
    online_t0 : float >= 0, default=2.0
        Offset of the online step: larger values take smaller first steps.
    checkpoint : str or path-like, optional
        File the state of the fit is written to (atomically, in the safe model
        format) every ``checkpoint_every`` iterations and at the end of every
        restart. A fit started with an existing checkpoint of the same fit (same
        parameters and data; others are refused) resumes from it and ends exactly
        as an uninterrupted fit would (the same checkpointed fit, bit for bit; one
        without checkpoint on a few thousand rows runs the compiled small-data loop
        and agrees to rounding); once the fit is complete, fitting again
        returns the same result at once (delete the file to start afresh). Needs
        an integer ``random_state`` and ``algorithm="em"`` without ``accelerate``
        or ``warm_start``. See :mod:`emkit.estimators.checkpoint`.
    checkpoint_every : int, default=1
        Iterations between checkpoint writes.
    params : str, default="wmc"
        The parameters EM updates, as scikit-learn's GaussianMixture once took
        it (and hmmlearn does): any of ``"w"`` (weights), ``"m"`` (means) and
        ``"c"`` (covariances). The others stay frozen at their start
        (``weights_init``, ``means_init``, ``precisions_init``, or the
        initialisation's values), bit for bit; each M-step maximises over the
        free parameters given the frozen ones, so ``history_`` still never
        decreases, and :meth:`bic`/:meth:`aic` count only free parameters.
        Not with ``accelerate=True``.
    prior : None, "default" or ConjugatePrior, default=None
        The conjugate prior of Fraley & Raftery (2007), as mclust's
        ``prior = priorControl()``: EM then finds the posterior mode (MAP)
        instead of the maximum likelihood, so small or degenerate data give
        sensible fits instead of collapsed components. ``"default"`` is
        :class:`~emkit.distributions.gaussian.prior.ConjugatePrior` with mclust's
        defaults, computed from the data given to ``fit``; give ``reg_covar=0``
        to reproduce mclust's fits. ``history_``, :meth:`score` and
        :meth:`bic` use the log-likelihood at the MAP estimate, as mclust's
        BIC does (EM raises the log posterior, so ``history_`` may dip slightly
        near the end; convergence is tested on its change, as mclust does).
        All 14 models (mclust has a prior for 10; see
        :mod:`emkit.distributions.gaussian.prior`). Not with ``accelerate``,
        frozen ``params`` or :meth:`partial_fit`.
    noise : bool, default=False
        Add a uniform noise component (mclust's ``Vinv``): density
        ``1 / noise_volume_`` over the data's region, its weight fitted by EM
        like the others, for rows that belong to no cluster. :meth:`predict`
        then gives -1 for rows most likely noise; :meth:`predict_proba` has
        ``n_components + 1`` columns, the noise's last; ``weights_`` holds the
        Gaussian components' weights and ``noise_weight_`` the rest (together
        they sum to one). :meth:`bic` counts the noise weight and the volume,
        as mclust does. With ``sample_weight`` the E- and M-steps are weighted
        (the noise weight's too) and the default volume is that of the rows
        the weights stand for (:func:`~emkit.distributions.gaussian.noise.hypervolume`);
        with ``labels``, ``n_components`` labels a row noise (its column of
        :meth:`predict_proba`; -1 stays "unknown" there, unlike :meth:`predict`'s -1).
        Frozen weights (``params`` without ``"w"``) include the noise's
        (``weights_init`` gives it, last; else it stays at its start's). Rows
        without NaN; a streamed or Dask ``X`` gets the volume of all its rows
        (:func:`~emkit.distributions.gaussian.noise.streamed_hypervolume`, two
        passes) and its start from the sample (see ``noise_init``).
    noise_init : array-like of bool of shape (n_samples,), optional
        With ``noise=True``, the rows the start puts in the noise component
        (mclust's ``initialization = list(noise = ...)``): the Gaussian start
        (``init_params``) is then made from the other rows (so are rows labelled
        noise by ``labels``; a row's label outranks its ``noise_init``). Without
        either, the start is made from every row and the noise weight starts at 0.1.
        With a streamed or Dask ``X``, one value per row of the whole input (a CSV
        is read once more to count them); the start, made from the uniform sample
        of rows (all of them up to :data:`emkit.data.scale.INIT_SAMPLE_ROWS`, so
        then the in-memory fit's), takes the sampled rows' values.
    noise_volume : float, optional
        The noise component's volume; default mclust's ``hypvol`` of the data
        (:func:`emkit.distributions.gaussian.noise.hypervolume`).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (K, D, D) for full, (D, D) for tied, (K, D) for diag, (K,) for spherical.
    precisions_ : ndarray, same shape as ``covariances_``
    precisions_cholesky_ : ndarray, same shape as ``covariances_``
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Average log-likelihood of the best run's last E-step.
    history_ : ndarray of shape (n_iter,)
        Average log-likelihood per sample at each iteration of the best run.
    n_samples_seen_ : int
        Rows the fitted model stands for: those of ``fit`` with something
        observed (a streamed file of unknown length: its initialisation
        sample's), plus every ``partial_fit`` batch's since. Saved with the
        model; ``partial_fit`` weighs the fitted model by it.
    n_features_in_ : int
    noise_weight_ : float
        With ``noise=True``: the noise component's weight.
    noise_volume_ : float
        With ``noise=True``: the volume of its region (its density is the inverse).

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> [round(float(m)) for m in np.sort(gm.means_[:, 0])]
    [0, 6]
    >>> bool(np.all(np.diff(gm.history_) >= 0))
    True
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        chunk_size: int | None = None,
        callback: Any = None,
        algorithm: str = "em",
        accelerate: bool | str = False,
        online_kappa: float = 0.6,
        online_t0: float = 2.0,
        checkpoint: Any = None,
        checkpoint_every: int = 1,
        params: str = "wmc",
        prior: Any = None,
        noise: bool = False,
        noise_init: Any = None,
        noise_volume: float | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.callback = callback
        self.algorithm = algorithm
        self.accelerate = accelerate
        self.online_kappa = online_kappa
        self.online_t0 = online_t0
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.params = params
        self.prior = prior
        self.noise = noise
        self.noise_init = noise_init
        self.noise_volume = noise_volume

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN marks a missing value
        return tags

    # ------------------------------------------------------------------ fit

    def fit(
        self, X: Any, y: Any = None, *, sample_weight: Any = None, labels: Any = None
    ) -> GaussianMixture:
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dask array, or file source
            A ``dask.array.Array`` is fitted block by block on its scheduler (see
            :mod:`emkit.data.dask_source`); a source from :func:`emkit.data.sources.open` is
            streamed from disk. Both are initialised from a uniform random sample of
            rows (:data:`emkit.data.scale.INIT_SAMPLE_ROWS`) and E-stepped ``chunk_size``
            rows at a time. NaN marks a missing value everywhere.
        y : ignored
            (scikit-learn's pipelines pass their ``y`` to every step; partial
            labels are ``labels``.)
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative finite row weights: a row of
            integer weight ``w`` counts as ``w`` copies of it, in the
            initialisation (weighted k-means) and in every E-step; zero leaves
            a row out. ``history_`` is then the weighted average log-likelihood.
            For a file source: an array, or a file source of one column
            (``sources.open("w.npy")``) read beside ``X``; for a dask array: a
            dask or NumPy array (rechunked to ``X``'s row blocks).
        labels : array-like of int of shape (n_samples,), optional
            Partial labels for semi-supervised EM (as ``sample_weight`` for
            streamed and Dask ``X``): a
            component index for rows whose component is known, -1 for the
            others. Known rows keep one-hot responsibilities throughout (with
            every ``algorithm``); ``history_`` is then the log-likelihood of the
            unknown rows plus the complete-data log-likelihood of the known ones.
            With ``noise=True``, ``n_components`` is the noise component (-1
            still means unknown, though :meth:`predict` labels noise -1).

        Returns
        -------
        self
        """
        self._fit(X, sample_weight=sample_weight, labels=labels)
        return self

    def _fit(self, X: Any, *, sample_weight: Any = None, labels: Any = None,
             checked_by: GaussianMixture | None = None) -> Any:
        """Run the fit; return the validated rows (an array, or the scalable input as given).

        ``checked_by``: an estimator whose :meth:`_checked_rows` already checked ``X``
        (a model selection checks its rows once, not once per candidate).
        """
        v.validate_params(self, _PARAMETER_RULES)
        check_accelerate(self)
        if self.accelerate and self.params != "wmc" and set(self.params) != set("wmc"):
            raise ValueError(
                f"accelerate=True does not take frozen parameters (params={self.params!r}): "
                "SQUAREM would extrapolate them too"
            )
        self._check_prior_options()
        self._check_noise_options(X)
        if self.accelerate and is_constrained(self.covariance_type):
            # SQUAREM extrapolates the parameters freely, out of the model's constraints.
            raise ValueError(
                f"accelerate=True works with the unconstrained models (full/VVV, tied/EEE, "
                f"diag/VVI, spherical/VII), not covariance_type={self.covariance_type!r}"
            )
        warm = bool(self.warm_start) and hasattr(self, "converged_") and self._can_warm_start()
        seeds = self._child_seeds(X)
        if checked_by is None or warm or sample_weight is not None or labels is not None:
            init_X, source = self._rows(X, reset=not warm, seed=seeds[-1],
                                        sample_weight=sample_weight, labels=labels)
        else:
            init_X, source = X, self._fit_source(X)
            self._take_feature_names(checked_by)
        if scale.is_scalable(X):
            self._check_streamed_noise_init(source)
        if init_X.shape[0] < self.n_components:
            raise ValueError(
                f"n_components={self.n_components} is larger than the number of samples "
                f"({init_X.shape[0]}): a mixture needs at least one row per component"
            )
        # After the errors: a fit refused needs no warning about its variances.
        if checked_by is None:  # (a model selection warns once, for all its candidates)
            self._warn_if_regularization_dominates(init_X)
        structure = COVARIANCE_STRUCTURES[self.covariance_type]
        v.check_gaussian_memory(self.n_components, init_X.shape[1], structure.name,
                                init_X.dtype.itemsize)
        self._resolved_prior = resolve_prior(self.prior, init_X, self.n_components,
                                             structure.model, noise=bool(self.noise))
        if self.noise:  # (a weighted fit's volume is that of the rows it stands for)
            weights = getattr(source, "sample_weight", None)
            self.noise_volume_ = (
                float(self.noise_volume) if self.noise_volume is not None
                else streamed_hypervolume(lambda: _rows_and_weights(source))
                if scale.is_scalable(X)  # all the rows, not the start's sample
                else hypervolume(init_X) if weights is None
                else hypervolume(source.X, sample_weight=weights))
        best = self._best_run(init_X, structure, source, warm, seeds[:-1])
        if not best.converged and self.max_iter > 0 and self.algorithm != "stochastic":
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._set_fitted(best)
        weights = getattr(source, "sample_weight", None)
        streamed_weight = source.total_weight() if hasattr(source, "total_weight") else None
        if streamed_weight is not None:  # a weighted streamed or Dask fit
            self.n_samples_seen_ = max(1, round(streamed_weight))
            self._warn_if_degenerate(streamed_weight)
        elif weights is None:
            self.n_samples_seen_ = _rows_fitted(X, init_X)
            self._warn_if_degenerate(_n_rows(X, init_X))
        else:  # the rows a weighted fit stands for: its summed weight
            seen = float(weights[~np.isnan(source.X).all(axis=1)].sum())
            self.n_samples_seen_ = max(1, round(seen))
            self._warn_if_degenerate(seen)
        return X if scale.is_scalable(X) else init_X

    def _warn_if_regularization_dominates(self, X: np.ndarray) -> None:
        """Warn where ``reg_covar`` sets some features' variances rather than the rows."""
        message = v.regularization_dominates(X, self.reg_covar,
                                             getattr(self, "feature_names_in_", None))
        if message:
            warnings.warn(message, UserWarning, stacklevel=4)

    def _can_warm_start(self) -> bool:
        """Whether the fitted mixture has the shape asked for now; warn and start afresh if not.

        scikit-learn continues the old mixture whatever ``n_components`` or
        ``covariance_type`` say now (or fails on broadcasting); a mixture of the
        old shape under the new parameters is no model (``emkit.load`` refuses
        its file), so emkit starts afresh from ``init_params`` instead.
        """
        fitted_as = getattr(self, "_fitted_as", None)
        wanted = (self.n_components, self.covariance_type)
        if fitted_as is None:  # loaded from a file: its parameters describe its arrays
            k, d = self.n_components, self.means_.shape[1]
            shape = COVARIANCE_STRUCTURES[self.covariance_type].shape(k, d)
            fitted_as = wanted if (self.weights_.shape == (k,)
                                   and self.covariances_.shape == shape) else None
        if fitted_as == wanted:
            return True
        was = ("another shape" if fitted_as is None else
               f"n_components={fitted_as[0]}, covariance_type={fitted_as[1]!r}")
        warnings.warn(
            f"warm_start=True, but the fitted mixture ({was}) is not the one asked for now "
            f"(n_components={wanted[0]}, covariance_type={wanted[1]!r}): starting afresh "
            f"from init_params={self.init_params!r}",
            UserWarning,
            stacklevel=4,
        )
        return False

    def _child_seeds(self, X: Any) -> list[np.random.SeedSequence | None]:
        """Seeds of what scikit-learn's GaussianMixture never draws, None where unused.

        The first ``n_init`` seed the stochastic E-steps of the restarts, the
        last the rows a streamed or Dask fit initialises from. The starts
        themselves come from scikit-learn's RandomState (:meth:`_best_run`),
        which these seeds must not advance where scikit-learn's fit would not:
        so they are made only when used (a RandomState ``random_state`` gives
        them one draw, before the starts).
        """
        if self.algorithm == "stochastic" or scale.is_scalable(X):
            return v.seed_sequence(self.random_state).spawn(self.n_init + 1)
        return [None] * (self.n_init + 1)

    def _rows(
        self, X: Any, *, reset: bool, seed: np.random.SeedSequence | None,
        sample_weight: Any = None, labels: Any = None,
    ) -> tuple[Any, Any]:
        """Rows to initialise from and the engine's source, for any accepted input.

        ``sample_weight`` and ``labels`` (checked here) travel on the source's
        chunks; the starts read them from the source too.
        """
        if scale.is_scalable(X):
            if (sample_weight is not None or labels is not None) and self.checkpoint is not None:
                raise ValueError("checkpoint= does not take sample_weight or labels yet")
            n_features = scale.n_features_of(X)
            return scale.prepare(self, X, reset=reset, rng=np.random.default_rng(seed),
                                 chunk_size=self._chunk_rows(n_features),
                                 sample_weight=sample_weight, labels=labels,
                                 n_components=self.n_components + bool(self.noise))
        X = v.check_columns_observed(self._validate_X(X, reset=reset, min_samples=2))
        weights = v.check_sample_weight(sample_weight, X.shape[0])
        # With a noise component, label n_components (its column in predict_proba) is noise.
        labels = v.check_labels(labels, X.shape[0], self.n_components + bool(self.noise))
        if (weights is not None or labels is not None) and self.checkpoint is not None:
            raise ValueError("checkpoint= does not take sample_weight or labels yet")
        return v.check_scale(X), self._fit_source(X, weights, labels)

    def _checked_rows(self, X: Any) -> np.ndarray:
        """In-memory rows checked as :meth:`_rows` checks them, for :meth:`_fit`'s ``checked_by``.

        Records ``n_features_in_`` (and ``feature_names_in_``) on this estimator.
        """
        X = v.check_columns_observed(self._validate_X(X, reset=True, min_samples=2))
        return v.check_scale(X)

    def _take_feature_names(self, checked_by: GaussianMixture) -> None:
        """``n_features_in_`` and ``feature_names_in_`` as ``checked_by`` recorded them."""
        self.n_features_in_ = checked_by.n_features_in_
        names = getattr(checked_by, "feature_names_in_", None)
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _chunk_rows(self, n_features: int) -> int:
        if self.chunk_size is not None:
            return self.chunk_size
        structure = COVARIANCE_STRUCTURES[self.covariance_type]
        return chunk_rows(structure, n_features, self.n_components)

    def _fit_source(
        self, X: np.ndarray, sample_weight: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> IndexedArraySource:
        """In-memory rows as the fit's chunks, grouped by missingness pattern.

        Chunks give the threads even turns, and are long where the compiled
        soft E-step runs (complete rows, soft EM, no weights or labels).
        """
        return fit_source(X, COVARIANCE_STRUCTURES[self.covariance_type], self.n_components,
                          chunk_size=self.chunk_size, compiled=self.algorithm == "em",
                          sample_weight=sample_weight, labels=labels)

    def _best_run(
        self, X: np.ndarray, structure: CovarianceStructure, source: Any, warm: bool,
        seeds: list[np.random.SeedSequence],
    ) -> EMResult:
        if warm:
            if self.checkpoint is not None:
                raise ValueError("checkpoint= does not combine with warm_start=True")
            model = self._with_assignment(self._model(), seeds[0])
            return self._run(model, source, self.lower_bound_, self._reporter(0))
        self._check_initial_values(X, structure)
        if self.checkpoint is not None:
            return self._checkpointed_runs(X, structure, source, seeds)
        # scikit-learn's draws: one RandomState, advanced restart after restart,
        # so the same random_state gives the same starts as sklearn's GaussianMixture.
        random_state = v.random_state_of(self.random_state)
        best = None
        for index, seed in enumerate(seeds):
            # A streamed or Dask fit starts from its sample, with the sampled rows'
            # weights and labels.
            model = self._initial_model(X, structure, random_state,
                                        getattr(source, "init_rows", None) or source,
                                        getattr(source, "init_index", None))
            model = self._with_assignment(model, seed)
            result = self._small_run(model, X, source)
            if result is None:
                result = self._run(model, source, -np.inf, self._reporter(index))
            if best is None or result.lower_bound > best.lower_bound:
                best = result
        return best

    def _checkpointed_runs(
        self, X: np.ndarray, structure: CovarianceStructure, source: Any,
        seeds: list[np.random.SeedSequence],
    ) -> EMResult:
        """The restarts of :meth:`_best_run`, resumed from and recorded to ``checkpoint``."""
        if self.algorithm != "em" or self.accelerate:
            # Their drivers carry state beyond the mixture (random draws, extrapolation).
            raise ValueError("checkpoint= needs algorithm='em' and accelerate=False")
        keeper = Checkpoint(self, X.shape[1], data=data_digest(X, source))
        with keeper.locked():
            state = keeper.resume()
            starts = self._replayed_starts(X, structure, getattr(source, "init_index", None))
            for index in range(state.restart, len(seeds)):
                if index > state.restart:
                    state = FitState(restart=index, best=state.best)
                model = None if state.run is not None else starts(index)
                result = continue_em(
                    model, source, state.run, tol=self.tol, max_iter=self.max_iter,
                    callback=keeper.recorder(state, self._reporter(index)),
                )
                if state.best is None or result.lower_bound > state.best.lower_bound:
                    state.best = result
        return state.best

    def _replayed_starts(self, X: np.ndarray, structure: CovarianceStructure,
                         start_index: np.ndarray | None = None):
        """``start(index)``: restart ``index``'s start, as an uninterrupted fit draws it.

        The restarts share one RandomState, so a fit resumed at restart ``r``
        first draws (and drops) the starts of restarts ``0..r-1``; a resumed run
        or a finished fit draws none.
        """
        random_state = v.random_state_of(self.random_state)
        drawn = [0]  # starts drawn so far; restarts ask in increasing order

        def start(index: int) -> Mixture:
            while True:
                model = self._initial_model(X, structure, random_state,
                                            start_index=start_index)
                drawn[0] += 1
                if drawn[0] > index:
                    return model

        return start

    def _with_assignment(self, model: Mixture, seed: np.random.SeedSequence | None) -> Mixture:
        # A child of the restart's seed: the initialisation's draws stay as they were.
        child = None if seed is None else seed.spawn(1)[0]
        return replace(model, assignment=assignment_for(self.algorithm, child))

    def _run(
        self, model: Mixture, source: IndexedArraySource, previous_lower_bound: float,
        callback: Any,
    ) -> EMResult:
        """One EM run from ``model`` with the chosen variant."""
        return run_variant(
            model, source, algorithm=self.algorithm, accelerate=self.accelerate,
            codec=MixtureCodec(NoisyGaussianCodec() if self.noise else GaussianCodec()),
            tol=self.tol, max_iter=self.max_iter,
            previous_lower_bound=previous_lower_bound, callback=callback,
            stop_when=self._collapsed_now(),
        )

    # Set by a model selection on its candidates' estimators: a run ends once a component
    # has collapsed, a spurious maximum that the selection lists but never chooses (mclust
    # stops such fits too). Not a parameter: a fitted estimator is refitted as usual.
    _stop_when_collapsed = False

    def _collapse_stop(self) -> tuple[int, float, float] | None:
        """The compiled loop's collapse test where runs stop at a collapse (else None)."""
        if (not self._stop_when_collapsed or self.n_components == 1 or self.noise
                or set(self.params) != set("wmc")):
            return None  # (one component's maximum is unique: never degenerate)
        return collapse_test(self.covariance_type)

    def _collapsed_now(self) -> Any:
        """:meth:`_collapse_stop` as the engine's ``stop_when(model)`` (None: no test)."""
        test = self._collapse_stop()
        if test is None:
            return None
        structure = COVARIANCE_STRUCTURES[self.covariance_type]

        def collapsed(model: Mixture) -> bool:
            gaussian = model.components
            k, d = gaussian.means.shape
            return bool(collapsed_components(
                model.weights, gaussian.means, structure.dense(gaussian.covariances, k, d),
                structure.dense(gaussian.precisions_cholesky, k, d), self.covariance_type,
                gaussian.reg_covar).any())

        return collapsed

    def _small_run(self, model: Mixture, X: np.ndarray, source: Any) -> EMResult | None:
        """The run of :meth:`_run` by the compiled small-data loop, where it applies.

        Plain or MAP soft EM of in-memory float64 rows without gaps, weights,
        labels, frozen parameters, acceleration, callback or printing, up to
        :data:`~emkit.distributions.gaussian.small_em.MAX_ROWS` rows (a prior and
        a noise component included): the same iterations as the engine, without
        its per-iteration overhead. None (the engine runs) where it does not apply
        or gives up.
        """
        if not self._small_fit_applies(X, source):
            return None
        components = model.components
        noisy = isinstance(components, NoisyGaussian)
        fit = small_em.run_small_em(
            X, model.weights, components.gaussian if noisy else components, tol=self.tol,
            max_iter=self.max_iter, stop_collapsed=self._collapse_stop(),
            noise_log_density=components.log_density if noisy else None)
        if fit is None:
            return None
        fitted = replace(model, weights=fit.weights,
                         components=(replace(components, gaussian=fit.gaussian) if noisy
                                     else fit.gaussian))
        return EMResult(model=fitted, history=fit.history.tolist(), n_iter=fit.n_iter,
                        converged=fit.converged)

    def _runs_plain_soft_em(self) -> bool:
        """Whether these parameters ask for plain soft EM, which the compiled loop runs
        whole: no frozen parameters, acceleration, checkpoint, callback or printing
        (a model selection asks this once for all its candidates). A prior's MAP EM
        and a noise component it runs too."""
        return (
            _SMALL_FIT
            and self.algorithm == "em"
            and not self.accelerate
            and set(self.params) == set("wmc")
            and self.checkpoint is None
            and self.callback is None
            and not self.verbose
            and self.max_iter >= 1
        )

    def _small_fit_applies(self, X: Any, source: Any) -> bool:
        """Whether :meth:`_small_run` may run this fit (see there)."""
        return (
            self._runs_plain_soft_em()
            and getattr(source, "sample_weight", None) is None
            and getattr(source, "labels", None) is None
            # The rows in memory are all the fit's rows (not a streamed fit's sample).
            and not scale.is_scalable(X)
            and getattr(source, "X", None) is X
            and small_em.applies(COVARIANCE_STRUCTURES[self.covariance_type], X)
        )

    def _check_initial_values(self, X: np.ndarray, structure: CovarianceStructure) -> None:
        k, d = self.n_components, X.shape[1]
        if self.weights_init is not None:  # with noise, the noise weight last
            v.check_weights(self.weights_init, k + bool(self.noise), X.dtype)
        if self.means_init is not None:
            v.check_shape(self.means_init, (k, d), "means_init", X.dtype)
        if self.precisions_init is not None:
            precisions = v.check_shape(
                self.precisions_init, structure.shape(k, d), "precisions_init", X.dtype
            )
            with single_threaded_blas():
                structure.precisions_cholesky_from_precisions(precisions)

    def _initial_model(
        self, X: np.ndarray, structure: CovarianceStructure, rng: np.random.RandomState,
        source: Any = None, start_index: np.ndarray | None = None,
    ) -> Mixture:
        """Starting mixture: from ``init_params``, overridden by any ``*_init`` given.

        The ``source``'s ``sample_weight`` weighs the start (weighted k-means,
        weighted estimates); its ``labels`` put known rows in their component.
        ``start_index``: where ``X`` is a streamed input's sample, the sampled
        rows' indices in the whole input (their ``noise_init`` values).
        """
        dtype = X.dtype
        estimated, weights = None, None
        if any(value is None for value in (self.weights_init, self.means_init,
                                           self.precisions_init)):
            row_weight = getattr(source, "sample_weight", None)
            labels = getattr(source, "labels", None)
            if row_weight is not None or labels is not None:
                X = source.X  # the rows in the order their weights and labels follow
            # Missing values are filled with column means for the start only.
            X_start = fill_with_column_means(X, row_weight)
            resp = initial_resp(X_start, self.n_components, self.init_params, rng,
                                row_weight)
            if self.noise:
                resp = self._noise_start(X_start, resp, rng, row_weight, labels, start_index)
            else:
                resp = _with_known_rows(resp, labels, row_weight)
            if self._small_fit_applies(X, source):  # the same start, by the compiled M-step
                # (the Gaussian columns: a noise column, if any, is the last)
                estimated = small_em.start_from_resp(
                    structure, X, np.ascontiguousarray(resp[:, :self.n_components]),
                    self.reg_covar, getattr(self, "_resolved_prior", None))
            if estimated is None:
                with single_threaded_blas():  # many tiny factorisations, see run_em
                    estimated = gaussian_from_resp(
                        structure, X_start, resp[:, :self.n_components], self.reg_covar,
                        getattr(self, "_resolved_prior", None))
            counts = resp.sum(axis=0) + 10 * np.finfo(dtype).eps
            weights = counts / counts.sum()
        if self.weights_init is not None:
            weights = np.asarray(self.weights_init, dtype=dtype)
        if self.means_init is None:
            means = estimated.means
        else:
            means = np.asarray(self.means_init, dtype=dtype)
        if self.precisions_init is None:
            components = replace(estimated, means=means)
        else:
            precisions = np.asarray(self.precisions_init, dtype=dtype)
            with single_threaded_blas():
                components = gaussian_from_precisions(
                    structure, means, precisions, self.reg_covar
                )
        return self._with_noise(self._with_frozen(Mixture(weights=weights, components=components)))

    def _noise_start(self, X: np.ndarray, resp: np.ndarray, rng: Any,
                     row_weight: np.ndarray | None = None,
                     labels: np.ndarray | None = None,
                     start_index: np.ndarray | None = None) -> np.ndarray:
        """Starting responsibilities (n, K + 1) with the noise component last, times the
        row weights.

        Rows labelled ``K`` (the noise) and ``noise_init`` rows are wholly noise and
        the Gaussian start is made from the others (as mclust's); without either
        every row keeps its start ``resp`` and the noise takes 0.1 of each. Rows
        labelled with a Gaussian component are one-hot there (a label outranks
        ``noise_init``), the start's components renamed to agree with them.
        """
        k, n = self.n_components, X.shape[0]
        out = np.zeros((n, k + 1), dtype=resp.dtype)
        known = np.zeros(n, bool) if labels is None else (labels >= 0) & (labels < k)
        noise_labelled = np.zeros(n, bool) if labels is None else labels == k
        gaussian_labels = None if labels is None else np.where(noise_labelled, -1, labels)
        if self.noise_init is None and not noise_labelled.any():
            out[:, :k], out[:, k] = 0.9 * aligned_to_labels(resp, gaussian_labels), 0.1
            if known.any():  # known rows wholly in their component
                out[known] = 0.0
                out[np.flatnonzero(known), labels[known]] = 1.0
        else:
            noisy = noise_labelled.copy()
            if self.noise_init is not None:
                noisy |= self._noise_rows(n, start_index) & ~known
            if (~noisy).sum() < k:
                raise ValueError(f"noise_init and the noise labels leave {(~noisy).sum()} "
                                 f"rows for {k} components")
            rest = ~noisy
            start = initial_resp(X[rest], k, self.init_params, rng,
                                 None if row_weight is None else row_weight[rest])
            out[rest, :k] = aligned_to_labels(
                start, None if gaussian_labels is None else gaussian_labels[rest])
            out[noisy, k] = 1.0
        if row_weight is not None:
            out *= row_weight[:, None].astype(out.dtype)
        return out

    def _noise_rows(self, n_samples: int, start_index: np.ndarray | None = None) -> np.ndarray:
        """``noise_init`` of the start's rows: all of them, or a streamed input's sample
        (``start_index``; the whole mask was checked by :meth:`_check_streamed_noise_init`)."""
        if start_index is not None:
            return np.asarray(self.noise_init)[start_index]
        return _checked_noise_init(self.noise_init, n_samples)

    def _check_streamed_noise_init(self, source: Any) -> None:
        """A streamed input's ``noise_init``: one boolean per row of the whole input."""
        if self.noise and self.noise_init is not None:
            _checked_noise_init(self.noise_init, scale.n_rows(source))

    def _with_noise(self, model: Mixture) -> Mixture:
        """``model`` with the uniform noise component, when ``noise=True``."""
        if not self.noise:
            return model
        weights = model.weights
        if len(weights) == self.n_components:  # the fitted Gaussian weights, then the noise's
            # (a warm start from a fit without noise gives the noise 0.1 of the weight)
            noise = getattr(self, "noise_weight_", None)
            weights = (np.append(weights, noise) if noise is not None
                       else np.append(0.9 * weights / weights.sum(), 0.1)).astype(weights.dtype)
        components = NoisyGaussian(model.components, -float(np.log(self.noise_volume_)))
        return replace(model, weights=weights, components=components)

    def _check_noise_options(self, X: Any) -> None:
        if not self.noise:
            if self.noise_init is not None:
                raise ValueError("noise_init is given but noise=False")
            return
        if self.noise_volume is not None and not (np.isfinite(self.noise_volume)
                                                  and self.noise_volume > 0):
            raise ValueError(f"noise_volume must be a number > 0, got {self.noise_volume!r}")

    def _with_frozen(self, model: Mixture) -> Mixture:
        """``model`` with the parameters ``params`` leaves out frozen."""
        fixed = _fixed_parameters(self.params)
        prior = getattr(self, "_resolved_prior", None)
        if not fixed and prior is None and "w" in self.params and model.fit_weights:
            return model  # nothing frozen, no prior: the model as it is
        components = model.components if not fixed else replace(model.components, fixed=fixed)
        if prior is not None:
            components = replace(components, prior=prior)
        return replace(model, components=components, fit_weights="w" in self.params)

    def _check_prior_options(self) -> None:
        """A prior's M-step is the posterior mode of every parameter at once."""
        if self.prior is None:
            return
        if not isinstance(self.prior, ConjugatePrior):  # (a given scale fits one model only)
            resolve_prior(self.prior, np.zeros((2, 1)), 1, "V")  # its type, named if wrong
        frozen = set(self.params) != set("wmc")
        clash = [name for name, bad in (("accelerate=True", self.accelerate),
                                        (f"params={self.params!r}", frozen)) if bad]
        if clash:
            raise ValueError(f"prior= does not combine with {' or '.join(clash)}: its M-step "
                             "is the posterior mode of all parameters together")

    def _reporter(self, init_index: int):
        """The engine callback: the user's ``callback`` plus ``verbose`` printing."""
        if not self.verbose:
            return self.callback
        start = time.perf_counter()
        print(f"Initialization {init_index}", file=sys.stdout)

        def report(iteration: int, lower_bound: float, change: float, model: Any) -> None:
            if self.verbose >= 2 and iteration % self.verbose_interval == 0:
                elapsed = time.perf_counter() - start
                print(
                    f"  Iteration {iteration}\t time lapse {elapsed:.5f}s\t "
                    f"ll {lower_bound:.6f}\t ll change {change:.5g}",
                    file=sys.stdout,
                )
            if self.callback is not None:
                self.callback(iteration, lower_bound, change, model)

        return report

    def _set_fitted(self, result: EMResult) -> None:
        self._set_parameters(result.model)
        self._fitted_as = (self.n_components, self.covariance_type)
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound
        self.history_ = np.asarray(result.history, dtype=np.float64)
        self._fit_degeneracy = None
        # A later partial_fit stream continues from these parameters (see partial_fit).
        self._online_stats, self._online_step, self._online_buffer = None, 0, None

    def _adopt_fit(self, weights: np.ndarray, gaussian: Gaussian, history: np.ndarray,
                   n_iter: int, converged: bool, X: np.ndarray,
                   checked_by: GaussianMixture) -> None:
        """Record a fit run outside :meth:`fit` as :meth:`_fit` records its own.

        A model selection runs its candidates' EM by the compiled loop alone
        (in-memory rows that ``checked_by`` checked, plain soft EM) and makes an
        estimator only of the one it keeps.
        """
        self._take_feature_names(checked_by)
        self._resolved_prior = gaussian.prior  # (as a fit with a prior leaves it)
        self._set_fitted(EMResult(model=Mixture(weights=weights, components=gaussian),
                                  history=list(history), n_iter=n_iter, converged=converged))
        self.n_samples_seen_ = _rows_fitted(X, X)
        self._fit_degeneracy = (X.shape[0], degeneracy_reasons(self, X.shape[0]))

    def _set_parameters(self, mixture: Mixture) -> None:
        gaussian: Gaussian = mixture.components
        weights = mixture.weights
        if isinstance(gaussian, NoisyGaussian):
            gaussian, weights = gaussian.gaussian, weights[:-1]
            self.noise_weight_ = float(mixture.weights[-1])
        structure = gaussian.structure
        self.weights_ = weights
        self.means_ = gaussian.means
        self.covariances_ = gaussian.covariances
        self.precisions_cholesky_ = gaussian.precisions_cholesky
        self.precisions_ = structure.precisions(gaussian.precisions_cholesky)
        if "covariances" in gaussian.fixed and self.precisions_init is not None:
            # Frozen as given: the very values of precisions_init, not a round trip.
            self.precisions_ = np.array(self.precisions_init, dtype=self.means_.dtype)

    # --------------------------------------------------------------- online

    def partial_fit(
        self, X: Any, y: Any = None, *, sample_weight: Any = None
    ) -> GaussianMixture:
        """One step of online (stepwise) EM on a batch of rows.

        Not with ``prior`` (a fit's prior is resolved from its data).

        On an unfitted estimator, the first calls gather rows until there are
        :meth:`first_batch_rows` of them (``n_components * max(30, 2 *
        (n_features + 1))``: enough for each component's start), then fit
        them as ``fit`` does; until then the estimator stays unfitted. A
        smaller start cannot be trusted: on iris, ten rows started three full
        components that one epoch of ten-row batches left at weights
        0.998/0.001/0.001.

        Every later call runs one E-step on the batch (any number of rows, one
        included), blends its per-row statistics into the running ones with
        step ``g = (t + online_t0) ** -online_kappa`` and runs one M-step. The
        fitted model (after that first fit, ``fit`` or ``emkit.load``) is the
        start of the stream: its running statistics are those its parameters
        expect per row (their M-step gives the parameters back), and it counts
        as ``n_samples_seen_ / n_batch`` batches, so ``t`` starts there: a row
        after a fit on 1000 rows takes the step of the 1001st one-row batch
        and barely moves the model (with ``online_kappa=1, online_t0=0`` each
        batch then weighs by its rows exactly). A model file without
        ``n_samples_seen_`` counts as ``n_parameters`` rows. With
        ``algorithm="stochastic"`` each batch's draws are seeded by
        ``random_state`` and the batch number.

        Each call after the first fit appends the batch's average
        log-likelihood under the parameters before the step to ``history_``,
        counts one in ``n_iter_`` and adds its rows to ``n_samples_seen_``.

        Parameters
        ----------
        X : array-like of shape (n_batch, n_features)
            A batch of rows, with the width of the first.
        y : ignored
        sample_weight : array-like of shape (n_batch,), optional
            Row weights, as :meth:`fit` takes them: the batch's statistics
            are weighted sums and it counts as its summed weight in rows.

        Returns
        -------
        self
        """
        if self.prior is not None:
            raise ValueError("partial_fit does not take a prior (prior=): use fit")
        if not hasattr(self, "means_"):
            return self._gather_first_rows(X, sample_weight)
        X = self._validate_X(X, reset=False)
        weights = v.check_sample_weight(sample_weight, X.shape[0])
        model = self._online_model()
        batch = expected_stats(model, self._fit_source(X, weights))
        if batch.n_samples == 0:  # nothing observed in this batch: nothing to learn
            return self
        running = getattr(self, "_online_stats", None)
        step = getattr(self, "_online_step", 0)
        if running is None:  # continue from the fitted model, worth its rows
            running = fitted_online_stats(self)
            self._online_offset = self._rows_seen() / batch.n_samples
        t = getattr(self, "_online_offset", 1.0) + step
        self._online_stats, fitted = online_step(
            model, running, batch, t, self.online_t0, self.online_kappa
        )
        self._online_step = step + 1
        self._set_parameters(fitted)
        self.lower_bound_ = batch.log_likelihood / batch.n_samples
        self.history_ = np.append(self.history_, self.lower_bound_)
        self.n_iter_ += 1
        self.n_samples_seen_ = int(self._rows_seen()) + round(batch.n_samples)
        return self

    def first_batch_rows(self, n_features: int) -> int:
        """Rows :meth:`partial_fit` gathers before its first fit.

        Per component 30, or twice the ``n_features + 1`` rows a full
        covariance needs to be non-singular, whichever is more. (On iris, one
        epoch of ten-row batches after a start from 10 rows per component left
        a component below weight 0.02 for 2 of 8 shuffles, after 30 for none.)
        """
        return self.n_components * max(30, 2 * (n_features + 1))

    def _gather_first_rows(self, X: Any, sample_weight: Any = None) -> GaussianMixture:
        """Keep the rows (and weights) of an unfitted stream; fit them once there are enough."""
        gathered = getattr(self, "_online_buffer", None)
        v.validate_params(self, _PARAMETER_RULES)
        X = self._validate_X(X, reset=gathered is None)
        weights = v.check_sample_weight(sample_weight, X.shape[0])
        gathered_weights = getattr(self, "_online_buffer_weights", None)
        if weights is not None or gathered_weights is not None:
            previous = 0 if gathered is None else gathered.shape[0]
            weights = np.concatenate([
                np.ones(previous) if gathered_weights is None else gathered_weights,
                np.ones(X.shape[0]) if weights is None else weights,
            ])
        rows = X if gathered is None else np.concatenate([gathered, X.astype(gathered.dtype)])
        if rows.shape[0] < self.first_batch_rows(rows.shape[1]):
            self._online_buffer, self._online_buffer_weights = rows, weights
            return self
        self._online_buffer, self._online_buffer_weights = None, None
        return self.fit(rows, sample_weight=weights)

    def _rows_seen(self) -> float:
        """Rows the fitted model stands for; ``n_parameters`` for files that did not say."""
        seen = getattr(self, "n_samples_seen_", None)
        return float(seen) if seen else float(self._n_parameters())

    def _online_model(self) -> Mixture:
        # Stochastic draws differ per batch, reproducibly for a fixed random_state.
        entropy = v.seed_sequence(self.random_state).entropy
        seed = np.random.SeedSequence(entropy, spawn_key=(getattr(self, "_online_step", 0),))
        return replace(self._model(), assignment=assignment_for(self.algorithm, seed))

    def _batch_stats(self, model: Mixture, X: np.ndarray) -> MixtureStats:
        return expected_stats(model, self._fit_source(X))

    def _warn_if_degenerate(self, n_samples: int | None) -> None:
        """One warning per fit, naming every degenerate component."""
        reasons = degeneracy_reasons(self, n_samples)
        self._fit_degeneracy = (n_samples, reasons)  # for degeneracy_after_fit
        if reasons:
            warnings.warn(
                f"{describe_degeneracy(self, reasons, n_samples)}: a spurious maximum of the "
                "likelihood (typically rows with repeated values), not real clusters. Try "
                "fewer components or another covariance_type; if features differ widely in "
                "scale, standardize them first; for rounded values, a reg_covar of the "
                "variance rounding adds (resolution**2 / 12).",
                DegenerateFitWarning,
                stacklevel=4,
            )

    def _degeneracy_message(self, n_samples: float) -> str:
        """Why standard errors would be meaningless here (collapsed components), or ""."""
        reasons = degeneracy_reasons(self, n_samples)
        return describe_degeneracy(self, reasons, n_samples) if reasons else ""

    @property
    def lower_bounds_(self) -> np.ndarray:
        """Alias of ``history_``, as scikit-learn names it."""
        return self.history_

    # Fitted state written by emkit.save and checked by emkit.load.
    _saved_arrays = (
        "weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "history_",
    )
    _saved_fit_scalars = ("converged_", "n_iter_", "lower_bound_", "n_features_in_",
                          "n_samples_seen_")
    # Rows the fitted model stands for (partial_fit weighs it by them); unknown (None)
    # in model files written before it was saved.
    n_samples_seen_: int | None = None

    def _check_fitted_state(self) -> None:
        """Raise ValueError if the fitted attributes are not a consistent mixture."""
        v.validate_params(self, _PARAMETER_RULES)
        k, d = self.n_components, self.n_features_in_
        shape = COVARIANCE_STRUCTURES[self.covariance_type].shape(k, d)
        expected = {"weights_": (k,), "means_": (k, d), "covariances_": shape,
                    "precisions_": shape, "precisions_cholesky_": shape,
                    "history_": (self.n_iter_,)}
        for name, want in expected.items():
            value = getattr(self, name)
            if value.shape != want:
                raise ValueError(f"{name} has shape {value.shape}, expected {want}")
            if name != "history_" and not np.isfinite(value).all():
                raise ValueError(f"{name} contains non-finite values")
        noise = getattr(self, "noise_weight_", 0.0) if self.noise else 0.0
        if self.noise and not (0 <= noise <= 1 and getattr(self, "noise_volume_", 0) > 0):
            raise ValueError("noise_weight_ and noise_volume_ are not a noise component's")
        total = self.weights_.sum() + noise
        if (self.weights_ < 0).any() or not np.isclose(total, 1.0, atol=1e-5):
            raise ValueError("weights_ are not a probability vector")
        seen = self.n_samples_seen_
        if seen is not None and not (v.integer(1).accepts(seen)):
            raise ValueError(f"n_samples_seen_ must be None or an integer >= 1, got {seen!r}")

    # -------------------------------------------------------------- predict

    def _validate_X(self, X: Any, *, reset: bool, min_samples: int = 1) -> np.ndarray:
        X = v.validated_data(self, X, dtype=[np.float64, np.float32],
                             ensure_min_samples=min_samples, ensure_all_finite=False,
                             reset=reset)
        return v.check_finite(X, allow_nan=True)

    def _model(self) -> Mixture:
        """The fitted mixture, rebuilt from the public fitted attributes."""
        check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        structure = COVARIANCE_STRUCTURES[self.covariance_type]
        gaussian = Gaussian(
            structure=structure,
            means=self.means_,
            covariances=self.covariances_,
            precisions_cholesky=self.precisions_cholesky_,
            reg_covar=self.reg_covar,
        )
        return self._with_noise(self._with_frozen(Mixture(weights=self.weights_,
                                                          components=gaussian)))

    def predict(self, X: Any) -> Any:
        """Most likely component of each row, shape (n_samples,); -1 for noise.

        Lazy for a dask array. With ``noise=True`` rows most likely drawn from the
        noise component get -1.
        """
        return self._noise_as_minus_one(super().predict(X))

    def fit_predict(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fit, then return the most likely component of each row (-1 for noise)."""
        return self._noise_as_minus_one(super().fit_predict(X, y, **fit_params))

    def _noise_as_minus_one(self, labels: Any) -> Any:
        if not self.noise:
            return labels
        return np.where(labels == self.n_components, -1, labels)

    @property
    def _saved_scalars(self) -> tuple[str, ...]:
        noise = ("noise_weight_", "noise_volume_") if self.noise else ()
        return self._saved_fit_scalars + noise

    def _checked(self, X: Any) -> tuple[Mixture, np.ndarray]:
        return self._model(), self._validate_X(X, reset=False)
