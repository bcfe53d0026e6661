"""Reading numeric tables from files for the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


class DataFileError(ValueError):
    """A data file that cannot be used: missing, empty or with non-numeric cells."""


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


def read_csv_matrix(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """Read a CSV of numbers (header optional) as a float array and column names.

    Raises
    ------
    DataFileError
        Naming the line and column of the first cell that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"no such file: {path}")
    header = _has_header(path)
    frame = pd.read_csv(path, header=0 if header else None, dtype=str, skip_blank_lines=True)
    if frame.empty:
        raise DataFileError(f"{path} holds no rows of data")
    values = frame.apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & frame.notna()
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        line = int(row) + 1 + int(header)
        raise DataFileError(
            f"{path}, line {line}, column {col + 1} ({frame.columns[col]}): "
            f"{frame.iat[row, col]!r} is not a number"
        )
    names = [str(c) for c in frame.columns] if header else [f"x{i}" for i in range(frame.shape[1])]
    return values.to_numpy(dtype=np.float64), names
