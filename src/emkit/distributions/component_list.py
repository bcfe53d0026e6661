"""Any list of distributions as a mixture's component family."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emkit.core.stats import StatsTuple
from emkit.distributions import Distribution


@dataclass(frozen=True, eq=False)
class ComponentList:
    """``K`` component distributions as the family a :class:`emkit.latent.mixture.Mixture` uses.

    Nothing here depends on the kind of distribution: each component brings its
    own densities, statistics and M-step, and components of different kinds
    may be mixed as long as they read the same columns.

    Attributes
    ----------
    distributions : tuple of Distribution, length K
    frozen : tuple of bool, length K, or empty
        Components the M-step keeps as they are (empty: none).
    """

    distributions: tuple[Distribution, ...]
    frozen: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        distributions = tuple(self.distributions)
        check_components(distributions)
        object.__setattr__(self, "distributions", distributions)
        frozen = tuple(bool(f) for f in self.frozen)
        if frozen and len(frozen) != len(distributions):
            raise ValueError(
                f"frozen has {len(frozen)} entries for {len(distributions)} components"
            )
        object.__setattr__(self, "frozen", frozen if any(frozen) else ())

    @property
    def n_components(self) -> int:
        return len(self.distributions)

    @property
    def n_features(self) -> int:
        return self.distributions[0].n_features

    @property
    def n_parameters(self) -> int:
        """Free parameters: those of the components that are not frozen."""
        return sum(d.n_parameters for d, f in zip(self.distributions, self._frozen, strict=True)
                   if not f)

    @property
    def _frozen(self) -> tuple[bool, ...]:
        return self.frozen or (False,) * len(self.distributions)

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        """Log density of each row under each component, shape (n_samples, K)."""
        return np.column_stack([d.log_prob(X) for d in self.distributions])

    def stats(self, X: np.ndarray, resp: np.ndarray) -> StatsTuple:
        """Each component's statistics, weighted by its column of ``resp`` (n_samples, K)."""
        return StatsTuple(
            parts=tuple(d.stats(X, resp[:, k]) for k, d in enumerate(self.distributions))
        )

    def from_stats(self, stats: StatsTuple) -> ComponentList:
        """M-step of every component; a frozen one stays the very same object."""
        parts = zip(self.distributions, stats.parts, self._frozen, strict=True)
        return ComponentList(tuple(d if f else d.from_stats(s) for d, s, f in parts),
                             self.frozen)

    @property
    def has_prior(self) -> bool:
        """Whether any component has a prior (then EM is MAP EM)."""
        return any(d.has_prior for d in self.distributions)

    def log_prior(self) -> float:
        """Summed log prior of the components' parameters, up to a constant."""
        return float(sum(d.log_prior() for d in self.distributions))

    def sample(self, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw ``counts[k]`` rows from component ``k``, stacked in component order."""
        parts = [d.sample(int(n), rng) for d, n in zip(self.distributions, counts, strict=True)]
        return np.vstack(parts)

    def check_data(self, X: np.ndarray) -> None:
        """Raise ValueError naming the first row or column no component can take."""
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"X has {X.shape[1]} columns but the components read {self.n_features}"
            )
        for distribution in self.distributions:
            distribution.check_data(X)


def check_components(distributions: Sequence[object]) -> None:
    """A non-empty list of distributions that all read the same number of columns."""
    if len(distributions) == 0:
        raise ValueError("components must be a non-empty list of distributions")
    for k, d in enumerate(distributions):
        if not isinstance(d, Distribution):
            raise ValueError(
                f"component {k} is a {type(d).__name__}, not an emkit.distributions distribution"
            )
    widths = [d.n_features for d in distributions]
    for k, width in enumerate(widths):
        if width != widths[0]:
            raise ValueError(
                f"components read different numbers of columns: component 0 "
                f"({type(distributions[0]).__name__}) reads {widths[0]}, component {k} "
                f"({type(distributions[k]).__name__}) reads {width}"
            )
