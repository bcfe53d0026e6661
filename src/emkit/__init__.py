"""emkit: the Expectation-Maximization algorithm, fast, general and easy to watch.

The unit of work is an additive sufficient-statistics value: every way of
fitting (in memory, chunked, distributed, online) produces the same sums and
runs the same M-step.

The public names are imported on first use (PEP 562), so ``import emkit`` and
``emkit --help`` stay fast and a script pays only for what it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> (module, attribute); attribute None means the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "ConjugatePrior": ("emkit.distributions.gaussian.prior", "ConjugatePrior"),
    "GaussianMixture": ("emkit.estimators.gaussian_mixture", "GaussianMixture"),
    "GaussianMixtureClassifier": ("emkit.estimators.classifier", "GaussianMixtureClassifier"),
    "GaussianMixtureImputer": ("emkit.estimators.imputer", "GaussianMixtureImputer"),
    "HiddenMarkovModel": ("emkit.estimators.hidden_markov", "HiddenMarkovModel"),
    "KMeans": ("emkit.estimators.kmeans", "KMeans"),
    "MixtureModel": ("emkit.estimators.mixture_model", "MixtureModel"),
    "RegressionMixture": ("emkit.estimators.regression_mixture", "RegressionMixture"),
    "distributions": ("emkit.distributions", None),
    "em": ("emkit.core.custom", "em"),
    "load": ("emkit.io", "load"),
    "save": ("emkit.io", "save"),
    "select_model": ("emkit.estimators.selection", "select_model"),
    "select_regression_model": ("emkit.estimators.selection", "select_regression_model"),
    "sources": ("emkit.data.sources", None),  # public: emkit.sources
}

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports
    from emkit import distributions
    from emkit.core.custom import em
    from emkit.data import sources as sources  # public: emkit.sources
    from emkit.distributions.gaussian.prior import ConjugatePrior
    from emkit.estimators.classifier import GaussianMixtureClassifier
    from emkit.estimators.gaussian_mixture import GaussianMixture
    from emkit.estimators.hidden_markov import HiddenMarkovModel
    from emkit.estimators.imputer import GaussianMixtureImputer
    from emkit.estimators.kmeans import KMeans
    from emkit.estimators.mixture_model import MixtureModel
    from emkit.estimators.regression_mixture import RegressionMixture
    from emkit.estimators.selection import select_model, select_regression_model
    from emkit.io import load, save

__all__ = [
    "ConjugatePrior",
    "GaussianMixture",
    "GaussianMixtureClassifier",
    "GaussianMixtureImputer",
    "HiddenMarkovModel",
    "KMeans",
    "MixtureModel",
    "RegressionMixture",
    "__version__",
    "distributions",
    "em",
    "load",
    "save",
    "select_model",
    "select_regression_model",
]


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it (PEP 562)."""
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'emkit' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
