"""``emkit.MixtureModel``: a mixture of any component distributions, fitted by the emkit engine."""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from emkit.core.acceleration import MixtureCodec
from emkit.core.engine import EMResult, expected_stats, total_stats
from emkit.core.runs import check_accelerate, run_variant
from emkit.core.variants import ALGORITHMS, assignment_for
from emkit.data import _validation as v
from emkit.data import scale
from emkit.data.sources import ArraySource, IndexedArraySource, map_chunks
from emkit.distributions import Distribution, to_spec
from emkit.distributions.codec import ComponentListCodec
from emkit.distributions.component_list import ComponentList
from emkit.estimators._mixture_methods import MixtureMethods
from emkit.estimators.mixture_starts import (
    INIT_PARAMS,
    automatic_start,
    partition_start,
    random_labels,
)
from emkit.estimators.standard_errors import StandardErrorMethods
from emkit.io import register_estimator
from emkit.latent.mixture import Mixture
from emkit.latent.online import online_step, per_row, scaled


class IdenticalComponentsWarning(UserWarning):
    """Two or more fitted components have the same parameters (EM could not separate them)."""


_PARAMETER_RULES = {
    "components": v.Rule(
        lambda c: isinstance(c, Distribution) or (isinstance(c, list | tuple) and len(c) > 0),
        "a distribution (a template, with n_components) or a non-empty list of distributions",
    ),
    "n_components": v.Rule(
        lambda n: n is None or v.integer(1).accepts(n), "None or an integer >= 1"
    ),
    "init_params": v.Rule(
        lambda s: s is None or (isinstance(s, str) and s in INIT_PARAMS),
        f"None or one of {', '.join(repr(i) for i in INIT_PARAMS)}",
    ),
    "weights": v.OPTIONAL_ARRAY,
    "fit_weights": v.BOOLEAN,
    "frozen": v.Rule(
        lambda f: f is None or isinstance(f, bool | np.bool_) or (
            isinstance(f, list | tuple | np.ndarray) and np.ndim(f) == 1
            and all(isinstance(x, bool | np.bool_) for x in f)),
        "None, True/False, or a list of True/False (one per component)",
    ),
    "tol": v.real(0.0),
    "max_iter": v.integer(0),
    "n_init": v.integer(1),
    "random_state": v.RANDOM_STATE,
    "chunk_size": v.integer(1),
    "verbose": v.integer(0),
    "verbose_interval": v.integer(1),
    "algorithm": v.one_of(*ALGORITHMS),
    "accelerate": v.ACCELERATE,
    "online_kappa": v.Rule(
        lambda k: v.real(0.0).accepts(k) and 0.5 < k <= 1, "a number in (0.5, 1]"
    ),
    "online_t0": v.real(0.0),
}


