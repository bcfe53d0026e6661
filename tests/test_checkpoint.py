"""Checkpoints: a fit interrupted anywhere resumes to exactly the uninterrupted result."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from emkit import GaussianMixture, sources
from emkit.estimators.checkpoint import CheckpointError
from tests.conftest import make_blobs

PARAMS = {"n_components": 4, "n_init": 3, "tol": 1e-6, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    return make_blobs(n_samples=800, n_features=3, n_components=4, seed=3)


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    # The same checkpointed fit, never interrupted: the engine's iterations, bit for bit (a
    # fit without checkpoint on few rows runs the compiled small-data loop: to rounding).
    path = tmp_path_factory.mktemp("uninterrupted") / "fit.ckpt"
    return GaussianMixture(**PARAMS, checkpoint=path).fit(data)


def test_a_fit_without_checkpoint_agrees_to_rounding(data, uninterrupted):
    plain = GaussianMixture(**PARAMS).fit(data)
    assert (plain.n_iter_, plain.converged_) == (uninterrupted.n_iter_, uninterrupted.converged_)
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_allclose(getattr(plain, name), getattr(uninterrupted, name),
                                   rtol=1e-10, atol=1e-12, err_msg=name)


class Interrupt(Exception):
    pass


def stop_after(calls: int):
    """A callback that interrupts the fit on its ``calls``-th call (any restart)."""
    seen = []

    def callback(iteration, lower_bound, change, model):
        seen.append(iteration)
        if len(seen) == calls:
            raise Interrupt

    return callback


def assert_identical(a, b):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "history_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.n_iter_, a.converged_, a.lower_bound_) == (b.n_iter_, b.converged_, b.lower_bound_)


# 7 iterations per restart: interruptions in restarts 0, 1 (a later start must then
# replay the draws of the starts before it) and 2.
@pytest.mark.parametrize("calls", [1, 10, 17])
def test_resume_after_an_interruption_is_exact(tmp_path, data, uninterrupted, calls):
    path = tmp_path / "fit.ckpt"
    with pytest.raises(Interrupt):
        GaussianMixture(**PARAMS, checkpoint=path, checkpoint_every=2,
                        callback=stop_after(calls)).fit(data)
    resumed = GaussianMixture(**PARAMS, checkpoint=path, checkpoint_every=2).fit(data)
    assert_identical(resumed, uninterrupted)
    # A finished fit resumes to its end at once.
    again = GaussianMixture(**PARAMS, checkpoint=path, callback=stop_after(1)).fit(data)
    assert_identical(again, uninterrupted)


@pytest.mark.parametrize("extra", [
    {"prior": "default"},
    {"params": "mc", "weights_init": [0.1, 0.2, 0.3, 0.4]},
    {"noise": True},
], ids=["prior", "frozen-weights", "noise"])
def test_resume_keeps_the_prior_frozen_parameters_and_noise(tmp_path, data, extra):
    # The resumed run continues the fit's own mixture (MAP M-step, frozen weights, the
    # noise component), not a plain one: exactly the uninterrupted checkpointed fit.
    params = {**PARAMS, **extra, "n_init": 1, "checkpoint_every": 2}  # the run interrupted
    whole = GaussianMixture(**params, checkpoint=tmp_path / "whole.ckpt").fit(data)
    path = tmp_path / "fit.ckpt"
    with pytest.raises(Interrupt):
        GaussianMixture(**params, checkpoint=path, callback=stop_after(3)).fit(data)
    resumed = GaussianMixture(**params, checkpoint=path).fit(data)
    assert_identical(resumed, whole)
    if "noise" in extra:
        assert resumed.noise_weight_ == whole.noise_weight_ > 0
    if "params" in extra:
        np.testing.assert_array_equal(resumed.weights_, extra["weights_init"])


def first_values(record: list):
    """A callback keeping each restart's first log-likelihood: the mark of its start."""
    def callback(iteration, lower_bound, change, model):
        if iteration == 1:
            record.append(lower_bound)

    return callback


