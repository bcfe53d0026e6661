"""The data checks a model's distributions run on every piece of a streamed or Dask input.

Shared by :mod:`emkit.data.scale` (file sources) and :mod:`emkit.data.dask_source`
(Dask blocks), which both run a check inside the statistics pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

RowCheck = Callable[[np.ndarray], None]


def check_rows(check: RowCheck | None, rows: np.ndarray, first_row: int) -> None:
    """Run ``check`` on rows that start at global row ``first_row``, saying where they are.

    Examples
    --------
    >>> import numpy as np
    >>> def positive(rows):
    ...     if (rows <= 0).any():
    ...         raise ValueError("a value is not positive")
    >>> check_rows(positive, np.array([[1.0], [-1.0]]), first_row=10)
    Traceback (most recent call last):
    ...
    ValueError: in the 2 rows from row 10 on: a value is not positive
    """
    if check is None:
        return
    try:
        check(rows)
    except ValueError as exc:
        # The check counts rows from the start of the piece it saw.
        raise ValueError(f"in the {rows.shape[0]} rows from row {first_row} on: {exc}") from None


def checked_row_values(
    values: np.ndarray, name: str, n_components: int | None = None,
    first_row: int = 0, index: np.ndarray | None = None,
) -> np.ndarray:
    """A run of per-row ``sample_weight`` (float64) or ``labels`` (int64), checked as in memory.

    Weights must be finite and non-negative (a run of zeros is no error: zero
    means "absent"); labels a component index below ``n_components``, or -1.
    Errors name rows by their index in the whole input: ``index`` (the rows of
    a sample), else ``first_row`` onwards.
    """
    from emkit.data import _validation as v

    rows = index if index is not None else first_row + np.arange(values.shape[0])
    try:
        if name == "labels":
            return v.check_labels(values, values.shape[0], n_components)
        weights = np.asarray(values, dtype=np.float64)
        if (~np.isfinite(weights) | (weights < 0)).any():
            v.check_sample_weight(weights, weights.shape[0])
        return weights
    except ValueError as exc:
        # The in-memory message counts rows within the run: name them in the input.
        message = re.sub(r"row\(s\) \[([0-9, ]+)\]", lambda m: "row(s) " + str(
            [int(rows[int(i)]) for i in m.group(1).split(",")]), str(exc))
        raise ValueError(message) from None
