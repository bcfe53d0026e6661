"""Reading numeric tables from files (CSV, Parquet, .npy) and writing CSV results.

CSV files are read as text cells first, so that a bad cell can be named by its
line and column. The separator (``,``, ``;``, tab or ``|``) and a decimal comma
are detected from the first lines unless given; a header is detected from the
first line; a UTF-8 byte-order mark is ignored; a row whose number of fields
differs from the first row's is refused with its line number (pandas would
otherwise shift every column of such a file).
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd


class DataFileError(ValueError):
    """A data file that cannot be used: missing, empty, unknown format or non-numeric cells."""


# Cells and names quoted in messages are cut to this many characters (a 5 MB
# cell must not become a 5 MB error message).
SHOWN_CHARACTERS = 40
SEPARATORS = (",", ";", "\t", "|")
# Lines looked at to detect the separator, the decimal mark and the header.
SNIFF_LINES = 50
SNIFF_BYTES = 1 << 16
MISSING_TOKENS = frozenset({"", "na", "nan", "n/a", "null", "none", "#n/a", "<na>"})
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d*,\d+([eE][+-]?\d+)?\s*$")
ENCODING = "utf-8-sig"  # UTF-8, with or without a byte-order mark


def shorten(value: Any, limit: int = SHOWN_CHARACTERS) -> str:
    """``repr`` of a value, cut to about ``limit`` characters for messages."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(str(value))} characters)"


@dataclass(frozen=True)
class CsvFormat:
    """How a CSV file is written: its separator, decimal mark and whether it has a header."""

    sep: str
    decimal: str
    header: bool


def _looks_numeric(cell: str, decimal: str = ".") -> bool:
    text = cell.strip()
    if text.lower() in MISSING_TOKENS:
        return True
    if decimal != ".":
        text = text.replace(decimal, ".")
    try:
        float(text)
    except ValueError:
        return False
    return True


def _sample_lines(path: Path) -> list[str]:
    """The first non-blank lines of a text file (at most SNIFF_LINES, whole lines only)."""
    try:
        with path.open(encoding=ENCODING, newline="") as handle:
            text = handle.read(SNIFF_BYTES)
    except UnicodeDecodeError:
        raise DataFileError(
            f"{path} is not a UTF-8 text file (expected CSV, Parquet or .npy)"
        ) from None
    lines = text.splitlines()
    if len(text) == SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    return [line for line in lines if line.strip()][:SNIFF_LINES]


def _field_counts(lines: list[str], sep: str) -> list[int]:
    return [len(row) for row in csv.reader(lines, delimiter=sep)]


def _detect_sep(lines: list[str]) -> str:
    """The separator giving every sampled line the same number (> 1) of fields."""
    consistent = []
    for sep in SEPARATORS:
        counts = _field_counts(lines, sep)
        if counts and counts[0] > 1 and len(set(counts)) == 1:
            consistent.append(sep)
    if "," in consistent and ";" in consistent:
        # "1,5;2,5": commas are decimal marks when the ;-separated cells look like numbers.
        cells = [c for row in csv.reader(lines, delimiter=";") for c in row]
        if any(_DECIMAL_COMMA.match(c) for c in cells):
            return ";"
    return consistent[0] if consistent else ","


def sniff_csv(path: Path, sep: str | None = None, decimal: str | None = None) -> CsvFormat:
    """Detect the separator, the decimal mark and the header of a CSV file.

    Parameters
    ----------
    path : Path
    sep, decimal : str, optional
        Given values are kept; missing ones are detected from the first lines.

    Returns
    -------
    CsvFormat
    """
    lines = _sample_lines(path)
    if not lines:
        raise DataFileError(f"{path} holds no rows of data")
    if sep is None:
        sep = _detect_sep(lines)
    if decimal is None:
        cells = [c for row in csv.reader(lines, delimiter=sep) for c in row]
        decimal = "," if sep != "," and any(_DECIMAL_COMMA.match(c) for c in cells) else "."
    first = next(csv.reader(lines[:1], delimiter=sep))
    header = not all(_looks_numeric(cell, decimal) for cell in first)
    return CsvFormat(sep=sep, decimal=decimal, header=header)


def _has_header(path: Path) -> bool:
    return sniff_csv(path).header


