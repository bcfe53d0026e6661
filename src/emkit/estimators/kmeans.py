"""``emkit.KMeans``: k-means as hard EM (Lloyd's algorithm) over additive statistics.

K-means is the hard-EM limit of a Gaussian mixture with one shared spherical
covariance and equal weights: the E-step assigns each row to its nearest
centre, the M-step moves each centre to the mean of its rows. Like every emkit
driver, an iteration is one pass over row chunks producing summed statistics
(counts, coordinate sums, inertia), then a pure M-step.

The iteration follows scikit-learn's Lloyd implementation step for step (data
centred on its mean, the same tolerance, convergence and empty-cluster rules),
so that from the same initial centres both give the same labels and inertia.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.cluster import kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from emkit.core.engine import expected_stats
from emkit.core.stats import Stats
from emkit.data import _validation as v
from emkit.data.sources import ArraySource, IndexedArraySource, row_weights
from emkit.estimators.standard_errors import NoStandardErrors


@dataclass(frozen=True)
class Farthest:
    """The ``limit`` rows farthest from their centres, in decreasing distance.

    Not a sum, but as associative as one (a top-``limit`` selection), so it
    rides along in additive statistics: the M-step needs these rows to
    relocate empty clusters, as scikit-learn does.
    """

    distances: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    limit: int
    # The rows' sample weights (ones when unweighted): a relocated row moves with its weight.
    weights: np.ndarray | None = None

    @classmethod
    def select(
        cls, distances: np.ndarray, rows: np.ndarray, labels: np.ndarray, limit: int,
        weights: np.ndarray | None = None,
    ) -> Farthest:
        if weights is None:
            weights = np.ones(distances.shape[0], dtype=rows.dtype)
        else:  # rows of weight zero are absent: never relocated
            distances = np.where(weights > 0, distances, -np.inf)
        order = np.argsort(-distances, kind="stable")[:limit]
        return cls(distances[order], rows[order], labels[order], limit, weights[order])

    def __add__(self, other: Farthest) -> Farthest:
        return Farthest.select(
            np.concatenate([self.distances, other.distances]),
            np.concatenate([self.rows, other.rows]),
            np.concatenate([self.labels, other.labels]),
            self.limit,
            np.concatenate([self.weights, other.weights]),
        )


@dataclass(frozen=True)
class LloydStats(Stats):
    """Additive statistics of one Lloyd pass over some rows.

    Attributes
    ----------
    counts : ndarray of shape (K,)
        Rows nearest to each centre.
    sums : ndarray of shape (K, D)
        Sum of those rows (in the centred coordinates).
    inertia : float
        Sum of squared distances of the rows to their nearest centres.
    farthest : Farthest
        The rows farthest from their centres.
    """

    counts: np.ndarray
    sums: np.ndarray
    inertia: float
    farthest: Farthest


def nearest(X: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each row (int32, first on ties) and its squared distance."""
    # ||x||^2 is the same for every centre, so the argmin needs only ||c||^2 - 2 x.c
    # (one matrix product); the distances themselves are then computed exactly.
    scores = np.einsum("ij,ij->i", centres, centres) - 2 * (X @ centres.T)
    labels = scores.argmin(axis=1).astype(np.int32)
    distances = np.square(X - centres[labels]).sum(axis=1)
    return labels, distances


