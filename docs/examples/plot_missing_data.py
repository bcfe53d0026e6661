"""
EM with missing data, against scikit-learn's imputers
=====================================================

With values missing at random, EM's E-step uses each row's observed
coordinates (the marginal of each Gaussian) and fills the sufficient
statistics with conditional expectations. The fitted mixture then fills each
gap with its conditional mean. Mean imputation ignores how the columns move
together; a regression imputer fits one line through both clusters (here their
slopes cancel, so it does no better than the mean).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, SimpleImputer

from emkit import GaussianMixtureImputer

rng = np.random.default_rng(0)
covs = [np.array([[1.0, 0.9], [0.9, 1.0]]), np.array([[1.0, -0.8], [-0.8, 1.0]])]
X = np.vstack([rng.multivariate_normal([-3, 0], covs[0], 400),
               rng.multivariate_normal([3, 0], covs[1], 400)])
gaps = rng.random(X.shape[0]) < 0.3          # 30% of rows lose their second column
X_missing = X.copy()
X_missing[gaps, 1] = np.nan

imputers = {
    "mean (SimpleImputer)": SimpleImputer(),
    "regression (IterativeImputer)": IterativeImputer(random_state=0),
    "EM mixture (GaussianMixtureImputer)": GaussianMixtureImputer(2, random_state=0),
}
fig, axes = plt.subplots(1, 3, figsize=(12, 4), layout="constrained", sharey=True)
for ax, (name, imputer) in zip(axes, imputers.items(), strict=True):
    filled = imputer.fit_transform(X_missing)
    rmse = np.sqrt(np.mean((filled[gaps, 1] - X[gaps, 1]) ** 2))
    ax.scatter(*X[~gaps].T, s=6, color="0.7")
    ax.scatter(*filled[gaps].T, s=8, color="C3")
    ax.set_title(f"{name}\nRMSE {rmse:.2f}", fontsize=9)
    print(f"{name}: RMSE of the filled values {rmse:.3f}")
plt.show()
