"""Gaussian components as one unconstrained vector, for extrapolating EM (SQUAREM).

Means are kept as they are; covariances through their lower Cholesky factors
with the logarithm on the diagonal (variances through their logarithms), so
that every vector maps back to positive definite covariances and an
extrapolation can only fail through ill-conditioning, which
``precisions_cholesky`` reports as a ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emkit.distributions.gaussian.family import Gaussian


def _pack_cholesky(covariances: np.ndarray) -> np.ndarray:
    """(M, D, D) covariances to their Cholesky factors' lower triangles, log diagonal."""
    lower = np.linalg.cholesky(covariances.astype(np.float64))
    d = covariances.shape[-1]
    idx = np.arange(d)
    lower[:, idx, idx] = np.log(lower[:, idx, idx])
    rows, cols = np.tril_indices(d)
    return lower[:, rows, cols].ravel()


def _unpack_cholesky(vector: np.ndarray, n_matrices: int, d: int) -> np.ndarray:
    rows, cols = np.tril_indices(d)
    lower = np.zeros((n_matrices, d, d))
    lower[:, rows, cols] = vector.reshape(n_matrices, -1)
    idx = np.arange(d)
    lower[:, idx, idx] = np.exp(lower[:, idx, idx])
    return lower @ np.swapaxes(lower, 1, 2)


def _size(structure: str, k: int, d: int) -> int:
    """Length of the packed covariances."""
    return {"full": k * d * (d + 1) // 2, "tied": d * (d + 1) // 2,
            "diag": k * d, "spherical": k}[structure]


def _pack(structure: str, covariances: np.ndarray) -> np.ndarray:
    if structure == "full":
        return _pack_cholesky(covariances)
    if structure == "tied":
        return _pack_cholesky(covariances[None])
    return np.log(covariances.astype(np.float64)).ravel()


def _unpack(structure: str, vector: np.ndarray, k: int, d: int) -> np.ndarray:
    if structure == "full":
        return _unpack_cholesky(vector, k, d)
    if structure == "tied":
        return _unpack_cholesky(vector, 1, d)[0]
    return np.exp(vector).reshape((k, d) if structure == "diag" else (k,))


@dataclass(frozen=True)
class GaussianCodec:
    """Flatten/unflatten :class:`~emkit.distributions.gaussian.family.Gaussian` components.

    The vector is ``[means.ravel(), packed covariances]`` in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
    >>> from emkit.distributions.gaussian.family import gaussian_from_resp
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> resp = np.repeat([[0.3, 0.7]], 50, axis=0)
    >>> g = gaussian_from_resp(COVARIANCE_STRUCTURES["full"], X, resp, 1e-6)
    >>> codec = GaussianCodec()
    >>> back = codec.unflatten(codec.flatten(g), like=g)
    >>> bool(np.allclose(back.covariances, g.covariances))
    True
    """

    def flatten(self, gaussian: Gaussian) -> np.ndarray:
        """The parameters as one float64 vector."""
        name = gaussian.structure.name
        return np.concatenate(
            [gaussian.means.astype(np.float64).ravel(), _pack(name, gaussian.covariances)]
        )

    def unflatten(self, vector: np.ndarray, like: Gaussian) -> Gaussian:
        """Components from a vector; ``ValueError`` if a covariance is degenerate."""
        k, d = like.means.shape
        structure = like.structure
        expected = k * d + _size(structure.name, k, d)
        if vector.shape != (expected,) or not np.isfinite(vector).all():
            raise ValueError(f"expected {expected} finite parameters, got shape {vector.shape}")
        dtype = like.means.dtype
        covariances = _unpack(structure.name, vector[k * d:], k, d).astype(dtype)
        # A new object, not dataclasses.replace: caches tied to the old
        # parameters (per missingness pattern) must not carry over.
        return Gaussian(
            structure=structure,
            means=vector[: k * d].reshape(k, d).astype(dtype),
            covariances=covariances,
            precisions_cholesky=structure.precisions_cholesky(covariances),
            reg_covar=like.reg_covar,
        )
