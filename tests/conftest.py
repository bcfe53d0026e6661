"""Shared test data: mixtures with known structure."""

from __future__ import annotations

import numpy as np
import pytest

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def make_blobs(
    n_samples: int = 400,
    n_features: int = 2,
    n_components: int = 3,
    separation: float = 4.0,
    offset: float = 0.0,
    seed: int = 0,
    dtype: type = np.float64,
) -> np.ndarray:
    """Rows from ``n_components`` correlated Gaussian blobs, shuffled."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=separation, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    mixing = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features)
    noise = rng.normal(size=(n_samples, n_features))
    X = centres[labels] + np.einsum("nd,nde->ne", noise, mixing[labels] + np.eye(n_features))
    return (X + offset).astype(dtype)


@pytest.fixture
def blobs() -> np.ndarray:
    return make_blobs()


@pytest.fixture
def loop_runs(monkeypatch):
    """Outcomes of every call of the compiled loop (True: it finished the fit)."""
    from emkit.distributions.gaussian import small_em

    runs = []
    original = small_em.run_dense  # run_small_em's loop, and a model selection's

    def spy(*args, **kwargs):
        fit = original(*args, **kwargs)
        runs.append(fit is not None)
        return fit

    monkeypatch.setattr(small_em, "run_dense", spy)
    return runs


@pytest.fixture(autouse=True)
def _close_pyplot_figures():
    """emkit.plot makes pyplot figures (so plt.show() displays them): close them after a test."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def assert_same_tables(compiled, general, rtol=1e-6):
    """Two selections' tables (compiled loop, general engine): the same rows and notes,
    scores to ``rtol``."""
    import pandas as pd

    ours, theirs = (result.table.sort_values(["model", "n_components"]).reset_index(drop=True)
                    for result in (compiled, general))
    scores = ["bic", "aic", "icl", "log_likelihood"]
    pd.testing.assert_frame_equal(ours.drop(columns=scores), theirs.drop(columns=scores))
    for column in scores:
        np.testing.assert_allclose(ours[column], theirs[column], rtol=rtol, err_msg=column)
