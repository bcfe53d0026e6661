"""Sufficient statistics as values: the unit of work of every EM driver.

An E-step over a chunk of rows returns a statistics value holding *sums* over
those rows. Sums add, so statistics of two chunks add to the statistics of
their union, whichever way the chunks were produced (slices of an array, file
batches, Dask blocks, a stream). The M-step is a pure function of the total.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

# Metadata of a dataclass field that is carried along, not summed: such a field
# (for example the point second moments are taken around) must be identical in
# both operands of an addition. Declare it as ``field(metadata=REFERENCE)``.
REFERENCE = {"reference": True}


@dataclass(frozen=True)
class Stats:
    """Base class of additive statistics values.

    Subclasses are frozen dataclasses whose fields are sums (numpy arrays or
    floats), except fields declared with ``field(metadata=REFERENCE)``.
    """

    def __add__(self, other: Stats) -> Stats:
        if type(other) is not type(self):
            return NotImplemented
        return type(self)(**{
            f.name: _combine(f, getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
        })

    def __radd__(self, other: Any) -> Stats:
        # Lets built-in ``sum`` start from 0.
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented


def _combine(f: dataclasses.Field, a: Any, b: Any) -> Any:
    if not f.metadata.get("reference", False):
        return a + b
    if a is not b and not np.array_equal(a, b):
        raise ValueError(
            f"cannot add statistics taken around different references ({f.name!r} differs)"
        )
    return a


@dataclass(frozen=True)
class StatsTuple(Stats):
    """Statistics of several independent parts, added part by part.

    Used where a model is a collection of parts, each with its own statistics
    (the components of a mixture, the column groups of a product distribution).

    Attributes
    ----------
    parts : tuple of Stats
    """

    parts: tuple[Stats, ...]

    def __add__(self, other: Stats) -> Stats:
        if type(other) is not type(self) or len(other.parts) != len(self.parts):
            return NotImplemented
        return type(self)(parts=tuple(a + b for a, b in zip(self.parts, other.parts, strict=True)))
