"""torchrun / DistributedDataParallel, so one train.py runs on 1 or N processes.

`torchrun --nproc_per_node N -m dcgan.train ...` sets RANK / WORLD_SIZE /
LOCAL_RANK; without them everything here is a no-op for a single process.
Only rank 0 logs and writes files; checkpoints hold the unwrapped module.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from common.device import pick_device


@dataclass
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device_name: str = "auto") -> DistInfo:
    """Initialise the process group when launched by torchrun (nccl on CUDA, gloo otherwise)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name)
    if world_size > 1:
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world_size, local_rank, device)


def wrap(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """DistributedDataParallel when running under torchrun, else the model itself.

    broadcast_buffers=False: DDP's default copies rank 0's buffers (BatchNorm's running
    statistics) into every rank in place before each forward. A GAN calls D twice before one
    backward (real and fake batches apart, as DCGAN's batch statistics require), and torch 2.3
    saves the running statistics for batch norm's backward (2.14 does not), so there that copy
    made the backward fail ("modified by an inplace operation"). Nothing observable changes: training
    passes use batch statistics, and rank 0's buffers, the ones checkpoints hold, are its own
    either way; the other ranks keep their own running statistics."""
    if not info.enabled:
        return model
    ids = [info.device.index] if info.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


def unwrap_ddp(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel, still torch.compile'd with --compile:
    for the passes that must not sync gradients across ranks (a critic step's fakes,
    the generator step's pass through D), which should run compiled like the others."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


@contextlib.contextmanager
def frozen_outside_ddp(model: torch.nn.Module):
    """`with frozen_outside_ddp(D) as d:` two things for a generator step's pass through D:
    d is the module outside DDP (unwrap_ddp: no gradient sync for D, still compiled), and its
    requires_grad is off until the block ends, so G's gradients flow through D without
    accumulating in D's weights."""
    module = unwrap_ddp(model)
    module.requires_grad_(False)
    try:
        yield module
    finally:
        module.requires_grad_(True)


def unwrap_all(model: torch.nn.Module) -> torch.nn.Module:
    """The plain nn.Module inside DDP and torch.compile wrappers: for state dicts
    (checkpoints hold the plain module's keys) and parameter bookkeeping, never for a
    training pass (it would run uncompiled)."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a tensor over ranks (for logging losses); identity on one process."""
    if info.enabled:
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= info.world_size
    return value


def cleanup() -> None:
    """Close torchrun's process group once every rank has got here: rank 0 writes the last
    checkpoint and grid while the others wait, and with torch 2.3's gloo a rank that tore the
    group down while another was still at work sometimes left that one hanging at exit.
    The process then ends as soon as Python's own exit begins (exit_without_teardown)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        atexit.register(exit_without_teardown)


def exit_without_teardown() -> None:
    """The last thing a torchrun rank does after a finished run: flush stdout and stderr and end
    the process with status 0, skipping the interpreter's teardown. In that teardown the C++
    objects behind the closed gloo group (still referenced by the DDP wrappers) were destroyed in
    an order that once aborted a rank with 'terminate called without an active exception' after
    all its work was saved, and torchrun then reported the whole run as failed. Registered with
    atexit by cleanup() only, so it runs only after a run's last checkpoint is written."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more to say
            pass
    os._exit(0)
