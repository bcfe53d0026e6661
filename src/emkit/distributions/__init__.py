"""Component distributions for :class:`emkit.MixtureModel`, each one a plain value.

Every distribution keeps its parameters as plain attributes and provides a
vectorised ``log_prob``, weighted additive sufficient statistics (``stats``),
the weighted maximum-likelihood M-step (``from_stats``, or ``fit`` on data),
``sample`` and ``n_parameters``. :func:`to_spec` and :func:`from_spec` turn a
distribution into JSON-ready plain data and back (this is how models are saved).

=============  ============================  ===============================
distribution   columns read                  support
=============  ============================  ===============================
Binomial       1 (heads), or 2 with          integers 0..n_trials
               ``n_trials="column"``
Bernoulli      ``len(p)``                    0 or 1
Categorical    1                             integers 0..m-1
Poisson        ``len(rate)``                 integers >= 0
Exponential    ``len(rate)``                 reals >= 0
Geometric      ``len(p)``                    integers >= 0
Gaussian       ``len(mean)``                 reals
Independent    sum over its parts            the parts'
=============  ============================  ===============================

``Bernoulli``, ``Binomial`` (Beta), ``Categorical`` (Dirichlet), ``Poisson`` and
``Exponential`` (Gamma) take an optional conjugate ``prior``: their M-step is then
the maximum a posteriori one (MAP EM), and ``log_prior()`` gives the log prior
density up to a constant. Without a prior (the default) the M-step is maximum
likelihood. Parameters are validated when built: finite, probabilities in
[0, 1] (summing to one for ``Categorical``), rates and variances positive
(a ``Poisson`` rate may be 0, the point mass at zero).
"""

from emkit.distributions._base import Distribution, from_spec, to_spec
from emkit.distributions.bernoulli import Bernoulli
from emkit.distributions.binomial import Binomial
from emkit.distributions.categorical import Categorical
from emkit.distributions.exponential import Exponential
from emkit.distributions.gaussian.distribution import Gaussian
from emkit.distributions.geometric import Geometric
from emkit.distributions.independent import Independent
from emkit.distributions.poisson import Poisson

__all__ = [
    "Bernoulli",
    "Binomial",
    "Categorical",
    "Distribution",
    "Exponential",
    "Gaussian",
    "Geometric",
    "Independent",
    "Poisson",
    "from_spec",
    "to_spec",
]
