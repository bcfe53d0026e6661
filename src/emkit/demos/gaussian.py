"""Watching a Gaussian mixture fit converge: the iteration log and its pictures.

As on the lecture slides: from a deliberately poor start, EM moves the cluster
ellipses step by step (snapshots at iterations 1, 3, 5, 10, 15, 25) while the
log-likelihood rises with every iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from emkit.datasets import load_anemia, load_faithful
from emkit.estimators.gaussian_mixture import GaussianMixture
from emkit.plot import (
    SNAPSHOT_ITERATIONS,
    plot_history,
    plot_mixture,
    plot_snapshots,
    record_fit,
    save_animation,
)


@dataclass(frozen=True)
class GaussianDemo:
    """A bundled data set and the poor start the demo fits it from."""

    name: str
    title: str
    feature_names: tuple[str, str]
    load: Callable[[], np.ndarray]
    means_init: tuple[tuple[float, float], ...]
    start_note: str

    def estimator(self, X: np.ndarray) -> GaussianMixture:
        """Equal weights, the given means, and half the data covariance for every component."""
        k = len(self.means_init)
        precision = np.linalg.inv(0.5 * np.cov(X.T))
        return GaussianMixture(
            n_components=k, weights_init=np.full(k, 1.0 / k), means_init=self.means_init,
            precisions_init=np.repeat(precision[None], k, axis=0), tol=1e-8, max_iter=200,
        )


DEMOS = {
    "anemia": GaussianDemo(
        name="anemia",
        title="Anemia patients vs controls (anemia-like data, 300 people), 2 components",
        feature_names=("log red blood cell volume", "log hemoglobin concentration"),
        load=load_anemia,
        means_init=((3.4, 4.3), (3.9, 3.8)),
        start_note="both means in empty corners, broad covariances",
    ),
    "faithful": GaussianDemo(
        name="faithful",
        title="Old Faithful: 272 eruptions (duration, waiting), 2 components",
        feature_names=("eruption (min)", "waiting (min)"),
        load=load_faithful,
        means_init=((4.0, 78.0), (4.6, 84.0)),
        start_note="both means inside the long-eruption cluster",
    ),
}


def _log_line(echo: Callable[[str], None]) -> Callable[..., None]:
    def log(iteration: int, lower_bound: float, change: float, mixture: Any) -> None:
        weights = " ".join(f"{w:.3f}" for w in mixture.weights)
        echo(f"{iteration:>4}  {lower_bound:>12.6f}  {change:>10.2e}  {weights}")

    return log


def _snapshot_iterations(snapshots: dict[int, Any]) -> dict[int, Any]:
    """The slide iterations the fit reached, and its last one if it stopped before some.

    Each panel is labelled with the iteration it really shows (a fit that converged
    at iteration 12 shows 1, 3, 5, 10, 12, never a "15" it did not run).
    """
    last = max(snapshots)
    return {min(t, last): snapshots[min(t, last)] for t in SNAPSHOT_ITERATIONS}


def _close(figure: Figure) -> None:
    """Let pyplot forget a figure it made (a demo writes files, shows nothing)."""
    import matplotlib.pyplot as plt

    plt.close(figure)


def write_pictures(
    demo: GaussianDemo, X: np.ndarray, model: GaussianMixture, snapshots: dict[int, Any],
    out_dir: Path,
) -> list[Path]:
    """The iteration grid, the log-likelihood curve, the final fit and the animation."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(demo.feature_names)
    grid = out_dir / f"{demo.name}_iterations.png"
    figure = plot_snapshots(X, _snapshot_iterations(snapshots), feature_names=names)
    figure.savefig(grid, dpi=90)
    _close(figure)
    curve = out_dir / f"{demo.name}_loglik.png"
    ax = plot_history(model, ax=Figure(figsize=(5, 3.5)).add_subplot())
    ax.set_title("EM never lowers the log-likelihood")
    ax.figure.savefig(curve, dpi=90, bbox_inches="tight")
    final = out_dir / f"{demo.name}_fit.png"
    figure = Figure(figsize=(5.5, 5), layout="constrained")
    plot_mixture(X, model, ax=figure.add_subplot(), feature_names=names,
                 title=f"after {model.n_iter_} iterations")
    figure.savefig(final, dpi=90)
    gif = save_animation(X, snapshots, out_dir / f"{demo.name}_fit.gif", feature_names=names)
    return [grid, curve, final, gif]


def run(name: str = "anemia", out_dir: str | Path = ".",
        echo: Callable[[str], None] = print) -> GaussianMixture:
    """Fit a bundled data set from a poor start, print every iteration, write the pictures.

    Parameters
    ----------
    name : {"anemia", "faithful"}
    out_dir : str or Path
        Folder for the PNG and GIF files (created if needed).
    echo : callable
        Where lines of text go.

    Returns
    -------
    The fitted GaussianMixture.
    """
    demo = DEMOS[name]
    X = demo.load()
    echo(demo.title)
    echo(f"Poor start: {demo.start_note}.\n")
    echo(f"{'iter':>4}  {'avg log-lik':>12}  {'change':>10}  weights")
    estimator = demo.estimator(X).set_params(callback=_log_line(echo))
    model, snapshots = record_fit(estimator, X)
    echo(f"\nConverged after {model.n_iter_} iterations: weights "
         + ", ".join(f"{w:.3f}" for w in model.weights_))
    paths = write_pictures(demo, X, model, snapshots, Path(out_dir))
    echo("Pictures written:")
    for path in paths:
        echo(f"  {path}")
    return model
