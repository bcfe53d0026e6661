"""What every distribution shares: the interface, data checks, and plain-data specs.

A distribution is one component: a frozen dataclass whose constructor
arguments are its parameters, kept as plain attributes. It reads
``n_features`` columns of the data and provides

- ``log_prob(X) -> (n_samples,)``, vectorised over rows;
- ``stats(X, weights) -> Stats``: weighted, additive sufficient statistics;
- ``from_stats(stats) -> Distribution``: the weighted maximum-likelihood M-step
  (maximum a posteriori where the distribution has a conjugate ``prior``);
- ``log_prior() -> float``: the log prior density of the parameters, up to its
  normalising constant (0 without a prior);
- ``sample(n_samples, rng) -> (n_samples, n_features)``;
- ``n_parameters``: free parameters, for BIC and AIC;
- ``check_data(X, first_column)``: raise a ValueError naming the first bad row.

NaN marks a missing value (missing at random): it is marginalised out, so the
factor it belongs to contributes nothing to the row's density or statistics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from emkit.core.stats import Stats

_TYPES: dict[str, type] = {}


class Distribution:
    """Base class of emkit's component distributions (see the module docstring)."""

    @property
    def n_features(self) -> int:
        """Number of data columns this distribution reads."""
        raise NotImplementedError

    @property
    def n_parameters(self) -> int:
        """Number of free parameters."""
        raise NotImplementedError

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        """Log density (or mass) of each row, shape (n_samples,)."""
        raise NotImplementedError

    def stats(self, X: np.ndarray, weights: np.ndarray) -> Stats:
        """Sufficient statistics of the rows of ``X`` weighted by ``weights`` (n_samples,)."""
        raise NotImplementedError

    def from_stats(self, stats: Stats) -> Distribution:
        """M-step: the weighted maximum-likelihood parameters given summed statistics
        (the maximum a posteriori ones under a conjugate ``prior``)."""
        raise NotImplementedError

    @property
    def has_prior(self) -> bool:
        """Whether the M-step is a MAP one under a prior."""
        return getattr(self, "prior", None) is not None

    def log_prior(self) -> float:
        """Log prior density of the parameters, up to a constant; 0 without a prior.

        EM with a prior (MAP EM) never decreases log-likelihood plus log prior.
        """
        return 0.0

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Draw rows, shape (n_samples, n_features)."""
        raise NotImplementedError

    def check_data(self, X: np.ndarray, first_column: int = 0) -> None:
        """Raise ValueError naming the first row outside the support.

        ``first_column`` is where ``X`` starts in the user's data, so that
        messages name the user's column.
        """

    def fit(self, X: np.ndarray, weights: np.ndarray | None = None) -> Distribution:
        """The (weighted) maximum-likelihood fit to ``X``, starting from these parameters."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"X must have shape (n_samples, {self.n_features}), got {X.shape}"
            )
        self.check_data(X)
        weights = np.ones(X.shape[0]) if weights is None else np.asarray(weights, float)
        return self.from_stats(self.stats(X, weights))


def register(cls: type) -> type:
    """Make a distribution class known to :func:`from_spec` by its name."""
    _TYPES[cls.__name__] = cls
    return cls


@dataclass(frozen=True)
class WeightedSums(Stats):
    """``sum_i w_i`` and ``sum_i w_i x_i`` per column: enough for many one-parameter families.

    Both sums run over the rows where that column is observed (not NaN).

    Attributes
    ----------
    weight : ndarray of shape (n_features,)
    total : ndarray of shape (n_features,)
    """

    weight: np.ndarray
    total: np.ndarray


def weighted_sums(X: np.ndarray, weights: np.ndarray) -> WeightedSums:
    """The :class:`WeightedSums` of a chunk, per column over its observed entries."""
    observed = ~np.isnan(X)
    return WeightedSums(weight=weights @ observed, total=weights @ np.where(observed, X, 0.0))


def sum_observed(terms: np.ndarray) -> np.ndarray:
    """Row sums of per-entry log terms, missing (NaN) entries counting as zero."""
    return np.nansum(terms, axis=1)


