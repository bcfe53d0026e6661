"""Chunks on threads, BLAS on one thread each.

numpy releases the GIL in its array loops and BLAS calls, so chunks of rows
processed on a few Python threads use the cores in parallel. BLAS is limited
to one thread meanwhile: many single-threaded products on separate chunks keep
the cores busier than multi-threaded ones on small matrices, and avoid
oversubscription.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

from threadpoolctl import ThreadpoolController

_LOCK = threading.Lock()
_POOLS: dict[int, ThreadPoolExecutor] = {}
_CONTROLLER: list[ThreadpoolController] = []


def _forget_pools_after_fork() -> None:
    """In a fork-started child: drop the parent's pools and lock.

    A forked process has only the thread that forked; the pools' worker
    threads stay behind in the parent, so a task submitted to an inherited
    pool would wait forever (a fit in a ``multiprocessing`` fork worker, a
    gunicorn ``--preload`` or Celery prefork worker). The lock is replaced too,
    in case another thread of the parent held it at the fork. The child builds
    fresh pools on first use.
    """
    global _LOCK
    _LOCK = threading.Lock()
    _POOLS.clear()


if hasattr(os, "register_at_fork"):  # POSIX only; spawn-started children import afresh
    os.register_at_fork(after_in_child=_forget_pools_after_fork)


def map_ordered(
    func: Callable[[Any], Any], items: Iterable[Any], n_threads: int | None = None
) -> Iterator[Any]:
    """``map(func, items)`` over a thread pool, results in input order.

    The order of the results never depends on the threads' timing, so sums
    taken over them are reproducible. At most ``2 * n_threads`` items are in
    flight, so a source that reads its chunks lazily (a file, a stream) is
    not pulled into memory at once. While threads run, BLAS is limited to
    one thread (restored when the iteration ends or the generator is closed).

    Parameters
    ----------
    func : callable applied to each item.
    items : iterable of items (row chunks).
    n_threads : int, optional
        Default: :func:`default_threads`. With 1, or when ``items`` holds a
        single item, runs in the calling thread.
    """
    items = iter(items)
    head = list(itertools.islice(items, 2))
    if len(head) < 2:
        # One chunk (small data): the thread handoff would cost more than the chunk
        # (and asking the BLAS libraries for their thread limit costs 0.1 ms).
        yield from map(func, head)
        return
    n_threads = default_threads() if n_threads is None else n_threads
    if n_threads <= 1:
        yield from map(func, itertools.chain(head, items))
        return
    pool = _pool(n_threads)
    pending: deque = deque()
    with single_threaded_blas():
        for item in itertools.chain(head, items):
            pending.append(pool.submit(func, item))
            if len(pending) >= 2 * n_threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def single_threaded_blas() -> AbstractContextManager:
    """Context in which every loaded BLAS runs one thread (about 10 us to enter)."""
    return _controller().limit(limits=1, user_api="blas")


def default_threads() -> int:
    """Threads for chunk loops: the BLAS thread limit in force, at most the usable CPUs.

    Taking the BLAS limit respects what the user set (``OMP_NUM_THREADS``,
    ``threadpool_limits``): with BLAS limited to one thread, chunks run in
    the calling thread.
    """
    limits = [lib.num_threads for lib in _controller().select(user_api="blas").lib_controllers]
    n_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n_cpus = n_cpus or 1
    return max(1, min(min(limits, default=n_cpus), n_cpus))


def _pool(n_threads: int) -> ThreadPoolExecutor:
    # Pools live as long as the process: starting threads on every iteration
    # would cost more than a small E-step.
    with _LOCK:
        if n_threads not in _POOLS:
            _POOLS[n_threads] = ThreadPoolExecutor(n_threads, thread_name_prefix="emkit")
        return _POOLS[n_threads]


def _controller() -> ThreadpoolController:
    # Built once, lazily (after numpy and scipy have loaded their BLAS):
    # scanning the loaded libraries costs about a millisecond.
    with _LOCK:
        if not _CONTROLLER:
            _CONTROLLER.append(ThreadpoolController())
        return _CONTROLLER[0]
