"""RegressionMixture: finite mixtures of regressions and of experts (flexmix's models), by EM."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from emkit.core.engine import run_em
from emkit.data import _validation as v
from emkit.data.sources import ArraySource
from emkit.distributions.regression import FAMILIES, family_from_arrays, start_family
from emkit.estimators.standard_errors import RegressionStandardErrorMethods
from emkit.io import register_estimator
from emkit.latent.experts import RegressionMixtureModel

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
}


@register_estimator
class RegressionMixture(RegressionStandardErrorMethods, BaseEstimator):
    """Finite mixture of regressions (or of experts), fitted by EM.

    Row ``i`` belongs to component ``k`` with prior probability ``pi_k`` (or,
    with ``gating="logistic"``, ``softmax(gate_intercept_ + z_i gate_coef_^T)_k``
    for concomitant variables ``z_i``); within component ``k``, ``y_i`` follows
    a regression on ``x_i`` with coefficients ``intercept_[k], coef_[k]``:

    - ``"gaussian"``: ``y ~ N(intercept + x b, scale^2)``, M-step by weighted
      least squares through QR (never the normal equations);
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
    chunk_size : int, default=65536
        Rows per E-step chunk; the statistics of chunks add up.
    random_state : int, RandomState, Generator or None, default=None

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

    # ------------------------------------------------------------------ fitting

    def fit(
        self, X: Any, y: Any, sample_weight: Any = None, concomitant: Any = None,
        init_resp: Any = None,
    ) -> RegressionMixture:
        """Fit by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Design (without an intercept column when ``fit_intercept``). No NaN.
        y : array-like of shape (n_samples,)
            Responses; rows where ``y`` is NaN are left out (with a warning).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative row weights (frequency weights).
        concomitant : array-like of shape (n_samples, n_concomitant), optional
            Gating variables, for ``gating="logistic"`` (an intercept-only gate
            when omitted).
        init_resp : array-like of shape (n_samples,) or (n_samples, n_components), optional
            Starting memberships: component labels or responsibilities (rows
            summing to one), like flexmix's ``cluster=``. EM starts with an
            M-step on them.

        Returns
        -------
        self
        """
        v.validate_params(self, _PARAMETER_RULES)
        if self.gating == "constant" and concomitant is not None:
            raise ValueError("RegressionMixture: concomitant variables need gating='logistic'")
        X, y, weights, gate_rows, keep = self._validate_fit_input(X, y, sample_weight, concomitant)
        packed = self._pack(X, y, weights, gate_rows)
        source = ArraySource(packed, self.chunk_size)
        starts = self._starts(packed, init_resp, keep)
        best = None
        for resp in starts:
            model = self._initial_model(X.shape[1] + self.fit_intercept, gate_rows.shape[1], y)
            stats = sum(model.stats_from_resp(chunk, r) for chunk, r in
                        zip(source, _chunks(resp, self.chunk_size), strict=True))
            result = run_em(model.m_step(stats), source, tol=self.tol, max_iter=self.max_iter)
            if best is None or result.lower_bound > best.lower_bound:
                best = result
        if not best.converged and self.max_iter > 0:
            warnings.warn("RegressionMixture did not converge; increase max_iter or tol",
                          ConvergenceWarning, stacklevel=2)
        self._set_fitted(best, gate_rows, weights)
        self._warn_degenerate(weights.sum())
        return self

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

    def _validate_fit_input(self, X, y, sample_weight, concomitant):
        X = _check_design(X, "X")
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must have shape ({len(X)},), got {y.shape}")
        if np.isinf(y).any():
            raise ValueError(f"y contains inf at row {int(np.flatnonzero(np.isinf(y))[0])}")
        weights = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
        if weights.shape != y.shape or not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError(f"sample_weight must be finite, >= 0 and of shape {y.shape}")
        gate_rows = self._gate_rows(concomitant, len(X))
        keep = ~np.isnan(y)
        if not keep.all():
            warnings.warn(
                f"RegressionMixture: {int((~keep).sum())} of {len(y)} rows have a missing "
                "(NaN) y and are left out of the fit", UserWarning, stacklevel=3,
            )
            X, y, weights, gate_rows = X[keep], y[keep], weights[keep], gate_rows[keep]
        _check_response(self.family, y)
        if weights.sum() <= 0:
            raise ValueError("RegressionMixture: no row with positive weight and an observed y")
        self.n_features_in_ = X.shape[1]
        return X, y, weights, gate_rows, keep

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

    def _starts(self, packed: np.ndarray, init_resp: Any, keep: np.ndarray) -> list[np.ndarray]:
        """Starting responsibilities: the given ones, or ``n_init`` random partitions."""
        k, n = self.n_components, len(packed)
        if init_resp is not None:
            return [_check_init_resp(init_resp, k, len(keep))[keep]]
        rng = np.random.default_rng(v.seed_sequence(self.random_state))
        return [np.eye(k)[rng.integers(k, size=n)] for _ in range(self.n_init)]

    def _initial_model(self, n_design: int, n_gate: int, y: np.ndarray) -> RegressionMixtureModel:
        k = self.n_components
        min_scale = 1e-10 * (float(np.std(y)) + 1e-300)
        family = start_family(self.family, k, n_design, min_scale)
        if self.gating == "logistic":
            return RegressionMixtureModel(family, n_design, gate=np.zeros((n_gate, k)))
        return RegressionMixtureModel(family, n_design, weights=np.full(k, 1.0 / k))

    def _set_fitted(self, result: Any, gate_rows: np.ndarray, weights: np.ndarray) -> None:
        model = result.model
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
            prior = np.exp(model.log_prior(gate_rows))
            self.weights_ = (weights @ prior) / weights.sum()
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


def _chunks(array: np.ndarray, size: int):
    for start in range(0, len(array), size):
        yield array[start : start + size]


def _check_design(X: Any, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); reshape a single "
                         "feature with x[:, None]")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got {X.ndim}-D")
    return v.check_finite(X, name)


def _check_response(family: str, y: np.ndarray) -> None:
    if family == "poisson":
        bad = (y < 0) | (y != np.round(y))
        what = "non-negative integer counts"
    elif family == "binomial":
        bad = (y != 0) & (y != 1)
        what = "0 or 1"
    else:
        return
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"family={family!r} needs y to be {what}; got {float(y[row])!r} at row {row}"
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
