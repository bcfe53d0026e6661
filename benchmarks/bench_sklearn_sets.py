"""select_model against mclustBIC on data nobody here wrote: scikit-learn's bundled sets.

Run from the repository root::

    python -m benchmarks.bench_sklearn_sets                 # every set
    python -m benchmarks.bench_sklearn_sets --data wine,iris_int
    python -m benchmarks.bench_sklearn_sets --list

For each set: ``select_model(X, range(1, 10), "all")`` with its defaults, timed in CPU
seconds (after a warm-up), and ``mclustBIC(X, G = 1:9)`` in one R process (CPU seconds
inside R); printed as by :mod:`benchmarks.bench_mclust`: both choices with their BIC
(mclust's sign) and the candidates ending more than 0.1 BIC below mclust's fit of them.
The sets: wine (raw and standardised), breast cancer (standardised; mclust without EVE
and VVE, which take many minutes at 30 features), scikit-learn's diabetes, linnerud,
iris subsets, digits on its first 2-5 principal components, and iris with odd columns
(integer-valued, constant, duplicated, offset by 1e6, scaled by 1e-6, 15 rows, one feature).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from benchmarks.bench_mclust import R_SCRIPT, report_against_mclust, run_mclust
from emkit import select_model


def _standardise(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(axis=0)) / X.std(axis=0)


def data_sets() -> dict[str, np.ndarray]:
    """Name -> rows, built from scikit-learn's bundled files (no download)."""
    from sklearn import datasets
    from sklearn.decomposition import PCA

    iris = datasets.load_iris().data
    wine = datasets.load_wine().data
    digits = datasets.load_digits().data
    linnerud = datasets.load_linnerud()
    sets = {
        "wine": wine,
        "wine_std": _standardise(wine),
        "cancer_std": _standardise(datasets.load_breast_cancer().data),
        "diabetes_sk": datasets.load_diabetes().data,
        "linnerud": np.column_stack([linnerud.data, linnerud.target]),
        "iris_2cols": iris[:, :2],
        "iris_2species": iris[:100],
        "iris_petals": iris[:, 2:],
    }
    for d in range(2, 6):
        sets[f"digits_pc{d}"] = PCA(d, random_state=0).fit_transform(digits)
    sets.update({
        "iris_int": np.column_stack([iris[:, :3], np.round(iris[:, 3] * 10)]),
        "iris_const": np.column_stack([iris, np.full(len(iris), 3.0)]),
        "iris_dup": np.column_stack([iris, iris[:, 0]]),
        "iris_offset": iris + np.array([1e6, 0, 0, 0]),
        "iris_scaled": iris * np.array([1e-6, 1, 1, 1]),
        "iris_15rows": iris[::10],
        "iris_1feature": iris[:, 2:3],
    })
    return sets


# mclust's EVE and VVE take many minutes at 30 features.
SKIP_MCLUST = {"cancer_std": ["EVE", "VVE"],
               # mclust 6.0.0 stops there: "svd(shape.o): infinite or missing values"
               "diabetes_sk": ["VEE"]}


def noise_rows(X: np.ndarray, share: float = 0.05) -> np.ndarray:
    """The ``share`` of rows farthest from the mean (Mahalanobis): both sides' noise start."""
    centred = X - X.mean(axis=0)
    distances = np.einsum("ij,ij->i", centred @ np.linalg.pinv(np.cov(X.T, bias=True).reshape(
        X.shape[1], X.shape[1])), centred)
    return distances >= np.quantile(distances, 1 - share)


def compare(name: str, X: np.ndarray, prior: bool = False, noise: bool = False,
            **params) -> None:
    if prior:
        params["prior"] = "default"
    if noise:
        params.update(noise=True, noise_init=noise_rows(X))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cpu = time.process_time()
        try:
            result = select_model(X, range(1, 10), "all", **params)
        except Exception as error:  # a crash is a finding: print it and go on
            print(f"{name} ({X.shape[0]} x {X.shape[1]}): emkit raised "
                  f"{type(error).__name__}: {error}")
            return
        cpu = time.process_time() - cpu
    best = result.best_estimator
    shown = {key: value for key, value in params.items() if key != "noise_init"}
    print(f"{name} ({X.shape[0]} x {X.shape[1]}) {shown or ''}: emkit {cpu:.2f} s CPU, chose "
          f"{best.covariance_type},{best.n_components} BIC {-best.bic(X):.2f}; "
          f"degenerate {int(result.table['degenerate'].sum())}, "
          f"skipped {int(result.table['skipped'].sum())}")
    messages = sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught})
    for message in messages[:6]:
        print(f"  warning: {message}")
    skipped = SKIP_MCLUST.get(name, [])
    arguments = ""
    if skipped:
        names = ", ".join(f"'{model}'" for model in skipped)
        arguments += f", modelNames = setdiff(mclust.options('emModelNames'), c({names}))"
    if prior:  # mclust's default conjugate prior, as emkit's prior="default"
        arguments += ", prior = priorControl()"
    if noise:  # the same rows start as noise on both sides
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(params["noise_init"]))
        arguments += f", initialization = list(noise = seq_len(nrow(X)) %%in%% c({rows}))"
    script = R_SCRIPT.replace("mclustBIC(X, G = 1:9)", f"mclustBIC(X, G = 1:9{arguments})")
    mclust = run_mclust(X, 1, script=script)
    if mclust is None:
        print("  mclust: no result")
        return
    # With a constant column mclust's summary gives model "XXX" and a BIC per model.
    best_bic = np.max(mclust["best_bic"])
    print(f"  mclust (without {skipped or 'none'}): {mclust['cpu']:.2f} s CPU, chose "
          f"{mclust['best_model']},{mclust['best_G']} BIC {best_bic:.2f}")
    report_against_mclust(result, mclust, X, "default" if prior else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="all", help="comma-separated names, or 'all'")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--prior", action="store_true",
                        help="prior='default' here, prior = priorControl() in mclust")
    parser.add_argument("--noise", action="store_true",
                        help="noise=True, both started from the 5%% of rows farthest out")
    parser.add_argument("--reg-covar", type=float, default=None,
                        help="select_model's reg_covar (default: its own, 1e-6)")
    args = parser.parse_args()
    sets = data_sets()
    if args.list:
        print(" ".join(sets))
        return
    names = list(sets) if args.data == "all" else args.data.split(",")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        select_model(sets["iris_2cols"][:60], range(1, 3), "all")  # warm-up (compiled loops)
    for name in names:
        extra = {} if args.reg_covar is None else {"reg_covar": args.reg_covar}
        compare(name, sets[name], prior=args.prior, noise=args.noise, **extra)


if __name__ == "__main__":
    main()
