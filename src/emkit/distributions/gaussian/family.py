"""The Gaussian component family: ``K`` multivariate normals sharing one covariance structure."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

import numpy as np

from emkit.core._parallel import default_threads
from emkit.core.stats import REFERENCE, Stats
from emkit.data.sources import IndexedArraySource
from emkit.distributions.gaussian.covariance import (
    CovarianceStructure,
    DegenerateComponentError,
)
from emkit.distributions.gaussian.missing import (
    GappyChunk,
    grouped_by_pattern,
    incomplete_log_prob,
    incomplete_moments,
    pattern_order,
    prepare_gappy,
)
from emkit.distributions.gaussian.prior import PriorParameters, map_means_and_covariances
from emkit.distributions.gaussian.quadratic import (
    GaussianKernel,
    PreparedChunk,
    balanced_rows,
    chunk_rows,
    direct_stats,
)

_KERNEL_LOCK = threading.Lock()


@dataclass(frozen=True)
class GaussianStats(Stats):
    """Weighted sums over rows, second moments around ``shift``.

    The sums are float64 for float32 data too (chunks add without losing
    digits); ``shift`` has the data's dtype.

    Attributes
    ----------
    counts : ndarray of shape (K,)
        ``sum_i r_ik``.
    first : ndarray of shape (K, D)
        ``sum_i r_ik (x_i - shift_k)``.
    second : ndarray
        ``sum_i r_ik (x_i - shift_k)(x_i - shift_k)^T``, reduced to the
        covariance structure's shape.
    shift : ndarray of shape (K, D)
        The reference points (the means at the time of the E-step).
    """

    counts: np.ndarray
    first: np.ndarray
    second: np.ndarray
    shift: np.ndarray = field(metadata=REFERENCE)

    def recentred(self, shift: np.ndarray, structure: CovarianceStructure) -> GaussianStats:
        """The same sums with moments taken around ``shift`` instead (exact algebra).

        With ``d = old_shift - new_shift`` per component, ``x - new = (x - old) + d``:
        ``first' = first + N d`` and ``second' = second + first d^T + d first^T
        + N d d^T``, the correction reduced to the structure's shape like the
        second moments themselves (``structure.reduce_scatter``).
        """
        shift = np.asarray(shift, dtype=self.shift.dtype)
        delta = self.shift - shift
        cross = self.first[:, :, None] * delta[:, None, :]
        outer = self.counts[:, None, None] * (delta[:, :, None] * delta[:, None, :])
        correction = structure.reduce_scatter(cross + np.swapaxes(cross, 1, 2) + outer)
        return GaussianStats(
            counts=self.counts,
            first=self.first + self.counts[:, None] * delta,
            second=self.second + correction,
            shift=shift,
        )


@dataclass(frozen=True)
class Gaussian:
    """``K`` Gaussian components with one covariance structure.

    Attributes
    ----------
    structure : CovarianceStructure
        How the covariances are shaped (full, tied, diag, spherical).
    means : ndarray of shape (K, D)
    covariances : ndarray
        Shape given by the structure.
    precisions_cholesky : ndarray
        Cholesky factors of the precisions, same shape as ``covariances``.
    reg_covar : float
        Added to the diagonal of every covariance in the M-step.
    fixed : frozenset of {"means", "covariances"}
        Parameters the M-step keeps as they are (frozen); the others get their
        maximum-likelihood value given the frozen ones.
    prior : PriorParameters or None
        The conjugate prior's hyperparameters (see
        :mod:`emkit.distributions.gaussian.prior`): the M-step then takes the
        posterior mode instead of the maximum-likelihood estimate.
    """

    structure: CovarianceStructure
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    reg_covar: float = 1e-6
    # Factorisations per missingness pattern, valid for these parameters only.
    pattern_cache: dict = field(default_factory=dict, repr=False, compare=False)
    fixed: frozenset = frozenset()
    prior: PriorParameters | None = None

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    @property
    def kernel(self) -> GaussianKernel:
        """The E-step precomputation for these parameters (built once, shared by chunks).

        Chunks running on several threads ask for it at once; the lock makes
        one of them build it while the others wait.
        """
        kernel = self.__dict__.get("_kernel")
        if kernel is None:
            with _KERNEL_LOCK:
                kernel = self.__dict__.get("_kernel")
                if kernel is None:
                    kernel = GaussianKernel.build(
                        self.structure, self.means, self.covariances, self.precisions_cholesky
                    )
                    # A cache beside the (frozen) fields; it is not a field.
                    self.__dict__["_kernel"] = kernel
        return kernel

    def prepare(self, X: np.ndarray) -> PreparedChunk | GappyChunk:
        """Per-chunk work shared by :meth:`log_prob` and :meth:`stats` of one E-step.

        Complete rows get the kernel's features; rows with NaN are indexed by
        missingness pattern (see :mod:`emkit.distributions.gaussian.missing`).
        """
        missing = np.isnan(X)
        if not missing.any():
            return self.kernel.prepare(X)
        return prepare_gappy(self.kernel, X, missing)

    def log_prob(self, X: np.ndarray | PreparedChunk | GappyChunk) -> np.ndarray:
        """Log density of each row under each component, shape (n_samples, K).

        ``X`` is a chunk of rows or the result of :meth:`prepare` on it. NaN
        entries are missing: a row's density is that of its observed coordinates
        (0 for a row with nothing observed).
        """
        chunk = self._prepared(X)
        if isinstance(chunk, PreparedChunk):
            return _far_rows_at_minus_inf(self.kernel.log_prob(chunk))
        out = np.zeros((chunk.X.shape[0], self.n_components), dtype=chunk.X.dtype)
        out[chunk.complete_rows] = self.kernel.log_prob(chunk.complete)
        incomplete_log_prob(self, chunk, out)
        return _far_rows_at_minus_inf(out)

    def stats(self, X: np.ndarray | PreparedChunk | GappyChunk, resp: np.ndarray) -> GaussianStats:
        """Weighted sufficient statistics of a chunk, moments around the current means.

        Sums are float64 whatever the data dtype, so that adding many chunks
        of float32 data does not lose digits. Rows with NaN contribute their
        expected statistics.
        """
        chunk = self._prepared(X)
        if isinstance(chunk, PreparedChunk):
            counts, first, second = self.kernel.stats(chunk, resp)
            return GaussianStats(counts=counts, first=first, second=second, shift=self.means)
        counts, first, second = self.kernel.stats(chunk.complete, resp[chunk.complete_rows])
        gap_counts, gap_first, gap_second = incomplete_moments(self, chunk, resp)
        return GaussianStats(
            counts=counts + gap_counts, first=first + gap_first,
            second=second + self.structure.reduce_scatter(gap_second), shift=self.means,
        )

    def soft_e_step(
        self, X: np.ndarray, log_weights: np.ndarray
    ) -> tuple[np.ndarray, GaussianStats, float] | None:
        """Soft E-step of a chunk in one compiled pass, where the kernel has one.

        Returns ``(resp_sum, stats, log_likelihood)`` (responsibilities under
        mixing weights ``exp(log_weights)``), or None when the chunk needs the
        general path (missing values, a structure the pass does not build, ...).
        """
        result = self.kernel.soft_stats(X, log_weights)
        if result is None:
            return None
        counts, first, second, log_likelihood = result
        stats = GaussianStats(counts=counts, first=first, second=second, shift=self.means)
        return counts, stats, log_likelihood

    def _prepared(self, X: np.ndarray | PreparedChunk | GappyChunk) -> PreparedChunk | GappyChunk:
        return X if isinstance(X, PreparedChunk | GappyChunk) else self.prepare(X)

    def from_stats(self, stats: GaussianStats) -> Gaussian:
        """M-step: the maximum-likelihood components given summed statistics.

        Frozen parameters (``fixed``) are kept as the very same arrays. With
        the means frozen, the covariances are the scatter around them (their
        maximum given those means); with the covariances frozen, the means
        are the weighted averages (their maximum whatever the covariances).
        Each is a conditional maximum, so the likelihood never decreases.
        """
        if not self.fixed:
            return estimate_gaussian(self.structure, stats, self.reg_covar, self.prior,
                                     previous=self.covariances)
        if self.prior is not None:
            raise ValueError("a prior does not combine with frozen parameters (params=)")
        if "means" in self.fixed:
            stats = stats.recentred(self.means, self.structure)
            stats = GaussianStats(counts=stats.counts, first=np.zeros_like(stats.first),
                                  second=stats.second, shift=stats.shift)
        estimated = estimate_gaussian(self.structure, stats, self.reg_covar)
        means = self.means if "means" in self.fixed else estimated.means
        if "covariances" in self.fixed:
            return replace(self, means=means, pattern_cache={})
        return replace(estimated, means=means, fixed=self.fixed)

    @property
    def n_parameters(self) -> int:
        """Free parameters of the components (means and covariances, less the frozen)."""
        k, d = self.means.shape
        means = 0 if "means" in self.fixed else k * d
        covariances = 0 if "covariances" in self.fixed else self.structure.n_parameters(k, d)
        return means + covariances

    def sample(self, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw ``counts[k]`` rows from component ``k``, stacked in component order."""
        covariances = self.structure.dense(self.covariances, *self.means.shape)
        parts = [
            rng.multivariate_normal(mean, cov, size=int(n), method="cholesky")
            for mean, cov, n in zip(self.means, covariances, counts, strict=True)
        ]
        return np.vstack(parts).astype(self.means.dtype, copy=False)


