"""What only pix2pix needs: running G the way the paper does at test time."""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn


@contextlib.contextmanager
def paper_test_mode(G: nn.Module, seed: int):
    """G as the paper runs it at test time (Sec. 3.1 and 6.1): dropout on and BatchNorm with
    the test batch's own statistics ("instance normalization" at batch size 1), i.e. G in
    train mode, without gradients. Around it: the global RNG forked and seeded with `seed`
    (the dropout masks are reproducible and a training run's random stream is untouched),
    and BatchNorm's running statistics put back afterwards (they are what --eval-mode uses,
    and a sample grid must not move them)."""
    buffers = {k: v.clone() for k, v in G.named_buffers()}
    was_training = G.training
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        G.train()
        try:
            yield G
        finally:
            G.train(was_training)
            for k, v in G.named_buffers():
                v.copy_(buffers[k])


@torch.no_grad()
def run_generator(G: nn.Module, inputs: torch.Tensor, device, *, eval_mode: bool = False, seed: int = 0,
                  batch_size: int = 1) -> torch.Tensor:
    """G on a batch of inputs, `batch_size` at a time (1: each image's statistics are its own,
    as at training time), in the paper's test mode or, with eval_mode, in eval mode (no
    dropout, BatchNorm's running statistics). fp32 on the CPU out."""
    def forward():
        return torch.cat([G(x.to(device)).float().cpu() for x in inputs.split(batch_size)])

    if eval_mode:
        was_training = G.training
        G.eval()
        try:
            return forward()
        finally:
            G.train(was_training)
    with paper_test_mode(G, seed):
        return forward()
