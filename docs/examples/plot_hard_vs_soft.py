"""
Hard EM against soft EM
=======================

Hard (classification) EM gives each point wholly to its most likely component
before the M-step. It is faster to settle, but where components overlap it
cuts each one's tails off, so its means are pushed apart and its variances
shrink. Soft EM keeps the overlap, and its estimates are consistent.
"""

import matplotlib.pyplot as plt
import numpy as np

from emkit import GaussianMixture

rng = np.random.default_rng(1)
X = np.concatenate([rng.normal(-1.0, 1.0, 3000), rng.normal(1.0, 1.0, 3000)])[:, None]

fits = {name: GaussianMixture(2, algorithm=name, random_state=0).fit(X)
        for name in ("em", "hard")}
grid = np.linspace(-5, 5, 400)[:, None]
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.hist(X[:, 0], bins=80, density=True, color="0.85", label="data (true means -1, 1)")
for name, gm in fits.items():
    means = np.sort(gm.means_[:, 0])
    ax.plot(grid[:, 0], np.exp(gm.score_samples(grid)),
            label=f"{'soft' if name == 'em' else 'hard'} EM: means {means[0]:.2f}, {means[1]:.2f}")
    variances = np.sort(gm.covariances_.ravel())
    print(f"{name:>4}: means {means.round(3)}, variances {variances.round(3)}")
ax.set(xlabel="x", ylabel="density")
ax.legend(fontsize=8)
plt.show()