def _far_rows_at_minus_inf(log_prob: np.ndarray) -> np.ndarray:
    """NaN log densities (rows so far out that quadratic terms of both signs overflow,
    inf - inf) set to -inf, their value to rounding: a finite row's density is never NaN.
    """
    far = np.isnan(log_prob)
    if far.any():
        if not log_prob.flags.writeable:
            log_prob = log_prob.copy()
        log_prob[far] = -np.inf
    return log_prob


def gaussian_stats(
    structure: CovarianceStructure, X: np.ndarray, resp: np.ndarray, shift: np.ndarray
) -> GaussianStats:
    """Sufficient statistics of ``X`` weighted by ``resp``, moments around ``shift``.

    The direct per-component form, used where no kernel exists yet (initialisation).
    """
    shift = np.asarray(shift, dtype=X.dtype)
    counts, first, second = direct_stats(structure, X, resp, shift)
    return GaussianStats(counts=counts, first=first, second=second, shift=shift)


def estimate_gaussian(
    structure: CovarianceStructure, stats: GaussianStats, reg_covar: float,
    prior: PriorParameters | None = None, previous: np.ndarray | None = None,
) -> Gaussian:
    """M-step from summed statistics.

    ``previous`` are the covariances before this M-step, where there are any: the
    iterative M-steps (EVE, VVE) start from them.

    Empty components get a tiny count (``10 * eps`` of the data dtype, as
    scikit-learn does) so they keep finite parameters instead of dividing by
    zero. The arithmetic (Cholesky included) is done in the statistics' dtype,
    float64 for the fast kernels, and the parameters are returned in the data
    dtype (that of ``stats.shift``).
    """
    dtype = stats.shift.dtype
    counts = stats.counts + 10 * np.finfo(dtype).eps
    offsets = stats.first / counts[:, None]
    if prior is None:
        means = stats.shift + offsets
        covariances = (
            structure.covariances(counts, offsets, stats.second, reg_covar) if previous is None
            else structure.covariances_after(previous, counts, offsets, stats.second, reg_covar)
        )
    else:
        means, covariances = _posterior_mode(structure, stats, counts, offsets, reg_covar, prior)
    return Gaussian(
        structure=structure,
        means=means.astype(dtype, copy=False),
        covariances=covariances.astype(dtype, copy=False),
        precisions_cholesky=structure.precisions_cholesky(covariances).astype(dtype, copy=False),
        reg_covar=reg_covar,
        prior=prior,
    )


