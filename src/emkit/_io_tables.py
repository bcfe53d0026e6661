"""Reading numeric tables from files (CSV, Parquet, .npy) and writing CSV results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd


class DataFileError(ValueError):
    """A data file that cannot be used: missing, empty, unknown format or non-numeric cells."""


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _has_header(path: Path) -> bool:
    with path.open() as handle:
        first = handle.readline().strip()
    return bool(first) and not all(_looks_numeric(c) for c in first.split(","))


def _read_csv(path: Path) -> pd.DataFrame:
    """Cells as strings (so bad ones can be located), header detected from the first line."""
    header = _has_header(path)
    frame = pd.read_csv(path, header=0 if header else None, dtype=str)
    if not header:
        frame.columns = [f"x{i}" for i in range(frame.shape[1])]
    frame.attrs["first_data_line"] = 2 if header else 1
    return frame


def _read_frame(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        from emkit.file_sources import read_npy  # one .npy policy for both readers

        array = read_npy(path)
        return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return _read_csv(path)


def _select_columns(
    frame: pd.DataFrame, columns: Sequence[str] | None, path: Path
) -> pd.DataFrame:
    if not columns:
        return frame
    picked = []
    for column in columns:
        if column in frame.columns:
            picked.append(column)
        elif column.isdigit() and int(column) < frame.shape[1]:
            picked.append(frame.columns[int(column)])
        else:
            raise DataFileError(
                f"{path} has no column {column!r} (columns: {', '.join(map(str, frame.columns))})"
            )
    return frame[picked]


def _to_numbers(frame: pd.DataFrame, path: Path) -> np.ndarray:
    values = frame.apply(pd.to_numeric, errors="coerce")
    bad = (values.isna() & frame.notna()).to_numpy()
    if bad.any():
        row, col = np.argwhere(bad)[0]
        where = f"line {int(row) + frame.attrs.get('first_data_line', 1)}, " if (
            "first_data_line" in frame.attrs) else f"row {int(row)}, "
        raise DataFileError(
            f"{path}, {where}column {frame.columns.get_loc(frame.columns[col]) + 1} "
            f"({frame.columns[col]}): {frame.iat[row, col]!r} is not a number"
        )
    return values.to_numpy(dtype=np.float64)


def read_table(
    path: str | Path, columns: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Read a numeric table as a float array and its column names.

    Parameters
    ----------
    path : str or Path
        ``.npy``, ``.parquet``/``.pq``, or CSV (anything else; header optional).
    columns : sequence of str, optional
        Column names or 0-based indices to keep, in that order.

    Raises
    ------
    DataFileError
        A missing or empty file, an unknown column, or a cell that is not a
        number (naming its line and column).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"no such file: {path}")
    try:
        frame = _read_frame(path)
    except (ValueError, OSError) as exc:
        raise DataFileError(f"cannot read {path}: {exc}") from None
    if frame.empty:
        raise DataFileError(f"{path} holds no rows of data")
    attrs = dict(frame.attrs)
    frame = _select_columns(frame, columns, path)
    frame.attrs.update(attrs)
    return _to_numbers(frame, path), [str(c) for c in frame.columns]


def write_csv(array: np.ndarray, names: Sequence[str], path: str | Path | None) -> str | None:
    """Write rows as CSV with a header to ``path``, or return the text when ``path`` is None."""
    frame = pd.DataFrame(np.asarray(array), columns=list(names))
    return frame.to_csv(path, index=False)
