"""common.distributed on a single process (no torchrun)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from common import distributed
from common.distributed import DistInfo, all_reduce_mean, cleanup, unwrap_all, unwrap_ddp, wrap
# (distributed.setup, not a bare `setup`: pytest < 8 would run a module-level setup() as a nose fixture)


def test_unwrap_all_reaches_the_plain_module_unwrap_ddp_keeps_compile():
    m = nn.Linear(2, 2)
    compiled = torch.compile(m)
    assert compiled is not m
    assert unwrap_all(compiled) is m and unwrap_all(m) is m
    assert unwrap_ddp(compiled) is compiled  # a training pass through it stays compiled
    assert unwrap_ddp(m) is m


def test_unwrap_ddp_removes_only_ddp(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        m = nn.Linear(2, 2)
        compiled = torch.compile(m)
        ddp = nn.parallel.DistributedDataParallel(compiled)
        assert unwrap_ddp(ddp) is compiled
        assert unwrap_all(ddp) is m
    finally:
        dist.destroy_process_group()


@pytest.fixture
def single_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def test_setup_without_torchrun(single_process):
    info = distributed.setup("cpu")
    assert (info.rank, info.world_size, info.local_rank) == (0, 1, 0)
    assert info.device == torch.device("cpu")
    assert info.is_main and not info.enabled
    assert not torch.distributed.is_initialized()
    m = nn.Linear(2, 2)
    assert wrap(m, info) is m
    t = torch.tensor([1.0, 3.0])
    out = all_reduce_mean(t, info)
    assert torch.equal(out, torch.tensor([1.0, 3.0]))
    cleanup()  # no process group: nothing to do


def test_dist_info_properties():
    info = DistInfo(rank=1, world_size=2, local_rank=1, device=torch.device("cpu"))
    assert not info.is_main and info.enabled
