"""Choosing the number of components and the covariance structure, as R's mclust does.

Every combination is fitted and scored by BIC, AIC and ICL. Fits that end in a
spurious maximiser (a component collapsed onto a few repeated values, its
variance pinned at the ``reg_covar`` floor where the data vary far more, or a
component supported by fewer rows than its covariance needs) have a likelihood
that means nothing; they are flagged ``degenerate`` and not selected while any
other candidate is usable, as mclust reports such fits as failed. Candidates the
rows cannot support (fewer rows than their components need) are not fitted at
all (``skipped``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from emkit.data import _validation as v
from emkit.distributions.gaussian import small_em
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES, MCLUST_MODELS
from emkit.distributions.gaussian.family import Gaussian
from emkit.distributions.gaussian.prior import PriorParameters, resolve_prior
from emkit.estimators.gaussian_mixture import (
    DegenerateFitWarning,
    GaussianMixture,
    collapse_test,
    collapsed_components,
    degeneracy_after_fit,
    describe_degeneracy,
    rows_needed,
    with_unsupported,
)
from emkit.estimators.initialization import HC_SUBSET, initial_resp
from emkit.estimators.regression_mixture import RegressionMixture

CRITERIA = ("bic", "aic", "icl")
# mclust's EM tolerance (emControl's tol[1]): relative change of the log-likelihood.
MCLUST_TOL = 1e-5


@dataclass
class SelectionResult:
    """Outcome of :func:`select_model`.

    Attributes
    ----------
    best_estimator : GaussianMixture or RegressionMixture
        The fitted model with the lowest criterion among non-degenerate fits
        (among all fitted candidates, with a warning, if every one is degenerate).
    table : pandas DataFrame
        One row per candidate: ``n_components``, ``covariance_type`` (as
        asked), ``model`` (its mclust name: full is VVV, tied EEE, diag VVI,
        spherical VII), ``bic``,
        ``aic``, ``icl``, ``log_likelihood`` (total), ``n_parameters``,
        ``converged``, ``degenerate``, ``skipped``, ``note`` (why a candidate
        is degenerate or skipped) and ``start`` (the start whose fit won:
        ``init_params``, ``"kmeans"`` where one of the k-means starts that
        ``n_init > 1`` adds to the hc start won, or e.g. ``"EVE fit"`` where the
        start from a nested model's fit won); sorted by
        the criterion, skipped candidates (criteria NaN) last. From
        :func:`select_regression_model`, ``family`` takes the place of
        ``covariance_type`` and ``model``.
    criterion : str
        The criterion used to choose.
    """

    best_estimator: GaussianMixture | RegressionMixture
    table: pd.DataFrame
    criterion: str

    def mclust_bic(self) -> pd.DataFrame:
        """The BIC table as mclust's ``mclustBIC`` prints it: higher is better.

        Rows are numbers of components, columns mclust's model names, values
        ``2 log L - n_parameters log n`` (``-bic`` here); NaN where a candidate
        was skipped or not asked for.

        Examples
        --------
        >>> from emkit import select_model
        >>> from emkit.datasets import load_faithful
        >>> result = select_model(load_faithful(), [1, 2], ("EII", "VVV"), n_init=1,
        ...                       random_state=0)
        >>> table = result.mclust_bic()  # mclust 6.0.0 prints the same numbers
        >>> table.columns.tolist(), table.index.tolist()
        (['EII', 'VVV'], [1, 2])
        >>> table.round(3).values.tolist()
        [[-4024.721, -2607.623], [-3452.998, -2322.192]]
        """
        if "model" not in self.table:
            raise ValueError("mclust_bic() is the table of a Gaussian mixture selection "
                             "(select_model); this one compares mixtures of regressions")
        table = self.table.assign(mclust_bic=-self.table["bic"])
        return table.pivot_table(index="n_components", columns="model", values="mclust_bic",
                                 dropna=False, sort=True)

    def plot(self, ax: Any = None) -> Any:
        """The criterion over components, one line per covariance type (matplotlib Axes)."""
        from emkit.plot import plot_selection

        return plot_selection(self.table, criterion=self.criterion, ax=ax)


def classification_entropy(resp: np.ndarray) -> float:
    """``-sum_i sum_k r_ik log r_ik``, the entropy term of ICL."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(resp > 0, resp * np.log(resp), 0.0)
    return float(-terms.sum())


class _Selection:
    """What the candidates of one selection share, made once rather than per fit.

    The estimator parameters, the checked rows and the estimator that checked
    them, the count of rows with something observed, whether the compiled loop
    runs the fits (see :func:`_compiled_fit_applies`), and the hc start's
    responsibilities for each number of components (every model starts from
    the same partition at each K, as in mclust; the estimator's own start:
    ``initial_resp`` from the same random state, which draws only beyond
    ``HC_SUBSET`` rows).
    """

    def __init__(self, params: dict, X: Any, checked_by: GaussianMixture) -> None:
        self.params, self.X, self.checked_by = params, X, checked_by
        self.n_observed = _observed_rows(X)
        self.compiled = _compiled_fit_applies(checked_by, X)
        if self.compiled:
            self.X = np.ascontiguousarray(X)
        self._hc_resp: dict[int, np.ndarray] = {}
        self._hc_weights: dict[int, np.ndarray] = {}
        self._priors: dict[tuple[int, str], PriorParameters | None] = {}
        self._mclust_gives_up: dict[int, bool] = {}

    def prior_for(self, k: int, covariance_type: str) -> PriorParameters | None:
        """The candidate's resolved prior (None without one), as its estimator resolves it:
        the default scale depends on the number of components and the model. (Compiled
        fits have no noise component.)"""
        key = (k, covariance_type)
        if key not in self._priors:
            self._priors[key] = resolve_prior(self.params.get("prior"), self.X, k,
                                              COVARIANCE_STRUCTURES[covariance_type].model)
        return self._priors[key]

    def mclust_gives_up(self, k: int) -> bool:
        """:func:`_mclust_stops_at_first_m_step` of the hc start at ``k`` (EVE and VVE
        ask alike)."""
        if k not in self._mclust_gives_up:
            self._mclust_gives_up[k] = _mclust_stops_at_first_m_step(self.X, self.hc_resp(k))
        return self._mclust_gives_up[k]

    def compiled_for(self, covariance_type: str) -> bool:
        return self.compiled and small_em.covers(COVARIANCE_STRUCTURES[covariance_type],
                                                 self.X.shape[1])

    def hc_resp(self, k: int) -> np.ndarray:
        if k not in self._hc_resp:
            # A RandomState costs more than a small fit to seed: made only where drawn from.
            draws = self.X.shape[0] > HC_SUBSET
            self._hc_resp[k] = initial_resp(
                self.X, k, "hc", v.random_state_of(self.params["random_state"]) if draws else None)
        return self._hc_resp[k]

    def hc_weights(self, k: int) -> np.ndarray:
        """The weights of :meth:`hc_resp` (as an M-step gives them), shared by every model."""
        if k not in self._hc_weights:
            counts = self.hc_resp(k).sum(axis=0) + 10 * np.finfo(self.X.dtype).eps
            self._hc_weights[k] = counts / counts.sum()
        return self._hc_weights[k]


def _compiled_fit_applies(checked_by: GaussianMixture, X: Any) -> bool:
    """Whether the candidates' fits are plain soft EM that the compiled loop runs whole.

    ``checked_by`` has the candidates' parameters (see
    :meth:`GaussianMixture._runs_plain_soft_em`) and checked the rows already;
    model by model, see :meth:`_Selection.compiled_for`.
    """
    return (
        checked_by._runs_plain_soft_em()
        # (with a noise component each candidate's estimator takes the compiled loop)
        and not checked_by.noise
        and isinstance(X, np.ndarray)
        and small_em.applies(COVARIANCE_STRUCTURES["VVV"], X)
    )


@dataclass(frozen=True)
class _CompiledFit:
    """A candidate fitted by the compiled loop alone, without an estimator around it.

    A selection fits hundreds of candidates and keeps one: building, checking
    and filling a :class:`GaussianMixture` for each cost more than the fits
    themselves on small data. This reads as a fitted estimator where scoring
    and the nested starts read one; the chosen candidate becomes an estimator
    at the end (:func:`_estimator_of`).
    """

    covariance_type: str
    reg_covar: float
    fit: small_em.DenseFit
    n_samples: int
    # The start of a nested-start refit (given to the estimator as its *_init), else None.
    start: Any = None
    # The table's ``start`` where it is not init_params (a fit along mclust's path).
    label: str | None = None
    # The resolved prior of a MAP fit (None: maximum likelihood), read as the estimator's.
    prior: PriorParameters | None = None
    # As a fitted GaussianMixture reads for scoring: no noise component, nothing frozen.
    noise = False
    params = "wmc"

    @property
    def n_components(self) -> int:
        return self.fit.means.shape[0]

    @property
    def weights_(self) -> np.ndarray:
        return self.fit.weights

    @property
    def means_(self) -> np.ndarray:
        return self.fit.means

    @property
    def covariances_(self) -> np.ndarray:
        return small_em.in_structure_shape(COVARIANCE_STRUCTURES[self.covariance_type],
                                           self.fit.covariances)

    @property
    def precisions_cholesky_(self) -> np.ndarray:
        return small_em.in_structure_shape(COVARIANCE_STRUCTURES[self.covariance_type],
                                           self.fit.precisions_cholesky)

    @property
    def converged_(self) -> bool:
        return self.fit.converged

    @property
    def lower_bound_(self) -> float:
        return float(self.fit.history[-1])

    @cached_property  # (read by the mclust path's check, then by the scoring)
    def _fit_degeneracy(self) -> tuple[int, dict[int, str]]:
        """What :func:`degeneracy_after_fit` reads: :func:`degeneracy_reasons`, compiled."""
        fit = self.fit
        if self.n_components == 1:
            return self.n_samples, {}
        collapsed = fit.collapsed  # the loop's own test where it ran it
        if collapsed is None:
            collapsed = collapsed_components(fit.weights, fit.means, fit.covariances,
                                             fit.precisions_cholesky, self.covariance_type,
                                             self.reg_covar)
        reasons = {i: "collapsed" for i, flag in enumerate(collapsed.tolist()) if flag}
        return self.n_samples, with_unsupported(reasons, fit.weights, self.covariance_type,
                                                fit.means.shape[1], self.n_samples, self.prior)


def _compiled_hc_fit(selection: _Selection, k: int,
                     covariance_type: str) -> _CompiledFit | None:
    """The hc start's fit by the compiled loop; None where it gives up (the estimator runs)."""
    params, X = selection.params, selection.X
    resp = selection.hc_resp(k)
    model = COVARIANCE_STRUCTURES[covariance_type].model
    prior = selection.prior_for(k, covariance_type)
    start = small_em.start_dense(model, X, resp, params["reg_covar"], prior=prior)
    if start is None:
        return None
    weights = selection.hc_weights(k)
    fit = _compiled_run(selection, covariance_type, weights, *start)
    # (With a prior, the estimator's fits take no mclust path: neither do these.)
    if fit is not None and model in ("EVE", "VVE") and prior is None:
        path = _mclust_path_fit(selection, covariance_type, resp, weights, start, fit)
        if (path is not None and path.lower_bound_ > fit.lower_bound_
                and not degeneracy_after_fit(path, path.n_samples)):
            return path
    return fit


def _mclust_path_fit(selection: _Selection, covariance_type: str, resp: np.ndarray,
                     weights: np.ndarray, exact_start: tuple,
                     exact_fit: _CompiledFit) -> _CompiledFit | None:
    """EVE's or VVE's fit from the hc start along mclust's path, then exact EM from its end.

    mclust's M-step for these models differs from the exact one
    (:func:`small_em.start_dense` with ``mclust_orientation``): its first
    orientation is turned from the identity, so where the orientation's
    objective has several minima it can take another than the exact step from
    the pooled scatter's axes (wreath, EVE with 8 components); and its VVE
    orientation weighs every component alike, another path altogether (chevron,
    VVE with 8). Both paths are EM's climbs to different maxima, and mclust's
    sometimes lands higher: following it too, the candidate ends where mclust's
    fit ends or higher. For EVE, mclust's path is the exact one after the first
    M-step, so it is run only where that first M-step differs.
    """
    params, X = selection.params, selection.X
    model = COVARIANCE_STRUCTURES[covariance_type].model
    if selection.mclust_gives_up(len(weights)):
        return None  # mclust has no fit here (NA): no path of its to follow
    start = small_em.start_dense(model, X, resp, params["reg_covar"], mclust_orientation=True)
    if start is None:
        return None
    if model == "EVE":
        # mclust's first M-step stops at its inner tolerance (a relative change of the
        # orientation's objective below sqrt(eps)): where both reach one minimum, their
        # covariances agree to a few 1e-4 (another minimum: 1e-2 and more on mclust's data).
        gap = np.abs(start[1] - exact_start[1]).max(axis=(1, 2))
        if np.all(gap <= 1e-3 * np.abs(exact_start[1]).max(axis=(1, 2))):
            return None  # the same first M-step: the same path
        first = small_em.DenseFit(weights, *start, history=np.empty(0), n_iter=0,
                                  converged=False)
    else:
        # Until mclust's own stopping rule: a relative change of the log-likelihood
        # below 1e-5 (emControl's tol[1]), on the scale of the exact fit's.
        tol = MCLUST_TOL * (1.0 / X.shape[0] + abs(exact_fit.lower_bound_))
        first = small_em.run_dense(X, weights, *start, model, params["reg_covar"], tol=tol,
                                   max_iter=params["max_iter"], mclust_orientation=True,
                                   stop_collapsed=_collapse_stop(covariance_type, len(weights)))
        # Finished by exact EM only where it leads above the exact fit: below it, mclust's
        # fit (this path's end) is already passed.
        if first is None or first.history[-1] <= exact_fit.lower_bound_:
            return None
    begun = _CompiledFit(covariance_type=covariance_type, reg_covar=params["reg_covar"],
                         fit=first, n_samples=X.shape[0])
    fit = _compiled_fit_from(selection, covariance_type, begun)
    return None if fit is None else replace(fit, label=f"{params['init_params']}, mclust's path")


def _mclust_stops_at_first_m_step(X: np.ndarray, resp: np.ndarray) -> bool:
    """Whether mclust's EVE/VVE EM ends at its first M-step, reporting NA.

    Its M-step (``meeve``, ``msvve``) gives up where a component's weighted scatter
    has an eigenvalue below ``sqrt(eps)`` (an absolute bound: a component of at most
    D rows, on any scale). On small data that is most large K (EuroUnemployment,
    31 rows: from K = 5 on).
    """
    counts = resp.sum(axis=0)
    means = (resp.T @ X) / np.where(counts > 0, counts, 1.0)[:, None]
    bound = np.sqrt(np.finfo(float).eps)
    for k in range(resp.shape[1]):
        centred = (X - means[k]) * np.sqrt(resp[:, k])[:, None]
        if np.linalg.eigvalsh(centred.T @ centred)[0] < bound:
            return True
    return False


def _compiled_fit_from(selection: _Selection, covariance_type: str,
                       start: Any) -> _CompiledFit | None:
    """A nested-start refit (see :func:`_fitted_from`) by the compiled loop, or None.

    The nested fit's covariances and precision factors are points of the larger
    model's parameters as they are (a nested model's covariances are the larger
    model's too), so no round trip through precision matrices is needed.
    """
    if isinstance(start, _CompiledFit):
        covariances, factors = start.fit.covariances, start.fit.precisions_cholesky
    else:
        nested = COVARIANCE_STRUCTURES[start.covariance_type]
        k, d = start.means_.shape
        covariances = np.asarray(nested.dense(start.covariances_, k, d))
        factors = np.asarray(nested.dense(start.precisions_cholesky_, k, d))
    return _compiled_run(selection, covariance_type, start.weights_, start.means_, covariances,
                         factors, start)


def _compiled_run(selection: _Selection, covariance_type: str, weights: np.ndarray,
                  means: np.ndarray, covariances: np.ndarray, factors: np.ndarray,
                  start: Any = None) -> _CompiledFit | None:
    params = selection.params
    prior = selection.prior_for(len(weights), covariance_type)
    fit = small_em.run_dense(selection.X, weights, means, covariances, factors,
                             COVARIANCE_STRUCTURES[covariance_type].model, params["reg_covar"],
                             tol=params["tol"], max_iter=params["max_iter"], scores=True,
                             stop_collapsed=_collapse_stop(covariance_type, len(weights)),
                             prior=prior)
    if fit is None or not (math.isfinite(fit.log_likelihood) and math.isfinite(fit.entropy)):
        return None  # the estimator's fit then decides (raises, or scores its own way)
    return _CompiledFit(covariance_type=covariance_type, reg_covar=params["reg_covar"],
                        fit=fit, n_samples=selection.X.shape[0], start=start, prior=prior)


def _collapse_stop(covariance_type: str, k: int) -> tuple[int, float, float] | None:
    """What ends a candidate's compiled run once a component has collapsed (see
    :func:`_fit_candidate_estimator`); None for one component, which never does."""
    return collapse_test(covariance_type) if k > 1 else None


def _fit_candidate_estimator(model: GaussianMixture, selection: _Selection) -> None:
    """``model._fit`` as a candidate's: quiet, and ending a run once a component collapses.

    A collapsed component (variance at the ``reg_covar`` floor) makes the fit
    degenerate: listed, never chosen, and as a nested start's refit dropped. EM
    would go on climbing the collapse's meaningless likelihood, on small data for
    hundreds of iterations, so runs stop there (as mclust's do, reporting such
    fits as failed). The compiled runs test the same (:func:`_collapse_stop`).
    """
    model._stop_when_collapsed = True
    try:
        with warnings.catch_warnings():
            # Non-convergence and degeneracy are reported in the table instead.
            warnings.simplefilter("ignore")
            model._fit(selection.X, checked_by=selection.checked_by)
    finally:  # the estimator handed back refits as any other
        model._stop_when_collapsed = False


def _estimator_of(fit: Any, selection: _Selection) -> GaussianMixture:
    """The chosen candidate as a fitted :class:`GaussianMixture` (as its own fit would leave it).

    A nested-start refit keeps its start as ``weights_init``, ``means_init`` and
    ``precisions_init``, so ``fit`` again reproduces it.
    """
    if not isinstance(fit, _CompiledFit):
        return fit
    settings = {**selection.params, "n_components": fit.n_components,
                "covariance_type": fit.covariance_type}
    if fit.start is not None:
        settings.update(_start_settings(fit.covariance_type, fit.start))
    model = GaussianMixture(**settings)
    structure = COVARIANCE_STRUCTURES[fit.covariance_type]
    gaussian = Gaussian(structure=structure, means=fit.means_, covariances=fit.covariances_,
                        precisions_cholesky=fit.precisions_cholesky_, reg_covar=fit.reg_covar,
                        prior=selection.prior_for(fit.n_components, fit.covariance_type))
    model._adopt_fit(fit.weights_, gaussian, fit.fit.history, fit.fit.n_iter, fit.converged_,
                     selection.X, selection.checked_by)
    return model


def _fitted_candidate(selection: _Selection, k: int,
                      covariance_type: str) -> GaussianMixture | _CompiledFit:
    """The candidate's fit; from the hc start, ``n_init - 1`` k-means starts on top.

    Built from the parameters rather than cloned, so a callback (e.g. a progress
    bar) is shared rather than deep-copied. The estimator's fit runs where the
    compiled loop alone does not (see :class:`_Selection`) or gives up.
    """
    params = selection.params
    if (params["init_params"] == "hc" and params["n_init"] == 1
            and selection.compiled_for(covariance_type)):
        fit = _compiled_hc_fit(selection, k, covariance_type)
        if fit is not None:
            return fit
    settings = {**params, "n_components": k, "covariance_type": covariance_type}
    if not (settings["init_params"] == "hc" and settings["n_init"] > 1):
        model = GaussianMixture(**settings)
        _fit_candidate_estimator(model, selection)
        return model
    # The hc start, then the k-means starts: the better fit; the other where one raises
    # (a start that ends singular), and the hc start's error where both do.
    hc = GaussianMixture(**{**settings, "n_init": 1})
    others = GaussianMixture(**{**settings, "init_params": "kmeans",
                                "n_init": settings["n_init"] - 1})
    fits, failure = [], None
    for model in (hc, others):
        try:
            _fit_candidate_estimator(model, selection)
            fits.append(model)
        except _FIT_FAILURES as error:
            failure = failure or error
    if not fits:
        raise failure
    return max(fits, key=lambda model: model.lower_bound_)


def _log_likelihood_and_entropy(model: GaussianMixture | _CompiledFit, X: Any,
                                n_observed: int) -> tuple[float, float]:
    """Total log-likelihood of ``X`` and the entropy of its responsibilities.

    One compiled E-step where it applies (complete float64 rows in memory, a
    noise component included; a compiled fit made it already); otherwise the
    estimator's own ``score`` and ``predict_proba``.
    """
    if isinstance(model, _CompiledFit):
        return model.fit.log_likelihood, model.fit.entropy
    structure = COVARIANCE_STRUCTURES[model.covariance_type]
    if isinstance(X, np.ndarray) and small_em.applies(structure, X):
        weights, log_noise = model.weights_, None
        if model.noise:  # the noise's weight and log density last, as the fit had them
            weights = np.append(weights, model.noise_weight_)
            log_noise = -float(np.log(model.noise_volume_))
        log_lik, entropy = small_em.final_scores(X, weights, model.means_,
                                                 model.precisions_cholesky_, structure,
                                                 log_noise)
        if np.isfinite(log_lik) and np.isfinite(entropy):
            return log_lik, entropy
    return model.score(X) * n_observed, classification_entropy(model.predict_proba(X))


def _n_parameters(model: GaussianMixture) -> int:
    """``model._n_parameters()``, without rebuilding the mixture where nothing is frozen."""
    if model.noise or set(model.params) != set("wmc"):
        return model._n_parameters()
    k, d = model.means_.shape
    return _free_parameters(model.covariance_type, k, d)


@lru_cache(maxsize=1024)
def _free_parameters(covariance_type: str, k: int, d: int) -> int:
    # (Cached: a selection asks for each (model, K) several times.)
    return k * d + COVARIANCE_STRUCTURES[covariance_type].n_parameters(k, d) + k - 1


def _observed_rows(X: Any) -> int:
    """Rows with something observed (those ``score`` averages over)."""
    values = np.asarray(X, dtype=float)
    return int((~np.isnan(values).all(axis=1)).sum())


@dataclass(frozen=True)
class _FailedFit:
    """A candidate whose fit raised (e.g. a covariance singular with ``reg_covar=0``).

    Listed (criteria NaN, as mclust reports NA), never chosen, never a nested
    start; a nested start's usable refit replaces it (any likelihood beats none).
    """

    reason: str
    lower_bound_ = -np.inf


# What a candidate's fit raises when its covariances break down on the way.
_FIT_FAILURES = (ValueError, np.linalg.LinAlgError, FloatingPointError)


def _score_candidate(selection: _Selection, k: int, covariance_type: str,
                     model: GaussianMixture | _CompiledFit | None = None,
                     start: str | None = None):
    """A candidate's fit (``model``, else fitted here) and its table row."""
    if model is None:
        try:
            model = _fitted_candidate(selection, k, covariance_type)
        except _FIT_FAILURES as error:  # one candidate's failure ends no selection
            reason = str(error).removeprefix("Fitting failed: ") or type(error).__name__
            return _FailedFit(reason), _failed_row(selection, k, covariance_type, reason)
    X, n_observed = selection.X, selection.n_observed
    if start is None:
        # The start that won: with init_params="hc" and n_init > 1 a k-means start may.
        start = model.label if isinstance(model, _CompiledFit) else model.init_params
    start = start or selection.params["init_params"]
    n_samples = X.shape[0]
    log_lik, entropy = _log_likelihood_and_entropy(model, X, n_observed)
    n_parameters = _n_parameters(model)
    # As model.bic(X) and model.aic(X) compute them, from the same log-likelihood.
    bic = -2 * log_lik + n_parameters * np.log(n_observed)
    reasons = degeneracy_after_fit(model, n_samples)
    return model, {
        "n_components": k,
        "covariance_type": covariance_type,
        "model": COVARIANCE_STRUCTURES[covariance_type].model,
        "bic": bic,
        "aic": -2 * log_lik + 2 * n_parameters,
        "icl": bic + 2 * entropy,
        "log_likelihood": log_lik,
        "n_parameters": n_parameters,
        "converged": bool(model.converged_),
        "degenerate": bool(reasons),
        "skipped": False,
        "note": describe_degeneracy(model, reasons, n_samples) if reasons else "",
        "start": start,
    }


def is_nested(sub: str, model: str) -> bool:
    """Whether mclust model ``sub``'s covariances are all covariances of ``model`` too.

    A name gives volume, shape and orientation; each letter of ``sub`` must be at
    least as constrained as ``model``'s: ``I`` (identity) within ``E`` (equal)
    within ``V`` (variable). The spherical models (``EII``, ``VII``) have no
    orientation to constrain, and their ``I`` shape sits in every shape.

    Examples
    --------
    >>> is_nested("EVE", "VVE"), is_nested("VVE", "EVE"), is_nested("VVI", "VVE")
    (True, False, True)
    """
    order = {"I": 0, "E": 1, "V": 2}
    return sub != model and all(order[a] <= order[b] for a, b in zip(sub, model, strict=True))


# The models nested in each of mclust's 14, in MCLUST_MODELS' order.
_NESTED_IN = {model: tuple(sub for sub in MCLUST_MODELS if is_nested(sub, model))
              for model in MCLUST_MODELS}


def _nested_starts_apply(params: dict) -> bool:
    # A noise component, or starting values the user gave, leave no room for another start.
    return not params.get("noise") and all(
        params.get(name) is None for name in ("weights_init", "means_init", "precisions_init"))


def _with_nested_starts(fitted: list, selection: _Selection, n_jobs: int | None,
                        progress: Any = None) -> list:
    """Each candidate also started from the best fit of a model nested in it.

    The fit of a nested model (EVE in VVE, VVI in VVE, EEE in EEV, ...) at the
    same number of components is a point of the larger model's parameter space,
    and EM from it never lowers the likelihood; so the larger model's fit from
    there is at least as good as every nested fit. The hc start alone leaves the
    likelihood surface's other maxima to chance: mclust's fit of VVE, whose
    orientation step omits the volumes (an inexact M-step), wanders into better
    maxima than the exact M-step from the same start on iris (K = 5), diabetes
    (K = 8) and banknote (K = 5, 7); the EVE and VEE fits start VVE in them.
    Models are visited from the most constrained on, so a start improved this
    way passes its gain to the models that nest it. A start's fit replaces the
    candidate's where it is usable (not degenerate) and better by the EM
    objective, or where the candidate's own fit is degenerate: a spurious
    maximum's likelihood (a collapse's grows without bound) says nothing, and a
    usable fit of the candidate can be chosen where the degenerate one cannot.
    """
    # Candidates by (K, mclust model); two names of one model ("full" and "VVV") share one.
    index: dict[tuple[int, str], list[int]] = {}
    for i, (_, row) in enumerate(fitted):
        index.setdefault((row["n_components"], row["model"]), []).append(i)
    for model in MCLUST_MODELS:  # ordered so that nested models come first
        jobs, members = [], []
        for (k, name), same in index.items():
            if name != model:
                continue
            members += same
            if k == 1:  # one component's fit is the M-step's from any start: nothing to gain
                continue
            subs = [fitted[j][0] for sub in _NESTED_IN[model] for j in index.get((k, sub), ())
                    if not fitted[j][1]["degenerate"]]
            if subs:
                subs.sort(key=lambda fit: fit.lower_bound_, reverse=True)
                jobs += [(i, fitted[i][1]["covariance_type"], subs) for i in same]
        refits = _in_turn_or_parallel(n_jobs, _usable_fit_from,
                                      [(selection, ct, subs) for _, ct, subs in jobs])
        for (i, _, _), scored in zip(jobs, refits, strict=True):
            if scored is not None and (fitted[i][1]["degenerate"]
                                       or scored[0].lower_bound_ > fitted[i][0].lower_bound_):
                fitted[i] = scored
        if progress is not None and _NESTED_IN[model]:  # its candidates are final now
            for i in members:
                progress(dict(fitted[i][1]))
    return fitted


def _in_turn_or_parallel(n_jobs: int | None, function: Any, arguments: list,
                         on_result: Any = None) -> list:
    """``function(*a)`` for each ``a`` of ``arguments``: in joblib's processes when
    ``n_jobs`` asks for them, else in a plain loop (joblib's bookkeeping costs more
    than a small compiled fit). ``on_result(result)``, if given, is called in this
    process as each result arrives (in order)."""
    if n_jobs is None or n_jobs == 1:
        results = (function(*args) for args in arguments)
    else:  # a generator, so results are reported as they come rather than all at the end
        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(function)(*args) for args in arguments)
    if on_result is None:
        return list(results)
    out = []
    for result in results:
        on_result(result)
        out.append(result)
    return out


