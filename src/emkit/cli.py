"""The ``emkit`` command: fit mixtures to files, use saved models, and watch EM work.

Exit codes: 0 success; 1 bad input (missing or unreadable file, non-numeric
cell, bad parameter, corrupt model, unwritable output), reported as one line
without a traceback; 2 bad usage (unknown option, missing argument), reported
by click.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from emkit import __version__

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from emkit.estimators.gaussian_mixture import GaussianMixture

# The option choices, spelt out so that `emkit --help` imports nothing heavy;
# tests/test_startup.py checks they equal the library's.
# COVARIANCE_STRUCTURES' keys: scikit-learn's four names and mclust's (E, V for one feature).
COVARIANCE_TYPES = (
    "E", "EEE", "EEI", "EEV", "EII", "EVE", "EVI", "EVV", "V", "VEE", "VEI", "VEV", "VII",
    "VVE", "VVI", "VVV", "diag", "full", "spherical", "tied",
)
# mclust's 14 models, in mclust's order: what `--covariance all` chooses among
# (emkit.distributions.gaussian.covariance.MCLUST_MODELS).
MCLUST_MODELS = (
    "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV",
    "VVV",
)
ALGORITHMS = ("em", "hard", "stochastic")  # emkit.core.variants.ALGORITHMS
ACCELERATIONS = ("squarem", "daarem")  # emkit.core.acceleration.ACCELERATIONS
CRITERIA = ("bic", "aic", "icl")  # emkit.estimators.selection.CRITERIA
COVARIANCE_CHOICES = [*COVARIANCE_TYPES, "all"]
# Files larger than this are streamed in chunks by `emkit fit` rather than loaded.
STREAM_THRESHOLD = 2**30
# At most this many values of K in one `emkit fit -k A-B`.
MAX_CANDIDATE_KS = 1000
# `emkit sample` writes rows in chunks of this many, and at most MAX_SAMPLE_CELLS numbers.
SAMPLE_CHUNK_ROWS = 65536
MAX_SAMPLE_CELLS = 10**9
# Longest error message printed (a message quoting a huge cell or path is cut).
MAX_MESSAGE = 500


def _message(exc: BaseException) -> str:
    """One line for any error: OS errors name their file, unexpected ones their type."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename is not None else ""
        text = f"{exc.strerror}{where}"
    elif isinstance(exc, MemoryError):
        text = f"not enough memory ({exc or 'the input is too large'})"
    elif isinstance(exc, ValueError | TypeError | OSError):
        text = str(exc)
    else:  # a bug or an unforeseen input: still one line, with the error's type
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."


def _one_line_warnings(command: Callable) -> Callable:
    """Warnings of the fit (degenerate or unconverged fits, a missing y, a reg_covar that
    sets the variances) as one ``warning:`` line each, after the command's output."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return command(*args, **kwargs)
            finally:
                for text in dict.fromkeys(str(w.message) for w in caught):
                    click.echo(f"warning: {' '.join(text.split())}", err=True)

    return wrapper


def _one_line_errors(command: Callable) -> Callable:
    """Turn every error into one clear line (click prints ``Error: ...``, exit code 1)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (Exception, MemoryError, RecursionError) as exc:
            raise click.ClickException(_message(exc)) from None

    return wrapper


def _component_range(text: str) -> range:
    """``"3"`` -> [3]; ``"1-6"`` -> [1, ..., 6] (at most MAX_CANDIDATE_KS values)."""
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise click.BadParameter(f"expected K or A-B (e.g. 3 or 1-6), got {text!r}") from None
    if not 1 <= first <= last:
        raise click.BadParameter(f"expected 1 <= A <= B, got {text!r}")
    if last - first + 1 > MAX_CANDIDATE_KS:
        raise click.BadParameter(
            f"{text!r} asks for {last - first + 1} values of K; at most {MAX_CANDIDATE_KS}"
        )
    return range(first, last + 1)


def _check_output(path: Path | None, option: str) -> None:
    """Refuse before any work an output path that cannot be written."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise click.ClickException(f"{option} {path} is a folder; give a file name")
    if not folder.is_dir():
        raise click.ClickException(f"{option} {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.ClickException(f"{option} {path}: folder {folder} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise click.ClickException(f"{option} {path}: the file exists and is not writable")
    try:
        longest = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        longest = 255
    if len(os.fsencode(path.name)) > longest - 16:  # room for the temporary file's affixes
        raise click.ClickException(f"{option}: file name too long ({len(path.name)} characters)")


def _check_picture_path(path: Path | None) -> None:
    if path is None:
        return
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = FigureCanvasBase.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in kinds:
        raise click.ClickException(
            f"--plot {path}: name the picture with a known extension "
            f"({', '.join('.' + k for k in sorted(kinds))}), e.g. fit.png"
        )
    _check_output(path, "--plot")


def _columns(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def _table_options(command: Callable) -> Callable:
    """The options choosing what is read from DATA: columns, separator, decimal mark."""
    options = [
        click.option("--columns", help="Comma-separated column names or 0-based indices to use."),
        click.option("--exclude", help="Comma-separated columns to leave out (a label, say)."),
        click.option("--sep", help="CSV field separator (detected when not given: , ; tab |)."),
        click.option("--decimal", type=click.Choice([".", ","]),
                     help="CSV decimal mark (detected when not given)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _json_ready(value: Any) -> Any:
    """Infinite and NaN floats become null, so the output is valid JSON."""
    import numpy as np

    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _json_text(value: Any) -> str:
    return json.dumps(_json_ready(value), indent=1, allow_nan=False)


def _array_text(array: Any) -> str:
    import numpy as np

    return np.array2string(np.asarray(array), precision=4, suppress_small=True)


def describe(model: Any) -> dict[str, Any]:
    """A JSON-ready summary of a fitted model (GaussianMixture or MixtureModel)."""
    import numpy as np

    from emkit.estimators.gaussian_mixture import GaussianMixture

    summary: dict[str, Any] = {
        "class": type(model).__name__,
        "n_components": len(model.weights_),
        "n_features": int(model.n_features_in_),
        "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "average_log_likelihood": float(model.lower_bound_),
        "weights": np.asarray(model.weights_, dtype=float).tolist(),
    }
    if getattr(model, "noise", False):  # weights_ are the Gaussians'; the noise has the rest
        summary["noise_weight"] = float(model.noise_weight_)
        summary["noise_volume"] = float(model.noise_volume_)
    prior = getattr(model, "prior", None)
    if prior is not None:  # "default", or a ConjugatePrior's hyperparameters (None: default)
        summary["prior"] = prior if isinstance(prior, str) else prior.to_dict()
    if getattr(model, "feature_names_in_", None) is not None:
        summary["columns"] = [str(n) for n in model.feature_names_in_]
    if isinstance(model, GaussianMixture):
        summary["covariance_type"] = model.covariance_type
        summary["means"] = model.means_.astype(float).tolist()
        summary["covariances"] = np.asarray(model.covariances_, dtype=float).tolist()
    else:
        from emkit.distributions import to_spec

        summary["components"] = [to_spec(d) for d in model.components_]
    return summary


def fit_statistics(model: Any, X: Any) -> dict[str, Any]:
    """How well ``model`` fits the rows ``X``: n, log-likelihood, BIC, AIC, sizes.

    ``cluster_sizes`` counts the rows each component is the most likely for.
    """
    import numpy as np

    labels = np.asarray(model.predict(X))
    log_likelihood, n = model._log_likelihood_and_rows(X)
    parameters = int(model._n_parameters())
    statistics = {
        "n_samples": int(n),
        "log_likelihood": float(log_likelihood),
        "n_parameters": parameters,
        "bic": float(-2 * log_likelihood + parameters * np.log(n)),
        "aic": float(-2 * log_likelihood + 2 * parameters),
        "cluster_sizes": np.bincount(labels[labels >= 0], minlength=len(model.weights_)).tolist(),
    }
    if getattr(model, "noise", False):  # predict gives -1 for the rows most likely noise
        statistics["noise_rows"] = int((labels == -1).sum())
    return statistics


def _summary_text(summary: dict[str, Any], names: list[str] | None = None) -> str:
    head = f"{summary['class']}: {summary['n_components']} components"
    if "covariance_type" in summary:
        head += f", {summary['covariance_type']} covariance"
    if "noise_weight" in summary:
        head += ", and a uniform noise component"
    if "prior" in summary:
        head += f"; prior: {_prior_text(summary['prior'])} (MAP EM)"
    lines = [
        head,
        f"iterations: {summary['n_iter']}, converged: {summary['converged']}, "
        f"average log-likelihood: {summary['average_log_likelihood']:.6f}",
    ]
    if "n_samples" in summary:
        lines.append(
            f"n: {summary['n_samples']}, log-likelihood: {summary['log_likelihood']:.4f}, "
            f"BIC: {summary['bic']:.4f}, AIC: {summary['aic']:.4f}, "
            f"parameters: {summary['n_parameters']}"
        )
    if summary.get("standardized"):
        lines.append("fitted on standardised columns; parameters shown in the data's units")
    names = names or summary.get("columns")
    if names:
        lines.append(f"columns: {', '.join(names)}")
    sizes = summary.get("cluster_sizes")
    for k, weight in enumerate(summary["weights"]):
        size = f", {sizes[k]} rows" if sizes is not None else ""
        lines.append(f"component {k}: weight {weight:.4f}{size}")
        if "means" in summary:
            lines.append(f"  mean {_array_text(summary['means'][k])}")
            cov = summary["covariances"]
            tied = _layout(summary["covariance_type"]) == "tied"
            cov = cov if tied else cov[k]
            lines.append("  covariance " + _array_text(cov).replace("\n", "\n             "))
        else:
            lines.append(f"  {json.dumps(summary['components'][k])}")
    if "noise_weight" in summary:
        rows = f", {summary['noise_rows']} rows" if "noise_rows" in summary else ""
        lines.append(f"noise: weight {summary['noise_weight']:.4f}{rows}, "
                     f"volume {summary['noise_volume']:.6g}")
    return "\n".join(lines)


def _prior_text(prior: str | dict) -> str:
    """``default``, or the conjugate prior's hyperparameters (``default`` where not given)."""
    if isinstance(prior, str):
        return prior
    parts = []
    for name in ("shrinkage", "mean", "dof", "scale"):
        value = prior.get(name)
        text = ("default" if value is None else f"{value:g}" if isinstance(value, float)
                else " ".join(_array_text(value).split()))
        parts.append(f"{name} {text}")
    return "conjugate, " + ", ".join(parts)


