"""select_model's per-candidate ``progress`` hook: one call per table row, fits unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from joblib import parallel_config

from emkit import select_model
from emkit.datasets import load_faithful


def _rows_as_table(rows: list[dict]) -> pd.DataFrame:
    keys = ["n_components", "covariance_type", "bic", "start", "skipped"]
    return pd.DataFrame(rows)[keys].sort_values(["covariance_type", "n_components"]) \
        .reset_index(drop=True)


def test_progress_reports_every_final_candidate_and_keeps_the_compiled_loop(loop_runs):
    X = load_faithful()
    rows = []
    result = select_model(X, [1, 2, 3], "all", random_state=0, progress=rows.append)
    # The candidates ran on the compiled loop, as without the hook.
    assert len(loop_runs) >= 3 * 14 and all(loop_runs)
    plain = select_model(X, [1, 2, 3], "all", random_state=0)
    pd.testing.assert_frame_equal(result.table, plain.table)
    # One call per row of the table, with the row as it ends up there (after nested starts).
    assert len(rows) == len(result.table) == 42
    table = result.table[["n_components", "covariance_type", "bic", "start", "skipped"]]
    pd.testing.assert_frame_equal(_rows_as_table(rows), table.sort_values(
        ["covariance_type", "n_components"]).reset_index(drop=True))
    # Models nested in others are final before those that nest them.
    order = [row["model"] for row in rows]
    assert order.index("EII") < order.index("EEI") < order.index("EEE") < order.index("VVV")


def test_progress_reports_skipped_candidates_and_works_with_n_jobs():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (12, 3)), rng.normal(5, 1, (12, 3))])
    serial, parallel = [], []
    result = select_model(X, [1, 2, 8], ("VVV", "VII"), random_state=0, progress=serial.append)
    assert result.table["skipped"].any()  # 8 VVV components need more than 24 rows
    # Threads rather than loky's processes (whose start-up costs seconds): the hook runs
    # in the caller as joblib's generator hands over each result, whatever the backend.
    with parallel_config(backend="threading"):
        select_model(X, [1, 2, 8], ("VVV", "VII"), random_state=0, n_jobs=2,
                     progress=parallel.append)
    assert len(serial) == len(parallel) == len(result.table) == 6
    assert [row["skipped"] for row in serial[:result.table["skipped"].sum()]] == [True] * int(
        result.table["skipped"].sum())  # skipped ones first, at once
    pd.testing.assert_frame_equal(_rows_as_table(serial), _rows_as_table(parallel))


def test_a_progress_that_is_not_callable_is_refused_before_fitting():
    with pytest.raises(TypeError, match="progress must be a callable"):
        select_model(load_faithful(), [1, 2], "VVV", progress=42)
