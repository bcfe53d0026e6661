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
    result = emkit("fit", faithful, "-k", "2-3", "--covariance", "all", "--json", "--seed", 0,
                   "--n-init", 1, "--tol", "1e-5", "--max-iter", 500)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["selection"]) == 28  # "all": mclust's 14 models
    assert {"n_components", "covariance_type", "bic", "aic", "icl", "degenerate"} <= set(
        report["selection"][0]
    )
    # mclust's choice on faithful too (EEE is scikit-learn's "tied").
    assert (report["model"]["covariance_type"], report["model"]["n_components"]) == ("EEE", 3)


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


# ----------------------------------------------------------------------------------------
# In-process runs (click's CliRunner): same command, no interpreter start-up per call.

def run(*args):
    """``emkit ARGS`` in this process: (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from emkit.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def assert_clean_error(outcome, *fragments):
    code, _, err = outcome
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def two_scales(tmp_path):
    """Two clusters that differ along b only, with a label column after the features."""
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 300)
    b = np.concatenate([rng.normal(0, 1, 150), rng.normal(8, 1, 150)])
    frame = pd.DataFrame({"a": a, "b": b, "label": np.repeat(["x", "y"], 150)})
    path = tmp_path / "labelled.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_predict_takes_the_models_columns_by_name(tmp_path, two_scales):
    path, frame = two_scales
    model = tmp_path / "m.npz"
    code, _, err = run("fit", path, "-k", 2, "--exclude", "label", "--out", model, "-q")
    assert code == 0, err
    code, out, _ = run("predict", model, path, "--exclude", "label")
    truth = pd.read_csv(io.StringIO(out))["component"].to_numpy()
    assert abs(np.corrcoef(truth, frame["b"] > 4)[0, 1]) > 0.99
    # Reordered columns (and a label) are taken by name: the same labels.
    reordered = tmp_path / "reordered.csv"
    frame[["label", "b", "a"]].to_csv(reordered, index=False)
    code, out, err = run("predict", model, reordered)
    assert code == 0, err
    np.testing.assert_array_equal(pd.read_csv(io.StringIO(out))["component"], truth)
    # Renamed columns are refused, naming what is missing, unless --by-position.
    renamed = tmp_path / "renamed.csv"
    frame[["a", "b"]].set_axis(["u", "v"], axis=1).to_csv(renamed, index=False)
    assert_clean_error(run("predict", model, renamed), "'a', 'b'", "--by-position")
    code, out, err = run("predict", model, renamed, "--by-position")
    assert code == 0, err
    np.testing.assert_array_equal(pd.read_csv(io.StringIO(out))["component"], truth)


def test_predict_append_adds_component_and_max_proba(tmp_path, two_scales):
    path, frame = two_scales
    model = tmp_path / "m.npz"
    assert run("fit", path, "-k", 2, "--exclude", "label", "--out", model, "-q")[0] == 0
    code, out, err = run("predict", model, path, "--append", "--proba")
    assert code == 0, err
    result = pd.read_csv(io.StringIO(out))
    assert list(result.columns) == ["a", "b", "label", "component", "max_proba", "p0", "p1"]
    pd.testing.assert_frame_equal(result[["a", "b", "label"]], frame, check_exact=True)
    np.testing.assert_allclose(result["max_proba"], result[["p0", "p1"]].max(axis=1))
    np.testing.assert_array_equal(result["component"], result[["p0", "p1"]].to_numpy().argmax(1))


def test_ragged_row_is_refused_with_its_line(tmp_path):
    data = tmp_path / "ragged.csv"
    data.write_text("a,b\n1.0,2.0,3.0\n4.0,5.0\n6.0,7.0\n")
    assert_clean_error(run("fit", data, "-k", 1), "line 2", "3 fields")
    assert_clean_error(run("fit", data, "-k", 1, "--stream"), "line 2")
    short = tmp_path / "short.csv"
    short.write_text("a,b\n1.0,2.0\n4.0\n6.0,7.0\n")
    assert_clean_error(run("impute", short), "line 3", "1 fields")


def test_semicolon_and_decimal_comma_are_detected(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2)).round(3)
    plain, semi = tmp_path / "plain.csv", tmp_path / "semi.csv"
    pd.DataFrame(X, columns=["a", "b"]).to_csv(plain, index=False)
    pd.DataFrame(X, columns=["a", "b"]).to_csv(semi, index=False, sep=";", decimal=",")
    want = json.loads(run("fit", plain, "-k", 1, "--json", "-q")[1])
    for args in [(), ("--sep", ";", "--decimal", ","), ("--stream",)]:
        code, out, err = run("fit", semi, "-k", 1, "--json", "-q", *args)
        assert code == 0, err
        got = json.loads(out)
        assert got["columns"] == ["a", "b"]
        np.testing.assert_allclose(got["model"]["means"], want["model"]["means"], rtol=1e-12)
    # Read with the wrong separator, the file is one column of text: refused, not "filled".
    assert_clean_error(run("impute", semi, "--sep", ","), "--sep")


def test_non_numeric_and_unnamed_columns_are_named(tmp_path, two_scales):
    path, frame = two_scales
    assert_clean_error(run("fit", path, "-k", 1), "non-numeric column 'label'", "--exclude")
    indexed = tmp_path / "indexed.csv"
    frame[["a", "b"]].to_csv(indexed)  # with pandas' row index as a nameless first column
    assert_clean_error(run("fit", indexed, "-k", 1), "Unnamed: 0", "--exclude")
    code, out, err = run("fit", indexed, "-k", 1, "--exclude", "Unnamed: 0", "--json", "-q")
    assert code == 0, err
    assert json.loads(out)["columns"] == ["a", "b"]


def test_bom_without_header_keeps_the_first_row(tmp_path):
    data = tmp_path / "bom.csv"
    data.write_bytes("\ufeff1.0,2.0\n3.0,4.0\n5.0,9.0\n".encode())
    code, out, err = run("fit", data, "-k", 1, "--json", "-q")
    assert code == 0, err
    report = json.loads(out)
    assert report["model"]["n_samples"] == 3
    np.testing.assert_allclose(report["model"]["means"], [[3.0, 5.0]])


def test_huge_cell_is_not_echoed_whole(tmp_path):
    data = tmp_path / "huge.csv"
    data.write_text("a,b\n1,2\n3," + "z" * 5_000_000 + "\n4,5\n")
    code, _, err = run("fit", data, "-k", 1)
    assert_clean_error((code, _, err), "line 3", "5000000 characters")
    assert len(err) < 1000


def test_fit_summary_statistics_match_the_model(tmp_path, blob_csv):
    out = tmp_path / "m.npz"
    code, text, err = run("fit", blob_csv, "-k", 2, "--out", out, "-q", "--reg-covar", "1e-4")
    assert code == 0, err
    report = json.loads(run("fit", blob_csv, "-k", 2, "--json", "-q", "--reg-covar", "1e-4")[1])
    model, X = load(out), pd.read_csv(blob_csv)
    assert model.reg_covar == 1e-4
    stats = report["model"]
    assert stats["n_samples"] == 240
    np.testing.assert_allclose(stats["log_likelihood"], model.score(X) * 240, rtol=1e-12)
    np.testing.assert_allclose(stats["bic"], model.bic(X), rtol=1e-12)
    np.testing.assert_allclose(stats["aic"], model.aic(X), rtol=1e-12)
    assert stats["n_parameters"] == 11  # 1 weight + 2x2 means + 2x3 covariances
    assert stats["cluster_sizes"] == np.bincount(model.predict(X)).tolist()
    assert f"BIC: {model.bic(X):.4f}" in text and "parameters: 11" in text
    assert f"{stats['cluster_sizes'][0]} rows" in text
    info = run("info", out)[1]
    assert "columns: a, b" in info


@pytest.mark.parametrize("covariance", ["full", "diag", "spherical"])
def test_standardize_saves_a_model_for_the_raw_data(tmp_path, covariance):
    from sklearn.preprocessing import StandardScaler

    from emkit import GaussianMixture

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (150, 2)), rng.normal(5, 1, (150, 2))]) * [1.0, 1e-3]
    data, out = tmp_path / "scales.csv", tmp_path / "m.npz"
    pd.DataFrame(X, columns=["a", "b"]).to_csv(data, index=False)
    code, _, err = run("fit", data, "-k", 2, "--covariance", covariance, "--standardize",
                       "--out", out, "-q")
    assert code == 0, err
    model = load(out)
    Z = StandardScaler().fit_transform(X)
    reference = GaussianMixture(2, covariance_type=covariance, random_state=0).fit(
        pd.DataFrame(Z, columns=["a", "b"]))
    raw = pd.DataFrame(X, columns=["a", "b"])
    # Same responsibilities on the raw rows as the fit on the standardised ones.
    Z = pd.DataFrame(Z, columns=["a", "b"])
    np.testing.assert_allclose(model.predict_proba(raw), reference.predict_proba(Z), atol=1e-9)
    # Densities change by the Jacobian of the scaling only.
    np.testing.assert_allclose(model.score_samples(raw),
                               reference.score_samples(Z) - np.log(X.std(0)).sum(), rtol=1e-9)
    np.testing.assert_allclose(model.means_, reference.means_ * X.std(0) + X.mean(0), rtol=1e-9)


def test_standardized_selection_table_is_in_the_datas_units(tmp_path):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (150, 2)), rng.normal(5, 1, (150, 2))]) * [1.0, 1e-3]
    data = tmp_path / "scales.csv"
    pd.DataFrame(X, columns=["a", "b"]).to_csv(data, index=False)
    code, out, err = run("fit", data, "-k", "1-3", "--standardize", "--json", "-q")
    assert code == 0, err
    report = json.loads(out)
    chosen = min(report["selection"], key=lambda row: row["bic"])
    assert chosen["n_components"] == report["model"]["n_components"] == 2
    # The table's BIC of the chosen model is the summary's, computed on the raw rows.
    np.testing.assert_allclose(chosen["bic"], report["model"]["bic"], rtol=1e-9)


def test_output_paths_are_checked_before_fitting(tmp_path, blob_csv):
    model = tmp_path / "m.npz"
    assert_clean_error(run("fit", blob_csv, "-k", 2, "--plot", tmp_path / "fit.txt",
                           "--out", model), "--plot", ".png")
    assert_clean_error(run("fit", blob_csv, "-k", 2, "--plot", tmp_path / "fit"), ".png")
    assert not model.exists()
    assert_clean_error(run("fit", blob_csv, "-k", 2, "--out", tmp_path / "no" / "m.npz"),
                       "no such folder")
    assert not (tmp_path / "no").exists()
    code, _, err = run("fit", blob_csv, "-k", 2, "--out", tmp_path)  # click's own check
    assert code == 2 and "is a directory" in err and "Traceback" not in err
    assert_clean_error(run("fit", blob_csv, "-k", 2, "--out", tmp_path / ("m" * 300 + ".npz")),
                       "too long")
    assert_clean_error(run("predict", tmp_path / "absent.npz", blob_csv, "--out",
                           tmp_path / "no" / "labels.csv"), "no such folder")


def test_a_failing_picture_keeps_the_saved_model(tmp_path, blob_csv, monkeypatch):
    import emkit.cli

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "fit.png"))

    monkeypatch.setattr(emkit.cli, "_plot_fit", broken)
    model = tmp_path / "m.npz"
    outcome = run("fit", blob_csv, "-k", 2, "--plot", tmp_path / "fit.png", "--out", model, "-q")
    assert_clean_error(outcome, "model saved to", "the picture failed", "No space left on device")
    assert load(model).n_components == 2


def test_json_never_prints_infinity(tmp_path, monkeypatch):
    import emkit.cli

    real = emkit.cli.fit_statistics

    def infinite(model, X):
        return {**real(model, X), "log_likelihood": -np.inf, "bic": np.nan}

    monkeypatch.setattr(emkit.cli, "fit_statistics", infinite)
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n2\n3\n")
    code, out, err = run("fit", data, "-k", 1, "--json", "-q")
    assert code == 0, err
    assert "Infinity" not in out and "NaN" not in out
    report = json.loads(out)
    assert report["model"]["log_likelihood"] is None and report["model"]["bic"] is None


def test_sample_and_component_ranges_are_bounded(tmp_path, saved_model):
    assert_clean_error(run("sample", saved_model, "-n", 10**12), "at most")
    code, _, err = run("fit", tmp_path / "x.csv", "-k", "1-1000000000")
    assert code == 2 and "at most 1000" in err
    # Sampling streams chunks: more rows than one chunk, the component an integer column.
    out = tmp_path / "drawn.csv"
    code, _, err = run("sample", saved_model, "-n", 70_000, "--seed", 3, "--out", out)
    assert code == 0, err
    drawn = pd.read_csv(out)
    assert len(drawn) == 70_000 and drawn["component"].dtype.kind == "i"
    assert abs(drawn["component"].mean() - load(saved_model).weights_[1]) < 0.02
    small = pd.read_csv(io.StringIO(run("sample", saved_model, "-n", 5, "--seed", 3)[1]))
    model = load(saved_model).set_params(random_state=3)
    X, y = model.sample(5)
    np.testing.assert_array_equal(small[["a", "b"]].to_numpy(), X)
    np.testing.assert_array_equal(small["component"], y)


def test_impute_keeps_the_other_columns_as_written(tmp_path):
    data = tmp_path / "holes.csv"
    data.write_text("id,u,v,name\n1,0.5,1.50,p\n2,1.0,,q\n3,1.5,2.4,r\n4,2.0,3.1,s\n")
    code, out, err = run("impute", data, "--exclude", "id,name")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "id,u,v,name" and lines[1] == "1,0.5,1.50,p" and lines[4] == "4,2.0,3.1,s"
    filled = float(lines[2].split(",")[2])
    assert lines[2].startswith("2,1.0,") and lines[2].endswith(",q")
    assert 1.5 < filled < 3.0  # between its neighbours, on the line through the others


@pytest.mark.parametrize("content", [b"\x00\xff\xfe binary", b"a,b\n\"1,2\n", b""])
def test_malformed_inputs_are_one_line(tmp_path, content):
    data = tmp_path / "bad.csv"
    data.write_bytes(content)
    assert_clean_error(run("fit", data, "-k", 1), str(data))
    assert_clean_error(run("impute", data), str(data))


def test_npy_declaring_a_trillion_rows_is_one_line(tmp_path):
    data = tmp_path / "huge.npy"
    with data.open("wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 2)})
        handle.write(bytes(64))
    assert_clean_error(run("fit", data, "-k", 1), "declares (1000000000000, 2)",
                       "truncated or damaged")


# ----------------------------------------------------------------------------------------
# --prior, --noise and --accelerate-method: the CLI's fit is the library's fit of the same rows.

FIT_DEFAULTS = {"max_iter": 100, "tol": 1e-3, "reg_covar": 1e-6, "n_init": 1, "random_state": 0}


@pytest.fixture
def noisy_csv(tmp_path):
    """Two clusters and 30 rows of uniform scatter around them."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2)),
                   rng.uniform(-10, 16, (30, 2))])
    path = tmp_path / "noisy.csv"
    pd.DataFrame(X, columns=["a", "b"]).to_csv(path, index=False)
    return path, pd.read_csv(path).to_numpy()


