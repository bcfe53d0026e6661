"""The EM loop, written once for every model and every source of rows.

A model is any object with ``e_step(chunk) -> stats`` (additive statistics
with ``log_likelihood`` and ``n_samples`` fields) and ``m_step(stats) -> model``.
A source is any re-iterable of row chunks. In-memory, chunked, out-of-core
and distributed fitting differ only in the source and in how chunk statistics
are summed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emkit.core._parallel import map_ordered, single_threaded_blas

Callback = Callable[[int, float, float, Any], None]


@dataclass
class EMResult:
    """Outcome of one EM run.

    Attributes
    ----------
    model : the fitted model after the last M-step.
    history : list of float
        Average log-likelihood per sample computed in each iteration's E-step
        (that is, of the parameters going *into* that iteration).
    n_iter : int
        Iterations run (E-step + M-step pairs).
    converged : bool
        Whether the change in average log-likelihood fell below ``tol``.
    """

    model: Any
    history: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False

    @property
    def lower_bound(self) -> float:
        """The last average log-likelihood, ``-inf`` if no iteration ran."""
        return self.history[-1] if self.history else -np.inf


def expected_stats(model: Any, source: Iterable[np.ndarray], n_threads: int | None = None) -> Any:
    """E-step over every chunk of ``source``, statistics summed in chunk order.

    Chunks are spread over threads while BLAS runs one thread per chunk: many
    single-threaded products on separate chunks keep the cores busier than a
    few multi-threaded ones on small matrices. The sum is taken in chunk order
    whatever the threads' timing, so for given chunks the result does not
    depend on ``n_threads``. Other chunks (another ``chunk_size``, or the
    default chunking on another number of CPUs) add in another order: results
    then agree to rounding only.

    Parameters
    ----------
    model : object with ``e_step(chunk) -> stats``.
    source : re-iterable of row chunks.
    n_threads : int, optional
        Threads for the chunks. Default: as many as the BLAS library may use,
        at most the usable CPUs, so a user's ``threadpool_limits`` or
        ``OMP_NUM_THREADS`` is respected.

    Returns
    -------
    stats : the summed statistics.
    """
    total = _sum_in_order(map_ordered(model.e_step, source, n_threads))
    if total is None:
        raise ValueError("the data source yielded no rows")
    return total


def _sum_in_order(parts: Iterable[Any]) -> Any:
    total = None
    for stats in parts:
        total = stats if total is None else total + stats
    return total


def total_stats(model: Any, source: Iterable[np.ndarray]) -> Any:
    """Statistics of all rows: the source's own ``expected_stats(model)`` if it has one.

    A source that is not a local loop over chunks (a Dask array, whose blocks
    live on a cluster) brings its own way of summing; every other source is
    iterated by :func:`expected_stats`. Either way the EM loop stays one loop.
    """
    provider = getattr(source, "expected_stats", None)
    return provider(model) if provider is not None else expected_stats(model, source)


def run_em(
    model: Any,
    source: Iterable[np.ndarray],
    *,
    tol: float,
    max_iter: int,
    previous_lower_bound: float = -np.inf,
    callback: Callback | None = None,
    stop_when: Callable[[Any], bool] | None = None,
) -> EMResult:
    """Iterate E-step and M-step until the average log-likelihood settles.

    Converged means ``|L_t - L_{t-1}| < tol`` for the average log-likelihood
    per sample; with ``tol=0`` exactly ``max_iter`` iterations run.

    Parameters
    ----------
    model : initial model.
    source : re-iterable of row chunks, or any object with ``expected_stats(model)``.
    tol : float
        Convergence threshold on the change of the average log-likelihood.
    max_iter : int
        Maximum number of iterations.
    previous_lower_bound : float
        Average log-likelihood before the first iteration (for warm starts).
    callback : callable, optional
        Called as ``callback(iteration, avg_loglik, change, model)`` after
        each M-step.
    stop_when : callable, optional
        ``stop_when(model)`` after each M-step that did not converge: True ends
        the run there, unconverged (a model selection stops a fit whose
        component has collapsed, a spurious maximum it would not choose).
    """
    # The M-step is many tiny factorisations (D x D per component): a
    # multi-threaded BLAS only adds wake-up latency to them, badly so when the
    # cores are shared. The E-step's chunks run one BLAS thread each anyway
    # (map_ordered), so BLAS is limited once per run, not once per iteration.
    with single_threaded_blas():
        return _em_loop(model, source, tol, max_iter, previous_lower_bound, callback, stop_when)


def _em_loop(model: Any, source: Any, tol: float, max_iter: int, previous_lower_bound: float,
             callback: Callback | None, stop_when: Callable[[Any], bool] | None) -> EMResult:
    result = EMResult(model=model)
    lower_bound = previous_lower_bound
    for iteration in range(1, max_iter + 1):
        stats = total_stats(result.model, source)
        result.model = result.model.m_step(stats)
        previous, lower_bound = lower_bound, stats.log_likelihood / stats.n_samples
        result.history.append(lower_bound)
        result.n_iter = iteration
        change = lower_bound - previous
        if callback is not None:
            callback(iteration, lower_bound, change, result.model)
        if abs(change) < tol:
            result.converged = True
            break
        if stop_when is not None and stop_when(result.model):
            break
    return result
