"""Starting responsibilities for a mixture fit: scikit-learn's draws, from the same RandomState.

Every method draws from one ``numpy.random.RandomState`` in scikit-learn's order
(``sklearn.mixture.GaussianMixture._initialize_parameters``), through
scikit-learn's own seeding functions where it has them, so that the same
``random_state`` gives the same start as ``sklearn.mixture.GaussianMixture``,
restart after restart. ``"hc"`` is mclust's start instead: deterministic
model-based hierarchical agglomeration under VVV (:func:`hc_labels`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import AgglomerativeClustering, kmeans_plusplus

from emkit.estimators.hierarchical import cached_hc_vvv_tree
from emkit.estimators.kmeans import sklearn_kmeans_labels

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data", "hc")
# Rows the hierarchical start agglomerates at most (mclust.options("subset")); the
# others join the nearest of the clusters found.
HC_SUBSET = 2000


def initial_resp(
    X: np.ndarray, n_components: int, method: str, random_state: np.random.RandomState | None,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Responsibilities (n_samples, n_components) to start EM from.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_components : int
    method : {"kmeans", "k-means++", "random", "random_from_data"}
        ``kmeans``: one-hot labels of a k-means fit (emkit's, identical to
        ``sklearn.cluster.KMeans(n_components, n_init=1, random_state=random_state)``);
        ``k-means++``: one-hot at the k-means++ seeds (``sklearn.cluster.kmeans_plusplus``);
        ``random``: uniform random, normalised; ``random_from_data``: one-hot at
        randomly chosen rows; ``hc``: one-hot labels of :func:`hc_labels`
        (no draws unless there are more than :data:`HC_SUBSET` rows).
    random_state : numpy RandomState or None
        Advanced by exactly the draws scikit-learn makes for the same method
        (see :func:`emkit.data._validation.random_state_of`). None only for
        ``hc`` on at most :data:`HC_SUBSET` rows, which draws nothing.
    sample_weight : ndarray of shape (n_samples,), optional
        Row weights: k-means and k-means++ are weighted, ``random_from_data``
        draws rows with probability proportional to their weight (never a row
        of weight zero). The responsibilities themselves are not weighted.
    """
    n_samples = X.shape[0]
    resp = np.zeros((n_samples, n_components), dtype=X.dtype)
    if method == "kmeans":
        labels = sklearn_kmeans_labels(X, n_components, random_state, sample_weight)
        resp[np.arange(n_samples), labels] = 1
    elif method == "k-means++":
        _, indices = kmeans_plusplus(X, n_components, random_state=random_state,
                                     sample_weight=sample_weight)
        resp[indices, np.arange(n_components)] = 1
    elif method == "random":
        resp[:] = random_state.uniform(size=(n_samples, n_components))
        resp /= resp.sum(axis=1)[:, np.newaxis]
    elif method == "hc":
        resp[np.arange(n_samples), mclust_start_labels(X, n_components, random_state)] = 1
    elif method == "random_from_data":
        p = None if sample_weight is None else sample_weight / sample_weight.sum()
        indices = random_state.choice(n_samples, size=n_components, replace=False, p=p)
        resp[indices, np.arange(n_components)] = 1
    else:
        raise ValueError(f"init_params must be one of {INIT_METHODS}, got {method!r}")
    return resp


