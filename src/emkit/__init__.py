"""emkit: the Expectation-Maximization algorithm, fast, general and easy to watch.

The unit of work is an additive sufficient-statistics value: every way of
fitting (in memory, chunked, distributed, online) produces the same sums and
runs the same M-step.
"""

from emkit import distributions
from emkit.custom import em
from emkit.gaussian_mixture import GaussianMixture
from emkit.imputer import GaussianMixtureImputer
from emkit.io import load, save
from emkit.kmeans import KMeans
from emkit.mixture_model import MixtureModel
from emkit.selection import select_model

__version__ = "0.1.0"

__all__ = [
    "GaussianMixture",
    "GaussianMixtureImputer",
    "KMeans",
    "MixtureModel",
    "__version__",
    "distributions",
    "em",
    "load",
    "save",
    "select_model",
]
