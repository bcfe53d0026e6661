"""Dask arrays as an EM source: statistics per block, a tree sum, one ``compute`` per pass.

Each EM iteration builds one small graph: the E-step of every row block
(:meth:`emkit.latent.mixture.Mixture.e_step`, the same code as in memory) giving an
additive statistics value, summed as a tree, then computed once. The model
travels as one small task shared by all blocks; the M-step runs on the client
in NumPy. The computation uses the active ``distributed.Client`` if there is
one, else Dask's default scheduler. Nothing of the fit lives on the workers, so
a worker lost in the middle of a pass only means Dask recomputes its blocks.

Needs the optional extra ``emkit[dask]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np

from emkit.core.engine import expected_stats
from emkit.data._row_checks import check_rows, checked_row_values
from emkit.data.file_sources import check_finite_chunk
from emkit.data.sources import IndexedArraySource, map_chunks

# Statistics values summed per task of the reduction tree.
FAN_IN = 8


class DaskSource:
    """A ``dask.array.Array`` of rows, summed block by block on its scheduler.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Row blocks of any size (columns are gathered into one block). Chunk
        sizes must be known. float32 stays float32; other dtypes become float64.
        Persist it first (``X = X.persist()``) when it is costly to compute,
        since every EM pass reads it.
    chunk_size : int, default=4096
        Rows per E-step inside a block (the estimator's ``chunk_size``): memory
        per task is bounded by it, whatever the block size.
    check : callable, optional
        ``check(block)`` raising ValueError for rows a model cannot take; runs
        with the E-step of every block.
    sample_weight, labels : dask or NumPy array of shape (n_samples,), optional
        Per-row weights and partial labels (component index, -1 unknown),
        rechunked to ``X``'s row blocks and checked with each block's E-step
        (``labels`` against ``n_components``).

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from emkit import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (500, 2)), rng.normal(8, 1, (500, 2))])
    >>> dX = da.from_array(X, chunks=(250, 2))
    >>> gm = GaussianMixture(2, random_state=0).fit(dX)
    >>> [round(float(m)) for m in np.sort(gm.means_[:, 0])]
    [0, 8]
    >>> labels = gm.predict(dX)  # a dask array, computed on demand
    >>> labels.compute().shape
    (1000,)
    """

    def __init__(
        self, X: da.Array, chunk_size: int = 4096,
        check: Callable[[np.ndarray], None] | None = None, *, sample_weight: Any = None,
        labels: Any = None, n_components: int | None = None,
    ) -> None:
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D dask array of rows, got {X.ndim} dimension(s)")
        if any(np.isnan(size) for size in X.chunks[0]):
            raise ValueError(
                "the dask array's row chunk sizes are unknown: call X.compute_chunk_sizes() first"
            )
        if X.dtype != np.float32:
            X = X.astype(np.float64)
        self.X = X.rechunk({1: -1}) if X.numblocks[1] > 1 else X
        self.n_samples, self.n_features = (int(n) for n in self.X.shape)
        self.chunk_size, self.check = int(chunk_size), check
        self._starts = np.concatenate([[0], np.cumsum(self.X.chunks[0])[:-1]]).astype(int)
        self.weight_column = self._aligned(sample_weight, "sample_weight")
        self.label_column = self._aligned(labels, "labels")
        self.n_components = n_components
        # The initialisation sample with its rows' weights and labels, and the sampled
        # rows' indices (set by prepare).
        self.init_rows = None
        self.init_index = None

    def _aligned(self, values: Any, name: str) -> da.Array | None:
        """A per-row array as a dask array in ``X``'s row blocks."""
        if values is None:
            return None
        values = values if isinstance(values, da.Array) else da.asarray(np.asarray(values))
        if values.ndim != 1 or values.shape[0] != self.n_samples:
            raise ValueError(
                f"{name} has shape {values.shape}, expected ({self.n_samples},): one value per "
                "row of X"
            )
        return values.rechunk((self.X.chunks[0],))

    def _column_blocks(self, values: da.Array | None) -> list[Any]:
        if values is None:
            return [None] * len(self._starts)
        return list(values.to_delayed().ravel())

    def __repr__(self) -> str:
        return f"DaskSource(shape={self.X.shape}, blocks={self.X.numblocks[0]})"

    def expected_stats(self, model: Any) -> Any:
        """E-step of every block on the scheduler, statistics tree-summed, one ``compute``."""
        # One task holds the model; traverse=False keeps dask from unpacking it.
        shared = dask.delayed(model, traverse=False)
        parts = [
            dask.delayed(_block_stats, pure=True)(
                shared, block, start, self.chunk_size, self.check, weights, labels,
                self.n_components)
            for block, start, weights, labels in zip(
                self.X.to_delayed().ravel(), self._starts,
                self._column_blocks(self.weight_column), self._column_blocks(self.label_column),
                strict=True)
        ]
        (total,) = dask.compute(_tree_sum(parts))
        return total

    def sample(self, size: int, rng: np.random.Generator, return_index: bool = False) -> Any:
        """``size`` rows drawn uniformly without replacement; only those rows are computed.

        ``return_index``: also their indices (sorted).
        """
        index = np.sort(rng.choice(self.n_samples, size=min(size, self.n_samples),
                                   replace=False))
        rows = self.X[index].compute()
        infinite = np.isinf(rows).any(axis=1)
        if infinite.any():
            # Name the row as in the whole array, not in the sample.
            bad = int(np.flatnonzero(infinite)[0])
            check_finite_chunk(rows[bad : bad + 1], int(index[bad]), "X")
        return (rows, index) if return_index else rows

    def sample_columns(self, index: np.ndarray) -> tuple[Any, Any]:
        """Checked weights and labels (or None) of the rows ``index``."""
        weights = None if self.weight_column is None else checked_row_values(
            self.weight_column[index].compute(), "sample_weight", index=index)
        labels = None if self.label_column is None else checked_row_values(
            self.label_column[index].compute(), "labels", self.n_components, index=index)
        return weights, labels

    def total_weight(self) -> float | None:
        """The summed ``sample_weight`` (None for unit weights): the rows a fit stands for."""
        return None if self.weight_column is None else float(self.weight_column.sum().compute())

    def map_blocks(self, func: Callable[[np.ndarray], np.ndarray], n_out: int | None) -> da.Array:
        """``func`` over the rows, lazily: one value per row, or ``n_out`` columns."""

        def per_block(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
            # As in a fit: infinities are refused, naming the global row.
            start = block_info[0]["array-location"][0][0] if block_info else 0
            check_finite_chunk(block, int(start), "X")
            return map_chunks(func, block, self.chunk_size)

        if n_out is None:
            return self.X.map_blocks(per_block, drop_axis=1, dtype=self.X.dtype)
        chunks = (self.X.chunks[0], (n_out,))
        return self.X.map_blocks(per_block, chunks=chunks, dtype=self.X.dtype)


def _block_stats(
    model: Any, block: np.ndarray, start: int, chunk_size: int,
    check: Callable[[np.ndarray], None] | None, weights: np.ndarray | None = None,
    labels: np.ndarray | None = None, n_components: int | None = None,
) -> Any:
    # The data checks ride along with the E-step: no extra pass over the data
    # (NaN is a missing value, as in memory; infinities are refused).
    check_finite_chunk(block, int(start), "X")
    check_rows(check, block, int(start))
    if weights is not None:
        weights = checked_row_values(weights, "sample_weight", first_row=int(start))
    if labels is not None:
        labels = checked_row_values(labels, "labels", n_components, int(start))
    # Indexed rows: stochastic EM keys its draws on global row numbers.
    return expected_stats(model, IndexedArraySource(
        block, chunk_size, int(start), sample_weight=weights, labels=labels))


def _add_all(*parts: Any) -> Any:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _tree_sum(parts: list[Any]) -> Any:
    """Delayed sum of delayed statistics, ``FAN_IN`` at a time, as a tree of depth log(n)."""
    while len(parts) > 1:
        parts = [
            dask.delayed(_add_all, pure=True)(*parts[i : i + FAN_IN])
            for i in range(0, len(parts), FAN_IN)
        ]
    return parts[0]
