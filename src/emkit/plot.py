"""Pictures of EM at work (matplotlib): ellipses, snapshots, log-likelihood, BIC, animation.

Every function draws on a given matplotlib ``Axes`` (``ax=``), or makes a new
figure through pyplot, so ``plt.show()`` and Jupyter display it (close figures
you are done with, ``plt.close(fig)``, when making many). pyplot picks a
headless backend where there is no display. Models may
be a fitted :class:`emkit.GaussianMixture` or an :class:`emkit.latent.mixture.Mixture`
(what the fitting callback receives at each iteration).

Higher-dimensional data are shown through a 2-D view: a pair of columns
(``columns=(i, j)``), the first two principal components (``projection="pca"``),
or any ``(n_features, 2)`` projection matrix. The Gaussian ellipses are then the
exact projections of each component.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from PIL import Image

# Distinct, colour-blind friendly base colours (Okabe-Ito); responsibilities blend them.
PALETTE = np.array([
    [0.00, 0.45, 0.70], [0.90, 0.62, 0.00], [0.00, 0.62, 0.45], [0.80, 0.40, 0.00],
    [0.80, 0.47, 0.65], [0.34, 0.71, 0.91], [0.94, 0.89, 0.26], [0.35, 0.35, 0.35],
])
SNAPSHOT_ITERATIONS = (1, 3, 5, 10, 15, 25)


@dataclass(frozen=True)
class GaussianView:
    """Weights, means and dense covariances of a Gaussian mixture, in data coordinates."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    def project(self, P: np.ndarray) -> GaussianView:
        """The mixture seen through the linear map ``x -> x @ P``."""
        return GaussianView(
            self.weights, self.means @ P, np.einsum("di,kde,ej->kij", P, self.covariances, P)
        )

    def responsibilities(self, Y: np.ndarray) -> np.ndarray:
        """Posterior component probabilities of rows ``Y`` under this (projected) mixture."""
        from scipy.stats import multivariate_normal

        log_joint = np.column_stack([
            np.log(w) + multivariate_normal(m, c, allow_singular=True).logpdf(Y)
            for w, m, c in zip(self.weights, self.means, self.covariances, strict=True)
        ])
        log_joint -= log_joint.max(axis=1, keepdims=True)
        resp = np.exp(log_joint)
        return resp / resp.sum(axis=1, keepdims=True)


def _new_figure(**kwargs: Any) -> Figure:
    """A figure pyplot manages (imported here: ``import emkit.plot`` stays light)."""
    import matplotlib.pyplot as plt

    return plt.figure(**kwargs)


def gaussian_view(model: Any) -> GaussianView:
    """Extract a :class:`GaussianView` from a fitted GaussianMixture or a Mixture."""
    if hasattr(model, "means_"):
        model = model._model()
    components, weights = model.components, np.asarray(model.weights)
    if hasattr(components, "gaussian"):  # a noise component (noise=True): draw the Gaussians
        components, weights = components.gaussian, weights[:-1]
    k, d = components.means.shape
    dense = components.structure.dense(components.covariances, k, d)
    return GaussianView(weights, components.means, np.asarray(dense))


def projection_matrix(
    X: np.ndarray, columns: Sequence[int] | None = None, projection: Any = None
) -> np.ndarray:
    """The ``(n_features, 2)`` matrix of the chosen 2-D view (identity for 2-D data)."""
    n_features = X.shape[1]
    if projection is not None and columns is not None:
        raise ValueError("give either columns or projection, not both")
    if isinstance(projection, str):
        if projection != "pca":
            raise ValueError(f"projection must be 'pca' or a matrix, got {projection!r}")
        _, _, vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
        return vt[:2].T
    if projection is not None:
        P = np.asarray(projection, dtype=float)
        if P.shape != (n_features, 2):
            raise ValueError(f"projection must have shape ({n_features}, 2), got {P.shape}")
        return P
    columns = (0, 1) if columns is None else tuple(columns)
    if len(columns) != 2 or not all(0 <= c < n_features for c in columns):
        raise ValueError(f"columns must be two indices in 0..{n_features - 1}, got {columns}")
    return np.eye(n_features)[:, list(columns)]


