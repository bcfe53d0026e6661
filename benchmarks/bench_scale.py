"""Scaling benchmark: Dask on a LocalCluster vs in memory, and an out-of-core file fit.

Run as ``python -m benchmarks.bench_scale`` (options: ``--help``). Measures, in one run
on this machine:

1. time per EM iteration of the same fit (same data, same starting parameters) in
   memory and as a dask array persisted on a ``LocalCluster`` of 2 worker processes,
   for each ``--rows``; the ratio is the per-iteration overhead of Dask;
2. an out-of-core fit of a ``.npy`` file of ``--file-gb`` GB streamed in chunks, in a
   fresh process: rows per second per pass and peak resident memory. The file is
   deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from emkit import GaussianMixture

N_FEATURES, N_COMPONENTS, ITERATIONS = 8, 4, 10


def _block(block_id: tuple[int, int], rows: int) -> np.ndarray:
    """Rows of a 4-blob mixture, seeded by the block so every run makes the same data."""
    rng = np.random.default_rng([12345, block_id[0]])
    centres = np.random.default_rng(7).normal(scale=5.0, size=(N_COMPONENTS, N_FEATURES))
    return centres[rng.integers(N_COMPONENTS, size=rows)] + rng.normal(size=(rows, N_FEATURES))


def _start(X: np.ndarray) -> dict:
    """Starting parameters from a short fit on the first rows, shared by both drivers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GaussianMixture(N_COMPONENTS, max_iter=3, random_state=0).fit(X[:20_000])
    return {"weights_init": ref.weights_, "means_init": ref.means_,
            "precisions_init": ref.precisions_}


def _timed_fit(X, start: dict, repeats: int = 2) -> tuple[float, GaussianMixture]:
    """Seconds per iteration, from the iterations' own timestamps (setup excluded).

    The best of ``repeats`` fits: the machine is shared, so take the quietest.
    """
    stamps: list[float] = []
    model = GaussianMixture(N_COMPONENTS, tol=0, max_iter=ITERATIONS,
                            callback=lambda *_: stamps.append(time.perf_counter()), **start)
    best = np.inf
    for _ in range(repeats):
        stamps.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
        best = min(best, (stamps[-1] - stamps[0]) / (len(stamps) - 1))
    return best, model


def bench_dask(rows: int, client) -> dict:
    import dask.array as da

    block_rows = 250_000
    chunks = (tuple(min(block_rows, rows - s) for s in range(0, rows, block_rows)), (N_FEATURES,))
    lazy = da.concatenate([
        da.from_delayed(_delayed_block(i, n), shape=(n, N_FEATURES), dtype=float)
        for i, n in enumerate(chunks[0])
    ])
    X_dask = client.persist(lazy)
    X = X_dask.compute()
    start = _start(X)
    memory_s, memory = _timed_fit(X, start)
    dask_s, distributed_fit = _timed_fit(X_dask, start)
    del X
    client.cancel(X_dask)
    return {"rows": rows, "blocks": len(chunks[0]), "memory_s_per_iter": memory_s,
            "dask_s_per_iter": dask_s, "ratio": dask_s / memory_s,
            "max_abs_diff_means": float(np.abs(memory.means_ - distributed_fit.means_).max())}


def _delayed_block(index: int, rows: int):
    import dask

    return dask.delayed(_block)((index, 0), rows)


STREAM_PROBE = """
import json, sys, time, warnings
from emkit import GaussianMixture, sources

def status(field):
    # Linux: this process's own figures (ru_maxrss would include the parent's).
    with open("/proc/self/status") as handle:
        return next(int(l.split()[1]) / 1024 for l in handle if l.startswith(field))

source = sources.open(sys.argv[1], chunk_size=65536)
before = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # reset the peak to the current resident size
began = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = GaussianMixture(int(sys.argv[2]), tol=0, max_iter=int(sys.argv[3]),
                            random_state=0).fit(source)
elapsed = time.perf_counter() - began
print(json.dumps({"seconds": elapsed, "n_iter": model.n_iter_, "rss_before_fit_mb": before,
                  "peak_rss_mb": status("VmHWM:")}))
"""


def bench_out_of_core(gigabytes: float, folder: Path, iterations: int = 3) -> dict:
    rows = int(gigabytes * 1e9 / (8 * N_FEATURES))
    path = folder / "bench_scale_rows.npy"
    needed = rows * N_FEATURES * 8 * 1.1
    if shutil.disk_usage(folder).free < needed:
        raise SystemExit(f"not enough free disk in {folder} for {needed / 1e9:.1f} GB")
    try:
        with open(path, "wb") as handle:
            np.lib.format.write_array_header_1_0(
                handle, {"descr": "<f8", "fortran_order": False, "shape": (rows, N_FEATURES)})
            for index, start in enumerate(range(0, rows, 1_000_000)):
                _block((index, 0), min(1_000_000, rows - start)).tofile(handle)
        run = subprocess.run(
            [sys.executable, "-c", STREAM_PROBE, str(path), str(N_COMPONENTS), str(iterations)],
            capture_output=True, text=True, check=True,
        )
    finally:
        path.unlink(missing_ok=True)
    probe = json.loads(run.stdout.strip().splitlines()[-1])
    # One initialisation pass (the row sample) plus one pass per iteration.
    passes = probe["n_iter"] + 1
    return {"file_gb": rows * N_FEATURES * 8 / 1e9, "rows": rows, "passes": passes,
            "seconds": probe["seconds"], "rows_per_s": rows * passes / probe["seconds"],
            "rss_before_fit_mb": probe["rss_before_fit_mb"],
            "peak_rss_mb": probe["peak_rss_mb"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000],
                        help="sizes for the Dask vs in-memory comparison")
    parser.add_argument("--file-gb", type=float, default=1.5,
                        help="size of the out-of-core file (0 skips)")
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    print(f"{N_FEATURES} features, {N_COMPONENTS} components, full covariance, "
          f"{ITERATIONS} iterations; {os.cpu_count()} cores")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        for rows in args.rows:
            print(json.dumps(bench_dask(rows, client)), flush=True)
    if args.file_gb > 0:
        print(json.dumps(bench_out_of_core(args.file_gb, args.tmp)), flush=True)


if __name__ == "__main__":
    main()