def _prior_number(positive: bool) -> Callable:
    """A click callback: a finite number >= 0 (> 0 with ``positive``), or None."""

    def check(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
        if value is None:
            return None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise click.BadParameter(
                f"must be a finite number {'> 0' if positive else '>= 0'}, got {value:g}")
        return value

    return check


def _prior_vector(ctx: click.Context, param: click.Parameter,
                  value: str | None) -> tuple[float, ...] | None:
    """A click callback: comma-separated finite numbers (their count is checked on the data)."""
    if value is None:
        return None
    numbers = []
    for item in value.split(","):
        try:
            number = float(item.strip())
        except ValueError:
            raise click.BadParameter(
                f"must be comma-separated numbers (one per feature), got {item.strip()!r} "
                f"in {value!r}") from None
        if not math.isfinite(number):
            raise click.BadParameter(f"must be finite numbers, got {item.strip()!r}")
        numbers.append(number)
    return tuple(numbers)


def _check_prior_mean(prior: Any, n_features: int) -> None:
    """Refuse a --prior-mean whose length is not the number of features, naming both."""
    mean = getattr(prior, "mean", None)
    if mean is not None and len(mean) != n_features:
        raise click.UsageError(
            f"--prior-mean has {len(mean)} number(s); the data have {n_features} feature(s): "
            "give one per feature")


def _prior_option(prior: bool, shrinkage: float | None, dof: float | None,
                  scale: float | None, mean: tuple[float, ...] | None = None) -> Any:
    """GaussianMixture's ``prior``: None, "default", or a ConjugatePrior of the given values."""
    if shrinkage is None and dof is None and scale is None and mean is None:
        return "default" if prior else None
    from emkit.distributions.gaussian.prior import ConjugatePrior

    given = {"shrinkage": shrinkage, "dof": dof, "scale": scale, "mean": mean}
    return ConjugatePrior(**{k: v for k, v in given.items() if v is not None})


class _Progress:
    """A progress bar on stderr, silent for work that finishes quickly: over one fit's EM
    iterations (``hook``), or over a selection's candidates (``candidate_hook``)."""

    # Seconds before the bar shows (quick fits print nothing).
    DELAY = 0.5

    def __init__(self, quiet: bool, total: int | None, description: str,
                 unit: str = "it") -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=description, unit=unit, disable=quiet,
                        delay=self.DELAY, file=sys.stderr, leave=False)
        # The fit's callback: none where no bar is shown, as a callback keeps small fits
        # off the compiled loop.
        self.hook = None if quiet else self.callback
        # select_model's per-candidate progress: it leaves the fits on the compiled loop.
        self.candidate_hook = None if quiet else self.candidate

    def callback(self, iteration: int, lower_bound: float, change: float, model: Any) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loglik=f"{lower_bound:.4f}", refresh=False)

    def candidate(self, row: dict) -> None:
        self.bar.update(1)
        self.bar.set_postfix(last=f"{row['model']} K={row['n_components']}", refresh=False)

    def close(self) -> None:
        self.bar.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="emkit")
def main() -> None:
    """emkit: Expectation-Maximization for mixtures, fast and easy to watch.

    Exit codes: 0 success, 1 bad input (one line on stderr), 2 bad usage.
    """


def _fit_one(X, k, covariance, options, progress) -> GaussianMixture:
    from emkit.estimators.gaussian_mixture import GaussianMixture

    return GaussianMixture(
        n_components=k, covariance_type=covariance, callback=progress.hook, **options
    ).fit(X)


