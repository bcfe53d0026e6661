"""``emkit hmm fit | predict``, run as users run it: in a subprocess."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from emkit import HiddenMarkovModel, load
from emkit.distributions import Gaussian
from emkit.hmm import CategoricalHMM, GaussianHMM, PoissonHMM
from tests.test_cli import assert_clean_error, emkit, run
from tests.test_startup import _modules_after

LENGTHS = [120, 80, 100]


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    """Three sequences of a two-state Gaussian chain, with a sequence id and a label column."""
    folder = tmp_path_factory.mktemp("hmm")
    truth = HiddenMarkovModel([Gaussian([0.0, 0.0], np.eye(2)), Gaussian([3.0, 1.0], np.eye(2))],
                              transmat=[[0.9, 0.1], [0.2, 0.8]])
    parts = []
    for s, n in enumerate(LENGTHS):
        X, z = truth.sample(n, random_state=s)
        parts.append(pd.DataFrame({"run": f"r{s}", "x": X[:, 0], "y": X[:, 1], "truth": z}))
    frame = pd.concat(parts, ignore_index=True)
    frame.to_csv(folder / "seq.csv", index=False)
    (folder / "lengths.txt").write_text("\n".join(map(str, LENGTHS)) + "\n")
    frame[["x", "y"]].to_csv(folder / "plain.csv", index=False)
    return folder, frame


def test_fit_by_sequence_column_is_the_library_fit_and_predict_decodes(sequences):
    folder, frame = sequences
    out = folder / "model.emkit"
    result = emkit("hmm", "fit", folder / "seq.csv", "--sequence", "run", "--exclude", "truth",
                   "--covariance", "full", "--seed", 3, "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    X = frame[["x", "y"]].to_numpy()
    same = GaussianHMM(2, covariance_type="full", n_iter=100, random_state=3).fit(X, LENGTHS)
    saved = load(out)
    np.testing.assert_allclose(saved.means_, same.means_, rtol=1e-10)
    np.testing.assert_allclose(saved.transmat_, same.transmat_, rtol=1e-10)
    assert list(saved.feature_names_in_) == ["x", "y"]
    assert summary["n_sequences"] == 3 and summary["n_samples"] == 300
    assert summary["log_likelihood"] == pytest.approx(same.score(X, LENGTHS), rel=1e-10)
    assert summary["bic"] == pytest.approx(same.bic(X, LENGTHS), rel=1e-10)

    # predict takes the model's columns by name; the lengths from a file this time
    code, stdout, stderr = run("hmm", "predict", out, folder / "seq.csv", "--lengths",
                               folder / "lengths.txt", "--proba")
    assert code == 0, stderr
    decoded = pd.read_csv(io.StringIO(stdout))
    assert list(decoded.columns) == ["state", "p0", "p1"]
    np.testing.assert_array_equal(decoded["state"], same.predict(X, LENGTHS))
    np.testing.assert_allclose(decoded[["p0", "p1"]], same.predict_proba(X, LENGTHS),
                               atol=1e-12)
    agreement = (decoded["state"] == frame["truth"]).mean()
    assert max(agreement, 1 - agreement) > 0.95  # the states are found (up to their names)


def test_lengths_file_gives_the_sequence_column_fit(sequences):
    folder, frame = sequences
    code, stdout, stderr = run("hmm", "fit", folder / "plain.csv", "--lengths",
                               folder / "lengths.txt", "--json", "--accelerate", "--n-init", 2)
    assert code == 0, stderr
    X = frame[["x", "y"]].to_numpy()
    same = GaussianHMM(2, n_iter=100, random_state=0, accelerate=True, n_init=2).fit(X, LENGTHS)
    assert json.loads(stdout)["log_likelihood"] == pytest.approx(
        same.score(X, LENGTHS), rel=1e-10)


@pytest.mark.parametrize("emission, cls", [("categorical", CategoricalHMM),
                                           ("poisson", PoissonHMM)])
def test_discrete_emissions(tmp_path, emission, cls):
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.integers(0, 3, 60), rng.integers(2, 5, 60)])
    pd.DataFrame({"id": np.repeat(["a", "b"], 60), "c": codes}).to_csv(tmp_path / "d.csv",
                                                                        index=False)
    code, stdout, stderr = run("hmm", "fit", tmp_path / "d.csv", "--sequence", "id",
                               "--emission", emission, "-k", 2, "--json", "--out",
                               tmp_path / "m.emkit")
    assert code == 0, stderr
    same = cls(2, n_iter=100, random_state=0).fit(codes[:, None], [60, 60])
    summary = json.loads(stdout)
    key = "emissionprob" if emission == "categorical" else "lambdas"
    np.testing.assert_allclose(summary[key], getattr(same, key + "_"), rtol=1e-10)
    assert type(load(tmp_path / "m.emkit")) is cls
    # a sequence id column is written next to the states
    code, stdout, stderr = run("hmm", "predict", tmp_path / "m.emkit", tmp_path / "d.csv",
                               "--sequence", "id")
    assert code == 0, stderr
    table = pd.read_csv(io.StringIO(stdout))
    assert list(table.columns) == ["id", "state"]
    np.testing.assert_array_equal(table["state"], same.predict(codes[:, None], [60, 60]))


def test_bad_sequences_are_one_line_errors(tmp_path, sequences):
    folder, frame = sequences
    shuffled = frame.iloc[np.r_[0:10, 200:210, 10:20]]  # r0, r2, r0 again
    shuffled.to_csv(tmp_path / "split.csv", index=False)
    assert_clean_error(
        run("hmm", "fit", tmp_path / "split.csv", "--sequence", "run", "--exclude", "truth"),
        "sequence 'r0' (column 'run') appears in two separate runs of rows (from rows 0 and 20)")
    (tmp_path / "short.txt").write_text("100 100\n")
    assert_clean_error(run("hmm", "fit", folder / "plain.csv", "--lengths",
                           tmp_path / "short.txt"), "lengths sum to 200 but X has 300 rows")
    (tmp_path / "bad.txt").write_text("100\nten\n")
    assert_clean_error(run("hmm", "fit", folder / "plain.csv", "--lengths", tmp_path / "bad.txt"),
                       "line 2: 'ten' is not a sequence length")
    code, _, stderr = run("hmm", "fit", folder / "plain.csv", "--lengths",
                          folder / "lengths.txt", "--sequence", "x")
    assert code == 2 and "not both" in stderr


def test_predict_refuses_a_mixture_model_and_missing_columns(tmp_path, sequences):
    folder, frame = sequences
    code, _, stderr = run("fit", folder / "plain.csv", "-k", 2, "--out", tmp_path / "gm.npz",
                          "-q")
    assert code == 0, stderr
    assert_clean_error(run("hmm", "predict", tmp_path / "gm.npz", folder / "plain.csv"),
                       "holds a GaussianMixture, not an HMM")
    code, _, stderr = run("hmm", "fit", folder / "plain.csv", "--out", tmp_path / "h.emkit")
    assert code == 0, stderr
    frame[["x"]].to_csv(tmp_path / "x_only.csv", index=False)
    assert_clean_error(run("hmm", "predict", tmp_path / "h.emkit", tmp_path / "x_only.csv"),
                       "lacks the model's column 'y'")


def test_choices_are_the_librarys_and_help_is_light():
    from emkit import cli
    from emkit.estimators import hmm as hmm_estimators

    assert cli.HMM_COVARIANCE_TYPES == hmm_estimators.COVARIANCE_TYPES
    assert {getattr(hmm_estimators, name) for name in cli.HMM_EMISSIONS.values()} == {
        GaussianHMM, CategoricalHMM, PoissonHMM}
    code = ("import sys\nfrom emkit.cli import main\n"
            "sys.argv = ['emkit', 'hmm', 'fit', '--help']\n"
            "try:\n    main()\nexcept SystemExit as stop:\n    assert stop.code == 0\n")
    assert _modules_after(code) == []


def test_demo_casino_recovers_the_dice_and_draws_the_posterior(tmp_path, monkeypatch):
    from emkit.demos import casino
    from tests.test_cli import assert_picture

    results, demo = [], casino.run
    monkeypatch.setattr(casino, "run", lambda *a, **k: results.append(demo(*a, **k)))
    code, stdout, stderr = run("demo", "casino", "--out", tmp_path)
    assert code == 0, stderr
    assert "Face probabilities" in stdout and "Viterbi path" in stdout
    assert_picture(tmp_path / "casino.png")
    (result,) = results
    model, rolls, lengths = result.model, result.rolls, result.lengths
    # the maximum likelihood fit scores at least the true parameters on the rolls
    assert model.score(rolls, lengths) >= casino._true_model().score(rolls, lengths)
    np.testing.assert_allclose(model.emissionprob_, [casino.FAIR, casino.LOADED], atol=0.05)
    np.testing.assert_allclose(model.transmat_, casino.TRANSMAT, atol=0.05)
    # decoding with the fitted parameters is about as good as with the true ones
    true_path = casino._true_model().predict(rolls, lengths)
    assert result.viterbi_accuracy > (true_path == result.dice).mean() - 0.03
    assert result.viterbi_accuracy > 1 - result.dice.mean() + 0.05