def _posterior_mode(structure, stats, counts, offsets, reg_covar, prior):
    """MAP means and covariances from the sums (the prior module's M-step)."""
    between = counts[:, None, None] * offsets[:, :, None] * offsets[:, None, :]
    within = stats.second - structure.reduce_scatter(between)
    means, covariances = map_means_and_covariances(
        structure.model, structure.name, counts, stats.shift + offsets, within, prior, reg_covar
    )
    if not np.isfinite(covariances).all():
        raise DegenerateComponentError(
            "Fitting failed: the MAP covariances are not finite (a component lost all its rows)"
        )
    return means, np.array(covariances, dtype=np.float64)


def gaussian_from_resp(
    structure: CovarianceStructure, X: np.ndarray, resp: np.ndarray, reg_covar: float,
    prior: PriorParameters | None = None,
) -> Gaussian:
    """Components estimated from starting responsibilities (two passes: means, then moments).

    With a ``prior``, the posterior mode (mclust's start with a prior).
    """
    # The rows' own weighted means (10 eps only for an empty component): a component of
    # one row then has a scatter of exactly zero (mclust's start), not a rank-one remnant
    # of a mean 10 eps off its row, whose direction EEV and VEV would take as orientation.
    counts = resp.sum(axis=0)
    means = (resp.T @ X) / np.where(counts > 0, counts, 10 * np.finfo(resp.dtype).eps)[:, None]
    return estimate_gaussian(structure, gaussian_stats(structure, X, resp, means), reg_covar,
                             prior)


