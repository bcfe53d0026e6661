"""The ``emkit`` command, run as users run it: in a subprocess."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from emkit import load
from tests.conftest import make_blobs


def emkit(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "emkit.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=120,
    )


def test_help_lists_commands():
    result = emkit("--help")
    assert result.returncode == 0
    assert "fit" in result.stdout and "demo" in result.stdout


def test_demo_prints_a_climbing_iteration_log():
    result = emkit("demo")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    log = [float(r[1]) for r in rows if len(r) >= 4 and r[0].isdigit()]
    assert len(log) > 5
    assert np.all(np.diff(log) >= -1e-9)
    assert "component 1: weight" in result.stdout


@pytest.mark.parametrize("header", [True, False])
def test_fit_a_csv_and_save_the_model(tmp_path, header):
    X = make_blobs(n_samples=200, n_components=2, separation=6.0)
    data = tmp_path / "data.csv"
    np.savetxt(data, X, delimiter=",", header="a,b" if header else "", comments="")
    if not header:
        data.write_text(data.read_text().lstrip("\n"))
    out = tmp_path / "model.npz"
    result = emkit("fit", data, "--components", 2, "--covariance", "diag", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "component 0: weight" in result.stdout
    assert ("columns: a, b" if header else "columns: x0, x1") in result.stdout
    model = load(out)
    assert model.covariance_type == "diag" and model.means_.shape == (2, 2)


def _assert_one_line_error(result, *fragments):
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_file_is_one_line(tmp_path):
    _assert_one_line_error(emkit("fit", tmp_path / "absent.csv", "-k", 2), "no such file")


def test_non_numeric_cell_names_line_and_column(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("a,b\n1,2\n3,4\n5,oops\n")
    _assert_one_line_error(
        emkit("fit", data, "-k", 1), "line 4, column 2 (b)", "'oops' is not a number"
    )


def test_too_many_components_is_one_line(tmp_path):
    data = tmp_path / "small.csv"
    data.write_text("1,2\n3,4\n5,6\n")
    _assert_one_line_error(emkit("fit", data, "-k", 5), "n_components=5 is larger")


def test_bad_option_is_a_usage_error(tmp_path):
    result = emkit("fit", tmp_path / "x.csv", "-k", 2, "--covariance", "round")
    assert result.returncode == 2
    assert "round" in result.stderr
