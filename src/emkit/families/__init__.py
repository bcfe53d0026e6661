"""Component families: each has vectorised ``log_prob``, additive ``stats`` and ``from_stats``."""

from emkit.families.covariance import COVARIANCE_STRUCTURES, CovarianceStructure
from emkit.families.gaussian import Gaussian, GaussianStats

__all__ = ["COVARIANCE_STRUCTURES", "CovarianceStructure", "Gaussian", "GaussianStats"]
