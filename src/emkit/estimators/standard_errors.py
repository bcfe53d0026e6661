"""Standard errors and confidence intervals of a fitted mixture's parameters.

``standard_errors(X)`` on :class:`emkit.GaussianMixture` and
:class:`emkit.MixtureModel` inverts the observed information of the fit on
``X``, computed by Louis' (1982) method (:mod:`emkit.latent.information`), in
the estimator's own parameters:

- weights ``weights_[0 .. K-2]`` (the last is one minus their sum, and gets
  its standard error from theirs);
- Gaussian mixtures: ``means_`` and the free entries of ``covariances_``
  (the upper triangle of a full or tied covariance, the variances of a
  diagonal one, the one variance of a spherical one; a shared covariance,
  "tied", "EEI" or "EII", is one set of parameters); mclust's eight curved
  models (VEI ... EVV) have local coordinates at the fit instead
  (:mod:`emkit.distributions.gaussian.curved`), and ``covariances_`` their
  errors by the delta method;
- other families: their own parameters (:mod:`emkit.distributions.scores`).

Frozen parameters (``params`` of ``GaussianMixture``, ``frozen`` and
``fit_weights=False`` of ``MixtureModel``) are constants of the fit: they have
no standard error (NaN in the arrays, "fixed" in the table, as is the weight
of a one-component mixture) and do not enter the others'. Intervals are Wald
intervals, ``estimate +- z * se``.

Hidden Markov models (:class:`HMMStandardErrorMethods`) take their observed
information from :mod:`emkit.latent.hmm_information`; estimators without a
likelihood say so (:class:`NoStandardErrors`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm

from emkit.data import _validation as v
from emkit.data import scale
from emkit.distributions.component_list import ComponentList
from emkit.distributions.gaussian import scores as gaussian_scores
from emkit.distributions.gaussian.curved import CURVED_MODELS, curved_layout
from emkit.distributions.gaussian.family import Gaussian as GaussianFamily
from emkit.distributions.gaussian.noise import NoisyGaussian
from emkit.distributions.scores import Slot, derivatives, regression_derivatives
from emkit.latent.hmm_information import hmm_layout, observed_information
from emkit.latent.information import (
    ComponentTerms,
    Information,
    MixingTerms,
    mixture_information,
)
from emkit.latent.mixture import Mixture

METHODS = ("louis", "empirical")
# Normalised information eigenvalues below this: no direction of the parameters
# is determined by the data (about 1e-6 relative in the standard errors).
SINGULAR_RTOL = 1e-12
# Fewer rows than this behind a component: it is empty.
MIN_COMPONENT_ROWS = 1.0


_NOT_A_MAXIMUM = ("the parameters are not at a maximum of the likelihood (the fit has not "
                  "converged: lower tol or raise max_iter)")


class SingularInformationError(ValueError):
    """The observed information cannot be inverted: some parameters are not determined."""


@dataclass(frozen=True)
class Layout:
    """A fitted mixture's free parameters and how the stored arrays follow them.

    Attributes
    ----------
    terms : list of ComponentTerms
    names : tuple of str
        The free parameters, weights first.
    slots : tuple of Slot
        Every stored parameter array, its entries from the free parameters.
    fit_weights : bool
    estimates : ndarray of shape (q,) or None
        The free parameters' values where they are not stored entries (a
        curved covariance model's coordinates); NaN where they are.
    """

    terms: list[ComponentTerms]
    names: tuple[str, ...]
    slots: tuple[Slot, ...]
    fit_weights: bool
    estimates: np.ndarray | None = None


@dataclass(frozen=True)
class StandardErrors:
    """Standard errors of a fitted mixture, and the covariance they come from.

    Attributes
    ----------
    names : tuple of str
        The free parameters, in the order of ``estimates``, ``covariance`` and
        ``information``.
    estimates : ndarray of shape (q,)
    covariance : ndarray of shape (q, q)
        Asymptotic covariance of the estimates: the inverse information.
    information : ndarray of shape (q, q)
        The observed information (``method="louis"``) or the empirical one.
    values : dict of str to ndarray
        Every stored parameter (``"weights"``, ``"means"``, ``"covariances"``,
        ``"components[k].rate"`` ...), as fitted.
    errors : dict of str to ndarray
        Their standard errors, shaped like ``values``; NaN where frozen.
    frozen : dict of str to ndarray of bool
        Which entries are frozen (constants of the fit).
    method : str
        ``"louis"`` or ``"empirical"``; ``"score-jacobian"`` for hidden Markov
        models (:mod:`emkit.latent.hmm_information`).
    expand : dict of str to ndarray
        How each stored array's entries follow the free parameters.

    Examples
    --------
    One Gaussian: the standard error of a mean is the (ML) standard deviation over
    ``sqrt(n)``.

    >>> import numpy as np
    >>> from emkit import GaussianMixture
    >>> X = np.random.default_rng(0).normal(3.0, 2.0, size=(400, 1))
    >>> se = GaussianMixture(1, reg_covar=0.0).fit(X).standard_errors(X)
    >>> bool(np.isclose(se.means[0, 0], X.std() / np.sqrt(400)))
    True
    >>> se.names
    ('means[0, 0]', 'covariances[0, 0, 0]')
    >>> print(se.table().splitlines()[0])
    parameter           estimate  std. error  95% interval
    """

    names: tuple[str, ...]
    estimates: np.ndarray
    covariance: np.ndarray
    information: np.ndarray
    values: dict[str, np.ndarray]
    errors: dict[str, np.ndarray]
    frozen: dict[str, np.ndarray]
    method: str
    expand: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        # The generated repr printed every matrix in full: hundreds of lines.
        return (f"StandardErrors(method={self.method!r}, {len(self.names)} free parameters, "
                f"{_shapes(self.errors)}; .table() lists them)")

    @property
    def weights(self) -> np.ndarray:
        """Standard errors shaped like ``weights_``."""
        return self.errors["weights"]

    @property
    def means(self) -> np.ndarray:
        """Standard errors shaped like ``means_`` (Gaussian mixtures)."""
        return self.errors["means"]

    @property
    def covariances(self) -> np.ndarray:
        """Standard errors shaped like ``covariances_`` (Gaussian mixtures)."""
        return self.errors["covariances"]

    @property
    def coef(self) -> np.ndarray:
        """Standard errors shaped like ``coef_`` (``RegressionMixture``)."""
        return self.errors["coef"]

    def component(self, index: int) -> dict[str, np.ndarray]:
        """Standard errors of component ``index``'s parameters (``MixtureModel``), by name."""
        prefix = f"components[{index}]."
        found = {name[len(prefix):]: se for name, se in self.errors.items()
                 if name.startswith(prefix)}
        if not found:
            raise KeyError(f"no parameters of a component {index} (have {list(self.errors)})")
        return found

    def confidence_intervals(self, level: float = 0.95) -> ConfidenceIntervals:
        """Wald intervals ``value +- z se`` at ``level`` for every stored parameter."""
        z = _z(level)
        lower = {name: self.values[name] - z * se for name, se in self.errors.items()}
        upper = {name: self.values[name] + z * se for name, se in self.errors.items()}
        return ConfidenceIntervals(level, lower, upper, self)

    def table(self, level: float = 0.95) -> str:
        """A text table: each distinct parameter, its estimate, standard error and interval."""
        z = _z(level)
        header = ("parameter", "estimate", "std. error", f"{level:.0%} interval")
        lines = [header]
        for name, index in self._entries():
            value = self.values[name][index]
            label = name + (str(list(index)).replace(" ", "") if index else "")
            if self.frozen[name][index]:
                lines.append((label, f"{value:.6g}", "fixed", ""))
                continue
            se = self.errors[name][index]
            lines.append((label, f"{value:.6g}", f"{se:.4g}",
                          f"[{value - z * se:.6g}, {value + z * se:.6g}]"))
        widths = [max(len(row[i]) for row in lines) for i in range(4)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                         .rstrip() for row in lines)

    def _entries(self) -> list[tuple[str, tuple[int, ...]]]:
        """Each stored entry once: a symmetric or shared copy of an earlier one is left out."""
        entries = []
        for name, value in self.values.items():
            expand = self.expand.get(name)
            seen = set()
            for flat, index in enumerate(np.ndindex(value.shape)):
                if name.endswith("covariance") or name.endswith("covariances"):
                    if value.ndim >= 2 and index[-1] < index[-2]:
                        continue  # the lower triangle mirrors the upper
                    key = None if expand is None else expand[flat].tobytes()
                    if key in seen and expand[flat].any():
                        continue  # a shared covariance stored once per component
                    seen.add(key)
                entries.append((name, index))
        return entries