@dataclass(frozen=True)
class Lloyd:
    """K-means as an EM model: ``e_step(chunk) -> LloydStats``, ``m_step(stats) -> Lloyd``.

    Attributes
    ----------
    centres : ndarray of shape (K, D)
        Centres in coordinates relative to ``shift``.
    shift : ndarray of shape (D,)
        Subtracted from every row first (the data mean), so that the distance
        expansion does not cancel catastrophically on data far from the origin.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [9.0], [11.0]])
    >>> model = Lloyd(centres=np.array([[0.0], [5.0]]), shift=np.zeros(1))
    >>> stats = model.e_step(X[:2]) + model.e_step(X[2:])  # chunk statistics add
    >>> stats.counts, stats.inertia
    (array([2., 2.]), 53.0)
    >>> model.m_step(stats).centres
    array([[ 0.5],
           [10. ]])
    """

    centres: np.ndarray
    shift: np.ndarray

    def e_step(self, chunk: np.ndarray) -> LloydStats:
        weights = row_weights(chunk)  # sample_weight: a row of weight w counts w times
        X = np.asarray(chunk) - self.shift
        labels, distances = nearest(X, self.centres)
        n_clusters = self.centres.shape[0]
        one_hot = np.zeros((X.shape[0], n_clusters), dtype=X.dtype)
        one_hot[np.arange(X.shape[0]), labels] = 1 if weights is None else weights
        counts = np.bincount(labels, weights=weights, minlength=n_clusters).astype(X.dtype)
        inertia = distances.sum(dtype=np.float64) if weights is None else np.dot(
            distances.astype(np.float64), weights)
        return LloydStats(
            counts=counts,
            sums=one_hot.T @ X,
            inertia=float(inertia),
            farthest=Farthest.select(distances, X, labels, n_clusters, weights),
        )

    def m_step(self, stats: LloydStats) -> Lloyd:
        """Centres at the means of their rows; an empty cluster takes the farthest row."""
        counts, sums = _relocate_empty(stats.counts.copy(), stats.sums.copy(), stats.farthest)
        filled = counts > 0
        centres = sums.copy()
        # Multiplying by the reciprocal, not dividing, rounds as scikit-learn does.
        centres[filled] *= (1.0 / counts[filled])[:, None]
        return Lloyd(centres=centres, shift=self.shift)


