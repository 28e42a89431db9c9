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