def _usable_fit_from(selection: _Selection, covariance_type: str, starts: list):
    """The first fit, from ``starts`` in turn, that is not degenerate (scored), or None.

    The best nested fit can lead the larger model's extra freedom to a spurious
    maximum (a component collapsed onto a few rows); the next best is tried then.
    """
    for start in starts:
        model = _fitted_from(selection, covariance_type, start)
        if model is None:
            continue
        name = COVARIANCE_STRUCTURES[start.covariance_type].model
        scored = _score_candidate(selection, model.n_components, covariance_type, model=model,
                                  start=f"{name} fit")
        if not scored[1]["degenerate"]:
            return scored
    return None


def _fitted_from(selection: _Selection, covariance_type: str,
                 start: GaussianMixture | _CompiledFit) -> GaussianMixture | _CompiledFit | None:
    """A candidate's fit started from another (nested) model's fitted parameters."""
    if selection.compiled_for(covariance_type):
        fit = _compiled_fit_from(selection, covariance_type, start)
        if fit is not None:
            return fit
    settings = {**selection.params, "n_components": start.means_.shape[0],
                "covariance_type": covariance_type, **_start_settings(covariance_type, start)}
    model = GaussianMixture(**settings)
    try:
        _fit_candidate_estimator(model, selection)
        return model
    except _FIT_FAILURES:  # a component collapsed on the way
        return None


