"""Local coordinates of mclust's eight curved covariance models, to second order.

The models VEI, EVI, VEE, EVE, VVE, EEV, VEV and EVV write each covariance as
``Sigma_k = lambda_k D_k A_k D_k'`` (volume, shape with ``det A_k = 1``,
orientation) and share some of the three across components: their covariances
lie on a curved manifold, not a linear subspace, so the standard errors of
:mod:`emkit.latent.information` need a chart of it and its second derivatives
(the information in curved coordinates has a term in the score times the
chart's curvature). Around the fitted ``lambda_k, A_k, D_k`` the chart is

``Sigma_k(theta) = lambda_k e^u D_k e^S diag(a_k * exp(C v)) e^-S D_k'``

with coordinates, each one per component (``V``) or shared (``E``):

- ``u``: the log-volume, ``log lambda`` (its estimate ``log lambda_k``);
- ``v`` (``d - 1`` entries): log shape ratios, ``log(a_j / a_{d-1})`` (``C``'s
  columns are ``e_j - 1/d``, so ``det A`` stays one); the entries of ``a_k`` are
  in the order of ``D_k``'s columns: the features for the axis-aligned VEI and
  EVI, ascending eigenvalues otherwise;
- ``omega`` (``d (d - 1) / 2`` entries, absent for VEI and EVI): the rotation
  ``e^S``, ``S = sum_(a<b) omega_ab (e_a e_b' - e_b e_a')``, relative to the fitted
  orientation (its estimate zero).

The number of coordinates is mclust's ``nVarParams``. At ``theta`` with ``u``
and ``v`` at their estimates and ``omega = 0`` the chart gives the fitted
covariances; its first and second derivatives there are closed forms
(``e^S = I + S + S^2 / 2 + ...``), computed per component in the frame ``D_k``
and turned back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emkit.distributions.gaussian.constrained import orientation_of

#: The curved models, whose covariances share volume, shape or orientation.
CURVED_MODELS = ("VEI", "EVI", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV")


@dataclass(frozen=True)
class CurvedLayout:
    """A curved model's chart at the fit, in the shape of a linear ``CovarianceLayout``.

    Attributes
    ----------
    names : tuple of str
        The coordinates: ``log_volume``, ``log_shape[j]`` and ``rotation[a, b]``,
        with a component index first where they are per component.
    estimates : ndarray of shape (n_free,)
        The coordinates at the fit (rotations zero).
    embed : ndarray of shape (K, m, n_free)
        ``d vech(Sigma_k) / d theta`` at the fit (upper triangle, row by row).
    curvature : tuple of (columns, tensor), one per component
        ``d2 vech(Sigma_k) / d theta_a d theta_b`` for the coordinates ``columns``
        it depends on: ``tensor`` has shape (m, len(columns), len(columns)).
    expand : ndarray of shape (covariances_.size, n_free)
        ``d covariances_ / d theta``: every stored entry (the delta method).
    """

    names: tuple[str, ...]
    estimates: np.ndarray
    embed: np.ndarray
    curvature: tuple[tuple[np.ndarray, np.ndarray], ...]
    expand: np.ndarray


def curved_layout(model: str, dense: np.ndarray) -> CurvedLayout:
    """The chart of ``model`` at the fitted covariances ``dense`` (K, d, d).

    Raises
    ------
    ValueError
        If ``model`` is not one of :data:`CURVED_MODELS`.
    """
    if model not in CURVED_MODELS:
        raise ValueError(f"{model!r} is not a curved model ({', '.join(CURVED_MODELS)})")
    dense = np.asarray(dense, np.float64)
    k, d = dense.shape[:2]
    volume_shared, shape_shared, orient = model[0] == "E", model[1] == "E", model[2]
    frames, values = _decompose(dense, orient)
    log_volumes = np.log(values).mean(axis=1)
    shapes = values / np.exp(log_volumes)[:, None]
    rows, cols = np.triu_indices(d)
    pairs = list(zip(*np.triu_indices(d, 1), strict=True)) if orient != "I" else []
    names, estimates, columns = _coordinates(k, d, volume_shared, shape_shared, orient,
                                             log_volumes, shapes, pairs)
    n_free = len(names)
    embed = np.zeros((k, rows.size, n_free))
    expand_full = np.zeros((k, d, d, n_free))
    curvature = []
    for c in range(k):
        first, second = _frame_derivatives(np.exp(log_volumes[c]), shapes[c], pairs)
        frame = frames[c]
        # Back from the frame D_k: D_k X D_k' for every derivative.
        first = np.einsum("ia,pab,jb->pij", frame, first, frame)
        second = np.einsum("ia,pqab,jb->pqij", frame, second, frame)
        embed[c][:, columns[c]] = first[:, rows, cols].T
        expand_full[c][..., columns[c]] = np.moveaxis(first, 0, -1)
        curvature.append((columns[c], np.moveaxis(second[:, :, rows, cols], -1, 0)))
    if orient == "I":  # stored as variances (K, d)
        expand = expand_full[:, np.arange(d), np.arange(d)].reshape(k * d, n_free)
    else:
        expand = expand_full.reshape(k * d * d, n_free)
    return CurvedLayout(tuple(names), np.asarray(estimates), embed, tuple(curvature), expand)


def _decompose(dense: np.ndarray, orient: str) -> tuple[np.ndarray, np.ndarray]:
    """Each component's frame ``D_k`` and the eigenvalues ``lambda_k a_k`` along it."""
    k, d = dense.shape[:2]
    if orient == "I":
        return np.broadcast_to(np.eye(d), (k, d, d)), np.diagonal(dense, axis1=1, axis2=2).copy()
    if orient == "V":
        values, frames = np.linalg.eigh(dense)
        return frames, values
    frame = orientation_of(dense)
    values = np.einsum("ai,kab,bi->ki", frame, dense, frame)
    return np.broadcast_to(frame, (k, d, d)), values