def gaussian_from_precisions(
    structure: CovarianceStructure, means: np.ndarray, precisions: np.ndarray, reg_covar: float
) -> Gaussian:
    """Components with given means and precision matrices."""
    prec_chol = structure.precisions_cholesky_from_precisions(precisions)
    return Gaussian(
        structure=structure,
        means=means,
        covariances=structure.covariances_from_cholesky(prec_chol),
        precisions_cholesky=prec_chol,
        reg_covar=reg_covar,
    )


# Rows x features x components below which a fit's rows are not split over threads.
SMALL_WORK = 100_000


def fit_source(
    X: np.ndarray, structure: CovarianceStructure, n_components: int, *,
    chunk_size: int | None = None, compiled: bool = True,
    sample_weight: np.ndarray | None = None, labels: np.ndarray | None = None,
) -> IndexedArraySource:
    """In-memory rows as the chunks a Gaussian fit runs over: the family's choice.

    Rows with gaps are grouped by missingness pattern (a chunk then shares its
    factorisations). Without ``chunk_size`` the length fits the kernel's
    working arrays (:func:`~emkit.distributions.gaussian.quadratic.chunk_rows`; long where
    the compiled soft pass runs: complete rows and ``compiled``, i.e. soft EM)
    and gives the threads even turns; small data (:data:`SMALL_WORK`) stay in
    one chunk, E-stepped in the calling thread.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
    >>> X = np.random.default_rng(0).normal(size=(1000, 2))
    >>> [len(chunk) for chunk in fit_source(X, COVARIANCE_STRUCTURES["full"], 3, chunk_size=400)]
    [400, 400, 200]

    ``sample_weight`` and ``labels`` (n_samples,), if given, travel with the
    rows (reordered with them); such chunks take the general E-step, not the
    compiled pass.
    """
    if sample_weight is None and labels is None:
        grouped = grouped_by_pattern(X)
    else:
        order = pattern_order(X)
        if order is not None:
            X, sample_weight, labels = (None if a is None else a[order]
                                        for a in (X, sample_weight, labels))
        grouped = X
        compiled = False
    if chunk_size is None:
        complete = grouped is X  # grouped_by_pattern copies only rows with gaps
        rows = chunk_rows(structure, X.shape[1], n_components, compiled=complete and compiled)
        if X.shape[0] * X.shape[1] * n_components <= SMALL_WORK:
            # Small data: one chunk in the calling thread beats a thread handoff.
            chunk_size = max(1, min(X.shape[0], rows))
        else:
            chunk_size = balanced_rows(X.shape[0], rows, default_threads())
    return IndexedArraySource(grouped, chunk_size, sample_weight=sample_weight, labels=labels)
