"""Data that are not one in-memory array: file sources and Dask arrays, as estimators see them.

An estimator hands its input here when :func:`is_scalable` says so, and gets
back a *source* for the engine (the file source itself, or a
:class:`~emkit.data.dask_source.DaskSource`) and a uniform random sample of at most
:data:`INIT_SAMPLE_ROWS` rows for initialisation (k-means and friends run on
the sample; the whole data are only ever streamed). Parameters given as
``weights_init``/``means_init``/``precisions_init`` do not use the sample, so
in-memory, chunked and Dask fits from them agree to rounding.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emkit.data._row_checks import RowCheck, check_rows, checked_row_values
from emkit.data._validation import check_columns_observed
from emkit.data.file_sources import ChunkSource
from emkit.data.sources import IndexedArraySource

# Rows initialisation sees when the data are streamed or distributed: enough
# for k-means to place the centres well, small enough to hold anywhere.
INIT_SAMPLE_ROWS = 20_000


def is_dask_array(X: Any) -> bool:
    """Whether ``X`` is a ``dask.array.Array`` (without importing dask when it is not loaded)."""
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(X, dask_array.Array)


def is_scalable(X: Any) -> bool:
    """Whether ``X`` is a file source or a Dask array, to be streamed rather than loaded."""
    return isinstance(X, ChunkSource) or is_dask_array(X)


def n_features_of(X: Any) -> int:
    """Columns of a scalable input; a Dask array must be 2-D (rows by columns)."""
    if is_dask_array(X):
        if X.ndim != 2:
            raise ValueError(
                f"expected a 2-D dask array of rows, got {X.ndim} dimension(s) (shape "
                f"{X.shape}); reshape a single feature with X.reshape(-1, 1)"
            )
        return int(X.shape[1])
    return X.n_features


def as_source(
    X: Any, chunk_size: int, check: RowCheck | None = None, *, sample_weight: Any = None,
    labels: Any = None, n_components: int | None = None,
) -> Any:
    """The engine's source for a scalable input, E-stepping at most ``chunk_size`` rows at once.

    Files are read in their own (larger) chunks and Dask blocks can be large;
    the E-step cuts both into ``chunk_size`` rows, as for arrays in memory,
    since its temporaries (``chunk_size * n_components``) then stay in cache.
    ``check(rows)``, if given, runs on every piece inside the statistics pass
    (the data checks of a model's distributions), raising ValueError.

    ``sample_weight`` and ``labels`` (see :class:`RowColumn`) ride with the
    rows: every E-step chunk carries its rows' weights and labels, checked as
    they are read (``labels`` against ``n_components``).
    """
    if is_dask_array(X):
        from emkit.data.dask_source import DaskSource

        return DaskSource(X, chunk_size, check, sample_weight=sample_weight, labels=labels,
                          n_components=n_components)
    return _Rechunked(X, chunk_size, check, RowColumn.of(sample_weight, "sample_weight"),
                      RowColumn.of(labels, "labels", n_components))


@dataclass(frozen=True)
class RowColumn:
    """One value per row of a streamed input (its ``sample_weight`` or ``labels``).

    ``values`` is an in-memory 1-D array, or a file source of one column
    (:func:`emkit.data.sources.open`, read chunk by chunk beside the rows,
    whatever its own chunk size). Values are checked as they are read, naming
    rows by their index in the whole input: weights finite and non-negative,
    labels a component index or -1.
    """

    values: Any
    name: str
    n_components: int | None = None

    @classmethod
    def of(cls, values: Any, name: str, n_components: int | None = None) -> RowColumn | None:
        if values is None:
            return None
        if isinstance(values, ChunkSource):
            if values.n_features != 1:
                raise ValueError(
                    f"{name} must be one value per row: {values!r} has {values.n_features} "
                    "columns"
                )
            return cls(values, name, n_components)
        array = np.asarray(values)
        if array.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one value per row), got shape {array.shape}")
        return cls(array, name, n_components)

    def reader(self) -> _ColumnReader:
        """Values for successive runs of rows, from the first row."""
        if isinstance(self.values, ChunkSource):
            chunks = (chunk[:, 0] for chunk in self.values)
        else:
            chunks = iter([self.values])
        return _ColumnReader(self, chunks)

    def at(self, index: np.ndarray) -> np.ndarray:
        """The checked values of the rows ``index`` (sorted), as for a sample of rows."""
        if not isinstance(self.values, ChunkSource):
            if index.size and index[-1] >= self.values.shape[0]:
                raise ValueError(f"{self.name} has {self.values.shape[0]} values, fewer than "
                                 "the rows of X")
            return self.checked(self.values[index], index=index)
        picked, first = [], 0
        for chunk in self.values:
            inside = index[(index >= first) & (index < first + chunk.shape[0])]
            picked.append(chunk[inside - first, 0])
            first += chunk.shape[0]
        return self.checked(np.concatenate(picked) if picked else np.empty(0), index=index)

    def checked(
        self, values: np.ndarray, first_row: int = 0, index: np.ndarray | None = None
    ) -> np.ndarray:
        """Weights as float64 or labels as int64, after the in-memory checks."""
        return checked_row_values(values, self.name, self.n_components, first_row, index)


@dataclass
class _ColumnReader:
    """Hands out a :class:`RowColumn`'s values run by run, across its own chunks."""

    column: RowColumn
    chunks: Iterator[np.ndarray]
    buffer: np.ndarray = field(default_factory=lambda: np.empty(0))
    first_row: int = 0

    def take(self, n_rows: int) -> np.ndarray:
        parts, held = [self.buffer], self.buffer.shape[0]
        while held < n_rows:
            chunk = next(self.chunks, None)
            if chunk is None:
                raise ValueError(
                    f"{self.column.name} has {self.first_row + held} values, fewer than the "
                    "rows of X"
                )
            parts.append(chunk)
            held += chunk.shape[0]
        values = np.concatenate(parts) if len(parts) > 1 else self.buffer
        self.buffer = values[n_rows:]
        taken = self.column.checked(values[:n_rows], self.first_row)
        self.first_row += n_rows
        return taken

    def finish(self) -> None:
        """Refuse values left over: the column must have exactly one value per row."""
        left = self.buffer.shape[0] + sum(chunk.shape[0] for chunk in self.chunks)
        if left:
            raise ValueError(
                f"{self.column.name} has {self.first_row + left} values, more than the "
                f"{self.first_row} rows of X"
            )


@dataclass
class _Rechunked:
    """A file source whose chunks are cut into pieces of at most ``size`` rows (views)."""

    source: ChunkSource
    size: int
    check: RowCheck | None = None
    weight_column: RowColumn | None = None
    label_column: RowColumn | None = None
    # The initialisation sample with its rows' weights and labels (set by prepare).
    init_rows: IndexedArraySource | None = None
    # The sampled rows' indices in the whole input, sorted (set by prepare).
    init_index: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return self.source.n_features

    def __iter__(self) -> Iterator[np.ndarray]:
        first_row = 0
        columns = [c.reader() if c is not None else None
                   for c in (self.weight_column, self.label_column)]
        for chunk in self.source:
            check_rows(self.check, chunk, first_row)
            weights, labels = (r.take(chunk.shape[0]) if r is not None else None
                               for r in columns)
            # Indexed rows: stochastic EM keys its draws on global row numbers.
            yield from IndexedArraySource(chunk, self.size, first_row, sample_weight=weights,
                                          labels=labels)
            first_row += chunk.shape[0]
        for reader in columns:
            if reader is not None:
                reader.finish()

    def sample_columns(self, index: np.ndarray) -> tuple[Any, Any]:
        """Weights and labels (or None) of the rows ``index``, for the initialisation sample."""
        return tuple(c.at(index) if c is not None else None
                     for c in (self.weight_column, self.label_column))

    def total_weight(self) -> float | None:
        """The summed ``sample_weight`` (None for unit weights): the rows a fit stands for."""
        if self.weight_column is None:
            return None
        reader = self.weight_column.reader()
        return float(sum(chunk.sum() for chunk in reader.chunks) + reader.buffer.sum())

    def __repr__(self) -> str:
        return repr(self.source)


def prepare(
    estimator: Any, X: Any, *, reset: bool, rng: np.random.Generator, chunk_size: int,
    check: RowCheck | None = None, sample_weight: Any = None, labels: Any = None,
    n_components: int | None = None,
) -> tuple[np.ndarray, Any]:
    """Initialisation sample and engine source of a scalable input; sets ``n_features_in_``.

    ``chunk_size``, ``check``, ``sample_weight``, ``labels`` and ``n_components``
    are passed to :func:`as_source`.

    Returns
    -------
    sample : ndarray of shape (n_sample_rows, n_features)
        Uniform random rows (without replacement) to initialise from.
    source : the source to pass to :func:`emkit.core.engine.run_em`. With
        ``sample_weight`` or ``labels``, its ``init_rows`` is an
        :class:`~emkit.data.sources.IndexedArraySource` of the sample carrying
        the sampled rows' weights and labels (None without them); its
        ``init_index`` holds the sampled rows' indices in the whole input
        (sorted), for other per-row start values (``noise_init``).
    """
    source = as_source(X, chunk_size, check, sample_weight=sample_weight, labels=labels,
                       n_components=n_components)
    check_n_features(estimator, source.n_features, reset=reset)
    # File sources are sampled in their own large chunks (fewer merges of the sample).
    if hasattr(source, "sample"):
        sample, index = source.sample(INIT_SAMPLE_ROWS, rng, return_index=True)
    else:
        sample, index = reservoir_sample(X, INIT_SAMPLE_ROWS, rng, return_index=True)
    source.init_index = index
    weights, known = source.sample_columns(index)
    if weights is not None or known is not None:
        source.init_rows = IndexedArraySource(sample, chunk_size, sample_weight=weights,
                                              labels=known)
    if sample.shape[0] < 2:
        raise ValueError(f"{source!r} holds {sample.shape[0]} row(s); a fit needs at least 2")
    check_sample_columns(sample, getattr(source, "n_samples", None) or getattr(
        getattr(source, "source", None), "n_samples", None))
    return sample, source


def n_rows(source: Any) -> int:
    """The rows of a source from :func:`prepare`: known from its array or file header, else
    counted in one pass over the file (a CSV's)."""
    for owner in (source, getattr(source, "source", None)):
        known = getattr(owner, "n_samples", None)
        if known is not None:
            return int(known)
    return sum(chunk.shape[0] for chunk in getattr(source, "source", source))


def check_sample_columns(sample: np.ndarray, n_samples: int | None) -> None:
    """Refuse a column with no observed value, as in memory (naming it).

    Initialisation fills missing values with column means, so a column with none
    in the sample cannot start a fit. Where the sample is the whole data (as
    many rows as it holds, or a CSV of fewer than the sample size), the message
    is the in-memory one; otherwise it says the column was empty in the sample.
    """
    whole = sample.shape[0] < INIT_SAMPLE_ROWS or n_samples == sample.shape[0]
    try:
        check_columns_observed(sample)
    except ValueError as exc:
        if whole:
            raise
        raise ValueError(
            f"{exc} in a uniform sample of {sample.shape[0]} of its {n_samples or 'many'} rows "
            "(too few observed values to start a fit from)"
        ) from None


def check_n_features(estimator: Any, n_features: int, *, reset: bool) -> None:
    """Record (``reset``) or check the number of columns, as scikit-learn's ``validate_data``."""
    if reset:
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )


def reservoir_sample(
    source: Iterable[np.ndarray], size: int, rng: np.random.Generator,
    return_index: bool = False,
) -> Any:
    """A uniform sample of ``size`` rows without replacement, in one pass, in row order.

    Every row gets a uniform random key; the rows with the ``size`` smallest
    keys are kept. Keys are drawn chunk after chunk from one stream, so the
    sample does not depend on the chunk size. ``return_index``: also the
    sampled rows' indices (sorted).
    """
    kept_rows, kept_keys, kept_index, seen = None, np.empty(0), np.empty(0, dtype=np.int64), 0
    for chunk in source:
        keys = rng.random(chunk.shape[0])
        rows = chunk if kept_rows is None else np.concatenate([kept_rows, chunk])
        keys = np.concatenate([kept_keys, keys])
        index = np.concatenate([kept_index, np.arange(seen, seen + chunk.shape[0])])
        seen += chunk.shape[0]
        if keys.size > size:
            keep = np.argpartition(keys, size)[:size]
            rows, keys, index = rows[keep], keys[keep], index[keep]
        kept_rows, kept_keys, kept_index = rows, keys, index
    if kept_rows is None:
        raise ValueError(f"{source!r} yielded no rows")
    order = np.argsort(kept_index)
    return (kept_rows[order], kept_index[order]) if return_index else kept_rows[order]


def map_rows(
    X: Any, func: Callable[[np.ndarray], np.ndarray], n_features: int, n_out: int | None,
    chunk_size: int,
) -> Any:
    """``func`` applied to every chunk of a scalable input, results stacked along rows.

    A Dask array gives a Dask array (lazily, block by block); a file source
    gives a NumPy array of one row (or one value) per row of the file.
    """
    source = as_source(X, chunk_size)
    if source.n_features != n_features:
        raise ValueError(
            f"X has {source.n_features} features, but the model is expecting {n_features} "
            "features as input."
        )
    if hasattr(source, "map_blocks"):
        return source.map_blocks(func, n_out)
    return np.concatenate([func(chunk) for chunk in source], axis=0)
