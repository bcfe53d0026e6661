"""Model-based hierarchical agglomeration under mclust's VVV model (Fraley 1998).

mclust starts every EM fit from the classification of a hierarchical
agglomeration (``hc(modelName = "VVV", use = "SVD")``): each row starts as its
own cluster, and at each step the two clusters whose merge lowers the
classification likelihood of a Gaussian mixture with free covariances least are
merged. A cluster ``C`` of ``n`` rows with scatter matrix ``W`` (sums of squares
and products around its mean) and trace ``T`` contributes

``n log(det(W / n) + (T + alpha) / n)``    (``n > p``),
``n log((T + alpha) / n)``                 (``n <= p``, where ``det`` is zero),

a regularised form of ``n log det(W / n)`` (the determinant alone is zero for
singletons and small clusters); ``alpha`` is the data's mean squared deviation
from their mean, ``trace(W_data) / (n p)``, as in mclust (``alpha = 1``,
``beta = 1``). A merge costs the term of the union minus the terms of its two
parts; the cheapest merge is made, ties going to the pair mclust's scan finds
last (clusters are kept in mclust's slot order: a merged pair lives in the
lower slot, the last slot moves into the upper one).

A quirk of mclust's, reproduced (``reproduce_mclust=True``, the default):
mclust's Fortran ``hcvvv`` (mclust 4.0 through 6.1.3) keeps each cluster's
scatter as an upper-triangular Cholesky factor ``R`` (``R.T @ R = W``) spread
over rows of its data, but after a merge it writes the factor's *first row* into
every storage row (``dcopy(p, r(1,1), p, x(l,1), n)`` where ``r(k,k)``, length
``p - k + 1``, was meant). Read back later, row ``k`` of a merged cluster's
factor is ``R[0, k:]``, so its stored scatter is
``S[i, j] = (min(i, j, m - 1) + 1) R[0, i] R[0, j]`` (0-based, with
``m = min(n - 1, p)`` stored rows), not ``W`` (the same when ``m = 1``: a merged
pair is stored exactly). Only the newest cluster's factor is still in memory, so mclust's merge
costs are those of the newest cluster (its ``W``) against every other (its
``S``); a merge of two older clusters (the cheapest pair not involving the
newest) rebuilds the union from both stored factors and keeps the listed cost
as the union's term. The merges differ from the criterion's own only once
clusters of three or more rows meet (on mclust's wreath data, at K = 3 and 2);
``reproduce_mclust=False`` agglomerates by the criterion itself.

The whole tree is built once (``n - 1`` merges) and cut at any number of
clusters (:meth:`HcTree.labels`), so a model selection over K = 1..9 shares it.

mclust's ``hc`` also takes an initial ``partition`` (clusters that start
whole, in the order of their first rows), whose documented default is
``dupPartition(data)``: identical rows start as one cluster. That default is
never used: ``hc`` passes on only the arguments its caller gave
(``match.call``), so ``hc(X)`` and ``mclustBIC``'s start begin with every row
alone, duplicates included (``tests/reference/mclust_hc_duplicates.R``), and so
does emkit's start. ``hc_vvv_tree(Z, partition=dup_partition(X))`` is mclust's
``hc(X, partition = dupPartition(X))``: each initial cluster's scatter is
stored exactly (mclust's set-up writes its factor correctly; the quirk begins
with the first merge).
Cost: ``O(n^2)`` memory (the pairwise merge costs) and ``O(n^2 p^3)`` time in
the worst case; :data:`emkit.estimators.initialization.HC_SUBSET` bounds ``n``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numba
import numpy as np

_RTHALF = 0.7071067811865476


@dataclass(frozen=True)
class HcTree:
    """The merges of an agglomeration of ``n_samples`` rows, first merge first.

    Attributes
    ----------
    merges : ndarray of shape (n_samples - 1, 2)
        Row indices naming the two clusters merged at each step (a cluster is
        named by one of its rows; the merged cluster keeps the first name).
    costs : ndarray of shape (n_samples - 1,)
        The criterion's change at each merge.
    """

    merges: np.ndarray
    costs: np.ndarray
    # Each row's initial cluster, named by its first row (None: every row starts alone).
    groups: np.ndarray | None = None

    @property
    def n_samples(self) -> int:
        return self.merges.shape[0] + 1 if self.groups is None else self.groups.shape[0]

    def labels(self, n_clusters: int) -> np.ndarray:
        """Cluster of each row (0..n_clusters-1, numbered by first row) after cutting.

        Examples
        --------
        >>> X = np.r_[np.zeros((3, 2)), np.ones((3, 2))] + np.arange(6)[:, None] * [0.01, 0.02]
        >>> hc_vvv_tree(X).labels(2).tolist()
        [0, 0, 0, 1, 1, 1]
        """
        start = self.merges.shape[0] + 1  # clusters before the first merge
        if not 1 <= n_clusters <= start:
            raise ValueError(f"n_clusters must be in 1..{start}, got {n_clusters}")
        parent = np.arange(self.n_samples) if self.groups is None else self.groups.copy()
        for a, b in self.merges[: start - n_clusters]:
            parent[b] = a
        # Names point at the cluster they joined; follow them to the surviving name.
        root = parent.copy()
        while True:
            nxt = parent[root]
            if np.array_equal(nxt, root):
                break
            root = nxt
        _, first, inverse = np.unique(root, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))  # numbered by their first row
        return order[inverse]


def hc_vvv_tree(Z: np.ndarray, *, reproduce_mclust: bool = True,
                partition: np.ndarray | None = None) -> HcTree:
    """Agglomerate the rows of ``Z`` under mclust's VVV criterion (module docstring).

    ``Z`` should already be transformed as the caller wants (mclust's start uses
    its "SVD" rows: :func:`emkit.estimators.initialization.mclust_svd_transform`).
    ``reproduce_mclust=True`` makes the merges mclust's ``hc`` makes, including its
    stored-factor quirk (module docstring); ``False`` makes each merge the cheapest
    by the criterion itself (``costs`` are then the criterion's exact changes).
    ``partition`` (one label per row): clusters to start from, as mclust's ``hc``
    argument of that name (e.g. :func:`dup_partition` of the data, identical rows
    together); the tree then cuts into at most as many clusters as it has.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.0, 0.0], [0.1, 0.3], [5.0, 5.0], [5.2, 4.9], [5.0, 5.0]])
    >>> tree = hc_vvv_tree(X, partition=dup_partition(X))
    >>> tree.merges.shape[0], tree.labels(2).tolist()   # 4 clusters to start: 3 merges
    (3, [0, 0, 0, 1, 1, 1])
    """
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    n, p = Z.shape
    groups = None if partition is None else _first_rows(partition, n)
    heads = np.arange(n) if groups is None else np.flatnonzero(groups == np.arange(n))
    if heads.size < 2:
        return HcTree(np.empty((0, 2), dtype=np.intp), np.empty(0), groups)
    alpha = float(np.square(Z - Z.mean(axis=0)).sum() / (n * p))
    alpha = max(alpha, np.finfo(float).eps)
    merges, costs = _agglomerate(*_initial_clusters(Z, groups, heads, alpha), alpha,
                                 bool(reproduce_mclust))
    return HcTree(heads[merges].astype(np.intp), costs, groups)


def dup_partition(X: np.ndarray) -> np.ndarray:
    """mclust's ``dupPartition``: identical rows share a label (1, 2, ... by first row).

    Examples
    --------
    >>> dup_partition(np.array([[1.0, 2.0], [0.0, 0.0], [1.0, 2.0], [3.0, 1.0]])).tolist()
    [1, 2, 1, 3]
    """
    X = np.asarray(X, dtype=np.float64)
    X = X.reshape(len(X), -1)
    _, first, inverse = np.unique(X, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # numbered by their first row
    return order[np.ravel(inverse)] + 1


def _first_rows(partition: np.ndarray, n: int) -> np.ndarray:
    """Each row's initial cluster, named by the cluster's first row."""
    partition = np.asarray(partition)
    if partition.shape != (n,):
        raise ValueError(f"partition must give one label per row ({n}), got shape "
                         f"{partition.shape}")
    _, first, inverse = np.unique(partition, return_index=True, return_inverse=True)
    return first[np.ravel(inverse)]


def _initial_clusters(Z: np.ndarray, groups: np.ndarray | None, heads: np.ndarray,
                      alpha: float) -> tuple:
    """Counts, means, scatters, traces and terms of the clusters before the first merge.

    In mclust's slot order (by first row). Every row alone: one row, no scatter,
    the term ``log(alpha)``; an initial cluster of several rows: its own scatter
    (exact, as mclust's set-up stores it) and term.
    """
    n, p = Z.shape
    if groups is None:
        return np.ones(n), Z.copy(), np.zeros((n, p, p)), np.zeros(n), np.full(n, np.log(alpha))
    slot_of = np.searchsorted(heads, groups)
    k = heads.size
    count = np.bincount(slot_of, minlength=k).astype(np.float64)
    mean = np.zeros((k, p))
    np.add.at(mean, slot_of, Z)
    mean /= count[:, None]
    centred = Z - mean[slot_of]
    scatter = np.zeros((k, p, p))
    np.add.at(scatter, slot_of, centred[:, :, None] * centred[:, None, :])
    trace = np.trace(scatter, axis1=1, axis2=2).copy()
    work = np.zeros((p, p))
    term = np.array([_term(count[c], p, scatter[c], trace[c], alpha, work) for c in range(k)])
    return count, mean, scatter, trace, term


_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 4


def cached_hc_vvv_tree(Z: np.ndarray) -> HcTree:
    """:func:`hc_vvv_tree`, remembered for the last few distinct ``Z`` (by content).

    A model selection (or any loop of fits with ``init_params="hc"``) cuts one
    tree at every number of components instead of rebuilding it per fit.
    """
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    key = (Z.shape, hashlib.blake2b(Z.tobytes(), digest_size=16).digest())
    tree = _CACHE.get(key)
    if tree is None:
        tree = hc_vvv_tree(Z)
        _CACHE[key] = tree
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return tree


@numba.njit(cache=True, nogil=True)
def _term(n: float, p: int, W: np.ndarray, trace: float, alpha: float,
          work: np.ndarray) -> float:
    """A cluster's contribution ``n log(det(W/n) + (T + alpha)/n)`` (module docstring)."""
    spread = (trace + alpha) / n
    if n <= p:
        return n * np.log(spread)
    if trace == 0.0:
        return n * np.log(alpha / n)
    # log det(W / n) by Cholesky; a zero (or rounded negative) pivot means det = 0.
    detlog = 0.0
    for i in range(p):
        for j in range(i + 1):
            s = W[i, j] / n
            for k in range(j):
                s -= work[i, k] * work[j, k]
            if i == j:
                if s <= 0.0:
                    return n * np.log(spread)
                work[i, i] = np.sqrt(s)
                detlog += np.log(s)
            else:
                work[i, j] = s / work[j, j]
    if detlog <= 0.0:
        return n * np.log(np.exp(detlog) + spread)
    return n * (np.log(1.0 + np.exp(-detlog) * spread) + detlog)


@numba.njit(cache=True, nogil=True)
def _union(a: int, b: int, scatter_a: np.ndarray, scatter_b: np.ndarray, count: np.ndarray,
           mean: np.ndarray, trace: np.ndarray, alpha: float, union: np.ndarray,
           work: np.ndarray) -> tuple:
    """Term and trace of the union of clusters ``a`` and ``b`` (scatters as given).

    The union's scatter is left in ``union``.
    """
    p = mean.shape[1]
    na, nb = count[a], count[b]
    n = na + nb
    f = na * nb / n
    for i in range(p):
        di = mean[a, i] - mean[b, i]
        for j in range(p):
            union[i, j] = scatter_a[i, j] + scatter_b[i, j] + f * di * (mean[a, j] - mean[b, j])
    if na == 1.0 and nb == 1.0:
        # Two rows: mclust's own arithmetic, so that equal distances tie as in mclust.
        t = 0.0
        for i in range(p):
            v = (mean[a, i] - mean[b, i]) * _RTHALF
            t += v * v
    else:
        t = trace[a] + trace[b]
        for i in range(p):
            t += f * (mean[a, i] - mean[b, i]) ** 2
    return _term(n, p, union, t, alpha, work), t


@numba.njit(cache=True, nogil=True)
def _store_as_mclust(W: np.ndarray, n: float, out: np.ndarray) -> None:
    """The scatter mclust reads back for a merged cluster of ``n`` rows (module docstring).

    Every stored row of its factor ``R`` (``R.T @ R = W``) is ``R``'s first row,
    read from column ``k`` on in row ``k``: ``out[i, j] = min(i, j, m - 1) + 1`` times
    ``R[0, i] R[0, j] = W[0, i] W[0, j] / W[0, 0]``, with ``m = min(n - 1, p)`` rows.
    (A zero ``W[0, 0]``, all rows sharing their first coordinate, stores zeros here;
    mclust's first row then depends on the order its rotations ran.)
    """
    p = W.shape[0]
    rows = min(int(n) - 1, p)
    for i in range(p):
        for j in range(p):
            if W[0, 0] > 0.0:
                out[i, j] = (min(i, j, rows - 1) + 1) * W[0, i] * W[0, j] / W[0, 0]
            else:
                out[i, j] = 0.0


@numba.njit(cache=True, nogil=True)
def _column_min(D: np.ndarray, c: int) -> tuple:
    """Smallest cost in column ``c`` over rows above it, the last row among ties."""
    best, arg = np.inf, -1
    for r in range(c):
        if D[r, c] <= best:
            best, arg = D[r, c], r
    return best, arg


@numba.njit(cache=True, nogil=True)
def _agglomerate(count: np.ndarray, mean: np.ndarray, scatter: np.ndarray,
                 trace: np.ndarray, term: np.ndarray, alpha: float, reproduce_mclust: bool):
    """The merges (by initial cluster) and their costs, from :func:`_initial_clusters`.

    ``scatter`` holds each cluster's scatter as mclust reads it back (with
    reproduce_mclust, the stored form of the module docstring); the newest
    cluster's own scatter is in ``newest``. The arrays are updated in place.
    """
    n, p = mean.shape
    newest = np.zeros((p, p))
    fresh = -1  # the newest cluster's name, none before the first merge
    union = np.empty((p, p))
    work = np.zeros((p, p))
    # D[i, j] (i < j): cost of merging the clusters in slots i and j.
    D = np.empty((n, n))
    slot = np.arange(n)  # cluster (row name) held by each slot
    for j in range(1, n):
        for i in range(j):
            D[i, j] = _union(i, j, scatter[i], scatter[j], count, mean, trace, alpha, union,
                             work)[0] - (term[i] + term[j])
    colmin = np.full(n, np.inf)
    colarg = np.full(n, -1)
    for c in range(1, n):
        colmin[c], colarg[c] = _column_min(D, c)
    merges = np.empty((n - 1, 2), dtype=np.int64)
    costs = np.empty(n - 1)
    m = n
    for step in range(n - 1):
        # The cheapest pair; among ties the last column, then the last row (mclust's scan).
        best, jopt = np.inf, -1
        for c in range(1, m):
            if colmin[c] <= best:
                best, jopt = colmin[c], c
        iopt = colarg[jopt]
        a, b = slot[iopt], slot[jopt]
        merges[step, 0], merges[step, 1] = a, b
        costs[step] = best
        # The union's statistics replace a's.
        if reproduce_mclust and fresh != -1 and fresh != a and fresh != b:
            # Two older clusters: mclust rebuilds the union from both stored factors and
            # keeps the listed cost as its term (module docstring).
            trace[a] = _union(a, b, scatter[a], scatter[b], count, mean, trace, alpha, union,
                              work)[1]
            term[a] = best + (term[a] + term[b])
        else:
            term[a], trace[a] = _union(a, b, newest if fresh == a else scatter[a],
                                       newest if fresh == b else scatter[b], count, mean, trace,
                                       alpha, union, work)
        na, nb = count[a], count[b]
        for i in range(p):
            mean[a, i] = (na * mean[a, i] + nb * mean[b, i]) / (na + nb)
            for j in range(p):
                newest[i, j] = union[i, j]
        count[a] = na + nb
        fresh = a
        if reproduce_mclust:
            _store_as_mclust(newest, count[a], scatter[a])
        else:
            scatter[a] = newest
        # The last slot moves into jopt's.
        last = m - 1
        if jopt != last:
            slot[jopt] = slot[last]
            for r in range(jopt):
                D[r, jopt] = D[r, last]
            for c in range(jopt + 1, last):
                D[jopt, c] = D[c, last]
        m -= 1
        # Costs of the new cluster against every other.
        for r in range(m):
            if r == iopt:
                continue
            c = slot[r]
            cost = _union(c, a, scatter[c], newest, count, mean, trace, alpha, union,
                          work)[0] - (term[c] + term[a])
            if r < iopt:
                D[r, iopt] = cost
            else:
                D[iopt, r] = cost
        # Column minima: recompute the columns that lost their minimum or changed wholesale.
        for c in range(1, m):
            if c == iopt or c == jopt or colarg[c] == iopt or colarg[c] == jopt:
                colmin[c], colarg[c] = _column_min(D, c)
                continue
            for r in (iopt, jopt):
                if r < c:
                    value = D[r, c]
                    if value < colmin[c] or (value == colmin[c] and r > colarg[c]):
                        colmin[c], colarg[c] = value, r
    return merges, costs
