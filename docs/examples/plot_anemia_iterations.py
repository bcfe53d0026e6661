"""
Anemia: EM from a poor start, iteration by iteration
====================================================

Log red-cell volume against log hemoglobin for 300 people: a tight group of
controls and a spread-out group of anemia patients. EM starts with both means
in empty corners and broad covariances; the pictures show iterations 1, 3, 5,
10, 15 and 25, points coloured by their responsibilities, and the average
log-likelihood climbing at every iteration.
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.exceptions import ConvergenceWarning

from emkit.demos.gaussian import DEMOS
from emkit.plot import plot_history, plot_snapshots, record_fit

demo = DEMOS["anemia"]
X = demo.load()
estimator = demo.estimator(X).set_params(tol=0, max_iter=25)  # exactly 25 iterations
with warnings.catch_warnings():  # tol=0 never "converges": it runs all 25 iterations
    warnings.simplefilter("ignore", ConvergenceWarning)
    model, snapshots = record_fit(estimator, X)
grid = plot_snapshots(X, snapshots, iterations=(1, 3, 5, 10, 15, 25),
               feature_names=demo.feature_names)

# %%
# The climb: EM never lowers the log-likelihood. The first iteration, far
# below, is marked on the axis's edge so that the rest of the climb shows.
ax = plot_history(model)
ax.set_title("average log-likelihood per iteration")
plt.show()