def check_field_counts(path: Path, fmt: CsvFormat) -> None:
    """Refuse a row whose number of fields differs from the first row's, naming its line."""
    # The csv module refuses cells over 128 KiB; pandas reads them, and a huge
    # cell is then reported (shortened) as not a number.
    limit = csv.field_size_limit(2**31 - 1)
    try:
        _count_fields(path, fmt)
    except csv.Error as exc:
        raise DataFileError(f"{path}: {exc}") from None
    finally:
        csv.field_size_limit(limit)


def _count_fields(path: Path, fmt: CsvFormat) -> None:
    with path.open(encoding=ENCODING, newline="") as handle:
        reader = csv.reader(handle, delimiter=fmt.sep)
        width, first_line = None, 0
        for row in reader:
            if not row:  # a blank line: skipped, as pandas does
                continue
            if width is None:
                width, first_line = len(row), reader.line_num
            elif len(row) != width:
                raise DataFileError(
                    f"{path}, line {reader.line_num}: {len(row)} fields where line "
                    f"{first_line} has {width} (separator {fmt.sep!r}; give another with --sep)"
                )


# The name of the column that catches a row's surplus fields.
EXTRA_FIELD = "__emkit_extra_field__"


def header_names(path: Path, fmt: CsvFormat) -> list[str]:
    """Column names as pandas makes them (``x0, x1, ...`` without a header)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        head = pd.read_csv(path, sep=fmt.sep, header=0 if fmt.header else None, dtype=str,
                           index_col=False, encoding=ENCODING, nrows=1)
    if not fmt.header:
        return [f"x{i}" for i in range(head.shape[1])]
    return [str(c) for c in head.columns]


def _read_csv(path: Path, sep: str | None = None, decimal: str | None = None) -> pd.DataFrame:
    """Cells as strings (so bad ones can be located); format detected unless given.

    The rows are read with one column more than the first row has: a longer
    row fills it (pandas would otherwise take a longer first row's first field
    as an index and shift every column). Only when that column or the last
    one holds a gap are the fields counted line by line, to refuse a ragged
    row with its line number.
    """
    fmt = sniff_csv(path, sep, decimal)
    names = header_names(path, fmt)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path, sep=fmt.sep, header=None, skiprows=1 if fmt.header else 0,
                names=[*range(len(names)), EXTRA_FIELD], dtype=str, index_col=False,
                encoding=ENCODING,
            )
    except pd.errors.ParserError:
        check_field_counts(path, fmt)
        raise
    if (caught or frame[EXTRA_FIELD].notna().any() or frame[len(names) - 1].isna().any()):
        check_field_counts(path, fmt)
    frame = frame.drop(columns=EXTRA_FIELD).set_axis(names, axis=1)
    frame.attrs["first_data_line"] = 2 if fmt.header else 1
    frame.attrs["decimal"] = fmt.decimal
    frame.attrs["sep"] = fmt.sep
    return frame


def read_frame(
    path: str | Path, sep: str | None = None, decimal: str | None = None
) -> pd.DataFrame:
    """A data file as a table: text cells for CSV, typed columns for Parquet and ``.npy``.

    Parameters
    ----------
    path : str or Path
        ``.npy``, ``.parquet``/``.pq``, or CSV (anything else; header optional).
    sep, decimal : str, optional
        CSV separator and decimal mark; detected from the first lines when not given.

    Raises
    ------
    DataFileError
        A missing, unreadable or empty file, or a CSV row with a wrong number of fields.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"no such file: {path}")
    try:
        frame = _read_any(path, sep, decimal)
    except DataFileError:
        raise
    except (ValueError, OSError, UnicodeError) as exc:
        raise DataFileError(f"cannot read {path}: {_one_line(exc)}") from None
    if frame.empty:
        raise DataFileError(f"{path} holds no rows of data")
    return frame


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _read_any(path: Path, sep: str | None, decimal: str | None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = read_npy(path)  # one .npy policy for both readers
        return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return _read_csv(path, sep, decimal)


def _column_list(frame: pd.DataFrame) -> str:
    names = [str(c) for c in frame.columns]
    shown = ", ".join(shorten(n)[1:-1] if len(n) > SHOWN_CHARACTERS else n for n in names[:20])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 20 else "")


