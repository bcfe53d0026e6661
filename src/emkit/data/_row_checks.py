"""The data checks a model's distributions run on every piece of a streamed or Dask input.

Shared by :mod:`emkit.data.scale` (file sources) and :mod:`emkit.data.dask_source`
(Dask blocks), which both run a check inside the statistics pass.
"""

from __future__ import annotations

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
