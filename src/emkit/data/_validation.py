"""Input and parameter checks that name exactly what is wrong."""

from __future__ import annotations

import numbers
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from emkit.core.acceleration import ACCELERATIONS


def check_finite(X: np.ndarray, name: str = "X", allow_nan: bool = False) -> np.ndarray:
    """Raise a ValueError naming the row and column of the first NaN or infinity.

    With ``allow_nan``, NaN means a missing value and only infinities are refused.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        total = X.sum()
    if np.isfinite(total):  # no NaN and no infinity (the exact scan below is slower)
        return X
    bad = np.isinf(X) if allow_nan else ~np.isfinite(X)
    if not bad.any():
        return X
    row, col = (int(i) for i in np.argwhere(bad)[0])
    value = X[row, col]
    kind = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    allowed = "finite or NaN (missing)" if allow_nan else "finite"
    raise ValueError(
        f"{name} contains {kind} at row {row}, column {col}: every value must be {allowed}"
    )


def check_columns_observed(X: np.ndarray, name: str = "X") -> np.ndarray:
    """Raise a ValueError naming the first column whose values are all missing (NaN)."""
    # Only columns missing in the first row can be missing throughout: the
    # others are not scanned (for complete data, nothing is).
    candidates = np.flatnonzero(np.isnan(X[0])) if len(X) else np.arange(X.shape[1])
    empty = candidates[np.isnan(X[:, candidates]).all(axis=0)]
    if empty.size:
        raise ValueError(
            f"{name} column {int(empty[0])} has no observed value (every entry is NaN); "
            "drop it before fitting"
        )
    return X


@dataclass(frozen=True)
class Rule:
    """A parameter constraint: a predicate and the words that describe it."""

    accepts: Callable[[Any], bool]
    expected: str


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(minimum: int) -> Rule:
    """An integer no smaller than ``minimum``."""
    return Rule(lambda v: _is_int(v) and v >= minimum, f"an integer >= {minimum}")


def real(minimum: float) -> Rule:
    """A finite real number no smaller than ``minimum``."""
    return Rule(
        lambda v: _is_real(v) and np.isfinite(v) and v >= minimum, f"a number >= {minimum}"
    )


def one_of(*options: str) -> Rule:
    """One of the given strings."""
    listed = ", ".join(repr(o) for o in options)
    return Rule(lambda v: isinstance(v, str) and v in options, f"one of {listed}")


BOOLEAN = Rule(lambda v: isinstance(v, bool | np.bool_), "True or False")
# ``accelerate``: False, True (SQUAREM) or the name of an acceleration.
ACCELERATE = Rule(
    lambda v: isinstance(v, bool | np.bool_) or (isinstance(v, str) and v in ACCELERATIONS),
    "True, False, " + " or ".join(repr(a) for a in ACCELERATIONS),
)
# numpy's RandomState (hence scikit-learn's check_random_state) takes seeds in [0, 2**32).
MAX_SEED = 2**32 - 1
RANDOM_STATE = Rule(
    lambda v: v is None
    or (_is_int(v) and 0 <= v <= MAX_SEED)
    or isinstance(v, np.random.RandomState | np.random.Generator),
    f"None, an integer in [0, {MAX_SEED}] (as for scikit-learn), a numpy RandomState or a "
    "numpy Generator",
)
OPTIONAL_ARRAY = Rule(lambda v: v is None or np.ndim(v) >= 1, "None or an array")


def validate_params(estimator: Any, rules: Mapping[str, Rule]) -> None:
    """Check every constructor parameter against its rule, naming the first one that fails."""
    for name, rule in rules.items():
        value = getattr(estimator, name)
        if not rule.accepts(value):
            raise ValueError(
                f"{type(estimator).__name__}: parameter {name} must be {rule.expected}, "
                f"got {value!r}"
            )


def check_shape(array: Any, shape: tuple[int, ...], name: str, dtype: Any) -> np.ndarray:
    """Convert to ``dtype`` and require an exact shape and finite values."""
    array = np.asarray(array, dtype=dtype)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def check_weights(weights: Any, n_components: int, dtype: Any) -> np.ndarray:
    """Mixing weights: shape (K,), within [0, 1], summing to one."""
    weights = check_shape(weights, (n_components,), "weights_init", dtype)
    if (weights < 0).any() or (weights > 1).any():
        raise ValueError(f"weights_init must lie in [0, 1], got {weights}")
    if not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-6):
        raise ValueError(f"weights_init must sum to 1, got sum {weights.sum():.10g}")
    return weights


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """Per-row weights as float64 of shape (n_samples,), or None for unit weights.

    Weights must be finite and non-negative; zero means "absent" (the row adds
    nothing), and at least one weight must be positive. An integer weight
    counts as that many copies of the row.
    """
    if sample_weight is None:
        return None
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("sample_weight must be an array of numbers") from None
    if weights.ndim == 0:  # a scalar, as scikit-learn accepts it
        weights = np.full(n_samples, weights)
    if weights.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {weights.shape}, expected ({n_samples},): one "
            "weight per row of X"
        )
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"sample_weight must be finite and non-negative (zero leaves a row out); "
            f"row(s) {rows[:5].tolist()} hold {weights[rows[:5]].tolist()}"
        )
    if not (weights > 0).any():
        raise ValueError("sample_weight is zero for every row: nothing to fit")
    return weights


def check_labels(labels: Any, n_samples: int, n_components: int) -> np.ndarray | None:
    """Partial labels as int64 of shape (n_samples,): a component index, or -1 for unknown."""
    if labels is None:
        return None
    array = np.asarray(labels)
    if array.shape != (n_samples,):
        raise ValueError(
            f"labels has shape {array.shape}, expected ({n_samples},): a component index "
            "or -1 (unknown) per row of X"
        )
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers (-1 for unknown), got dtype {array.dtype}")
    array = array.astype(np.int64)
    bad = (array < -1) | (array >= n_components)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"labels must lie in [-1, {n_components - 1}] (a component index, or -1 for "
            f"unknown); row(s) {rows[:5].tolist()} hold {array[rows[:5]].tolist()}"
        )
    return array


def random_state_of(random_state: Any) -> np.random.RandomState:
    """scikit-learn's ``check_random_state``, extended to numpy Generators.

    None gives numpy's global RandomState, an integer a new ``RandomState(seed)``,
    a RandomState itself: so an estimator drawing its starts from the result
    draws exactly what scikit-learn's draws for the same ``random_state``. A
    Generator (which scikit-learn refuses) seeds a new RandomState with one draw.
    """
    if isinstance(random_state, np.random.Generator):
        return np.random.RandomState(int(random_state.integers(0, MAX_SEED, endpoint=True)))
    if _is_int(random_state) and not 0 <= random_state <= MAX_SEED:
        raise ValueError(f"random_state must be in [0, {MAX_SEED}], got {random_state}")
    return check_random_state(random_state)


def seed_sequence(random_state: Any) -> np.random.SeedSequence:
    """One seed sequence from any accepted ``random_state``; children seed each random task."""
    if random_state is None:
        return np.random.SeedSequence()
    if _is_int(random_state):
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(0, 2**31 - 1)))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(0, 2**63 - 1)))
    raise ValueError(f"cannot seed from random_state={random_state!r}")


def check_scale(X: np.ndarray, name: str = "X") -> np.ndarray:
    """Raise a ValueError naming the column whose values are too large for the statistics.

    EM sums rows and squared deviations over all rows: with values near 1e154
    and beyond (float64; 1e19 for float32), finite data give infinite sums, and
    the fit would end in a linear-algebra error about infinities that the data
    do not contain. NaN (missing) entries are ignored.
    """
    if X.size == 0:
        return X
    with np.errstate(invalid="ignore", over="ignore"):
        high = np.nanmax(X, axis=0).astype(np.float64)
        low = np.nanmin(X, axis=0).astype(np.float64)
        spread = high - low
        size = np.maximum(np.abs(high), np.abs(low))
        # Headroom for sums of n values, and of n * D squares, with a safety factor.
        limit = float(np.finfo(X.dtype).max) / 16
        n, d = X.shape
        overflows = (n * size >= limit) | (n * d * np.square(spread) >= limit)
    if not overflows.any():
        return X
    column = int(np.argmax(np.where(overflows, spread + size, -np.inf)))
    raise ValueError(
        f"{name} column {column} is on too large a scale for EM in {X.dtype} (values up to "
        f"{size[column]:.3g}, spread {spread[column]:.3g}): sums over its {n} "
        "rows and of their squares overflow to infinity. Standardise the columns first (e.g. "
        "sklearn.preprocessing.StandardScaler, or divide by a constant)"
    )


def check_numeric_columns(X: Any, name: str = "X") -> Any:
    """Raise a ValueError naming a table's columns that are not numbers (``X`` as given).

    numpy's conversion of a table with a text column fails on the first value
    that is not a number ("could not convert string to float: 'a'"), naming
    neither the column nor the cure. Numbers, booleans and pandas' nullable
    numbers pass (missing values become NaN).
    """
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(dtypes, "items"):
        return X
    bad = [(column, dtype) for column, dtype in dtypes.items()
           if getattr(dtype, "kind", "O") not in "biuf"]
    if bad:
        listed = ", ".join(f"{column!r} ({dtype})" for column, dtype in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ValueError(
            f"{name} has columns that are not numbers: {listed}{more}. Select the numeric "
            "columns (e.g. X.select_dtypes('number')), or code categories as numbers (a "
            "mixture of categorical components: emkit.MixtureModel)"
        )
    return X


def validated_data(estimator: Any, X: Any, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's ``validate_data``, a table's columns that are not numbers refused first
    by name (:func:`check_numeric_columns`): every estimator's one way in for its rows."""
    return validate_data(estimator, check_numeric_columns(X), *args, **kwargs)