def _resolve(frame: pd.DataFrame, column: str, path: Path) -> Any:
    if column in frame.columns:
        return column
    if column.isdigit() and int(column) < frame.shape[1]:
        return frame.columns[int(column)]
    raise DataFileError(
        f"{path} has no column {shorten(column)} (columns: {_column_list(frame)})"
    )


def _select_columns(
    frame: pd.DataFrame, columns: Sequence[str] | None, path: Path,
    exclude: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Columns by name or 0-based index, in that order, less the excluded ones."""
    picked = [_resolve(frame, c, path) for c in columns] if columns else list(frame.columns)
    dropped = {_resolve(frame, c, path) for c in exclude or ()}
    picked = [c for c in picked if c not in dropped]
    if not picked:
        raise DataFileError(f"{path}: no columns left to use (columns: {_column_list(frame)})")
    selected = frame[picked]
    selected.attrs.update(frame.attrs)
    return selected


def select_columns(
    frame: pd.DataFrame, path: str | Path, columns: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The columns of ``frame`` to use: ``columns`` (names or indices), less ``exclude``."""
    return _select_columns(frame, columns, Path(path), exclude)


def _unnamed(frame: pd.DataFrame, path: Path) -> None:
    """Refuse a column without a name in the header: usually a pandas index, not data."""
    for name in frame.columns:
        if str(name).startswith("Unnamed: "):
            raise DataFileError(
                f"{path}: column {shorten(str(name))} has no name in the header (typically "
                "a row index written by pandas' to_csv); leave it out with "
                f"--exclude '{name}', or write the file with index=False"
            )


def _as_text_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells with a decimal comma rewritten with a point; other frames unchanged."""
    if frame.attrs.get("decimal", ".") == ".":
        return frame
    return frame.apply(
        lambda c: c.str.replace(",", ".", regex=False)
        if c.dtype == object or pd.api.types.is_string_dtype(c) else c
    )


def _to_numbers(frame: pd.DataFrame, path: Path) -> np.ndarray:
    """Floats of the cells; NaN for missing ones; a clear error naming non-numeric ones."""
    values = _as_text_numbers(frame).apply(pd.to_numeric, errors="coerce")
    bad = (values.isna() & frame.notna()).to_numpy()
    if bad.any():
        _refuse_text(frame, bad, path)
    try:
        return values.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:  # complex, datetimes: not a table of real numbers
        raise DataFileError(f"{path} holds values that are not real numbers: {exc}") from None


def _refuse_text(frame: pd.DataFrame, bad: np.ndarray, path: Path) -> None:
    hint = ""
    if frame.shape[1] == 1 and frame.attrs.get("sep") is not None:
        hint = f" (read with separator {frame.attrs['sep']!r}; give another with --sep)"
    present = frame.notna().to_numpy()
    # Columns of text: every cell present is bad (not one typo in a column of numbers).
    text_columns = [j for j in range(frame.shape[1])
                    if bad[:, j].any() and bad[:, j].sum() == present[:, j].sum()]
    if text_columns:
        names = ", ".join(shorten(str(frame.columns[j])) for j in text_columns[:10])
        example = frame.iat[int(np.argmax(bad[:, text_columns[0]])), text_columns[0]]
        raise DataFileError(
            f"{path}: non-numeric column{'s' if len(text_columns) > 1 else ''} {names} "
            f"(e.g. {shorten(example)}){hint}; leave them out with --exclude or pick "
            "numeric ones with --columns"
        )
    row, col = (int(i) for i in np.argwhere(bad)[0])
    where = (f"line {row + frame.attrs['first_data_line']}, " if "first_data_line" in frame.attrs
             else f"row {row}, ")
    raise DataFileError(
        f"{path}, {where}column {col + 1} ({shorten(str(frame.columns[col]))[1:-1]}): "
        f"{shorten(frame.iat[row, col])} is not a number{hint}"
    )


def to_numbers(frame: pd.DataFrame, path: str | Path) -> np.ndarray:
    """The cells of ``frame`` as a float array, refusing unnamed and non-numeric columns."""
    _unnamed(frame, Path(path))
    return _to_numbers(frame, Path(path))


def read_table(
    path: str | Path, columns: Sequence[str] | None = None, *,
    exclude: Sequence[str] | None = None, sep: str | None = None, decimal: str | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Read a numeric table as a float array and its column names.

    Parameters
    ----------
    path : str or Path
        ``.npy``, ``.parquet``/``.pq``, or CSV (anything else; header optional).
    columns : sequence of str, optional
        Column names or 0-based indices to keep, in that order.
    exclude : sequence of str, optional
        Column names or 0-based indices to leave out (a label column, say).
    sep, decimal : str, optional
        CSV separator and decimal mark; detected from the first lines when not given.

    Raises
    ------
    DataFileError
        A missing or empty file, a ragged CSV row, an unknown or unnamed column,
        a non-numeric column, or a cell that is not a number (naming its line
        and column).
    """
    path = Path(path)
    frame = select_columns(read_frame(path, sep, decimal), path, columns, exclude)
    return to_numbers(frame, path), [str(c) for c in frame.columns]


def write_csv(
    table: np.ndarray | pd.DataFrame, names: Sequence[str] | None,
    path: str | Path | IO[str] | None,
) -> str | None:
    """Write rows as CSV with a header to ``path`` (a file or a text stream).

    Integer columns (of a DataFrame, or an integer array) are written as
    integers. Returns the text when ``path`` is None.
    """
    if isinstance(table, pd.DataFrame):
        frame = table
    else:
        frame = pd.DataFrame(np.asarray(table), columns=list(names or ()))
    return frame.to_csv(path, index=False)


def npy_header(
    path: Path, *, by_rows: bool = True
) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of a ``.npy`` file, refusing what cannot be fitted.

    The one reader policy of both the streaming and the in-memory reader:
    real numbers only (no complex, datetime, text or Python objects), a file as
    long as its header declares. ``by_rows`` also refuses column-major files,
    which cannot stream by rows.
    """
    with path.open("rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran_order, dtype = read_header(handle)
        except (ValueError, EOFError, SyntaxError) as exc:
            raise DataFileError(
                f"{path} is not a readable .npy file (no NumPy array header: {exc})"
            ) from None
        offset = handle.tell()
    if len(shape) not in (1, 2):
        raise DataFileError(f"{path} holds a {len(shape)}-D array; expected 2-D")
    if by_rows and fortran_order and len(shape) == 2 and shape[1] > 1:
        raise DataFileError(
            f"{path} is stored column by column (Fortran order), so rows cannot be streamed: "
            "save it with np.save(path, np.ascontiguousarray(X))"
        )
    _check_npy_dtype(dtype, path)
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    actual = path.stat().st_size - offset
    if declared != actual:
        raise DataFileError(
            f"{path} declares {shape} {dtype} values ({declared:,} bytes) but holds "
            f"{actual:,} bytes of data: truncated or damaged"
        )
    return shape, dtype, offset


def _check_npy_dtype(dtype: np.dtype, path: Path) -> None:
    """Real numbers (booleans, integers, floats) only, each refusal saying what to do."""
    if dtype.kind in "biuf" and not dtype.hasobject:
        return
    advice = {
        "c": "complex numbers: emkit fits real values (put the real and imaginary parts "
             "in columns of their own)",
        "M": "dates and times: convert them to numbers first (e.g. seconds since a start)",
        "m": "time spans: convert them to numbers first (e.g. seconds)",
        "O": "Python objects, which only pickle could read (never done)",
        "U": "text: convert it to numbers first",
        "S": "bytes: convert them to numbers first",
    }.get(dtype.kind, "values that are not numbers")
    raise DataFileError(f"{path} holds {dtype} values, {advice}")


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """A whole ``.npy`` file in memory, under the streaming reader's policy.

    Raises
    ------
    DataFileError
        For anything :class:`emkit.data.file_sources.NpySource` refuses (except
        column-major order), or a file too large to hold in memory.
    """
    path = Path(path)
    shape, _, _ = npy_header(path, by_rows=False)
    try:
        array = np.load(path, allow_pickle=False)
    except MemoryError:
        raise DataFileError(
            f"{path} holds {shape} values, too many to load into memory: stream it with "
            "emkit.data.sources.open"
        ) from None
    return array[:, None] if array.ndim == 1 else array
