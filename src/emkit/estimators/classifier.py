"""``emkit.GaussianMixtureClassifier``: a generative classifier, one Gaussian mixture per class.

mclust's discriminant analysis: with one component per class it is EDDA (the
classes are the components of one mixture, so ``covariance_type="tied"`` is
linear and ``"full"`` quadratic discriminant analysis); with more, MclustDA
(each class its own mixture, its number of components chosen by BIC per class
when a list of candidates is given). A row's class probabilities are
``prior_c p(x | c)`` normalised, with ``p(x | c)`` the class mixture's density
of the row's observed coordinates, so rows with missing values (NaN) are
classified as they are.

With one component per class, rows labelled ``-1`` (scikit-learn's convention
for unlabelled rows) enter the fit by semi-supervised EM (mclust's MclustSSC):
the labelled rows keep their class, the others are shared by responsibility.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from emkit.data import _validation as v
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.estimators.gaussian_mixture import GaussianMixture
from emkit.estimators.standard_errors import ConfidenceIntervals, StandardErrors
from emkit.io import register_estimator

UNLABELLED = -1


def _candidates(n_components: Any) -> tuple[int, ...]:
    values = (n_components,) if isinstance(n_components, int | np.integer) else tuple(
        n_components)
    if not values or not all(v.integer(1).accepts(n) for n in values):
        raise ValueError(
            f"n_components must be an integer >= 1 or a non-empty list of them, got "
            f"{n_components!r}"
        )
    return tuple(int(n) for n in values)


@register_estimator
class GaussianMixtureClassifier(ClassifierMixin, BaseEstimator):
    """Classifier with one Gaussian mixture per class (mclust's EDDA and MclustDA).

    Parameters
    ----------
    n_components : int or list of int, default=1
        Components per class. 1: EDDA, the classes are the components of one
        mixture (``"tied"`` shares one covariance over the classes: linear
        discriminant analysis). More: MclustDA, each class its own mixture
        (``"tied"`` then ties the components within a class). A list: for each
        class, the candidate with the lowest BIC on its rows.
    covariance_type : str, default="full"
        scikit-learn's ``"full"``, ``"tied"``, ``"diag"``, ``"spherical"``, or any
        of mclust's 14 models (``"EII"`` ... ``"VVV"``), as in :class:`emkit.GaussianMixture`.
    priors : array-like of shape (n_classes,), optional
        Class prior probabilities; default the (weighted) class proportions of
        the training rows (with unlabelled rows, EDDA's fitted mixing weights).
    semi_supervised : bool, default=False
        Whether ``y == -1`` marks an unlabelled row (scikit-learn's convention,
        as its ``LabelSpreading``), which then enters the fit by EM (EDDA
        only). Off by default, so -1 is an ordinary class label otherwise.
    reg_covar, tol, max_iter, n_init, init_params, random_state
        Passed to each :class:`emkit.GaussianMixture`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    class_prior_ : ndarray of shape (n_classes,)
    mixtures_ : list of GaussianMixture
        The mixture of each class (one component each for EDDA).
    n_components_ : ndarray of int, shape (n_classes,)
        Components of each class's mixture.
    n_iter_ : int
        Most EM iterations any class mixture ran.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import GaussianMixtureClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(4, 1, (100, 2))])
    >>> y = np.repeat(["a", "b"], 100)
    >>> clf = GaussianMixtureClassifier(covariance_type="tied").fit(X, y)
    >>> clf.predict([[0.0, 0.0], [4.0, 4.0], [np.nan, 4.0]]).tolist()
    ['a', 'b', 'b']
    >>> float(clf.score(X, y)) > 0.95
    True
    """

    def __init__(
        self,
        n_components: Any = 1,
        *,
        covariance_type: str = "full",
        priors: Any = None,
        semi_supervised: bool = False,
        reg_covar: float = 1e-6,
        tol: float = 1e-3,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        random_state: Any = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.priors = priors
        self.semi_supervised = semi_supervised
        self.reg_covar = reg_covar
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN marks a missing value
        return tags

    # ------------------------------------------------------------------ fit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GaussianMixtureClassifier:
        """Fit one mixture per class (with ``semi_supervised``, ``y == -1`` is unlabelled).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features); NaN marks a missing value.
        y : array-like of shape (n_samples,)
            Class labels; with ``semi_supervised=True``, -1 marks an unlabelled row.
        sample_weight : array-like of shape (n_samples,), optional
            Row weights, as :meth:`emkit.GaussianMixture.fit` takes them.

        Returns
        -------
        self
        """
        if self.covariance_type not in COVARIANCE_STRUCTURES:
            raise ValueError(
                f"covariance_type must be one of {tuple(COVARIANCE_STRUCTURES)}, got "
                f"{self.covariance_type!r}"
            )
        candidates = _candidates(self.n_components)
        X, y = v.validated_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan",
                                ensure_min_samples=2)
        X = v.check_finite(X, allow_nan=True)
        check_classification_targets(y)
        weights = v.check_sample_weight(sample_weight, X.shape[0])
        unlabelled = np.zeros(len(y), bool)
        if self.semi_supervised:
            if y.dtype.kind not in "iu":
                raise ValueError("semi_supervised=True needs integer class labels (-1: none)")
            unlabelled = y == UNLABELLED
        self.classes_, codes = np.unique(y[~unlabelled], return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(
                f"GaussianMixtureClassifier needs at least 2 classes, got {self.classes_.size}"
            )
        if weights is not None:
            totals = np.bincount(codes, weights=weights[~unlabelled],
                                 minlength=self.classes_.size)
            if (totals == 0).any():
                raise ValueError(
                    f"class {self.classes_[np.argmin(totals)]!r} has zero total sample_weight: "
                    "give it weight or leave its rows out"
                )
        labels = np.full(X.shape[0], UNLABELLED)
        labels[~unlabelled] = codes
        if candidates == (1,):
            self._fit_edda(X, labels, weights)
        elif unlabelled.any():
            raise ValueError(
                "unlabelled rows (y == -1) need n_components=1 (EDDA, semi-supervised "
                "EM over the classes); with several components per class, leave them out"
            )
        else:
            self._fit_per_class(X, labels, weights, candidates)
        self.class_prior_ = self._priors(labels, weights)
        self.n_iter_ = max(int(m.n_iter_) for m in self.mixtures_)
        return self

    def _mixture(self, n_components: int) -> GaussianMixture:
        return GaussianMixture(
            n_components, covariance_type=self.covariance_type, reg_covar=self.reg_covar,
            tol=self.tol, max_iter=self.max_iter, n_init=self.n_init,
            init_params=self.init_params, random_state=self.random_state,
        )

    def _fit_edda(self, X: np.ndarray, labels: np.ndarray, weights: np.ndarray | None) -> None:
        """One mixture whose components are the classes; unlabelled rows by EM."""
        k = self.classes_.size
        mixture = self._mixture(k)
        # Labelled rows fix the start; only unlabelled rows need iterations.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # all-labelled fits converge at once
            mixture.fit(X, labels=labels, sample_weight=weights)
        self._edda_weights = mixture.weights_
        self.mixtures_ = [_one_component(mixture, c) for c in range(k)]
        self.n_components_ = np.ones(k, dtype=np.int64)

    def _fit_per_class(
        self, X: np.ndarray, labels: np.ndarray, weights: np.ndarray | None,
        candidates: Sequence[int],
    ) -> None:
        """Each class its own mixture, its size the lowest BIC among the candidates."""
        self.mixtures_ = []
        for c, name in enumerate(self.classes_):
            rows = labels == c
            w = None if weights is None else weights[rows]
            fitted = [self._mixture(n).fit(X[rows], sample_weight=w)
                      for n in candidates if n <= rows.sum()]
            if not fitted:
                raise ValueError(
                    f"class {name!r} has {rows.sum()} row(s), fewer than any of "
                    f"n_components={list(candidates)}"
                )
            self.mixtures_.append(min(fitted, key=lambda m: m.bic(X[rows], sample_weight=w)))
        self.n_components_ = np.array([m.n_components for m in self.mixtures_])
        self._edda_weights = None

    def _priors(self, labels: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        k = self.classes_.size
        if self.priors is not None:
            return _check_priors(self.priors, k)
        if self._edda_weights is not None and (labels == UNLABELLED).any():
            return np.asarray(self._edda_weights, dtype=np.float64)
        known = labels != UNLABELLED
        counts = np.bincount(labels[known], weights=None if weights is None else
                             weights[known], minlength=k)
        return counts / counts.sum()

    # -------------------------------------------------------------- predict

    def _joint_log_likelihood(self, X: Any) -> np.ndarray:
        """``log prior_c + log p(x | c)``, shape (n_samples, n_classes)."""
        check_is_fitted(self, ["mixtures_", "class_prior_"])
        X = v.validated_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan",
                             reset=False)
        X = v.check_finite(X, allow_nan=True)
        scores = np.column_stack([m.score_samples(X) for m in self.mixtures_])
        scores[np.isnan(scores)] = 0.0  # nothing observed: the priors decide
        with np.errstate(divide="ignore"):
            return scores + np.log(self.class_prior_)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log class probabilities, shape (n_samples, n_classes)."""
        joint = self._joint_log_likelihood(X)
        return joint - logsumexp(joint, axis=1, keepdims=True)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes); rows sum to one."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row."""
        best = self._joint_log_likelihood(X).argmax(axis=1)
        return self.classes_[best]

    # ------------------------------------------------------ standard errors

    def standard_errors(self, X: Any, y: Any, *, sample_weight: Any = None,
                        method: str = "louis") -> StandardErrors:
        """Standard errors of the class priors, means and covariances (EDDA).

        With one component per class (EDDA) the classes are the components of
        one mixture fitted with the labels known, so its observed information
        (Louis' method, :meth:`emkit.GaussianMixture.standard_errors` with
        ``labels``) gives the errors: ``weights`` are the class priors
        (fixed when given as ``priors``), then ``means`` and ``covariances``
        per class, in the order of ``classes_``. Unlabelled rows
        (``semi_supervised``) enter as they entered the fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            The labels of the fit.
        sample_weight : array-like of shape (n_samples,), optional
        method : {"louis", "empirical"}, default="louis"

        Returns
        -------
        StandardErrors

        Raises
        ------
        NotImplementedError
            With several components per class (MclustDA): each class's mixture
            is a separate fit, whose errors its own ``standard_errors`` gives.
        """
        check_is_fitted(self, ["mixtures_", "class_prior_"])
        if (np.asarray(self.n_components_) != 1).any():
            raise NotImplementedError(
                "standard errors of a GaussianMixtureClassifier with several components per "
                "class (MclustDA): each class's mixture is fitted on its own rows, so its "
                "errors are clf.mixtures_[c].standard_errors(X[y == clf.classes_[c]]); the "
                "class priors, proportions p of n rows, have sqrt(p (1 - p) / n)"
            )
        X = v.validated_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan",
                             reset=False)
        labels = self._codes(np.asarray(y), X.shape[0])
        joint = self._joint_mixture()
        return joint.standard_errors(X, sample_weight=sample_weight, labels=labels,
                                     method=method)

    def confidence_intervals(self, X: Any, y: Any, level: float = 0.95, *,
                             sample_weight: Any = None,
                             method: str = "louis") -> ConfidenceIntervals:
        """Wald intervals at ``level``; parameters as :meth:`standard_errors`."""
        return self.standard_errors(X, y, sample_weight=sample_weight,
                                    method=method).confidence_intervals(level)

    def _codes(self, y: np.ndarray, n_rows: int) -> np.ndarray:
        """Class index of each row, -1 for an unlabelled one (semi_supervised)."""
        if y.shape != (n_rows,):
            raise ValueError(f"y must have shape ({n_rows},), got {y.shape}")
        unlabelled = (y == UNLABELLED) if self.semi_supervised else np.zeros(n_rows, bool)
        codes = np.full(n_rows, UNLABELLED)
        known = y[~unlabelled]
        index = np.searchsorted(self.classes_, known)
        index = np.minimum(index, self.classes_.size - 1)
        unknown = self.classes_[index] != known
        if unknown.any():
            raise ValueError(f"y holds {known[unknown][0]!r}, not a class of the fit "
                             f"({self.classes_.tolist()})")
        codes[~unlabelled] = index
        return codes

    def _joint_mixture(self) -> GaussianMixture:
        """EDDA's one mixture, the classes its components (priors fixed when given)."""
        mixture = self._mixture(self.classes_.size)
        if self.priors is not None:
            mixture.set_params(params="mc")
        structure = COVARIANCE_STRUCTURES[self.covariance_type]
        mixture.weights_ = np.asarray(self.class_prior_, dtype=np.float64)
        mixture.means_ = np.concatenate([m.means_ for m in self.mixtures_])
        mixture.covariances_ = (self.mixtures_[0].covariances_ if self.covariance_type == "tied"
                                else np.concatenate([m.covariances_ for m in self.mixtures_]))
        mixture.precisions_cholesky_ = structure.precisions_cholesky(mixture.covariances_)
        mixture.precisions_ = structure.precisions(mixture.precisions_cholesky_)
        mixture.n_features_in_ = self.n_features_in_
        return mixture

    # ------------------------------------------------------ save and load

    _saved_arrays = ("classes_", "class_prior_", "n_components_")
    _saved_scalars = ("mixture_parameters_", "n_features_in_", "n_iter_")

    @property
    def mixture_parameters_(self) -> list:
        """Each class mixture's weights, means and covariances, as plain lists (model files)."""
        return [[m.weights_.tolist(), m.means_.tolist(), np.asarray(m.covariances_).tolist()]
                for m in self.mixtures_]

    @mixture_parameters_.setter
    def mixture_parameters_(self, value: list) -> None:
        # A model file's parameters: rebuilt into mixtures (checked in _check_fitted_state).
        self._loaded_parameters = value

    def _check_fitted_state(self) -> None:
        """Rebuild the class mixtures of a model file; raise ValueError if inconsistent."""
        parameters = self._loaded_parameters
        if len(parameters) != len(self.classes_) or len(self.n_components_) != len(parameters):
            raise ValueError("one mixture per class is needed")
        _check_priors(self.class_prior_, len(self.classes_))
        structure = COVARIANCE_STRUCTURES[self.covariance_type]
        mixtures = []
        for (weights, means, covariances), n in zip(parameters, self.n_components_,
                                                    strict=True):
            mixture = self._mixture(int(n))
            mixture.weights_ = np.asarray(weights, dtype=np.float64)
            mixture.means_ = np.asarray(means, dtype=np.float64)
            mixture.covariances_ = np.asarray(covariances, dtype=np.float64)
            mixture.precisions_cholesky_ = structure.precisions_cholesky(mixture.covariances_)
            mixture.precisions_ = structure.precisions(mixture.precisions_cholesky_)
            mixture.n_features_in_ = self.n_features_in_
            mixture.n_iter_, mixture.history_ = 0, np.zeros(0)
            mixture.converged_, mixture.lower_bound_ = True, -np.inf
            mixture._check_fitted_state()
            mixtures.append(mixture)
        self.mixtures_ = mixtures


