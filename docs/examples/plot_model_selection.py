"""
Choosing K and the covariance model
===================================

``select_model`` fits every candidate (numbers of components times covariance
types), scores them by BIC (or AIC, ICL) and keeps the best non-degenerate fit.
On Old Faithful the choice is three components sharing one covariance
(mclust's EEE).
"""

import matplotlib.pyplot as plt

from emkit import select_model
from emkit.datasets import load_faithful
from emkit.plot import plot_mixture, plot_selection

X = load_faithful()
result = select_model(X, n_components=range(1, 5), random_state=0)
print(result.table.sort_values("bic").head())

fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
plot_selection(result.table, ax=axes[0])
best = result.best_estimator
plot_mixture(X, best, ax=axes[1], feature_names=["eruption (min)", "waiting (min)"],
             title=f"best by BIC: {best.n_components} components, {best.covariance_type}")
plt.show()
