"""Independent: a product of distributions over consecutive groups of columns."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from emkit.core.stats import StatsTuple
from emkit.distributions._base import Distribution, register


@register
@dataclass(frozen=True, eq=False)
class Independent(Distribution):
    """Independent parts, each reading its own consecutive block of columns.

    The density of a row is the product of the parts' densities, so one
    mixture can cluster rows that mix counts, categories, binary flags and
    real numbers. Statistics and M-step are the parts' own.

    Parameters
    ----------
    components : sequence of Distribution
        The parts, in column order: the first reads the first
        ``components[0].n_features`` columns, the next the following ones, and so on.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.distributions import Categorical, Independent, Poisson
    >>> row = Independent([Poisson(2.0), Categorical([0.5, 0.5])])
    >>> row.n_features
    2
    >>> row.fit(np.array([[1, 0], [3, 0], [2, 1]])).components[0].rate
    array([2.])
    """

    components: tuple[Distribution, ...]

    def __post_init__(self) -> None:
        components = tuple(self.components)
        if not components or not all(isinstance(c, Distribution) for c in components):
            raise ValueError("Independent needs a non-empty sequence of distributions")
        object.__setattr__(self, "components", components)

    def _blocks(self) -> list[tuple[Distribution, int, int]]:
        """Each part with the first and one-past-last column it reads."""
        edges = np.cumsum([0] + [c.n_features for c in self.components])
        starts, stops = edges[:-1].tolist(), edges[1:].tolist()
        return list(zip(self.components, starts, stops, strict=True))

    @property
    def n_features(self) -> int:
        return sum(c.n_features for c in self.components)

    @property
    def n_parameters(self) -> int:
        return sum(c.n_parameters for c in self.components)

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        return sum(c.log_prob(X[:, a:b]) for c, a, b in self._blocks())

    def stats(self, X: np.ndarray, weights: np.ndarray) -> StatsTuple:
        return StatsTuple(parts=tuple(c.stats(X[:, a:b], weights) for c, a, b in self._blocks()))

    def from_stats(self, stats: StatsTuple) -> Independent:
        parts = zip(self.components, stats.parts, strict=True)
        return replace(self, components=tuple(c.from_stats(s) for c, s in parts))

    @property
    def has_prior(self) -> bool:
        return any(c.has_prior for c in self.components)

    def log_prior(self) -> float:
        return float(sum(c.log_prior() for c in self.components))

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return np.hstack([c.sample(n_samples, rng) for c in self.components])

    def check_data(self, X: np.ndarray, first_column: int = 0) -> None:
        for c, a, b in self._blocks():
            c.check_data(X[:, a:b], first_column + a)