def _named(X: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Rows with their column names, so a saved model remembers what it was fitted on."""
    import pandas as pd

    return pd.DataFrame(X, columns=names)


def _standardize(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X - mean) / scale`` per column (missing cells ignored; constant columns unscaled)."""
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: refused by the fit
        mean, scale = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return (X - mean) / scale, mean, scale


# mclust models whose constraints do not survive unequal scaling of the features
# (S Sigma_k S: a shared orientation or a shared shape of rotated axes is lost;
# volumes, axis-aligned shapes and EVV's det-1 shapes keep theirs).
_SCALING_BREAKS = ("EII", "VII", "VEE", "EVE", "VVE", "EEV", "VEV")


def to_data_units(model: GaussianMixture, mean: np.ndarray, scale: np.ndarray) -> GaussianMixture:
    """The same mixture for rows ``mean + scale * z``: fitted on z, used on the data.

    A Gaussian mixture is closed under this affine map (means ``mean + scale *
    mu``, covariances ``S C S`` with ``S = diag(scale)``), so every row gets the
    same responsibilities as its standardised row, and log-likelihoods shift by
    ``-sum(log scale)`` per row. A spherical covariance becomes diagonal unless
    the scales are equal, so such a model is returned as ``diag``.

    Parameters
    ----------
    model : fitted GaussianMixture (on standardised rows)
    mean, scale : ndarray of shape (n_features,)

    Returns
    -------
    GaussianMixture
        ``model`` itself, its fitted attributes rewritten in the data's units.
    """
    import numpy as np

    from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES as structures

    kind, cov = structures[model.covariance_type].name, np.asarray(model.covariances_, np.float64)
    equal = np.allclose(scale, scale[0], rtol=0, atol=0)
    if not equal and model.covariance_type in _SCALING_BREAKS:
        # Unequal scales break the model's constraint: it becomes its layout's free model.
        model.set_params(covariance_type=kind)
    if kind == "spherical" and not equal:
        kind, cov = "diag", cov[:, None] * np.ones_like(scale)
        model.set_params(covariance_type="diag")
    if kind in ("full", "tied"):
        cov = cov * scale[:, None] * scale[None, :]
    elif kind == "diag":
        cov = cov * scale**2
    else:
        cov = cov * scale[0] ** 2
    structure = structures[kind]
    model.means_ = mean + model.means_ * scale
    model.covariances_ = cov
    model.precisions_cholesky_ = structure.precisions_cholesky(cov)
    model.precisions_ = structure.precisions(model.precisions_cholesky_)
    shift = float(np.log(scale).sum())
    if getattr(model, "noise", False):  # the uniform density 1/V keeps its mass: V scales too
        model.noise_volume_ = float(model.noise_volume_) * float(np.prod(scale))
    model.lower_bound_ = float(model.lower_bound_) - shift
    model.history_ = np.asarray(model.history_, dtype=np.float64) - shift
    prior = getattr(model, "prior", None)
    if getattr(prior, "mean", None) is not None:  # a prior mean given in standardised units
        from dataclasses import replace

        data_mean = mean + np.asarray(prior.mean, dtype=np.float64) * scale
        model.set_params(prior=replace(prior, mean=tuple(data_mean.tolist())))
    return model


def _table_in_data_units(table: pd.DataFrame | None, X: np.ndarray,
                         scale: np.ndarray) -> pd.DataFrame | None:
    """Criteria of fits to standardised rows, restated for the data (one shift for all)."""
    import numpy as np

    if table is None:
        return None
    shift = float((np.log(scale) * (~np.isnan(X)).sum(axis=0)).sum())
    table = table.copy()
    for name in ("bic", "aic", "icl"):
        if name in table:
            table[name] = table[name] + 2 * shift
    if "log_likelihood" in table:
        table["log_likelihood"] = table["log_likelihood"] - shift
    return table


@main.command()
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--components", "components_text", default="1-9", show_default=True,
              help="Number of components K, or a range A-B to choose from.")
@click.option("--covariance", type=click.Choice(COVARIANCE_CHOICES), default="full",
              show_default=True,
              help="Covariance structure (scikit-learn's names or mclust's 14 models), "
              "or 'all' to choose among mclust's 14.")
@click.option("--criterion", type=click.Choice(CRITERIA), default="bic", show_default=True,
              help="How to choose when several models are candidates (lower is better).")
