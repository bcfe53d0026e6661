""":mod:`emkit.distributions` components as one vector, for SQUAREM and DAAREM.

Most parameters are mapped to the real line by the transform their domain
asks for: rates of exponential distributions through logarithms,
probabilities through logits, category probabilities through
log-probabilities (mapped back by softmax), Gaussian covariances through
log-Cholesky factors. Poisson rates stay as they are (``NONNEGATIVE``: a
negative one is refused, so the jump gives way to plain EM), as in the
reference SQUAREM's Poisson mixture: the M-step computes a rate as an average,
and the EM map is closer to linear in it than in its logarithm (on
Hasselblad's data, benchmarks/bench_acceleration.py). The table
:data:`PARAMETERS` says which transform each distribution's parameter takes;
``Independent`` is flattened part by part. Boundary values (a probability of
exactly 0 or 1, a rate of 0 under a logarithm) are pulled in by the smallest
float first, so the vector stays finite.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import expit, logit, softmax

from emkit.distributions import (
    Bernoulli,
    Binomial,
    Categorical,
    Distribution,
    Exponential,
    Gaussian,
    Geometric,
    Independent,
    Poisson,
)
from emkit.distributions.component_list import ComponentList
from emkit.distributions.gaussian.codec import _pack, _unpack

_TINY = np.finfo(np.float64).tiny
_BELOW_ONE = 1.0 - np.finfo(np.float64).epsneg


@dataclass(frozen=True)
class Transform:
    """A bijection from a parameter's domain to unconstrained reals (arrays, float64)."""

    forward: Any
    backward: Any


def _log(values: Any) -> np.ndarray:
    return np.log(np.maximum(np.asarray(values, dtype=np.float64), _TINY))


def _logit(values: Any) -> np.ndarray:
    return logit(np.clip(np.asarray(values, dtype=np.float64), _TINY, _BELOW_ONE))


LOG = Transform(_log, np.exp)
LOGIT = Transform(_logit, expit)
LOG_SIMPLEX = Transform(_log, softmax)
IDENTITY = Transform(lambda v: np.asarray(v, dtype=np.float64), lambda v: v)


def _nonnegative(values: np.ndarray) -> np.ndarray:
    if np.any(values < 0):
        raise ValueError("extrapolated parameters leave their domain (a negative rate)")
    return values


NONNEGATIVE = Transform(IDENTITY.forward, _nonnegative)

# Free parameters of each distribution and their transforms; everything else
# (a Binomial's number of trials, a Gaussian's covariance_type) is kept.
PARAMETERS: dict[type, dict[str, Transform]] = {
    Bernoulli: {"p": LOGIT},
    Binomial: {"p": LOGIT},
    Categorical: {"probs": LOG_SIMPLEX},
    Exponential: {"rate": LOG},
    Geometric: {"p": LOGIT},
    Poisson: {"rate": NONNEGATIVE},
    Gaussian: {"mean": IDENTITY},
}


def flatten_distribution(distribution: Distribution) -> np.ndarray:
    """A distribution's free parameters as one float64 vector."""
    if isinstance(distribution, Independent):
        return np.concatenate([flatten_distribution(c) for c in distribution.components])
    parts = [
        np.atleast_1d(t.forward(getattr(distribution, name))).ravel()
        for name, t in _parameters(distribution).items()
    ]
    if isinstance(distribution, Gaussian):
        parts.append(_pack(distribution.covariance_type, _as_stack(distribution)))
    return np.concatenate(parts)


def unflatten_distribution(vector: np.ndarray, like: Distribution) -> Distribution:
    """A distribution of ``like``'s kind from a vector; ``ValueError`` if invalid."""
    if isinstance(like, Independent):
        sizes = [flatten_distribution(c).size for c in like.components]
        pieces = np.split(vector, np.cumsum(sizes)[:-1])
        parts = [unflatten_distribution(p, c) for p, c in zip(pieces, like.components,
                                                               strict=True)]
        return replace(like, components=tuple(parts))
    values, offset = {}, 0
    for name, transform in _parameters(like).items():
        size = np.size(getattr(like, name))
        values[name] = _shaped(transform.backward(vector[offset : offset + size]), like, name)
        offset += size
    if isinstance(like, Gaussian):
        d, name = like.mean.size, like.covariance_type
        values["covariance"] = _unpack(name, vector[offset:], 1, d)[0]
    return replace(like, **values)


def _parameters(distribution: Distribution) -> dict[str, Transform]:
    try:
        return PARAMETERS[type(distribution)]
    except KeyError:
        raise TypeError(
            f"no parameter codec for {type(distribution).__name__}: add it to "
            "emkit.distributions.codec.PARAMETERS"
        ) from None


def _shaped(values: np.ndarray, like: Distribution, name: str) -> Any:
    """Values in the shape (scalar or array) the parameter had in ``like``."""
    return float(values[0]) if np.ndim(getattr(like, name)) == 0 else values


def _as_stack(gaussian: Gaussian) -> np.ndarray:
    """The covariance as the (1, ...) stack the Gaussian family's packing expects."""
    return np.asarray(gaussian.covariance, dtype=np.float64)[None]


@dataclass(frozen=True)
class ComponentListCodec:
    """Flatten/unflatten a :class:`~emkit.distributions.component_list.ComponentList`.

    Examples
    --------
    >>> from emkit.distributions import Poisson
    >>> family = ComponentList((Poisson([1.0, 4.0]), Poisson([2.0, 0.5])))
    >>> codec = ComponentListCodec()
    >>> back = codec.unflatten(codec.flatten(family) + 0.0, like=family)
    >>> [d.rate.tolist() for d in back.distributions]
    [[1.0, 4.0], [2.0, 0.5]]
    """

    def flatten(self, family: ComponentList) -> np.ndarray:
        return np.concatenate([flatten_distribution(d) for d in family.distributions])

    def unflatten(self, vector: np.ndarray, like: ComponentList) -> ComponentList:
        if not np.isfinite(vector).all():
            raise ValueError("extrapolated parameters are not finite")
        sizes = [flatten_distribution(d).size for d in like.distributions]
        if vector.size != sum(sizes):
            raise ValueError(f"expected {sum(sizes)} parameters, got {vector.size}")
        pieces = np.split(vector, np.cumsum(sizes)[:-1])
        return ComponentList(tuple(
            unflatten_distribution(p, d) for p, d in zip(pieces, like.distributions, strict=True)
        ))
