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
from dataclasses import dataclass
from typing import Any

import numpy as np

from emkit.data._row_checks import RowCheck, check_rows
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


def as_source(X: Any, chunk_size: int, check: RowCheck | None = None) -> Any:
    """The engine's source for a scalable input, E-stepping at most ``chunk_size`` rows at once.

    Files are read in their own (larger) chunks and Dask blocks can be large;
    the E-step cuts both into ``chunk_size`` rows, as for arrays in memory,
    since its temporaries (``chunk_size * n_components``) then stay in cache.
    ``check(rows)``, if given, runs on every piece inside the statistics pass
    (the data checks of a model's distributions), raising ValueError.
    """
    if is_dask_array(X):
        from emkit.data.dask_source import DaskSource

        return DaskSource(X, chunk_size, check)
    return _Rechunked(X, chunk_size, check)


@dataclass(frozen=True)
class _Rechunked:
    """A file source whose chunks are cut into pieces of at most ``size`` rows (views)."""

    source: ChunkSource
    size: int
    check: RowCheck | None = None

    @property
    def n_features(self) -> int:
        return self.source.n_features

    def __iter__(self) -> Iterator[np.ndarray]:
        first_row = 0
        for chunk in self.source:
            check_rows(self.check, chunk, first_row)
            # Indexed rows: stochastic EM keys its draws on global row numbers.
            yield from IndexedArraySource(chunk, self.size, first_row)
            first_row += chunk.shape[0]

    def __repr__(self) -> str:
        return repr(self.source)


def prepare(
    estimator: Any, X: Any, *, reset: bool, rng: np.random.Generator, chunk_size: int,
    check: RowCheck | None = None,
) -> tuple[np.ndarray, Any]:
    """Initialisation sample and engine source of a scalable input; sets ``n_features_in_``.

    ``chunk_size`` and ``check`` are passed to :func:`as_source`.

    Returns
    -------
    sample : ndarray of shape (n_sample_rows, n_features)
        Uniform random rows (without replacement) to initialise from.
    source : the source to pass to :func:`emkit.core.engine.run_em`.
    """
    source = as_source(X, chunk_size, check)
    check_n_features(estimator, source.n_features, reset=reset)
    # File sources are sampled in their own large chunks (fewer merges of the sample).
    sample = source.sample(INIT_SAMPLE_ROWS, rng) if hasattr(source, "sample") else (
        reservoir_sample(X, INIT_SAMPLE_ROWS, rng))
    if sample.shape[0] < 2:
        raise ValueError(f"{source!r} holds {sample.shape[0]} row(s); a fit needs at least 2")
    check_sample_columns(sample, getattr(source, "n_samples", None) or getattr(
        getattr(source, "source", None), "n_samples", None))
    return sample, source


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
    source: Iterable[np.ndarray], size: int, rng: np.random.Generator
) -> np.ndarray:
    """A uniform sample of ``size`` rows without replacement, in one pass, in row order.

    Every row gets a uniform random key; the rows with the ``size`` smallest
    keys are kept. Keys are drawn chunk after chunk from one stream, so the
    sample does not depend on the chunk size.
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
    return kept_rows[np.argsort(kept_index)]


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