# Rows (evenly spaced) from which regularization_dominates estimates the variances.
_VARIANCE_ROWS = 200_000


def regularization_dominates(X: np.ndarray, reg_covar: float,
                             feature_names: Any = None) -> str:
    """Why ``reg_covar`` rather than the data sets some features' variances ("" if not).

    Every covariance gets ``reg_covar`` added; where that is a tenth of a
    feature's variance or more (a feature on a tiny scale, or constant), the
    fitted variances there are mostly the regularisation's, and so are the
    likelihood, BIC and the clusters. Rows with NaN count by their observed values;
    beyond ``_VARIANCE_ROWS`` rows, evenly spaced rows estimate the variances.
    """
    if reg_covar <= 0 or X.size == 0 or X.shape[0] < 2:
        return ""
    # Evenly spaced rows estimate the variances well enough for a factor-of-ten test.
    X = X[::-(-X.shape[0] // _VARIANCE_ROWS)]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: checked elsewhere
        variances = np.nanvar(X, axis=0, dtype=np.float64)
    flagged = np.flatnonzero(~(variances > 10 * reg_covar) & np.isfinite(variances))
    if not flagged.size:
        return _collinear_columns(X, reg_covar)
    labels = [str(feature_names[j]) if feature_names is not None else str(j)
              for j in flagged[:5]]
    listed = ", ".join(f"{label} ({variances[j]:.3g})"
                       for label, j in zip(labels, flagged[:5], strict=True))
    if len(flagged) > 5:
        listed += f" and {len(flagged) - 5} more"
    return (
        f"reg_covar={reg_covar:g} is a tenth or more of the variance of column(s) {listed}: "
        "the fitted variances there are the regularisation's rather than the data's, and "
        "so are the likelihood and BIC. Standardise the columns (StandardScaler, or emkit "
        "fit --standardize), drop constant columns, or give a smaller reg_covar"
    )


# Features up to which regularization_dominates also looks along every direction (an
# eigendecomposition of the covariance: milliseconds at this size).
_DIRECTION_FEATURES = 500


def _collinear_columns(X: np.ndarray, reg_covar: float) -> str:
    """Why ``reg_covar`` sets the variance along some direction of columns that each vary.

    Collinear columns (a duplicated one, one the sum of others) have no variance
    along some direction: every full covariance is then ``reg_covar``'s there, as for
    a constant column, without any column telling (complete rows only).
    """
    n, d = X.shape
    # With no more rows than features the sample covariance is singular whatever the data.
    if not 2 <= d <= _DIRECTION_FEATURES or n <= d or not np.isfinite(X).all():
        return ""
    covariance = np.cov(X, rowvar=False, ddof=0)
    smallest = np.linalg.eigvalsh(covariance)[0]
    # Collinear: a direction far thinner than any column (a column on a small scale alone,
    # correlated or not, is the column test's; the columns here all clear it).
    if smallest > 10 * reg_covar or smallest > 1e-3 * np.diag(covariance).min():
        return ""
    return (
        f"reg_covar={reg_covar:g} is a tenth or more of the data's variance along some "
        f"direction (the covariance's smallest eigenvalue, {max(smallest, 0.0):.3g}): "
        "collinear columns (a duplicated one, one a sum of others). The full covariances' "
        "variance there, and so the likelihood and BIC, are the regularisation's. Drop "
        "the redundant columns (or project on principal components), or give a smaller "
        "reg_covar"
    )


class FitMemoryError(MemoryError, ValueError):
    """A fit whose parameters would not fit in the memory bound (refused before allocating).

    Also a ValueError: it is the request, not the machine, that is at fault.
    """


# Copies of the covariance-sized arrays a Gaussian fit holds at once: covariances,
# precisions, their Cholesky factors, the second-moment statistics, and the
# M-step's scatter and factorisation temporaries.
_COVARIANCE_COPIES = 6
# Environment variable overriding the memory bound of a fit (bytes, or with a
# K, M, G or T suffix).
MEMORY_LIMIT_VARIABLE = "EMKIT_MAX_MEMORY"


def memory_limit() -> int:
    """Bytes a fit's parameters may take: ``$EMKIT_MAX_MEMORY``, else half the physical memory."""
    text = os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip()
    if text:
        found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", text, flags=re.IGNORECASE)
        if found is None:
            raise ValueError(
                f"{MEMORY_LIMIT_VARIABLE}={text!r} is not a size (bytes, or e.g. '32G')"
            )
        power = " KMGT".index(found.group(2).upper() or " ")
        return int(float(found.group(1)) * 1024**power)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): 8 GiB
        return 8 << 30


def check_gaussian_memory(
    n_components: int, n_features: int, covariance_type: str, itemsize: int = 8
) -> None:
    """Refuse, before anything is allocated, a Gaussian fit whose parameters exceed memory.

    A full covariance holds ``n_features**2`` numbers per component, tied one
    such matrix: 5 rows of 20 000 columns ask for 3.2 GB per matrix, several
    times over. The estimate counts :data:`_COVARIANCE_COPIES` copies.

    Raises
    ------
    FitMemoryError
        Naming the estimate, the bound (:func:`memory_limit`) and what to do.
    """
    per_copy = {
        "full": n_components * n_features**2,
        "tied": n_features**2,
        "diag": n_components * n_features,
        "spherical": n_components,
    }[covariance_type] * itemsize
    needed = _COVARIANCE_COPIES * per_copy
    limit = memory_limit()
    if needed > limit:
        raise FitMemoryError(
            f"a {covariance_type!r} fit of {n_components} component(s) on {n_features} "
            f"features needs about {needed / 2**30:.1f} GiB for its covariance parameters "
            f"({_COVARIANCE_COPIES} arrays of {per_copy / 2**30:.2f} GiB), more than the bound "
            f"of {limit / 2**30:.1f} GiB: use covariance_type='diag' (or fewer features), or "
            f"raise the bound with the environment variable {MEMORY_LIMIT_VARIABLE} (e.g. 64G)"
        )
