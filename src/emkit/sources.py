"""Where rows come from: re-iterable sources of row chunks.

The engine only ever iterates a source; it knows no file formats or arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from emkit._parallel import map_ordered


@dataclass(frozen=True)
class ArraySource:
    """Row chunks of an in-memory array, as views (no copies).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    chunk_size : int
        Rows per chunk; the last chunk may be shorter.
    """

    X: np.ndarray
    chunk_size: int = 4096

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, self.X.shape[0], self.chunk_size):
            yield self.X[start : start + self.chunk_size]


def map_chunks(
    func: Callable[[np.ndarray], np.ndarray], X: np.ndarray, chunk_size: int
) -> np.ndarray:
    """Apply a row-wise ``func`` chunk by chunk (on threads) and stack the results along rows."""
    parts = list(map_ordered(func, ArraySource(X, chunk_size)))
    return np.concatenate(parts, axis=0)