def _start_settings(covariance_type: str, start: Any) -> dict:
    """``*_init`` parameters that start ``covariance_type`` from the fit ``start``."""
    structure = COVARIANCE_STRUCTURES[covariance_type]
    k, d = start.means_.shape
    covariances = COVARIANCE_STRUCTURES[start.covariance_type].dense(start.covariances_, k, d)
    precisions = np.linalg.inv(covariances)  # those of the larger model's layout below
    if structure.name == "tied":
        precisions = precisions[0]
    elif structure.name == "diag":
        precisions = np.diagonal(precisions, axis1=1, axis2=2).copy()
    elif structure.name == "spherical":
        precisions = precisions[:, 0, 0].copy()
    return {"init_params": "kmeans", "n_init": 1, "weights_init": start.weights_,
            "means_init": start.means_, "precisions_init": precisions}


def _fewer_rows_hint(n_samples: int, n_features: int, covariance_types: list[str]) -> str:
    """What a selection with too few rows for every candidate can try instead."""
    if n_samples < 2:  # no model fits one row (rows_needed is at least 2)
        return "a mixture needs at least 2 rows"
    hint = f"try at most {n_samples // 2} component(s) (2 rows each)"
    if any(rows_needed(ct, n_features) > 2 for ct in covariance_types):
        hint += (f"; a full covariance per component (VVV, EVV) needs {n_features + 1} rows, "
                 "the other models 2")
    return hint + ", or give prior='default'"


