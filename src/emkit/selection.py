"""Choosing the number of components and the covariance structure, as R's mclust does.

Every combination is fitted and scored by BIC, AIC and ICL. Fits that end in a
spurious maximiser (a component collapsed onto a few repeated values, its
variance pinned at the ``reg_covar`` floor) have a huge likelihood that means
nothing; they are flagged ``degenerate`` and never selected, as mclust reports
such fits as failed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from emkit.gaussian_mixture import GaussianMixture, degenerate_components

CRITERIA = ("bic", "aic", "icl")


@dataclass
class SelectionResult:
    """Outcome of :func:`select_model`.

    Attributes
    ----------
    best_estimator : GaussianMixture
        The fitted model with the lowest criterion among non-degenerate fits.
    table : pandas DataFrame
        One row per candidate: ``n_components``, ``covariance_type``, ``bic``,
        ``aic``, ``icl``, ``log_likelihood`` (total), ``n_parameters``,
        ``converged``, ``degenerate`` and ``note``; sorted by the criterion.
    criterion : str
        The criterion used to choose.
    """

    best_estimator: GaussianMixture
    table: pd.DataFrame
    criterion: str

    def plot(self, ax: Any = None) -> Any:
        """The criterion over components, one line per covariance type (matplotlib Axes)."""
        from emkit.plot import plot_selection

        return plot_selection(self.table, criterion=self.criterion, ax=ax)


def classification_entropy(resp: np.ndarray) -> float:
    """``-sum_i sum_k r_ik log r_ik``, the entropy term of ICL."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(resp > 0, resp * np.log(resp), 0.0)
    return float(-terms.sum())


def _score_candidate(params: dict, X: np.ndarray, k: int, covariance_type: str):
    # Built from the parameters rather than cloned, so a callback (e.g. a progress
    # bar) is shared rather than deep-copied.
    model = GaussianMixture(**{**params, "n_components": k, "covariance_type": covariance_type})
    with warnings.catch_warnings():
        # Non-convergence and degeneracy are reported in the table instead.
        warnings.simplefilter("ignore")
        model.fit(X)
    n_samples = X.shape[0]
    bic = model.bic(X)
    collapsed = degenerate_components(model)
    return model, {
        "n_components": k,
        "covariance_type": covariance_type,
        "bic": bic,
        "aic": model.aic(X),
        "icl": bic + 2 * classification_entropy(model.predict_proba(X)),
        "log_likelihood": model.score(X) * n_samples,
        "n_parameters": model._n_parameters(),
        "converged": bool(model.converged_),
        "degenerate": bool(collapsed),
        "note": (f"component(s) {', '.join(map(str, collapsed))} collapsed to the "
                 "reg_covar floor" if collapsed else ""),
    }


def select_model(
    X: Any,
    n_components: Iterable[int] = range(1, 10),
    covariance_types: Sequence[str] = ("full", "tied", "diag", "spherical"),
    *,
    criterion: str = "bic",
    n_init: int = 3,
    random_state: Any = None,
    n_jobs: int | None = None,
    **gmm_params: Any,
) -> SelectionResult:
    """Fit every (n_components, covariance_type) pair and keep the best by a criterion.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : iterable of int, default=range(1, 10)
        Candidate numbers of components (those above ``n_samples`` are skipped).
    covariance_types : sequence of str
        Candidate structures among "full", "tied", "diag", "spherical".
    criterion : {"bic", "aic", "icl"}, default="bic"
        Lower is better. ICL is BIC plus twice the classification entropy.
    n_init : int, default=3
        Restarts per candidate (the likelihood surface has local maxima).
    random_state : int or None
        Seed shared by every candidate, so they start from comparable inits.
    n_jobs : int, optional
        Candidates fitted in parallel processes (joblib); None fits them in turn.
    **gmm_params
        Other :class:`GaussianMixture` parameters; ``tol`` defaults to 1e-5 and
        ``max_iter`` to 500 here, so candidates are compared near their optima.

    Returns
    -------
    SelectionResult

    Examples
    --------
    >>> from emkit import select_model
    >>> from emkit.datasets import load_faithful
    >>> result = select_model(load_faithful(), range(1, 5), ("tied", "full"), random_state=0)
    >>> result.best_estimator.covariance_type, result.best_estimator.n_components
    ('tied', 3)
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    X = np.asarray(X, dtype=float) if not hasattr(X, "iloc") else X
    # Selection compares likelihoods, so each candidate is run closer to its optimum
    # than GaussianMixture's defaults would (mclust does likewise).
    settings = {"tol": 1e-5, "max_iter": 500, **gmm_params}
    params = GaussianMixture(n_init=n_init, random_state=random_state, **settings).get_params()
    candidates = [
        (k, ct) for ct in covariance_types for k in n_components if k <= np.shape(X)[0]
    ]
    if not candidates:
        raise ValueError("no candidate models: check n_components and covariance_types")
    fitted = Parallel(n_jobs=n_jobs)(
        delayed(_score_candidate)(params, X, k, ct) for k, ct in candidates
    )
    table = pd.DataFrame([row for _, row in fitted])
    usable = [i for i, (_, row) in enumerate(fitted) if not row["degenerate"]]
    if not usable:
        raise ValueError("every candidate fit is degenerate; try a larger reg_covar")
    best = min(usable, key=lambda i: fitted[i][1][criterion])
    table = table.sort_values(criterion, kind="stable").reset_index(drop=True)
    return SelectionResult(fitted[best][0], table, criterion)
