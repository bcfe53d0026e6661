"""``emkit.MixtureModel``: a mixture of any component distributions, fitted by the emkit engine."""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from emkit import _validation as v
from emkit import scale
from emkit._mixture_methods import MixtureMethods
from emkit.acceleration import MixtureCodec
from emkit.engine import EMResult, expected_stats
from emkit.families.component_list import ComponentList
from emkit.families.distribution_codec import ComponentListCodec
from emkit.io import register_estimator
from emkit.mixture import Mixture
from emkit.online import online_step, per_row
from emkit.runs import check_accelerate, run_variant
from emkit.sources import ArraySource, IndexedArraySource, map_chunks
from emkit.variants import ALGORITHMS, assignment_for

_PARAMETER_RULES = {
    "components": v.Rule(
        lambda c: isinstance(c, list | tuple) and len(c) > 0, "a non-empty list of distributions"
    ),
    "weights": v.OPTIONAL_ARRAY,
    "fit_weights": v.BOOLEAN,
    "tol": v.real(0.0),
    "max_iter": v.integer(0),
    "n_init": v.integer(1),
    "random_state": v.RANDOM_STATE,
    "chunk_size": v.integer(1),
    "verbose": v.integer(0),
    "verbose_interval": v.integer(1),
    "algorithm": v.one_of(*ALGORITHMS),
    "accelerate": v.BOOLEAN,
    "online_kappa": v.Rule(
        lambda k: v.real(0.0).accepts(k) and 0.5 < k <= 1, "a number in (0.5, 1]"
    ),
    "online_t0": v.real(0.0),
}


