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


def test_cleanup_closes_the_group_and_ends_the_process_before_teardown(tmp_path):
    """After cleanup() a torchrun rank ends at the start of Python's exit, with what it printed
    flushed and status 0: a handler registered earlier (run later, atexit is last-in first-out)
    never runs, so neither does the teardown that once aborted a finished rank."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    marker = tmp_path / "teardown_ran"
    script = f"""
import atexit, os, pathlib
import torch.distributed as dist
from common.distributed import cleanup
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="0")
atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text("ran"))
dist.init_process_group("gloo", rank=0, world_size=1, init_method="tcp://127.0.0.1:0")
cleanup()
assert not dist.is_initialized()
print("finished", end="")  # no newline: only an explicit flush gets it out before os._exit
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "finished"
    assert not marker.exists()
