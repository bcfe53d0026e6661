"""The conjugate prior of Fraley & Raftery (2007) and the MAP M-step of every covariance model.

The prior is mclust's (``priorControl()``): given the covariance, each mean is
normal around ``mean`` with the covariance shrunk by ``shrinkage``,

    mu_k | Sigma_k ~ N(mean, Sigma_k / shrinkage),

and the covariance is inverse Wishart (inverse gamma for one variance) with
``dof`` degrees of freedom and ``scale``. With the prior, EM maximises the
posterior instead of the likelihood: the E-step is unchanged, the M-step takes
the posterior mode. Small or degenerate data then give sensible fits instead of
components collapsed onto a few rows.

Everything reduces to the maximum-likelihood M-steps of
:mod:`emkit.distributions.gaussian.constrained` on *augmented* sums: with
``n_k`` the component's size, ``xbar_k`` its mean, ``W_k`` its scatter around
``xbar_k`` and ``c_k = shrinkage n_k / (n_k + shrinkage)``,

    mu_k = (n_k xbar_k + shrinkage mean) / (n_k + shrinkage)
    B_k  = W_k + c_k (xbar_k - mean)(xbar_k - mean)^T

and the covariances are the model's ML solution for counts ``n_k + a`` and
scatters ``B_k + scale`` (``a`` and where ``scale`` enters depend on the
model). For the ten multivariate models (and E, V) mclust has, the table below
is mclust's MAP M-step as its EM computes it (the Fortran ``me*p`` routines of
mclust 6.0.0, which ``Mclust``, ``mclustBIC`` and ``me`` run), quirks included;
its standalone ``mstep()`` differs for EEI, EVI and EEV (other denominators, and
no shrinkage for EEV), emkit follows the EM (with ``s = 1`` when ``shrinkage > 0``, else 0;
``n = sum_k n_k``; ``G`` components; ``d`` features):

=====  ==============================================  ================================
model  covariance                                      note
=====  ==============================================  ================================
VVV    ``(scale + B_k) / (dof + n_k + d + 1 + s)``     the posterior mode
EEE    ``(scale + sum_k B_k) / (dof + n + d + 1 + Gs)``  one prior on the shared matrix
VVI    ``(scale + B_kjj) / (dof + n_k + 2 + s)``       per variance; ``scale`` a number
EEI    ``(scale + sum_k B_kjj) / (dof + n + 1 + s)``   means not shrunk (as mclust)
EVI    EVI on ``scale + B_kjj``, ``n + dof + 1 + s``
VEI    VEI on ``scale + B_kjj``, ``d n_k + dof + 2 + s``
VII    ``(scale + tr B_k) / (dof + d n_k + 2 + d s)``
EII    ``sum_k tr B_k / (dof + n d + 2 + G d)``         no ``scale`` (as mclust)
EEV    EEV on ``scale + B_k``, ``n + dof + d + 1 + s``
VEV    VEV on ``scale + B_k``, counts ``n_k``          no ``dof`` (as mclust)
E, V   as EEE, VVV with ``d = 1`` and ``d + 1 -> 2``
=====  ==============================================  ================================

mclust has no prior for VEE, EVE, VVE and EVV. emkit gives each component the
full conjugate prior, evaluated at its constrained covariance: the M-step
maximises

    sum_k [ -(n_k + dof + d + 1 + s)/2 log det Sigma_k - tr((B_k + scale) Sigma_k^-1)/2 ]

under the model's constraints (the model's ML M-step with counts
``n_k + dof + d + 1 + s`` and scatters ``B_k + scale``): every block update
raises the log posterior :func:`log_prior` + log-likelihood, so MAP EM never
decreases it. VVV is the same formula.

``reg_covar`` is added as in the ML M-steps: ``count * reg_covar * I`` in each
augmented scatter. Give ``reg_covar=0`` to reproduce mclust.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from emkit.distributions.gaussian import constrained

#: Models whose prior is mclust's ``defaultPrior`` with a scalar scale.
_SCALAR_SCALE = ("EII", "VII", "EEI", "VEI", "EVI", "VVI")
_UNIVARIATE = ("E", "V")


@dataclass(frozen=True)
class ConjugatePrior:
    """The conjugate prior of Fraley & Raftery (2007) for Gaussian mixtures.

    Any hyperparameter left as None takes mclust's default (``priorControl()``,
    ``defaultPrior``), computed from the data, the number of components ``G``
    and the covariance model when the mixture is fitted.

    Parameters
    ----------
    shrinkage : float, default=0.01
        ``kappa``: the prior counts ``shrinkage`` pseudo-rows at ``mean``; 0
        leaves the means unshrunk.
    mean : array-like of shape (n_features,), optional
        Prior mean; default the column means of the data.
    dof : float, optional
        Degrees of freedom of the inverse Wishart (gamma) prior; default
        ``n_features + 2`` (3 for one feature).
    scale : float or array-like of shape (n_features, n_features), optional
        Scale of the prior. Default for the full-matrix models (EEE, VVV, EEV,
        ... and scikit-learn's "full", "tied") the data's covariance times
        ``G^(-2/d)`` (its diagonal if there are no more rows than features);
        for the axis-aligned and spherical models a number, the average
        variance times ``G^(-2/d)``; for one feature ``var / G^2``. A number
        ``s`` given for a full-matrix model means ``s`` times the identity
        (for the others it is the number they take), so one number serves a
        selection over all the models.

    Examples
    --------
    >>> import numpy as np
    >>> prior = ConjugatePrior()
    >>> X = np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 2.0], [3.0, 6.0]])
    >>> p = prior.resolve(X, n_components=2, model="VVV")
    >>> p.shrinkage, p.dof, p.mean.tolist()
    (0.01, 4.0, [1.5, 3.0])
    >>> np.round(p.scale, 4).tolist()   # cov(X) / 2
    [[0.8333, 1.1667], [1.1667, 2.3333]]
    """

    shrinkage: float = 0.01
    mean: Any = None
    dof: float | None = None
    scale: Any = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.shrinkage) and self.shrinkage >= 0):
            raise ValueError(
                f"prior shrinkage must be a finite number >= 0, got {self.shrinkage!r}")
        if self.dof is not None and not (np.isfinite(self.dof) and self.dof > 0):
            raise ValueError(f"prior dof must be a finite number > 0, got {self.dof!r}")

    def to_dict(self) -> dict:
        """The hyperparameters as JSON-ready values (None where defaulted)."""
        def plain(value):
            return None if value is None else np.asarray(value, dtype=float).tolist()
        return {"shrinkage": float(self.shrinkage), "mean": plain(self.mean),
                "dof": None if self.dof is None else float(self.dof), "scale": plain(self.scale)}

    def resolve(self, X: np.ndarray, n_components: int, model: str) -> PriorParameters:
        """The numeric hyperparameters for data ``X`` (n, d), ``G`` components and ``model``.

        ``model`` is mclust's name of the covariance model (``structure.model``).
        """
        X = np.asarray(X, dtype=float)
        n, d = X.shape
        G = n_components
        mean = np.nanmean(X, axis=0) if self.mean is None else np.asarray(self.mean, float)
        if mean.shape != (d,) or not np.isfinite(mean).all():
            raise ValueError(f"prior mean must be {d} finite numbers (one per feature), got "
                             f"shape {mean.shape}")
        variances = np.nanvar(X, axis=0, ddof=1)
        if model in _UNIVARIATE:
            dof = 3.0 if self.dof is None else float(self.dof)
            default_scale = float(variances[0]) / G**2
        else:
            dof = d + 2.0 if self.dof is None else float(self.dof)
            factor = (1.0 / G) ** (2.0 / d)
            if model in _SCALAR_SCALE:
                default_scale = factor * variances.sum() / d
            elif n > d:
                default_scale = factor * _covariance(X)
            else:
                default_scale = factor * np.diag(variances)
        scale = default_scale if self.scale is None else _user_scale(self.scale, model, d)
        return PriorParameters(float(self.shrinkage), mean, dof, scale)


def _covariance(X: np.ndarray) -> np.ndarray:
    if not np.isnan(X).any():
        return np.atleast_2d(np.cov(X, rowvar=False))
    # Pairwise-complete covariance for data with gaps (a default only).
    import pandas as pd

    return pd.DataFrame(X).cov().to_numpy()


def _user_scale(scale: Any, model: str, d: int) -> Any:
    value = np.asarray(scale, dtype=float)
    if model in _SCALAR_SCALE or model in _UNIVARIATE:
        if value.size != 1 or not value.ravel()[0] > 0:
            raise ValueError(
                f"prior scale for covariance model {model!r} is one positive number (mclust's "
                f"scale of the variances), got shape {value.shape}"
            )
        return float(value.ravel()[0])
    if value.ndim == 0:  # a number: that times the identity
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"prior scale must be a positive number (times the identity for "
                             f"covariance model {model!r}) or matrix, got {float(value)!r}")
        return float(value) * np.eye(d)
    if value.shape != (d, d) or not np.allclose(value, value.T):
        raise ValueError(f"prior scale for covariance model {model!r} must be a symmetric "
                         f"({d}, {d}) matrix, got shape {value.shape}")
    if np.linalg.eigvalsh(value)[0] <= 0:
        raise ValueError("prior scale must be positive definite")
    return value


@dataclass(frozen=True, eq=False)
class PriorParameters:
    """Resolved hyperparameters: numbers and arrays, as the M-step uses them."""

    shrinkage: float
    mean: np.ndarray
    dof: float
    scale: Any  # a number for EII ... VVI, E, V; a (d, d) matrix for the others
    # One Gaussian and no noise component: mclustBIC fits that with mvn() (XII, XXI,
    # XXX), the MAP fit of its kind (spherical, diagonal, full) whatever the model.
    single_gaussian: bool = False


def resolve_prior(prior: Any, X: np.ndarray, n_components: int, model: str,
                  noise: bool = False) -> PriorParameters | None:
    """``prior`` as given to an estimator (None, "default" or a ConjugatePrior), resolved.

    ``noise``: the mixture has a noise component (then one Gaussian component takes
    its model's own MAP M-step, as mclust's ``me`` does).
    """
    if prior is None:
        return None
    if isinstance(prior, str) and prior == "default":
        prior = ConjugatePrior()
    if not isinstance(prior, ConjugatePrior):
        raise ValueError(f"prior must be None, 'default' or a ConjugatePrior, got {prior!r}")
    resolved = prior.resolve(X, n_components, model)
    if n_components == 1 and not noise:
        resolved = replace(resolved, single_gaussian=True)
    return resolved


# ---------------------------------------------------------------------------
# The MAP M-step.


def map_means_and_covariances(
    model: str, layout: str, counts: np.ndarray, xbar: np.ndarray, within: np.ndarray,
    prior: PriorParameters, reg_covar: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior-mode means (K, D) and covariances (in the layout's shape).

    ``within`` is the scatter around the component means ``xbar`` reduced to
    the layout (``full`` (K, D, D), ``tied`` (D, D), ``diag`` (K, D),
    ``spherical`` (K,)).
    """
    G, d = xbar.shape
    if prior.single_gaussian and G == 1:
        # mclustBIC fits one component (without noise) with mvn(): its kind's MAP fit,
        # not the model's own M-step (EEI's unshrunk means, EII's missing scale, VEV's
        # missing dof would give other fits). With noise, me() takes the model's own.
        model = {"spherical": "VII", "diag": "VVI", "full": "VVV"}.get(layout, model)
    kappa = prior.shrinkage
    s = 1.0 if kappa > 0 else 0.0
    dev = xbar - prior.mean
    c = kappa * counts / (counts + kappa)
    means = (counts[:, None] * xbar + kappa * prior.mean) / (counts + kappa)[:, None]
    if model == "EEI":  # mclust leaves EEI's means unshrunk (its scatter still has c_k)
        means = xbar
    extra = _augmentation(layout, c, dev)
    nu, scale = prior.dof, prior.scale
    if layout == "full":
        B = within + extra
        if model == "VEV":
            added, scatter = counts, B + scale
        elif model == "EEV":
            added, scatter = counts + (nu + d + 1 + s) / G, B + scale
        else:  # VVV, and the per-component prior of VEE EVE VVE EVV
            added, scatter = counts + nu + d + 1 + s, B + scale
        scatter = scatter + (added * reg_covar)[:, None, None] * np.eye(d)
        if model == "VVV":
            return means, scatter / added[:, None, None]
        return means, constrained.full(model, added, scatter)
    if layout == "tied":
        total = counts.sum() + nu + d + 1 + G * s
        pooled = within + extra + scale
        return means, (pooled + total * reg_covar * np.eye(d)) / total
    if layout == "diag":
        B = within + extra + scale
        if model in ("VVI", "V"):
            added = counts + nu + 2 + s
            return means, B / added[:, None] + reg_covar
        if model == "EEI":
            total = counts.sum() + nu + 1 + s
            return means, np.broadcast_to((within + extra).sum(axis=0) + scale,
                                          B.shape) / total + reg_covar
        if model == "EVI":
            added = counts + (nu + 1 + s) / G
        else:  # VEI
            added = counts + (nu + 2 + s) / d
        return means, constrained.diagonal(model, added, B + (added * reg_covar)[:, None])
    # spherical: traces
    B = within + extra
    if model == "EII":
        total = d * counts.sum() + nu + 2 + G * d
        value = (B.sum() + total * reg_covar) / total
        return means, np.full(G, value)
    if model == "E":
        total = counts.sum() + nu + 2 + G * s
        return means, np.full(G, (B.sum() + scale) / total + reg_covar)
    # VII, V
    added = d * counts + nu + 2 + d * s if model == "VII" else counts + nu + 2 + s
    return means, (B + scale) / added + reg_covar


