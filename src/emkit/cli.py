"""The ``emkit`` command: fit mixtures to files, use saved models, and watch EM work.

Exit codes: 0 success; 1 bad input (missing or unreadable file, non-numeric
cell, bad parameter, corrupt model), reported as one line without a traceback;
2 bad usage (unknown option, missing argument), reported by click.
"""

from __future__ import annotations

import functools
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
from tqdm import tqdm

from emkit import io as model_io
from emkit import sources
from emkit._io_tables import read_table, write_csv
from emkit.families.covariance import COVARIANCE_STRUCTURES
from emkit.gaussian_mixture import GaussianMixture
from emkit.selection import CRITERIA, select_model
from emkit.variants import ALGORITHMS

COVARIANCE_CHOICES = [*sorted(COVARIANCE_STRUCTURES), "all"]
# Files larger than this are streamed in chunks by `emkit fit` rather than loaded.
STREAM_THRESHOLD = 2**30


def _one_line_errors(command: Callable) -> Callable:
    """Turn input errors into one clear line (click prints ``Error: ...``, exit code 1)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ValueError, TypeError, FileNotFoundError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def _component_range(text: str) -> list[int]:
    """``"3"`` -> [3]; ``"1-6"`` -> [1, ..., 6]."""
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise click.BadParameter(f"expected K or A-B (e.g. 3 or 1-6), got {text!r}") from None
    if not 1 <= first <= last:
        raise click.BadParameter(f"expected 1 <= A <= B, got {text!r}")
    return list(range(first, last + 1))


def _columns(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def _array_text(array: Any) -> str:
    return np.array2string(np.asarray(array), precision=4, suppress_small=True)


def describe(model: Any) -> dict[str, Any]:
    """A JSON-ready summary of a fitted model (GaussianMixture or MixtureModel)."""
    summary: dict[str, Any] = {
        "class": type(model).__name__,
        "n_components": len(model.weights_),
        "n_features": int(model.n_features_in_),
        "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "average_log_likelihood": float(model.lower_bound_),
        "weights": np.asarray(model.weights_, dtype=float).tolist(),
    }
    if isinstance(model, GaussianMixture):
        summary["covariance_type"] = model.covariance_type
        summary["means"] = model.means_.astype(float).tolist()
        summary["covariances"] = np.asarray(model.covariances_, dtype=float).tolist()
    else:
        from emkit.distributions import to_spec

        summary["components"] = [to_spec(d) for d in model.components_]
    return summary


def _summary_text(summary: dict[str, Any], names: list[str] | None = None) -> str:
    head = f"{summary['class']}: {summary['n_components']} components"
    if "covariance_type" in summary:
        head += f", {summary['covariance_type']} covariance"
    lines = [
        head,
        f"iterations: {summary['n_iter']}, converged: {summary['converged']}, "
        f"average log-likelihood: {summary['average_log_likelihood']:.6f}",
    ]
    if names:
        lines.append(f"columns: {', '.join(names)}")
    for k, weight in enumerate(summary["weights"]):
        lines.append(f"component {k}: weight {weight:.4f}")
        if "means" in summary:
            lines.append(f"  mean {_array_text(summary['means'][k])}")
            cov = summary["covariances"]
            cov = cov if summary["covariance_type"] == "tied" else cov[k]
            lines.append("  covariance " + _array_text(cov).replace("\n", "\n             "))
        else:
            lines.append(f"  {json.dumps(summary['components'][k])}")
    return "\n".join(lines)


class _Progress:
    """A progress bar over EM iterations on stderr; silent for fits that finish quickly."""

    def __init__(self, quiet: bool, total: int | None, description: str) -> None:
        self.bar = tqdm(total=total, desc=description, unit="it", disable=quiet, delay=0.5,
                        file=sys.stderr, leave=False)

    def callback(self, iteration: int, lower_bound: float, change: float, model: Any) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loglik=f"{lower_bound:.4f}", refresh=False)

    def close(self) -> None:
        self.bar.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="emkit")
def main() -> None:
    """emkit: Expectation-Maximization for mixtures, fast and easy to watch.

    Exit codes: 0 success, 1 bad input (one line on stderr), 2 bad usage.
    """


def _fit_one(X, k, covariance, options, progress) -> GaussianMixture:
    return GaussianMixture(
        n_components=k, covariance_type=covariance, callback=progress.callback, **options
    ).fit(X)


def _named(X: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Rows with their column names, so a saved model remembers what it was fitted on."""
    return pd.DataFrame(X, columns=names)


