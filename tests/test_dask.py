"""Dask arrays: fits on the threads scheduler and on a real cluster equal in-memory fits."""

from __future__ import annotations

import asyncio
import os
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from emkit import GaussianMixture, MixtureModel  # noqa: E402
from emkit.distributions import Poisson  # noqa: E402
from tests.conftest import COVARIANCE_TYPES, make_blobs  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return make_blobs(n_samples=1200, n_features=3, n_components=3, seed=2)


async def _exit_soon():
    """Kill this worker process just after answering, as a crash would (no clean shutdown)."""
    asyncio.get_running_loop().call_later(0.05, os._exit, 1)


@pytest.fixture(scope="module")
def client():
    """A real cluster: two worker processes, as the issue asks."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as active:
        yield active


def params_for(X, covariance_type, max_iter=12):
    """Parameters with a shared start from a short in-memory fit, so every driver begins alike."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GaussianMixture(3, covariance_type=covariance_type, max_iter=2, tol=0,
                              random_state=0).fit(X)
    return {"n_components": 3, "covariance_type": covariance_type, "tol": 0,
            "max_iter": max_iter, "weights_init": ref.weights_, "means_init": ref.means_,
            "precisions_init": ref.precisions_}


def fit_quietly(params, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(**params).fit(X)


def assert_same_fit(a, b):
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-10,
                                   err_msg=name)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_threads_scheduler_equals_in_memory(data, covariance_type):
    params = params_for(data, covariance_type)
    with dask.config.set(scheduler="threads"):
        distributed_fit = fit_quietly(params, da.from_array(data, chunks=(250, 2)))
    assert_same_fit(distributed_fit, fit_quietly(params, data))


@pytest.mark.slow
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_local_cluster_equals_in_memory(client, data, covariance_type):
    params = params_for(data, covariance_type)
    with distributed.get_task_stream(client) as tasks:
        distributed_fit = fit_quietly(params, da.from_array(data, chunks=(300, 3)))
    # The blocks' statistics really were computed by the cluster's workers.
    assert any("_block_stats" in str(task["key"]) for task in tasks.data)
    assert_same_fit(distributed_fit, fit_quietly(params, data))


@pytest.mark.slow
def test_a_worker_killed_mid_fit_changes_nothing(client, data):
    params = params_for(data, "full", max_iter=8)
    X = client.persist(da.from_array(data, chunks=(150, 3)))
    distributed.wait(X)
    killed = []

    def kill_a_worker(iteration, lower_bound, change, model):
        if iteration == 3:
            victim = sorted(client.scheduler_info()["workers"])[0]
            # The nanny restarts it; its blocks (persisted data included) are lost and
            # Dask recomputes them in the next pass.
            client.run(_exit_soon, workers=[victim])
            killed.append(victim)

    survived = fit_quietly({**params, "callback": kill_a_worker}, X)
    assert killed and killed[0] not in client.scheduler_info()["workers"]
    assert_same_fit(survived, fit_quietly(params, data))


def test_predictions_are_lazy_dask_arrays(data):
    model = GaussianMixture(3, random_state=0).fit(data)
    X = da.from_array(data, chunks=(500, 3))
    with dask.config.set(scheduler="threads"):
        for method in ("predict", "predict_proba", "score_samples"):
            lazy = getattr(model, method)(X)
            assert isinstance(lazy, da.Array), method
            np.testing.assert_allclose(lazy.compute(), getattr(model, method)(data),
                                       rtol=0, atol=1e-12, err_msg=method)
        assert model.score(X) == pytest.approx(model.score(data), abs=1e-12)
        labels = GaussianMixture(3, random_state=0).fit_predict(X)
    assert isinstance(labels, da.Array)


def test_default_initialisation_samples_rows(data):
    # An array smaller than the initialisation sample is sampled whole and in
    # order, so k-means starts exactly as it does in memory.
    with dask.config.set(scheduler="threads"):
        fitted = GaussianMixture(3, random_state=5).fit(da.from_array(data, chunks=(400, 3)))
    np.testing.assert_allclose(fitted.means_, GaussianMixture(3, random_state=5).fit(data).means_,
                               rtol=0, atol=1e-10)


def test_infinite_value_is_named_by_its_global_row(data):
    bad = data.copy()
    bad[777, 1] = np.inf
    X = da.from_array(bad, chunks=(250, 3))
    params = params_for(data, "diag")
    with dask.config.set(scheduler="threads"):
        with pytest.raises(ValueError, match="inf at row 777, column 1"):
            GaussianMixture(**params).fit(X)
        with pytest.raises(ValueError, match="inf at row 777, column 1"):
            GaussianMixture(3, random_state=0).fit(X)


