"""What only pix2pix needs: running G the way the paper does at test time, on images of any
size, and showing and measuring its outputs beside their inputs and targets."""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import metrics
from common.errors import DataError
from .dataset import as_images, evaluation_pairs


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


# cyclegan/utils.py holds the same padding (its translate() runs G on one image of any size)
def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad a BxCxHxW batch on the right and bottom to multiples of `multiple` (the U-Net's total
    stride, 2 ** its downsamplings) by mirroring the border (replicating it where the image is
    too small to mirror); returns the padded batch and the original (H, W) to crop back to."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


# ------------------------------------------------------------------ seeing and measuring
def input_output_target_rows(inputs: torch.Tensor, outputs: torch.Tensor,
                             targets: torch.Tensor | None = None) -> torch.Tensor:
    """Images interleaved as rows input | output | target (or input | output): a grid of
    them with nrow = 3 (or 2) shows one example per row."""
    parts = [inputs, outputs] + ([targets] if targets is not None else [])
    return torch.stack([p.float().cpu() for p in parts], dim=1).flatten(0, 1)


# cyclegan/utils.py holds the same measure (its translation_report rows)
def paired_report(outputs: torch.Tensor, targets: torch.Tensor) -> dict:
    """L1 (on [-1, 1], the scale of the L1 term of eq. 3), PSNR (dB) and SSIM (both on [0, 1])
    of outputs against their targets: the paired-translation measures of evaluate.py and --eval-every."""
    return {"l1": float((outputs.float() - targets.float()).abs().mean()),
            "psnr": metrics.psnr(outputs, targets), "ssim": metrics.ssim(outputs, targets)}


# ------------------------------------------------------- what a training run shows and measures
def sample_pairs(opt, dataset, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed pairs of the sample grids: held-out crops for the embedded tasks, the test
    (or val) split of a folder where it has one, else the first training pairs unjittered."""
    try:
        inputs, targets, _ = evaluation_pairs(opt, n)
    except DataError:  # a folder without test/ or val/: show training pairs
        items = [dataset[(i, 0)] for i in range(min(n, len(dataset)))]
        inputs, targets = torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])
    return inputs, targets


def sample_rows(G, opt, inputs: torch.Tensor, targets: torch.Tensor, device) -> torch.Tensor:
    """The grid's rows input | output | target, G run as at test time (generate.py's default)."""
    outputs = run_generator(G, inputs, device, seed=opt.seed)
    return input_output_target_rows(*as_images(opt.data, inputs, outputs, targets))


def evaluation(opt, session, G):
    """--eval-every's measure, evaluate.py's (L1 / PSNR / SSIM of G's outputs against the
    targets, on RGB images), on pairs read once now; None when it is off (and off rank 0)."""
    if opt.eval_every <= 0 or not session.is_main:
        return None
    inputs, targets, _ = evaluation_pairs(opt, opt.eval_n or 16)

    def evaluate() -> dict:
        outputs = run_generator(G, inputs, session.device, seed=opt.seed)
        return paired_report(*as_images(opt.data, inputs, outputs, targets)[1:])
    return evaluate