def _check_priors(priors: Any, n_classes: int) -> np.ndarray:
    """Class priors: one per class, non-negative, summing to one."""
    priors = np.asarray(priors, dtype=np.float64)
    if priors.shape != (n_classes,):
        raise ValueError(
            f"priors has shape {priors.shape}, expected ({n_classes},): one per class"
        )
    if not np.all(np.isfinite(priors)) or (priors < 0).any() or not np.isclose(priors.sum(), 1):
        raise ValueError(f"priors must be non-negative and sum to 1, got {priors.tolist()}")
    return priors


def _one_component(mixture: GaussianMixture, k: int) -> GaussianMixture:
    """Component ``k`` of a fitted mixture as a fitted one-component mixture."""
    single = GaussianMixture(1, covariance_type=mixture.covariance_type,
                             reg_covar=mixture.reg_covar)
    tied = mixture.covariance_type == "tied"
    single.weights_ = np.ones(1)
    single.means_ = mixture.means_[k : k + 1]
    for name in ("covariances_", "precisions_", "precisions_cholesky_"):
        value = getattr(mixture, name)
        setattr(single, name, value if tied else value[k : k + 1])
    single.n_features_in_ = mixture.n_features_in_
    single.converged_, single.n_iter_ = mixture.converged_, mixture.n_iter_
    single.lower_bound_, single.history_ = mixture.lower_bound_, mixture.history_
    return single