def test_fit_noise_reports_the_noise_weight_and_predict_labels_noise(tmp_path, noisy_csv):
    from emkit.estimators.gaussian_mixture import GaussianMixture

    path, X = noisy_csv
    out = tmp_path / "noise.npz"
    code, stdout, err = run("fit", path, "-k", 2, "--noise", "--json", "-q", "--out", out)
    assert code == 0, err
    model = json.loads(stdout)["model"]
    truth = GaussianMixture(2, noise=True, **FIT_DEFAULTS).fit(X)
    labels = truth.predict(X)
    assert (labels == -1).sum() > 10  # the scatter is found
    np.testing.assert_allclose(model["noise_weight"], truth.noise_weight_, rtol=1e-10)
    np.testing.assert_allclose(model["noise_volume"], truth.noise_volume_, rtol=1e-12)
    np.testing.assert_allclose(sum(model["weights"]) + model["noise_weight"], 1.0)
    assert model["noise_rows"] == (labels == -1).sum()
    assert model["cluster_sizes"] == np.bincount(labels[labels >= 0], minlength=2).tolist()
    np.testing.assert_allclose(model["bic"], truth.bic(X), rtol=1e-10)
    # text summary and `emkit info` name the noise component
    code, text, err = run("fit", path, "-k", 2, "--noise", "-q")
    assert code == 0, err
    assert f"noise: weight {truth.noise_weight_:.4f}, {(labels == -1).sum()} rows" in text
    assert "noise: weight" in run("info", out)[1]
    # predict: -1 for noise rows; --proba's columns name the noise
    code, csv, err = run("predict", out, path)
    assert code == 0, err
    np.testing.assert_array_equal(pd.read_csv(io.StringIO(csv))["component"], labels)
    code, csv, err = run("predict", out, path, "--proba")
    assert code == 0, err
    proba = pd.read_csv(io.StringIO(csv))
    assert list(proba.columns) == ["p0", "p1", "p_noise"]
    np.testing.assert_allclose(proba.to_numpy(), truth.predict_proba(X), atol=1e-12)
    code, csv, err = run("predict", out, path, "--append", "--proba")
    assert code == 0, err
    appended = pd.read_csv(io.StringIO(csv))
    assert list(appended.columns) == ["a", "b", "component", "max_proba", "p0", "p1", "p_noise"]
    noise_rows = appended["component"] == -1
    np.testing.assert_allclose(appended.loc[noise_rows, "max_proba"],
                               appended.loc[noise_rows, "p_noise"])