def rows_shortfall(n_components: int, covariance_type: str, n_samples: int,
                   n_features: int) -> str:
    """Why ``n_samples`` rows cannot support the candidate ("" if they can).

    Each component needs :func:`~emkit.estimators.gaussian_mixture.rows_needed` rows; a
    tied covariance, shared, also needs ``n_features`` rows beyond one per mean.
    """
    each = rows_needed(covariance_type, n_features)
    needed = n_components * each
    if COVARIANCE_STRUCTURES[covariance_type].name == "tied":
        needed = max(needed, n_components + n_features)
    if n_samples >= needed:
        return ""
    return (f"skipped: {n_components} {covariance_type} component(s) need at least "
            f"{needed} rows, the data have {n_samples}")


def _skipped_row(k: int, covariance_type: str, n_features: int, reason: str) -> dict:
    """A table row for a candidate not fitted."""
    structure = COVARIANCE_STRUCTURES[covariance_type]
    n_parameters = k * n_features + structure.n_parameters(k, n_features) + k - 1
    return {
        "n_components": k, "covariance_type": covariance_type,
        "model": structure.model,
        "bic": np.nan, "aic": np.nan, "icl": np.nan, "log_likelihood": np.nan,
        "n_parameters": n_parameters, "converged": False, "degenerate": False,
        "skipped": True, "note": reason, "start": "",
    }