def ratio(numerator: Any, denominator: Any, fallback: Any) -> np.ndarray:
    """``numerator / denominator``, or ``fallback`` where the denominator is zero.

    A component that received no weight has no data to estimate from: it
    keeps its previous parameters instead of turning into NaN.
    """
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, fallback)


def vector_parameter(value: Any, name: str, low: float, high: float = np.inf) -> np.ndarray:
    """A 1-D finite float parameter with every entry in ``[low, high]`` (a scalar means one
    column)."""
    try:
        array = np.atleast_1d(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number or a 1-D array of numbers, got {value!r}"
        ) from None
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a number or a 1-D array, got shape {array.shape}")
    infinite = np.isinf(array)
    if infinite.any():
        index = int(np.flatnonzero(infinite)[0])
        raise ValueError(f"{name} must be finite, got {float(array[index])!r} at {index}")
    # NaN fails both comparisons, so it is refused here too.
    bad = ~((array >= low) & (array <= high))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must lie in [{low}, {high}], got {float(array[index])!r} at {index}"
        )
    return array


def prior_parameters(
    value: Any, name: str, size: int, lows: tuple[float, ...]
) -> tuple[np.ndarray, ...] | None:
    """Validated conjugate-prior hyperparameters, each broadcast to shape ``(size,)``.

    ``value`` is None (no prior) or a sequence of ``len(lows)`` entries, each a
    number or an array of shape ``(size,)``, entry ``i`` at least ``lows[i]``.
    The lower bounds keep the prior's mode, hence the MAP M-step, well defined.
    """
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != len(lows):
        raise ValueError(
            f"{name} must be None or a pair of hyperparameters (each a number or an array "
            f"of shape ({size},)), got {value!r}"
        )
    parts = []
    for i, (entry, low) in enumerate(zip(value, lows, strict=True)):
        label = name if len(lows) == 1 else f"{name} {'ab'[i]}"
        array = vector_parameter(entry, label, low)
        if array.size not in (1, size):
            raise ValueError(
                f"{label} must be a number or have shape ({size},), got {array.size} values"
            )
        parts.append(np.broadcast_to(array, (size,)).copy())
    return tuple(parts)


def check_support(
    X: np.ndarray, bad: np.ndarray, first_column: int, expected: str
) -> None:
    """Raise ValueError naming the first row and column where ``bad`` is True.

    Missing entries (NaN) are never out of the support.
    """
    bad = bad & ~np.isnan(X)
    if not bad.any():
        return
    row, column = (int(i) for i in np.argwhere(bad)[0])
    raise ValueError(
        f"row {row}, column {first_column + column}: {expected}, got {X[row, column]:g}"
    )


def not_integer(X: np.ndarray) -> np.ndarray:
    """Mask of entries that are not whole numbers."""
    return X != np.round(X)


def to_spec(distribution: Distribution) -> dict[str, Any]:
    """Plain data (JSON-ready) describing a distribution: its type name and parameters."""
    params = {
        f.name: _plain(getattr(distribution, f.name))
        for f in dataclasses.fields(distribution)
        if f.init
    }
    return {"distribution": type(distribution).__name__, "params": params}


def from_spec(spec: dict[str, Any]) -> Distribution:
    """Rebuild a distribution from :func:`to_spec` output; only known types are built."""
    if not isinstance(spec, dict) or not isinstance(spec.get("params"), dict):
        raise ValueError(f"not a distribution spec: {spec!r}")
    cls = _TYPES.get(spec.get("distribution"))
    if cls is None:
        known = ", ".join(sorted(_TYPES))
        raise ValueError(f"unknown distribution {spec.get('distribution')!r} (known: {known})")
    return cls(**{name: _unplain(value) for name, value in spec["params"].items()})


def _plain(value: Any) -> Any:
    if isinstance(value, Distribution):
        return to_spec(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return value


def _unplain(value: Any) -> Any:
    if isinstance(value, dict):
        return from_spec(value)
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    return value