def _axis_labels(ax: Axes, columns: Sequence[int] | None, projection: Any,
                 names: Sequence[str] | None) -> None:
    if projection is not None:
        ax.set_xlabel("projection 1")
        ax.set_ylabel("projection 2")
        return
    i, j = (0, 1) if columns is None else columns
    ax.set_xlabel(names[i] if names else f"column {i}")
    ax.set_ylabel(names[j] if names else f"column {j}")


def _draw_ellipses(ax: Axes, view: GaussianView) -> None:
    for k, (mean, cov) in enumerate(zip(view.means, view.covariances, strict=True)):
        colour = PALETTE[k % len(PALETTE)]
        values, vectors = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
        for n_sigma, style in ((1, "-"), (2, "--")):
            width, height = 2 * n_sigma * np.sqrt(np.maximum(values[::-1], 0))
            ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False,
                                 edgecolor=colour, linestyle=style, linewidth=1.6))
        ax.plot(*mean, marker="x", color=colour, markersize=9, markeredgewidth=2.5)


def _draw_1d(ax: Axes, X: np.ndarray, view: GaussianView | None) -> None:
    from scipy.stats import norm

    ax.hist(X[:, 0], bins="auto", density=True, color="0.8", edgecolor="0.6")
    if view is None:
        return
    grid = np.linspace(X.min(), X.max(), 400)
    total = np.zeros_like(grid)
    for k, (w, m, c) in enumerate(zip(view.weights, view.means, view.covariances, strict=True)):
        density = w * norm.pdf(grid, m[0], np.sqrt(c[0, 0]))
        total += density
        ax.plot(grid, density, color=PALETTE[k % len(PALETTE)], linewidth=1.5)
    ax.plot(grid, total, color="black", linewidth=1.0)


