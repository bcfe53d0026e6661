"""Pictures, model selection and the bundled data sets."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_digits, load_linnerud
from sklearn.metrics import adjusted_rand_score

from emkit import GaussianMixture
from emkit.datasets import load_anemia, load_faithful, make_anemia
from emkit.estimators.gaussian_mixture import DegenerateFitWarning, degenerate_components
from emkit.estimators.selection import classification_entropy, select_model
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


def test_asking_for_iterations_the_fit_never_ran_names_those_it_did():
    """Issue 14: the README asked for iterations 1, 3, 5, 10 of a fit that converged in 4."""
    X = load_faithful()
    gm, snapshots = record_fit(GaussianMixture(2, random_state=0), X)
    assert gm.converged_ and sorted(snapshots) == list(range(1, gm.n_iter_ + 1))
    late = gm.n_iter_ + 1
    with pytest.raises(KeyError, match=f"no snapshot of iteration {late}: the fit recorded "
                                       f"iterations 1 to {gm.n_iter_}"):
        snapshots[late]
    with pytest.raises(ValueError, match=f"no snapshot of iterations {late}, 10: the fit "
                                         f"recorded iterations 1 to {gm.n_iter_}"):
        plot_snapshots(X, snapshots, iterations=(1, late, 10))
    figure = plot_snapshots(X, snapshots, iterations=(gm.n_iter_, 1, 1))
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert titles == ["iteration 1", f"iteration {gm.n_iter_}"]
    with pytest.raises(ValueError, match="no snapshots to draw"):
        plot_snapshots(X, {})


def _readme_section(title: str) -> str:
    """The Python code blocks of one README section (up to the next heading)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index(f"\n### {title}\n")
    end = re.search(r"\n#{2,3} ", readme[start + 1:]).start() + start + 1
    return "\n".join(re.findall(r"```python\n(.*?)```", readme[start:end], flags=re.S))


def test_readme_seeing_em_section_runs(tmp_path, monkeypatch, faithful_selection):
    """Every line of the section, on Old Faithful (the X of the README's first example).

    The README's selection call is the one ``faithful_selection`` made; it is taken
    from there rather than fitted twice (any other call runs for real).
    """
    import emkit

    def select_model_once(X, n_components=range(1, 10), *args, **kwargs):
        same = (np.array_equal(X, load_faithful()) and not args
                and list(n_components) == list(range(1, 10)) and kwargs == {"random_state": 0})
        return faithful_selection if same else select_model(X, n_components, *args, **kwargs)

    monkeypatch.setattr(emkit, "select_model", select_model_once)
    code = _readme_section("Seeing EM, and choosing the model")
    assert "plot_snapshots" in code and "select_model" in code
    monkeypatch.chdir(tmp_path)
    namespace = {"X": load_faithful(), "GaussianMixture": GaussianMixture}
    exec(compile(code, "README.md", "exec"), namespace)  # our own README
    best = namespace["result"].best_estimator
    assert (best.covariance_type, best.n_components) == ("EEE", 3)  # as the README says
    assert (tmp_path / "grid.png").stat().st_size > 0
    with Image.open(tmp_path / "fit.gif") as gif:
        assert gif.n_frames == namespace["model"].n_iter_


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


# scikit-learn's four structures, select_model's default before mclust's 14.
FOUR = ("full", "tied", "diag", "spherical")


@pytest.fixture(scope="module")
def faithful_selection():
    return select_model(load_faithful(), range(1, 10), random_state=0)


def test_selection_on_old_faithful_picks_tied_three_like_mclust(faithful_selection):
    """mclust's BIC on faithful chooses EEE (tied), 3 components."""
    best = faithful_selection.best_estimator
    assert (best.covariance_type, best.n_components) == ("EEE", 3)
    table = faithful_selection.table
    assert len(table) == 14 * 9
    usable = table[~table["degenerate"]]
    assert usable.iloc[0]["bic"] == pytest.approx(best.bic(load_faithful()))


def test_selection_scores_match_the_estimators(faithful_selection):
    X = load_faithful()
    table = faithful_selection.table
    table = table[table.start == "hc"]  # the others started from a nested model's fit
    for _, row in table.sample(5, random_state=0).iterrows():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = GaussianMixture(
                int(row.n_components), covariance_type=row.covariance_type, init_params="hc",
                random_state=0, tol=1e-5, max_iter=500,
            ).fit(X)
        assert row.bic == pytest.approx(gm.bic(X), rel=1e-10)
        assert row.aic == pytest.approx(gm.aic(X), rel=1e-10)
        entropy = classification_entropy(gm.predict_proba(X))
        assert row.icl == pytest.approx(gm.bic(X) + 2 * entropy, rel=1e-10)


