"""Any list of distributions as a mixture's component family."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from emkit.core.stats import Stats, StatsTuple
from emkit.distributions import Distribution, expfam


@dataclass(frozen=True, eq=False)
class ComponentList:
    """``K`` component distributions as the family a :class:`emkit.latent.mixture.Mixture` uses.

    Nothing here depends on the kind of distribution: each component brings its
    own densities, statistics and M-step, and components of different kinds
    may be mixed as long as they read the same columns.

    When every component is of one exponential family with one structure (see
    :mod:`emkit.distributions.expfam`), densities and statistics of a chunk come
    from the kernel's matrix products instead of component by component; the
    results are the same (to rounding), and the M-step is still each component's own.

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

    @cached_property
    def _kernel_form(self) -> expfam.Kernel | None:
        # Built once per parameter set (the M-step makes a new list).
        return expfam.kernel_for(self.distributions)

    @property
    def _kernel(self) -> expfam.Kernel | None:
        """The exponential-family kernel of these components, or None (no such form,
        or switched off by :func:`emkit.distributions.expfam.per_component`)."""
        return self._kernel_form if expfam.enabled() else None

    def prepare(self, X: np.ndarray) -> Any:
        """A chunk's kernel features (shared by ``log_prob`` and ``stats``), or the rows."""
        kernel = self._kernel
        return X if kernel is None else kernel.prepare(X)

    def _prepared(self, X: Any) -> Any:
        kernel = self._kernel
        if kernel is None or isinstance(X, expfam.Prepared):
            return X
        return kernel.prepare(X)

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        """Log density of each row under each component, shape (n_samples, K)."""
        chunk = self._prepared(X)
        if isinstance(chunk, expfam.Prepared):
            return self._kernel_form.log_prob(chunk)
        return np.column_stack([d.log_prob(X) for d in self.distributions])

    def stats(self, X: np.ndarray, resp: np.ndarray) -> Stats:
        """Each component's statistics, weighted by its column of ``resp`` (n_samples, K).

        A :class:`~emkit.distributions.expfam.ExpFamStats` on the kernel's path, a
        :class:`~emkit.core.stats.StatsTuple` of the components' own otherwise.
        """
        chunk = self._prepared(X)
        if isinstance(chunk, expfam.Prepared):
            return self._kernel_form.stats(chunk, resp)
        return StatsTuple(
            parts=tuple(d.stats(X, resp[:, k]) for k, d in enumerate(self.distributions))
        )

    # soft_e_step takes the chunk's memo (see emkit.data.sources.row_memo).
    uses_chunk_memo = True

    def soft_e_step(
        self, X: np.ndarray, log_weights: np.ndarray, memo: dict | None = None
    ) -> Any:
        """The kernel's compiled soft E-step of a chunk (see
        :meth:`emkit.latent.mixture.Mixture._soft_e_step`), or None."""
        kernel = self._kernel
        return None if kernel is None else kernel.soft_e_step(X, log_weights, memo)

    def from_stats(self, stats: Stats) -> ComponentList:
        """M-step of every component; a frozen one stays the very same object."""
        if isinstance(stats, expfam.ExpFamStats):
            fast = self._kernel_form.from_stats(self.distributions, stats, self.frozen)
            if fast is not None:
                return ComponentList(fast, self.frozen)
            stats = self._kernel_form.component_stats(stats)
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