@register_estimator
class MixtureModel(MixtureMethods, StandardErrorMethods, DensityMixin, BaseEstimator):
    """Mixture of any :mod:`emkit.distributions`, fitted by EM.

    The same engine and mixture as :class:`emkit.GaussianMixture`: each
    component brings its own densities, additive statistics and M-step, so
    binomial coins, Poisson counts, categories, binary features, Gaussians and
    products of these (:class:`~emkit.distributions.Independent`, for rows of
    mixed type) are all fitted the same way.

    Parameters
    ----------
    components : list of Distribution, or one Distribution as a template
        A list: the starting distributions, one per component, all reading the
        same columns. One distribution (not in a list), with ``n_components``:
        a template whose kind and settings (number of columns, ``n_trials``,
        ``covariance_type``, ``reg_covar``, ``prior``) every component shares;
        its parameter values are not used, as every start is automatic (see
        ``init_params``).
    n_components : int, optional
        Number of components of a template; with a list, None or its length.
    init_params : {"kmeans", "random"}, optional
        How automatic starts partition the rows before each component's M-step
        on its part: ``"kmeans"``, k-means (k-means++ seeding) on the columns
        scaled to unit variance, weights the parts' shares; ``"random"``, each row
        to a uniformly random component (every component getting one row at
        least), the starting weights. For a template, each row also lends a
        tenth of its weight to every component (so no start sits on a
        probability of exactly 0 or 1, which EM cannot leave). Default: ``"kmeans"`` for a template
        (every start), ``"random"`` for the further starts of a list.
    weights : array of shape (n_components,), optional
        Starting mixing weights (non-negative, summing to one); uniform if omitted.
    fit_weights : bool, default=True
        Whether EM re-estimates the weights; False keeps them fixed (the coin
        example's prior of 0.5).
    frozen : bool or list of bool, optional
        Components EM keeps exactly as given (``True`` at their index; one
        ``True`` freezes all), for a list of starting distributions: a known
        background or noise component, say. Frozen components stay the very
        objects given; :meth:`bic`/:meth:`aic` count only the free ones. Not
        with a template (its starts are automatic), nor with ``accelerate``.
    tol : float, default=1e-3
        Convergence threshold on the change of the average log-likelihood.
    max_iter : int, default=100
        Maximum number of EM iterations per start.
    n_init : int, default=1
        Number of starts; the one with the highest final log-likelihood is kept.
        With a list, the first start is ``components`` as given and every further
        one an automatic start (``init_params``, random partitions by default);
        with a template, every start is automatic. Each automatic start draws
        from its own child seed of ``random_state``.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the extra starts and sampling.
    chunk_size : int, default=4096
        Rows per chunk of the E-step; results do not depend on it beyond rounding.
    verbose : int, default=0
        1 prints per start, 2 also every ``verbose_interval`` iterations.
    verbose_interval : int, default=10
    algorithm : {"em", "hard", "stochastic"}, default="em"
        The EM variant, as for :class:`emkit.GaussianMixture`: ``"hard"``
        records the classification log-likelihood in ``history_``;
        ``"stochastic"`` runs exactly ``max_iter`` iterations and keeps the
        best parameters seen (highest observed-data log-likelihood).
    accelerate : bool or {"squarem", "daarem"}, default=False
        SQUAREM (True or ``"squarem"``) or DAAREM (``"daarem"``) extrapolation
        (``algorithm="em"`` only), as for :class:`emkit.GaussianMixture`, in the unconstrained
        parametrisation of :mod:`emkit.distributions.codec`;
        ``n_iter_`` counts passes over the data and ``history_`` never decreases.
    online_kappa : float in (0.5, 1], default=0.6
    online_t0 : float >= 0, default=2.0
        Step ``g_t = (t + online_t0) ** -online_kappa`` of online EM
        (:meth:`partial_fit`), as for :class:`emkit.GaussianMixture`.

    Data are converted to float64 (float32 data are kept where the components take
    the exponential-family kernel: see :mod:`emkit.distributions.expfam`); each
    distribution checks its own columns
    (counts, categories, binary values) and errors name the first bad row.

    A row that has probability zero under every component (a count, category
    or binary value that every component gives probability 0, as maximum
    likelihood does for values it never saw) has no responsibilities:
    ``fit``, ``partial_fit``, ``predict`` and ``predict_proba`` refuse it with a
    ValueError naming the rows (a ``partial_fit`` so refused leaves the model
    unchanged), and ``score_samples`` gives it ``-inf``. Give the
    distributions a conjugate ``prior`` (MAP EM, e.g. ``Bernoulli(p, prior=(2, 2))``)
    to keep every probability positive.

    After a fit, components with identical parameters (EM cannot separate
    components that start identical) raise an :class:`IdenticalComponentsWarning`.

    Attributes
    ----------
    components_ : list of Distribution
        The fitted components.
    weights_ : ndarray of shape (n_components,)
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Average log-likelihood of the best run's last E-step (plus the
        components' log prior over the number of rows, where they have a prior:
        the objective MAP EM never decreases).
    history_ : ndarray of shape (n_iter,)
        That objective at each iteration of the best run.
    n_features_in_ : int

    Examples
    --------
    The two coins of Do and Batzoglou (2008), prior fixed at one half:

    >>> import numpy as np
    >>> from emkit import MixtureModel
    >>> from emkit.distributions import Binomial
    >>> heads = np.array([[5], [9], [8], [4], [7]])
    >>> coins = MixtureModel([Binomial(10, 0.6), Binomial(10, 0.5)], fit_weights=False,
    ...                      tol=1e-10).fit(heads)
    >>> [round(c.p, 2) for c in coins.components_], coins.n_iter_
    ([0.8, 0.52], 16)

    Rows of mixed type, one column group per part:

    >>> from emkit.distributions import Bernoulli, Independent, Poisson
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([
    ...     np.column_stack([rng.poisson(1, 200), rng.random(200) < 0.9]),
    ...     np.column_stack([rng.poisson(8, 200), rng.random(200) < 0.1]),
    ... ])
    >>> start = [Independent([Poisson(2.0), Bernoulli(0.6)]),
    ...          Independent([Poisson(5.0), Bernoulli(0.4)])]
    >>> model = MixtureModel(start).fit(X)
    >>> [round(float(c.components[0].rate[0]), 1) for c in model.components_]
    [1.2, 7.5]

    A template and automatic starts (k-means on the scaled columns, best of 3):

    >>> auto = MixtureModel(Independent([Poisson(1.0), Bernoulli(0.5)]), n_components=2,
    ...                     n_init=3, random_state=0).fit(X)
    >>> sorted(round(float(c.components[0].rate[0]), 1) for c in auto.components_)
    [1.2, 7.5]
    """

    def __init__(
        self,
        components: Any,
        *,
        n_components: int | None = None,
        init_params: str | None = None,
        weights: Any = None,
        fit_weights: bool = True,
        frozen: Any = None,
        tol: float = 1e-3,
        max_iter: int = 100,
        n_init: int = 1,
        random_state: Any = None,
        chunk_size: int = 4096,
        verbose: int = 0,
        verbose_interval: int = 10,
        algorithm: str = "em",
        accelerate: bool | str = False,
        online_kappa: float = 0.6,
        online_t0: float = 2.0,
    ) -> None:
        self.components = components
        self.n_components = n_components
        self.init_params = init_params
        self.weights = weights
        self.fit_weights = fit_weights
        self.frozen = frozen
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.random_state = random_state
        self.chunk_size = chunk_size
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.algorithm = algorithm
        self.accelerate = accelerate
        self.online_kappa = online_kappa
        self.online_t0 = online_t0

    # ------------------------------------------------------------------ fit

    def fit(
        self, X: Any, y: Any = None, *, sample_weight: Any = None, labels: Any = None
    ) -> MixtureModel:
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dask array, or file source
            A ``dask.array.Array`` is fitted block by block on its scheduler; a
            source from :func:`emkit.data.sources.open` is streamed from disk. For both,
            the random partitions of ``n_init > 1`` use a uniform random sample of
            rows (:data:`emkit.data.scale.INIT_SAMPLE_ROWS`); the distributions' data
            checks and the non-finite check run inside the statistics pass (the
            check that no row has probability zero under the start is skipped).
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative finite row weights, as
            :meth:`emkit.GaussianMixture.fit` takes them: integer weights fit
            as repeated rows, in the starts too; zero leaves a row out. For
            streamed or Dask ``X``, as there: an array, a one-column file
            source, or a dask array.
        labels : array-like of int of shape (n_samples,), optional
            Partial labels: a component index for rows
            whose component is known, -1 for the others (semi-supervised EM,
            as :meth:`emkit.GaussianMixture.fit`; streamed and Dask ``X`` too).

        Returns
        -------
        self
        """
        self._fit(X, sample_weight=sample_weight, labels=labels)
        return self

    def _fit(self, X: Any, *, sample_weight: Any = None, labels: Any = None) -> Any:
        """Run the fit; return the validated rows (an array, or the scalable input as given)."""
        v.validate_params(self, _PARAMETER_RULES)
        check_accelerate(self)
        family, automatic = self._starting_family()
        # The last child seed draws the rows a streamed or Dask fit checks and
        # partitions; the first n_init seed the restarts, as for in-memory data.
        seeds = v.seed_sequence(self.random_state).spawn(self.n_init + 1)
        weights = _check_weights(self.weights, family.n_components)
        start = Mixture(weights=weights, components=family, fit_weights=self.fit_weights)
        if scale.is_scalable(X):
            # The distributions' checks run in every statistics pass, naming global rows.
            rows, source = scale.prepare(self, X, reset=True, rng=np.random.default_rng(seeds[-1]),
                                         chunk_size=self.chunk_size, check=family.check_data,
                                         sample_weight=sample_weight, labels=labels,
                                         n_components=family.n_components)
            rows = rows.astype(np.float64, copy=False)
        else:
            rows = X = v.check_columns_observed(self._validate_X(X, reset=True, family=family))
            family.check_data(X)
            if not automatic:  # automatic starts give every row some probability
                _check_every_row_possible(start, X, self.chunk_size)
            # Random assignment policies key their draws on row indices: indexed chunks.
            source = IndexedArraySource(
                X, self.chunk_size, sample_weight=v.check_sample_weight(sample_weight, len(X)),
                labels=v.check_labels(labels, len(X), family.n_components),
            )
        init_rows = getattr(source, "init_rows", None) or IndexedArraySource(
            rows, self.chunk_size, sample_weight=getattr(source, "sample_weight", None),
            labels=getattr(source, "labels", None),
        )
        best = self._best_run(start, _MapObjective(source), init_rows, seeds[:-1],
                              automatic=automatic)
        if not best.converged and self.max_iter > 0 and self.algorithm != "stochastic":
            warnings.warn(
                "Best performing start did not converge. Increase max_iter or tol, "
                "or try other starting components.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._set_fitted(best)
        _warn_identical(self.components_)
        return X

    def _starting_family(self) -> tuple[ComponentList, bool]:
        """The components to start from, and whether every start is automatic (a template)."""
        if isinstance(self.components, Distribution):
            if self.n_components is None:
                raise ValueError(
                    "MixtureModel: a single distribution is a template for n_components "
                    "components; pass n_components (or a list of starting distributions)"
                )
            if self.frozen:
                raise ValueError(
                    "MixtureModel: frozen components need a list of starting distributions, "
                    "not a template (whose starts are automatic)"
                )
            return ComponentList((self.components,) * self.n_components), True
        family = ComponentList(tuple(self.components), self._frozen_flags(len(self.components)))
        if family.frozen and self.accelerate:
            raise ValueError(
                "MixtureModel: accelerate=True does not take frozen components: SQUAREM "
                "would extrapolate them too"
            )
        if self.n_components is not None and self.n_components != family.n_components:
            raise ValueError(
                f"MixtureModel: n_components={self.n_components} but {family.n_components} "
                "starting components were given; pass one distribution (not a list) as a "
                "template for automatic starts"
            )
        return family, False

    def _frozen_flags(self, n_components: int) -> tuple[bool, ...]:
        """``frozen`` as one flag per component (a single bool applies to all)."""
        if self.frozen is None or isinstance(self.frozen, bool | np.bool_):
            return (bool(self.frozen),) * n_components
        if len(self.frozen) != n_components:
            raise ValueError(
                f"MixtureModel: frozen has {len(self.frozen)} entries for {n_components} "
                "components"
            )
        return tuple(bool(f) for f in self.frozen)

    def _start(
        self, index: int, start: Mixture, init_rows: ArraySource, rng: np.random.Generator,
        automatic: bool,
    ) -> Mixture:
        """The ``index``-th start: the given components first (for a list), else automatic."""
        if not automatic and index == 0:
            return start
        if not automatic and self.init_params in (None, "random"):
            return random_partition_start(start, init_rows, rng)
        init_params = self.init_params or "kmeans"
        # Fixed or given weights stay; otherwise the parts' shares start the weights.
        fit_weights = self.fit_weights and self.weights is None
        return automatic_start(start, init_rows, init_params, rng, fit_weights=fit_weights)

    def _best_run(
        self, start: Mixture, source: Any, init_rows: ArraySource,
        seeds: list[np.random.SeedSequence], *, automatic: bool = False,
    ) -> EMResult:
        best = None
        for index, seed in enumerate(seeds):
            model = self._start(index, start, init_rows, np.random.default_rng(seed), automatic)
            model = replace(model, assignment=assignment_for(self.algorithm, seed.spawn(1)[0]))
            result = run_variant(
                model, source, algorithm=self.algorithm, accelerate=self.accelerate,
                codec=MixtureCodec(ComponentListCodec()), tol=self.tol,
                max_iter=self.max_iter, callback=self._reporter(index),
            )
            if best is None or result.lower_bound > best.lower_bound:
                best = result
        return best

    def _reporter(self, start_index: int):
        """Progress printing for ``verbose`` (an engine callback), or None."""
        if not self.verbose:
            return None
        begin = time.perf_counter()
        print(f"Start {start_index}", file=sys.stdout)

        def report(iteration: int, lower_bound: float, change: float, model: Any) -> None:
            if self.verbose >= 2 and iteration % self.verbose_interval == 0:
                elapsed = time.perf_counter() - begin
                print(
                    f"  Iteration {iteration}\t time lapse {elapsed:.5f}s\t "
                    f"ll {lower_bound:.6f}\t ll change {change:.5g}",
                    file=sys.stdout,
                )

        return report

    def _set_fitted(self, result: EMResult) -> None:
        mixture = result.model
        self.components_ = list(mixture.components.distributions)
        self.weights_ = mixture.weights
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound
        self.history_ = np.asarray(result.history, dtype=np.float64)
        # A new fit starts any later partial_fit stream afresh from these parameters.
        self._online_stats, self._online_step, self._online_rows = None, 0, 0

    # --------------------------------------------------------------- online

    def partial_fit(
        self, X: Any, y: Any = None, *, sample_weight: Any = None
    ) -> MixtureModel:
        """One step of online (stepwise) EM on a batch of rows.

        As :meth:`emkit.GaussianMixture.partial_fit`: the first call on an
        unfitted model fits the batch; later calls (any batch size, one row
        included) blend the batch's per-row statistics into the running ones
        with step ``(t + online_t0) ** -online_kappa`` and run one M-step.

        Parameters
        ----------
        X : array-like of shape (n_batch, n_features)
        y : ignored
        sample_weight : array-like of shape (n_batch,), optional
            Row weights, as :meth:`fit` takes them.

        Returns
        -------
        self
        """
        if not hasattr(self, "components_"):
            self.fit(X, sample_weight=sample_weight)
            _, X = self._checked(X)
            batch = self._batch_stats(self._online_model(), X, sample_weight)
            self._online_stats = per_row(batch)
            self._online_step, self._online_rows = 1, batch.n_samples
            return self
        model, X = self._checked(X)
        # A row no component can produce has no responsibilities: its NaN would
        # spread into every parameter. Refuse the batch before anything changes.
        _check_every_row_possible(model, X, self.chunk_size, when="under every fitted component")
        model = self._online_model()
        batch = self._batch_stats(model, X, sample_weight)
        if batch.n_samples == 0:  # nothing observed in this batch: nothing to learn
            return self
        running = getattr(self, "_online_stats", None)
        step = getattr(self, "_online_step", 0)
        rows = getattr(self, "_online_rows", 0) + batch.n_samples
        blended, fitted = online_step(
            model, running, batch, step, self.online_t0, self.online_kappa
        )
        if model.components.has_prior:
            # The running statistics are per-row averages; a prior's pseudo-counts
            # weigh against the rows seen so far, not against one row.
            fitted = model.m_step(scaled(blended, float(rows)))
        self._online_stats, self._online_rows = blended, rows
        self._online_step = step + 1 if running is not None else 1
        self.components_ = list(fitted.components.distributions)
        self.weights_ = fitted.weights
        self.lower_bound_ = batch.log_likelihood / batch.n_samples
        self.history_ = np.append(self.history_, self.lower_bound_)
        self.n_iter_ += 1
        return self

    def _online_model(self) -> Mixture:
        # Stochastic draws differ per batch, reproducibly for a fixed random_state.
        entropy = v.seed_sequence(self.random_state).entropy
        seed = np.random.SeedSequence(entropy, spawn_key=(getattr(self, "_online_step", 0),))
        return replace(self._model(), assignment=assignment_for(self.algorithm, seed))

    def _batch_stats(self, model: Mixture, X: np.ndarray, sample_weight: Any = None) -> Any:
        weights = v.check_sample_weight(sample_weight, X.shape[0])
        return expected_stats(model, IndexedArraySource(X, self.chunk_size,
                                                        sample_weight=weights))

    # Fitted state written by emkit.save and checked by emkit.load; the
    # components are saved as plain data (type name and parameters).
    _saved_arrays = ("weights_", "history_")
    _saved_scalars = ("components_", "converged_", "n_iter_", "lower_bound_", "n_features_in_")

    def _check_fitted_state(self) -> None:
        """Raise ValueError if the fitted attributes are not a consistent mixture."""
        v.validate_params(self, _PARAMETER_RULES)
        check_accelerate(self)
        family = ComponentList(tuple(self.components_))
        if family.n_features != self.n_features_in_:
            raise ValueError(
                f"components_ read {family.n_features} columns, n_features_in_ is "
                f"{self.n_features_in_}"
            )
        if self.history_.shape != (self.n_iter_,):
            raise ValueError(
                f"history_ has shape {self.history_.shape}, expected ({self.n_iter_},)"
            )
        _check_weights(self.weights_, family.n_components, name="weights_")

    # -------------------------------------------------------------- predict

    def _validate_X(
        self, X: Any, *, reset: bool, family: ComponentList | None = None
    ) -> np.ndarray:
        # float32 data stay float32 where the components take the exponential-family
        # kernel, which computes chunk by chunk in float64 (no float64 copy of the
        # whole data); other families' own log densities get float64.
        keep = family is not None and family._kernel is not None
        X = v.validated_data(self, X, dtype=[np.float64, np.float32] if keep else np.float64,
                             ensure_all_finite=False, reset=reset)
        return v.check_finite(X, allow_nan=True)

    def _model(self) -> Mixture:
        """The fitted mixture, rebuilt from the public fitted attributes."""
        check_is_fitted(self, ["weights_", "components_"])
        family = ComponentList(tuple(self.components_),
                               self._frozen_flags(len(self.components_)))
        return Mixture(weights=self.weights_, components=family, fit_weights=self.fit_weights)

    def _checked(self, X: Any) -> tuple[Mixture, np.ndarray]:
        model = self._model()
        X = self._validate_X(X, reset=False, family=model.components)
        model.components.check_data(X)
        return model, X

    def _chunk_rows(self, n_features: int) -> int:
        return self.chunk_size

    def predict(self, X: Any) -> Any:
        """Most likely component of each row, shape (n_samples,); lazy for a dask array.

        Raises
        ------
        ValueError
            Naming the rows that have probability zero under every component.
        """
        labels = self._over_rows(X, _label_or_impossible, None)
        return _refuse_impossible(labels, lambda out: out < 0, lambda out: out)

    def _log_resp(self, X: Any) -> Any:
        # One extra column carries each row's log-likelihood, -inf for impossible rows.
        n_components = len(self._model().weights)
        both = self._over_rows(X, _log_resp_and_norm, n_components + 1)
        return _refuse_impossible(
            both, lambda out: out[:, -1] == -np.inf, lambda out: out[:, :-1]
        )


def _check_weights(weights: Any, n_components: int, name: str = "weights") -> np.ndarray:
    """Mixing weights: uniform if None, else shape (K,), non-negative, summing to one."""
    if weights is None:
        return np.full(n_components, 1.0 / n_components)
    weights = v.check_shape(weights, (n_components,), name, np.float64)
    if (weights < 0).any():
        raise ValueError(f"{name} must be non-negative, got {weights}")
    if not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-6):
        raise ValueError(f"{name} must sum to one, got sum {weights.sum():.10g}")
    return weights


_HINT = (
    "(for example a count, category or binary value to which every component gives "
    "probability 0, as maximum likelihood does for values it never saw, or a weight of 0)"
)


def _impossible_rows_message(rows: np.ndarray, where: str) -> str:
    """``rows 3, 7 (and 2 more) have probability zero <where>`` with the hint."""
    shown = ", ".join(str(int(r)) for r in rows[:10])
    more = f" (and {rows.size - 10} more)" if rows.size > 10 else ""
    noun = "row" if rows.size == 1 else "rows"
    verb = "has" if rows.size == 1 else "have"
    return f"{noun} {shown}{more} {verb} probability zero {where} {_HINT}"


def _check_every_row_possible(
    mixture: Mixture, X: np.ndarray, chunk_size: int,
    when: str = "under every starting component",
) -> None:
    """Refuse rows that have probability zero under every component of ``mixture``.

    Such a row has no responsibilities (0/0), and EM would fill the model with NaN.
    """
    log_lik = map_chunks(
        lambda c: logsumexp(mixture.weighted_log_prob(c), axis=1), X, chunk_size
    )
    impossible = np.flatnonzero(~(log_lik > -np.inf))
    if impossible.size:
        raise ValueError(
            _impossible_rows_message(impossible, when) + ": start from components that give "
            "every row some probability, or give the distributions a prior"
        )


def _log_resp_and_norm(model: Mixture, chunk: np.ndarray) -> np.ndarray:
    """Log responsibilities and, as a last column, the rows' log-likelihoods."""
    log_resp, log_norm = model.log_resp(chunk)
    return np.column_stack([log_resp, log_norm])


