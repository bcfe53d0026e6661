"""hmmlearn drop-ins: ``from emkit.hmm import GaussianHMM`` (see :mod:`emkit.estimators.hmm`)."""

from emkit.estimators.hmm import CategoricalHMM, GaussianHMM, PoissonHMM

__all__ = ["CategoricalHMM", "GaussianHMM", "PoissonHMM"]
