"""emkit: the Expectation-Maximization algorithm, fast, general and easy to watch.

The unit of work is an additive sufficient-statistics value: every way of
fitting (in memory, chunked, distributed, online) produces the same sums and
runs the same M-step.
"""

from emkit.gaussian_mixture import GaussianMixture
from emkit.io import load, save
from emkit.kmeans import KMeans

__version__ = "0.1.0"

__all__ = ["GaussianMixture", "KMeans", "__version__", "load", "save"]
