"""
k-means against EM on the same data
===================================

k-means is hard EM for spherical clusters of one common spread: each point goes
wholly to the nearest centre. Where clusters have unequal spreads, or are
elongated, the nearest centre is the wrong answer, and a Gaussian mixture fitted
by EM (full covariances, soft responsibilities) recovers the groups.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import adjusted_rand_score

from emkit import GaussianMixture, KMeans
from emkit.plot import plot_mixture

rng = np.random.default_rng(0)
unequal = np.vstack([rng.normal([0, 0], 0.3, (150, 2)), rng.normal([2.2, 0], 1.6, (150, 2))])
turn = np.array([[1.0, 0.0], [0.0, 0.12]])
elongated = np.vstack([rng.normal(size=(150, 2)) @ turn * 3 + [0, 0],
                       rng.normal(size=(150, 2)) @ turn * 3 + [0, 1.0]])
truth = np.repeat([0, 1], 150)

fig, axes = plt.subplots(2, 2, figsize=(9, 8), layout="constrained")
for row, (name, X) in enumerate([("unequal spreads", unequal), ("elongated", elongated)]):
    km = KMeans(n_clusters=2, n_init=5, random_state=0).fit(X)
    gm = GaussianMixture(2, covariance_type="full", n_init=5, random_state=0).fit(X)
    axes[row, 0].scatter(X[:, 0], X[:, 1], c=km.labels_, s=8, cmap="coolwarm")
    axes[row, 0].scatter(*km.cluster_centers_.T, marker="x", s=80, color="k")
    axes[row, 0].set_title(f"k-means, {name}: ARI {adjusted_rand_score(truth, km.labels_):.2f}")
    plot_mixture(X, gm, ax=axes[row, 1],
                 title=f"EM, {name}: ARI {adjusted_rand_score(truth, gm.predict(X)):.2f}")
plt.show()
