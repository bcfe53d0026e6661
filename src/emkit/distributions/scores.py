"""Per-row derivatives of each distribution's log density, for standard errors.

:mod:`emkit.latent.information` computes the observed information of a
mixture from two things per component: the gradient of ``log f(x_i)`` for each
row (the *score*), and minus its second derivatives summed over rows with
weights ``w_i`` (the *curvature*). Both are in the distribution's own
parameters, with one free coordinate per free parameter:

=============  ==============================  ===================================
distribution   free coordinates                log density of one entry
=============  ==============================  ===================================
Poisson        ``rate[j]``                     ``x log r - r - log x!``
Exponential    ``rate[j]``                     ``log r - r x``
Bernoulli      ``p[j]``                        ``x log p + (1 - x) log(1 - p)``
Geometric      ``p[j]``                        ``log p + x log(1 - p)``
Binomial       ``p``                           ``h log p + (t - h) log(1 - p)``
Categorical    ``probs[0..m-2]`` (the last is  ``log probs[x]``
               one minus their sum)
Gaussian       ``mean``, covariance entries    see :mod:`.gaussian.scores`
               (upper triangle, the diagonal
               or the one variance)
Independent    its parts', in column order     the sum of its parts'
=============  ==============================  ===================================

Missing entries (NaN) add nothing, as they add nothing to the density (a
Gaussian's row is the marginal of its observed entries). A distribution with a
conjugate ``prior`` (a MAP fit) also gives minus the Hessian of its log prior
(``prior_curvature``), so that the information is that of the log posterior the
fit maximised: Gamma on a rate ``(a - 1) / r^2``, Beta on a probability
``(a - 1) / p^2 + (b - 1) / (1 - p)^2``, Dirichlet ``sum_c (alpha_c - 1) g_c g_c'``
with ``g_c`` the gradient of ``log probs[c]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from emkit.distributions._base import Distribution
from emkit.distributions.bernoulli import Bernoulli
from emkit.distributions.binomial import Binomial
from emkit.distributions.categorical import Categorical
from emkit.distributions.exponential import Exponential
from emkit.distributions.gaussian import scores as gaussian_scores
from emkit.distributions.gaussian.distribution import Gaussian
from emkit.distributions.geometric import Geometric
from emkit.distributions.independent import Independent
from emkit.distributions.poisson import Poisson


@dataclass(frozen=True)
class Slot:
    """One stored parameter array and how its entries follow the free coordinates.

    Attributes
    ----------
    name : str
        The attribute, e.g. ``"rate"`` or ``"components[1].p"``.
    value : ndarray
        Its fitted value (a float parameter as a 0-d array).
    expand : ndarray of shape (value.size, n_free)
        ``d value.ravel() / d free``: constant, every layout being linear.
    """

    name: str
    value: np.ndarray
    expand: np.ndarray


@dataclass(frozen=True)
class Derivatives:
    """What the information of a mixture needs of one component (see the module docstring).

    Attributes
    ----------
    names : tuple of str
        The free coordinates.
    score : callable ``(X) -> (n_samples, n_free)``
    curvature : callable ``(X, weights) -> (n_free, n_free)``
    slots : tuple of Slot
        The stored parameters, entry by entry from the free coordinates.
    prior_curvature : ndarray of shape (n_free, n_free) or None
        Minus the Hessian of the log prior (MAP fits), None without a prior.
    """

    names: tuple[str, ...]
    score: Callable[[np.ndarray], np.ndarray]
    curvature: Callable[[np.ndarray, np.ndarray], np.ndarray]
    slots: tuple[Slot, ...]
    prior_curvature: np.ndarray | None = None


def derivatives(distribution: Distribution) -> Derivatives:
    """The :class:`Derivatives` of a distribution.

    Raises
    ------
    NotImplementedError
        For a family without them here.
    ValueError
        For a parameter on the boundary (a probability of 0 or 1, a rate of
        0): the log-likelihood has no derivative there.
    """
    build = _BUILDERS.get(type(distribution))
    if build is None:
        raise NotImplementedError(
            f"standard errors are not implemented for {type(distribution).__name__} "
            f"components (covered: {', '.join(sorted(c.__name__ for c in _BUILDERS))})"
        )
    return build(distribution)


# ------------------------------------------------------------ one parameter per column


def _columnwise(
    name: str,
    value: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    curvature: Callable[[np.ndarray, np.ndarray], np.ndarray],
    prior: np.ndarray | None = None,
) -> Derivatives:
    """Independent columns, one parameter each: a diagonal curvature.

    ``score(x, theta)`` and ``curvature(x, theta)`` are per entry, ``x`` of
    shape (n, d); NaN entries give NaN, set to zero here. ``prior``: the log
    prior's curvature per entry (MAP fits).
    """
    shape = np.shape(value)
    theta = np.atleast_1d(np.asarray(value, dtype=np.float64))

    def row_score(X: np.ndarray) -> np.ndarray:
        return np.nan_to_num(score(X, theta), nan=0.0)

    def row_curvature(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.diag(weights @ np.nan_to_num(curvature(X, theta), nan=0.0))

    names = (name,) if shape == () else tuple(f"{name}[{j}]" for j in range(theta.size))
    slot = Slot(name, np.asarray(value, dtype=np.float64), np.eye(theta.size))
    prior_curvature = None if prior is None else np.diag(np.broadcast_to(prior, theta.shape))
    return Derivatives(names, row_score, row_curvature, (slot,), prior_curvature)


def _gamma_curvature(prior, rate: np.ndarray) -> np.ndarray | None:
    """``-d2/dr2 [(a - 1) log r - b r]`` of a Gamma(a, b) prior on rates."""
    return None if prior is None else (prior[0] - 1) / rate**2


def _beta_curvature(prior, p: np.ndarray) -> np.ndarray | None:
    """``-d2/dp2 [(a - 1) log p + (b - 1) log(1 - p)]`` of a Beta(a, b) prior."""
    if prior is None:
        return None
    a, b = prior
    return (a - 1) / p**2 + (b - 1) / (1 - p) ** 2


def _check_inside(name: str, family: str, value: np.ndarray, high: float | None) -> None:
    """A parameter on the boundary of its range has no information: say which."""
    value = np.atleast_1d(value)
    bad = (value <= 0) if high is None else (value <= 0) | (value >= high)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"a {family} component has {name}[{j}] = {value[j]:g}, on the boundary of its "
            "range: the log-likelihood has no derivative there, so there is no standard "
            "error (the maximum sits on values the data never contradict)"
        )


def _poisson(d: Poisson) -> Derivatives:
    _check_inside("rate", "Poisson", d.rate, None)
    return _columnwise("rate", d.rate, lambda x, r: x / r - 1.0, lambda x, r: x / r**2,
                       _gamma_curvature(d.prior, d.rate))


def _exponential(d: Exponential) -> Derivatives:
    return _columnwise("rate", d.rate, lambda x, r: 1.0 / r - x,
                       lambda x, r: np.where(np.isnan(x), np.nan, 1.0 / r**2),
                       _gamma_curvature(d.prior, d.rate))


def _bernoulli(d: Bernoulli) -> Derivatives:
    _check_inside("p", "Bernoulli", d.p, 1.0)
    return _columnwise("p", d.p, lambda x, p: x / p - (1 - x) / (1 - p),
                       lambda x, p: x / p**2 + (1 - x) / (1 - p) ** 2,
                       _beta_curvature(d.prior, d.p))


def _geometric(d: Geometric) -> Derivatives:
    _check_inside("p", "Geometric", d.p, 1.0)
    return _columnwise("p", d.p, lambda x, p: 1.0 / p - x / (1 - p),
                       lambda x, p: 1.0 / p**2 + x / (1 - p) ** 2)


def _binomial(d: Binomial) -> Derivatives:
    _check_inside("p", "Binomial", np.array(d.p), 1.0)

    def heads_tails(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        heads, trials = d._heads_trials(X)  # missing rows: 0 of 0
        return heads[:, None], (trials - heads)[:, None]

    def score(X: np.ndarray, p: np.ndarray) -> np.ndarray:
        heads, tails = heads_tails(X)
        return heads / p - tails / (1 - p)

    def curvature(X: np.ndarray, p: np.ndarray) -> np.ndarray:
        heads, tails = heads_tails(X)
        return heads / p**2 + tails / (1 - p) ** 2

    return _columnwise("p", np.asarray(d.p), score, curvature,
                       _beta_curvature(d.prior, np.array([d.p])))


def _categorical(d: Categorical) -> Derivatives:
    probs = d.probs
    m = probs.size
    _check_inside("probs", "Categorical", probs, None)
    # d log probs[c] / d free: e_c / p_c for c < m - 1, -1 / p_last for the last.
    gradients = np.vstack([np.eye(m - 1) / probs[:-1, None], -np.ones(m - 1) / probs[-1]])

    def row_score(X: np.ndarray) -> np.ndarray:
        codes, observed = d._codes(X)
        return gradients[codes] * observed[:, None]

    def row_curvature(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
        # log probs[c] is log of a linear function: minus its Hessian is g g'.
        codes, observed = d._codes(X)
        counts = np.bincount(codes[observed], weights=weights[observed], minlength=m)
        return (gradients.T * counts) @ gradients

    names = tuple(f"probs[{c}]" for c in range(m - 1))
    expand = np.vstack([np.eye(m - 1), -np.ones(m - 1)])
    # Dirichlet: sum_c (alpha_c - 1) log probs[c], logs of linear functions again.
    prior = None if d.prior is None else (gradients.T * (d.prior - 1)) @ gradients
    return Derivatives(names, row_score, row_curvature, (Slot("probs", probs, expand),), prior)


def _gaussian(d: Gaussian) -> Derivatives:
    model = {"full": "VVV", "diag": "VVI", "spherical": "VII"}[d.covariance_type]
    n = d.mean.size
    layout = gaussian_scores.covariance_layout(model, 1, n)
    dense = d._structure.dense(d.covariance[None], 1, n)[0]
    precision = np.linalg.inv(dense)
    m = layout.embed.shape[1]
    # (mean, upper triangle) from (mean, free covariance coordinates).
    embed = np.zeros((n + m, n + layout.embed.shape[2]))
    embed[:n, :n] = np.eye(n)
    embed[n:, n:] = layout.embed[0]

    def row_score(X: np.ndarray) -> np.ndarray:
        if np.isnan(X).any():  # each missingness pattern's marginal
            return gaussian_scores.pattern_row_scores(X, d.mean, dense) @ embed
        return gaussian_scores.row_scores(X, d.mean, precision) @ embed

    def row_curvature(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if np.isnan(X).any():
            local = gaussian_scores.pattern_curvature(X, weights, d.mean, dense)
        else:
            local = gaussian_scores.curvature(X, weights, d.mean, precision)
        return embed.T @ local @ embed

    names = tuple(f"mean[{j}]" for j in range(n)) + tuple(
        name.replace("covariances[0, ", "covariance[").replace("covariances[0]", "covariance")
        for name in layout.names)
    q = embed.shape[1]
    mean_slot = Slot("mean", d.mean, np.eye(n, q))
    cov_expand = np.zeros((d.covariance.size, q))
    cov_expand[:, n:] = layout.expand
    return Derivatives(names, row_score, row_curvature,
                       (mean_slot, Slot("covariance", d.covariance, cov_expand)))


def _independent(d: Independent) -> Derivatives:
    parts = [(derivatives(c), a, b) for c, a, b in d._blocks()]
    sizes = [len(p.names) for p, _, _ in parts]
    edges = np.cumsum([0, *sizes])
    total = int(edges[-1])

    def row_score(X: np.ndarray) -> np.ndarray:
        return np.hstack([p.score(X[:, a:b]) for p, a, b in parts])

    def row_curvature(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
        out = np.zeros((total, total))
        for (p, a, b), lo, hi in zip(parts, edges[:-1], edges[1:], strict=True):
            out[lo:hi, lo:hi] = p.curvature(X[:, a:b], weights)
        return out

    prior = None
    if any(p.prior_curvature is not None for p, _, _ in parts):
        prior = np.zeros((total, total))
        for (p, _, _), lo, hi in zip(parts, edges[:-1], edges[1:], strict=True):
            if p.prior_curvature is not None:
                prior[lo:hi, lo:hi] = p.prior_curvature
    names, slots = [], []
    for i, ((p, _, _), lo) in enumerate(zip(parts, edges[:-1], strict=True)):
        names += [f"components[{i}].{name}" for name in p.names]
        for slot in p.slots:
            expand = np.zeros((slot.expand.shape[0], total))
            expand[:, lo:lo + slot.expand.shape[1]] = slot.expand
            slots.append(Slot(f"components[{i}].{slot.name}", slot.value, expand))
    return Derivatives(tuple(names), row_score, row_curvature, tuple(slots), prior)


_BUILDERS: dict[type, Callable[[Distribution], Derivatives]] = {
    Poisson: _poisson,
    Exponential: _exponential,
    Bernoulli: _bernoulli,
    Geometric: _geometric,
    Binomial: _binomial,
    Categorical: _categorical,
    Gaussian: _gaussian,
    Independent: _independent,
}


# ------------------------------------------------------------ regressions


def regression_derivatives(
    family: str, coef: np.ndarray, scale: float | None = None
) -> tuple[Callable, Callable]:
    """Score and curvature of one regression component in ``(coef, [scale])``.

    ``family`` is ``"gaussian"`` (``y ~ N(x b, scale^2)``, coordinates ``b`` then
    ``scale``), ``"poisson"`` (log link) or ``"binomial"`` (logit link, ``y`` in
    {0, 1}), coordinates ``b``. Both functions take ``(design, y)`` (and the
    curvature the row weights).
    """
    if family == "gaussian":
        return _gaussian_regression(coef, float(scale))
    if family not in ("poisson", "binomial"):
        raise NotImplementedError(f"no standard errors for regression family {family!r}")

    def mean(design: np.ndarray) -> np.ndarray:
        eta = design @ coef
        return np.exp(eta) if family == "poisson" else 1.0 / (1.0 + np.exp(-eta))

    def score(design: np.ndarray, y: np.ndarray) -> np.ndarray:
        return design * (y - mean(design))[:, None]  # canonical link: x (y - mu)

    def curvature(design: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
        mu = mean(design)
        variance = mu if family == "poisson" else mu * (1 - mu)
        return (design * (weights * variance)[:, None]).T @ design

    return score, curvature


def _gaussian_regression(coef: np.ndarray, scale: float) -> tuple[Callable, Callable]:
    """``l = -log s - e^2 / (2 s^2)``, ``e = y - x b``: derivatives in ``(b, s)``."""
    s2 = scale * scale

    def score(design: np.ndarray, y: np.ndarray) -> np.ndarray:
        e = y - design @ coef
        return np.column_stack([design * (e / s2)[:, None], -1.0 / scale + e * e / (s2 * scale)])

    def curvature(design: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
        e = y - design @ coef
        p = design.shape[1]
        out = np.empty((p + 1, p + 1))
        out[:p, :p] = (design * weights[:, None]).T @ design / s2
        out[:p, p] = out[p, :p] = 2.0 * (weights * e) @ design / (s2 * scale)
        out[p, p] = float(weights @ (3.0 * e * e / (s2 * s2) - 1.0 / s2))
        return out

    return score, curvature