def _model_input(model: Any, X: np.ndarray, names: list[str]) -> Any:
    """Named rows when they match the model's columns; plain rows otherwise (by position)."""
    expected = getattr(model, "feature_names_in_", None)
    if expected is not None and [str(n) for n in expected] == names:
        return _named(X, names)
    return X


@main.command()
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--components", "components_text", default="1-9", show_default=True,
              help="Number of components K, or a range A-B to choose from.")
@click.option("--covariance", type=click.Choice(COVARIANCE_CHOICES), default="full",
              show_default=True, help="Covariance structure, or 'all' to choose among them.")
@click.option("--criterion", type=click.Choice(CRITERIA), default="bic", show_default=True,
              help="How to choose when several models are candidates (lower is better).")
@click.option("--columns", help="Comma-separated column names or 0-based indices to use.")
@click.option("--max-iter", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--tol", type=click.FloatRange(min=0), default=1e-3, show_default=True)
@click.option("--n-init", type=click.IntRange(min=1), default=1, show_default=True,
              help="Restarts per model; the best is kept.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default="em", show_default=True,
              help="Soft EM, hard (classification) EM, or stochastic EM.")
@click.option("--accelerate", is_flag=True,
              help="SQUAREM extrapolation: fewer passes when clusters overlap.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the fitted model here (.npz, plain data).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a picture of the fit (PNG).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--stream", is_flag=True,
              help="Stream DATA in row chunks instead of loading it (automatic for files "
                   "over 1 GiB): one K and one covariance type, no --plot.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=65536, show_default=True,
              help="Rows per chunk when streaming.")
@_one_line_errors
def fit(data: Path, components_text: str, covariance: str, criterion: str, columns: str | None,
        max_iter: int, tol: float, n_init: int, seed: int, algorithm: str, accelerate: bool,
        out: Path | None, plot_path: Path | None, as_json: bool, quiet: bool, stream: bool,
        chunk_size: int) -> None:
    """Fit a Gaussian mixture to DATA (CSV with or without header, Parquet, or .npy).

    With one K and one covariance type the model is fitted directly; with a range
    or --covariance all, every candidate is fitted and the best by --criterion is
    kept (degenerate fits, collapsed onto repeated values, are never chosen).
    Files over 1 GiB (or with --stream) are streamed in chunks, never loaded whole.
    """
    options = {"max_iter": max_iter, "tol": tol, "n_init": n_init, "random_state": seed,
               "algorithm": algorithm, "accelerate": accelerate}
    if stream or (data.is_file() and data.stat().st_size > STREAM_THRESHOLD):
        source = sources.open(data, chunk_size=chunk_size, columns=_columns(columns))
        model = _fit_streamed(source, components_text, covariance, plot_path, options, quiet)
        _report_fit(model, None, source.columns, as_json)
        _save(model, out, as_json)
        return
    X, names = read_table(data, _columns(columns))
    X = _named(X, names)
    ks = _component_range(components_text)
    types = sorted(COVARIANCE_STRUCTURES) if covariance == "all" else [covariance]
    candidates = len(ks) * len(types)
    progress = _Progress(quiet, candidates * n_init * max_iter if candidates > 1 else None,
                         "EM iterations")
    try:
        if candidates == 1:
            model, table = _fit_one(X, ks[0], types[0], options, progress), None
        else:
            result = select_model(X, ks, types, criterion=criterion,
                                  callback=progress.callback, **options)
            model, table = result.best_estimator, result.table
    finally:
        progress.close()
    _report_fit(model, table, names, as_json)
    if plot_path is not None:
        _plot_fit(X, model, table, criterion, names, plot_path)
        if not as_json:
            click.echo(f"picture written to {plot_path}")
    _save(model, out, as_json)


def _save(model: GaussianMixture, out: Path | None, as_json: bool) -> None:
    if out is not None:
        path = model_io.save(model.set_params(callback=None), out)
        if not as_json:
            click.echo(f"model saved to {path}")


def _fit_streamed(source, components_text: str, covariance: str, plot_path: Path | None,
                  options: dict, quiet: bool) -> GaussianMixture:
    """One model fitted from a file source (selection and pictures need the rows in memory)."""
    ks = _component_range(components_text)
    if len(ks) > 1 or covariance == "all" or plot_path is not None:
        raise click.UsageError(
            "a streamed fit takes one K (-k 3) and one --covariance type, and no --plot"
        )
    progress = _Progress(quiet, None, "EM iterations")
    try:
        return _fit_one(source, ks[0], covariance, options, progress)
    finally:
        progress.close()


def _report_fit(model, table, names, as_json: bool) -> None:
    summary = describe(model)
    if as_json:
        selection = None if table is None else json.loads(table.to_json(orient="records"))
        click.echo(json.dumps({"model": summary, "columns": names, "selection": selection},
                              indent=1))
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


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--proba", is_flag=True, help="Responsibilities instead of labels.")
@click.option("--columns", help="Comma-separated column names or 0-based indices to use.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write CSV here instead of standard output.")
@_one_line_errors
def predict(model_path: Path, data: Path, proba: bool, columns: str | None,
            out: Path | None) -> None:
    """Assign the rows of DATA to the components of a saved MODEL (CSV output)."""
    model = model_io.load(model_path)
    X, names = read_table(data, _columns(columns))
    X = _model_input(model, X, names)
    with warnings.catch_warnings():
        # Columns matched by position are the documented fallback, not a problem.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        if proba:
            values = model.predict_proba(X)
            header = [f"p{k}" for k in range(values.shape[1])]
        else:
            values, header = model.predict(X)[:, None], ["component"]
    text = write_csv(values, header, out)
    if text is not None:
        click.echo(text, nl=False)


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-n", "--n-samples", type=click.IntRange(min=1), required=True,
              help="Number of rows to draw.")
