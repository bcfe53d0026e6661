"""
The two coins: one E-step, then ten
===================================

Two coins A and B of unknown bias; five sets of ten tosses, each set made with
one coin (Do and Batzoglou, 2008). Had we seen which coin made each set, each
bias would be heads over flips. With the coins hidden, EM's E-step credits every
set to both coins in proportion to how likely each coin makes it, and the
M-step takes credited heads over credited flips.
"""

# %%
# The E-step table of the first iteration, from the start 0.6 and 0.5
# ---------------------------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np

from emkit.datasets import load_coins
from emkit.demos.coins import biases, coin_mixture, credit_table, m_step_line

data = load_coins()
mixture = coin_mixture(data.n_tosses)  # Binomial(10, 0.6) and Binomial(10, 0.5), prior 1/2
resp = np.exp(mixture.log_resp(data.X)[0])
mixture = mixture.m_step(mixture.e_step(data.X))
print("\n".join(credit_table(data, resp)))
print(m_step_line(data, resp, biases(mixture.components)))

# %%
# Ten iterations: the biases climb to about 0.80 and 0.52
# -------------------------------------------------------
path = [(0.6, 0.5), biases(mixture.components)]
for _ in range(9):
    mixture = mixture.m_step(mixture.e_step(data.X))
    path.append(biases(mixture.components))
path = np.array(path)

fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
ax.plot(path[:, 0], marker="o", label=r"$\theta_A$")
ax.plot(path[:, 1], marker="s", label=r"$\theta_B$")
ax.axhline(0.8, color="0.6", linestyle=":", label="known coins: A")
ax.axhline(0.45, color="0.6", linestyle="--", label="known coins: B")
ax.set(xlabel="iteration", ylabel="bias", title="EM on the two coins")
ax.legend()
print(f"after 10 iterations: theta_A = {path[-1, 0]:.2f}, theta_B = {path[-1, 1]:.2f}")
