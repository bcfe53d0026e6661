"""Bad input gets a clear error naming what is wrong; degenerate data stays finite."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from emkit import GaussianMixture
from emkit.data._validation import check_finite
from emkit.distributions.gaussian.covariance import DegenerateComponentError
from emkit.distributions.gaussian.missing import grouped_by_pattern
from tests.conftest import COVARIANCE_TYPES


@pytest.mark.parametrize(("value", "word"), [(np.inf, "inf"), (-np.inf, "-inf")])
def test_infinite_value_is_located(blobs, value, word):
    X = blobs.copy()
    X[7, 1] = value
    with pytest.raises(ValueError, match=rf"contains {word} at row 7, column 1"):
        GaussianMixture(2).fit(X)
    fitted = GaussianMixture(2, random_state=0).fit(blobs)
    with pytest.raises(ValueError, match="row 7, column 1"):
        fitted.predict(X)


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("n_components", 0, "an integer >= 1"),
        ("n_components", 2.5, "an integer >= 1"),
        ("covariance_type", "ful", "one of 'full', 'tied', 'diag', 'spherical'"),
        ("tol", -1.0, "a number >= 0"),
        ("reg_covar", np.nan, "a number >= 0"),
        ("max_iter", -1, "an integer >= 0"),
        ("n_init", 0, "an integer >= 1"),
        ("init_params", "kmeans++", "one of 'kmeans', 'k-means++'"),
        ("random_state", "seed", "None, an integer"),
        ("warm_start", "yes", "True or False"),
        ("chunk_size", 0, "None or an integer >= 1"),
        ("callback", 3, "None or a callable"),
    ],
)
def test_bad_parameter_names_itself_and_the_allowed_values(blobs, param, value, expected):
    with pytest.raises(ValueError, match=re.escape(f"parameter {param} must be {expected}")):
        GaussianMixture(**{param: value}).fit(blobs)


def test_more_components_than_rows():
    message = r"n_components=5 is larger than the number of samples \(3\)"
    with pytest.raises(ValueError, match=message):
        GaussianMixture(5).fit(np.arange(6.0).reshape(3, 2))


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.arange(5.0), "Expected 2D array, got 1D array"),
        (np.empty((0, 2)), "0 sample"),
        (np.ones((1, 2)), "1 sample"),
        ([["a", "b"], ["c", "d"]], "could not convert|dtype"),
    ],
)
def test_bad_shapes_and_types(X, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(1).fit(X)


def test_width_mismatch_at_predict(blobs):
    gm = GaussianMixture(2, random_state=0).fit(blobs)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        gm.predict(np.ones((4, 3)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights_init": [0.5, 0.6]}, "weights_init must sum to 1"),
        ({"weights_init": [1.5, -0.5]}, r"weights_init must lie in \[0, 1\]"),
        ({"weights_init": [1.0]}, r"weights_init must have shape \(2,\)"),
        ({"means_init": np.zeros((3, 2))}, r"means_init must have shape \(2, 2\)"),
        ({"means_init": [[0, 0], [np.nan, 1]]}, "means_init contains NaN"),
        ({"precisions_init": np.ones((2, 2))}, r"precisions_init must have shape \(2, 2, 2\)"),
        (
            {"precisions_init": np.array([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])},
            "component 1 has an ill-defined covariance",
        ),
    ],
)
def test_bad_initial_values(blobs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2, **kwargs).fit(blobs)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_degenerate_data_stays_finite(covariance_type):
    rng = np.random.default_rng(0)
    constant_column = np.column_stack([rng.normal(size=60), np.full(60, 3.0)])
    duplicated_points = np.repeat([[1.0, 2.0], [4.0, 0.0]], 30, axis=0)
    one_point_per_component = np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 1.0]])
    cases = [(constant_column, 2), (duplicated_points, 3), (one_point_per_component, 3)]
    for X, k in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X)
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            assert np.isfinite(getattr(gm, name)).all(), (name, X[:2])
        assert np.isfinite(gm.score_samples(X)).all()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_collapse_without_regularisation_is_a_clear_error(covariance_type):
    X = np.repeat([[1.0, 2.0], [4.0, 0.0]], 10, axis=0)
    with pytest.raises(DegenerateComponentError, match="ill-defined covariance"):
        GaussianMixture(2, covariance_type=covariance_type, reg_covar=0.0).fit(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_values_whose_sum_overflows_are_accepted(dtype):
    # The quick test (a finite total) fails here; the exact scan must decide.
    X = np.full((6, 2), np.finfo(dtype).max / 2, dtype=dtype)
    assert check_finite(X, allow_nan=True) is X
    assert grouped_by_pattern(X) is X
    X[2, 1] = np.inf
    with pytest.raises(ValueError, match="inf at row 2, column 1"):
        check_finite(X, allow_nan=True)
    X[2, 1] = np.nan
    assert np.isnan(grouped_by_pattern(X)[-1, 1])  # the gappy row moves to its pattern's group


def test_a_text_column_is_named():
    pd = pytest.importorskip("pandas")
    from emkit import select_model

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=20), "b": rng.normal(size=20),
                          "species": ["x", "y"] * 10,
                          "grade": pd.Categorical(["lo", "hi"] * 10),
                          "count": pd.array([1, 2, None, 4] * 5, dtype="Int64")})
    message = r"not numbers: 'species' \(.*\), 'grade' \(category\)\. Select the numeric"
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2).fit(frame)
    with pytest.raises(ValueError, match=message):
        select_model(frame, [1, 2])
    # Numbers, pandas' nullable integers (NA is missing) and booleans pass.
    numeric = frame[["a", "b", "count"]].assign(flag=[True, False] * 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (two-valued columns collapse two components)
        fitted = GaussianMixture(2, random_state=0).fit(numeric)
    with pytest.raises(ValueError, match="'species'"):
        fitted.predict(frame)


def test_a_warning_where_reg_covar_sets_the_variances():
    # Features on a tiny scale: every variance is reg_covar's (1e-6 against the data's
    # ~1e-16), the fit converges at once to whatever the start gave. Named, with the cure.
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(60, 2)), rng.normal(size=60) * 1e-8, np.full(60, 3.0)]
    with pytest.warns(UserWarning, match=r"column\(s\) 2 \(\d\.\d+e-1[67]\), 3 \(0\): the fitted "
                                         r"variances there are the regularisation's"):
        GaussianMixture(2, random_state=0).fit(X)
    # A model selection warns once, not once per candidate.
    from emkit import select_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        select_model(X, [1, 2], ("VVV", "EII"))
    assert sum("reg_covar=1e-06 is a tenth" in str(w.message) for w in caught) == 1
    # Standardised, a smaller reg_covar, or data on their own scale: no warning.
    for data, reg_covar in ((X[:, :3] / X[:, :3].std(axis=0), 1e-6), (X[:, :3], 1e-20)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            GaussianMixture(2, random_state=0, reg_covar=reg_covar).fit(data)


def test_a_warning_where_reg_covar_sets_the_variance_of_collinear_columns():
    # A duplicated column: every column varies, but no row does along their difference,
    # so every full covariance there is reg_covar's (iris with its first column again:
    # select_model chose VVV,2 at BIC 1058.5, mclust's fits are singular), silently.
    from sklearn.datasets import load_iris

    X = load_iris().data
    with pytest.warns(UserWarning, match=r"variance along some direction .*collinear"):
        GaussianMixture(2, random_state=0).fit(np.c_[X, X[:, 0]])
    with pytest.warns(UserWarning, match="collinear"):  # a sum of others, too
        GaussianMixture(2, random_state=0).fit(np.c_[X, X[:, 0] + X[:, 1]])
    with warnings.catch_warnings():  # the columns alone, or a smaller reg_covar: no warning
        warnings.simplefilter("error")
        GaussianMixture(2, random_state=0).fit(X)
    from emkit.data._validation import regularization_dominates

    assert regularization_dominates(np.c_[X, X[:, 0] * 2], 1e-30) == ""
