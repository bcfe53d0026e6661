"""emkit: the Expectation-Maximization algorithm, fast, general and easy to watch.

The unit of work is an additive sufficient-statistics value: every way of
fitting (in memory, chunked, distributed, online) produces the same sums and
runs the same M-step.
"""

from emkit import distributions
from emkit.core.custom import em
from emkit.data import sources as sources  # public: emkit.sources
from emkit.estimators.gaussian_mixture import GaussianMixture
from emkit.estimators.hidden_markov import HiddenMarkovModel
from emkit.estimators.imputer import GaussianMixtureImputer
from emkit.estimators.kmeans import KMeans
from emkit.estimators.mixture_model import MixtureModel
from emkit.estimators.selection import select_model
from emkit.io import load, save

__version__ = "0.1.0"

__all__ = [
    "GaussianMixture",
    "GaussianMixtureImputer",
    "HiddenMarkovModel",
    "KMeans",
    "MixtureModel",
    "__version__",
    "distributions",
    "em",
    "load",
    "save",
    "select_model",
]