def plot_mixture(
    X: Any,
    model: Any = None,
    *,
    ax: Axes | None = None,
    columns: Sequence[int] | None = None,
    projection: Any = None,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Axes:
    """Data with each component's 1- and 2-sigma ellipses and means.

    Points are coloured by responsibility: each point's colour is the blend of
    the component colours weighted by its posterior probabilities, as on the
    lecture slides. One-dimensional data are drawn as a histogram with the
    weighted component densities.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    model : fitted GaussianMixture or Mixture, optional
        Without a model only the points are drawn.
    ax : matplotlib Axes, optional
        Drawn into; a new figure is made if omitted.
    columns : pair of int, optional
        Which two columns to show (default the first two).
    projection : "pca" or array of shape (n_features, 2), optional
        A 2-D projection instead of a column pair.
    feature_names : list of str, optional
        Axis labels.
    title : str, optional

    Returns
    -------
    matplotlib Axes
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    ax = ax if ax is not None else _new_figure(figsize=(5, 4.5)).add_subplot()
    view = gaussian_view(model) if model is not None else None
    if title:
        ax.set_title(title)
    if X.shape[1] == 1:
        _draw_1d(ax, X, view)
        ax.set_xlabel(feature_names[0] if feature_names else "column 0")
        return ax
    P = projection_matrix(X, columns, projection)
    Y = X @ P
    if view is None:
        ax.scatter(Y[:, 0], Y[:, 1], s=12, color="0.3", alpha=0.7, linewidths=0)
    else:
        projected = view.project(P)
        colours = projected.responsibilities(Y) @ PALETTE[np.arange(len(view.weights)) % 8]
        ax.scatter(Y[:, 0], Y[:, 1], s=12, c=np.clip(colours, 0, 1), alpha=0.8, linewidths=0)
        _draw_ellipses(ax, projected)
    ax.autoscale_view()
    _axis_labels(ax, columns, projection, feature_names)
    return ax


def plot_snapshots(
    X: Any,
    snapshots: Mapping[int, Any],
    *,
    iterations: Sequence[int] | None = None,
    columns: Sequence[int] | None = None,
    projection: Any = None,
    feature_names: Sequence[str] | None = None,
    ncols: int = 3,
) -> Figure:
    """A grid of :func:`plot_mixture` panels, one per recorded iteration.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    snapshots : mapping of iteration -> model
        As returned by :func:`record_fit`.
    iterations : sequence of int, optional
        Which recorded iterations to draw (default all of them). Each must be
        in ``snapshots``: a fit that converges early records fewer iterations.
    ncols : int, default=3
        Panels per row.

    Returns
    -------
    matplotlib Figure

    Raises
    ------
    ValueError
        If ``snapshots`` is empty or an iteration asked for was not recorded
        (the message names those that were).
    """
    X = np.asarray(X, dtype=float)
    chosen = _chosen_snapshots(snapshots, iterations)
    nrows = -(-len(chosen) // ncols)
    figure = _new_figure(figsize=(4.2 * ncols, 3.8 * nrows), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    for ax, (iteration, model) in zip(axes, chosen, strict=False):
        plot_mixture(X, model, ax=ax, columns=columns, projection=projection,
                     feature_names=feature_names, title=f"iteration {iteration}")
    for ax in axes[len(chosen):]:
        ax.set_visible(False)
    return figure


def _chosen_snapshots(snapshots: Mapping[int, Any],
                      iterations: Sequence[int] | None) -> list[tuple[int, Any]]:
    """``(iteration, model)`` pairs in order; a clear error for any not recorded."""
    if not snapshots:
        raise ValueError("no snapshots to draw: the fit recorded no iteration")
    if iterations is None:
        return sorted(snapshots.items())
    missing = sorted(set(iterations) - set(snapshots))
    if missing:
        raise ValueError(_missing_snapshots_message(missing, snapshots))
    return [(t, snapshots[t]) for t in sorted(set(iterations))]


def _missing_snapshots_message(missing: Sequence[int], snapshots: Mapping[int, Any]) -> str:
    recorded = sorted(snapshots)
    span = (f"iterations {recorded[0]} to {recorded[-1]}" if recorded
            else "no iterations")
    label = "iteration" if len(missing) == 1 else "iterations"
    return (
        f"no snapshot of {label} {', '.join(map(str, missing))}: the fit recorded {span} "
        "(it stopped there, converged or at max_iter). Choose among those, or record with "
        "tol=0 and max_iter=N to run exactly N iterations."
    )


class Snapshots(dict):
    """Iteration -> model, as recorded by :func:`record_fit`.

    A plain dict, except that asking for an iteration the fit never reached
    raises a ``KeyError`` naming the iterations it did record.
    """

    def __missing__(self, iteration: int) -> Any:
        raise KeyError(_missing_snapshots_message([iteration], self))


def plot_history(history: Any, *, ax: Axes | None = None, label: str | None = None) -> Axes:
    """The average log-likelihood per iteration (``history_``): EM climbing.

    The y axis covers the curve from iteration 2 on. A first iteration far
    below the rest (a poor start, often 10 or 100 times further down than the
    whole climb after it) would flatten that climb into a line; it is then
    drawn apart, as a marker on the axis's lower edge labelled with its value.

    Parameters
    ----------
    history : array-like of shape (n_iter,) or a fitted estimator with ``history_``
    ax : matplotlib Axes, optional
        Drawn into; a new pyplot figure is made if omitted.
    label : str, optional
        Legend entry, for comparing several fits on one axes.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> from emkit.plot import plot_history
    >>> ax = plot_history([-20.0, -2.0, -1.5, -1.3, -1.25])
    >>> bool(ax.get_ylim()[0] > -3)  # the climb fills the axis; -20 is marked apart
    True
    """
    history = np.asarray(getattr(history, "history_", history), dtype=float)
    ax = ax if ax is not None else _new_figure(figsize=(5, 3.5)).add_subplot()
    iterations = np.arange(1, len(history) + 1)
    (line,) = ax.plot(iterations, history, marker="o", markersize=3, label=label)
    limits = _history_limits(history)
    if limits is not None:
        ax.set_ylim(*limits)
        for t in np.flatnonzero(history < limits[0]):
            ax.plot(iterations[t], limits[0], marker="v", markersize=7, color=line.get_color(),
                    clip_on=False, linestyle="none")
            ax.annotate(f"iteration {t + 1}: {history[t]:.4g}", (iterations[t], limits[0]),
                        xytext=(6, 6), textcoords="offset points", fontsize=8,
                        color=line.get_color())
    ax.set_xlabel("iteration")
    ax.set_ylabel("average log-likelihood")
    ax.grid(alpha=0.3)
    if label:
        ax.legend()
    return ax


def _history_limits(history: np.ndarray) -> tuple[float, float] | None:
    """y limits leaving out a first point that would flatten the climb, else None.

    The first point is left out when it lies below the rest by more than twice
    their whole range (it would take over two thirds of the axis).
    """
    finite = history[np.isfinite(history)]
    if len(history) < 3 or len(finite) != len(history):
        return None
    rest = history[1:]
    low, high = float(rest.min()), float(rest.max())
    span = high - low if high > low else max(abs(high) * 1e-3, 1e-12)
    if history[0] >= low - 2 * span:
        return None
    return low - 0.15 * span, high + 0.1 * span


def plot_selection(table: Any, *, criterion: str = "bic", ax: Axes | None = None) -> Axes:
    """A criterion (BIC, AIC or ICL) over the number of components, one line per covariance type.

    Fits flagged as degenerate (spurious maximisers) are shown as crosses and
    are not joined to the lines; candidates skipped (too few rows) are not drawn.

    Parameters
    ----------
    table : pandas DataFrame
        ``SelectionResult.table`` from :func:`emkit.select_model`.
    criterion : {"bic", "aic", "icl"}
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    ax = ax if ax is not None else _new_figure(figsize=(6, 4)).add_subplot()
    # A regression-mixture table (select_regression_model) has a family instead.
    group = "covariance_type" if "covariance_type" in table else "family"
    for k, (covariance_type, rows) in enumerate(table.groupby(group, sort=False)):
        colour = PALETTE[k % len(PALETTE)]
        # Skipped candidates have no score; lines join the fits in order of K.
        rows = rows[~rows["skipped"]] if "skipped" in rows else rows
        rows = rows.sort_values("n_components", kind="stable")
        good = rows[~rows["degenerate"]]
        bad = rows[rows["degenerate"]]
        ax.plot(good["n_components"], good[criterion], marker="o", color=colour,
                label=covariance_type)
        ax.scatter(bad["n_components"], bad[criterion], marker="x", color=colour, s=50)
    ax.set_xlabel("number of components")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.legend(title="covariance" if group == "covariance_type" else "family")
    ax.grid(alpha=0.3)
    return ax


def save_animation(
    X: Any,
    snapshots: Mapping[int, Any],
    path: str | Path,
    *,
    frame_seconds: float = 0.5,
    columns: Sequence[int] | None = None,
    projection: Any = None,
    feature_names: Sequence[str] | None = None,
) -> Path:
    """Write an animated GIF of a fit, one frame per snapshot.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    snapshots : mapping of iteration -> model
    path : str or Path
        Destination ``.gif``.
    frame_seconds : float, default=0.5
        Display time per frame (the last frame is held three times as long).

    Returns
    -------
    Path of the written file.
    """
    X = np.asarray(X, dtype=float)
    frames = []
    for iteration, model in sorted(snapshots.items()):
        figure = Figure(figsize=(5, 4.5), layout="constrained")
        ax = plot_mixture(
            X, model, ax=figure.add_subplot(), columns=columns, projection=projection,
            feature_names=feature_names, title=f"iteration {iteration}",
        )
        frames.append(_render(ax.figure))
    durations = [int(frame_seconds * 1000)] * len(frames)
    durations[-1] *= 3
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return path


def _render(figure: Figure) -> Image.Image:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    buffer.seek(0)
    return Image.open(buffer).convert("P", palette=Image.Palette.ADAPTIVE)


def record_fit(estimator: Any, X: Any) -> tuple[Any, Snapshots]:
    """Fit ``estimator`` on ``X``, keeping the model after every iteration.

    The estimator's own ``callback`` (if any) still runs.

    Returns
    -------
    estimator : the fitted estimator
    snapshots : Snapshots (a dict of iteration -> Mixture)
        Iteration 0 is not included; ``snapshots[t]`` is the model after ``t`` M-steps,
        for ``t`` up to the iterations the fit ran (``estimator.n_iter_``; with
        ``tol=0`` exactly ``max_iter``). Asking for a later one raises a ``KeyError``
        naming those recorded.
    """
    if estimator.get_params().get("n_init", 1) != 1:
        raise ValueError("record_fit follows one run: set n_init=1")
    snapshots = Snapshots()
    user_callback = estimator.get_params().get("callback")

    def keep(iteration: int, lower_bound: float, change: float, model: Any) -> None:
        snapshots[iteration] = model
        if user_callback is not None:
            user_callback(iteration, lower_bound, change, model)

    estimator.set_params(callback=keep)
    try:
        estimator.fit(X)
    finally:
        estimator.set_params(callback=user_callback)
    return estimator, snapshots