def _failed_row(selection: _Selection, k: int, covariance_type: str, reason: str) -> dict:
    """A table row for a candidate whose fit raised: degenerate, criteria NaN."""
    return {**_skipped_row(k, covariance_type, selection.X.shape[1], f"fit failed: {reason}"),
            "degenerate": True, "skipped": False, "start": selection.params["init_params"]}


def _checked_covariance_types(covariance_types: Any, n_features: int) -> tuple[str, ...]:
    """A single name, "all" (mclust's 14 models), or a sequence of known structures.

    With one feature, "all" is mclust's univariate pair ``E`` and ``V``: the 14
    models reduce to them there (fitting all 14 would repeat each of the two).
    """
    if isinstance(covariance_types, str) and covariance_types == "all":
        return ("E", "V") if n_features == 1 else MCLUST_MODELS
    names = (covariance_types,) if isinstance(covariance_types, str) else tuple(covariance_types)
    unknown = [name for name in names if name not in COVARIANCE_STRUCTURES]
    if unknown or not names:
        raise ValueError(
            f"covariance_types must be one or more of {sorted(COVARIANCE_STRUCTURES)} "
            f"(or 'all', mclust's 14), got {covariance_types!r}"
        )
    # Refused here, not listed as a failed fit: a wrong choice, not a failure of the data.
    univariate = [name for name in names if name in ("E", "V")]
    if univariate and n_features != 1:
        raise ValueError(f"covariance types {univariate} are mclust's models for one feature; "
                         f"the data have {n_features} (EII and VII are their forms)")
    return names


