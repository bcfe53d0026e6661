"""Starting responsibilities for a mixture fit: scikit-learn's draws, from the same RandomState.

Every method draws from one ``numpy.random.RandomState`` in scikit-learn's order
(``sklearn.mixture.GaussianMixture._initialize_parameters``), through
scikit-learn's own seeding functions where it has them, so that the same
``random_state`` gives the same start as ``sklearn.mixture.GaussianMixture``,
restart after restart.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import kmeans_plusplus

from emkit.estimators.kmeans import sklearn_kmeans_labels

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")


def initial_resp(
    X: np.ndarray, n_components: int, method: str, random_state: np.random.RandomState,
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
        randomly chosen rows.
    random_state : numpy RandomState
        Advanced by exactly the draws scikit-learn makes for the same method
        (see :func:`emkit.data._validation.random_state_of`).
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