def aligned_to_labels(resp: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Starting responsibilities with known rows one-hot at their label, the rest renamed to match.

    An unsupervised start numbers its components arbitrarily; semi-supervised
    EM from it would keep the few known rows in components that hold the other
    class's unknown rows (label switching). So the start's components are first
    renamed to agree best with the known rows (an assignment problem on the
    responsibilities they give each label), then the known rows are set one-hot.
    """
    if labels is None:
        return resp
    known = labels >= 0
    if not known.any():
        return resp
    n_components = resp.shape[1]
    agreement = np.zeros((n_components, n_components))
    np.add.at(agreement.T, labels[known], resp[known])  # [component, label]
    components, wanted = linear_sum_assignment(agreement, maximize=True)
    order = np.empty(n_components, dtype=np.intp)
    order[wanted] = components
    resp = resp[:, order]
    resp[known] = 0
    resp[np.flatnonzero(known), labels[known]] = 1
    return resp


def mclust_start_labels(
    X: np.ndarray, n_components: int, random_state: np.random.RandomState | None = None,
) -> np.ndarray:
    """The starting partition ``mclustBIC`` makes for ``init_params="hc"``.

    One feature: :func:`quantile_labels` (mclust agglomerates nothing in one
    dimension); no more rows than features: agglomeration under EII (VVV's criterion
    needs more rows than features); otherwise under VVV (:func:`hc_labels`).
    """
    n_samples, n_features = X.shape
    if n_features == 1:
        return quantile_labels(X[:, 0], n_components)
    model = "EII" if n_samples <= n_features else "VVV"
    return hc_labels(X, n_components, random_state, model=model)


def quantile_labels(x: np.ndarray, n_components: int) -> np.ndarray:
    """mclust's one-feature start (its ``qclass``): classes between quantiles of ``x``.

    The ``n_components + 1`` cut points are quantiles at equal probability steps
    (linear interpolation, R's default type 7, as numpy's); with ties, more steps
    are taken until that many distinct cut points exist, then the left ends of
    the narrowest gaps are dropped. A class between two cut points may be empty
    when ties are heavy, as in mclust.

    Examples
    --------
    >>> quantile_labels(np.array([5.0, 1.0, 2.0, 9.0, 7.0, 3.0]), 2).tolist()
    [1, 0, 0, 1, 1, 0]
    """
    x = np.asarray(x, dtype=np.float64)
    eps = x.std(ddof=1) * np.sqrt(np.finfo(np.float64).eps) if x.size > 1 else 0.0
    n_steps = n_components + 1
    cuts = np.unique(np.quantile(x, np.linspace(0, 1, n_steps)))
    if n_components == 1:
        return np.zeros(x.size, dtype=np.intp)
    if np.ptp(x) == 0:
        raise ValueError(f"x holds one distinct value; it cannot be cut into "
                         f"{n_components} quantile classes")
    # Interpolated quantiles of two or more distinct values eventually give enough
    # distinct cut points (mclust loops until they do).
    while cuts.size < n_components + 1:
        n_steps += 1
        cuts = np.unique(np.quantile(x, np.linspace(0, 1, n_steps)))
    surplus = cuts.size - n_components - 1
    if surplus:
        narrowest = np.argsort(np.diff(cuts), kind="stable")[:surplus]
        cuts = np.delete(cuts, narrowest)
    cuts[0], cuts[-1] = x.min() - eps, x.max() + eps
    # Class i holds cuts[i] <= x < cuts[i + 1].
    return np.searchsorted(cuts, x, side="right") - 1


def hc_labels(
    X: np.ndarray, n_components: int, random_state: np.random.RandomState | None = None,
    model: str = "VVV",
) -> np.ndarray:
    """Labels of a model-based hierarchical agglomeration, mclust's start.

    The rows are first transformed as mclust's default ``hcUse = "SVD"`` does
    (standardised, rotated onto their singular vectors and each direction
    divided by the square root of its singular value), then agglomerated as
    mclust's default ``hc(modelName = "VVV")`` does (Fraley 1998; see
    :mod:`emkit.estimators.hierarchical`): each merge is the one that lowers the
    classification likelihood of a mixture with free covariances least, with
    mclust's stored-factor quirk (:mod:`emkit.estimators.hierarchical`). The
    partitions are mclust's own (``tests/reference/mclust_hc.R``: the same
    partitions for K = 1..9 on its 14 data sets). Where the columns are
    linearly dependent (a duplicated column, one the sum of others), directions
    of singular value below 1e-12 of the largest are dropped; mclust keeps and
    scales up their rounding noise, so its partitions of such data can differ. The tree
    of the same rows is built once and cut at each ``n_components`` (it is
    remembered by content), so fits over K = 1..9 share it, as mclust's do.
    ``model="EII"`` agglomerates by Ward's criterion instead (mclust's ``EII``).

    Deterministic; beyond :data:`HC_SUBSET` rows (mclust's ``subset`` option) a
    uniform subset (drawn from ``random_state``) is agglomerated and the other
    rows join the cluster with the nearest centre in the transformed space.

    Examples
    --------
    >>> X = np.r_[np.zeros((3, 2)), np.ones((3, 2))] + np.arange(6)[:, None] * [0.01, 0.02]
    >>> hc_labels(X, 2).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    if model not in ("VVV", "EII"):
        raise ValueError(f"model must be 'VVV' or 'EII', got {model!r}")
    if X.shape[0] and not np.ptp(X, axis=0).any():
        # Every column constant: the transform keeps no direction to agglomerate in
        # (mclust's hc stops there too); as quantile_labels for one constant feature.
        if n_components == 1:
            return np.zeros(X.shape[0], dtype=np.intp)
        raise ValueError(f"X holds one distinct row; it cannot be agglomerated into "
                         f"{n_components} classes")
    if X.shape[0] <= HC_SUBSET:  # no draws: the labels depend on the rows alone
        key = (X.shape, str(X.dtype), hashlib.blake2b(np.ascontiguousarray(X).tobytes(),
                                                      digest_size=16).digest(),
               n_components, model)
        labels = _HC_LABELS.get(key)
        if labels is None:
            labels = _hc_labels(X, n_components, random_state, model)
            _HC_LABELS[key] = labels
            while len(_HC_LABELS) > _HC_LABELS_SIZE:
                _HC_LABELS.popitem(last=False)
        return labels.copy()
    return _hc_labels(X, n_components, random_state, model)


# hc labels of the last few (rows, n_components, model): a selection over 14 models
# asks for each number of components 14 times.
_HC_LABELS: OrderedDict = OrderedDict()
_HC_LABELS_SIZE = 64


def _hc_labels(X: np.ndarray, n_components: int, random_state: np.random.RandomState | None,
               model: str) -> np.ndarray:
    Z = mclust_svd_transform(X)
    n_samples = Z.shape[0]
    subset = None
    if n_samples > HC_SUBSET:
        rng = random_state if random_state is not None else np.random.RandomState(0)
        subset = rng.choice(n_samples, size=HC_SUBSET, replace=False)
    rows = Z if subset is None else Z[subset]
    if model == "EII":
        labels = AgglomerativeClustering(n_clusters=n_components, linkage="ward").fit_predict(
            rows)
    else:
        labels = cached_hc_vvv_tree(rows).labels(n_components)
    if subset is None:
        return labels
    centres = np.stack([rows[labels == k].mean(axis=0) for k in range(n_components)])
    distances = (np.square(Z).sum(axis=1)[:, None] - 2 * Z @ centres.T
                 + np.square(centres).sum(axis=1)[None, :])
    out = distances.argmin(axis=1)
    out[subset] = labels
    return out


def mclust_svd_transform(X: np.ndarray) -> np.ndarray:
    """mclust's ``hc(use = "SVD")`` rows: ``scale(X) V diag(1 / sqrt(d))``."""
    X = np.asarray(X, dtype=np.float64)
    centred = X - X.mean(axis=0)
    scale = centred.std(axis=0, ddof=1) if X.shape[0] > 1 else np.ones(X.shape[1])
    # A constant column carries no information (mclust drops it; here it stays zero).
    standardised = centred / np.where(scale > 0, scale, 1.0)
    _, singular, vt = np.linalg.svd(standardised, full_matrices=False)
    keep = singular > singular.max() * 1e-12 if singular.size else singular > 0
    return (standardised @ vt[keep].T) / np.sqrt(singular[keep])