def test_fit_noise_standardized_and_plotted(tmp_path, noisy_csv):
    from emkit.estimators.gaussian_mixture import GaussianMixture

    path, X = noisy_csv
    X = X * [1.0, 50.0]  # columns on different scales
    path = tmp_path / "scaled.csv"
    pd.DataFrame(X, columns=["a", "b"]).to_csv(path, index=False)
    out, picture = tmp_path / "m.npz", tmp_path / "fit.png"
    code, _, err = run("fit", path, "-k", 2, "--noise", "--standardize", "-q", "--out", out,
                       "--plot", picture)
    assert code == 0, err
    assert_picture(picture)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    on_z = GaussianMixture(2, noise=True, **FIT_DEFAULTS).fit((X - mean) / scale)
    saved, Z = load(out), (X - mean) / scale
    X = pd.DataFrame(X, columns=["a", "b"])  # the saved model knows its columns' names
    # the same mixture in the data's units: same responsibilities, densities over prod(scale)
    np.testing.assert_allclose(saved.predict_proba(X), on_z.predict_proba(Z),
                               atol=1e-10)
    np.testing.assert_allclose(saved.score_samples(X),
                               on_z.score_samples(Z) - np.log(scale).sum(),
                               rtol=1e-10)
    np.testing.assert_allclose(saved.noise_volume_, on_z.noise_volume_ * scale.prod())