@_table_options
@click.option("--max-iter", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--tol", type=click.FloatRange(min=0), default=1e-3, show_default=True)
@click.option("--reg-covar", type=click.FloatRange(min=0), default=1e-6, show_default=True,
              help="Added to the covariance diagonals (in standardised units with "
                   "--standardize).")
@click.option("--n-init", type=click.IntRange(min=1), default=1, show_default=True,
              help="Restarts per model; the best is kept.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default="em", show_default=True,
              help="Soft EM, hard (classification) EM, or stochastic EM.")
@click.option("--accelerate", is_flag=True,
              help="SQUAREM extrapolation: fewer passes when clusters overlap.")
@click.option("--accelerate-method", type=click.Choice(ACCELERATIONS),
              help="Accelerate with this method (implies --accelerate): squarem, or daarem "
                   "(damped Anderson acceleration).")
@click.option("--prior", is_flag=True,
              help="mclust's default conjugate prior (prior=\"default\"): MAP EM, which keeps "
                   "small components from collapsing.")
@click.option("--prior-shrinkage", type=float, callback=_prior_number(positive=False),
              help="The prior's shrinkage of the means toward the data's mean (pseudo-rows; "
                   "mclust's default 0.01, 0 none). Implies --prior.")
@click.option("--prior-mean", callback=_prior_vector, metavar="M1,M2,...",
              help="The prior's mean: one number per feature, comma-separated (default: the "
                   "data's mean). With --standardize, in standardised units (0 is the data's "
                   "mean); the saved and reported prior is then in the data's units. "
                   "Implies --prior.")
@click.option("--prior-dof", type=float, callback=_prior_number(positive=True),
              help="The prior's degrees of freedom (default: features + 2). Implies --prior.")
@click.option("--prior-scale", type=float, callback=_prior_number(positive=True),
              help="The prior's scale: each variance's for the diagonal and spherical "
                   "models, that times the identity matrix for the others (default: from "
                   "the data's variances). Implies --prior.")
@click.option("--noise", is_flag=True,
              help="Add a uniform noise component (mclust's Vinv); predict gives -1 for rows "
                   "most likely noise.")
@click.option("--standardize", is_flag=True,
              help="Fit on columns scaled to mean 0 and variance 1 (for features on very "
                   "different scales); the saved model works on the data as they are.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the fitted model here (.npz, plain data); the folder must exist.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a picture of the fit (format from the extension: .png, .pdf, .svg).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--stream", is_flag=True,
              help="Stream DATA in row chunks instead of loading it (automatic for files "
                   "over 1 GiB): one K and one covariance type, no --plot.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=65536, show_default=True,
              help="Rows per chunk when streaming.")
@_one_line_errors
@_one_line_warnings
def fit(data: Path, components_text: str, covariance: str, criterion: str, columns: str | None,
        exclude: str | None, sep: str | None, decimal: str | None, max_iter: int, tol: float,
        reg_covar: float, n_init: int, seed: int, algorithm: str, accelerate: bool,
        accelerate_method: str | None, prior: bool, prior_shrinkage: float | None,
        prior_mean: tuple[float, ...] | None, prior_dof: float | None,
        prior_scale: float | None, noise: bool, standardize: bool,
        out: Path | None, plot_path: Path | None, as_json: bool, quiet: bool, stream: bool,
        chunk_size: int) -> None:
    """Fit a Gaussian mixture to DATA (CSV with or without header, Parquet, or .npy).

    With one K and one covariance type the model is fitted directly; with a range
    or --covariance all, every candidate is fitted and the best by --criterion is
    kept (degenerate fits, collapsed onto repeated values, are chosen only when every
    candidate is degenerate, with a warning; candidates the rows cannot support are skipped).
    Files over 1 GiB (or with --stream) are streamed in chunks, never loaded whole.
    The model is saved (--out) before the picture is drawn (--plot).
    --prior fits by MAP EM under mclust's default prior (--prior-shrinkage,
    --prior-mean, --prior-dof and --prior-scale set its hyperparameters, the others keeping
    mclust's defaults); --noise adds a uniform
    noise component (its weight is reported; emkit predict labels noise rows -1).
    """
    from emkit.data._io_tables import read_frame, select_columns, to_numbers

    ks = _component_range(components_text)
    _check_output(out, "--out")
    _check_picture_path(plot_path)
    speedup = accelerate_method or accelerate  # True: SQUAREM, as --accelerate always was
    prior_given = _prior_option(prior, prior_shrinkage, prior_dof, prior_scale, prior_mean)
    _check_fit_combinations(algorithm, speedup, prior_given is not None)
    if prior_scale is not None and standardize:
        # The saved model is in the data's units; a scale given for standardised columns
        # would not describe it (shrinkage and dof have no units).
        raise click.UsageError("--prior-scale is in the data's units: not with --standardize")
    options = {"max_iter": max_iter, "tol": tol, "n_init": n_init, "random_state": seed,
               "algorithm": algorithm, "accelerate": speedup, "reg_covar": reg_covar,
               "prior": prior_given, "noise": noise}
    if stream or (data.is_file() and data.stat().st_size > STREAM_THRESHOLD):
        if standardize:
            raise click.UsageError("--standardize needs the rows in memory; not with --stream")
        source = _open_source(data, chunk_size, columns, exclude, sep, decimal)
        _check_prior_mean(prior_given, len(source.columns))
        model = _fit_streamed(source, ks, covariance, plot_path, options, quiet)
        saved = _save(model, out)  # first: nothing after the fit may lose it
        _report_fit(model, None, source.columns, as_json, fit_statistics(model, source))
        _say_saved(saved, as_json)
        return
    frame = select_columns(read_frame(data, sep, decimal), data, _columns(columns),
                           _columns(exclude))
    X, names = to_numbers(frame, data), [str(c) for c in frame.columns]
    _warn_of_row_numbers(X, names)
    _check_prior_mean(prior_given, X.shape[1])
    Z, mean, scale = _standardize(X) if standardize else (X, None, None)
    model, table = _fit_candidates(_named(Z, names), ks, covariance, criterion, options, quiet)
    if standardize:
        model = to_data_units(model, mean, scale)
        table = _table_in_data_units(table, X, scale)
    saved = _save(model, out)  # first: nothing after the fit may lose it
    X = _named(X, names)
    statistics = fit_statistics(model, X)
    statistics["standardized"] = standardize
    _report_fit(model, table, names, as_json, statistics)
    _say_saved(saved, as_json)
    if plot_path is not None:
        try:
            _plot_fit(X, model, table, criterion, names, plot_path)
        except Exception as exc:
            kept = f"model saved to {saved}, but " if saved else ""
            raise click.ClickException(f"{kept}the picture failed: {_message(exc)}") from None
        if not as_json:
            click.echo(f"picture written to {plot_path}")


def _check_fit_combinations(algorithm: str, accelerate: bool | str, prior: bool) -> None:
    """Refuse, before reading DATA, the option pairs GaussianMixture refuses."""
    name = "--accelerate-method" if isinstance(accelerate, str) else "--accelerate"
    if accelerate and algorithm != "em":
        raise click.UsageError(f"{name} needs --algorithm em (got {algorithm})")
    if prior and accelerate:
        raise click.UsageError(f"--prior does not combine with {name}")


def _layout(covariance_type: str) -> str:
    """How a covariance type's parameters are stored: full, tied, diag or spherical."""
    from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES

    return COVARIANCE_STRUCTURES[covariance_type].name


def _fit_candidates(X: pd.DataFrame, ks: range, covariance: str, criterion: str,
                    options: dict, quiet: bool) -> tuple[GaussianMixture, pd.DataFrame | None]:
    """One model, or the best of several by ``criterion`` with the table of candidates."""

    from emkit.estimators.selection import select_model

    if covariance != "all":
        types = [covariance]
    elif X.shape[1] == 1:
        types = ["E", "V"]  # mclust's univariate pair, to which the 14 reduce (as select_model)
    else:
        types = list(MCLUST_MODELS)
    candidates = len(ks) * len(types)
    if candidates == 1:  # one fit: a bar over its EM iterations
        progress = _Progress(quiet, None, "EM iterations")
    else:  # a selection: a bar over the candidates (every row of the table)
        progress = _Progress(quiet, candidates, "models", unit="model")
    try:
        if candidates == 1:
            return _fit_one(X, ks[0], types[0], options, progress), None
        result = select_model(X, list(ks), types, criterion=criterion,
                              progress=progress.candidate_hook, **options)
        return result.best_estimator, result.table
    finally:
        progress.close()


def _warn_of_row_numbers(X: np.ndarray, names: list[str]) -> None:
    """Warn of a column that counts the rows (k, k + 1, ...): an id, fitted as a feature.

    Such a column is fitted like any other and, spread evenly over its range,
    splits the rows into bands of ids; nothing else in the fit says so.
    """
    import numpy as np

    if X.shape[0] < 3:
        return
    steps = np.diff(X, axis=0)
    for j in np.flatnonzero((steps == 1).all(axis=0) & (X[0] == np.round(X[0]))):
        first, last = X[0, j], X[-1, j]
        warnings.warn(f"column {names[j]!r} counts the rows ({first:g}, {first + 1:g}, ..., "
                      f"{last:g}): a row number or id is fitted as a feature; leave it out "
                      f"with --exclude '{names[j]}'", UserWarning, stacklevel=2)


def _open_source(data: Path, chunk_size: int, columns: str | None, exclude: str | None,
                 sep: str | None, decimal: str | None):
    """A streamed source of DATA's chosen columns."""
    import pandas as pd

    from emkit import sources
    from emkit.data._io_tables import DataFileError, select_columns
    from emkit.data.file_sources import CsvSource

    picked = _columns(columns)
    if data.suffix.lower() in (".npy", ".parquet", ".pq"):
        if sep or decimal:
            raise click.UsageError("--sep and --decimal apply to CSV files only")
        source = sources.open(data, chunk_size=chunk_size, columns=picked)
    else:
        if not data.is_file():
            raise DataFileError(f"no such file: {data}")
        source = CsvSource(data, chunk_size, picked, sep=sep, decimal=decimal)
    if exclude:
        dropped = set(select_columns(pd.DataFrame(columns=source.columns), data,
                                     _columns(exclude)).columns)
        kept = [c for c in source.columns if c not in dropped]
        if not kept:
            raise DataFileError(f"{data}: no columns left to use")
        if isinstance(source, CsvSource):
            source = CsvSource(data, chunk_size, kept, sep=sep, decimal=decimal)
        else:
            source = sources.open(data, chunk_size=chunk_size, columns=kept)
    return source


def _save(model: GaussianMixture, out: Path | None) -> Path | None:
    from emkit import io as model_io

    if out is None:
        return None
    return model_io.save(model.set_params(callback=None), out)


def _say_saved(path: Path | None, as_json: bool) -> None:
    if path is not None and not as_json:
        click.echo(f"model saved to {path}")


def _fit_streamed(source, ks: range, covariance: str, plot_path: Path | None,
                  options: dict, quiet: bool) -> GaussianMixture:
    """One model fitted from a file source (selection and pictures need the rows in memory)."""

    if len(ks) > 1 or covariance == "all" or plot_path is not None:
        raise click.UsageError(
            "a streamed fit takes one K (-k 3) and one --covariance type, and no --plot"
        )
    progress = _Progress(quiet, None, "EM iterations")
    try:
        return _fit_one(source, ks[0], covariance, options, progress)
    finally:
        progress.close()


def _report_fit(model, table, names, as_json: bool, statistics: dict | None = None) -> None:
    summary = {**describe(model), **(statistics or {})}
    if as_json:
        selection = None if table is None else json.loads(table.to_json(orient="records"))
        click.echo(_json_text({"model": summary, "columns": names, "selection": selection}))
        return
    if table is not None:
        click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        click.echo("")
    click.echo(_summary_text(summary, names))


def _plot_fit(X, model, table, criterion, names, path: Path) -> None:
    from matplotlib.figure import Figure

    from emkit.plot import plot_mixture, plot_selection

    panels = 1 if table is None else 2
    figure = Figure(figsize=(5.5 * panels, 4.5), layout="constrained")
    axes = figure.subplots(1, panels, squeeze=False).ravel()
    plot_mixture(X, model, ax=axes[0], feature_names=names,
                 title=f"{model.n_components} components, {model.covariance_type}")
    if table is not None:
        plot_selection(table, criterion=criterion, ax=axes[1])
    figure.savefig(path, dpi=90)


def _model_columns(model: Any, frame: pd.DataFrame, data: Path, by_position: bool) -> Any:
    """The rows the model is applied to: its columns by name, or by position if asked.

    A model fitted on named columns takes them from the file by name (in the
    model's order; other columns, such as a label, are ignored). A file lacking
    any of them is refused: matching by position would score swapped features.
    """

    from emkit.data._io_tables import DataFileError, shorten, to_numbers

    expected = getattr(model, "feature_names_in_", None)
    width = int(model.n_features_in_)
    if expected is None or by_position:
        if frame.shape[1] != width:
            raise DataFileError(
                f"{data} has {frame.shape[1]} columns to use "
                f"({shorten(', '.join(map(str, frame.columns)), 200)}); "
                f"the model takes {width}: choose them with --columns or --exclude"
            )
        return to_numbers(frame, data)
    expected = [str(n) for n in expected]
    present = {str(c): c for c in frame.columns}
    missing = [n for n in expected if n not in present]
    if missing:
        raise DataFileError(
            f"{data} lacks the model's column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(shorten(n) for n in missing[:10])} (model: "
            f"{shorten(', '.join(expected), 200)}; file: "
            f"{shorten(', '.join(map(str, frame.columns)), 200)}); rename them, or give "
            "--by-position to match columns by position"
        )
    picked = frame[[present[n] for n in expected]]
    picked.attrs.update(frame.attrs)
    return _named(to_numbers(picked, data), expected)


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--proba", is_flag=True,
              help="Responsibilities instead of labels (p0, p1, ..., then p_noise).")
