"""Small data sets shipped with emkit."""

from __future__ import annotations

from importlib import resources

import numpy as np


def load_faithful() -> np.ndarray:
    """Old Faithful geyser eruptions: 272 rows of (eruption minutes, waiting minutes).

    Returns
    -------
    ndarray of shape (272, 2)
        Columns: eruption duration and waiting time to the next eruption, in minutes
        (Azzalini and Bowman, 1990; R's ``datasets::faithful``).
    """
    with resources.files(__package__).joinpath("data/faithful.csv").open() as handle:
        return np.loadtxt(handle, delimiter=",", skiprows=1)