def test_fit_prior_is_the_librarys_map_fit(tmp_path, noisy_csv):
    from emkit.estimators.gaussian_mixture import GaussianMixture

    path, X = noisy_csv
    out = tmp_path / "prior.npz"
    code, stdout, err = run("fit", path, "-k", 3, "--covariance", "VVV", "--prior", "--json",
                            "-q", "--out", out)
    assert code == 0, err
    model = json.loads(stdout)["model"]
    truth = GaussianMixture(3, covariance_type="VVV", prior="default", **FIT_DEFAULTS).fit(X)
    plain = GaussianMixture(3, covariance_type="VVV", **FIT_DEFAULTS).fit(X)
    assert model["prior"] == "default" and load(out).prior == "default"
    np.testing.assert_allclose(model["means"], truth.means_, rtol=1e-10)
    np.testing.assert_allclose(model["average_log_likelihood"], truth.lower_bound_, rtol=1e-12)
    assert not np.allclose(truth.means_, plain.means_, rtol=1e-3)  # the prior did something
    code, text, err = run("fit", path, "-k", "2-3", "--covariance", "VVV", "--prior", "-q")
    assert code == 0, err
    assert "prior: default (MAP EM)" in text


def test_prior_hyperparameters_reach_the_librarys_conjugate_prior(tmp_path, noisy_csv):
    from emkit.distributions.gaussian.prior import ConjugatePrior
    from emkit.estimators.gaussian_mixture import GaussianMixture

    path, X = noisy_csv
    out = tmp_path / "prior.npz"
    code, stdout, err = run("fit", path, "-k", 3, "--covariance", "VVV", "--prior-shrinkage",
                            0.5, "--json", "-q", "--out", out)
    assert code == 0, err
    model = json.loads(stdout)["model"]
    truth = GaussianMixture(3, covariance_type="VVV", prior=ConjugatePrior(shrinkage=0.5),
                            **FIT_DEFAULTS).fit(X)
    default = GaussianMixture(3, covariance_type="VVV", prior="default", **FIT_DEFAULTS).fit(X)
    np.testing.assert_allclose(model["means"], truth.means_, rtol=1e-10)
    np.testing.assert_allclose(model["covariances"], truth.covariances_, rtol=1e-10)
    np.testing.assert_allclose(model["average_log_likelihood"], truth.lower_bound_, rtol=1e-12)
    assert not np.allclose(truth.means_, default.means_, rtol=1e-4)  # 0.5 is not 0.01
    assert model["prior"] == {"shrinkage": 0.5, "mean": None, "dof": None, "scale": None}
    # The saved model (plain JSON) keeps the prior: loaded, it refits to the same numbers.
    saved = load(out)
    assert saved.prior == ConjugatePrior(shrinkage=0.5)
    np.testing.assert_allclose(saved.fit(X).means_, truth.means_, rtol=1e-10)
    # dof and a number for scale: each model's own reading of the number (identity times it
    # for VVV, each variance's scale for VII).
    for covariance, scale in (("VVV", 0.3 * np.eye(2)), ("VII", 0.3)):
        code, stdout, err = run("fit", path, "-k", 2, "--covariance", covariance,
                                "--prior-dof", 7, "--prior-scale", 0.3, "--json", "-q")
        assert code == 0, err
        truth = GaussianMixture(2, covariance_type=covariance, **FIT_DEFAULTS,
                                prior=ConjugatePrior(dof=7.0, scale=scale)).fit(X)
        np.testing.assert_allclose(json.loads(stdout)["model"]["covariances"],
                                   truth.covariances_, rtol=1e-10)
    # The text summary names the values given and the defaults, in a selection too.
    code, text, err = run("fit", path, "-k", "1-2", "--covariance", "all", "--prior-scale",
                          0.3, "-q")
    assert code == 0, err
    assert "prior: conjugate, shrinkage 0.01, mean default, dof default, scale 0.3" in text
    assert "(MAP EM)" in text


