"""Out-of-core sources: files streamed in chunks fit exactly as the same rows in memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

from emkit import GaussianMixture, MixtureModel, sources
from emkit.data._io_tables import DataFileError
from emkit.data.scale import reservoir_sample
from emkit.distributions import Poisson
from tests.conftest import COVARIANCE_TYPES, make_blobs

FORMATS = ("npy", "csv", "parquet")


def write(X: np.ndarray, path, fmt: str) -> None:
    if fmt == "npy":
        np.save(path, X)
    elif fmt == "csv":
        # repr-exact floats, so the file holds the very same numbers.
        pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])]).to_csv(
            path, index=False, float_format="%.17g")
    else:
        pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])]).to_parquet(
            path, row_group_size=333)


@pytest.fixture(scope="module")
def data():
    return make_blobs(n_samples=1500, n_features=3, n_components=3, seed=1)


def start_from(X, covariance_type):
    """Starting parameters from a short in-memory fit, shared by every driver."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GaussianMixture(3, covariance_type=covariance_type, max_iter=2, tol=0,
                              random_state=0).fit(X)
    return {"weights_init": ref.weights_, "means_init": ref.means_,
            "precisions_init": ref.precisions_}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_streamed_fit_equals_in_memory(tmp_path, data, fmt, covariance_type):
    path = tmp_path / f"rows.{fmt}"
    write(data, path, fmt)
    params = {"n_components": 3, "covariance_type": covariance_type, "tol": 0, "max_iter": 15,
              **start_from(data, covariance_type)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = GaussianMixture(**params).fit(data)
        streamed = GaussianMixture(**params).fit(sources.open(path, chunk_size=211))
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_allclose(getattr(streamed, name), getattr(memory, name),
                                   rtol=0, atol=1e-10, err_msg=name)
    assert streamed.n_features_in_ == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_predict_and_score_on_a_source(tmp_path, data, fmt):
    path = tmp_path / f"rows.{fmt}"
    write(data, path, fmt)
    source = sources.open(path, chunk_size=500)
    model = GaussianMixture(3, random_state=0).fit(data)
    np.testing.assert_array_equal(model.predict(source), model.predict(data))
    np.testing.assert_allclose(model.score_samples(source), model.score_samples(data),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(source), model.predict_proba(data),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.bic(source), model.bic(data), rtol=1e-12)
    np.testing.assert_allclose(model.aic(source), model.aic(data), rtol=1e-12)


def test_small_file_with_default_init_fits_as_in_memory(tmp_path, data):
    # A file smaller than the initialisation sample is sampled whole, in row
    # order, so k-means starts exactly as it does on the array.
    path = tmp_path / "rows.npy"
    write(data, path, "npy")
    memory = GaussianMixture(3, random_state=4).fit(data)
    streamed = GaussianMixture(3, random_state=4).fit(sources.open(path, chunk_size=100))
    np.testing.assert_allclose(streamed.means_, memory.means_, rtol=0, atol=1e-10)
    labels = GaussianMixture(3, random_state=4).fit_predict(sources.open(path))
    np.testing.assert_array_equal(labels, memory.predict(data))


def test_reservoir_sample_is_uniform_and_independent_of_chunking():
    X = np.arange(10_000, dtype=float)[:, None]
    draw = [reservoir_sample(sources.ArraySource(X, size), 500, np.random.default_rng(3))
            for size in (7, 1000, 10_000)]
    np.testing.assert_array_equal(draw[0], draw[1])
    np.testing.assert_array_equal(draw[0], draw[2])
    assert len(np.unique(draw[0])) == 500
    # The mean of 500 of 0..9999 drawn uniformly: 4999.5 with standard error ~128.
    assert abs(draw[0].mean() - 4999.5) < 5 * 2887 / np.sqrt(500)


@pytest.mark.parametrize("fmt", FORMATS)
def test_infinite_value_names_the_global_row_and_column(tmp_path, data, fmt):
    bad = data.copy()
    bad[1234, 2] = -np.inf
    path = tmp_path / f"rows.{fmt}"
    write(bad, path, fmt)
    source = sources.open(path, chunk_size=500)
    params = {"n_components": 3, **start_from(data, "full")}
    with pytest.raises(ValueError, match=r"-inf at row 1234, column 2"):
        GaussianMixture(**params).fit(source)


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_values_stream_as_in_memory(tmp_path, data, fmt):
    # NaN (npy), an empty cell (CSV) or a null (Parquet) is a missing value.
    holes = data.copy()
    holes[::7, 1] = np.nan
    holes[3::11, 0] = np.nan
    path = tmp_path / f"rows.{fmt}"
    write(holes, path, fmt)
    params = {"n_components": 3, "tol": 0, "max_iter": 10, **start_from(data, "full")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = GaussianMixture(**params).fit(holes)
        streamed = GaussianMixture(**params).fit(sources.open(path, chunk_size=300))
    np.testing.assert_allclose(streamed.means_, memory.means_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(streamed.history_, memory.history_, rtol=0, atol=1e-10)


def test_csv_bad_cell_names_its_line(tmp_path):
    path = tmp_path / "rows.csv"
    lines = ["a,b"] + [f"{i},{i % 7}" for i in range(1000)]
    lines[700] = "699,seven"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match=r"line 701, column 2 \(b\): 'seven'"):
        list(sources.open(path, chunk_size=128))


def test_column_choice_and_names(tmp_path, data):
    frame = pd.DataFrame(data, columns=["a", "b", "c"])
    frame.to_csv(tmp_path / "rows.csv", index=False)
    frame.to_parquet(tmp_path / "rows.parquet")
    np.save(tmp_path / "rows.npy", data)
    for name in ("rows.csv", "rows.parquet"):
        source = sources.open(tmp_path / name, columns=["c", "0"])
        assert source.columns == ["c", "a"]
        np.testing.assert_array_equal(np.vstack(list(source)), data[:, [2, 0]])
    source = sources.open(tmp_path / "rows.npy", columns=["2"])
    np.testing.assert_array_equal(np.vstack(list(source)), data[:, [2]])


def test_unreadable_files_are_refused_clearly(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        sources.open(tmp_path / "missing.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(DataFileError, match="3-D"):
        sources.open(tmp_path / "cube.npy")
    np.save(tmp_path / "fortran.npy", np.asfortranarray(np.zeros((4, 3))))
    with pytest.raises(DataFileError, match="Fortran order"):
        sources.open(tmp_path / "fortran.npy")
    with pytest.raises(ValueError, match="chunk_size"):
        sources.open(tmp_path / "cube.npy", chunk_size=0)
    pd.DataFrame({"a": ["x", "y"]}).to_parquet(tmp_path / "text.parquet")
    with pytest.raises(DataFileError, match="column 'a'"):
        sources.open(tmp_path / "text.parquet")
    np.save(tmp_path / "rows.npy", np.zeros((10, 2)))
    with open(tmp_path / "rows.npy", "r+b") as handle:
        handle.truncate(200)
    with pytest.raises(DataFileError, match="truncated"):
        list(sources.open(tmp_path / "rows.npy", chunk_size=4))


def test_wrong_number_of_columns_at_predict(tmp_path, data):
    np.save(tmp_path / "two.npy", data[:, :2])
    model = GaussianMixture(2, random_state=0).fit(data)
    with pytest.raises(ValueError, match=r"2 features.*expecting 3"):
        model.predict(sources.open(tmp_path / "two.npy"))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mixture_model_from_a_source_equals_in_memory(tmp_path):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.poisson(2, 700), rng.poisson(9, 500)])[:, None].astype(float)
    np.save(tmp_path / "counts.npy", X)
    params = {"components": [Poisson(1.0), Poisson(5.0)], "tol": 0, "max_iter": 30}
    memory = MixtureModel(**params).fit(X)
    streamed = MixtureModel(**params).fit(sources.open(tmp_path / "counts.npy", chunk_size=97))
    np.testing.assert_allclose(streamed.weights_, memory.weights_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(streamed.history_, memory.history_, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(
        streamed.predict(sources.open(tmp_path / "counts.npy")), memory.predict(X))


MEMORY_PROBE = textwrap.dedent("""
    import json, sys, tracemalloc
    import numpy as np
    from emkit import GaussianMixture, sources

    def status(field):
        # Linux: kB figures of this process's own memory map (ru_maxrss would
        # include the parent's, inherited across fork and exec).
        with open("/proc/self/status") as handle:
            return next(int(l.split()[1]) * 1024 for l in handle if l.startswith(field))

    # Compile the E-step kernels first: a one-off cost of the JIT, not of the data.
    warm_up = np.random.default_rng(1).normal(size=(500, 8))
    GaussianMixture(3, max_iter=1, random_state=0).fit(warm_up)
    source = sources.open(sys.argv[1], chunk_size=8192)
    before = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the peak (VmHWM) to the current resident size
    tracemalloc.start()
    model = GaussianMixture(3, max_iter=2, tol=0, random_state=0).fit(source)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({"traced": traced, "rss_growth": status("VmHWM:") - before,
                      "n_iter": model.n_iter_}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")
def test_peak_memory_is_bounded_by_the_chunk_not_the_file(tmp_path):
    # 1.5M rows x 8 float64 = 96 MB on disk, three times the 32 MB budget; a
    # chunk of 8192 rows is 0.5 MB. The budget leaves room for the E-step's
    # threads (a few chunks in flight, each with its quadratic features) and the
    # 20 000-row initialisation sample (1.3 MB), not for the file.
    budget = 32_000_000
    rng = np.random.default_rng(0)
    path = tmp_path / "big.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f8", "fortran_order": False, "shape": (1_500_000, 8)})
        for _ in range(15):
            rng.normal(size=(100_000, 8)).tofile(handle)
    try:
        assert path.stat().st_size >= 3 * budget
        run = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path)],
                             capture_output=True, text=True, timeout=300, check=True)
    finally:
        path.unlink()
    probe = json.loads(run.stdout.strip().splitlines()[-1])
    assert probe["n_iter"] == 2
    assert probe["traced"] < budget, probe
    assert probe["rss_growth"] < budget, probe


@pytest.mark.parametrize("bad_row", [5, 23_456])
def test_mixture_model_checks_every_streamed_row(tmp_path, bad_row):
    # Past the 20 000-row initialisation sample too: the check runs in the pass.
    X = np.random.default_rng(0).poisson(3, size=(30_000, 1)).astype(float)
    X[bad_row, 0] = -1
    np.save(tmp_path / "counts.npy", X)
    source = sources.open(tmp_path / "counts.npy", chunk_size=10_000)
    with pytest.raises(ValueError, match=rf"rows from row {bad_row // 10_000 * 10_000} on: "
                                         rf"row {bad_row % 10_000}, column 0"):
        MixtureModel([Poisson(1.0), Poisson(5.0)]).fit(source)


@pytest.mark.parametrize("variant", [{"algorithm": "hard"}, {"accelerate": True},
                                     {"algorithm": "stochastic", "random_state": 0}],
                         ids=["hard", "squarem", "stochastic"])
def test_variants_stream_as_in_memory(tmp_path, data, variant):
    np.save(tmp_path / "rows.npy", data)
    params = {"n_components": 3, "tol": 0, "max_iter": 12, **start_from(data, "full"), **variant}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = GaussianMixture(**params).fit(data)
        streamed = GaussianMixture(**params).fit(sources.open(tmp_path / "rows.npy", 97))
    np.testing.assert_allclose(streamed.means_, memory.means_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(streamed.history_, memory.history_, rtol=0, atol=1e-10)


def _fit_in_child(seed: int) -> list[float]:
    from emkit import GaussianMixture
    from emkit.core._parallel import map_ordered

    X = np.random.default_rng(seed).normal(size=(400, 2))
    assert list(map_ordered(abs, [-1, -2, -3], n_threads=2)) == [1, 2, 3]
    return GaussianMixture(2, random_state=0).fit(X).means_[:, 0].tolist()


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="fork is POSIX only")
def test_fit_in_a_fork_started_worker_after_the_parent_used_the_pools():
    # Issue 22 item 2: the parent's pools have no threads in a forked child; a fit hung.
    import multiprocessing

    from emkit import GaussianMixture
    from emkit.core._parallel import map_ordered

    assert list(map_ordered(abs, [-1, -2, -3], n_threads=2)) == [1, 2, 3]
    X = np.random.default_rng(0).normal(size=(400, 2))
    expected = GaussianMixture(2, random_state=0).fit(X).means_[:, 0].tolist()
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(_fit_in_child, (0,)).get(timeout=30)
    assert got == expected


def _both_readers(path):
    """The in-memory reader (CLI tables) and the streaming one, each as a callable."""
    from emkit.data._io_tables import read_table

    return [lambda: read_table(path), lambda: list(sources.open(path))]


@pytest.mark.parametrize(("values", "message"), [
    (np.array([[1 + 2j, 3.0], [4.0, 5j]]), "complex numbers"),
    (np.array([["2020-01-01"], ["2021-01-01"]], dtype="datetime64[D]"), "dates and times"),
    (np.array([[1, 2]], dtype="timedelta64[s]"), "time spans"),
    (np.array([["a", "b"]]), "text"),
])
def test_one_npy_policy_for_both_readers(tmp_path, values, message):
    # Issue 22 item 11: the in-memory reader dropped imaginary parts and fitted
    # datetimes as epoch numbers, which the streaming reader refused.
    path = tmp_path / "rows.npy"
    np.save(path, values)
    for read in _both_readers(path):
        with pytest.raises(DataFileError, match=message):
            read()


def test_npy_files_that_are_not_arrays_of_numbers(tmp_path):
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    text = tmp_path / "text.npy"
    text.write_text("a,b\n1,2\n")
    huge = tmp_path / "huge.npy"  # declares 10**12 rows in a file of a few bytes
    with huge.open("wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 2)})
        handle.write(b"\0" * 32)
    for path, message in [(objects, "Python objects"), (text, "not a readable .npy file"),
                          (huge, r"declares \(1000000000000, 2\)")]:
        for read in _both_readers(path):
            with pytest.raises(DataFileError, match=message) as caught:
                read()
            assert "pickle=True" not in str(caught.value)  # numpy's advice, never taken


@pytest.mark.parametrize("bound", [None, "16G"])
def test_a_fit_too_large_for_memory_is_refused_before_allocating(tmp_path, monkeypatch, bound):
    # Issue 22 item 10: 5 rows x 20 000 columns drove a full-covariance fit past 16 GB.
    import time
    import tracemalloc

    from emkit.data._validation import FitMemoryError

    if bound is not None:
        monkeypatch.setenv("EMKIT_MAX_MEMORY", bound)
    X = np.random.default_rng(0).normal(size=(5, 20_000))
    np.save(tmp_path / "wide.npy", X)
    for data in (X, sources.open(tmp_path / "wide.npy")):
        tracemalloc.start()
        began = time.perf_counter()
        with pytest.raises(FitMemoryError, match=r"needs about 35\.8 GiB.*'diag'"):
            GaussianMixture(2).fit(data)
        assert time.perf_counter() - began < 2
        assert tracemalloc.get_traced_memory()[1] < 50_000_000
        tracemalloc.stop()
    monkeypatch.setenv("EMKIT_MAX_MEMORY", "a lot")
    with pytest.raises(ValueError, match="EMKIT_MAX_MEMORY='a lot' is not a size"):
        GaussianMixture(2).fit(X)


def test_a_wide_diagonal_model_builds_no_square_matrices():
    # The fast pass's kernel used to build dense (K, D, D) precisions even for diag
    # models too wide for its features: 2 x 20 000 columns asked for 2 x 6.4 GB.
    import tracemalloc

    from scipy.stats import norm

    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 20_000))
    gm = GaussianMixture(2, covariance_type="diag")
    gm.weights_ = np.array([0.5, 0.5])
    gm.means_ = rng.normal(size=(2, 20_000))
    gm.covariances_ = np.full((2, 20_000), 2.0)
    gm.precisions_cholesky_ = 1 / np.sqrt(gm.covariances_)
    gm.precisions_ = 1 / gm.covariances_
    gm.n_features_in_ = 20_000
    tracemalloc.start()
    scores = gm.score_samples(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100_000_000
    per_component = norm.logpdf(X[:, None, :], gm.means_, np.sqrt(2.0)).sum(axis=2)
    np.testing.assert_allclose(scores, np.logaddexp.reduce(per_component + np.log(0.5), axis=1),
                               rtol=1e-10)
