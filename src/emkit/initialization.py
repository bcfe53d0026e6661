"""Starting responsibilities for a mixture fit."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import kmeans_plusplus

from emkit.kmeans import sklearn_kmeans_labels

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")


def initial_resp(
    X: np.ndarray, n_components: int, method: str, rng: np.random.Generator
) -> np.ndarray:
    """Responsibilities (n_samples, n_components) to start EM from.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_components : int
    method : {"kmeans", "k-means++", "random", "random_from_data"}
        ``kmeans``: one-hot labels of a k-means fit (emkit's, identical to
        ``sklearn.cluster.KMeans(n_init=1)`` with the same seed); ``k-means++``: one-hot at
        the k-means++ seeds; ``random``: uniform random, normalised;
        ``random_from_data``: one-hot at randomly chosen rows.
    rng : numpy Generator
    """
    n_samples = X.shape[0]
    resp = np.zeros((n_samples, n_components), dtype=X.dtype)
    seed = int(rng.integers(0, 2**31 - 1))
    if method == "kmeans":
        labels = sklearn_kmeans_labels(X, n_components, seed)
        resp[np.arange(n_samples), labels] = 1
    elif method == "k-means++":
        _, indices = kmeans_plusplus(X, n_components, random_state=seed)
        resp[indices, np.arange(n_components)] = 1
    elif method == "random":
        resp[:] = rng.uniform(size=(n_samples, n_components))
        resp /= resp.sum(axis=1, keepdims=True)
    elif method == "random_from_data":
        indices = rng.choice(n_samples, size=n_components, replace=False)
        resp[indices, np.arange(n_components)] = 1
    else:
        raise ValueError(f"init_params must be one of {INIT_METHODS}, got {method!r}")
    return resp