def _label_or_impossible(model: Mixture, chunk: np.ndarray) -> np.ndarray:
    """Most likely component of each row, -1 where every component gives probability 0."""
    weighted = model.weighted_log_prob(chunk)
    labels = weighted.argmax(axis=1)
    labels[weighted[np.arange(len(labels)), labels] == -np.inf] = -1
    return labels


def _refuse_impossible(out: Any, impossible: Any, finish: Any) -> Any:
    """``finish(out)``, or a ValueError naming the rows where ``impossible(out)`` holds.

    A dask array is checked lazily, block by block, naming global rows.
    """
    if hasattr(out, "map_blocks") and not isinstance(out, np.ndarray):
        def check_block(block: np.ndarray, block_info: Any = None) -> np.ndarray:
            first = block_info[0]["array-location"][0][0] if block_info else 0
            _raise_if_impossible(np.flatnonzero(impossible(block)) + first)
            return finish(block)

        if out.ndim == 1:
            return out.map_blocks(check_block, dtype=out.dtype)
        chunks = (out.chunks[0], (out.shape[1] - 1,))
        return out.map_blocks(check_block, chunks=chunks, dtype=out.dtype)
    _raise_if_impossible(np.flatnonzero(impossible(out)))
    return finish(out)


def _raise_if_impossible(rows: np.ndarray) -> None:
    if rows.size:
        raise ValueError(
            _impossible_rows_message(rows, "under every fitted component")
            + ": no responsibilities exist there (score_samples gives -inf). Fit with "
            "a prior on the distributions (e.g. Bernoulli(p, prior=(2, 2))) to keep every "
            "probability positive, or leave such rows out"
        )


