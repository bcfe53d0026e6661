"""
Stochastic EM's wandering path
==============================

Stochastic EM draws each point's component from its responsibilities instead
of weighting by them. Its log-likelihood does not climb steadily: it wanders
around the optimum, which lets it leave poor saddle points and shallow maxima.
emkit runs ``max_iter`` iterations and keeps the best parameters seen.
"""

import matplotlib.pyplot as plt

from emkit import GaussianMixture
from emkit.datasets import load_faithful
from emkit.plot import plot_history

X = load_faithful()
soft = GaussianMixture(2, random_state=0, tol=1e-6).fit(X)
sem = GaussianMixture(2, algorithm="stochastic", random_state=0, max_iter=60).fit(X)

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
plot_history(soft, ax=ax, label="soft EM")
plot_history(sem, ax=ax, label="stochastic EM")
ax.set_title("Old Faithful, two components")
print(f"soft EM: {soft.lower_bound_:.4f}; stochastic EM, best seen: {sem.lower_bound_:.4f}")
plt.show()
