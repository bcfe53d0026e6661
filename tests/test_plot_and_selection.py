"""Pictures, model selection and the bundled data sets."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from emkit import GaussianMixture
from emkit.datasets import load_anemia, load_faithful, make_anemia
from emkit.gaussian_mixture import DegenerateFitWarning
from emkit.plot import (
    gaussian_view,
    plot_history,
    plot_mixture,
    plot_selection,
    plot_snapshots,
    projection_matrix,
    record_fit,
    save_animation,
)
from emkit.selection import classification_entropy, select_model
from tests.conftest import make_blobs


def _pixels_vary(figure: Figure) -> bool:
    """The rendered figure is not blank."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=50)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("L"), dtype=float).std() > 5.0


@pytest.mark.parametrize("n_features", [1, 2, 5])
@pytest.mark.parametrize("with_history", [True, False])
def test_plots_on_1d_2d_and_5d_data(tmp_path, n_features, with_history):
    X = make_blobs(n_samples=150, n_features=n_features, n_components=2, separation=5.0)
    gm, snapshots = record_fit(GaussianMixture(2, max_iter=6, tol=0, random_state=0), X)
    ax = plot_mixture(X, gm)
    assert _pixels_vary(ax.figure)
    assert _pixels_vary(plot_mixture(X).figure)  # points only, no model
    if n_features > 1:
        ax = plot_mixture(X, gm, columns=(n_features - 1, 0))
        assert ax.get_xlabel() == f"column {n_features - 1}"
        assert _pixels_vary(plot_mixture(X, gm, projection="pca").figure)
    chosen = {t: snapshots[t] for t in (1, 3, 6)}
    assert _pixels_vary(plot_snapshots(X, chosen))
    history = gm.history_ if with_history else []
    assert len(plot_history(history).lines[0].get_xdata()) == len(history)
    gif = save_animation(X, chosen, tmp_path / "fit.gif")
    with Image.open(gif) as image:
        assert image.n_frames == 3


def test_snapshots_are_the_models_after_each_iteration():
    X = make_blobs(n_samples=200, n_components=2)
    gm, snapshots = record_fit(GaussianMixture(2, max_iter=5, tol=0, random_state=0), X)
    assert sorted(snapshots) == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(snapshots[5].weights, gm.weights_)
    assert gm.callback is None  # the user's (absent) callback is restored
    with pytest.raises(ValueError, match="n_init=1"):
        record_fit(GaussianMixture(2, n_init=2), X)


def test_projected_ellipses_are_the_exact_marginals():
    X = make_blobs(n_samples=300, n_features=4, n_components=2)
    gm = GaussianMixture(2, random_state=0).fit(X)
    view = gaussian_view(gm).project(projection_matrix(X, columns=(2, 0)))
    np.testing.assert_allclose(view.means, gm.means_[:, [2, 0]])
    np.testing.assert_allclose(view.covariances, gm.covariances_[:, [2, 0]][:, :, [2, 0]])


def test_bad_view_choices():
    X = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"two indices in 0\.\.2"):
        projection_matrix(X, columns=(0, 3))
    with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
        projection_matrix(X, projection=np.ones((2, 2)))
    with pytest.raises(ValueError, match="either columns or projection"):
        projection_matrix(X, columns=(0, 1), projection="pca")


@pytest.fixture(scope="module")
def faithful_selection():
    return select_model(load_faithful(), range(1, 10), random_state=0)


def test_selection_on_old_faithful_picks_tied_three_like_mclust(faithful_selection):
    """mclust's BIC on faithful chooses EEE (tied), 3 components."""
    best = faithful_selection.best_estimator
    assert (best.covariance_type, best.n_components) == ("tied", 3)
    table = faithful_selection.table
    assert len(table) == 36
    usable = table[~table["degenerate"]]
    assert usable.iloc[0]["bic"] == pytest.approx(best.bic(load_faithful()))


def test_selection_scores_match_the_estimators(faithful_selection):
    X = load_faithful()
    table = faithful_selection.table
    for _, row in table.sample(5, random_state=0).iterrows():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = GaussianMixture(
                int(row.n_components), covariance_type=row.covariance_type, n_init=3,
                random_state=0, tol=1e-5, max_iter=500,
            ).fit(X)
        assert row.bic == pytest.approx(gm.bic(X), rel=1e-10)
        assert row.aic == pytest.approx(gm.aic(X), rel=1e-10)
        entropy = classification_entropy(gm.predict_proba(X))
        assert row.icl == pytest.approx(gm.bic(X) + 2 * entropy, rel=1e-10)


def test_spurious_maximisers_are_flagged_and_excluded(faithful_selection):
    """Waiting times are whole minutes: a diagonal 5-component fit collapses onto them."""
    table = faithful_selection.table
    spurious = table[(table.covariance_type == "diag") & (table.n_components == 5)].iloc[0]
    assert spurious.degenerate and "collapsed" in spurious.note
    assert spurious.bic < faithful_selection.best_estimator.bic(load_faithful())
    with pytest.warns(DegenerateFitWarning, match=r"component \d collapsed"):
        GaussianMixture(5, covariance_type="diag", n_init=3, random_state=0, tol=1e-5,
                        max_iter=500).fit(load_faithful())
    assert plot_selection(table).get_ylabel().startswith("BIC")


def test_selection_rejects_bad_criterion():
    with pytest.raises(ValueError, match="criterion must be one of"):
        select_model(load_faithful(), criterion="likelihood")


def test_classification_entropy_closed_form():
    resp = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert classification_entropy(resp) == pytest.approx(np.log(2))


def test_bundled_anemia_data_is_its_generator_output():
    X, y = load_anemia(return_labels=True)
    made_X, made_y = make_anemia()
    np.testing.assert_allclose(X, made_X, atol=5e-5)
    np.testing.assert_array_equal(y, made_y)
    assert X.shape == (300, 2) and set(np.unique(y)) == {0, 1}
    assert 3.2 < X[:, 0].min() and X[:, 0].max() < 4.1
    assert 3.6 < X[:, 1].min() and X[:, 1].max() < 4.5
    controls, patients = X[y == 0], X[y == 1]
    assert np.trace(np.cov(controls.T)) < np.trace(np.cov(patients.T)) / 4


def test_em_recovers_the_anemia_groups():
    X, y = load_anemia(return_labels=True)
    labels = GaussianMixture(2, random_state=0).fit_predict(X)
    agreement = max(np.mean(labels == y), np.mean(labels != y))
    assert agreement > 0.93
