"""One function over many inputs, spread over the CPU cores."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence


def map_over_cores(function: Callable, jobs: Sequence, workers: int = 0, chunksize: int = 8) -> list:
    """`[function(job) for job in jobs]` in `workers` spawned processes (0: one per core); in this process when
    there is one worker or one job. `function` must be defined at a module's top level so the workers can import it."""
    processes = min(workers or os.cpu_count() or 1, len(jobs))
    if processes <= 1:
        return [function(job) for job in jobs]
    from multiprocessing import get_context

    with get_context("spawn").Pool(processes) as pool:
        return pool.map(function, jobs, chunksize=chunksize)