@register_estimator
class MixtureModel(MixtureMethods, DensityMixin, BaseEstimator):
    """Mixture of any :mod:`emkit.distributions`, fitted by EM.

    The same engine and mixture as :class:`emkit.GaussianMixture`: each
    component brings its own densities, additive statistics and M-step, so
    binomial coins, Poisson counts, categories, binary features, Gaussians and
    products of these (:class:`~emkit.distributions.Independent`, for rows of
    mixed type) are all fitted the same way.

    Parameters
    ----------
    components : list of Distribution, length n_components
        Starting distributions, one per component; all must read the same columns.
    weights : array of shape (n_components,), optional
        Starting mixing weights (non-negative, summing to one); uniform if omitted.
    fit_weights : bool, default=True
        Whether EM re-estimates the weights; False keeps them fixed (the coin
        example's prior of 0.5).
    tol : float, default=1e-3
        Convergence threshold on the change of the average log-likelihood.
    max_iter : int, default=100
        Maximum number of EM iterations per start.
    n_init : int, default=1
        Number of starts; the one with the highest final log-likelihood is kept.
        The first start is ``components`` as given. Every further start draws a
        random partition of the rows (each row to a uniformly random component,
        every component getting at least one row) from a child seed of
        ``random_state``, and begins from each component's maximum-likelihood fit
        to its part, with the starting weights.
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
    accelerate : bool, default=False
        SQUAREM extrapolation (``algorithm="em"`` only), in the unconstrained
        parametrisation of :mod:`emkit.families.distribution_codec`;
        ``n_iter_`` counts passes over the data and ``history_`` never decreases.
    online_kappa : float in (0.5, 1], default=0.6
    online_t0 : float >= 0, default=2.0
        Step ``g_t = (t + online_t0) ** -online_kappa`` of online EM
        (:meth:`partial_fit`), as for :class:`emkit.GaussianMixture`.

    Data are converted to float64; each distribution checks its own columns
    (counts, categories, binary values) and errors name the first bad row.

    Attributes
    ----------
    components_ : list of Distribution
        The fitted components.
    weights_ : ndarray of shape (n_components,)
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Average log-likelihood of the best run's last E-step.
    history_ : ndarray of shape (n_iter_,)
        Average log-likelihood per sample at each iteration of the best run.
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
    """

    def __init__(
        self,
        components: list[Any],
        *,
        weights: Any = None,
        fit_weights: bool = True,
        tol: float = 1e-3,
        max_iter: int = 100,
        n_init: int = 1,
        random_state: Any = None,
        chunk_size: int = 4096,
        verbose: int = 0,
        verbose_interval: int = 10,
        algorithm: str = "em",
        accelerate: bool = False,
        online_kappa: float = 0.6,
        online_t0: float = 2.0,
    ) -> None:
        self.components = components
        self.weights = weights
        self.fit_weights = fit_weights
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

    def fit(self, X: Any, y: Any = None) -> MixtureModel:
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), dask array, or file source
            A ``dask.array.Array`` is fitted block by block on its scheduler; a
            source from :func:`emkit.sources.open` is streamed from disk. For both,
            the random partitions of ``n_init > 1`` use a uniform random sample of
            rows (:data:`emkit.scale.INIT_SAMPLE_ROWS`); the distributions' data
            checks and the non-finite check run inside the statistics pass (the
            check that no row has probability zero under the start is skipped).
        y : ignored

        Returns
        -------
        self
        """
        self._fit(X)
        return self

    def _fit(self, X: Any) -> Any:
        """Run the fit; return the validated rows (an array, or the scalable input as given)."""
        v.validate_params(self, _PARAMETER_RULES)
        check_accelerate(self)
        family = ComponentList(tuple(self.components))
        # The last child seed draws the rows a streamed or Dask fit checks and
        # partitions; the first n_init seed the restarts, as for in-memory data.
        seeds = v.seed_sequence(self.random_state).spawn(self.n_init + 1)
        weights = _check_weights(self.weights, family.n_components)
        start = Mixture(weights=weights, components=family, fit_weights=self.fit_weights)
        if scale.is_scalable(X):
            # The distributions' checks run in every statistics pass, naming global rows.
            rows, source = scale.prepare(self, X, reset=True, rng=np.random.default_rng(seeds[-1]),
                                         chunk_size=self.chunk_size, check=family.check_data)
            rows = rows.astype(np.float64, copy=False)
        else:
            rows = X = v.check_columns_observed(self._validate_X(X, reset=True))
            family.check_data(X)
            _check_every_row_possible(start, X, self.chunk_size)
            # Random assignment policies key their draws on row indices: indexed chunks.
            source = IndexedArraySource(X, self.chunk_size)
        best = self._best_run(start, source, ArraySource(rows, self.chunk_size), seeds[:-1])
        if not best.converged and self.max_iter > 0 and self.algorithm != "stochastic":
            warnings.warn(
                "Best performing start did not converge. Increase max_iter or tol, "
                "or try other starting components.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._set_fitted(best)
        return X

    def _best_run(
        self, start: Mixture, source: Any, init_rows: ArraySource,
        seeds: list[np.random.SeedSequence],
    ) -> EMResult:
        best = None
        for index, seed in enumerate(seeds):
            model = start
            if index > 0:
                model = random_partition_start(start, init_rows, np.random.default_rng(seed))
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
        self._online_stats, self._online_step = None, 0

    # --------------------------------------------------------------- online

    def partial_fit(self, X: Any, y: Any = None) -> MixtureModel:
        """One step of online (stepwise) EM on a batch of rows.

        As :meth:`emkit.GaussianMixture.partial_fit`: the first call on an
        unfitted model fits the batch; later calls (any batch size, one row
        included) blend the batch's per-row statistics into the running ones
        with step ``(t + online_t0) ** -online_kappa`` and run one M-step.

        Parameters
        ----------
        X : array-like of shape (n_batch, n_features)
        y : ignored

        Returns
        -------
        self
        """
        if not hasattr(self, "components_"):
            self.fit(X)
            _, X = self._checked(X)
            self._online_stats = per_row(self._batch_stats(self._online_model(), X))
            self._online_step = 1
            return self
        _, X = self._checked(X)
        model = self._online_model()
        batch = self._batch_stats(model, X)
        if batch.n_samples == 0:  # nothing observed in this batch: nothing to learn
            return self
        running = getattr(self, "_online_stats", None)
        step = getattr(self, "_online_step", 0)
        self._online_stats, fitted = online_step(
            model, running, batch, step, self.online_t0, self.online_kappa
        )
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

    def _batch_stats(self, model: Mixture, X: np.ndarray) -> Any:
        return expected_stats(model, IndexedArraySource(X, self.chunk_size))

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

    def _validate_X(self, X: Any, *, reset: bool) -> np.ndarray:
        X = validate_data(
            self, X, dtype=np.float64, ensure_all_finite=False, reset=reset
        )
        return v.check_finite(X, allow_nan=True)

    def _model(self) -> Mixture:
        """The fitted mixture, rebuilt from the public fitted attributes."""
        check_is_fitted(self, ["weights_", "components_"])
        family = ComponentList(tuple(self.components_))
        return Mixture(weights=self.weights_, components=family, fit_weights=self.fit_weights)

    def _checked(self, X: Any) -> tuple[Mixture, np.ndarray]:
        model = self._model()
        X = self._validate_X(X, reset=False)
        model.components.check_data(X)
        return model, X

    def _chunk_rows(self, n_features: int) -> int:
        return self.chunk_size


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


def _check_every_row_possible(mixture: Mixture, X: np.ndarray, chunk_size: int) -> None:
    """Refuse a start under which some row has probability zero.

    Such a row has no responsibilities (0/0), and EM would fill the model with NaN.
    """
    log_lik = map_chunks(
        lambda c: logsumexp(mixture.weighted_log_prob(c), axis=1), X, chunk_size
    )
    impossible = np.flatnonzero(~(log_lik > -np.inf))
    if impossible.size:
        raise ValueError(
            f"row {int(impossible[0])} has probability zero under every starting component "
            "(for example a category with probability 0, or a weight of 0): start from "
            "components that give every row some probability"
        )


def random_partition_start(
    mixture: Mixture, source: ArraySource, rng: np.random.Generator
) -> Mixture:
    """Components fitted to a random partition of the rows; weights as in ``mixture``.

    Every row goes to a uniformly random component, and each component gets
    at least one row, so no component starts without data.
    """
    n_samples, n_components = source.X.shape[0], len(mixture.weights)
    labels = rng.integers(n_components, size=n_samples)
    seeded = min(n_components, n_samples)
    labels[rng.choice(n_samples, size=seeded, replace=False)] = np.arange(seeded)
    one_hot = np.eye(n_components)
    family = mixture.components
    total = sum(
        family.stats(chunk, one_hot[labels[start : start + len(chunk)]])
        for start, chunk in zip(range(0, n_samples, source.chunk_size), source, strict=True)
    )
    return replace(mixture, components=family.from_stats(total))
