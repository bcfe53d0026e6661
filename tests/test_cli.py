"""The ``emkit`` command, run as users run it: in a subprocess."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from emkit import load
from tests.conftest import make_blobs


def emkit(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "emkit.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )


def assert_picture(path, min_frames=1):
    """A real, non-blank image: it opens, has the frames, and its pixels vary."""
    with Image.open(path) as image:
        assert getattr(image, "n_frames", 1) >= min_frames
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 5.0, f"{path} looks blank"


@pytest.fixture
def blob_csv(tmp_path):
    X = make_blobs(n_samples=240, n_components=2, separation=6.0)
    path = tmp_path / "data.csv"
    pd.DataFrame(X, columns=["a", "b"]).to_csv(path, index=False)
    return path


@pytest.fixture
def saved_model(tmp_path, blob_csv):
    out = tmp_path / "model.npz"
    result = emkit("fit", blob_csv, "-k", 2, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    return out


def test_help_lists_commands():
    result = emkit("--help")
    assert result.returncode == 0
    for command in ("fit", "predict", "sample", "info", "demo", "Exit codes"):
        assert command in result.stdout


def test_demo_writes_the_pictures_and_a_climbing_log(tmp_path):
    result = emkit("demo", "--out", tmp_path / "pics")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    log = [float(r[1]) for r in rows if len(r) == 5 and r[0].isdigit()]
    assert len(log) >= 25
    assert np.all(np.diff(log) >= -1e-9)
    for name in ("anemia_iterations.png", "anemia_loglik.png", "anemia_fit.png"):
        assert_picture(tmp_path / "pics" / name)
        assert str(tmp_path / "pics" / name) in result.stdout
    assert_picture(tmp_path / "pics" / "anemia_fit.gif", min_frames=10)


def test_demo_coins_prints_the_published_numbers():
    result = emkit("demo", "coins")
    assert result.returncode == 0, result.stderr
    assert "theta_A = 21.3 / 29.9 = 0.71" in result.stdout  # Do & Batzoglou, iteration 1
    assert "theta_B = 11.7 / 20.1 = 0.58" in result.stdout
    side_by_side = result.stdout.split("Side by side")[1]
    assert "0.80" in side_by_side and "0.52" in side_by_side


def test_demo_faithful_writes_into_the_current_folder(tmp_path):
    result = emkit("demo", "faithful", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_picture(tmp_path / "faithful_iterations.png")


@pytest.mark.parametrize("header", [True, False])
def test_fit_a_csv_and_save_the_model(tmp_path, header):
    X = make_blobs(n_samples=200, n_components=2, separation=6.0)
    data = tmp_path / "data.csv"
    pd.DataFrame(X, columns=["a", "b"]).to_csv(data, index=False, header=header)
    out = tmp_path / "model.npz"
    result = emkit("fit", data, "--components", 2, "--covariance", "diag", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "component 0: weight" in result.stdout
    assert ("columns: a, b" if header else "columns: x0, x1") in result.stdout
    model = load(out)
    assert model.covariance_type == "diag" and model.means_.shape == (2, 2)


def test_fit_json_and_plot(tmp_path, blob_csv):
    picture = tmp_path / "fit.png"
    result = emkit("fit", blob_csv, "-k", 2, "--json", "--plot", picture)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["columns"] == ["a", "b"] and report["selection"] is None
    model = report["model"]
    assert model["class"] == "GaussianMixture" and model["n_components"] == 2
    assert np.asarray(model["means"]).shape == (2, 2)
    assert np.asarray(model["covariances"]).shape == (2, 2, 2)
    np.testing.assert_allclose(sum(model["weights"]), 1.0)
    assert_picture(picture)


def test_fit_chooses_among_candidates(tmp_path):
    faithful = tmp_path / "faithful.csv"
    from emkit.datasets import load_faithful

    pd.DataFrame(load_faithful(), columns=["eruptions", "waiting"]).to_csv(faithful, index=False)
    result = emkit("fit", faithful, "-k", "1-4", "--covariance", "all", "--json", "--seed", 0,
                   "--n-init", 3, "--tol", "1e-5", "--max-iter", 500)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["selection"]) == 16
    assert {"n_components", "covariance_type", "bic", "aic", "icl", "degenerate"} <= set(
        report["selection"][0]
    )
    assert (report["model"]["covariance_type"], report["model"]["n_components"]) == ("tied", 3)


@pytest.mark.parametrize("fmt", ["parquet", "npy"])
def test_fit_reads_parquet_and_npy_with_column_choice(tmp_path, fmt):
    X = make_blobs(n_samples=150, n_features=3, n_components=2, separation=6.0)
    path = tmp_path / f"data.{fmt}"
    if fmt == "npy":
        np.save(path, X)
        columns = "0,2"
    else:
        pd.DataFrame(X, columns=["a", "b", "c"]).to_parquet(path)
        columns = "a,c"
    result = emkit("fit", path, "-k", 2, "--columns", columns, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"]["n_features"] == 2


def test_predict_sample_and_info(tmp_path, blob_csv, saved_model):
    labels = emkit("predict", saved_model, blob_csv)
    assert labels.returncode == 0, labels.stderr
    lines = labels.stdout.splitlines()
    assert lines[0] == "component" and len(lines) == 241
    assert set(lines[1:]) <= {"0", "1"}

    out = tmp_path / "proba.csv"
    assert emkit("predict", saved_model, blob_csv, "--proba", "--out", out).returncode == 0
    proba = pd.read_csv(out)
    assert list(proba.columns) == ["p0", "p1"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)

    drawn = emkit("sample", saved_model, "-n", 50, "--seed", 1)
    assert drawn.returncode == 0, drawn.stderr
    frame = pd.read_csv(io.StringIO(drawn.stdout))
    assert list(frame.columns) == ["a", "b", "component"] and len(frame) == 50

    text = emkit("info", saved_model)
    assert text.returncode == 0 and "GaussianMixture: 2 components" in text.stdout
    summary = json.loads(emkit("info", saved_model, "--json").stdout)
    assert summary["n_features"] == 2 and summary["covariance_type"] == "full"


def _assert_one_line_error(result, *fragments):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_file_is_one_line(tmp_path):
    _assert_one_line_error(emkit("fit", tmp_path / "absent.csv", "-k", 2), "no such file")
    _assert_one_line_error(emkit("info", tmp_path / "absent.npz"), "no model file")


def test_non_numeric_cell_names_line_and_column(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("a,b\n1,2\n3,4\n5,oops\n")
    _assert_one_line_error(
        emkit("fit", data, "-k", 1), "line 4, column 2 (b)", "'oops' is not a number"
    )


def test_unknown_column_and_corrupt_model(tmp_path, blob_csv):
    _assert_one_line_error(emkit("fit", blob_csv, "-k", 1, "--columns", "a,zz"), "no column 'zz'")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    _assert_one_line_error(emkit("info", corrupt), "not a readable emkit model file")


def test_too_many_components_is_one_line(tmp_path):
    data = tmp_path / "small.csv"
    data.write_text("1,2\n3,4\n5,6\n")
    _assert_one_line_error(emkit("fit", data, "-k", 5), "n_components=5 is larger")


@pytest.mark.parametrize(
    "args", [("--covariance", "round"), ("-k", "5-2"), ("-k", "many")]
)
def test_bad_options_are_usage_errors(blob_csv, args):
    result = emkit("fit", blob_csv, *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_fit_streams_a_file_on_request(tmp_path, blob_csv):
    # A file smaller than the initialisation sample streams to the very same fit.
    loaded = json.loads(emkit("fit", blob_csv, "-k", "2", "--json", "-q").stdout)
    run = emkit("fit", blob_csv, "-k", "2", "--json", "-q", "--stream", "--chunk-size", "50",
                "--out", tmp_path / "m.npz")
    assert run.returncode == 0, run.stderr
    streamed = json.loads(run.stdout)
    assert streamed["columns"] == ["a", "b"]
    np.testing.assert_allclose(streamed["model"]["means"], loaded["model"]["means"], atol=1e-10)
    assert load(tmp_path / "m.npz").n_components == 2
    refused = emkit("fit", blob_csv, "-k", "1-3", "--stream")
    assert refused.returncode == 2 and "one K" in refused.stderr


def test_impute_fills_the_gaps(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.multivariate_normal([0, 5], [[1, 0.9], [0.9, 1]], size=200)
    frame = pd.DataFrame(X, columns=["u", "v"])
    holes = np.arange(0, 200, 5)
    frame.loc[holes, "v"] = np.nan
    data = tmp_path / "holes.csv"
    frame.to_csv(data, index=False)  # missing cells are written empty
    out = tmp_path / "filled.csv"
    result = emkit("impute", data, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "40 missing values filled" in result.stderr
    filled = pd.read_csv(out)
    assert list(filled.columns) == ["u", "v"] and not filled.isna().any().any()
    np.testing.assert_allclose(filled.drop(index=holes), frame.drop(index=holes), rtol=1e-15)
    # Strongly correlated columns: the fill follows the regression on u, not the mean of v.
    truth = X[holes, 1]
    fill_error = np.abs(filled.loc[holes, "v"] - truth).mean()
    mean_error = np.abs(frame["v"].mean() - truth).mean()
    assert fill_error < 0.7 * mean_error


@pytest.mark.parametrize("extra", [("--algorithm", "hard"), ("--accelerate",)])
def test_fit_with_a_variant(tmp_path, blob_csv, extra):
    out = tmp_path / "variant.npz"
    result = emkit("fit", blob_csv, "-k", 2, "--quiet", "--out", out, *extra)
    assert result.returncode == 0, result.stderr
    model = load(out)
    if "--accelerate" in extra:
        assert model.accelerate
    else:
        assert model.algorithm == "hard"
    assert np.all(np.diff(model.history_) >= -1e-12)
