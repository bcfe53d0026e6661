"""select_model against mclustBIC on a data file (e.g. mclust's wdbc, 30 features).

Run from the repository root::

    python -m benchmarks.bench_csv /tmp/wdbc30.csv --reg-covar 1e-10
    python -m benchmarks.bench_csv /tmp/wdbc30.csv --skip-mclust EVE,VVE

The file: comma-separated numbers, no header (for wdbc, R's
``write.table(mclust::wdbc[, -(1:2)], sep = ",", row.names = FALSE, col.names = FALSE)``).
Printed as by :mod:`benchmarks.bench_mclust` (one run each): CPU seconds of each, the
choices, and the candidates ending more than 0.1 BIC below (or above) mclust's fit of
them. ``--skip-mclust`` leaves models out of mclustBIC only (its EVE and VVE take many
minutes at 30 features). ``reg_covar`` is absolute: on raw features with variances near
its default (1e-6) the fits are floored where mclust's are not; give a smaller one.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from benchmarks.bench_mclust import R_SCRIPT, report_against_mclust, run_mclust
from emkit import select_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("--reg-covar", type=float, default=1e-6)
    parser.add_argument("--skip-mclust", default="", help="models left out of mclustBIC")
    args = parser.parse_args()
    X = np.loadtxt(args.path, delimiter=",", ndmin=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        select_model(X[:100], range(1, 3), "all")  # warm-up: loading the compiled loops
        cpu = time.process_time()
        result = select_model(X, range(1, 10), "all", reg_covar=args.reg_covar)
        cpu = time.process_time() - cpu
    best = result.best_estimator
    print(f"{args.path} ({X.shape[0]} x {X.shape[1]}), reg_covar={args.reg_covar:g}: emkit "
          f"{cpu:.2f} s CPU, chose {best.covariance_type},{best.n_components} "
          f"BIC {-best.bic(X):.2f}")
    skipped = [name for name in args.skip_mclust.split(",") if name]
    if skipped:
        names = ", ".join(f"'{name}'" for name in skipped)
        models = f"setdiff(mclust.options('emModelNames'), c({names}))"
        script = R_SCRIPT.replace("mclustBIC(X, G = 1:9)",
                                  f"mclustBIC(X, G = 1:9, modelNames = {models})")
    else:
        script = None
    mclust = run_mclust(X, 1, script=script)
    if mclust is None:
        print("  mclust: Rscript or mclust not found")
        return
    print(f"  mclust (without {skipped or 'none'}): {mclust['cpu']:.2f} s CPU, chose "
          f"{mclust['best_model']},{mclust['best_G']} BIC {mclust['best_bic']:.2f}")
    report_against_mclust(result, mclust, X)


if __name__ == "__main__":
    main()