def test_prior_mean_reaches_the_librarys_conjugate_prior(tmp_path, noisy_csv):
    from emkit.distributions.gaussian.prior import ConjugatePrior
    from emkit.estimators.gaussian_mixture import GaussianMixture

    path, X = noisy_csv
    out = tmp_path / "prior.npz"
    # A strong shrinkage toward a far mean, so the mean given visibly moves the fit.
    code, stdout, err = run("fit", path, "-k", 2, "--covariance", "VVV", "--prior-shrinkage",
                            20, "--prior-mean", "-4, 10", "--json", "-q", "--out", out)
    assert code == 0, err
    model = json.loads(stdout)["model"]
    prior = ConjugatePrior(shrinkage=20.0, mean=(-4.0, 10.0))
    truth = GaussianMixture(2, covariance_type="VVV", prior=prior, **FIT_DEFAULTS).fit(X)
    default_mean = GaussianMixture(2, covariance_type="VVV", prior=ConjugatePrior(
        shrinkage=20.0), **FIT_DEFAULTS).fit(X)
    np.testing.assert_allclose(model["means"], truth.means_, rtol=1e-10)
    np.testing.assert_allclose(model["covariances"], truth.covariances_, rtol=1e-10)
    assert not np.allclose(truth.means_, default_mean.means_, rtol=1e-2)  # the mean mattered
    assert model["prior"]["mean"] == [-4.0, 10.0]
    np.testing.assert_allclose(load(out).fit(X).means_, truth.means_, rtol=1e-10)
    code, stdout, err = run("fit", path, "-k", 2, "--covariance", "VVV", "--prior-shrinkage",
                            20, "--prior-mean", "-4, 10", "--json", "-q", "--stream",
                            "--chunk-size", 64)  # streamed: the same prior
    assert code == 0, err
    np.testing.assert_allclose(json.loads(stdout)["model"]["means"], truth.means_, rtol=1e-9)
    # With --standardize the mean is in standardised units: the library's fit of the
    # standardised rows with that mean, in the data's units, and so is the saved prior's mean.
    code, stdout, err = run("fit", path, "-k", 2, "--covariance", "VVV", "--prior-shrinkage",
                            20, "--prior-mean=-1,2", "--standardize", "--json", "-q")
    assert code == 0, err
    model = json.loads(stdout)["model"]
    centre, scale = X.mean(axis=0), X.std(axis=0)
    on_z = GaussianMixture(2, covariance_type="VVV", **FIT_DEFAULTS,
                           prior=ConjugatePrior(shrinkage=20.0, mean=(-1.0, 2.0))).fit(
        (X - centre) / scale)
    np.testing.assert_allclose(model["means"], centre + on_z.means_ * scale, rtol=1e-10)
    np.testing.assert_allclose(model["prior"]["mean"], centre + np.array([-1.0, 2.0]) * scale,
                               rtol=1e-12)