def _checked_n_components(n_components: Any) -> tuple[int, ...]:
    """An int or an iterable of ints >= 1."""
    values = (n_components,) if isinstance(n_components, Integral) else tuple(n_components)
    if not values or not all(isinstance(k, Integral) and not isinstance(k, bool) and k >= 1
                             for k in values):
        raise ValueError(
            f"n_components must be integers >= 1 (or one of them), got {n_components!r}"
        )
    return tuple(int(k) for k in values)


def _chosen(fitted: list, criterion: str) -> int:
    """Index of the best candidate: non-degenerate if any, else the best flagged one.

    Candidates whose fit failed are never chosen; if every one failed, this raises.
    """
    ran = [i for i, (model, _) in enumerate(fitted) if not isinstance(model, _FailedFit)]
    if not ran:
        row = fitted[0][1]
        raise ValueError(
            f"every candidate's fit failed; the first ({row['n_components']} "
            f"{row['covariance_type']}): {row['note'].removeprefix('fit failed: ')}")
    usable = [i for i in ran if not fitted[i][1]["degenerate"]]
    if usable:
        return min(usable, key=lambda i: fitted[i][1][criterion])
    best = min(ran, key=lambda i: fitted[i][1][criterion])
    row = fitted[best][1]
    warnings.warn(
        f"every fitted candidate is degenerate; chose the best by {criterion} anyway "
        f"({row['n_components']} {row['covariance_type']}: {row['note']}). If features "
        "differ widely in scale, standardize them (emkit fit --standardize); with rounded or "
        "discrete values, give reg_covar the variance rounding adds (resolution**2 / 12); "
        "or try fewer components.",
        DegenerateFitWarning,
        stacklevel=3,
    )
    return best