@dataclass(frozen=True)
class ConfidenceIntervals:
    """Wald confidence intervals of a fitted mixture's parameters.

    Attributes
    ----------
    level : float
    lower, upper : dict of str to ndarray
        Bounds shaped like the stored parameters (NaN where frozen).
    standard_errors : StandardErrors
        What they were computed from.
    """

    level: float
    lower: dict[str, np.ndarray]
    upper: dict[str, np.ndarray]
    standard_errors: StandardErrors

    def table(self) -> str:
        """The table of :meth:`StandardErrors.table` at this level."""
        return self.standard_errors.table(self.level)

    def __repr__(self) -> str:
        return (f"ConfidenceIntervals(level={self.level}, {_shapes(self.lower)}; "
                ".lower, .upper, .table())")


def _shapes(arrays: dict[str, np.ndarray]) -> str:
    """``name (shape)`` of each stored parameter, for a one-line repr."""
    return ", ".join(f"{name} {np.shape(value)}" for name, value in arrays.items())


def _z(level: float) -> float:
    if not (isinstance(level, float | int) and 0 < level < 1):
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    return float(norm.ppf(0.5 + level / 2))


class StandardErrorMethods:
    """``standard_errors`` and ``confidence_intervals`` of a fitted mixture estimator.

    Uses the estimator's ``_model()`` and ``_checked(X)``; a Gaussian mixture
    may also offer ``_degeneracy_message(n_samples)`` (collapsed components).
    """

    def standard_errors(
        self, X: Any, *, sample_weight: Any = None, labels: Any = None, method: str = "louis",
    ) -> StandardErrors:
        """Standard errors of the fitted parameters, from the observed information on ``X``.

        The observed information is minus the Hessian of the log-likelihood
        of ``X`` at the fitted parameters, computed by Louis' (1982) method:
        complete-data information minus missing information, from per-row
        scores (see :mod:`emkit.latent.information`). Its inverse is the
        asymptotic covariance of the estimates. Pass the rows, weights and
        labels of the fit: the standard errors are those of that fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows the model was fitted on (in memory).
        sample_weight : array-like of shape (n_samples,), optional
            The fit's row weights (an integer weight counts as that many rows).
        labels : array-like of int of shape (n_samples,), optional
            The fit's partial labels (-1 for unknown rows).
        method : {"louis", "empirical"}, default="louis"
            ``"louis"``: the observed information, exact. ``"empirical"``:
            the summed outer products of the per-row scores, which estimates
            the same matrix at the maximum.

        Returns
        -------
        StandardErrors

        Raises
        ------
        SingularInformationError
            When a component is empty or collapsed, or the information is
            singular or not positive definite (not at a maximum): the message
            names the components or parameters.
        NotImplementedError
            For covariance models or families not covered (named).
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if scale.is_scalable(X) and not scale.is_dask_array(X):
            raise ValueError(
                "standard_errors needs the rows in memory (an array or a Dask array): the "
                "information matrix takes one more pass than a file source is made for; "
                "read the file into an array"
            )
        model, X = self._checked(np.asarray(X) if scale.is_dask_array(X) else X)
        X = np.asarray(X, dtype=np.float64)
        _warn_if_map_fit(self)
        weights = v.check_sample_weight(sample_weight, X.shape[0])
        labels = v.check_labels(labels, X.shape[0], len(model.weights))
        layout = _layout(self, model)
        n_rows = X.shape[0] if weights is None else float(weights.sum())
        message = getattr(self, "_degeneracy_message", lambda n: "")(n_rows)
        if message:
            raise SingularInformationError(f"no standard errors: {message}")
        info = mixture_information(model, X, layout.terms, fit_weights=layout.fit_weights,
                                   sample_weight=weights, labels=labels)
        _check_components(info)
        matrix = info.observed if method == "louis" else info.empirical
        covariance = _inverse(matrix, layout.names, method)
        return _result(layout, matrix, covariance, method)

    def confidence_intervals(
        self, X: Any, level: float = 0.95, *, sample_weight: Any = None, labels: Any = None,
        method: str = "louis",
    ) -> ConfidenceIntervals:
        """Wald confidence intervals ``estimate +- z se`` at ``level``.

        Parameters as :meth:`standard_errors`, plus ``level`` in (0, 1).

        Returns
        -------
        ConfidenceIntervals
            ``lower`` and ``upper`` shaped like the fitted parameters.
        """
        _z(level)
        errors = self.standard_errors(X, sample_weight=sample_weight, labels=labels,
                                      method=method)
        return errors.confidence_intervals(level)


class RegressionStandardErrorMethods:
    """``standard_errors`` and ``confidence_intervals`` of a fitted ``RegressionMixture``.

    The weights (or, with a logistic gate, ``gate_intercept_`` and
    ``gate_coef_`` of every component but the first, the reference), each
    component's ``intercept_``, ``coef_`` and (Gaussian family) ``scale_``.
    """

    def standard_errors(
        self, X: Any, y: Any, *, sample_weight: Any = None, concomitant: Any = None,
        method: str = "louis",
    ) -> StandardErrors:
        """Standard errors of the fitted parameters, from the observed information on ``(X, y)``.

        As :meth:`emkit.GaussianMixture.standard_errors` (Louis' method), with
        the parameters ``weights`` (constant gating) or ``gate_intercept`` and
        ``gate_coef`` (logistic gating; the first component's row is the
        reference, fixed at zero), then ``intercept``, ``coef`` and, for the
        Gaussian family, ``scale`` (the residual standard deviation).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
            The fit's row weights.
        concomitant : array-like of shape (n_samples, n_concomitant), optional
            The gate's variables (``gating="logistic"``), as in the fit.
        method : {"louis", "empirical"}, default="louis"

        Returns
        -------
        StandardErrors

        Raises
        ------
        SingularInformationError
            For a component with no more rows than coefficients, or singular information.
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        model = self._model()
        n_rows = np.asarray(X).shape[0] if hasattr(X, "shape") else len(X)
        weights = v.check_sample_weight(sample_weight, n_rows)
        packed = self._packed(X, y, concomitant, weights)
        layout, mixing = _regression_layout(self, model)
        total = float(packed[:, 1].sum())
        n_design = model.n_design
        thin = np.flatnonzero(np.asarray(self.weights_) * total < n_design + 1)
        if thin.size:
            raise SingularInformationError(
                f"no standard errors: component(s) {thin.tolist()} stand for "
                f"{np.round(self.weights_[thin] * total, 2).tolist()} rows, no more than their "
                f"{n_design} coefficients: a degenerate fit"
            )
        joint = _JointModel(np.asarray(self.weights_, np.float64), model.joint_log_prob)
        info = mixture_information(joint, packed, layout.terms, fit_weights=True,
                                   sample_weight=packed[:, 1], mixing=mixing)
        _check_components(info)
        matrix = info.observed if method == "louis" else info.empirical
        return _result(layout, matrix, _inverse(matrix, layout.names, method), method)

    def confidence_intervals(
        self, X: Any, y: Any, level: float = 0.95, *, sample_weight: Any = None,
        concomitant: Any = None, method: str = "louis",
    ) -> ConfidenceIntervals:
        """Wald confidence intervals at ``level``; parameters as :meth:`standard_errors`."""
        _z(level)
        errors = self.standard_errors(X, y, sample_weight=sample_weight,
                                      concomitant=concomitant, method=method)
        return errors.confidence_intervals(level)


class HMMStandardErrorMethods:
    """``standard_errors`` and ``confidence_intervals`` of a fitted hidden Markov model.

    Uses the estimator's ``_sequences(X, lengths)`` and ``_information_chain()``:
    the fitted chain (emissions a ComponentList), whether its start and
    transition probabilities are free, and which emission coordinates are.
    """

    def standard_errors(self, X: Any, lengths: Any = None) -> StandardErrors:
        """Standard errors of the fitted parameters, from the observed information on ``X``.

        The observed information is minus the Hessian of the log-likelihood
        of the sequences at the fitted parameters: the exact score from
        forward-backward (Fisher's identity), differentiated once more by
        central differences with a Richardson step
        (:mod:`emkit.latent.hmm_information`). The parameters: the start
        probabilities and each row of the transition matrix (every entry but
        the row's largest, which is one minus the others), then each state's
        emission parameters, as ``emissions[k].rate`` and so on. Parameters the
        fit keeps fixed (not in ``params``) have no error (NaN, "fixed").

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list of arrays
            The sequences the model was fitted on (in memory).
        lengths : array-like of int, optional
            Their lengths, as in ``fit``.

        Returns
        -------
        StandardErrors
            With ``errors["startprob"]``, ``errors["transmat"]`` and
            ``errors["emissions[k].NAME"]``.

        Raises
        ------
        SingularInformationError
            When the information is singular (a state never visited, two
            states alike) or not positive definite (not at a maximum).
        NotImplementedError
            For emissions without derivatives (named).

        Warns
        -----
        UserWarning
            When a start or transition probability is on the boundary (held
            fixed at zero, no error), or the fit is not at a maximum of the
            likelihood (a prior, Viterbi training or an unconverged fit).
        """
        chain, fit_start, fit_trans, emission_free = self._information_chain()
        if scale.is_dask_array(X):
            X = np.asarray(X)
        chunks = self._sequences(X, lengths)
        layout = hmm_layout(chain, fit_start=fit_start, fit_trans=fit_trans,
                            emission_free=emission_free)
        if layout.fixed_at_boundary:
            warnings.warn(
                f"{', '.join(layout.fixed_at_boundary[:4])}"
                f"{' ...' if len(layout.fixed_at_boundary) > 4 else ''}: on the boundary "
                "(zero), held fixed: no standard error (the log-likelihood has no derivative "
                "there)", UserWarning, stacklevel=2,
            )
        information, score = observed_information(chain, layout, chunks)
        covariance = _inverse(information, layout.names, "observed")
        _check_stationary(score, covariance, layout.names)
        return _result(Layout([], layout.names, layout.slots, False), information, covariance,
                       "score-jacobian")

    def confidence_intervals(self, X: Any, lengths: Any = None,
                             level: float = 0.95) -> ConfidenceIntervals:
        """Wald intervals ``estimate +- z se`` at ``level``; as :meth:`standard_errors`."""
        _z(level)
        return self.standard_errors(X, lengths).confidence_intervals(level)

    def _information_chain(self) -> tuple[Any, bool, bool, Any]:
        return self._chain(), True, True, None


class NoStandardErrors:
    """``standard_errors`` and ``confidence_intervals`` that say, in one line, why there are none.

    The estimator names the reason in ``_no_standard_errors``.
    """

    _no_standard_errors = "it has no likelihood"

    def standard_errors(self, *args: Any, **kwargs: Any) -> StandardErrors:
        """Not available: raises ``NotImplementedError`` saying why."""
        raise NotImplementedError(
            f"{type(self).__name__} has no standard errors: {self._no_standard_errors}"
        )

    def confidence_intervals(self, *args: Any, **kwargs: Any) -> ConfidenceIntervals:
        """Not available: raises ``NotImplementedError`` saying why."""
        return self.standard_errors()


# A Newton step to the maximum would raise the log-likelihood by about half this.
STATIONARY_DECREMENT = 1e-2


def _check_stationary(score: np.ndarray, covariance: np.ndarray, names: tuple[str, ...]) -> None:
    """Warn when the parameters are measurably off a maximum (the score does not vanish)."""
    decrement = float(score @ covariance @ score)
    if decrement > STATIONARY_DECREMENT:
        worst = names[int(np.argmax(np.abs(score) * np.sqrt(np.diag(covariance))))]
        warnings.warn(
            f"the fitted parameters are not at a maximum of the likelihood (a Newton step "
            f"would raise it by about {decrement / 2:.3g}, mostly along {worst}): a prior, "
            "Viterbi training or an unconverged fit; the standard errors are those of the "
            "curvature here", UserWarning, stacklevel=3,
        )


@dataclass(frozen=True)
class _JointModel:
    """What :func:`mixture_information` asks of a model: weights and log responsibilities."""

    weights: np.ndarray
    joint_log_prob: Callable[[np.ndarray], np.ndarray]

    def log_resp(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        joint = self.joint_log_prob(chunk)
        log_norm = logsumexp(joint, axis=1)
        return joint - log_norm[:, None], log_norm


def _regression_layout(estimator: Any, model: Any) -> tuple[Layout, MixingTerms | None]:
    """Free weights (or gate), then per component its coefficients (intercept first)
    and scale; and the gate's mixing terms (None for constant weights)."""
    family = model.family
    coef = np.asarray(family.coef, np.float64)
    k, p = coef.shape
    gaussian = estimator.family == "gaussian"
    m = p + gaussian
    mixing = None if model.gate is None else _gate_terms(model)
    n_weights = k - 1 if mixing is None else mixing.n_free
    q = n_weights + k * m
    intercept = bool(estimator.fit_intercept)
    if mixing is None:
        names = list(_weight_names(k, True))
        slots = [_weights_slot(model.weights, True, q)]
    else:
        names, slots = _gate_names_and_slots(model.gate, q)
    terms = []
    for c in range(k):
        scale = family.scale[c] if gaussian else None
        score, curvature = regression_derivatives(estimator.family, coef[c], scale)
        terms.append(_regression_terms(model, score, curvature, k, m, c))
        names += ([f"intercept[{c}]"] if intercept else [])
        names += [f"coef[{c}, {j}]" for j in range(p - intercept)]
        names += [f"scale[{c}]"] if gaussian else []
    start = n_weights + m * np.arange(k)
    if intercept:
        slots.append(Slot("intercept", coef[:, 0], _selector(q, start)))
    columns = (start[:, None] + intercept + np.arange(p - intercept)).ravel()
    slots.append(Slot("coef", coef[:, intercept:], _selector(q, columns)))
    if gaussian:
        slots.append(Slot("scale", np.asarray(family.scale, np.float64), _selector(q, start + p)))
    return Layout(terms, tuple(names), tuple(slots), True), mixing


def _gate_terms(model: Any) -> MixingTerms:
    """``log pi_ik = log softmax(z_i gamma)_k``, free columns ``gamma_1 .. gamma_{K-1}``.

    ``d log pi_ik / d gamma_l = z_i (delta_kl - pi_il)``; minus its Hessian,
    ``(diag pi_i - pi_i pi_i')_lm z_i z_i'``, is the same for every ``k``.
    """
    gate = np.asarray(model.gate, np.float64)
    n_gate, k = gate.shape

    def prior(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = model.unpack(X)[3]
        return z, np.exp(model.log_prior(z))

    def gradients(X: np.ndarray) -> np.ndarray:
        z, pi = prior(X)
        delta = np.eye(k)[:, 1:]  # (K, K - 1)
        return np.einsum("ncl,nj->nclj", delta[None] - pi[:, None, 1:], z).reshape(
            len(z), k, (k - 1) * n_gate)

    def curvature(X: np.ndarray, weighted: np.ndarray) -> np.ndarray:
        z, pi = prior(X)
        rest = pi[:, 1:]
        spread = rest[:, :, None] * (np.eye(k - 1)[None] - rest[:, None, :])
        out = np.einsum("n,nlm,nj,ni->ljmi", weighted.sum(axis=1), spread, z, z)
        return out.reshape((k - 1) * n_gate, (k - 1) * n_gate)

    return MixingTerms((k - 1) * n_gate, gradients, curvature)


def _gate_names_and_slots(gate: np.ndarray, q: int) -> tuple[list[str], list[Slot]]:
    """Names of the gate's free entries and the stored ``gate_intercept_``, ``gate_coef_``."""
    n_gate, k = gate.shape
    names = []
    for c in range(1, k):
        names += [f"gate_intercept[{c}]"] + [f"gate_coef[{c}, {j}]" for j in range(n_gate - 1)]
    columns = (np.arange(k - 1)[:, None] * n_gate + np.arange(n_gate)).reshape(k - 1, n_gate)
    intercept = np.zeros((k, q))
    intercept[np.arange(1, k), columns[:, 0]] = 1.0
    coef = np.zeros((k * (n_gate - 1), q))
    for c in range(1, k):
        coef[c * (n_gate - 1) + np.arange(n_gate - 1), columns[c - 1, 1:]] = 1.0
    return names, [Slot("gate_intercept", gate[0], intercept),
                   Slot("gate_coef", gate[1:].T, coef)]


def _selector(q: int, columns: np.ndarray) -> np.ndarray:
    """Stored entries that are free parameters themselves: one unit row each."""
    out = np.zeros((columns.size, q))
    out[np.arange(columns.size), columns] = 1.0
    return out


def _regression_terms(model: Any, score: Callable, curvature: Callable, k: int, m: int,
                      c: int) -> ComponentTerms:
    def row_score(chunk: np.ndarray) -> np.ndarray:
        y, _, design, _ = model.unpack(chunk)
        return score(design, y)

    def row_curvature(chunk: np.ndarray, weights: np.ndarray) -> np.ndarray:
        y, _, design, _ = model.unpack(chunk)
        return curvature(design, y, weights)

    embed = np.zeros((m, k * m))
    embed[:, c * m:(c + 1) * m] = np.eye(m)
    return ComponentTerms(row_score, row_curvature, embed)


def _warn_if_map_fit(estimator: Any) -> None:
    """A Gaussian mixture fitted with ``prior=`` is a posterior mode, not a maximum likelihood.

    The information here is the log-likelihood's alone: at the posterior mode its
    gradient is not zero and the prior's curvature is left out, so say so.
    """
    if getattr(estimator, "prior", None) is None:
        return
    warnings.warn(
        f"{type(estimator).__name__} was fitted with prior={estimator.prior!r} (a posterior "
        "mode): these standard errors come from the log-likelihood's curvature alone, "
        "without the prior's; with little data, where the prior matters, they are rough",
        UserWarning, stacklevel=3,
    )


# ------------------------------------------------------------------ layouts


def _layout(estimator: Any, model: Mixture) -> Layout:
    if isinstance(model.components, GaussianFamily):
        return _gaussian_layout(model)
    if isinstance(model.components, ComponentList):
        return _component_list_layout(model)
    if isinstance(model.components, NoisyGaussian):
        raise NotImplementedError(
            f"standard errors are not implemented for {type(estimator).__name__}(noise=True): "
            "the uniform noise component's weight is not in their layout yet; fit without "
            "noise (for instance on the rows predict() does not give -1)"
        )
    raise NotImplementedError(
        f"standard errors are not implemented for {type(estimator).__name__}"
    )


def _weights_slot(weights: np.ndarray, fit_weights: bool, q: int) -> Slot:
    k = weights.size
    expand = np.zeros((k, q))
    if fit_weights and k > 1:
        expand[:, :k - 1] = np.vstack([np.eye(k - 1), -np.ones(k - 1)])
    return Slot("weights", np.asarray(weights, np.float64), expand)


def _weight_names(k: int, fit_weights: bool) -> tuple[str, ...]:
    return tuple(f"weights[{c}]" for c in range(k - 1)) if fit_weights else ()


def _gaussian_layout(model: Mixture) -> Layout:
    """Free weights, means and covariance parameters of a Gaussian mixture.

    A curved covariance model (VEI ... EVV) has local coordinates at the fit
    for its covariance parameters (:mod:`emkit.distributions.gaussian.curved`):
    their Jacobian gives the stored covariances' errors (the delta method).
    """
    family: GaussianFamily = model.components
    structure = family.structure
    means = np.asarray(family.means, np.float64)
    k, d = means.shape
    covariances = np.asarray(family.covariances, np.float64)
    dense = structure.dense(covariances, k, d)
    if np.isnan(dense).any():
        raise SingularInformationError("no standard errors: the covariances hold NaN")
    precisions = np.linalg.inv(dense)
    free_means = "means" not in family.fixed
    free_covariances = "covariances" not in family.fixed
    curved = free_covariances and structure.model in CURVED_MODELS
    if curved:
        layout = curved_layout(structure.model, dense)
    elif free_covariances:
        layout = gaussian_scores.covariance_layout(structure.model, k, d)
    else:
        layout = None
    n_weights = k - 1 if model.fit_weights else 0
    mean_names = tuple(f"means[{c}, {j}]" for c in range(k) for j in range(d)) \
        if free_means else ()
    cov_names = layout.names if layout is not None else ()
    n_means, n_covs = len(mean_names), len(cov_names)
    q_components = n_means + n_covs
    m = d * (d + 1) // 2
    terms = []
    for c in range(k):
        embed = np.zeros((d + m, q_components))
        if free_means:
            embed[:d, c * d + np.arange(d)] = np.eye(d)
        if layout is not None:
            embed[d:, n_means:] = layout.embed[c]
        second = None
        if curved:
            columns, tensor = layout.curvature[c]
            local = np.zeros((d + m, columns.size, columns.size))
            local[d:] = tensor
            second = (n_means + columns, local)
        terms.append(_gaussian_terms(means[c], precisions[c], dense[c], embed, second))
    q = n_weights + q_components
    mean_expand = np.zeros((k * d, q))
    if free_means:
        mean_expand[:, n_weights:n_weights + n_means] = np.eye(k * d)
    cov_expand = np.zeros((covariances.size, q))
    if layout is not None:
        cov_expand[:, n_weights + n_means:] = layout.expand
    slots = (_weights_slot(model.weights, model.fit_weights, q),
             Slot("means", means, mean_expand), Slot("covariances", covariances, cov_expand))
    names = _weight_names(k, model.fit_weights) + mean_names + cov_names
    estimates = None
    if curved:
        estimates = np.full(q, np.nan)
        estimates[n_weights + n_means:] = layout.estimates
    return Layout(terms, names, slots, model.fit_weights, estimates)


def _gaussian_terms(mean: np.ndarray, precision: np.ndarray, covariance: np.ndarray,
                    embed: np.ndarray,
                    second: tuple[np.ndarray, np.ndarray] | None = None) -> ComponentTerms:
    # Rows with missing values: each pattern's marginal (only where there are any).
    def score(X: np.ndarray) -> np.ndarray:
        if np.isnan(X).any():
            return gaussian_scores.pattern_row_scores(X, mean, covariance)
        return gaussian_scores.row_scores(X, mean, precision)

    def curvature(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if np.isnan(X).any():
            return gaussian_scores.pattern_curvature(X, weights, mean, covariance)
        return gaussian_scores.curvature(X, weights, mean, precision)

    return ComponentTerms(score, curvature, embed, embed_curvature=second)


def _component_list_layout(model: Mixture) -> Layout:
    """Free weights and each unfrozen component's own parameters."""
    family: ComponentList = model.components
    k = family.n_components
    frozen = family.frozen or (False,) * k
    parts = [None if f else derivatives(d) for d, f in zip(family.distributions, frozen,
                                                              strict=True)]
    sizes = [0 if p is None else len(p.names) for p in parts]
    n_weights = k - 1 if model.fit_weights else 0
    q_components = sum(sizes)
    q = n_weights + q_components
    names = list(_weight_names(k, model.fit_weights))
    slots = [_weights_slot(model.weights, model.fit_weights, q)]
    terms = []
    offset = 0
    for c, (part, size) in enumerate(zip(parts, sizes, strict=True)):
        prefix = f"components[{c}]."
        if part is None:
            terms.append(ComponentTerms(_no_score, _no_curvature, np.zeros((0, q_components))))
            slots += [Slot(prefix + s.name, s.value, np.zeros((s.value.size, q)))
                      for s in _frozen_slots(family.distributions[c])]
            continue
        embed = np.zeros((size, q_components))
        embed[:, offset:offset + size] = np.eye(size)
        terms.append(ComponentTerms(part.score, part.curvature, embed, part.prior_curvature))
        names += [prefix + name for name in part.names]
        for s in part.slots:
            expand = np.zeros((s.value.size, q))
            expand[:, n_weights + offset:n_weights + offset + size] = s.expand
            slots.append(Slot(prefix + s.name, s.value, expand))
        offset += size
    return Layout(terms, tuple(names), tuple(slots), model.fit_weights)


def _no_score(X: np.ndarray) -> np.ndarray:
    return np.zeros((X.shape[0], 0))


def _no_curvature(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.zeros((0, 0))


def _frozen_slots(distribution: Any) -> tuple[Slot, ...]:
    """A frozen component's parameters, to report as frozen (none if its family is unknown)."""
    try:
        return derivatives(distribution).slots
    except (NotImplementedError, ValueError):
        return ()


# ------------------------------------------------------------ checks and result


def _check_components(info: Information) -> None:
    empty = np.flatnonzero(info.counts < MIN_COMPONENT_ROWS)
    if empty.size:
        rows = ", ".join(f"{info.counts[c]:.3g}" for c in empty)
        raise SingularInformationError(
            f"no standard errors: component(s) {', '.join(map(str, empty))} stand for "
            f"{rows} rows (fewer than {MIN_COMPONENT_ROWS:g}): an empty component's "
            "parameters are not determined by the data. Fit fewer components."
        )


def _inverse(matrix: np.ndarray, names: tuple[str, ...], method: str) -> np.ndarray:
    """The inverse information, or a SingularInformationError naming what is not determined.

    Scaled to unit diagonal first, so that parameters on different scales
    (weights and variances) do not pass for a singular matrix.
    """
    if matrix.size == 0:
        return matrix.copy()
    diagonal = np.diag(matrix)
    negative = np.flatnonzero(diagonal < -SINGULAR_RTOL * np.abs(diagonal).max())
    if negative.size:
        raise SingularInformationError(
            f"no standard errors: the log-likelihood curves upwards along "
            f"{', '.join(names[i] for i in negative[:5])} ({method} information "
            f"{diagonal[negative[0]]:.3g}): {_NOT_A_MAXIMUM}"
        )
    blank = np.flatnonzero(~(diagonal > 0))
    if blank.size:
        raise SingularInformationError(
            f"no standard errors: the data carry no information on "
            f"{', '.join(names[i] for i in blank[:5])} ({method} information "
            f"{diagonal[blank[0]]:.3g}): not determined (components that are identical "
            "or empty, or a parameter the data cannot identify)"
        )
    scale = 1.0 / np.sqrt(diagonal)
    scaled = matrix * scale[:, None] * scale[None, :]
    values, vectors = np.linalg.eigh(scaled)
    if values[0] < SINGULAR_RTOL * values[-1]:
        worst = np.argsort(-np.abs(vectors[:, 0]))[:4]
        involved = ", ".join(names[i] for i in worst if abs(vectors[i, 0]) > 0.1)
        kind = "singular" if values[0] > -1e-8 * values[-1] else "not positive definite"
        hint = ("some parameters are not determined (a collapsed or redundant component, "
                "or a parameter the data cannot identify)" if kind == "singular" else
                _NOT_A_MAXIMUM)
        raise SingularInformationError(
            f"no standard errors: the {method} information is {kind} (smallest scaled "
            f"eigenvalue {values[0]:.3g}) along {involved}: {hint}"
        )
    inverse_scaled = (vectors / values) @ vectors.T
    covariance = inverse_scaled * scale[:, None] * scale[None, :]
    return 0.5 * (covariance + covariance.T)


def _result(layout: Layout, information: np.ndarray, covariance: np.ndarray,
            method: str) -> StandardErrors:
    values, errors, frozen, expands = {}, {}, {}, {}
    estimates = np.zeros(len(layout.names))
    named = np.zeros(len(layout.names), dtype=bool)
    for slot in layout.slots:
        value = np.asarray(slot.value, np.float64)
        expand = slot.expand
        variance = np.einsum("ep,pq,eq->e", expand, covariance, expand)
        fixed = ~(expand != 0).any(axis=1)
        se = np.sqrt(np.maximum(variance, 0.0))
        se[fixed] = np.nan
        values[slot.name] = value
        errors[slot.name] = se.reshape(value.shape)
        frozen[slot.name] = fixed.reshape(value.shape)
        expands[slot.name] = expand
        # A free parameter is named after (and equal to) its first stored entry.
        for j in np.flatnonzero((expand != 0).any(axis=0) & ~named):
            estimates[j] = value.ravel()[int(np.argmax(expand[:, j] != 0))]
            named[j] = True
    if layout.estimates is not None:
        given = ~np.isnan(layout.estimates)
        estimates[given] = layout.estimates[given]
    return StandardErrors(tuple(layout.names), estimates, covariance, information, values,
                          errors, frozen, method, expands)
