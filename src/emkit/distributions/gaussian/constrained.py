"""M-steps of mclust's constrained covariance models (Celeux & Govaert 1995).

Every covariance is written ``Sigma_k = lambda_k D_k A_k D_k^T``: volume
``lambda_k``, shape ``A_k`` (diagonal, determinant 1) and orientation ``D_k``
(orthogonal). A model name gives, in that order, whether volume, shape and
orientation are Equal across components or Variable; ``I`` means the identity
(shape or orientation). ``EVE`` has one volume and one orientation and a shape
per component.

Given the component sizes ``n_k`` and within-component scatter matrices
``W_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T``, the M-step minimises

    sum_k  n_k log det Sigma_k + tr(W_k Sigma_k^{-1})

under the model's constraints. Closed forms exist for EII VII EEI EVI VVI EEE
EEV EVV VVV (Celeux & Govaert 1995, section 3); VEI VEE VEV alternate exact
block updates of volumes and the shared shape (or shape-orientation); EVE and
VVE update the shared orientation with the majorisation-minimisation step of
Browne & McNicholas (2014), both majorisers in turn, as mclust does. Every block
update lowers the objective, so the likelihood never decreases.

This module is pure numpy on those sums; :mod:`emkit.distributions.gaussian.covariance`
wraps it in covariance structures.
"""

from __future__ import annotations

import numpy as np

# The 14 multivariate models, and the two univariate ones.
MODEL_NAMES = (
    "EII", "VII", "EEI", "VEI", "EVI", "VVI",
    "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
)
UNIVARIATE_NAMES = ("E", "V")

# Inner iterations of the models without a closed form: relative change of the
# objective, and a cap that is never reached on well-posed data.
INNER_TOL = 1e-12
INNER_MAX_ITER = 5000


def n_var_params(model: str, n_features: int, n_components: int) -> int:
    """Free covariance parameters of a model: mclust's ``nVarParams``.

    Examples
    --------
    >>> n_var_params("VEV", 4, 2)
    17
    """
    d, g = n_features, n_components
    tri = d * (d - 1) // 2  # an orientation
    counts = {
        "E": 1, "V": g,
        "EII": 1, "VII": g, "EEI": d, "VEI": g + d - 1, "EVI": 1 + g * (d - 1), "VVI": g * d,
        "EEE": d * (d + 1) // 2, "VEE": g + d - 1 + tri, "EVE": 1 + g * (d - 1) + tri,
        "VVE": g * d + tri, "EEV": d + g * tri, "VEV": g + d - 1 + g * tri,
        "EVV": 1 - g + g * d * (d + 1) // 2, "VVV": g * d * (d + 1) // 2,
    }
    return counts[model]


def _geometric_mean(values: np.ndarray) -> np.ndarray:
    """Geometric mean over the last axis (the determinant's ``1/d`` power of a diagonal)."""
    return np.exp(np.log(values).mean(axis=-1))


def _log_det(matrices: np.ndarray) -> np.ndarray:
    sign, value = np.linalg.slogdet(matrices)
    return np.where(sign > 0, value, -np.inf)


# ---------------------------------------------------------------------------
# Axis-aligned models: W_k enters only through its diagonal w_k (K, D).


def spherical_equal(counts: np.ndarray, traces: np.ndarray, n_features: int) -> np.ndarray:
    """EII: one variance ``sum_k tr W_k / (n d)``, repeated per component (K,)."""
    value = traces.sum() / (counts.sum() * n_features)
    return np.full(counts.shape, value)