@click.option("--seed", type=int, default=None, help="Random seed (default: the model's).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write CSV here instead of standard output.")
@_one_line_errors
def sample(model_path: Path, n_samples: int, seed: int | None, out: Path | None) -> None:
    """Draw N_SAMPLES rows from a saved MODEL: the features, then the component."""
    model = model_io.load(model_path)
    if seed is not None:
        model.set_params(random_state=seed)
    X, y = model.sample(n_samples)
    X = np.asarray(X, dtype=float).reshape(n_samples, -1)
    names = [f"x{i}" for i in range(X.shape[1])]
    if hasattr(model, "feature_names_in_"):
        names = [str(n) for n in model.feature_names_in_]
    text = write_csv(np.column_stack([X, y]), [*names, "component"], out)
    if text is not None:
        click.echo(text, nl=False)


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@_one_line_errors
def info(model_path: Path, as_json: bool) -> None:
    """Describe a saved MODEL: its components, weights and fit."""
    summary = describe(model_io.load(model_path))
    click.echo(json.dumps(summary, indent=1) if as_json else _summary_text(summary))


@main.command()
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--components", type=click.IntRange(min=1), default=1, show_default=True,
              help="Mixture components of the model the gaps are filled from.")
@click.option("--covariance", type=click.Choice(sorted(COVARIANCE_STRUCTURES)),
              default="full", show_default=True)
@click.option("--columns", help="Comma-separated column names or 0-based indices to use.")
@click.option("--sample-posterior", is_flag=True,
              help="Draw each gap from its conditional distribution instead of its mean.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the filled CSV here instead of standard output.")
@_one_line_errors
def impute(data: Path, components: int, covariance: str, columns: str | None,
           sample_posterior: bool, seed: int, out: Path | None) -> None:
    """Fill the missing cells (empty, NA or NaN) of DATA from a Gaussian mixture fitted by EM."""
    from emkit.imputer import GaussianMixtureImputer

    X, names = read_table(data, _columns(columns))
    imputer = GaussianMixtureImputer(
        components, covariance_type=covariance, sample_posterior=sample_posterior,
        random_state=seed,
    )
    text = write_csv(imputer.fit_transform(X), names, out)
    if text is not None:
        click.echo(text, nl=False)
    else:
        filled = int(np.isnan(X).sum())
        click.echo(f"{filled} missing values filled; written to {out}", err=True)


@main.command()
@click.argument("name", type=click.Choice(["anemia", "coins", "faithful"]), default="anemia")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Folder for the pictures.")
@_one_line_errors
def demo(name: str, out_dir: Path) -> None:
    """Watch EM work on bundled data: anemia (default), coins or faithful.

    anemia and faithful print the iteration log and write the iteration grid
    (1, 3, 5, 10, 15, 25), the log-likelihood curve, the final fit and a GIF.
    coins prints the two-coin example's E-step tables, as in the slides.
    """
    if name == "coins":
        from emkit.demos import coins

        coins.run(echo=click.echo)
        return
    from emkit.demos import gaussian

    gaussian.run(name, out_dir, echo=click.echo)


if __name__ == "__main__":
    main()