def test_unknown_chunk_sizes_are_refused(data):
    X = da.from_array(data, chunks=(250, 3))
    X = X[X[:, 0] > -np.inf]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        GaussianMixture(2).fit(X)


def test_float32_stays_float32(data):
    X = da.from_array(data.astype(np.float32), chunks=(300, 3))
    with dask.config.set(scheduler="threads"):
        model = GaussianMixture(2, random_state=0).fit(X)
    assert model.means_.dtype == np.float32


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mixture_model_on_dask_equals_in_memory():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.poisson(2, 600), rng.poisson(9, 400)])[:, None].astype(float)
    params = {"components": [Poisson(1.0), Poisson(5.0)], "tol": 0, "max_iter": 25}
    with dask.config.set(scheduler="threads"):
        lazy = MixtureModel(**params).fit(da.from_array(X, chunks=(128, 1)))
        labels = lazy.predict(da.from_array(X, chunks=(128, 1))).compute()
    memory = MixtureModel(**params).fit(X)
    np.testing.assert_allclose(lazy.history_, memory.history_, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(labels, memory.predict(X))


def test_mixture_model_checks_every_block():
    X = np.random.default_rng(0).poisson(3, size=(3000, 1)).astype(float)
    X[2345, 0] = 0.5
    with dask.config.set(scheduler="threads"), pytest.raises(
            ValueError, match=r"rows from row 2000 on: row 345, column 0"):
        MixtureModel([Poisson(1.0), Poisson(5.0)]).fit(da.from_array(X, chunks=(1000, 1)))


VARIANTS = [{"algorithm": "hard"}, {"accelerate": True},
            {"algorithm": "stochastic", "random_state": 0}]


@pytest.mark.parametrize("variant", VARIANTS, ids=["hard", "squarem", "stochastic"])
def test_variants_on_dask_equal_in_memory(data, variant):
    # Stochastic draws are keyed on global row numbers, so blocks draw as the array does.
    params = {**params_for(data, "full"), **variant}
    with dask.config.set(scheduler="threads"):
        lazy = fit_quietly(params, da.from_array(data, chunks=(250, 3)))
    assert_same_fit(lazy, fit_quietly(params, data))


def test_information_criteria_on_a_dask_array(data):
    model = GaussianMixture(3, random_state=0).fit(data)
    lazy = da.from_array(data, chunks=len(data) // 4)
    with dask.config.set(scheduler="threads"):
        np.testing.assert_allclose(model.bic(lazy), model.bic(data), rtol=1e-12)
        np.testing.assert_allclose(model.aic(lazy), model.aic(data), rtol=1e-12)


def test_infinite_values_are_refused_at_predict_and_score(data):
    # Issue 22 (low): Dask input at predict/score was not checked for inf.
    model = GaussianMixture(3, random_state=0).fit(data)
    bad = data.copy()
    bad[612, 2] = -np.inf
    X = da.from_array(bad, chunks=(250, 3))
    with dask.config.set(scheduler="threads"):
        for method in (model.predict, model.score_samples, model.predict_proba):
            with pytest.raises(ValueError, match="-inf at row 612, column 2"):
                method(X).compute()


def test_a_one_dimensional_dask_array_is_refused_clearly(data):
    X = da.from_array(data[:, 0], chunks=250)
    with pytest.raises(ValueError, match=r"2-D dask array.*reshape\(-1, 1\)"):
        GaussianMixture(2).fit(X)
    model = GaussianMixture(2, random_state=0).fit(data[:, :1])
    with pytest.raises(ValueError, match="2-D dask array"):
        model.predict(X)


@pytest.mark.parametrize("rows", [300, 25_000])
def test_an_all_missing_column_is_named_as_in_memory(tmp_path, rows):
    # Issue 22 (low): streamed and Dask fits gave scikit-learn's message.
    from emkit import sources

    X = np.random.default_rng(0).normal(size=(rows, 3))
    X[:, 1] = np.nan
    np.save(tmp_path / "rows.npy", X)
    with pytest.raises(ValueError, match="X column 1 has no observed value"):
        GaussianMixture(2).fit(X)
    for data in (da.from_array(X, chunks=(1000, 3)), sources.open(tmp_path / "rows.npy")):
        with dask.config.set(scheduler="threads"):
            with pytest.raises(ValueError, match="column 1 has no observed value"):
                GaussianMixture(2, random_state=0).fit(data)