def test_fit_noise_streamed_is_the_in_memory_fit(noisy_csv):
    # The volume is the box of every row, streamed in two passes; the start's sample is
    # every row here (fewer than 20000), so the fits are the same.
    path, _ = noisy_csv
    fits = []
    for extra in ((), ("--stream", "--chunk-size", 64)):
        code, stdout, err = run("fit", path, "-k", 2, "--noise", "--json", "-q", *extra)
        assert code == 0, err
        fits.append(json.loads(stdout)["model"])
    streamed, in_memory = fits
    assert streamed["noise_volume"] == pytest.approx(in_memory["noise_volume"], rel=1e-12)
    assert streamed["noise_rows"] == in_memory["noise_rows"]
    np.testing.assert_allclose(streamed["means"], in_memory["means"], rtol=1e-10)


@pytest.mark.parametrize("args, message", [
    (("--prior-shrinkage", "-1"), "--prior-shrinkage': must be a finite number >= 0, got -1"),
    (("--prior-dof", "0"), "--prior-dof': must be a finite number > 0, got 0"),
    (("--prior-scale", "inf"), "--prior-scale': must be a finite number > 0, got inf"),
    (("--prior-scale", "nan"), "must be a finite number > 0, got nan"),
    (("--prior-dof", "x"), "'x' is not a valid float"),
    (("--prior-scale", "1", "--standardize"), "--prior-scale is in the data's units"),
    (("--prior-dof", "5", "--accelerate"), "--prior does not combine with --accelerate"),
    (("--prior-mean", "1,2,3"), "--prior-mean has 3 number(s); the data have 2 feature(s)"),
    (("--prior-mean", "1,2,3", "--stream"), "--prior-mean has 3 number(s); the data have 2"),
    (("--prior-mean", "1,x"), "--prior-mean': must be comma-separated numbers (one per "
                              "feature), got 'x' in '1,x'"),
    (("--prior-mean", "1,nan"), "--prior-mean': must be finite numbers, got 'nan'"),
])
def test_bad_prior_hyperparameters_are_usage_errors(blob_csv, args, message):
    code, _, err = run("fit", blob_csv, "-k", 2, "-q", *args)
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], err


