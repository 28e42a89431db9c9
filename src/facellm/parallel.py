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


def idle_cores() -> int:
    """Cores this process may use that other work is not already keeping busy (the 1-minute load average taken
    off), at least 1. torch's threads spin-wait for each other: on 2 cores with one kept busy by another program,
    the demo's two-thread training took 58.7 s against 35.8 s on one thread (docs/benchmarks.md)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(usable, round(usable - load + 0.49)))


def torch_threads_for_idle_cores() -> int:
    """Run torch in this process on `idle_cores()` threads (unless OMP_NUM_THREADS says otherwise); the count."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(idle_cores())
    return torch.get_num_threads()


def _one_thread() -> None:
    """Worker start: torch (and the OpenMP/MKL under it) on one thread, without importing torch where the work
    never needs it (it is read from the environment when torch loads)."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
