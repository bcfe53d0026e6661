"""Out-of-core sources: ``.npy``, CSV and Parquet files read in row chunks.

Each source is re-iterable: every EM pass opens the file again and streams it
in chunks of ``chunk_size`` rows, so memory is bounded by the chunk, never by
the file. Infinite values are caught while the statistics are computed (no
separate pass), naming the global row and column; NaN (and Parquet nulls, and
empty CSV cells) are missing values, fitted around as in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emkit.data import _io_tables
from emkit.data._io_tables import DataFileError, npy_header

DEFAULT_CHUNK_SIZE = 65536


def _as_float(chunk: np.ndarray) -> np.ndarray:
    """float32 stays float32 (the user chose it); everything else becomes float64."""
    return chunk if chunk.dtype == np.float32 else chunk.astype(np.float64, copy=False)


def check_finite_chunk(chunk: np.ndarray, first_row: int, name: str) -> None:
    """Raise a ValueError naming the global row and column of the first infinity.

    NaN is a missing value, as in memory: the estimators fit around it.
    """
    infinite = np.isinf(chunk)
    if not infinite.any():
        return
    row, col = (int(i) for i in np.argwhere(infinite)[0])
    kind = "inf" if chunk[row, col] > 0 else "-inf"
    raise ValueError(
        f"{name} contains {kind} at row {first_row + row}, column {col}: "
        "every value must be finite or NaN (missing)"
    )


class ChunkSource:
    """Base of file sources: subclasses yield raw float chunks from ``_chunks``.

    Attributes
    ----------
    path : Path
    chunk_size : int
    n_features : int
    n_samples : int or None
        Known from the file's metadata (``.npy``, Parquet), None for CSV.
    columns : list of str
        Column names (``x0, x1, ...`` where the file has none).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from emkit.data.file_sources import open_file
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.npy")
    >>> np.save(path, np.array([[1.0, 2.0], [np.inf, 4.0]]))
    >>> list(open_file(path))
    Traceback (most recent call last):
    ...
    ValueError: ...rows.npy contains inf at row 1, column 0: every value must be finite or NaN...
    """

    path: Path
    chunk_size: int
    n_features: int
    n_samples: int | None
    columns: list[str]

    def _chunks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[np.ndarray]:
        first_row = 0
        for chunk in self._chunks():
            check_finite_chunk(chunk, first_row, str(self.path))
            first_row += chunk.shape[0]
            yield chunk

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, chunk_size={self.chunk_size})"


class NpySource(ChunkSource):
    """Row chunks of a 2-D (or 1-D, as one column) C-ordered ``.npy`` file.

    The header is parsed once; each pass seeks past it and reads
    ``chunk_size`` rows at a time with :func:`numpy.fromfile`, so nothing is
    memory-mapped and resident memory stays at one chunk.

    Parameters
    ----------
    path : str or path-like
    chunk_size : int
    columns : sequence of int, optional
        Column indices to keep.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from emkit.data.file_sources import NpySource
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.npy")
    >>> np.save(path, np.arange(10.0).reshape(5, 2))
    >>> [c.shape for c in NpySource(path, chunk_size=2)]
    [(2, 2), (2, 2), (1, 2)]
    """

    def __init__(
        self, path: str | os.PathLike, chunk_size: int = DEFAULT_CHUNK_SIZE,
        columns: Sequence[int | str] | None = None,
    ) -> None:
        self.path, self.chunk_size = Path(path), int(chunk_size)
        shape, self._dtype, self._offset = npy_header(self.path)
        self.n_samples = shape[0]
        width = shape[1] if len(shape) == 2 else 1
        self._width = width
        self._keep = _column_indices(columns, width, self.path)
        self.n_features = width if self._keep is None else len(self._keep)
        picked = range(width) if self._keep is None else self._keep
        self.columns = [f"x{i}" for i in picked]

    def _chunks(self) -> Iterator[np.ndarray]:
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            for start in range(0, self.n_samples, self.chunk_size):
                rows = min(self.chunk_size, self.n_samples - start)
                flat = np.fromfile(handle, dtype=self._dtype, count=rows * self._width)
                if flat.size != rows * self._width:
                    raise DataFileError(f"{self.path} is truncated (ends before row {start})")
                chunk = flat.reshape(rows, self._width)
                if self._keep is not None:
                    chunk = chunk[:, self._keep]
                yield _as_float(chunk)


def _column_indices(
    columns: Sequence[int | str] | None, width: int, path: Path
) -> list[int] | None:
    if not columns:
        return None
    keep = []
    for column in columns:
        text = str(column).removeprefix("x")
        if not text.isdigit() or int(text) >= width:
            raise DataFileError(f"{path} has no column {column!r} ({width} columns: x0, x1, ...)")
        keep.append(int(text))
    return keep


class CsvSource(ChunkSource):
    """Row chunks of a numeric CSV file (header optional, detected from the first line).

    Parsed by pandas in chunks of ``chunk_size`` rows; empty cells are missing
    values (NaN); a cell that is not a number is reported with its line and column.

    Parameters
    ----------
    path : str or path-like
    chunk_size : int
    columns : sequence of str, optional
        Column names or 0-based indices to keep, in that order.
    sep, decimal : str, optional
        Separator and decimal mark; detected from the first lines when not given.
        A row with more fields than the first is refused with its line number.

    Examples
    --------
    >>> import tempfile, os
    >>> from emkit.data.file_sources import CsvSource
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.csv")
    >>> _ = open(path, "w").write("a,b\\n1,2\\n3,4\\n5,6\\n")
    >>> source = CsvSource(path, chunk_size=2)
    >>> source.columns, [c.tolist() for c in source]
    (['a', 'b'], [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0]]])
    """

    def __init__(
        self, path: str | os.PathLike, chunk_size: int = DEFAULT_CHUNK_SIZE,
        columns: Sequence[str] | None = None, sep: str | None = None,
        decimal: str | None = None,
    ) -> None:
        self.path, self.chunk_size = Path(path), int(chunk_size)
        self._format = _io_tables.sniff_csv(self.path, sep, decimal)
        self._header = self._format.header
        self._names = _io_tables.header_names(self.path, self._format)
        first = pd.DataFrame(columns=self._names)
        first = _io_tables.select_columns(first, self.path, columns)
        _io_tables._unnamed(first, self.path)
        self._picked = list(first.columns) if columns else None
        self.columns = [str(c) for c in first.columns]
        self.n_features, self.n_samples = len(self.columns), None

    def _chunks(self) -> Iterator[np.ndarray]:
        try:
            with self._reader(np.float64) as reader:
                first_line = 2 if self._header else 1
                for frame in reader:
                    frame = self._checked_width(frame, first_line)
                    first_line += frame.shape[0]
                    yield self._picked_columns(frame).to_numpy(dtype=np.float64)
        except DataFileError:
            raise
        except ValueError as exc:
            if "Error tokenizing" in str(exc):  # more fields than the extra column holds
                raise DataFileError(f"{self.path}: {' '.join(str(exc).split())}") from None
            # A cell that is not a number. Parsing floats directly cannot say
            # where it is; scanning the cells as strings (10x slower, only on
            # this error path) names its line and column.
            for _ in self._string_chunks():
                pass
            raise

    def _reader(self, dtype: Any):
        """A pandas chunk reader with one column more than the first row, for longer rows.

        Without that column pandas would take a longer first row's first field
        as an index and shift every column.
        """
        fmt = self._format
        return pd.read_csv(
            self.path, sep=fmt.sep, header=None, skiprows=1 if fmt.header else 0,
            names=[*range(len(self._names)), _io_tables.EXTRA_FIELD], dtype=dtype, index_col=False,
            encoding=_io_tables.ENCODING, chunksize=self.chunk_size,
            decimal=fmt.decimal if dtype is not str else ".",
        )

    def _checked_width(self, frame: pd.DataFrame, first_line: int) -> pd.DataFrame:
        extra = frame[_io_tables.EXTRA_FIELD].notna().to_numpy()
        if extra.any():
            row = int(np.argmax(extra))
            raise DataFileError(
                f"{self.path}, line {first_line + row}: more fields than the "
                f"{len(self._names)} of the first line (separator {self._format.sep!r}; "
                "give another with --sep)"
            )
        frame = frame.drop(columns=_io_tables.EXTRA_FIELD)
        frame.columns = self._names
        return frame

    def _picked_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame if self._picked is None else frame[self._picked]

    def _string_chunks(self) -> Iterator[np.ndarray]:
        first_line = 2 if self._header else 1
        with self._reader(str) as reader:
            for frame in reader:
                frame = self._picked_columns(self._checked_width(frame, first_line))
                frame.attrs.update(first_data_line=first_line, decimal=self._format.decimal,
                                   sep=self._format.sep)
                first_line += frame.shape[0]
                yield _io_tables._to_numbers(frame, self.path)


class ParquetSource(ChunkSource):
    """Row chunks of a Parquet file, read in record batches by pyarrow.

    Parameters
    ----------
    path : str or path-like
    chunk_size : int
    columns : sequence of str, optional
        Column names or 0-based indices to keep, in that order.

    Examples
    --------
    >>> import tempfile, os
    >>> import pandas as pd
    >>> from emkit.data.file_sources import ParquetSource
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.parquet")
    >>> pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4, 5, 6]}).to_parquet(path)
    >>> source = ParquetSource(path, chunk_size=2)
    >>> source.n_samples, [c.shape for c in source]
    (3, [(2, 2), (1, 2)])
    """

    def __init__(
        self, path: str | os.PathLike, chunk_size: int = DEFAULT_CHUNK_SIZE,
        columns: Sequence[str] | None = None,
    ) -> None:
        import pyarrow.parquet as pq

        self.path, self.chunk_size = Path(path), int(chunk_size)
        try:
            self._file = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises its own error types
            raise DataFileError(f"cannot read {self.path}: {exc}") from None
        schema = self._file.schema_arrow
        empty = pd.DataFrame(columns=schema.names)
        self.columns = [str(c) for c in _io_tables._select_columns(empty, columns, self.path)]
        for name in self.columns:
            kind = schema.field(name).type
            if not _is_number(kind):
                raise DataFileError(f"{self.path}, column {name!r} holds {kind}, not numbers")
        self.n_features = len(self.columns)
        self.n_samples = self._file.metadata.num_rows

    def _chunks(self) -> Iterator[np.ndarray]:
        for batch in self._file.iter_batches(batch_size=self.chunk_size, columns=self.columns):
            chunk = np.empty((batch.num_rows, self.n_features), dtype=np.float64)
            for j in range(self.n_features):
                # Nulls become NaN: missing values.
                chunk[:, j] = batch.column(j).to_numpy(zero_copy_only=False)
            yield chunk


def _is_number(kind) -> bool:
    import pyarrow.types as pat

    return pat.is_integer(kind) or pat.is_floating(kind) or pat.is_boolean(kind)


_FORMATS = {".npy": NpySource, ".parquet": ParquetSource, ".pq": ParquetSource}


def open_file(
    path: str | os.PathLike, chunk_size: int = DEFAULT_CHUNK_SIZE,
    columns: Sequence[str] | None = None,
) -> ChunkSource:
    """A re-iterable source of float row chunks read from a file, never loaded whole.

    Parameters
    ----------
    path : str or path-like
        ``.npy`` (2-D, C order), ``.parquet``/``.pq``, or CSV (any other suffix).
    chunk_size : int, default=65536
        Rows per chunk: memory is bounded by ``chunk_size * n_features`` (and
        ``chunk_size * n_components`` in the E-step).
    columns : sequence of str, optional
        Column names or 0-based indices to keep.

    Returns
    -------
    ChunkSource
        Iterating it yields arrays of shape (rows, n_features), float64 (float32
        ``.npy`` files stay float32).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"no such file: {path}")
    if not isinstance(chunk_size, int | np.integer) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    return _FORMATS.get(path.suffix.lower(), CsvSource)(path, chunk_size, columns)