def _relocate_empty(
    counts: np.ndarray, sums: np.ndarray, farthest: Farthest
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's rule: each empty cluster, in index order, takes the next farthest row."""
    empty = np.flatnonzero(counts == 0)
    if empty.size == 0 or farthest.distances.size == 0 or farthest.distances.max() == 0:
        return counts, sums
    moves = zip(empty, farthest.rows, farthest.labels, farthest.weights, strict=False)
    for cluster, row, old, weight in moves:
        if weight == 1:  # unit weights: scikit-learn's arithmetic exactly
            sums[old] -= row
            sums[cluster] = row
        else:
            sums[old] -= weight * row
            sums[cluster] = weight * row
        counts[old] -= weight
        counts[cluster] = weight
    return counts, sums


@dataclass(frozen=True)
class LloydResult:
    """Outcome of one Lloyd run: centres (relative to the shift), labels, inertia, iterations."""

    centres: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


def lloyd(
    X: np.ndarray, centres: np.ndarray, *, shift: np.ndarray, tol: float, max_iter: int,
    chunk_size: int = 4096, sample_weight: np.ndarray | None = None,
) -> LloydResult:
    """Lloyd iterations from ``centres`` (relative to ``shift``) until they move by ``tol``.

    Stops after the first iteration whose summed squared centre shift is at
    most ``tol`` (absolute; scikit-learn's ``tol`` times the mean feature
    variance). scikit-learn also stops when the labels repeat, but then the
    centres repeat exactly, so that case is covered by the same test.
    ``sample_weight`` weighs the rows (counts, sums and inertia).
    """
    source = IndexedArraySource(X, chunk_size, sample_weight=sample_weight)
    model = Lloyd(centres=centres, shift=shift)
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        updated = model.m_step(expected_stats(model, source))
        moved = float(np.square(updated.centres - model.centres).sum())
        model = updated
        if moved <= tol:
            break
    parts = [nearest(np.asarray(chunk) - shift, model.centres) for chunk in source]
    labels = np.concatenate([labels for labels, _ in parts])
    if sample_weight is None:
        inertia = float(sum(distances.sum(dtype=np.float64) for _, distances in parts))
    else:
        distances = np.concatenate([distances for _, distances in parts]).astype(np.float64)
        inertia = float(distances @ sample_weight)
    return LloydResult(model.centres, labels, inertia, n_iter)


def sklearn_kmeans_labels(
    X: np.ndarray, n_clusters: int, random_state: int | np.random.RandomState,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Labels of ``sklearn.cluster.KMeans(n_clusters, n_init=1, random_state)``, by emkit.

    The same k-means++ seeding (scikit-learn's own function, on the same centred
    data, drawing from the same RandomState) followed by emkit's Lloyd
    iterations with scikit-learn's defaults. A RandomState given is advanced
    exactly as scikit-learn's KMeans advances it. ``sample_weight``: weighted
    k-means (weighted seeding and Lloyd iterations, as scikit-learn's).
    """
    X = np.ascontiguousarray(X)  # scikit-learn's KMeans works on a C-ordered copy
    shift = X.mean(axis=0) if sample_weight is None else np.average(X, axis=0,
                                                                    weights=sample_weight)
    centres, _ = kmeans_plusplus(X - shift, n_clusters, random_state=random_state,
                                 sample_weight=sample_weight)
    tol = float(np.mean(np.var(X, axis=0)) * 1e-4)
    return lloyd(X, centres, shift=shift, tol=tol, max_iter=300,
                 sample_weight=sample_weight).labels


_PARAMETER_RULES = {
    "n_clusters": v.integer(1),
    "init": v.Rule(
        lambda i: (isinstance(i, str) and i in ("k-means++", "random")) or np.ndim(i) == 2,
        "'k-means++', 'random' or an array of shape (n_clusters, n_features)",
    ),
    "n_init": v.Rule(
        lambda n: n == "auto" or v.integer(1).accepts(n), "'auto' or an integer >= 1"
    ),
    "max_iter": v.integer(1),
    "tol": v.real(0.0),
    "random_state": v.RANDOM_STATE,
    "chunk_size": v.integer(1),
}


class KMeans(NoStandardErrors, ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin,
             BaseEstimator):
    """K-means clustering: hard EM with one shared spherical covariance and equal weights.

    ``standard_errors`` raises, saying why: k-means minimises a sum of squares,
    not a likelihood, so there is no information matrix to invert (fit
    ``GaussianMixture(covariance_type="EII")`` for a model with one).

    A drop-in for :class:`sklearn.cluster.KMeans` (Lloyd's algorithm): from the
    same initial centres it gives the same labels, centres and inertia. Each
    iteration is one pass over row chunks summing counts, coordinates and
    squared distances, so memory is bounded by ``chunk_size * n_clusters``.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : {"k-means++", "random"} or array of shape (n_clusters, n_features), \
default="k-means++"
        Initial centres: scikit-learn's k-means++ seeding, ``n_clusters``
        distinct random rows, or the given centres.
    n_init : "auto" or int, default="auto"
        Number of initialisations; the run with the lowest inertia is kept.
        ``"auto"``: 1 for k-means++ or an array, 10 for random. An array
        ``init`` runs once whatever ``n_init`` says (with a warning, as
        scikit-learn does).
    max_iter : int, default=300
        Maximum number of Lloyd iterations per initialisation.
    tol : float, default=1e-4
        Converged when the summed squared centre movement of an iteration is
        at most ``tol`` times the mean per-feature variance of the data
        (scikit-learn's rule).
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initialisations, exactly as scikit-learn does: one RandomState
        (``sklearn.utils.check_random_state``; a Generator seeds a new one)
        drawn from restart after restart, so the same seed gives the same
        centres as :class:`sklearn.cluster.KMeans`.
    chunk_size : int, default=4096
        Rows per chunk of each pass.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,), int32
        Nearest centre of each training row, after the last iteration.
    inertia_ : float
        Sum of squared distances of the training rows to their nearest centres.
    n_iter_ : int
        Lloyd iterations of the best run.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import KMeans
    >>> X = np.array([[1.0, 2.0], [1.0, 4.0], [1.0, 0.0],
    ...               [10.0, 2.0], [10.0, 4.0], [10.0, 0.0]])
    >>> km = KMeans(n_clusters=2, init=np.array([[0.0, 0.0], [9.0, 9.0]])).fit(X)
    >>> km.labels_
    array([0, 0, 0, 1, 1, 1], dtype=int32)
    >>> km.cluster_centers_
    array([[ 1.,  2.],
           [10.,  2.]])
    >>> float(km.inertia_)
    16.0
    """

    _no_standard_errors = (
        "k-means minimises a sum of squares, not a likelihood, so there is no observed "
        "information; GaussianMixture(covariance_type='EII') is its model with one"
    )

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        n_init: Any = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: Any = None,
        chunk_size: int = 4096,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.chunk_size = chunk_size

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> KMeans:
        """Cluster ``X`` (array-like of shape (n_samples, n_features)); ``y`` is ignored.

        ``sample_weight`` (n_samples,), optional: non-negative finite weights; a
        row of integer weight ``w`` counts as ``w`` copies of it (in the seeding
        too), zero leaves it out.
        """
        v.validate_params(self, _PARAMETER_RULES)
        X = v.check_finite(v.validated_data(self, X, dtype=[np.float64, np.float32], order="C"))
        if X.shape[0] < self.n_clusters:
            raise ValueError(
                f"n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}"
            )
        weights = v.check_sample_weight(sample_weight, X.shape[0])
        if weights is not None:
            weights = weights.astype(X.dtype)
        shift = X.mean(axis=0) if weights is None else np.average(X, axis=0, weights=weights)
        tol = float(np.mean(np.var(X, axis=0)) * self.tol)
        # scikit-learn's draws: one RandomState, advanced restart after restart.
        random_state = v.random_state_of(self.random_state)
        best = None
        for _ in range(self._n_init()):
            start = self._initial_centres(X, shift, random_state, weights)
            result = lloyd(
                X, start, shift=shift, tol=tol, max_iter=self.max_iter,
                chunk_size=self.chunk_size, sample_weight=weights,
            )
            # scikit-learn's rule: a lower inertia wins unless it is the same clustering.
            if best is None or (
                result.inertia < best.inertia and not _same_clustering(result, best)
            ):
                best = result
        self._set_fitted(best, shift)
        return self

    def _n_init(self) -> int:
        if not isinstance(self.init, str):
            if self.n_init not in ("auto", 1):
                warnings.warn(
                    "Explicit initial center position passed: performing only one init "
                    f"in KMeans instead of n_init={self.n_init}.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return 1
        if self.n_init == "auto":
            return 1 if self.init == "k-means++" else 10
        return self.n_init

    def _initial_centres(
        self, X: np.ndarray, shift: np.ndarray, random_state: np.random.RandomState,
        weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Starting centres, relative to ``shift``, drawn as scikit-learn's KMeans draws them."""
        if isinstance(self.init, str) and self.init == "k-means++":
            return kmeans_plusplus(X - shift, self.n_clusters, random_state=random_state,
                                   sample_weight=weights)[0]
        if isinstance(self.init, str):
            # scikit-learn draws with its (unit) sample weights as p, which numpy's
            # choice samples differently from p=None.
            if weights is None:
                weights = np.ones(X.shape[0], dtype=X.dtype)
            rows = random_state.choice(X.shape[0], size=self.n_clusters, replace=False,
                                       p=weights / weights.sum())
            return X[rows] - shift
        init = v.check_shape(self.init, (self.n_clusters, X.shape[1]), "init", X.dtype)
        return init - shift

    def _set_fitted(self, best: LloydResult, shift: np.ndarray) -> None:
        self.cluster_centers_ = best.centres + shift
        self.labels_ = best.labels
        self.inertia_ = best.inertia
        self.n_iter_ = best.n_iter
        self._n_features_out = self.n_clusters
        distinct = np.unique(best.labels).size
        if distinct < self.n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than n_clusters "
                f"({self.n_clusters}). Possibly due to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then return ``labels_``."""
        return self.fit(X).labels_

    def _validated(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "cluster_centers_")
        X = v.validated_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return v.check_finite(X)

    def predict(self, X: Any) -> np.ndarray:
        """Index of the nearest centre of each row, shape (n_samples,)."""
        X = self._validated(X)
        parts = [nearest(c, self.cluster_centers_)[0] for c in ArraySource(X, self.chunk_size)]
        return np.concatenate(parts)

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distance of each row to each centre, shape (n_samples, n_clusters)."""
        X = self._validated(X)
        centres = self.cluster_centers_
        parts = [
            np.sqrt(np.square(c[:, None, :] - centres[None, :, :]).sum(axis=2))
            for c in ArraySource(X, self.chunk_size)
        ]
        return np.concatenate(parts)

    def score(self, X: Any, y: Any = None) -> float:
        """Opposite of the inertia of ``X`` under the fitted centres (higher is better)."""
        X = self._validated(X)
        total = sum(
            nearest(c, self.cluster_centers_)[1].sum(dtype=np.float64)
            for c in ArraySource(X, self.chunk_size)
        )
        return -float(total)


def _same_clustering(a: LloydResult, b: LloydResult) -> bool:
    """Whether two labelings are equal up to a renaming of the clusters."""
    pairs = np.unique(np.stack([a.labels, b.labels]), axis=1)
    return pairs.shape[1] == np.unique(a.labels).size == np.unique(b.labels).size
