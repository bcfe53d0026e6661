"""``sample_weight`` and ``labels`` on streamed (file) and Dask fits (issue 21).

Weights and labels travel with the rows chunk by chunk: a weighted or labelled
streamed or Dask fit from the same start must equal the in-memory one to
rounding (statistics add over chunks), and where the initialisation sample is
the whole data (a file smaller than the sample) even from an automatic start.
"""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest

from emkit import GaussianMixture, MixtureModel, sources
from emkit.distributions import Poisson


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Rows, integer weights, partial labels, and the same as .npy files."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (150, 2)), rng.normal([3, 1], 1.3, (150, 2))])
    weights = rng.integers(0, 4, size=len(X)).astype(np.float64)
    labels = np.full(len(X), -1)
    labels[:20], labels[150:170] = 0, 1
    folder = tmp_path_factory.mktemp("rows")
    paths = {name: str(folder / f"{name}.npy")
             for name in ("X", "weights", "labels")}
    np.save(paths["X"], X)
    np.save(paths["weights"], weights[:, None])
    np.save(paths["labels"], labels[:, None].astype(np.float64))
    return X, weights, labels, paths


def _start(X):
    gm = GaussianMixture(2, random_state=0, max_iter=3).fit(X)
    return dict(weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_)


def _assert_same_fit(a, b, rtol=1e-9):
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=rtol)
    np.testing.assert_allclose(a.means_, b.means_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=rtol)
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=rtol)
    assert a.n_iter_ == b.n_iter_


def _inputs(X, values, path, kind):
    """X and a per-row column as a file source (values as array or file) or dask arrays."""
    if kind == "file-array":
        return sources.open(path["X"], chunk_size=64), values
    if kind == "file-file":  # the column in chunks of another size than the rows
        column = path["weights"] if values.dtype.kind == "f" else path["labels"]
        return sources.open(path["X"], chunk_size=64), sources.open(column, chunk_size=50)
    # Dask: the column in other blocks than the rows (rechunked to theirs)
    return da.from_array(X, chunks=(70, 2)), da.from_array(values, chunks=45)


@pytest.mark.parametrize("kind", ["file-array", "file-file", "dask"])
def test_weighted_streamed_and_dask_fits_equal_the_in_memory_fit(data, kind):
    X, weights, _, paths = data
    kwargs = dict(tol=0, max_iter=30, chunk_size=64, **_start(X))
    memory = GaussianMixture(2, **kwargs).fit(X, sample_weight=weights)
    rows, column = _inputs(X, weights, paths, kind)
    streamed = GaussianMixture(2, **kwargs).fit(rows, sample_weight=column)
    _assert_same_fit(streamed, memory)
    # A weighted fit is not the unweighted one, and stands for the summed weight.
    plain = GaussianMixture(2, **kwargs).fit(X)
    assert abs(plain.lower_bound_ - memory.lower_bound_) > 1e-3
    assert streamed.n_samples_seen_ == memory.n_samples_seen_ == int(weights.sum())


@pytest.mark.parametrize("kind", ["file-file", "dask"])
def test_labelled_streamed_and_dask_fits_equal_the_in_memory_fit(data, kind):
    X, _, labels, paths = data
    kwargs = dict(tol=0, max_iter=30, chunk_size=64, **_start(X))
    memory = GaussianMixture(2, **kwargs).fit(X, labels=labels)
    rows, column = _inputs(X, labels, paths, kind)
    streamed = GaussianMixture(2, **kwargs).fit(rows, labels=column)
    _assert_same_fit(streamed, memory)
    assert np.all(streamed.predict(X[labels >= 0]) == labels[labels >= 0])


def test_weights_enter_the_start_of_a_streamed_fit(data):
    """A file smaller than the initialisation sample is sampled whole, in row order: the
    automatic (k-means) start is then the in-memory one, weights included."""
    X, weights, _, paths = data
    kwargs = dict(random_state=0, tol=0, max_iter=30, chunk_size=64)
    memory = GaussianMixture(2, **kwargs).fit(X, sample_weight=weights)
    streamed = GaussianMixture(2, **kwargs).fit(
        sources.open(paths["X"], chunk_size=64), sample_weight=sources.open(paths["weights"]))
    _assert_same_fit(streamed, memory)
    unweighted_start = GaussianMixture(2, max_iter=0, random_state=0).fit(X)
    weighted_start = GaussianMixture(2, max_iter=0, random_state=0).fit(
        sources.open(paths["X"]), sample_weight=weights)
    assert not np.allclose(unweighted_start.means_, weighted_start.means_)


@pytest.mark.parametrize("kind", ["file-array", "dask"])
def test_mixture_model_weights_and_labels_streamed(data, kind):
    rng = np.random.default_rng(1)
    counts = np.concatenate([rng.poisson(2, 150), rng.poisson(7, 150)]).astype(float)[:, None]
    _, weights, labels, _ = data
    start = dict(tol=0, max_iter=30, chunk_size=64)
    memory = MixtureModel([Poisson(1.0), Poisson(5.0)], **start).fit(
        counts, sample_weight=weights, labels=labels)
    if kind == "dask":
        rows = da.from_array(counts, chunks=(80, 1))
        w, z = da.from_array(weights, chunks=60), da.from_array(labels, chunks=60)
    else:
        path = str(data[3]["X"]).replace("X.npy", "counts.npy")
        np.save(path, counts)
        rows, w, z = sources.open(path, chunk_size=70), weights, labels
    streamed = MixtureModel([Poisson(1.0), Poisson(5.0)], **start).fit(
        rows, sample_weight=w, labels=z)
    np.testing.assert_allclose(streamed.weights_, memory.weights_, rtol=1e-9)
    for a, b in zip(streamed.components_, memory.components_, strict=True):
        np.testing.assert_allclose(a.rate, b.rate, rtol=1e-9)
    np.testing.assert_allclose(streamed.lower_bound_, memory.lower_bound_, rtol=1e-9)


def test_bad_streamed_weights_and_labels_are_refused(data, tmp_path):
    X, weights, _, paths = data
    rows = sources.open(paths["X"], chunk_size=64)
    with pytest.raises(ValueError, match="fewer than the rows of X"):
        GaussianMixture(2).fit(rows, sample_weight=weights[:-5])
    with pytest.raises(ValueError, match="more than the 300 rows"):
        GaussianMixture(2, **_start(X)).fit(rows, sample_weight=np.ones(310))
    bad = weights.copy()
    bad[200] = -1.0
    with pytest.raises(ValueError, match=r"non-negative.*row\(s\) \[200\] hold \[-1.0\]"):
        GaussianMixture(2, **_start(X)).fit(rows, sample_weight=bad)
    with pytest.raises(ValueError, match="labels must lie in"):
        GaussianMixture(2, **_start(X)).fit(rows, labels=np.full(len(X), 2))
    two_columns = str(tmp_path / "two.npy")
    np.save(two_columns, np.ones((len(X), 2)))
    with pytest.raises(ValueError, match="one value per row"):
        GaussianMixture(2).fit(rows, sample_weight=sources.open(two_columns))
    with pytest.raises(ValueError, match=r"shape \(299,\), expected \(300,\)"):
        GaussianMixture(2).fit(da.from_array(X, chunks=(100, 2)),
                               sample_weight=da.ones(299, chunks=100))
    with pytest.raises(ValueError, match=r"non-negative.*row\(s\) \[200\]"):
        GaussianMixture(2, **_start(X)).fit(da.from_array(X, chunks=(100, 2)),
                                            sample_weight=da.from_array(bad, chunks=100))