def select_model(
    X: Any,
    n_components: int | Iterable[int] = range(1, 10),
    covariance_types: str | Sequence[str] = "all",
    *,
    criterion: str = "bic",
    init_params: str = "hc",
    n_init: int = 1,
    random_state: Any = None,
    n_jobs: int | None = None,
    nested_starts: bool | None = None,
    progress: Callable[[dict], Any] | None = None,
    **gmm_params: Any,
) -> SelectionResult:
    """Fit every (n_components, covariance_type) pair and keep the best by a criterion.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : int or iterable of int, default=range(1, 10)
        Candidate numbers of components.
    covariance_types : str or sequence of str, default="all"
        Candidate structures: any ``covariance_type`` of :class:`GaussianMixture`
        (scikit-learn's four names or mclust's 14 models); one name is one
        candidate structure, ``"all"`` mclust's 14 models (mclust's default; with
        one feature, mclust's ``E`` and ``V``, to which the 14 reduce).
        ``("full", "tied", "diag", "spherical")`` was the default before.
    criterion : {"bic", "aic", "icl"}, default="bic"
        Lower is better. ICL is BIC plus twice the classification entropy.
    init_params : str, default="hc"
        The start (any ``init_params`` of :class:`GaussianMixture`). ``"hc"``
        is mclust's: one hierarchical agglomeration under VVV, built once and
        cut at every number of components, each model starting from its
        classification, so every candidate ends where mclust's fit of it ends
        (or higher). EVE and VVE also follow mclust's own EM path from it
        (see Notes) and keep the better fit.
    n_init : int, default=1
        Starts per candidate (the likelihood surface has local maxima). With
        ``init_params="hc"`` the first is the hc start and the others k-means
        starts on top (drawn from ``random_state``); the best fit is kept.
    random_state : int or None
        Seed shared by every candidate, so they start from comparable inits.
    n_jobs : int, optional
        Candidates fitted in parallel processes (joblib); None fits them in turn.
    nested_starts : bool, optional
        Also start each of mclust's models from the best fit of a model nested in
        it (EVE in VVE, EEE in EEV, ...) with the same number of components, and
        keep the better fit: a larger model then never ends below a nested one,
        and its fit escapes maxima that the hc start alone leads it to (mclust's
        own fits included: see Notes). A second fit for 13 of the 14 models:
        1.5-2 times the time of the hc fits alone (mclust's data sets, K = 1..9).
        Not with ``noise=True`` or given ``*_init`` values. The default, None, means
        True with the hc start (one deterministic start, mclust's) and False
        with random starts, which explore on their own.
    progress : callable, optional
        ``progress(row)``, called in this process once per candidate when its
        fit is final (with ``n_jobs`` too, as the workers' results arrive),
        with its row of the table as a dict (``n_components``,
        ``covariance_type``, ``bic``, ..., ``start``); skipped candidates first,
        at once. So it is called ``len(result.table)`` times: a progress bar
        over candidates. With nested starts a candidate is final once the
        models nested in it have started it, so the calls come model by model
        after the first pass (at once for models with nothing nested in them).
        Unlike ``callback`` (called every EM iteration, which keeps the fits
        off the compiled small-data loop), it leaves the fits' path as it is.
    **gmm_params
        Other :class:`GaussianMixture` parameters; ``tol`` defaults to 1e-5 and
        ``max_iter`` to 500 here, so candidates are compared near their optima.
        ``prior="default"`` (mclust's ``prior = priorControl()``) fits every
        candidate by MAP EM and skips none for lack of rows (the prior keeps
        small components from collapsing); ``noise=True`` gives every
        candidate a noise component.

    Returns
    -------
    SelectionResult

    Notes
    -----
    The likelihood of a mixture has many maxima, and where EM ends depends on its
    start and on its path. mclust's M-steps for EVE and VVE turn their first
    orientation from the identity (the exact step here from the pooled scatter's
    axes: where the orientation's objective has several minima, they part), and
    mclust's VVE step weighs every component alike in its orientation step (the
    exact step weighs each by its inverse volume). So from the same hc start
    mclust's EM follows other paths, and at times ends at better maxima: iris
    (VVE, K = 5), diabetes (VVE, 8), banknote (VVE, 5 and 7), chevron (VVE, 8),
    wreath (EVE, 8). With the hc start (compiled fits, ``n_init=1``), EVE and VVE
    also follow mclust's path, then exact EM from its end (mclust's VVE ends are
    not maxima of the VVE likelihood: EM climbs further), where that path leads
    above the exact one; nested starts reach further maxima.

    Candidates with fewer rows than their components need (:func:`rows_shortfall`)
    are skipped (listed in the table, not fitted). A candidate whose fit raises
    (e.g. a covariance singular with ``reg_covar=0`` on repeated rows) is listed
    with NaN criteria (mclust's NA), ``degenerate`` and a ``note`` "fit failed:
    ...", and never chosen nor used as a nested start. Degenerate fits (see
    :func:`emkit.estimators.gaussian_mixture.degenerate_components`) are listed but not
    chosen. A candidate's EM run ends at the first M-step that leaves a component
    collapsed (its variance at the ``reg_covar`` floor): EM would only climb the
    collapse's meaningless likelihood further, for hundreds of iterations on small data
    (mclust stops there too, and reports NA). Such a row has ``converged`` False and
    its note says which components collapsed; its criteria are those where it
    stopped; if every fitted candidate is degenerate, the best of them is chosen
    with a :class:`~emkit.estimators.gaussian_mixture.DegenerateFitWarning`. Degeneracy is
    measured against the data's own variances, but ``reg_covar`` is absolute: on
    features of very different scales, standardize first.

    Raises
    ------
    ValueError
        On an unknown criterion or covariance type, a non-integer or
        non-positive number of components, when the rows support no
        candidate, or when every candidate's fit fails (naming the first's reason).
    TypeError
        If ``progress`` is given and not callable.

    Examples
    --------
    >>> from emkit import select_model
    >>> from emkit.datasets import load_faithful
    >>> result = select_model(load_faithful(), range(1, 5), ("tied", "full"), random_state=0)
    >>> result.best_estimator.covariance_type, result.best_estimator.n_components
    ('tied', 3)
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable (called with each row), got {progress!r}")
    n_components = _checked_n_components(n_components)
    X = np.asarray(X, dtype=float) if not hasattr(X, "iloc") else X
    if np.ndim(X) != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {np.shape(X)}")
    n_samples, n_features = np.shape(X)
    covariance_types = _checked_covariance_types(covariance_types, n_features)
    # Selection compares likelihoods, so each candidate is run closer to its optimum
    # than GaussianMixture's defaults would (mclust does likewise).
    settings = {"tol": 1e-5, "max_iter": 500, **gmm_params}
    params = GaussianMixture(init_params=init_params, n_init=n_init, random_state=random_state,
                             **settings).get_params()
    candidates, skipped = [], []
    for ct in covariance_types:
        for k in n_components:
            # Too few rows for the components: their fit is to single rows (a spurious
            # maximum, or an outlier per component) that BIC would reward.
            # A prior keeps small components from collapsing: every candidate is fitted.
            reason = None if gmm_params.get("prior") is not None else rows_shortfall(
                k, ct, n_samples, n_features)
            if reason:
                skipped.append(_skipped_row(k, ct, n_features, reason))
            else:
                candidates.append((k, ct))
    if not candidates:
        raise ValueError(
            f"no candidate can be fitted to {n_samples} rows: "
            f"{skipped[0]['note'].removeprefix('skipped: ')}; "
            f"{_fewer_rows_hint(n_samples, n_features, covariance_types)}"
        )
    # The rows are checked once here (as each fit would check them), not per candidate.
    checked_by = GaussianMixture(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as the candidates' fits keep quiet
        X = checked_by._checked_rows(X)
    checked_by._warn_if_regularization_dominates(X)  # once, not per candidate
    selection = _Selection(params, X, checked_by)
    if nested_starts is None:
        nested_starts = init_params == "hc"
    nested_starts = nested_starts and _nested_starts_apply(params)
    for row in skipped if progress is not None else ():
        progress(dict(row))
    fitted = _in_turn_or_parallel(n_jobs, _score_candidate,
                                  [(selection, k, ct) for k, ct in candidates],
                                  _final_now(progress, nested_starts))
    if nested_starts:
        fitted = _with_nested_starts(fitted, selection, n_jobs, progress)
    best = _chosen(fitted, criterion)
    table = pd.DataFrame([row for _, row in fitted] + skipped)
    table = table.sort_values(criterion, kind="stable", na_position="last")
    estimator = _estimator_of(fitted[best][0], selection)
    return SelectionResult(estimator, table.reset_index(drop=True), criterion)


def _final_now(progress: Any, nested_starts: bool) -> Any:
    """What reports a first-pass fit to ``progress``: those no nested start revisits."""
    if progress is None:
        return None

    def report(scored: tuple) -> None:
        row = scored[1]
        if not (nested_starts and _NESTED_IN.get(row["model"])):
            progress(dict(row))

    return report


def _score_regression(params: dict, X: np.ndarray, y: np.ndarray, concomitant: Any,
                      k: int) -> tuple[RegressionMixture, dict]:
    model = RegressionMixture(**{**params, "n_components": k})
    with warnings.catch_warnings():
        # Non-convergence and degeneracy are reported in the table instead.
        warnings.simplefilter("ignore")
        model.fit(X, y, concomitant=concomitant)
    n_design = X.shape[1] + model.fit_intercept
    thin = np.flatnonzero(model.weights_ * len(y) < n_design + 1)
    note = "" if not thin.size else (
        f"component(s) {thin.tolist()} hold fewer rows than their {n_design} coefficients "
        "and scale: a degenerate fit")
    return model, {
        "n_components": k,
        "family": model.family,
        "bic": model.bic(X, y, concomitant),
        "aic": model.aic(X, y, concomitant),
        "icl": model.icl(X, y, concomitant),
        "log_likelihood": float(model.score_samples(X, y, concomitant).sum()),
        "n_parameters": model._n_parameters(),
        "converged": bool(model.converged_),
        "degenerate": bool(thin.size),
        "skipped": False,
        "note": note,
    }


def select_regression_model(
    X: Any,
    y: Any,
    n_components: int | Iterable[int] = range(1, 6),
    *,
    criterion: str = "bic",
    concomitant: Any = None,
    n_init: int = 3,
    random_state: Any = None,
    n_jobs: int | None = None,
    **params: Any,
) -> SelectionResult:
    """Fit a :class:`~emkit.RegressionMixture` for each number of components; keep the best.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Design, as for :meth:`RegressionMixture.fit`.
    y : array-like of shape (n_samples,)
        Responses; rows with a missing (NaN) ``y`` are left out of every fit
        and criterion.
    n_components : int or iterable of int, default=range(1, 6)
    criterion : {"bic", "aic", "icl"}, default="bic"
        Lower is better. ``icl`` is flexmix's ICL (:meth:`RegressionMixture.icl`:
        the BIC of the classification likelihood), so the table's numbers
        are those of flexmix's ``stepFlexmix`` from the same fits.
    concomitant : array-like of shape (n_samples, n_concomitant), optional
        Gating variables, with ``gating="logistic"``.
    n_init : int, default=3
        Random starts per candidate.
    random_state : int or None
        Seed shared by every candidate.
    n_jobs : int, optional
        Candidates fitted in parallel processes (joblib); None fits them in turn.
    **params
        Other :class:`~emkit.RegressionMixture` parameters (``family``,
        ``gating``, ``fit_intercept``, ``tol``, ...).

    Returns
    -------
    SelectionResult
        ``table`` has one row per candidate (``n_components``, ``family``, the
        three criteria, ``log_likelihood``, ``n_parameters``, ``converged``,
        ``degenerate``, ``skipped``, ``note``); ``best_estimator`` the chosen fit.
        A candidate with a component holding fewer rows than its coefficients
        is flagged degenerate and not chosen while another is usable;
        candidates with fewer rows than ``K (p + 2)`` are skipped.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import select_regression_model
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(0, 10, 300)
    >>> y = np.where(rng.random(300) < 0.5, 1 + 2 * x, 8 - x) + rng.normal(0, 0.5, 300)
    >>> result = select_regression_model(x[:, None], y, range(1, 4), random_state=0)
    >>> result.best_estimator.n_components
    2
    >>> result.table[["n_components", "bic"]].round(1).values.tolist()[0]
    [2.0, 811.6]
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    n_components = _checked_n_components(n_components)
    names = list(X.columns) if hasattr(X, "columns") else None
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if y.shape != (len(X),):
        raise ValueError(f"y must have shape ({len(X)},), got {y.shape}")
    observed = ~np.isnan(y)
    if not observed.all():
        warnings.warn(f"select_regression_model: {int((~observed).sum())} of {len(y)} rows have "
                      "a missing (NaN) y and are left out", UserWarning, stacklevel=2)
        X, y = X[observed], y[observed]
        concomitant = None if concomitant is None else np.asarray(concomitant)[observed]
    if names is not None:  # the fits keep the column names (feature_names_in_)
        X = pd.DataFrame(X, columns=names)
    base = RegressionMixture(n_init=n_init, random_state=random_state, **params)
    settings = base.get_params()
    each = X.shape[1] + base.fit_intercept + 1  # coefficients and a scale (or a weight)
    candidates, skipped = [], []
    for k in n_components:
        if len(y) >= k * each:
            candidates.append(k)
            continue
        note = (f"skipped: {k} component(s) of {each - 1} coefficients need at least "
                f"{k * each} rows, the data have {len(y)}")
        skipped.append({"n_components": k, "family": base.family, "bic": np.nan,
                        "aic": np.nan, "icl": np.nan, "log_likelihood": np.nan,
                        "n_parameters": np.nan, "converged": False, "degenerate": False,
                        "skipped": True, "note": note})
    if not candidates:
        reason = skipped[0]["note"].removeprefix("skipped: ")
        raise ValueError(f"no candidate can be fitted: {reason}")
    fitted = Parallel(n_jobs=n_jobs)(
        delayed(_score_regression)(settings, X, y, concomitant, k) for k in candidates
    )
    best = _chosen_regression(fitted, criterion)
    table = pd.DataFrame([row for _, row in fitted] + skipped)
    table = table.sort_values(criterion, kind="stable", na_position="last")
    return SelectionResult(fitted[best][0], table.reset_index(drop=True), criterion)


def _chosen_regression(fitted: list, criterion: str) -> int:
    """Index of the best candidate: non-degenerate if any, else the best flagged one."""
    usable = [i for i, (_, row) in enumerate(fitted) if not row["degenerate"]]
    if not usable:
        warnings.warn(f"every fitted candidate is degenerate; chose the best by {criterion} "
                      "anyway; try fewer components", UserWarning, stacklevel=3)
        usable = list(range(len(fitted)))
    return min(usable, key=lambda i: fitted[i][1][criterion])