@_table_options
@click.option("--by-position", is_flag=True,
              help="Match the model's columns by position, not by name.")
@click.option("--append", is_flag=True,
              help="Write DATA's rows followed by the columns component and max_proba "
                   "(and the responsibilities with --proba).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write CSV here instead of standard output.")
@_one_line_errors
def predict(model_path: Path, data: Path, proba: bool, columns: str | None,
            exclude: str | None, sep: str | None, decimal: str | None, by_position: bool,
            append: bool, out: Path | None) -> None:
    """Assign the rows of DATA to the components of a saved MODEL (CSV output).

    The model's columns are taken from DATA by name when the model has names
    (other columns are ignored); a file without them is refused unless
    --by-position is given. A model with a noise component (emkit fit --noise)
    labels the rows most likely noise -1, and --proba adds their column p_noise.
    """
    import numpy as np
    import pandas as pd

    from emkit import io as model_io
    from emkit.data._io_tables import read_frame, select_columns

    _check_output(out, "--out")
    model = model_io.load(model_path)
    frame = read_frame(data, sep, decimal)
    used = select_columns(frame, data, _columns(columns), _columns(exclude))
    X = _model_columns(model, used, data, by_position)
    with warnings.catch_warnings():
        # Columns matched by position (asked for, or a model without names) are fine.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        probabilities = model.predict_proba(X)
    labels = np.argmax(probabilities, axis=1) if len(probabilities) else np.zeros(0, int)
    noise = bool(getattr(model, "noise", False))  # its column is the last; its label -1
    if noise:
        labels = np.where(labels == probabilities.shape[1] - 1, -1, labels)
    result = pd.DataFrame({"component": labels}) if not proba or append else pd.DataFrame()
    if append:
        result["max_proba"] = probabilities.max(axis=1)
    if proba:
        for k in range(probabilities.shape[1] - noise):
            result[f"p{k}"] = probabilities[:, k]
        if noise:
            result["p_noise"] = probabilities[:, -1]
    if append:
        result = pd.concat([frame.reset_index(drop=True), result.set_axis(
            [_free_name(c, frame.columns) for c in result.columns], axis=1)], axis=1)
    _write(result, out)


def _free_name(name: str, taken: Any) -> str:
    """``name``, or ``name_1``, ... if DATA already has a column of that name."""
    taken, candidate, n = {str(c) for c in taken}, name, 0
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def _write(frame: pd.DataFrame, out: Path | None) -> None:
    """CSV to ``out``, or to standard output."""

    from emkit.data._io_tables import write_csv

    if out is not None:
        write_csv(frame, None, out)
        return
    write_csv(frame, None, sys.stdout)
    sys.stdout.flush()


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-n", "--n-samples", type=click.IntRange(min=1), required=True,
              help="Number of rows to draw.")
@click.option("--seed", type=int, default=None, help="Random seed (default: the model's).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write CSV here instead of standard output.")
@_one_line_errors
def sample(model_path: Path, n_samples: int, seed: int | None, out: Path | None) -> None:
    """Draw N_SAMPLES rows from a saved MODEL: the features, then the component.

    Rows are drawn and written in chunks of 65536 (so memory stays small), each
    chunk sorted by component.
    """
    from emkit import io as model_io

    _check_output(out, "--out")
    model = model_io.load(model_path)
    width = int(model.n_features_in_)
    if n_samples * (width + 1) > MAX_SAMPLE_CELLS:
        raise click.ClickException(
            f"-n {n_samples} rows of {width + 1} columns is more than {MAX_SAMPLE_CELLS:,} "
            f"numbers; at most {MAX_SAMPLE_CELLS // (width + 1):,} rows"
        )
    if seed is not None:
        model.set_params(random_state=seed)
    names = [f"x{i}" for i in range(width)]
    if getattr(model, "feature_names_in_", None) is not None:
        names = [str(n) for n in model.feature_names_in_]
    if out is None:
        _write_samples(model, n_samples, names, sys.stdout)
        return
    with out.open("w", newline="") as handle:
        _write_samples(model, n_samples, names, handle)


def _write_samples(model: Any, n_samples: int, names: list[str], stream: Any) -> None:
    """Rows drawn in chunks; the first chunk is what ``model.sample`` gives for small n."""
    import numpy as np
    import pandas as pd

    from emkit.data._validation import seed_sequence

    base = seed_sequence(model.random_state)
    for index, start in enumerate(range(0, n_samples, SAMPLE_CHUNK_ROWS)):
        rows = min(SAMPLE_CHUNK_ROWS, n_samples - start)
        if index > 0:  # independent, reproducible draws for every later chunk
            child = np.random.SeedSequence(base.entropy, spawn_key=(index,))
            model.set_params(random_state=int(child.generate_state(1)[0]))
        X, y = model.sample(rows)
        frame = pd.DataFrame(np.asarray(X, dtype=float).reshape(rows, -1), columns=names)
        frame["component"] = np.asarray(y, dtype=np.int64)
        frame.to_csv(stream, index=False, header=index == 0)
    stream.flush()


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@_one_line_errors
def info(model_path: Path, as_json: bool) -> None:
    """Describe a saved MODEL: its columns, components, weights and fit."""
    from emkit import io as model_io

    summary = describe(model_io.load(model_path))
    click.echo(_json_text(summary) if as_json else _summary_text(summary))


@main.command()
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--components", type=click.IntRange(min=1), default=1, show_default=True,
              help="Mixture components of the model the gaps are filled from.")
@click.option("--covariance", type=click.Choice(COVARIANCE_TYPES),
              default="full", show_default=True)
@_table_options
@click.option("--sample-posterior", is_flag=True,
              help="Draw each gap from its conditional distribution instead of its mean.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the filled CSV here instead of standard output.")
@_one_line_errors
def impute(data: Path, components: int, covariance: str, columns: str | None,
           exclude: str | None, sep: str | None, decimal: str | None,
           sample_posterior: bool, seed: int, out: Path | None) -> None:
    """Fill the missing cells (empty, NA or NaN) of DATA from a Gaussian mixture fitted by EM.

    Only the gaps of the used columns change: every other cell, and every
    column left out with --columns or --exclude, is written as it was read.
    """
    import numpy as np

    from emkit.data._io_tables import read_frame, select_columns, to_numbers
    from emkit.estimators.imputer import GaussianMixtureImputer

    _check_output(out, "--out")
    frame = read_frame(data, sep, decimal)
    used = select_columns(frame, data, _columns(columns), _columns(exclude))
    X = to_numbers(used, data)
    imputer = GaussianMixtureImputer(
        components, covariance_type=covariance, sample_posterior=sample_posterior,
        random_state=seed,
    )
    filled = imputer.fit_transform(X)
    result = frame.copy()
    for j, name in enumerate(used.columns):
        gaps = np.isnan(X[:, j])
        if gaps.any():
            column = result[name].astype(object)
            column[gaps] = filled[gaps, j]
            result[name] = column
    _write(result, out)
    if out is not None:
        click.echo(f"{int(np.isnan(X).sum())} missing values filled; written to {out}", err=True)


# ---------------------------------------------------------------------------
# emkit hmm fit | predict: hidden Markov models of sequences (issue 17)
# ---------------------------------------------------------------------------

