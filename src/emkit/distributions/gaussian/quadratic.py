"""Gaussian log densities and statistics as matrix products over quadratic features.

For a chunk centred on a common reference ``c`` (``x' = x - c``), every
Gaussian log density is linear in the features
``phi(x') = [quadratic terms of x', x', 1]``::

    log N(x | mu, Sigma) = -0.5 x'^T P x' + (P mu')^T x'
                           - 0.5 mu'^T P mu' + log det L - D/2 log 2pi

with ``P = Sigma^-1 = L L^T`` and ``mu' = mu - c``. So all ``n x K`` log
densities of a chunk are one product ``phi @ W``, and all the M-step sums
(counts, first and second moments around ``c``) are one product
``resp^T @ phi``. Two large BLAS calls replace ``K`` passes over the data.

The expansion cancels when a component lies far from ``c`` relative to its
spread: the terms grow like ``lambda_max(P) * |x'|^2`` while their sum stays
of order ``D``. Components for which the rounding that this costs would exceed
a budget take the direct per-component form (centred on their own mean), so
the answer does not depend on where the data sit.

What the quadratic terms are depends on the covariance structure (all products
``x'_i x'_j`` for full, squares for diagonal, ``|x'|^2`` for spherical,
``|L^T x'|^2`` for tied); the structures supply them through ``quad_*``
methods.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from emkit.distributions.gaussian import _soft_pass

if TYPE_CHECKING:
    from emkit.distributions.gaussian.covariance import CovarianceStructure

LOG_2PI = float(np.log(2.0 * np.pi))

# Largest ``eps * q`` accepted for the expansion (``q``: its terms' size in
# Mahalanobis units, see _expansion_size), in the data's dtype. The rms rounding
# error of a log density in float32, measured per component on 50 000 rows of
# the benchmark's mixtures (D = 16, K = 8, well and ill conditioned), was 0.3 to
# 1.8 times ``eps * q``: the budget bounds it near 1e-3 nats in float32 and
# near 1e-8 in float64.
# Components that miss the budget are computed around their own means (the
# direct form, as scikit-learn computes all of them), also inside the compiled
# pass; in float32 that is scikit-learn's own arithmetic for them.
_ROUNDING_BUDGET = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-3}

# Widest feature row the expansion is used for. Beyond it (full covariance with
# D > 44) the features of even a few hundred rows overflow the caches and the
# direct per-component form, with its D x D products, measured as fast or faster.
_MAX_PHI_WIDTH = 1024

# Bytes of per-row working arrays a chunk aims at: about what the caches hold.
_CHUNK_BYTES = 4 * 2**20
# The same for chunks of the compiled soft pass, which holds only a block in
# cache at a time, so that a chunk costs its rows and a log-likelihood per row:
# long chunks save handoffs between threads (about 0.1 ms each). On 200 000 x
# 16 rows, K = 8: 25.6 ms per E-step in chunks of 3 256 rows, 16.8 in 12 500,
# 16.2 in 50 000 (this budget), 15.8 in two halves.
_COMPILED_CHUNK_BYTES = 64 * 2**20

# Structures whose quadratic features the compiled soft E-step builds. Tied
# covariance is left to the numpy path: its one feature needs a product by the
# shared Cholesky factor, and its moments are not linear in that feature.
_SOFT_LAYOUTS = {
    "full": _soft_pass.FULL, "diag": _soft_pass.DIAG, "spherical": _soft_pass.SPHERICAL,
}


def uses_expansion(structure: CovarianceStructure, n_features: int) -> bool:
    """Whether the quadratic features are cheaper than the direct form for this shape."""
    return structure.quad_width(n_features) + n_features + 1 <= _MAX_PHI_WIDTH


def chunk_rows(
    structure: CovarianceStructure, n_features: int, n_components: int, *, compiled: bool = False
) -> int:
    """Rows per chunk that keep an E-step's working arrays near :data:`_CHUNK_BYTES`.

    Narrow rows get long chunks (fewer Python-level steps), wide ones short
    chunks (features stay in cache). With ``compiled`` (soft EM on complete
    rows, where the compiled pass of :func:`soft_pass_applies` runs), a chunk's
    working arrays are one cache-sized block whatever its length, so chunks are
    longer: each costs a Python-level step (about 0.1 ms with the thread handoff).
    """
    if uses_expansion(structure, n_features):
        width = structure.quad_width(n_features) + n_features + 1 + n_components
    else:  # the direct form's centred copy, its weighted copy, the (n, K) arrays
        width = 3 * n_features + n_components
    if compiled and soft_pass_applies(structure, n_features):
        return int(np.clip(_COMPILED_CHUNK_BYTES // (8 * width), 256, 2**20))
    return int(np.clip(_CHUNK_BYTES // (8 * width), 256, 65536))


def soft_pass_applies(structure: CovarianceStructure, n_features: int) -> bool:
    """Whether soft E-steps of complete rows can run as one compiled pass (numba installed)."""
    return (
        _soft_pass.AVAILABLE and structure.name in _SOFT_LAYOUTS
        and uses_expansion(structure, n_features)
    )


def balanced_rows(n_samples: int, max_rows: int, n_threads: int) -> int:
    """Chunk length at most ``max_rows`` that splits ``n_samples`` evenly over the threads.

    The number of chunks is rounded up to a multiple of ``n_threads``, so
    that no thread is left with a short last turn while the others wait.

    Examples
    --------
    >>> balanced_rows(100_000, 65_536, 2)  # two chunks of 50 000, not 65 536 + 34 464
    50000
    """
    n_chunks = -(-n_samples // max_rows)
    n_chunks = -(-n_chunks // n_threads) * n_threads
    return max(1, -(-n_samples // n_chunks))


@dataclass(frozen=True)
class PreparedChunk:
    """A chunk of rows with the features both E-step products reuse.

    Attributes
    ----------
    X : ndarray of shape (n_samples, D)
    phi : ndarray of shape (n_features_phi, n_samples) or None
        ``[quadratic terms, x - c, 1]``, feature-major (one contiguous row per
        feature, which makes building it cheap); None when no component is on
        the fast path.
    """

    X: np.ndarray
    phi: np.ndarray | None


@dataclass(frozen=True)
class GaussianKernel:
    """Per-iteration precomputation for the E-step of ``K`` Gaussians.

    Built once per set of parameters (one EM iteration) and shared by all
    chunks and threads; it holds no per-chunk state.

    Attributes
    ----------
    structure : CovarianceStructure
    means : ndarray of shape (K, D)
    prec_chol : ndarray
        Precision Cholesky factors, structure-shaped.
    centre : ndarray of shape (D,)
        The common reference ``c`` the features are taken around, in the
        data's dtype.
    fast : ndarray of shape (K,), bool
        Components computed from the quadratic features.
    pass_weights : ndarray of shape (n_features_phi, K or 0)
        ``W`` with ``phi @ W`` the log densities, fast components first (see
        :attr:`weights`), then the others: too rounded to use as their log
        densities but good enough to tell which rows they cannot reach. No
        columns where the structure takes no features.
    n_quad : int
        Number of quadratic feature columns.
    log_det : ndarray of shape (K,), float64
        ``log det L_k``, half the log-determinant of each precision.
    rounding : ndarray of shape (K,), float64
        ``eps q_k``: the estimated rms rounding of the features' log
        densities in the means' dtype (see :func:`_expansion_size`).
    """

    structure: CovarianceStructure
    means: np.ndarray
    prec_chol: np.ndarray
    centre: np.ndarray
    fast: np.ndarray
    pass_weights: np.ndarray
    n_quad: int
    log_det: np.ndarray
    rounding: np.ndarray

    @classmethod
    def build(
        cls,
        structure: CovarianceStructure,
        means: np.ndarray,
        covariances: np.ndarray,
        prec_chol: np.ndarray,
    ) -> GaussianKernel:
        """Choose the fast components and assemble ``W`` (in the means' dtype)."""
        n_components, n_features = means.shape
        means64 = means.astype(np.float64)
        centre = means64.mean(axis=0)
        offsets = means64 - centre
        chol64 = prec_chol.astype(np.float64)
        dtype = means.dtype
        expanded = uses_expansion(structure, n_features)
        if expanded:
            precisions = structure.dense(structure.precisions(chol64), n_components, n_features)
            covs = structure.dense(covariances.astype(np.float64), n_components, n_features)
            rounding = np.finfo(dtype).eps * _expansion_size(precisions, covs, offsets)
        else:
            # No features, so no fast component: skip the dense (K, D, D) matrices,
            # which a wide diag fit could not hold (20 000 columns: 3.2 GB each).
            precisions = np.empty((0, n_features, n_features))
            rounding = np.full(n_components, np.inf)
        fast = (rounding <= _ROUNDING_BUDGET[np.dtype(dtype)]) & expanded
        log_det = np.broadcast_to(structure.log_det_cholesky(chol64, n_features), (n_components,))
        # Fast components first, then the direct ones (where there are features).
        order = np.concatenate([np.flatnonzero(fast), np.flatnonzero(~fast & expanded)])
        weights = _phi_weights(
            structure.quad_weights(precisions[order]), precisions[order], offsets[order],
            log_det[order], n_features,
        ).astype(dtype)
        return cls(
            structure=structure, means=means, prec_chol=prec_chol,
            centre=centre.astype(dtype), fast=fast, pass_weights=weights,
            n_quad=weights.shape[0] - n_features - 1, log_det=log_det, rounding=rounding,
        )

    @cached_property
    def weights(self) -> np.ndarray:
        """``W`` of the fast components, shape (n_features_phi, n_fast)."""
        return self.pass_weights[:, : int(self.fast.sum())]

    def prepare(self, X: np.ndarray) -> PreparedChunk:
        """Quadratic features of a chunk (computed once, used by both products)."""
        if not self.fast.any():
            return PreparedChunk(X=X, phi=None)
        n_samples, n_features = X.shape
        phi = np.empty((self.n_quad + n_features + 1, n_samples), dtype=self.weights.dtype)
        centred = phi[self.n_quad : self.n_quad + n_features]
        np.subtract(X.T, self.centre[:, None], out=centred)
        self.structure.quad_features(centred, self.prec_chol, phi[: self.n_quad])
        phi[-1] = 1.0
        return PreparedChunk(X=X, phi=phi)

    def log_prob(self, chunk: PreparedChunk) -> np.ndarray:
        """Log densities, shape (n_samples, K), in the features' dtype.

        The array is component-major in memory (the transpose of a C-ordered
        (K, n) array): BLAS writes a (K, n) product faster, and the
        normalisation over components then runs along contiguous rows.
        """
        if self.all_fast:
            return (self.weights.T @ chunk.phi).T
        out = np.empty((self.fast.size, chunk.X.shape[0]), dtype=self.weights.dtype).T
        if chunk.phi is not None:
            out[:, self.fast] = (self.weights.T @ chunk.phi).T
        slow = ~self.fast
        out[:, slow] = self.structure.log_prob(
            chunk.X, self.means[slow], self.structure.select(self.prec_chol, slow)
        )
        return out

    def stats(self, chunk: PreparedChunk, resp: np.ndarray) -> tuple:
        """``(counts, first, second)`` around the means, in float64.

        ``first`` and ``second`` are the sums ``r (x - mu)`` and the structure's
        second moments around each component's mean.
        """
        if self.all_fast:
            return self._fast_stats(chunk, resp)
        n_components, n_features = self.means.shape
        counts = np.empty(n_components)
        first = np.empty((n_components, n_features))
        fast_second = slow_second = None
        if chunk.phi is not None:
            counts[self.fast], first[self.fast], fast_second = self._fast_stats(
                chunk, resp[:, self.fast]
            )
        slow = ~self.fast
        if slow.any():
            counts[slow], first[slow], slow_second = direct_stats(
                self.structure, chunk.X, resp[:, slow], self.means[slow]
            )
        second = self.structure.join_second(self.fast, fast_second, slow_second)
        return counts, first, second

    def soft_stats(self, X: np.ndarray, log_weights: np.ndarray) -> tuple | None:
        """Soft E-step of complete rows in one compiled pass (see :mod:`._soft_pass`).

        Returns ``(counts, first, second, log_likelihood)`` like :meth:`stats`
        plus the summed log-likelihood under weights ``exp(log_weights)``, or
        None where the pass does not apply: a structure it does not build,
        numba missing, a NaN in ``X``, or a row with zero density under every
        component.
        """
        n_features = self.means.shape[1]
        if not soft_pass_applies(self.structure, n_features):
            return None
        fast = self.fast
        weights_t = self.pass_weights.T.copy()
        weights_t[:, -1] += np.concatenate([log_weights[fast], log_weights[~fast]])
        direct = self.direct_terms
        direct = replace(direct, constants=direct.constants + log_weights[~fast])
        moments = np.zeros(self.weights.shape)
        direct_sums = np.zeros((direct.means.shape[0], n_features + 1, n_features + 1))
        log_norm = np.empty(X.shape[0])
        block = _soft_pass.block_rows(weights_t.shape[1])
        layout = _SOFT_LAYOUTS[self.structure.name]
        # Row-major rows (a copy only for other layouts): one compiled version,
        # reading whole rows.
        X = np.ascontiguousarray(X)
        if not _soft_pass.soft_pass(
            X, self.centre, weights_t, direct, layout, block, moments, direct_sums, log_norm
        ):
            return None
        n_components = fast.size
        counts = np.empty(n_components)
        first = np.empty((n_components, n_features))
        fast_second = slow_second = None
        if fast.any():
            moments = moments.T
            # These structures' moments are linear in their features: no rows needed.
            second_c = self.structure.quad_moments(moments[:, : self.n_quad], None, None)
            counts[fast], first[fast], fast_second = self._moments_to_stats(moments, second_c)
        if not self.all_fast:
            counts[~fast] = direct_sums[:, -1, -1]
            first[~fast] = direct_sums[:, -1, :-1]
            slow_second = self.structure.reduce_scatter(direct_sums[:, :-1, :-1])
        second = self.structure.join_second(fast, fast_second, slow_second)
        return counts, first, second, float(log_norm.sum())

    @cached_property
    def direct_terms(self) -> _soft_pass.DirectTerms:
        """The components off the fast path, as the compiled pass takes them (no log weights)."""
        slow = ~self.fast
        n_slow, n_features = int(slow.sum()), self.means.shape[1]
        dtype = self.weights.dtype
        chol = self.structure.dense(
            self.structure.select(self.prec_chol, slow), n_slow, n_features
        )
        return _soft_pass.DirectTerms(
            means=np.ascontiguousarray(self.means[slow], dtype=dtype),
            chol_t=np.ascontiguousarray(np.swapaxes(chol, 1, 2), dtype=dtype),
            constants=self.log_det[slow] - 0.5 * n_features * LOG_2PI,
            skip_below=_soft_pass.skip_distance(self.rounding[slow], dtype),
        )

    def _fast_stats(self, chunk: PreparedChunk, resp: np.ndarray) -> tuple:
        """Sums from one ``resp^T @ phi`` product, moved from ``c`` to the means."""
        moments = (chunk.phi @ resp).T.astype(np.float64)
        centred = chunk.phi[self.n_quad : self.n_quad + self.means.shape[1]]
        second_c = self.structure.quad_moments(moments[:, : self.n_quad], centred, resp)
        return self._moments_to_stats(moments, second_c)

    def _moments_to_stats(self, moments: np.ndarray, second_c: np.ndarray) -> tuple:
        """``(counts, first, second)`` around the means from ``resp^T phi`` (K, n_phi).

        ``second_c`` are the second moments around the centre, from the
        quadratic columns of ``moments``.
        """
        n_quad, n_features = self.n_quad, self.means.shape[1]
        counts = moments[:, -1]
        first_c = moments[:, n_quad : n_quad + n_features]
        d = self.fast_offsets
        second = self.structure.recentre(second_c, counts, first_c, d)
        return counts, first_c - counts[:, None] * d, second

    @cached_property
    def fast_offsets(self) -> np.ndarray:
        """``mu_k - c`` of the fast components, float64, shape (K_fast, D)."""
        return self.means[self.fast].astype(np.float64) - self.centre.astype(np.float64)

    @cached_property
    def all_fast(self) -> bool:
        """Whether every component is on the fast path (no masking needed)."""
        return bool(self.fast.all())


def _expansion_size(
    precisions: np.ndarray, covariances: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """Size ``q_k`` of the expansion's terms relative to its result, per component.

    For a row of component ``k`` the terms ``P_ij x'_i x'_j`` have the scale
    ``P_ij s_i s_j`` with ``s_i^2 = Sigma_ii + (mu_i - c_i)^2`` (the mean square
    of ``x'_i``), while the log density is of order ``D``; their rounding errors
    add up like ``eps * q_k`` with ``q_k`` the Frobenius norm of that scaled
    matrix. Large for components far from the centre or with an
    ill-conditioned covariance.
    """
    scale = np.sqrt(np.einsum("kii->ki", covariances) + np.square(offsets))
    scaled = precisions * scale[:, :, None] * scale[:, None, :]
    return np.sqrt(np.square(scaled).sum(axis=(1, 2)))


def _phi_weights(
    quad: np.ndarray,
    precisions: np.ndarray,
    offsets: np.ndarray,
    log_det: np.ndarray,
    n_features: int,
) -> np.ndarray:
    """``W`` of shape (n_quad + D + 1, K_fast): quadratic, linear and constant rows."""
    linear = np.einsum("kij,kj->ki", precisions, offsets)
    constant = -0.5 * np.einsum("ki,ki->k", linear, offsets) + log_det - 0.5 * n_features * LOG_2PI
    return np.vstack([quad, linear.T, constant[None, :]])


def direct_stats(
    structure: CovarianceStructure, X: np.ndarray, resp: np.ndarray, means: np.ndarray
) -> tuple:
    """The accurate per-component sums (one centred pass per component), in float64.

    The first moments come from one product: ``sum r x - N mu`` only loses
    ``eps * |x|`` in absolute terms, the precision of the means themselves.
    """
    counts = resp.sum(axis=0, dtype=np.float64)
    first = (resp.T @ X).astype(np.float64) - counts[:, None] * means
    second = structure.scatter(X, resp, means).astype(np.float64)
    return counts, first, second