def _coordinates(k, d, volume_shared, shape_shared, orient, log_volumes, shapes, pairs):
    """Names, estimates and, per component, the columns of its (u, v, omega)."""
    names, estimates = [], []
    volume_cols = _block(names, estimates, k, volume_shared, ["log_volume"],
                         lambda c: [log_volumes[c]])
    ratios = np.log(shapes[:, :-1]) - np.log(shapes[:, -1:])
    shape_cols = _block(names, estimates, k, shape_shared,
                        [f"log_shape[{j}]" for j in range(d - 1)], lambda c: ratios[c])
    rotation_cols = _block(names, estimates, k, orient == "E",
                           [f"rotation[{a}, {b}]" for a, b in pairs],
                           lambda c: np.zeros(len(pairs)))
    columns = [np.concatenate([volume_cols[c], shape_cols[c], rotation_cols[c]]).astype(np.intp)
               for c in range(k)]
    return names, estimates, columns


def _block(names, estimates, k, shared, labels, values):
    """Add one kind of coordinate (shared or per component); each component's columns."""
    if not labels:
        return [np.zeros(0, np.intp)] * k
    if shared:
        start = len(names)
        names += labels
        estimates += list(values(0))
        return [start + np.arange(len(labels))] * k
    out = []
    for c in range(k):
        out.append(len(names) + np.arange(len(labels)))
        names += [label.replace("[", f"[{c}, ") if "[" in label else f"{label}[{c}]"
                  for label in labels]
        estimates += list(values(c))
    return out


def _frame_derivatives(volume: float, shape: np.ndarray, pairs: list[tuple[int, int]]):
    """First (p, d, d) and second (p, p, d, d) derivatives of ``lambda R A R'`` in the frame.

    Coordinates ``(u, v_0 .. v_{d-2}, omega_pairs)``; at the fit ``R = I``.
    """
    d = shape.size
    contrasts = np.eye(d)[:, :d - 1] - 1.0 / d  # columns e_j - 1/d
    generators = np.zeros((len(pairs), d, d))
    for p, (a, b) in enumerate(pairs):
        generators[p, a, b], generators[p, b, a] = 1.0, -1.0
    A = np.diag(shape)
    dA = np.array([np.diag(shape * contrasts[:, j]) for j in range(d - 1)]).reshape(-1, d, d)
    ddA = np.array([[np.diag(shape * contrasts[:, i] * contrasts[:, j]) for j in range(d - 1)]
                    for i in range(d - 1)]).reshape(d - 1, d - 1, d, d)
    n_v, n_o = d - 1, len(pairs)
    size = 1 + n_v + n_o
    first = np.zeros((size, d, d))
    second = np.zeros((size, size, d, d))
    v = slice(1, 1 + n_v)
    o = slice(1 + n_v, size)
    first[0] = A
    first[v] = dA
    # R A R' moves by G A + A G' = G A - A G (G skew).
    first[o] = generators @ A - A @ generators
    second[v, v] = ddA
    second[v, o] = (generators[None] @ dA[:, None] - dA[:, None] @ generators[None])
    second[o, v] = np.swapaxes(second[v, o], 0, 1)
    # e^S = I + S + S^2 / 2: the S^2 term gives sym(G_p G_q) A + A sym(G_p G_q)',
    # the two first-order factors G_p A G_q' + G_q A G_p'.
    gg = generators[:, None] @ generators[None]
    sym = 0.5 * (gg + np.swapaxes(gg, 0, 1))
    cross = generators[:, None] @ A @ generators[None]
    second[o, o] = sym @ A + A @ sym - cross - np.swapaxes(cross, 0, 1)
    # lambda = e^u lambda_hat: d/du of anything is itself.
    second[0, :] = first
    second[:, 0] = first
    return volume * first, volume * second