def test_a_resumed_fit_draws_the_later_starts_of_the_uninterrupted_one(tmp_path, data):
    """Restarts share one RandomState (scikit-learn's): resuming replays the earlier draws."""
    params = {**PARAMS, "init_params": "random"}  # three distinct starts
    expected, seen = [], []
    GaussianMixture(**params, callback=first_values(expected)).fit(data)

    def stop_in_second_restart(iteration, lower_bound, change, model):
        first_values(seen)(iteration, lower_bound, change, model)
        if len(seen) == 2 and iteration == 3:
            raise Interrupt

    path = tmp_path / "fit.ckpt"
    with pytest.raises(Interrupt):  # after restart 1's checkpoint at iteration 2
        GaussianMixture(**params, checkpoint=path, checkpoint_every=2,
                        callback=stop_in_second_restart).fit(data)
    seen.clear()
    GaussianMixture(**params, checkpoint=path, callback=first_values(seen)).fit(data)
    assert len(set(expected)) == 3 and seen == expected[2:]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_resumed_iterations_are_numbered_on(tmp_path, data):
    path = tmp_path / "fit.ckpt"
    params = {**PARAMS, "n_init": 1, "tol": 0, "max_iter": 10, "checkpoint": path}
    with pytest.raises(Interrupt):
        GaussianMixture(**params, callback=stop_after(4)).fit(data)
    seen = []
    GaussianMixture(**params, callback=lambda i, *rest: seen.append(i)).fit(data)
    assert seen == list(range(4, 11))


KILLED_FIT = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from emkit import GaussianMixture

    def crash(iteration, lower_bound, change, model):
        if iteration == 7:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, as a real crash

    X = np.load(sys.argv[1])
    GaussianMixture(n_components=4, n_init=3, tol=1e-6, random_state=0, checkpoint=sys.argv[2],
                    callback=crash).fit(X)
