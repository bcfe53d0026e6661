"""Sequences in a Dask array: Baum-Welch statistics per block of whole sequences.

A hidden Markov chain's statistics add over sequences, not over rows, so a
block must hold whole sequences. :class:`DaskSequenceSource` cuts the rows at
sequence boundaries (re-chunking only when the array's blocks cut a
sequence), E-steps every block where it lives with the in-memory code
(:func:`emkit.latent.hmm.sequence_chunks`), sums the statistics as a tree and
computes once per pass, as :class:`emkit.data.dask_source.DaskSource` does for
mixtures. The fit therefore equals the in-memory one up to the order of the
floating-point additions.

Needs the optional extra ``emkit[dask]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np

from emkit.data._row_checks import check_rows
from emkit.data.dask_source import _tree_sum
from emkit.data.file_sources import check_finite_chunk
from emkit.latent.hmm import sequence_chunks, sequence_groups


class DaskSequenceSource:
    """Rows of many sequences in a ``dask.array.Array``, E-stepped block by block.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        The sequences' rows, stacked in order; row chunk sizes must be known.
    lengths : ndarray of int
        Validated sequence lengths (summing to ``n_samples``).
    check : callable, optional
        ``check(rows)`` raising ValueError for rows the model cannot take; runs
        with the E-step of every block.

    Attributes
    ----------
    X : the array, re-chunked at sequence boundaries where its blocks cut a sequence.
    blocks : list of (first, last)
        The sequences ``[first, last)`` of each block.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> X = da.from_array(np.arange(10.0)[:, None], chunks=4)   # blocks 4, 4, 2 rows
    >>> source = DaskSequenceSource(X, np.array([3, 3, 4]))
    >>> source.X.chunks[0], source.blocks                       # cut between sequences
    ((3, 3, 4), [(0, 1), (1, 2), (2, 3)])
    """

    def __init__(self, X: da.Array, lengths: np.ndarray,
                 check: Callable[[np.ndarray], None] | None = None) -> None:
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D dask array of rows, got {X.ndim} dimension(s)")
        if any(np.isnan(size) for size in X.chunks[0]):
            raise ValueError(
                "the dask array's row chunk sizes are unknown: call X.compute_chunk_sizes() first"
            )
        X = X.astype(np.float64)
        ends = np.cumsum(lengths)
        if np.isin(np.cumsum(X.chunks[0]), ends).all():
            cuts = np.searchsorted(ends, np.cumsum(X.chunks[0])) + 1
            self.blocks = list(zip(np.r_[0, cuts[:-1]].tolist(), cuts.tolist(), strict=True))
        else:  # whole sequences in blocks of about the array's largest block
            self.blocks = sequence_groups(lengths, max(X.chunks[0]))
            offsets = np.r_[0, ends]
            X = X.rechunk({0: tuple(int(offsets[b] - offsets[a]) for a, b in self.blocks)})
        self.X = X.rechunk({1: -1}) if X.numblocks[1] > 1 else X
        self.lengths, self.check = lengths, check
        self.n_samples, self.n_features = (int(n) for n in self.X.shape)

    def __repr__(self) -> str:
        return (f"DaskSequenceSource(shape={self.X.shape}, sequences={self.lengths.size}, "
                f"blocks={len(self.blocks)})")

    def expected_stats(self, model: Any) -> Any:
        """Forward-backward of every block on the scheduler, tree-summed, one ``compute``."""
        shared = dask.delayed(model, traverse=False)  # one task holds the model
        starts = np.r_[0, np.cumsum(self.lengths)]
        parts = [
            dask.delayed(_block_stats, pure=True)(
                shared, block, self.lengths[first:last], first, int(starts[first]), self.check)
            for block, (first, last) in zip(self.X.to_delayed().ravel(), self.blocks,
                                            strict=True)
        ]
        (total,) = dask.compute(_tree_sum(parts))
        return total

    def n_observed(self) -> int:
        """Rows with at least one value (one pass over the data)."""
        return int((~da.isnan(self.X).all(axis=1)).sum().compute())

    def sample(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` rows drawn uniformly without replacement, in their order (all rows when
        there are no more than ``size``), for starting values."""
        index = (np.arange(self.n_samples) if self.n_samples <= size
                 else np.sort(rng.choice(self.n_samples, size=size, replace=False)))
        rows = self.X[index].compute()
        infinite = np.flatnonzero(np.isinf(rows).any(axis=1))
        if infinite.size:  # name the row as in the whole array
            check_finite_chunk(rows[infinite[:1]], int(index[infinite[0]]), "X")
        return rows


def _block_stats(model: Any, block: np.ndarray, lengths: np.ndarray, first: int, start: int,
                 check: Callable[[np.ndarray], None] | None) -> Any:
    # The data checks ride along with the E-step, naming rows as in the whole array.
    check_finite_chunk(block, start, "X")
    check_rows(check, block, start)
    return sequence_chunks(block, lengths, first_sequence=first).expected_stats(model)
