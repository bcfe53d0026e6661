"""RegressionMixture: finite mixtures of regressions and of experts (flexmix's models), by EM."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from emkit.core.engine import total_stats
from emkit.core.runs import check_accelerate, run_variant
from emkit.core.variants import ALGORITHMS, SOFT, Stochastic, assignment_for
from emkit.data import _validation as v
from emkit.data.scale import is_dask_array, is_scalable
from emkit.data.sources import IndexedArraySource, row_start
from emkit.distributions.regression import (
    FAMILIES,
    GaussianRegression,
    family_from_arrays,
    start_family,
)
from emkit.estimators.standard_errors import RegressionStandardErrorMethods
from emkit.io import register_estimator
from emkit.latent.experts import ExpertsCodec, RegressionMixtureModel

_PARAMETER_RULES = {
    "n_components": v.integer(1),
    "family": v.one_of(*FAMILIES),
    "fit_intercept": v.BOOLEAN,
    "gating": v.one_of("constant", "logistic"),
    "n_init": v.integer(1),
    "tol": v.real(0.0),
    "max_iter": v.integer(0),
    "chunk_size": v.integer(1),
    "random_state": v.RANDOM_STATE,
    "algorithm": v.one_of(*ALGORITHMS),
    "accelerate": v.BOOLEAN,
}


@register_estimator
class RegressionMixture(RegressionStandardErrorMethods, BaseEstimator):
    """Finite mixture of regressions (or of experts), fitted by EM.

    Row ``i`` belongs to component ``k`` with prior probability ``pi_k`` (or,
    with ``gating="logistic"``, ``softmax(gate_intercept_ + z_i gate_coef_^T)_k``
    for concomitant variables ``z_i``); within component ``k``, ``y_i`` follows
    a regression on ``x_i`` with coefficients ``intercept_[k], coef_[k]``:

    - ``"gaussian"``: ``y ~ N(intercept + x b, scale^2)``, M-step by weighted
      least squares on the R factor of the weighted rows (QR, or the Cholesky
      factor of their cross-product only where a chunk is well conditioned);
    - ``"poisson"``: counts with mean ``exp(intercept + x b)``;
    - ``"binomial"``: ``y`` in {0, 1} with probability ``expit(intercept + x b)``;

    the GLMs' M-step by IRLS warm-started at the previous coefficients.

    Parameters
    ----------
    n_components : int, default=2
    family : {"gaussian", "poisson", "binomial"}, default="gaussian"
    fit_intercept : bool, default=True
        Add an intercept to every component's regression.
    gating : {"constant", "logistic"}, default="constant"
        Constant mixing weights, or a multinomial logistic gate on the
        ``concomitant`` variables passed to :meth:`fit` (a mixture of experts;
        flexmix's ``FLXPmultinom``). The gate always has an intercept.
    n_init : int, default=3
        Random starts (each a random partition of the rows); the best
        log-likelihood wins. Ignored when ``fit`` gets ``init_resp``.
    tol : float, default=1e-8
        Convergence threshold on the change of the average log-likelihood.
    max_iter : int, default=1000
        Most iterations (with ``accelerate``, passes over the data).
    chunk_size : int, default=65536
        Rows per E-step chunk; the statistics of chunks add up.
    random_state : int, RandomState, Generator or None, default=None
    algorithm : {"em", "hard", "stochastic"}, default="em"
        Soft EM; hard (classification) EM, each row wholly to its most
        probable component, which maximises the classification likelihood;
        or stochastic EM, each row to a component drawn from its posterior,
        exactly ``max_iter`` iterations, keeping the best parameters seen.
    accelerate : bool, default=False
        SQUAREM extrapolation (:mod:`emkit.core.acceleration`) with a
        safeguard that keeps the likelihood monotone; ``algorithm="em"`` only.

    Attributes
    ----------
    intercept_ : ndarray of shape (n_components,)
        Zero when ``fit_intercept=False``.
    coef_ : ndarray of shape (n_components, n_features)
    scale_ : ndarray of shape (n_components,)
        Residual standard deviations (Gaussian family only).
    weights_ : ndarray of shape (n_components,)
        Mixing weights; with a logistic gate, the gate's prior averaged over the
        training rows.
    gate_intercept_ : ndarray of shape (n_components,)
    gate_coef_ : ndarray of shape (n_components, n_concomitant)
        The logistic gate (first component is the reference, all zero).
    history_ : ndarray
        Average (weighted) log-likelihood per iteration; never decreases.
    lower_bound_ : float
    n_iter_ : int
    converged_ : bool
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        The design's column names, when ``X`` is a data frame or a file source.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import RegressionMixture
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(0, 10, 400)
    >>> up = rng.random(400) < 0.5
    >>> y = np.where(up, 1 + 2 * x, 8 - x) + rng.normal(0, 0.5, 400)
    >>> model = RegressionMixture(2, random_state=0).fit(x[:, None], y)
    >>> order = np.argsort(model.coef_[:, 0])
    >>> np.round(model.coef_[order, 0], 1), np.round(model.intercept_[order], 1)
    (array([-1.,  2.]), array([8. , 0.9]))
    """

    _saved_arrays = ("weights_", "intercept_", "coef_", "history_")
    _saved_scalars = ("converged_", "n_iter_", "lower_bound_", "n_features_in_")

    def __init__(
        self,
        n_components: int = 2,
        *,
        family: str = "gaussian",
        fit_intercept: bool = True,
        gating: str = "constant",
        n_init: int = 3,
        tol: float = 1e-8,
        max_iter: int = 1000,
        chunk_size: int = 65536,
        random_state: Any = None,
        algorithm: str = "em",
        accelerate: bool = False,
    ) -> None:
        self.n_components = n_components
        self.family = family
        self.fit_intercept = fit_intercept
        self.gating = gating
        self.n_init = n_init
        self.tol = tol
        self.max_iter = max_iter
        self.chunk_size = chunk_size
        self.random_state = random_state
        self.algorithm = algorithm
        self.accelerate = accelerate

    # ------------------------------------------------------------------ fitting

    def fit(
        self, X: Any, y: Any, sample_weight: Any = None, concomitant: Any = None,
        init_resp: Any = None,
    ) -> RegressionMixture:
        """Fit by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), file source or dask array
            Design (without an intercept column when ``fit_intercept``). No NaN.
            A file source (:func:`emkit.sources.open`: ``.npy``, CSV, Parquet)
            is streamed in chunks on every pass; ``y`` (and ``sample_weight``,
            ``concomitant``) then name its columns and the design is every other
            column. A dask array is E-stepped block by block where it lives.
        y : array-like of shape (n_samples,), or a column name of a file source
            Responses; rows where ``y`` is NaN are left out (with a warning).
            For a dask ``X``, a dask or NumPy array of as many rows.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative row weights (frequency weights); a column name for a
            file source.
        concomitant : array-like of shape (n_samples, n_concomitant), optional
            Gating variables, for ``gating="logistic"`` (an intercept-only gate
            when omitted); column names for a file source.
        init_resp : array-like of shape (n_samples,) or (n_samples, n_components), optional
            Starting memberships: component labels or responsibilities (rows
            summing to one), like flexmix's ``cluster=``. EM starts with an
            M-step on them.

        Returns
        -------
        self
        """
        v.validate_params(self, _PARAMETER_RULES)
        check_accelerate(self)
        if self.gating == "constant" and concomitant is not None:
            raise ValueError("RegressionMixture: concomitant variables need gating='logistic'")
        if is_scalable(X):
            data = _streamed(self, X, y, sample_weight, concomitant)
        else:
            data = self._in_memory(X, y, sample_weight, concomitant)
        self.n_features_in_ = data.n_features
        _set_feature_names(self, data.names if data.names is not None else getattr(
            X, "columns", None))
        best = None
        # One seed per start's partition, one per run's stochastic-EM draws.
        seeds = v.seed_sequence(self.random_state).spawn(2 * self.n_init)
        starts = self._starts(init_resp, data.n_samples, seeds[: self.n_init])
        for start, seed in zip(starts, seeds[self.n_init :], strict=False):
            result = self._run(start, data, seed)
            if best is None or result.lower_bound > best.lower_bound:
                best = result
        if data.n_missing:
            warnings.warn(
                f"RegressionMixture: {data.n_missing} of {data.n_rows} rows have a missing "
                "(NaN) y and are left out of the fit", UserWarning, stacklevel=2,
            )
        if not best.converged and self.max_iter > 0 and self.algorithm != "stochastic":
            warnings.warn("RegressionMixture did not converge; increase max_iter or tol",
                          ConvergenceWarning, stacklevel=2)
        self._set_fitted(best, data)
        self._warn_degenerate(data.total_weight)
        return self

    def _run(self, start: _Start, data: _Data, seed: np.random.SeedSequence) -> Any:
        """One EM run: an M-step on the starting memberships, then the chosen variant."""
        model = self._initial_model(data.n_design, data.n_gate)
        stats = total_stats(replace(start, model=model), data.source)
        data.total_weight = stats.n_samples
        if data.n_missing is None:  # a file's missing y are counted while it is read
            data.n_missing = data.source.n_missing
            data.n_rows = data.source.n_rows
        if start.resp is not None and data.n_rows is not None and data.n_rows != len(start.resp):
            raise ValueError(f"init_resp has {len(start.resp)} rows, the data {data.n_rows}")
        model = _floored(model.m_step(stats))
        model = replace(model, assignment=assignment_for(self.algorithm, seed))
        return run_variant(model, data.source, algorithm=self.algorithm,
                           accelerate=self.accelerate, codec=ExpertsCodec(), tol=self.tol,
                           max_iter=self.max_iter)

    def _in_memory(self, X: Any, y: Any, sample_weight: Any, concomitant: Any) -> _Data:
        """Checked, packed rows of in-memory arrays, as an indexed source."""
        X = _check_design(X, "X")
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must have shape ({len(X)},), got {y.shape}")
        weights = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
        if weights.shape != y.shape or not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError(f"sample_weight must be finite, >= 0 and of shape {y.shape}")
        gate_rows = self._gate_rows(concomitant, len(X))
        layout = _layout(self, [f"X column {j}" for j in range(X.shape[1])],
                         [f"concomitant column {j}" for j in range(gate_rows.shape[1] - 1)])
        packed, n_missing = pack_rows(np.column_stack([y, weights, X, gate_rows]), layout)
        if packed[:, 1].sum() <= 0:
            raise ValueError("RegressionMixture: no row with positive weight and an observed y")
        source = IndexedArraySource(packed, self.chunk_size)
        return _Data(source, X.shape[1], X.shape[1] + self.fit_intercept, gate_rows.shape[1],
                     len(X), n_missing, len(X))

    def _warn_degenerate(self, total_weight: float) -> None:
        """Warn of components whose share of the rows cannot determine their parameters.

        A component with no more (weighted) rows than coefficients fits them
        exactly; with a Gaussian family its scale then collapses and the
        likelihood grows without bound (EM's classic degenerate solution).
        """
        n_design = self.coef_.shape[1] + self.fit_intercept
        rows = self.weights_ * total_weight
        thin = np.flatnonzero(rows < n_design + 1)
        if thin.size:
            warnings.warn(
                f"RegressionMixture: component(s) {thin.tolist()} hold about "
                f"{np.round(rows[thin], 2).tolist()} rows' weight, no more than their "
                f"{n_design} coefficients: a degenerate fit; try other starts or fewer "
                "components", UserWarning, stacklevel=3,
            )

    def _gate_rows(self, concomitant: Any, n_samples: int) -> np.ndarray:
        """The gate's design: an intercept column, then the concomitant variables."""
        if self.gating == "constant":
            return np.empty((n_samples, 0))
        z = np.empty((n_samples, 0)) if concomitant is None else _check_design(
            concomitant, "concomitant")
        if len(z) != n_samples:
            raise ValueError(f"concomitant has {len(z)} rows, X has {n_samples}")
        return np.column_stack([np.ones(n_samples), z])

    def _pack(self, X, y, weights, gate_rows) -> np.ndarray:
        design = np.column_stack([np.ones(len(X)), X]) if self.fit_intercept else X
        return np.ascontiguousarray(np.column_stack([y, weights, design, gate_rows]))

    def _starts(self, init_resp: Any, n_samples: int | None,
                seeds: list[np.random.SeedSequence]) -> list[_Start]:
        """Starting memberships: the given ones, or ``n_init`` random partitions.

        A random partition draws each row's component from a counter-based
        generator keyed on the row's index, so in-memory, chunked, file and
        Dask fits start from the same partition.
        """
        if init_resp is not None:
            if n_samples is None:
                n_samples = len(init_resp)
            return [_Start(resp=_check_init_resp(init_resp, self.n_components, n_samples))]
        return [_Start(key=Stochastic.from_seed(seed).key) for seed in seeds]

    def _initial_model(self, n_design: int, n_gate: int) -> RegressionMixtureModel:
        k = self.n_components
        family = start_family(self.family, k, n_design)
        if self.gating == "logistic":
            return RegressionMixtureModel(family, n_design, gate=np.zeros((n_gate, k)))
        return RegressionMixtureModel(family, n_design, weights=np.full(k, 1.0 / k))

    def _set_fitted(self, result: Any, data: _Data) -> None:
        model = replace(result.model, assignment=SOFT)
        coef = model.family.coef
        if self.fit_intercept:
            self.intercept_, self.coef_ = coef[:, 0].copy(), coef[:, 1:].copy()
        else:
            self.intercept_, self.coef_ = np.zeros(len(coef)), coef.copy()
        if self.family == "gaussian":
            self.scale_ = model.family.scale.copy()
        if model.gate is None:
            self.weights_ = model.weights.copy()
        else:
            self.gate_intercept_ = model.gate[0].copy()
            self.gate_coef_ = model.gate[1:].T.copy()
            # The gate's prior averaged over the training rows: one more pass.
            stats = total_stats(model, data.source)
            self.weights_ = stats.prior_sum / stats.n_samples
        self.history_ = np.asarray(result.history)
        self.n_iter_, self.converged_ = result.n_iter, result.converged
        self.lower_bound_ = float(result.lower_bound)
        self._saved_arrays = self._arrays_of_this_model()

    def _arrays_of_this_model(self) -> tuple[str, ...]:
        """The fitted arrays a model file holds: the scales and the gate only where they exist."""
        names = type(self)._saved_arrays
        if self.family == "gaussian":
            names += ("scale_",)
        if self.gating == "logistic":
            names += ("gate_intercept_", "gate_coef_")
        return names

    # ------------------------------------------------------------------ the fitted model

    def _check_fitted_state(self) -> None:
        """Raise ValueError unless the fitted attributes form a consistent model (used by load)."""
        v.validate_params(self, _PARAMETER_RULES)
        self._saved_arrays = self._arrays_of_this_model()
        missing = [name for name in self._saved_arrays if not hasattr(self, name)]
        if missing:
            raise ValueError(f"missing fitted attributes {', '.join(missing)}")
        k = self.n_components
        if np.shape(self.coef_) != (k, self.n_features_in_) or np.shape(self.intercept_) != (k,):
            raise ValueError("coef_ and intercept_ do not fit n_components and n_features_in_")
        if self.family == "gaussian" and not (np.asarray(self.scale_) > 0).all():
            raise ValueError("scale_ must be positive")
        if not np.isclose(np.sum(self.weights_), 1.0):
            raise ValueError("weights_ must sum to one")

    def _model(self) -> RegressionMixtureModel:
        if not hasattr(self, "coef_"):
            raise AttributeError("this RegressionMixture is not fitted yet; call fit first")
        coef = np.column_stack([self.intercept_, self.coef_]) if self.fit_intercept else self.coef_
        family = family_from_arrays(self.family, coef, getattr(self, "scale_", None))
        if self.gating == "logistic":
            gate = np.vstack([self.gate_intercept_, np.asarray(self.gate_coef_).T])
            return RegressionMixtureModel(family, coef.shape[1], gate=gate)
        return RegressionMixtureModel(family, coef.shape[1], weights=np.asarray(self.weights_))

    def _packed(self, X: Any, y: Any = None, concomitant: Any = None,
                sample_weight: Any = None) -> np.ndarray:
        model = self._model()
        X = _check_design(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the model was fitted on "
                             f"{self.n_features_in_}")
        if self.gating == "constant" and concomitant is not None:
            raise ValueError("concomitant variables need gating='logistic'")
        gate_rows = self._gate_rows(concomitant, len(X))
        if model.gate is not None and gate_rows.shape[1] != model.gate.shape[0]:
            raise ValueError(f"concomitant must have {model.gate.shape[0] - 1} columns")
        y = np.zeros(len(X)) if y is None else np.asarray(y, dtype=np.float64)
        if y.shape != (len(X),) or not np.isfinite(y).all():
            raise ValueError(f"y must be finite and of shape ({len(X)},)")
        weights = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
        return self._pack(X, y, weights, gate_rows)

    def predict(self, X: Any, concomitant: Any = None) -> np.ndarray:
        """Mixture mean ``E[y | x] = sum_k prior_k(z) mean_k(x)``, shape (n_samples,)."""
        packed = self._packed(X, concomitant=concomitant)
        model = self._model()
        _, _, design, gate_rows = model.unpack(packed)
        prior = np.exp(model.log_prior(gate_rows))
        return np.sum(prior * model.family.mean(design), axis=1)

    def predict_proba(self, X: Any, y: Any, concomitant: Any = None) -> np.ndarray:
        """Posterior membership probabilities given ``(x, y)``, shape (n_samples, n_components)."""
        joint = self._model().joint_log_prob(self._packed(X, y, concomitant))
        return np.exp(joint - logsumexp(joint, axis=1, keepdims=True))

    def score_samples(self, X: Any, y: Any, concomitant: Any = None) -> np.ndarray:
        """Log-likelihood ``log p(y | x, z)`` of each row, shape (n_samples,)."""
        return logsumexp(self._model().joint_log_prob(self._packed(X, y, concomitant)), axis=1)

    def score(self, X: Any, y: Any, concomitant: Any = None, sample_weight: Any = None) -> float:
        """Average (weighted) log-likelihood per row."""
        packed = self._packed(X, y, concomitant, sample_weight)
        per_row = logsumexp(self._model().joint_log_prob(packed), axis=1)
        return float(np.average(per_row, weights=packed[:, 1]))

    def _n_parameters(self) -> int:
        return self._model().n_parameters

    def bic(self, X: Any, y: Any, concomitant: Any = None) -> float:
        """Bayesian information criterion (lower is better)."""
        n = len(np.asarray(y))
        total = float(self.score_samples(X, y, concomitant).sum())
        return -2 * total + self._n_parameters() * np.log(n)

    def aic(self, X: Any, y: Any, concomitant: Any = None) -> float:
        """Akaike information criterion (lower is better)."""
        total = float(self.score_samples(X, y, concomitant).sum())
        return -2 * total + 2 * self._n_parameters()

    def icl(self, X: Any, y: Any, concomitant: Any = None) -> float:
        """Integrated completed likelihood, as flexmix's ``ICL`` (lower is better).

        ``-2 sum_i log(prior_{i c_i} p(y_i | x_i, c_i)) + n_parameters log(n)``
        with ``c_i`` each row's most probable component: the BIC with the
        classification likelihood, which also penalises overlapping components.
        """
        joint = self._model().joint_log_prob(self._packed(X, y, concomitant))
        n = joint.shape[0]
        return -2 * float(joint.max(axis=1).sum()) + self._n_parameters() * np.log(n)

    def sample(self, X: Any, concomitant: Any = None,
               random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``y`` for the rows of ``X``: returns ``(y, labels)``."""
        packed = self._packed(X, concomitant=concomitant)
        model = self._model()
        _, _, design, gate_rows = model.unpack(packed)
        rng = np.random.default_rng(v.seed_sequence(random_state))
        prior = np.exp(model.log_prior(gate_rows))
        cumulative = np.cumsum(prior, axis=1)
        draws = rng.random(len(X))[:, None]
        labels = np.minimum((draws > cumulative).sum(axis=1), self.n_components - 1)
        return model.family.sample(design, labels, rng), labels


# ---------------------------------------------------------------------- data and starts
#
# Every fit reads packed rows ``[y, w, design..., gate...]`` (see
# emkit.latent.experts) from a source; the rows are packed from a *raw* layout
# ``[y, w, X..., gate...]`` (the gate with its intercept column) by one function,
# whatever the input: arrays in memory, a file read chunk by chunk, dask blocks.


@dataclass
class _Data:
    """The rows of a fit, as the engine reads them, and what is known about them."""

    source: Any
    n_features: int
    n_design: int
    n_gate: int
    n_samples: int | None  # None: not known before a pass (CSV)
    n_missing: int | None  # rows with a missing y; None: counted during the first pass
    n_rows: int | None
    total_weight: float = 0.0
    names: list[str] | None = None  # of the design columns, where a file names them


@dataclass(frozen=True)
class _Layout:
    """How raw rows become packed ones, and the names of their columns for messages."""

    family: str
    fit_intercept: bool
    names: tuple[str, ...]  # of the raw columns after y and w


def _layout(estimator: RegressionMixture, x_names: list[str], z_names: list[str]) -> _Layout:
    gate = ["the gate's intercept", *z_names] if estimator.gating == "logistic" else []
    return _Layout(estimator.family, estimator.fit_intercept, (*x_names, *gate))


def pack_rows(raw: np.ndarray, layout: _Layout, first_row: int = 0) -> tuple[np.ndarray, int]:
    """Packed rows from raw ones ``[y, w, X..., gate...]``, and the number of missing ``y``.

    A missing (NaN) ``y`` becomes ``y = 0`` with weight 0, so the row counts in
    nothing while row numbers stay those of the input. Refuses, naming the
    (global) row and the column: a value that is not finite in the design or
    gate columns, an infinite ``y``, a weight that is negative or not finite,
    a ``y`` outside the family's support.
    """
    raw = np.asarray(raw, dtype=np.float64)
    y, w, rest = raw[:, 0], raw[:, 1], raw[:, 2:]
    bad = ~np.isfinite(rest)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{layout.names[col]} contains {rest[row, col]} at row {first_row + row}: "
            "the design and concomitant variables must be finite (only y may be missing)"
        )
    if np.isinf(y).any():
        row = first_row + int(np.flatnonzero(np.isinf(y))[0])
        raise ValueError(f"y contains inf at row {row}")
    bad_weight = ~np.isfinite(w) | (w < 0)
    if bad_weight.any():
        row = int(np.flatnonzero(bad_weight)[0])
        raise ValueError(f"sample_weight must be finite and >= 0; got {w[row]} at row "
                         f"{first_row + row}")
    missing = np.isnan(y)
    _check_response(layout.family, y, missing, first_row)
    packed = np.empty((len(raw), raw.shape[1] + layout.fit_intercept))
    packed[:, 0] = np.where(missing, 0.0, y)
    packed[:, 1] = np.where(missing, 0.0, w)
    if layout.fit_intercept:
        packed[:, 2] = 1.0
    packed[:, 2 + layout.fit_intercept :] = rest
    return packed, int(missing.sum())


@dataclass(frozen=True)
class _Start:
    """The statistics of starting memberships, as a model the engine can take a pass with.

    Either given responsibilities (rows found by their global index) or a
    random partition drawn from a counter-based generator keyed on ``key`` and
    the row index, so the start does not depend on how the rows are chunked.
    """

    resp: np.ndarray | None = None
    key: tuple | None = None
    model: Any = None

    def e_step(self, chunk: np.ndarray) -> Any:
        start, n = row_start(chunk), len(chunk)
        k = self.model.family.n_components
        if self.resp is not None:
            if start + n > len(self.resp):
                raise ValueError(f"init_resp has {len(self.resp)} rows; the data have more")
            resp = self.resp[start : start + n]
        else:
            uniforms = Stochastic(self.key).uniforms(start, n)
            resp = np.eye(k)[np.minimum((uniforms * k).astype(np.intp), k - 1)]
        return self.model.stats_from_resp(np.asarray(chunk), resp)


def _floored(model: RegressionMixtureModel) -> RegressionMixtureModel:
    """Floor the Gaussian scales at 1e-10 of the largest after the first M-step.

    A component fitting its rows exactly would otherwise get scale 0 and an
    infinite density; the floor is relative, so it does not depend on units.
    """
    if not isinstance(model.family, GaussianRegression):
        return model
    floor = 1e-10 * float(model.family.scale.max(initial=0.0)) + 1e-300
    family = replace(model.family, min_scale=floor,
                     scale=np.maximum(model.family.scale, floor))
    return replace(model, family=family)


class _PackedFile:
    """A file source's chunks packed for the fit, cut into indexed E-step chunks.

    Counts the rows and the missing ``y`` of the last complete pass.
    """

    def __init__(self, source: Any, picks: tuple, layout: _Layout, gated: bool,
                 chunk_size: int) -> None:
        self.source, self.picks, self.layout = source, picks, layout
        self.gated, self.chunk_size = gated, chunk_size
        self.n_missing: int | None = None
        self.n_rows: int | None = None

    def _raw(self, chunk: np.ndarray) -> np.ndarray:
        iy, iw, ix, iz = self.picks
        n = len(chunk)
        columns = [chunk[:, [iy]], np.ones((n, 1)) if iw is None else chunk[:, [iw]],
                   chunk[:, ix]]
        if self.gated:
            columns += [np.ones((n, 1)), chunk[:, iz]]
        return np.hstack(columns).astype(np.float64, copy=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        first_row, missing = 0, 0
        for chunk in self.source:
            packed, n_missing = pack_rows(self._raw(chunk), self.layout, first_row)
            missing += n_missing
            yield from IndexedArraySource(packed, self.chunk_size, first_row)
            first_row += len(chunk)
        self.n_missing, self.n_rows = missing, first_row

    def __repr__(self) -> str:
        return repr(self.source)


def _column_index(names: list[str], name: Any, what: str, source: Any) -> int:
    if isinstance(name, int | np.integer) and not isinstance(name, bool):
        if 0 <= name < len(names):
            return int(name)
    elif isinstance(name, str) and name in names:
        return names.index(name)
    raise ValueError(f"{what} {name!r} is not a column of {source!r}; its columns are "
                     f"{', '.join(names)}")


def _streamed(estimator: RegressionMixture, X: Any, y: Any, sample_weight: Any,
              concomitant: Any) -> _Data:
    """A file source or dask array as packed rows for the engine."""
    if is_dask_array(X):
        return _dask_data(estimator, X, y, sample_weight, concomitant)
    names = list(X.columns)
    if not isinstance(y, str | int | np.integer):
        raise ValueError(f"with a file source, y names the response column (one of "
                         f"{', '.join(names)}), got {type(y).__name__}")
    iy = _column_index(names, y, "y", X)
    iw = None if sample_weight is None else _column_index(names, sample_weight,
                                                          "sample_weight", X)
    z = [] if concomitant is None else (
        [concomitant] if isinstance(concomitant, str | int) else list(concomitant))
    iz = [_column_index(names, c, "concomitant", X) for c in z]
    used = {iy, iw, *iz}
    if len(used) < 2 + len(iz) - (iw is None):
        raise ValueError("y, sample_weight and concomitant must name different columns")
    ix = [j for j in range(len(names)) if j not in used]
    layout = _layout(estimator, [names[j] for j in ix], [names[j] for j in iz])
    gated = estimator.gating == "logistic"
    source = _PackedFile(X, (iy, iw, ix, iz), layout, gated, estimator.chunk_size)
    return _Data(source, len(ix), len(ix) + estimator.fit_intercept, (1 + len(iz)) * gated,
                 getattr(X, "n_samples", None), None, None, names=[names[j] for j in ix])


def _set_feature_names(estimator: RegressionMixture, names: Any) -> None:
    """``feature_names_in_`` from a data frame's or a file's design columns (as scikit-learn)."""
    if names is not None and all(isinstance(n, str) for n in names):
        estimator.feature_names_in_ = np.asarray(list(names), dtype=object)
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_


def _dask_data(estimator: RegressionMixture, X: Any, y: Any, sample_weight: Any,
               concomitant: Any) -> _Data:
    """Packed rows of dask arrays, block by block, on the arrays' scheduler."""
    import dask.array as da

    from emkit.data.dask_source import DaskSource

    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array (n_samples, n_features), got {X.ndim}-D")
    rows = X.chunks[0]
    n = int(X.shape[0])

    def aligned(values: Any, name: str, ndim: int) -> Any:
        values = da.asarray(values).astype(np.float64)
        if values.ndim != ndim or values.shape[0] != n:
            raise ValueError(f"{name} must have {n} rows and {ndim} dimension(s), got shape "
                             f"{values.shape}")
        values = values.reshape(n, -1) if ndim == 1 else values
        return values.rechunk({0: rows, 1: -1})

    columns = [aligned(y, "y", 1)]
    columns.append(da.ones((n, 1), chunks=(rows, 1)) if sample_weight is None
                   else aligned(sample_weight, "sample_weight", 1))
    columns.append(X.astype(np.float64).rechunk({1: -1}))
    n_z = 0
    if estimator.gating == "logistic":
        columns.append(da.ones((n, 1), chunks=(rows, 1)))
        if concomitant is not None:
            z = aligned(concomitant, "concomitant", 2)
            columns.append(z)
            n_z = int(z.shape[1])
    p = int(X.shape[1])
    layout = _layout(estimator, [f"X column {j}" for j in range(p)],
                     [f"concomitant column {j}" for j in range(n_z)])
    raw = da.concatenate(columns, axis=1).rechunk({1: -1})
    width = raw.shape[1] + estimator.fit_intercept
    packed = raw.map_blocks(_pack_block, layout, chunks=(raw.chunks[0], (width,)),
                            dtype=np.float64)
    n_missing = int(da.isnan(columns[0]).sum().compute())
    gate = (1 + n_z) if estimator.gating == "logistic" else 0
    return _Data(DaskSource(packed, estimator.chunk_size), p, p + estimator.fit_intercept,
                 gate, n, n_missing, n)


def _pack_block(block: np.ndarray, layout: _Layout, block_info: dict | None = None) -> np.ndarray:
    first_row = block_info[0]["array-location"][0][0] if block_info else 0
    return pack_rows(block, layout, int(first_row))[0]


def _check_design(X: Any, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); reshape a single "
                         "feature with x[:, None]")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got {X.ndim}-D")
    return v.check_finite(X, name)


def _check_response(family: str, y: np.ndarray, missing: np.ndarray, first_row: int) -> None:
    if family == "poisson":
        bad = (y < 0) | (y != np.round(y))
        what = "non-negative integer counts"
    elif family == "binomial":
        bad = (y != 0) & (y != 1)
        what = "0 or 1"
    else:
        return
    bad &= ~missing
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"family={family!r} needs y to be {what}; got {float(y[row])!r} at row "
            f"{first_row + row}"
        )


def _check_init_resp(init_resp: Any, k: int, n: int) -> np.ndarray:
    resp = np.asarray(init_resp)
    if resp.ndim == 1:
        if resp.shape != (n,) or not np.isin(resp, np.arange(k)).all():
            raise ValueError(f"init_resp labels must be {n} integers in [0, {k})")
        return np.eye(k)[resp.astype(int)]
    resp = resp.astype(np.float64)
    if resp.shape != (n, k) or (resp < 0).any() or not np.allclose(resp.sum(axis=1), 1.0):
        raise ValueError(f"init_resp must have shape ({n}, {k}) with rows summing to one")
    return resp