""")


def test_a_killed_process_resumes_exactly(tmp_path, data, uninterrupted):
    np.save(tmp_path / "rows.npy", data)
    path = tmp_path / "fit.ckpt"
    run = subprocess.run([sys.executable, "-c", KILLED_FIT, str(tmp_path / "rows.npy"), str(path)],
                         capture_output=True, timeout=120)
    assert run.returncode == -9, run.stderr
    assert path.is_file()
    resumed = GaussianMixture(**PARAMS, checkpoint=path).fit(data)
    assert_identical(resumed, uninterrupted)


def test_a_truncated_checkpoint_is_reported_and_the_previous_survives(
        tmp_path, data, uninterrupted):
    path = tmp_path / "fit.ckpt"
    with pytest.raises(Interrupt):
        GaussianMixture(**PARAMS, checkpoint=path, callback=stop_after(12)).fit(data)
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    with pytest.raises(CheckpointError, match=r"truncated or damaged.*fit\.ckpt\.prev is intact"):
        GaussianMixture(**PARAMS, checkpoint=path).fit(data)
    path.with_name("fit.ckpt.prev").replace(path)
    assert_identical(GaussianMixture(**PARAMS, checkpoint=path).fit(data), uninterrupted)


def test_a_checkpoint_of_another_fit_is_refused(tmp_path, data):
    path = tmp_path / "fit.ckpt"
    GaussianMixture(**{**PARAMS, "n_init": 1}, checkpoint=path).fit(data)
    with pytest.raises(CheckpointError, match="n_components: 4 there, 3 now"):
        GaussianMixture(**{**PARAMS, "n_init": 1, "n_components": 3}, checkpoint=path).fit(data)
    with pytest.raises(CheckpointError, match="n_features: 3 there, 2 now"):
        GaussianMixture(**{**PARAMS, "n_init": 1}, checkpoint=path).fit(data[:, :2])


def test_checkpoint_needs_an_integer_seed_and_no_warm_start(tmp_path, data):
    with pytest.raises(ValueError, match="integer random_state"):
        GaussianMixture(2, checkpoint=tmp_path / "a.ckpt").fit(data)
    model = GaussianMixture(2, random_state=0, warm_start=True).fit(data)
    with pytest.raises(ValueError, match="warm_start"):
        model.set_params(checkpoint=tmp_path / "a.ckpt").fit(data)


def test_checkpointed_fit_of_a_streamed_file(tmp_path, data, uninterrupted):
    np.save(tmp_path / "rows.npy", data)
    source = sources.open(tmp_path / "rows.npy", chunk_size=400)
    path = tmp_path / "fit.ckpt"
    with pytest.raises(Interrupt):
        GaussianMixture(**PARAMS, checkpoint=path, callback=stop_after(20)).fit(source)
    resumed = GaussianMixture(**PARAMS, checkpoint=path).fit(source)
    straight = GaussianMixture(**PARAMS).fit(source)
    assert_identical(resumed, straight)
    np.testing.assert_allclose(resumed.means_, uninterrupted.means_, rtol=0, atol=1e-10)


@pytest.mark.parametrize("calls", [None, 5])  # a completed checkpoint, a half-finished one
def test_a_checkpoint_of_other_data_is_refused(tmp_path, data, calls):
    # Issue 22 item 1: A's checkpoint used to return A's means for B = A*10-50.
    path = tmp_path / "fit.ckpt"
    params = {**PARAMS, "n_init": 1}
    if calls is None:
        GaussianMixture(**params, checkpoint=path).fit(data)
    else:
        with pytest.raises(Interrupt):
            GaussianMixture(**params, checkpoint=path, callback=stop_after(calls)).fit(data)
    for other in (data * 10 - 50, data[:-1], np.vstack([data, data[:1]])):
        with pytest.raises(CheckpointError, match=r"written for different data.*delete it"):
            GaussianMixture(**params, checkpoint=path).fit(other)
    # The same data still resume (to the fit checkpointed straight through).
    straight = GaussianMixture(**params, checkpoint=tmp_path / "straight.ckpt").fit(data)
    assert_identical(GaussianMixture(**params, checkpoint=path).fit(data), straight)


def test_a_checkpoint_of_another_streamed_file_is_refused(tmp_path, data):
    np.save(tmp_path / "a.npy", data)
    np.save(tmp_path / "b.npy", data * 10 - 50)
    path = tmp_path / "fit.ckpt"
    params = {**PARAMS, "n_init": 1}
    GaussianMixture(**params, checkpoint=path).fit(sources.open(tmp_path / "a.npy"))
    with pytest.raises(CheckpointError, match="different data"):
        GaussianMixture(**params, checkpoint=path).fit(sources.open(tmp_path / "b.npy"))


def test_checkpoint_must_name_a_file_in_an_existing_folder(tmp_path, data):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a file"):
        GaussianMixture(2, random_state=0, checkpoint=folder).fit(data)
    assert (folder / "keep.txt").read_text() == "mine"  # not renamed aside
    assert not (tmp_path / "results.prev").exists()
    with pytest.raises(ValueError, match="empty path"):
        GaussianMixture(2, random_state=0, checkpoint="").fit(data)
    with pytest.raises(ValueError, match="does not exist"):
        GaussianMixture(2, random_state=0, checkpoint=tmp_path / "no" / "fit.ckpt").fit(data)


def test_a_checkpoint_in_use_is_refused(tmp_path, data):
    path = tmp_path / "fit.ckpt"
    attempts = []

    def second_fit(*args):
        # Another fit on the same checkpoint while the first runs.
        if not attempts:
            with pytest.raises(CheckpointError, match="in use by another fit"):
                GaussianMixture(2, random_state=0, checkpoint=path).fit(data)
            attempts.append(1)

    GaussianMixture(2, random_state=0, checkpoint=path, callback=second_fit).fit(data)
    assert attempts == [1]
    GaussianMixture(2, random_state=0, checkpoint=path).fit(data)  # released at the end


def test_damaged_checkpoint_metadata_is_a_checkpoint_error(tmp_path, data):
    from emkit import io as model_io

    path = tmp_path / "fit.ckpt"
    GaussianMixture(2, random_state=0, checkpoint=path).fit(data)
    metadata, arrays = model_io.read_archive(path, "emkit-checkpoint")
    for damage in ({"restart": None}, {"runs": "x"}, {"runs": {"run": {"n_iter": 1}}}):
        model_io.write_archive(path, {**metadata, **damage}, arrays)
        with pytest.raises(CheckpointError, match="damaged"):
            GaussianMixture(2, random_state=0, checkpoint=path).fit(data)