def _augmentation(layout: str, c: np.ndarray, dev: np.ndarray) -> np.ndarray:
    """``c_k (xbar_k - mean)(xbar_k - mean)^T`` reduced to the layout."""
    if layout == "full":
        return c[:, None, None] * dev[:, :, None] * dev[:, None, :]
    if layout == "tied":
        return (dev * c[:, None]).T @ dev
    if layout == "diag":
        return c[:, None] * np.square(dev)
    return c * np.square(dev).sum(axis=1)


def log_prior(means: np.ndarray, covariances: np.ndarray, prior: PriorParameters) -> float:
    """Log density (up to a constant) of the per-component conjugate prior.

    ``covariances`` are dense (K, D, D). Each component's ``(mu_k, Sigma_k)``
    is normal-inverse-Wishart: the objective MAP EM raises for VVV and for
    VEE, EVE, VVE, EVV (with the log-likelihood).
    """
    d = means.shape[1]
    s = 1.0 if prior.shrinkage > 0 else 0.0
    scale = np.asarray(prior.scale) * (np.eye(d) if np.ndim(prior.scale) == 0 else 1.0)
    total = 0.0
    for mu, sigma in zip(means, covariances, strict=True):
        inverse = np.linalg.inv(sigma)
        dev = mu - prior.mean
        _, log_det = np.linalg.slogdet(sigma)
        total += (-0.5 * (prior.dof + d + 1 + s) * log_det
                  - 0.5 * np.trace(scale @ inverse)
                  - 0.5 * prior.shrinkage * dev @ inverse @ dev)
    return float(total)