# The emission families `emkit hmm fit` offers, and the hmmlearn drop-in of each
# (emkit.estimators.hmm); tests/test_cli.py checks the covariance types against
# emkit.estimators.hmm.COVARIANCE_TYPES.
HMM_EMISSIONS = {"gaussian": "GaussianHMM", "categorical": "CategoricalHMM",
                 "poisson": "PoissonHMM"}
HMM_COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")


@main.group()
def hmm() -> None:
    """Hidden Markov models: fit sequences of rows, decode their hidden states.

    The rows of DATA are the steps of one or more sequences, in time order.
    Say where each sequence starts with --sequence COLUMN (a column holding
    each row's sequence id; a sequence's rows must be together) or with
    --lengths FILE (the number of rows of each sequence, one per line); with
    neither, all rows are one sequence.
    """


def _sequence_options(command: Callable) -> Callable:
    """--sequence and --lengths: how the rows of DATA split into sequences."""
    options = [
        click.option("--sequence", "sequence_column",
                     help="Column holding each row's sequence id (name or 0-based index)."),
        click.option("--lengths", "lengths_path",
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="File with the number of rows of each sequence, one per line."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _read_lengths(path: Path) -> list[int]:
    """Sequence lengths from a text file: integers separated by new lines, commas or spaces."""
    from emkit.data._io_tables import DataFileError, shorten

    if not path.is_file():
        raise DataFileError(f"no such file: {path}")
    lengths = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        for token in line.replace(",", " ").split():
            if not token.isdigit():
                raise DataFileError(
                    f"{path}, line {number}: {shorten(token)} is not a sequence length "
                    "(a positive whole number)"
                )
            lengths.append(int(token))
    if not lengths:
        raise DataFileError(f"{path} holds no sequence lengths")
    return lengths


def _sequence_lengths(ids: Any, column: str) -> list[int]:
    """Lengths of the runs of equal ids; an id in two separate runs is refused."""
    import numpy as np

    from emkit.data._io_tables import DataFileError, shorten

    ids = np.asarray(ids, dtype=object)
    blank = [i for i, v in enumerate(ids) if v is None or str(v).strip() in ("", "nan")]
    if blank:
        raise DataFileError(f"sequence column {column!r} is empty at row {blank[0]}")
    text = np.array([str(v) for v in ids], dtype=object)
    starts = np.flatnonzero(np.concatenate(([True], text[1:] != text[:-1])))
    seen: dict[str, int] = {}
    for start in starts:
        if text[start] in seen:
            raise DataFileError(
                f"sequence {shorten(text[start])} (column {column!r}) appears in two "
                f"separate runs of rows (from rows {seen[text[start]]} and {start}): put "
                "each sequence's rows together, in time order"
            )
        seen[text[start]] = int(start)
    return np.diff(np.append(starts, len(text))).tolist()


def _hmm_rows(frame: pd.DataFrame, data: Path, columns: str | None, exclude: str | None,
              sequence_column: str | None, lengths_path: Path | None, names: Any = None
              ) -> tuple[np.ndarray, list[str], list[int] | None, Any]:
    """DATA's observation columns as floats, their names, the lengths and the sequence ids."""
    from emkit.data._io_tables import DataFileError, select_columns, shorten, to_numbers

    if sequence_column is not None and lengths_path is not None:
        raise click.UsageError("give --sequence or --lengths, not both")
    ids, lengths = None, None
    if sequence_column is not None:
        picked = select_columns(frame, data, [sequence_column])
        ids = picked.iloc[:, 0]
        lengths = _sequence_lengths(ids.to_numpy(), str(picked.columns[0]))
        frame = frame.drop(columns=picked.columns)
    elif lengths_path is not None:
        lengths = _read_lengths(lengths_path)
    if names is not None:  # a saved model's columns, by name
        missing = [n for n in names if n not in {str(c) for c in frame.columns}]
        if missing:
            raise DataFileError(
                f"{data} lacks the model's column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(shorten(n) for n in missing[:10])}"
            )
        present = {str(c): c for c in frame.columns}
        used = frame[[present[n] for n in names]]
        used.attrs.update(frame.attrs)
    else:
        used = select_columns(frame, data, _columns(columns), _columns(exclude))
    if used.shape[1] == 0:
        raise DataFileError(f"{data}: no observation columns left to use")
    return to_numbers(used, data), [str(c) for c in used.columns], lengths, ids


def describe_hmm(model: Any, X: Any, lengths: Any) -> dict[str, Any]:
    """A JSON-ready summary of a fitted hidden Markov model and how it fits ``X``."""
    import numpy as np

    log_likelihood = float(model.score(X, lengths))
    summary: dict[str, Any] = {
        "class": type(model).__name__,
        "n_states": int(model.n_components),
        "n_iter": int(model.monitor_.iter),
        "converged": bool(model.monitor_.converged),
        "n_sequences": 1 if lengths is None else len(lengths),
        "n_samples": len(X),
        "log_likelihood": log_likelihood,
        "n_parameters": int(model.n_parameters),
        "bic": float(model.bic(X, lengths)),
        "aic": float(model.aic(X, lengths)),
        "startprob": model.startprob_.tolist(),
        "transmat": model.transmat_.tolist(),
    }
    if getattr(model, "feature_names_in_", None) is not None:
        summary["columns"] = [str(n) for n in model.feature_names_in_]
    if hasattr(model, "means_"):
        summary["covariance_type"] = model.covariance_type
        summary["means"] = np.asarray(model.means_, float).tolist()
        summary["covariances"] = np.asarray(model.covars_, float).tolist()
    elif hasattr(model, "emissionprob_"):
        summary["emissionprob"] = np.asarray(model.emissionprob_, float).tolist()
    else:
        summary["lambdas"] = np.asarray(model.lambdas_, float).tolist()
    return summary


def _hmm_summary_text(summary: dict[str, Any]) -> str:
    head = f"{summary['class']}: {summary['n_states']} states"
    if "covariance_type" in summary:
        head += f", {summary['covariance_type']} covariance"
    lines = [
        head,
        f"iterations: {summary['n_iter']}, converged: {summary['converged']}",
        f"sequences: {summary['n_sequences']}, n: {summary['n_samples']}, log-likelihood: "
        f"{summary['log_likelihood']:.4f}, BIC: {summary['bic']:.4f}, AIC: {summary['aic']:.4f}, "
        f"parameters: {summary['n_parameters']}",
    ]
    if summary.get("columns"):
        lines.append(f"columns: {', '.join(summary['columns'])}")
    lines.append(f"start probabilities: {_array_text(summary['startprob'])}")
    lines.append("transitions:\n  " + _array_text(summary["transmat"]).replace("\n", "\n  "))
    for k in range(summary["n_states"]):
        lines.append(f"state {k}:")
        if "means" in summary:
            lines.append(f"  mean {_array_text(summary['means'][k])}")
            lines.append("  covariance " + _array_text(summary["covariances"][k]).replace(
                "\n", "\n             "))
        elif "emissionprob" in summary:
            lines.append(f"  category probabilities {_array_text(summary['emissionprob'][k])}")
        else:
            lines.append(f"  rates {_array_text(summary['lambdas'][k])}")
    return "\n".join(lines)


@hmm.command("fit")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--states", type=click.IntRange(min=1), default=2, show_default=True,
              help="Number of hidden states.")
@click.option("--emission", type=click.Choice(list(HMM_EMISSIONS)), default="gaussian",
              show_default=True, help="Emission family of every state.")
@click.option("--covariance", type=click.Choice(HMM_COVARIANCE_TYPES), default="diag",
              show_default=True, help="Covariance type of Gaussian emissions.")
@_sequence_options
@_table_options
@click.option("--n-iter", type=click.IntRange(min=1), default=100, show_default=True,
              help="Most Baum-Welch iterations (passes over the data with --accelerate).")
@click.option("--tol", type=click.FloatRange(min=0), default=1e-2, show_default=True,
              help="Stop when the total log-likelihood gains less (hmmlearn's tol).")
@click.option("--n-init", type=click.IntRange(min=1), default=1, show_default=True,
              help="Random starts; the best fit is kept.")
@click.option("--accelerate", is_flag=True, help="SQUAREM around Baum-Welch.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the fitted model here (emkit hmm predict reads it).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@_one_line_errors
def hmm_fit(data: Path, states: int, emission: str, covariance: str,
            sequence_column: str | None, lengths_path: Path | None, columns: str | None,
            exclude: str | None, sep: str | None, decimal: str | None, n_iter: int, tol: float,
            n_init: int, accelerate: bool, seed: int, out: Path | None, as_json: bool) -> None:
    """Fit a hidden Markov model to the sequences in DATA (CSV, Parquet or .npy).

    Gaussian emissions read every chosen column; categorical ones one column
    of category codes 0, 1, ...; Poisson ones columns of counts. Missing cells
    are marginalised.
    """
    import numpy as np

    from emkit import io as model_io
    from emkit.data._io_tables import read_frame
    from emkit.estimators import hmm as hmm_estimators

    _check_output(out, "--out")
    frame = read_frame(data, sep, decimal)
    X, names, lengths, _ = _hmm_rows(frame, data, columns, exclude, sequence_column,
                                     lengths_path)
    cls = getattr(hmm_estimators, HMM_EMISSIONS[emission])
    options = {"covariance_type": covariance} if emission == "gaussian" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        model = cls(n_components=states, n_iter=n_iter, tol=tol, n_init=n_init,
                    accelerate=accelerate, random_state=seed, **options).fit(X, lengths)
    model.feature_names_in_ = np.array(names, dtype=object)
    summary = describe_hmm(model, X, lengths)
    saved = model_io.save(model, out) if out is not None else None
    click.echo(_json_text(summary) if as_json else _hmm_summary_text(summary))
    _say_saved(saved, as_json)


@hmm.command("predict")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@_sequence_options
@_table_options
@click.option("--proba", is_flag=True,
              help="Also write each state's posterior probability (p0, p1, ...).")
@click.option("--map", "use_map", is_flag=True,
              help="Each step's most probable state instead of the Viterbi path.")
@click.option("--append", is_flag=True, help="Write DATA's rows followed by the new columns.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write CSV here instead of standard output.")
@_one_line_errors
def hmm_predict(model_path: Path, data: Path, sequence_column: str | None,
                lengths_path: Path | None, columns: str | None, exclude: str | None,
                sep: str | None, decimal: str | None, proba: bool, use_map: bool, append: bool,
                out: Path | None) -> None:
    """Decode the hidden states of the sequences in DATA with a saved MODEL (CSV output).

    The column state holds the most likely path (Viterbi) unless --map is
    given; a model fitted by emkit hmm fit takes its columns from DATA by name.
    """
    import pandas as pd

    from emkit import io as model_io
    from emkit.data._io_tables import read_frame

    _check_output(out, "--out")
    model = model_io.load(model_path)
    if not hasattr(model, "transmat_"):
        raise click.ClickException(f"{model_path} holds a {type(model).__name__}, not an HMM")
    frame = read_frame(data, sep, decimal)
    names = getattr(model, "feature_names_in_", None)
    X, _, lengths, ids = _hmm_rows(
        frame, data, columns, exclude, sequence_column, lengths_path,
        names=None if names is None else [str(n) for n in names])
    _, states = model.decode(X, lengths, algorithm="map" if use_map else "viterbi")
    result = pd.DataFrame({"state": states})
    if ids is not None and not append:
        result.insert(0, str(ids.name), ids.to_numpy())
    if proba:
        posteriors = model.predict_proba(X, lengths)
        for k in range(posteriors.shape[1]):
            result[f"p{k}"] = posteriors[:, k]
    if append:
        result = pd.concat([frame.reset_index(drop=True), result.set_axis(
            [_free_name(c, frame.columns) for c in result.columns], axis=1)], axis=1)
    _write(result, out)


@main.command()
@click.argument("name", type=click.Choice(["anemia", "casino", "coins", "faithful"]),
                default="anemia")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Folder for the pictures.")
@_one_line_errors
def demo(name: str, out_dir: Path) -> None:
    """Watch EM work on bundled data: anemia (default), casino, coins or faithful.

    anemia and faithful print the iteration log and write the iteration grid
    (1, 3, 5, 10, 15, 25, or the last one reached), the log-likelihood curve,
    the final fit and a GIF.
    casino fits a hidden Markov model to Durbin's occasionally dishonest casino,
    prints fitted against true dice and switching rates, and draws casino.png.
    coins prints the two-coin example's E-step tables, as in the slides.
    """
    if name == "casino":
        from emkit.demos import casino

        casino.run(out_dir, echo=click.echo)
        return
    if name == "coins":
        from emkit.demos import coins

        coins.run(echo=click.echo)
        return
    from emkit.demos import gaussian

    gaussian.run(name, out_dir, echo=click.echo)


# ---------------------------------------------------------------------- emkit regmix
# Mixtures of regressions (RegressionMixture): one command group, fit and predict.

# emkit.distributions.regression.FAMILIES; tests/test_startup.py checks they agree.
REGRESSION_FAMILIES = ("gaussian", "poisson", "binomial")


@main.group()
def regmix() -> None:
    """Mixtures of regressions: fit one to a table (a y column on x columns), use it."""


def _regression_columns(frame_columns: list[str], y: str, weight: str | None,
                        concomitant: list[str], columns: list[str] | None,
                        exclude: list[str] | None, data: Path) -> list[str]:
    """The design columns: --columns, or every column but y, the weight and the gate's."""
    from emkit.data._io_tables import DataFileError

    names = [str(c) for c in frame_columns]
    for name, what in [(y, "-y"), (weight, "--weight"), *((z, "--concomitant")
                                                            for z in concomitant)]:
        if name is not None and name not in names:
            raise DataFileError(f"{data} has no column {name!r} ({what}); its columns: "
                                f"{', '.join(names)}")
    taken = {y, weight, *concomitant}
    design = columns if columns else [n for n in names if n not in taken]
    design = [n for n in design if n not in set(exclude or ())]
    unknown = [n for n in design if n not in names]
    if unknown:
        raise DataFileError(f"{data} has no column {unknown[0]!r} (--columns)")
    if taken & set(design):
        raise DataFileError(f"column {sorted(taken & set(design))[0]!r} is both y (or weight, "
                            "or concomitant) and a design column")
    return design


def _regression_report(model: Any, table: Any, as_json: bool, fit: dict) -> None:
    import numpy as np

    summary = {
        "class": "RegressionMixture", "family": model.family,
        "n_components": int(model.n_components), "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "average_log_likelihood": float(model.lower_bound_),
        "columns": [str(n) for n in getattr(model, "feature_names_in_", [])],
        "weights": np.asarray(model.weights_).tolist(),
        "intercept": np.asarray(model.intercept_).tolist(),
        "coef": np.asarray(model.coef_).tolist(), **fit,
    }
    if model.family == "gaussian":
        summary["scale"] = np.asarray(model.scale_).tolist()
    if model.gating == "logistic":
        summary["gate_intercept"] = np.asarray(model.gate_intercept_).tolist()
        summary["gate_coef"] = np.asarray(model.gate_coef_).tolist()
    if as_json:
        selection = None if table is None else json.loads(table.to_json(orient="records"))
        click.echo(_json_text({"model": summary, "selection": selection}))
        return
    if table is not None:
        click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        click.echo("")
    click.echo(f"RegressionMixture: {summary['n_components']} {model.family} components; "
               f"iterations: {summary['n_iter']}, converged: {summary['converged']}, "
               f"average log-likelihood: {summary['average_log_likelihood']:.6f}")
    if "bic" in fit:
        click.echo(f"n: {fit['n_samples']}, log-likelihood: {fit['log_likelihood']:.4f}, "
                   f"BIC: {fit['bic']:.4f}, AIC: {fit['aic']:.4f}, ICL: {fit['icl']:.4f}")
    click.echo(f"columns: {', '.join(summary['columns'])}")
    for k in range(summary["n_components"]):
        scale = f", scale {summary['scale'][k]:.4g}" if "scale" in summary else ""
        click.echo(f"component {k}: weight {summary['weights'][k]:.4f}, intercept "
                   f"{summary['intercept'][k]:.4g}{scale}\n  coef "
                   f"{_array_text(summary['coef'][k])}")


@regmix.command("fit")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-y", "--response", "y", required=True, help="The response column.")
@click.option("-k", "--components", "components_text", default="1-5", show_default=True,
              help="Number of components K, or a range A-B chosen by --criterion.")
@click.option("--family", type=click.Choice(REGRESSION_FAMILIES), default="gaussian",
              show_default=True)
@click.option("--concomitant", help="Comma-separated gating columns (a mixture of experts).")
@click.option("--weight", help="A column of non-negative row weights.")
@click.option("--no-intercept", is_flag=True, help="Regressions without an intercept.")
@click.option("--criterion", type=click.Choice(CRITERIA), default="bic", show_default=True)
@_table_options
@click.option("--max-iter", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--tol", type=click.FloatRange(min=0), default=1e-8, show_default=True)
@click.option("--n-init", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default="em", show_default=True)
@click.option("--accelerate", is_flag=True, help="SQUAREM extrapolation (with --algorithm em).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the fitted model here (.emkit).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--stream", is_flag=True, help="Read DATA in chunks (one K), never whole.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=65536, show_default=True)
@_one_line_errors
@_one_line_warnings
def regmix_fit(data: Path, y: str, components_text: str, family: str, concomitant: str | None,
               weight: str | None, no_intercept: bool, criterion: str, columns: str | None,
               exclude: str | None, sep: str | None, decimal: str | None, max_iter: int,
               tol: float, n_init: int, seed: int, algorithm: str, accelerate: bool,
               out: Path | None, as_json: bool, stream: bool, chunk_size: int) -> None:
    """Fit a mixture of regressions of column Y on the other columns of DATA.

    The design is --columns (default: every column but Y, --weight and
    --concomitant). With a range of K, each is fitted and the best by
    --criterion kept (the table is printed). --concomitant makes the mixing
    weights a multinomial logistic gate on those columns.
    """
    import numpy as np

    from emkit.data._io_tables import read_frame, to_numbers
    from emkit.estimators.regression_mixture import RegressionMixture
    from emkit.estimators.selection import select_regression_model

    ks = _component_range(components_text)
    _check_output(out, "--out")
    gate = _columns(concomitant) or []
    options = {"family": family, "fit_intercept": not no_intercept, "max_iter": max_iter,
               "tol": tol, "n_init": n_init, "random_state": seed, "algorithm": algorithm,
               "accelerate": accelerate, "gating": "logistic" if gate else "constant"}
    if stream:
        if len(ks) > 1:
            raise click.UsageError("a streamed fit takes one K (-k 3)")
        source = _open_source(data, chunk_size, None, None, sep, decimal)
        design = _regression_columns(source.columns, y, weight, gate, _columns(columns),
                                     _columns(exclude), data)
        source = _open_source(data, chunk_size, ",".join([*design, y, *gate] + (
            [weight] if weight else [])), None, sep, decimal)
        model = RegressionMixture(ks[0], chunk_size=chunk_size, **options).fit(
            source, y, sample_weight=weight, concomitant=gate or None)
        saved = _save_plain(model, out)
        _regression_report(model, None, as_json, {})
        _say_saved(saved, as_json)
        return
    frame = read_frame(data, sep, decimal)
    design = _regression_columns(list(frame.columns), y, weight, gate, _columns(columns),
                                 _columns(exclude), data)
    X = _named(to_numbers(frame[design], data), design)
    response = to_numbers(frame[[y]], data)[:, 0]
    Z = to_numbers(frame[gate], data) if gate else None
    w = to_numbers(frame[[weight]], data)[:, 0] if weight else None
    table = None
    if len(ks) == 1:
        model = RegressionMixture(ks[0], **options).fit(X, response, sample_weight=w,
                                                         concomitant=Z)
    else:
        if w is not None:
            raise click.UsageError("--weight takes one K (-k 3): the criteria are unweighted")
        result = select_regression_model(X, response, ks, criterion=criterion, concomitant=Z,
                                         **options)
        model, table = result.best_estimator, result.table
    saved = _save_plain(model, out)
    observed = ~np.isnan(response)  # the criteria leave out rows with a missing y, as the fit
    Zo = None if Z is None else Z[observed]
    Xo, yo = X[observed], response[observed]
    fit = {"n_samples": int(observed.sum()),
           "log_likelihood": float(model.score_samples(Xo, yo, Zo).sum()),
           "bic": model.bic(Xo, yo, Zo), "aic": model.aic(Xo, yo, Zo),
           "icl": model.icl(Xo, yo, Zo)}
    _regression_report(model, table, as_json, fit)
    _say_saved(saved, as_json)


def _save_plain(model: Any, out: Path | None) -> Path | None:
    from emkit import io as model_io

    return None if out is None else model_io.save(model, out)


@regmix.command("predict")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-y", "--response", "y",
              help="The response column: adds each row's most probable component.")
@click.option("--concomitant", help="Comma-separated gating columns (as in the fit).")
@click.option("--proba", is_flag=True, help="Membership probabilities too (needs -y).")
@click.option("--sep", help="CSV field separator (detected when not given).")
@click.option("--decimal", type=click.Choice([".", ","]), help="CSV decimal mark.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write CSV here instead of standard output.")
@_one_line_errors
def regmix_predict(model_path: Path, data: Path, y: str | None, concomitant: str | None,
                   proba: bool, sep: str | None, decimal: str | None, out: Path | None) -> None:
    """The mixture's mean response for the rows of DATA (column prediction, CSV).

    The model's design columns are taken from DATA by name. With -y, also
    each row's most probable component given its response (and with --proba
    the probabilities p0, p1, ...).
    """
    import numpy as np
    import pandas as pd

    from emkit import io as model_io
    from emkit.data._io_tables import DataFileError, read_frame, to_numbers
    from emkit.estimators.regression_mixture import RegressionMixture

    _check_output(out, "--out")
    if proba and y is None:
        raise click.UsageError("--proba needs the response column (-y)")
    model = model_io.load(model_path)
    if not isinstance(model, RegressionMixture):
        raise DataFileError(f"{model_path} holds a {type(model).__name__}, not a "
                            "RegressionMixture; use emkit predict")
    frame = read_frame(data, sep, decimal)
    names = [str(n) for n in getattr(model, "feature_names_in_", [])]
    gate = _columns(concomitant) or []
    missing = [n for n in [*names, *gate, *([y] if y else [])] if n not in frame.columns]
    if missing:
        raise DataFileError(f"{data} lacks the column(s) {', '.join(missing)}")
    if not names:  # a model fitted on unnamed arrays: every other column, by position
        names = [str(c) for c in frame.columns if str(c) not in {y, *gate}]
        if len(names) != model.n_features_in_:
            raise DataFileError(f"{data} has {len(names)} columns besides y and the gate's; "
                                f"the model takes {model.n_features_in_}")
    X = to_numbers(frame[names], data)
    Z = to_numbers(frame[gate], data) if gate else None
    result = pd.DataFrame({"prediction": model.predict(X, concomitant=Z)})
    if y is not None:
        response = to_numbers(frame[[y]], data)[:, 0]
        seen = ~np.isnan(response)  # rows without a response get no component
        probabilities = np.full((len(X), model.n_components), np.nan)
        probabilities[seen] = model.predict_proba(X[seen], response[seen],
                                                  None if Z is None else Z[seen])
        labels = pd.array(np.argmax(probabilities[seen], axis=1), dtype="Int64")
        result["component"] = pd.array([pd.NA] * len(X), dtype="Int64")
        result.loc[seen, "component"] = labels
        if proba:
            for k in range(probabilities.shape[1]):
                result[f"p{k}"] = probabilities[:, k]
    _write(result, out)


if __name__ == "__main__":
    main()