def test_accelerate_method_chooses_daarem_and_accelerate_stays_squarem(tmp_path, blob_csv):
    from emkit.estimators.gaussian_mixture import GaussianMixture

    X = pd.read_csv(blob_csv).to_numpy()
    for extra, expected in [(("--accelerate",), True),
                            (("--accelerate-method", "daarem"), "daarem"),
                            (("--accelerate", "--accelerate-method", "daarem"), "daarem"),
                            (("--accelerate-method", "squarem"), "squarem")]:
        out = tmp_path / "acc.npz"
        code, _, err = run("fit", blob_csv, "-k", 2, "-q", "--out", out, *extra)
        assert code == 0, err
        model = load(out)
        assert model.accelerate == expected
        truth = GaussianMixture(2, accelerate=expected, **FIT_DEFAULTS).fit(X)
        np.testing.assert_allclose(model.means_, truth.means_, rtol=1e-10)
        assert np.all(np.diff(model.history_) >= -1e-12)


def test_fit_noise_accelerated_is_the_librarys(tmp_path, noisy_csv):
    from emkit.estimators.gaussian_mixture import GaussianMixture

    path, X = noisy_csv
    code, stdout, err = run("fit", path, "-k", 2, "--noise", "--accelerate-method", "daarem",
                            "--json", "-q")
    assert code == 0, err
    model = json.loads(stdout)["model"]
    truth = GaussianMixture(2, noise=True, accelerate="daarem", **FIT_DEFAULTS).fit(X)
    np.testing.assert_allclose(model["noise_weight"], truth.noise_weight_, rtol=1e-10)
    np.testing.assert_allclose(model["means"], truth.means_, rtol=1e-10)


@pytest.mark.parametrize("args, message", [
    (("--prior", "--accelerate-method", "daarem"),
     "--prior does not combine with --accelerate-method"),
    (("--accelerate-method", "squarem", "--algorithm", "hard"),
     "--accelerate-method needs --algorithm em"),
    (("--accelerate-method", "anderson"), "Invalid value for '--accelerate-method'"),
])
def test_fit_refuses_what_the_library_refuses(blob_csv, args, message):
    code, _, err = run("fit", blob_csv, "-k", 2, "-q", *args)
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err


