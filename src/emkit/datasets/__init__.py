"""Small data sets shipped with emkit."""

from __future__ import annotations

from importlib import resources

import numpy as np

from emkit.datasets._coins import CoinTosses, load_coins

__all__ = [
    "ANEMIA_COLUMNS", "CoinTosses", "load_anemia", "load_coins", "load_faithful", "make_anemia",
]

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


ANEMIA_COLUMNS = ("log_rbc_volume", "log_hemoglobin", "group")
ANEMIA_SEED = 2008


def make_anemia(
    n_controls: int = 180, n_patients: int = 120, seed: int = ANEMIA_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Generate the anemia-like data set: healthy controls vs anemia patients.

    Two Gaussian groups on log scale, shaped like the lecture's picture (red blood
    cell volume about 3.3-4.0 by hemoglobin concentration about 3.7-4.4): a tight
    control group, and a spread-out patient group with smaller cells and less
    hemoglobin. Synthetic: the shapes follow the slides, the numbers are not clinical.

    Parameters
    ----------
    n_controls, n_patients : int
        Group sizes.
    seed : int
        Seed of the generator; the bundled file uses the default.

    Returns
    -------
    X : ndarray of shape (n_controls + n_patients, 2)
        ``log_rbc_volume``, ``log_hemoglobin``.
    y : ndarray of shape (n_controls + n_patients,)
        0 for controls, 1 for patients. Rows are shuffled.
    """
    rng = np.random.default_rng(seed)
    controls = rng.multivariate_normal(
        [3.88, 4.30], [[0.0025, 0.0012], [0.0012, 0.0020]], size=n_controls
    )
    patients = rng.multivariate_normal(
        [3.62, 4.00], [[0.0200, 0.0110], [0.0110, 0.0180]], size=n_patients
    )
    X = np.vstack([controls, patients])
    y = np.repeat([0, 1], [n_controls, n_patients])
    order = rng.permutation(len(y))
    return np.round(X[order], 4), y[order]


def load_anemia(return_labels: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The bundled anemia-like data (300 rows), written by :func:`make_anemia` with its defaults.

    Parameters
    ----------
    return_labels : bool, default=False
        Also return the true groups (0 control, 1 patient).

    Returns
    -------
    X : ndarray of shape (300, 2)
    y : ndarray of shape (300,), only if ``return_labels``
    """
    with resources.files(__package__).joinpath("data/anemia.csv").open() as handle:
        table = np.loadtxt(handle, delimiter=",", skiprows=1)
    X, y = table[:, :2], table[:, 2].astype(int)
    return (X, y) if return_labels else X
