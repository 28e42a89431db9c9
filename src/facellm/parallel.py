"""One function over many inputs, spread over the CPU cores."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor


def map_over_cores(
    function: Callable, jobs: Sequence, workers: int = 0, chunksize: int = 8, on_result: Callable | None = None
) -> list:
    """`[function(job) for job in jobs]` in `workers` spawned processes (0: one per core); in this process when
    there is one worker or one job. `function` must be defined at a module's top level so the workers can import it.
    `on_result()` is called as each result arrives (for a progress bar). Each worker runs torch on one thread."""
    processes = min(workers or os.cpu_count() or 1, len(jobs))
    if processes <= 1:
        return [_noted(function(job), on_result) for job in jobs]
    from multiprocessing import get_context

    with get_context("spawn").Pool(processes, initializer=_one_thread) as pool:
        return [_noted(result, on_result) for result in pool.imap(function, jobs, chunksize=chunksize)]


def _noted(result, on_result: Callable | None):
    if on_result:
        on_result()
    return result


_POOLS: dict[int, ProcessPoolExecutor] = {}


def worker_pool(workers: int = 0) -> ProcessPoolExecutor:
    """A process pool that lives as long as this process (spawned once: the workers keep their loaded models),
    one process per core by default; each worker runs torch on one thread so the workers do not compete."""
    from multiprocessing import get_context

    count = workers or os.cpu_count() or 1
    if count not in _POOLS:
        _POOLS[count] = ProcessPoolExecutor(count, get_context("spawn"), initializer=_one_thread)
    return _POOLS[count]


def running_pool() -> ProcessPoolExecutor | None:
    """A worker pool this process already started (never one inside a worker), or None."""
    from multiprocessing import parent_process

    return next(iter(_POOLS.values()), None) if parent_process() is None else None


def _one_thread() -> None:
    """Worker start: torch (and the OpenMP/MKL under it) on one thread, without importing torch where the work
    never needs it (it is read from the environment when torch loads)."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