def test_covariance_all_with_one_feature_fits_e_and_v(tmp_path):
    path = tmp_path / "one.csv"
    rng = np.random.default_rng(0)
    values = np.r_[rng.normal(0, 1, 60), rng.normal(5, 1, 60)]
    pd.DataFrame({"x": values}).to_csv(path, index=False)
    result = emkit("fit", path, "-k", "1-2", "--covariance", "all", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    selection = json.loads(result.stdout)["selection"]
    assert sorted({row["covariance_type"] for row in selection}) == ["E", "V"]


def test_a_quiet_selection_takes_the_compiled_loop(tmp_path, loop_runs):
    # With -q no progress bar is shown, so the fits get no callback: a callback keeps a
    # selection's candidates off the compiled small-data loop (the estimator's engine
    # runs instead, the same fits but slower).
    from emkit.datasets import load_faithful

    path = tmp_path / "faithful.csv"
    pd.DataFrame(load_faithful(), columns=["eruptions", "waiting"]).to_csv(path, index=False)
    code, _, err = run("fit", path, "--components", "1-3", "--covariance", "all", "-q")
    assert code == 0, err
    assert len(loop_runs) >= 3 * 14 and all(loop_runs)


def test_a_selection_with_its_progress_bar_takes_the_compiled_loop(tmp_path, monkeypatch,
                                                                    loop_runs):
    # Without -q the bar counts candidates (select_model's progress hook), not EM
    # iterations: no callback reaches the fits, which stay on the compiled loop.
    import emkit.cli
    from emkit.datasets import load_faithful

    path = tmp_path / "faithful.csv"
    pd.DataFrame(load_faithful(), columns=["eruptions", "waiting"]).to_csv(path, index=False)
    bars = []
    close = emkit.cli._Progress.close

    def recorded_close(self):
        bars.append((self.bar.desc, self.bar.n, self.bar.total))
        close(self)

    monkeypatch.setattr(emkit.cli._Progress, "close", recorded_close)
    monkeypatch.setattr(emkit.cli._Progress, "DELAY", 0)  # drawn at once, even for quick fits
    code, out, err = run("fit", path, "--components", "1-3", "--covariance", "all")
    assert code == 0, err
    assert len(loop_runs) >= 3 * 14 and all(loop_runs)
    assert bars == [("models", 42, 42)]
    assert "models" in err and "model/s" in err  # the bar went to stderr ...
    lines = out.splitlines()  # ... and stdout is the table and the summary, nothing else
    assert "\r" not in out and lines[0].split()[:3] == ["n_components", "covariance_type",
                                                         "model"]
    assert lines.index("") == 1 + 42 and lines[44].startswith("GaussianMixture: ")
    # One fit keeps its bar over EM iterations (a callback: the engine's path).
    from emkit.estimators.gaussian_mixture import GaussianMixture

    bars.clear()
    code, out, err = run("fit", path, "-k", "2", "--covariance", "VVV")
    assert code == 0, err
    truth = GaussianMixture(2, covariance_type="VVV", **FIT_DEFAULTS).fit(load_faithful())
    assert bars == [("EM iterations", truth.n_iter_, None)]
    assert out.startswith("GaussianMixture: ")


def test_a_fit_on_a_tiny_scale_warns_in_one_line_and_standardize_cures_it(tmp_path):
    X = make_blobs(n_samples=120, n_components=2, separation=6.0) * 1e-8
    path = tmp_path / "tiny.csv"
    pd.DataFrame(X, columns=["a", "b"]).to_csv(path, index=False)
    result = emkit("fit", path, "-k", "1-2", "--covariance", "all", "-q")
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and "reg_covar=1e-06 is a tenth or more of the variance of " \
        "column(s) a (" in warned[0], result.stderr
    assert "Traceback" not in result.stderr and "UserWarning" not in result.stderr
    cured = emkit("fit", path, "-k", "1-2", "--covariance", "all", "-q", "--standardize")
    assert cured.returncode == 0 and "warning" not in cured.stderr, cured.stderr


def test_a_column_counting_the_rows_is_named_in_a_warning(tmp_path):
    # An id column (1, 2, ..., n) is a number like any other and gets fitted: say so.
    X = make_blobs(n_samples=60, n_components=2, separation=6.0)
    frame = pd.DataFrame(X, columns=["a", "b"])
    frame.insert(0, "id", np.arange(101, 161))
    path = tmp_path / "with_id.csv"
    frame.to_csv(path, index=False)
    result = emkit("fit", path, "-k", "2", "-q")
    assert result.returncode == 0, result.stderr
    assert ("warning: column 'id' counts the rows (101, 102, ..., 160): a row number or id "
            "is fitted as a feature; leave it out with --exclude 'id'") in result.stderr
    left_out = emkit("fit", path, "-k", "2", "-q", "--exclude", "id")
    assert left_out.returncode == 0 and "warning" not in left_out.stderr, left_out.stderr
