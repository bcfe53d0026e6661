"""
Responsibilities: how EM shares a point between components
==========================================================

A mixture's responsibility of component k for a point x is the posterior
probability that k made it: its weighted density over the sum of all of them.
Far from the overlap one component takes the point; in the overlap the point is
shared, and EM's M-step counts it in both, in proportion.
"""

import matplotlib.pyplot as plt
import numpy as np

from emkit import GaussianMixture

rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(0.0, 1.0, 600), rng.normal(3.0, 0.7, 400)])[:, None]
gm = GaussianMixture(2, random_state=0).fit(X)
grid = np.linspace(-4, 6, 400)[:, None]
resp = gm.predict_proba(grid)
order = np.argsort(gm.means_[:, 0])

fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True, layout="constrained")
top.hist(X[:, 0], bins=60, density=True, color="0.85")
top.plot(grid[:, 0], np.exp(gm.score_samples(grid)), color="k", label="mixture density")
top.legend()
for k in order:
    bottom.plot(grid[:, 0], resp[:, k], label=f"component with mean {gm.means_[k, 0]:.2f}")
bottom.set(xlabel="x", ylabel="responsibility")
bottom.legend()
plt.show()
