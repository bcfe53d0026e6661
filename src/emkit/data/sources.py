"""Where rows come from: re-iterable sources of row chunks.

The engine only ever iterates a source; it knows no file formats or arrays.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from emkit.core._parallel import map_ordered


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


class IndexedRows(np.ndarray):
    """A chunk of rows (a view, no copy) that knows the index of its first row.

    Random assignment policies (stochastic EM) key their draws on row indices,
    so that a fit does not depend on how the rows were cut into chunks. The
    E-step reads ``start`` and then works on the plain array.

    Attributes
    ----------
    start : int
        Index of the first row in the whole data set.
    """

    start: int = 0
    # Per-row weights of this chunk (``sample_weight``), None for unit weights.
    # Not passed on to arrays made from the chunk: their rows may differ.
    sample_weight: np.ndarray | None = None
    # Known components of this chunk's rows (-1: unknown), None when none is known.
    labels: np.ndarray | None = None
    # What kernels derived from these rows and keep for the next pass over them
    # (see row_memo), None where nothing is kept. Not passed on either.
    memo: dict | None = None

    def __array_finalize__(self, obj: object) -> None:
        self.start = getattr(obj, "start", 0)
        self.sample_weight = None
        self.labels = None
        self.memo = None


def row_start(chunk: np.ndarray) -> int | None:
    """Index of a chunk's first row in its data set, ``None`` if the chunk does not say."""
    return chunk.start if isinstance(chunk, IndexedRows) else None


def row_memo(chunk: np.ndarray) -> dict | None:
    """The chunk's memo, a dict that lives as long as its source, or None.

    A kernel may keep there what it derives from the chunk's rows alone (packed
    bits of binary data, a sum over the rows), under a key naming what it is,
    and read it back on the next pass over the same rows instead of the rows:
    an :class:`IndexedArraySource` serves the same rows under the same ``start``
    on every pass of a fit.
    """
    return getattr(chunk, "memo", None)


def row_weights(chunk: np.ndarray) -> np.ndarray | None:
    """The chunk's per-row weights (``sample_weight``), ``None`` for unit weights."""
    weights = getattr(chunk, "sample_weight", None)
    if weights is not None and weights.shape != (chunk.shape[0],):
        raise ValueError(
            f"a chunk of {chunk.shape[0]} rows carries {weights.shape} sample weights"
        )
    return weights


def row_labels(chunk: np.ndarray) -> np.ndarray | None:
    """The chunk's partial labels (component index, -1 unknown), ``None`` if none is known."""
    labels = getattr(chunk, "labels", None)
    if labels is not None and labels.shape != (chunk.shape[0],):
        raise ValueError(f"a chunk of {chunk.shape[0]} rows carries {labels.shape} labels")
    return labels


@dataclass(frozen=True)
class IndexedArraySource(ArraySource):
    """Like :class:`ArraySource`, but every chunk is an :class:`IndexedRows` view.

    ``first_row`` is the index of ``X``'s first row in the whole data set
    (non-zero when ``X`` is one block of a file or a dask array).

    Examples
    --------
    >>> import numpy as np
    >>> [chunk.start for chunk in IndexedArraySource(np.zeros((10, 2)), chunk_size=4)]
    [0, 4, 8]
    """

    first_row: int = 0
    # Weights of the rows of ``X`` (``sample_weight``), handed out with each chunk.
    sample_weight: np.ndarray | None = None
    # Partial labels of the rows of ``X`` (-1: unknown), handed out with each chunk.
    labels: np.ndarray | None = None
    # One memo per chunk (see row_memo), by its first row; a new source starts empty.
    memos: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, self.X.shape[0], self.chunk_size):
            stop = start + self.chunk_size
            chunk = self.X[start:stop].view(IndexedRows)
            chunk.start = self.first_row + start
            chunk.memo = self.memos.setdefault((start, stop), {})
            if self.sample_weight is not None:
                chunk.sample_weight = self.sample_weight[start:stop]
            if self.labels is not None:
                chunk.labels = self.labels[start:stop]
            yield chunk


def map_chunks(
    func: Callable[[np.ndarray], np.ndarray], X: np.ndarray, chunk_size: int
) -> np.ndarray:
    """Apply a row-wise ``func`` chunk by chunk (on threads) and stack the results along rows."""
    parts = list(map_ordered(func, ArraySource(X, chunk_size)))
    return np.concatenate(parts, axis=0)


def open(
    path: str | os.PathLike, chunk_size: int = 65536, columns: Sequence[str] | None = None
) -> Iterable[np.ndarray]:
    """A re-iterable source of float row chunks from a ``.npy``, CSV or Parquet file.

    The file is streamed in chunks of ``chunk_size`` rows on every pass, never
    loaded whole; pass the result to :meth:`emkit.GaussianMixture.fit`. See
    :func:`emkit.data.file_sources.open_file`.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from emkit import GaussianMixture, sources
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.npy")
    >>> rng = np.random.default_rng(0)
    >>> np.save(path, np.vstack([rng.normal(0, 1, (500, 2)), rng.normal(8, 1, (500, 2))]))
    >>> gm = GaussianMixture(2, random_state=0).fit(sources.open(path, chunk_size=256))
    >>> [round(float(m)) for m in np.sort(gm.means_[:, 0])]
    [0, 8]
    """
    from emkit.data.file_sources import open_file

    return open_file(path, chunk_size, columns)
