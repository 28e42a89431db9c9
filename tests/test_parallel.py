"""Work spread over the cores: each worker process runs torch on one thread, so two workers do not compete."""

from __future__ import annotations

import pytest

from facellm.parallel import map_over_cores


def torch_threads(_job: int) -> int:
    import torch

    return torch.get_num_threads()


@pytest.mark.slow
def test_each_worker_runs_torch_on_one_thread():
    assert map_over_cores(torch_threads, [0, 1, 2, 3], workers=2, chunksize=1) == [1, 1, 1, 1]


def test_idle_cores_leave_out_what_other_work_keeps_busy(monkeypatch):
    from facellm import parallel

    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    for load, idle in ((0.0, 2), (0.4, 2), (1.0, 1), (1.7, 1), (6.0, 1)):
        monkeypatch.setattr(parallel.os, "getloadavg", lambda load=load: (load, load, load))
        assert parallel.idle_cores() == idle, load
