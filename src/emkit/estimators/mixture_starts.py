"""Automatic starts of a :class:`emkit.MixtureModel`: components fitted to a partition of the rows.

EM cannot separate components that start identical (every row gives each the
same responsibility, so they stay identical), and a hand-written start is one
guess. These starts partition the rows, by k-means or at random, and run each
component's own M-step on its part, so every family (counts, categories,
binary features, products of these) gets distinct, data-driven starts.

The partition is softened before the M-step: each row gives ``1 - SPREAD`` of
its weight to its own part and ``SPREAD`` evenly to all. A hard partition
often puts a probability at exactly 0 or 1 (a part whose rows all have a 1 in
some column), and EM never leaves such a boundary; the spread keeps every
component's parameters inside the support of every row.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from emkit.data.sources import ArraySource
from emkit.estimators.initialization import aligned_to_labels
from emkit.estimators.kmeans import KMeans
from emkit.latent.mixture import Mixture

INIT_PARAMS = ("kmeans", "random")

# Share of each row's weight spread over all components in an automatic start.
SPREAD = 0.1


def partition_start(
    mixture: Mixture, source: ArraySource, labels: np.ndarray, *, fit_weights: bool,
    spread: float = 0.0,
) -> Mixture:
    """Each component's M-step on the rows labelled with it.

    ``spread`` of every row's weight goes evenly to all components (see the
    module docstring). With ``fit_weights`` the weights become the parts'
    shares of the rows (an empty part a negligible, non-zero one); otherwise
    ``mixture``'s weights stay. A source with ``sample_weight`` weighs its rows;
    one with ``labels`` puts its known rows wholly in their component.
    """
    n_samples, n_components = source.X.shape[0], len(mixture.weights)
    row_weight = getattr(source, "sample_weight", None)
    known = getattr(source, "labels", None)
    if known is not None:  # rename the parts to agree with the known rows, then pin them
        labels = aligned_to_labels(np.eye(n_components)[labels], known).argmax(axis=1)
    one_hot = (1.0 - spread) * np.eye(n_components) + spread / n_components
    family = mixture.components

    def resp(start: int, stop: int) -> np.ndarray:
        part = one_hot[labels[start:stop]]
        if known is not None:  # known rows: no spread
            part[known[start:stop] >= 0] = np.eye(n_components)[known[start:stop][
                known[start:stop] >= 0]]
        return part if row_weight is None else part * row_weight[start:stop, None]

    total = sum(
        family.stats(np.asarray(chunk), resp(start, start + len(chunk)))
        for start, chunk in zip(range(0, n_samples, source.chunk_size), source, strict=True)
    )
    weights = mixture.weights
    if fit_weights:
        counts = np.bincount(labels, weights=row_weight, minlength=n_components)
        counts = counts + 10 * np.finfo(np.float64).eps
        weights = counts / counts.sum()
    return replace(mixture, weights=weights, components=family.from_stats(total))


def random_labels(n_samples: int, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Each row to a uniformly random component, every component getting at least one row."""
    labels = rng.integers(n_components, size=n_samples)
    seeded = min(n_components, n_samples)
    labels[rng.choice(n_samples, size=seeded, replace=False)] = np.arange(seeded)
    return labels


def kmeans_labels(
    X: np.ndarray, n_components: int, rng: np.random.Generator, chunk_size: int,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """k-means (k-means++ seeding) labels of the standardised rows.

    Columns are scaled to unit variance first, so that counts, categories and
    measurements in one row weigh alike; missing values (NaN) are put at the
    column mean, which is where they move no row.
    """
    mean = np.nanmean(X, axis=0)
    scale = np.nanstd(X, axis=0)
    scale[~(scale > 0)] = 1.0
    Z = (X - mean) / scale
    Z[np.isnan(Z)] = 0.0
    seed = int(rng.integers(2**31 - 1))
    km = KMeans(n_components, n_init=1, random_state=seed, chunk_size=chunk_size).fit(
        Z, sample_weight=sample_weight)
    return km.labels_.astype(np.intp)


def automatic_start(
    mixture: Mixture, source: ArraySource, init_params: str, rng: np.random.Generator,
    *, fit_weights: bool,
) -> Mixture:
    """A start from a k-means or random partition of ``source``'s rows (see the module)."""
    n_samples, n_components = source.X.shape[0], len(mixture.weights)
    if n_samples < n_components:
        raise ValueError(
            f"n_components={n_components} automatic starts need at least as many rows, "
            f"got {n_samples}"
        )
    if init_params == "kmeans":
        labels = kmeans_labels(source.X, n_components, rng, source.chunk_size,
                               getattr(source, "sample_weight", None))
    else:
        labels = random_labels(n_samples, n_components, rng)
    return partition_start(mixture, source, labels, fit_weights=fit_weights, spread=SPREAD)