@dataclass(frozen=True)
class _MapObjective:
    """A source whose E-step totals carry the components' log prior (MAP EM).

    The engine divides ``log_likelihood`` by the number of rows, so the
    objective it tracks (and never lets decrease) becomes the average
    log-likelihood plus log prior over the rows. A total of ``-inf`` means a
    row impossible under every component: refused before it turns the
    parameters into NaN.
    """

    source: Any

    def expected_stats(self, model: Mixture) -> Any:
        stats = total_stats(model, self.source)
        if stats.log_likelihood == -np.inf:
            if isinstance(self.source, ArraySource):  # rows in memory: name them
                _check_every_row_possible(
                    model, self.source.X, self.source.chunk_size, when="under every component"
                )
            raise ValueError(
                f"a row has probability zero under every component {_HINT}: give the "
                "distributions a prior, or start from other components"
            )
        if not model.components.has_prior:
            return stats
        return replace(
            stats, log_likelihood=stats.log_likelihood + model.components.log_prior()
        )


def random_partition_start(
    mixture: Mixture, source: ArraySource, rng: np.random.Generator
) -> Mixture:
    """Components fitted to a random partition of the rows; weights as in ``mixture``.

    Every row goes to a uniformly random component, and each component gets
    at least one row, so no component starts without data.
    """
    labels = random_labels(source.X.shape[0], len(mixture.weights), rng)
    return partition_start(mixture, source, labels, fit_weights=False)


def _warn_identical(components: list[Distribution]) -> None:
    """Warn once about groups of components whose parameters agree (to 1e-7 relative)."""
    vectors = [_numbers(to_spec(d)) for d in components]
    groups, seen = [], set()
    for k, a in enumerate(vectors):
        if k in seen:
            continue
        same = [
            m for m in range(k + 1, len(vectors))
            if m not in seen and type(components[m]) is type(components[k])
            and len(vectors[m]) == len(a) and np.allclose(vectors[m], a, rtol=1e-7, atol=1e-12)
        ]
        if same:
            groups.append([k, *same])
            seen.update(same)
    if groups:
        listed = "; ".join(", ".join(str(k) for k in g) for g in groups)
        warnings.warn(
            f"components {listed} have identical parameters after the fit: EM cannot "
            "separate components that start identical (a symmetric start). Start from "
            "different components, or pass one distribution as a template with "
            "n_components (automatic k-means or random starts, n_init)",
            IdenticalComponentsWarning,
            stacklevel=4,
        )


def _numbers(value: Any) -> list[float]:
    """Every number in a distribution spec, in order (strings skipped)."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _numbers(v)]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    return [float(value)]
