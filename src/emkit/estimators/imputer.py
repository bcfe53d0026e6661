"""``GaussianMixtureImputer``: fill missing values from a Gaussian mixture fitted with them."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from emkit.data import _validation as v
from emkit.distributions.gaussian.missing import conditionals, missingness_patterns
from emkit.estimators.gaussian_mixture import GaussianMixture
from emkit.estimators.standard_errors import NoStandardErrors


class GaussianMixtureImputer(NoStandardErrors, TransformerMixin, BaseEstimator):
    """Impute NaN entries with their conditional expectation under a Gaussian mixture.

    The mixture is fitted by EM on the incomplete data itself (rows with gaps
    contribute through their observed coordinates). A missing block ``x_m`` of a
    row with observed part ``x_o`` is then filled with
    ``E[x_m | x_o] = sum_k P(k | x_o) (mu_km + Sigma_k,mo Sigma_k,oo^-1 (x_o - mu_ko))``,
    or, with ``sample_posterior=True``, with a draw from that conditional
    distribution (pick a component by ``P(k | x_o)``, then draw from the
    component's conditional Gaussian), as multiple imputation needs. A row with
    nothing observed gets the mixture mean (or a draw from the mixture).

    Parameters
    ----------
    n_components : int, default=1
        Mixture components; one component gives the classic EM imputation under a
        single multivariate normal.
    covariance_type : str, default="full"
        scikit-learn's ``"full"``, ``"tied"``, ``"diag"``, ``"spherical"``, or any
        of mclust's 14 models (``"EII"`` ... ``"VVV"``), as in :class:`emkit.GaussianMixture`.
    sample_posterior : bool, default=False
        Draw from the conditional distribution instead of taking its mean.
    random_state : int, Generator or None
        Seeds the mixture fit and the draws; the same seed gives the same draws.
    tol, reg_covar, max_iter, n_init, init_params : as in :class:`GaussianMixture`.

    Attributes
    ----------
    gaussian_mixture_ : GaussianMixture
        The fitted mixture.
    n_iter_ : int
        EM iterations of that fit.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import GaussianMixtureImputer
    >>> X = np.array([[1.0, 2.2], [2.0, 3.9], [3.0, np.nan], [4.0, 8.1], [5.0, 9.8]])
    >>> filled = GaussianMixtureImputer(random_state=0).fit_transform(X)
    >>> round(float(filled[2, 1]), 2)  # on the regression line of column 1 on column 0
    6.0
    """

    _no_standard_errors = (
        "it imputes, it is not the model; the fitted mixture's errors are "
        "imputer.gaussian_mixture_.standard_errors(X)"
    )

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        sample_posterior: bool = False,
        tol: float = 1e-4,
        reg_covar: float = 1e-6,
        max_iter: int = 200,
        n_init: int = 1,
        init_params: str = "kmeans",
        random_state: Any = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.sample_posterior = sample_posterior
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN marks a missing value
        return tags

    def fit(self, X: Any, y: Any = None) -> GaussianMixtureImputer:
        """Fit the mixture on incomplete ``X`` (n_samples, n_features); NaN marks a gap."""
        v.validate_params(self, {"sample_posterior": v.BOOLEAN})
        X = v.validated_data(self, X, dtype=[np.float64, np.float32], ensure_all_finite=False,
                             ensure_min_samples=2)
        mixture = GaussianMixture(
            n_components=self.n_components, covariance_type=self.covariance_type,
            tol=self.tol, reg_covar=self.reg_covar, max_iter=self.max_iter,
            n_init=self.n_init, init_params=self.init_params, random_state=self.random_state,
        )
        self.gaussian_mixture_ = mixture.fit(X)
        self.n_iter_ = self.gaussian_mixture_.n_iter_
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``X`` with every NaN filled, shape (n_samples, n_features); observed values kept."""
        check_is_fitted(self, "gaussian_mixture_")
        X = v.validated_data(self, X, dtype=[np.float64, np.float32], ensure_all_finite=False,
                             reset=False)
        X = v.check_finite(X, allow_nan=True)
        filled = X.copy()
        missing = np.isnan(X)
        if not missing.any():
            return filled
        model = self.gaussian_mixture_._model()
        rng = np.random.default_rng(v.seed_sequence(self.random_state))
        # Chunked E-step of the fitted mixture (bounded temporaries).
        resp = np.exp(self.gaussian_mixture_._log_resp(X))
        for pattern in missingness_patterns(missing):
            self._fill_pattern(filled, X, pattern, model.components, resp, rng)
        self._fill_empty_rows(filled, missing.all(axis=1), model, rng)
        return filled

    def _fill_pattern(self, filled, X, pattern, gaussian, resp, rng) -> None:
        cond = conditionals(gaussian, pattern)
        means = cond.conditional_means(X[np.ix_(pattern.rows, cond.observed)])  # (K, n, m)
        weights = resp[pattern.rows]  # (n, K)
        if not self.sample_posterior:
            values = np.einsum("nk,knm->nm", weights, means)
        else:
            chosen = _draw_components(weights, rng)
            noise = _draw_gaussian(cond.conditional_cov[chosen], rng)
            values = means[chosen, np.arange(len(chosen))] + noise
        filled[np.ix_(pattern.rows, cond.missing)] = values

    def _fill_empty_rows(self, filled, empty, model, rng) -> None:
        if not empty.any():
            return
        if self.sample_posterior:
            draws, _ = self.gaussian_mixture_.sample(int(empty.sum()))
            filled[empty] = rng.permutation(draws)
        else:
            filled[empty] = model.weights @ model.components.means


def _draw_components(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One component per row, drawn from that row's probabilities (n, K)."""
    cumulative = np.cumsum(weights, axis=1)
    cumulative[:, -1] = 1.0
    return (rng.random((weights.shape[0], 1)) > cumulative).sum(axis=1)


def _draw_gaussian(covariances: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One zero-mean draw per row from covariances (n, m, m)."""
    n, m, _ = covariances.shape
    # Conditional covariances are positive semi-definite; eigh tolerates zero modes.
    values, vectors = np.linalg.eigh(covariances)
    scale = vectors * np.sqrt(np.clip(values, 0, None))[:, None, :]
    return np.einsum("nij,nj->ni", scale, rng.standard_normal((n, m)))