def diagonal(model: str, counts: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Variances (K, D) of the axis-aligned models EEI, VEI, EVI from diagonals ``w``."""
    n = counts.sum()
    if model == "EEI":
        return np.broadcast_to(w.sum(axis=0) / n, w.shape).copy()
    if model == "EVI":
        # B_k = w_k / det(w_k)^(1/d); lambda = sum_k det(w_k)^(1/d) / n.
        scale = _geometric_mean(w)
        return (scale.sum() / n) * (w / scale[:, None])
    if model == "VEI":
        return _vei(counts, w)
    raise ValueError(f"{model!r} is not an axis-aligned model with a diagonal layout")


def _vei(counts: np.ndarray, w: np.ndarray) -> np.ndarray:
    """VEI: volumes ``lambda_k`` and one shape ``B``, alternately exact."""
    d = w.shape[1]
    volume = w.sum(axis=1) / (d * counts)
    previous = np.inf
    for _ in range(INNER_MAX_ITER):
        shape = (w / volume[:, None]).sum(axis=0)
        shape /= _geometric_mean(shape)
        volume = (w / shape).sum(axis=1) / (d * counts)
        objective = d * (counts * np.log(volume)).sum()  # the trace term is constant, n d
        if abs(previous - objective) <= INNER_TOL * abs(objective) + 1e-300:
            break
        previous = objective
    return volume[:, None] * shape


# ---------------------------------------------------------------------------
# Models with full matrices: W (K, D, D).


def full(model: str, counts: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Covariances (K, D, D) of the models VEE EVE VVE EEV VEV EVV from scatters ``W``."""
    solver = _FULL_SOLVERS.get(model)
    if solver is None:
        raise ValueError(f"{model!r} is not a model with a full layout")
    return solver(counts, W)


def _eev(counts, W):
    # Orientation D_k: eigenvectors of W_k; one shape-volume: the summed eigenvalues / n.
    values, vectors = _eigen_descending(W)
    common = values.sum(axis=0) / counts.sum()
    return np.einsum("kij,j,klj->kil", vectors, common, vectors)


def _evv(counts, W):
    # C_k = W_k / det(W_k)^(1/d); lambda = sum_k det(W_k)^(1/d) / n.
    d = W.shape[-1]
    scale = np.exp(_log_det(W) / d)
    return (scale.sum() / counts.sum()) * (W / scale[:, None, None])


def _vee(counts, W):
    d = W.shape[-1]
    volume = np.trace(W, axis1=1, axis2=2) / (d * counts)
    previous = np.inf
    for _ in range(INNER_MAX_ITER):
        shape = (W / volume[:, None, None]).sum(axis=0)
        shape /= np.exp(_log_det(shape) / d)
        inverse = np.linalg.inv(shape)
        volume = np.einsum("kij,ji->k", W, inverse) / (d * counts)
        objective = d * (counts * np.log(volume)).sum()
        if abs(previous - objective) <= INNER_TOL * abs(objective) + 1e-300:
            break
        previous = objective
    return volume[:, None, None] * shape


def _vev(counts, W):
    """VEV: VEI on the eigenvalues of each ``W_k``, turned by its eigenvectors ``D_k``.

    With each orientation free, ``tr(W_k D_k A^-1 D_k^T) / lambda_k`` is least
    for ``D_k`` the eigenvectors of ``W_k`` (largest eigenvalue with the largest
    entry of ``A``); what remains is VEI's problem on those eigenvalues.
    """
    values, vectors = _eigen_descending(W)
    diagonals = _vei(counts, values)  # lambda_k A, shape (K, D)
    return np.einsum("kij,kj,klj->kil", vectors, diagonals, vectors)


def _common_orientation(counts, W, variable_volume: bool):
    """EVE (one volume) and VVE (a volume per component): one orientation ``D``.

    Given ``D``, the per-component diagonals ``diag(D^T W_k D)`` give the
    shapes (and volumes) exactly; given those, ``D`` takes majorisation steps
    that lower ``sum_k tr(W_k D M_k D^T)`` with ``M_k`` the inverse diagonals.
    """
    d = W.shape[-1]
    n = counts.sum()
    # Start from the orientation of the pooled scatter.
    _, orientation = np.linalg.eigh(W.sum(axis=0))
    largest_w = np.linalg.eigvalsh(W)[:, -1]
    previous = np.inf
    for iteration in range(INNER_MAX_ITER):
        rotated = np.einsum("ji,kjl,li->ki", orientation, W, orientation)  # diag(D^T W_k D)
        if variable_volume:
            variances = rotated / counts[:, None]
            objective = (counts * np.log(variances).sum(axis=1)).sum()
        else:
            shape_scale = _geometric_mean(rotated)
            shapes = rotated / shape_scale[:, None]
            volume = shape_scale.sum() / n
            variances = volume * shapes
            objective = n * d * np.log(volume)
        if abs(previous - objective) <= INNER_TOL * abs(objective) + 1e-300:
            break
        previous = objective
        orientation = _majorised_orientation(W, orientation, 1.0 / variances, largest_w,
                                             second=iteration % 2 == 1)
    return np.einsum("ij,kj,lj->kil", orientation, variances, orientation)


def _majorised_orientation(W, orientation, inverse, largest_w, second: bool):
    """One MM step for ``D`` (Browne & McNicholas 2014; Kiers 2002).

    ``f(D) = sum_k tr(W_k D M_k D^T)`` is majorised at ``D0`` by a function linear
    in ``D``: with ``alpha_k`` the largest eigenvalue of ``W_k``,
    ``tr((W_k - alpha_k I) D M_k D^T)`` is concave in ``D`` (and the rest constant
    on orthogonal matrices); or, in turn, with ``beta_k`` the largest entry of
    ``M_k``, ``tr(W_k D (M_k - beta_k I) D^T)`` is. The minimiser of
    ``-tr(H^T D)`` over orthogonal ``D`` is ``U V^T`` from the SVD ``H = U S V^T``.
    """
    if second:
        beta = inverse.max(axis=1)
        H = np.einsum("kij,jl,kl->il", W, orientation, beta[:, None] - inverse)
    else:
        H = (largest_w[:, None, None] * orientation[None] * inverse[:, None, :]).sum(axis=0)
        H -= np.einsum("kij,jl,kl->il", W, orientation, inverse)
    u, _, vt = np.linalg.svd(H)
    return u @ vt


def _eigen_descending(W):
    values, vectors = np.linalg.eigh(W)
    return values[:, ::-1], vectors[:, :, ::-1]


_FULL_SOLVERS = {
    "EEV": _eev,
    "EVV": _evv,
    "VEE": _vee,
    "VEV": _vev,
    "EVE": lambda counts, W: _common_orientation(counts, W, variable_volume=False),
    "VVE": lambda counts, W: _common_orientation(counts, W, variable_volume=True),
}
