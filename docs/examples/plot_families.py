"""
Mixtures of other families: counts
==================================

``MixtureModel`` fits a mixture of any family the same way: the E-step weighs
each row by each component's density, the M-step is each family's weighted
maximum likelihood. Here, visits per day from two kinds of customers, a
mixture of two Poisson distributions.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import poisson

from emkit import MixtureModel
from emkit.distributions import Poisson

rng = np.random.default_rng(0)
counts = np.concatenate([rng.poisson(2.0, 700), rng.poisson(9.0, 300)])[:, None].astype(float)
model = MixtureModel(Poisson(1.0), n_components=2, n_init=3, random_state=0).fit(counts)
rates = [float(np.ravel(c.rate)[0]) for c in model.components_]
print("rates", np.round(rates, 2), "weights", np.round(model.weights_, 2))

k = np.arange(0, 21)
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.hist(counts[:, 0], bins=np.arange(-0.5, 21.5), density=True, color="0.8", label="data")
mixture = sum(w * poisson.pmf(k, r) for w, r in zip(model.weights_, rates, strict=True))
ax.plot(k, mixture, marker="o", label="fitted mixture")
for w, r in zip(model.weights_, rates, strict=True):
    ax.plot(k, w * poisson.pmf(k, r), linestyle="--", label=f"weight {w:.2f}, rate {r:.2f}")
ax.set(xlabel="visits per day", ylabel="probability")
ax.legend()
plt.show()
