"""
Scaling out: files in chunks and online EM
==========================================

Every way of fitting produces the same additive sufficient statistics. A file
read chunk by chunk gives the same fit as the rows in memory (to rounding); online
EM (``partial_fit``) blends the statistics of batches as they arrive and
approaches the batch fit.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from emkit import GaussianMixture, sources

rng = np.random.default_rng(0)
X = np.vstack([rng.normal([0, 0], 0.5, (6000, 2)), rng.normal([3, 2], 0.8, (4000, 2))])
start = {"weights_init": [0.5, 0.5], "means_init": [[0.5, 0.5], [2.5, 1.5]],
         "precisions_init": np.stack([np.eye(2), np.eye(2)])}

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "rows.npy"
    np.save(path, X)
    streamed = GaussianMixture(2, **start).fit(sources.open(path, chunk_size=1000))
in_memory = GaussianMixture(2, **start).fit(X)
print("largest difference in the means, streamed vs in memory:",
      f"{np.abs(streamed.means_ - in_memory.means_).max():.1e}")

online = GaussianMixture(2, random_state=0)
distance = []
for batch in np.array_split(rng.permutation(X), 50):
    online.partial_fit(batch)
    if hasattr(online, "means_"):
        order = np.argsort(online.means_[:, 0])
        distance.append(np.abs(online.means_[order] - in_memory.means_[
            np.argsort(in_memory.means_[:, 0])]).max())

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.semilogy(np.arange(50 - len(distance) + 1, 51), distance, marker=".")
ax.set(xlabel="batches seen (200 rows each)", ylabel="largest difference from the batch means",
       title="online EM approaches the batch fit")
plt.show()