def test_spurious_maximisers_are_flagged_and_excluded(faithful_selection):
    """Waiting times are whole minutes: a diagonal 5-component fit collapses onto them."""
    with pytest.warns(DegenerateFitWarning, match="every fitted candidate is degenerate"):
        table = select_model(load_faithful(), [5], "diag", init_params="kmeans", n_init=3,
                             random_state=0).table
    spurious = table.iloc[0]
    assert spurious.degenerate and "collapsed" in spurious.note
    assert spurious.bic < faithful_selection.best_estimator.bic(load_faithful())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gm = GaussianMixture(5, covariance_type="diag", n_init=3, random_state=0, tol=1e-5,
                             max_iter=500).fit(load_faithful())
    degenerate = [w for w in caught if issubclass(w.category, DegenerateFitWarning)]
    assert len(degenerate) == 1  # one warning per fit, naming every flagged component
    flagged = degenerate_components(gm, len(load_faithful()))
    assert flagged and f"{', '.join(map(str, flagged))} collapsed" in str(degenerate[0].message)
    # Independent truth: each flagged component's smallest variance is reg_covar plus
    # the spread of the whole minutes it sits on, i.e. none.
    assert np.all(gm.covariances_[flagged].min(axis=1) < 10 * gm.reg_covar)
    assert plot_selection(table).get_ylabel().startswith("BIC")


def _small_scale_two_clusters() -> np.ndarray:
    """Issue 14's reproduction: two clusters, the second feature a thousandth of the first."""
    r = np.random.default_rng(0)
    X = np.concatenate([r.normal(0, 1, (300, 2)), r.normal(5, 1, (300, 2))])
    return X * [1.0, 1e-3]


def test_small_scale_features_are_not_a_collapse():
    X = _small_scale_two_clusters()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateFitWarning)
        one = GaussianMixture(1).fit(X)  # one component: never a spurious maximum
        two = GaussianMixture(2, random_state=0).fit(X)
    # The second feature's variances are reg_covar's size (a few 1e-6), as the data's are.
    assert one.covariances_[0, 1, 1] < 10 * one.reg_covar
    assert degenerate_components(two, len(X)) == []


def test_selection_finds_the_two_clusters_of_small_scale_features():
    X = _small_scale_two_clusters()
    result = select_model(X, range(1, 5), FOUR, init_params="kmeans", n_init=3, random_state=0)
    best = result.best_estimator
    assert best.n_components == 2
    truth = np.repeat([0, 1], 300)
    assert adjusted_rand_score(truth, best.predict(X)) > 0.95
    assert not result.table["degenerate"].any()


@pytest.mark.parametrize("scales", [(1.0, 1.0), (1.0, 1e-3)])
def test_a_component_on_repeated_rows_is_still_flagged(scales):
    """Two clusters plus 4 copies of one row and 3 of another: two genuine collapses."""
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(0, 1, (200, 2)), rng.normal(6, 1, (200, 2)),
                        np.tile([[-6.0, 9.0]], (4, 1)), np.tile([[12.0, -5.0]], (3, 1))])
    X = X * scales
    means = np.array([[0.0, 0.0], [6.0, 6.0], [-6.0, 9.0], [12.0, -5.0]]) * scales
    with pytest.warns(DegenerateFitWarning) as caught:
        gm = GaussianMixture(4, means_init=means, random_state=0).fit(X)
    assert len([w for w in caught if w.category is DegenerateFitWarning]) == 1
    assert "components 2, 3 collapsed" in str(caught[0].message)
    assert degenerate_components(gm) == [2, 3]
    np.testing.assert_allclose(gm.weights_[2:] * len(X), [4, 3], rtol=1e-6)


def test_components_on_single_rows_are_unsupported():
    """Linnerud, tied, two components: the second is one athlete, not a cluster."""
    X = _linnerud()
    with pytest.warns(DegenerateFitWarning, match=r"supported by 1\.0 rows"):
        gm = GaussianMixture(2, covariance_type="tied", n_init=3, random_state=0, tol=1e-5,
                             max_iter=500).fit(X)
    assert sorted(np.bincount(gm.predict(X))) == [1, 19]
    assert degenerate_components(gm) == []  # not a collapse: the support check flags it
    assert len(degenerate_components(gm, len(X))) == 1


def _linnerud() -> np.ndarray:
    data = load_linnerud()
    return np.hstack([data.data, data.target])


def test_selection_skips_candidates_the_rows_cannot_support():
    """Issue 14: 20 rows, 6 features; it chose 9 tied components (83 parameters)."""
    X = _linnerud()
    result = select_model(X, range(1, 10), FOUR, init_params="kmeans", n_init=3, random_state=0)
    best, table = result.best_estimator, result.table
    assert best.n_components == 1
    skipped = table[table["skipped"]]
    # A full covariance needs 7 rows in 6 dimensions: 3 components need 21 > 20 rows.
    assert set(skipped[skipped.covariance_type == "full"].n_components) == set(range(3, 10))
    full3 = skipped[(skipped.covariance_type == "full") & (skipped.n_components == 3)].iloc[0]
    assert full3.note == "skipped: 3 full component(s) need at least 21 rows, the data have 20"
    assert skipped["bic"].isna().all()
    assert table["bic"].iloc[: len(table) - len(skipped)].notna().all()  # skipped rows last
    tied9 = table[(table.covariance_type == "tied") & (table.n_components == 9)].iloc[0]
    assert tied9.degenerate and re.search(r"supported by 1\.0(, 1\.0)* rows", tied9.note)
    assert plot_selection(table).get_ylabel().startswith("BIC")


def test_selection_on_raw_breast_cancer_is_not_fooled_by_scale():
    """Issue 14: 29 of 36 flagged, 7 spherical chosen, ARI 0.19 (full 2 has 0.81)."""
    data = load_breast_cancer()
    result = select_model(data.data, range(1, 4), FOUR, init_params="kmeans", n_init=3,
                          random_state=0)
    labels = result.best_estimator.predict(data.data)
    assert adjusted_rand_score(data.target, labels) > 0.7  # measured 0.818 (full, 2)
    assert result.table["degenerate"].sum() <= 2


def test_selection_on_digits_falls_back_instead_of_raising():
    """Integer pixels: every diagonal fit of 2-3 components sits on repeated values."""
    X = load_digits().data
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateFitWarning)
        usable = select_model(X, range(1, 3), ("diag", "spherical"), init_params="kmeans",
                              n_init=3, random_state=0)
    assert not usable.table.set_index(["covariance_type", "n_components"]).loc[
        (usable.best_estimator.covariance_type, usable.best_estimator.n_components), "degenerate"]
    with pytest.warns(DegenerateFitWarning, match="every fitted candidate is degenerate"):
        result = select_model(X, range(2, 4), "diag", init_params="kmeans", n_init=3,
                              random_state=0)
    table = result.table
    assert len(table) == 2 and table["degenerate"].all()
    assert result.best_estimator.bic(X) == pytest.approx(table["bic"].min())


def test_selection_takes_one_covariance_type_as_a_string_and_rejects_bad_names():
    X = load_faithful()
    result = select_model(X, range(1, 3), "full", random_state=0)
    assert list(result.table["covariance_type"]) == ["full", "full"]
    with pytest.raises(ValueError, match=r"covariance_types must be one or more of.*'fulll'"):
        select_model(X, range(1, 3), "fulll")
    with pytest.raises(ValueError, match=r"covariance_types must be one or more of"):
        select_model(X, range(1, 3), ("full", "tide"))
    with pytest.raises(ValueError, match="n_components must be integers >= 1"):
        select_model(X, [0, 1])
    with pytest.raises(ValueError, match="no candidate can be fitted to 5 rows") as caught:
        select_model(X[:5], range(3, 5), "full")
    # The hint is one that works: at most 2 components, or a prior.
    assert "at most 2 component(s)" in str(caught.value) and "prior=" in str(caught.value)
    assert select_model(X[:5], [2], "diag").best_estimator.n_components == 2
    with pytest.raises(ValueError, match="a mixture needs at least 2 rows"):
        select_model(X[:1], [1, 2], "diag")


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


def test_demo_grid_labels_only_iterations_the_fit_ran():
    """A fit that stopped at iteration 12 shows 1, 3, 5, 10, 12: never a "15" it did not run."""
    from emkit.demos.gaussian import _snapshot_iterations

    snapshots = {t: f"model after {t}" for t in range(1, 13)}
    shown = _snapshot_iterations(snapshots)
    assert list(shown) == [1, 3, 5, 10, 12]
    assert all(shown[t] == f"model after {t}" for t in shown)


def test_new_figures_are_managed_by_pyplot_and_given_axes_are_drawn_on():
    import matplotlib.pyplot as plt

    X = np.random.default_rng(0).normal(size=(80, 2))
    gm = GaussianMixture(2, random_state=0).fit(X)
    for ax in (plot_mixture(X, gm), plot_history(gm), plot_selection(
            select_model(X, [1, 2], ["full"], random_state=0).table)):
        assert plt.fignum_exists(ax.figure.number)  # plt.show() and Jupyter display it
    assert plt.fignum_exists(plot_snapshots(X, {1: gm}).number)
    figure = Figure()
    given = figure.add_subplot()
    assert plot_history(gm, ax=given) is given
    np.testing.assert_array_equal(given.lines[0].get_ydata(), gm.history_)
    assert plot_mixture(X, gm, ax=given) is given


def test_history_axis_starts_where_the_climb_is():
    history = np.array([-20.0, -2.0, -1.5, -1.3, -1.25, -1.24])
    ax = plot_history(history)
    low, high = ax.get_ylim()
    assert -2.0 > low > -3.0 and high >= -1.24  # every later point shown, -20 not
    marked = [t.get_text() for t in ax.texts]
    assert marked == ["iteration 1: -20"]
    # The curve itself is intact: every iteration is plotted at its value.
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), history)


def test_history_axis_keeps_a_first_point_near_the_rest():
    history = np.array([-2.5, -2.0, -1.5, -1.3, -1.25])
    ax = plot_history(history)
    assert ax.get_ylim()[0] <= -2.5 and not ax.texts
