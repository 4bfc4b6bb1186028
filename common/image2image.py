"""What the image-conditioned folders share (pix2pix, cyclegan, and later srgan, esrgan, pix2pixhd):
reading a user's images, augmentation through albumentations that a resumed run repeats
exactly, the held-out bundled photos, and running a generator on a file or folder of any size.

Nothing here knows a paper's maths; a folder's dataset.py decides what an A and a B are.

Augmentation and resume: a dataset with `keyed = True` is indexed by (index, epoch)
(common.data.ResumableSampler) and draws its augmentation from a generator seeded by
(seed, epoch, index), so its crops change every epoch, do not touch the global RNG and
do not depend on the worker count.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common.data import albumentations
from common.errors import DataError, UserError



# ------------------------------------------------------------------ augmentation
def jitter(load_size: int, crop_size: int, *, flip: bool = True, targets: tuple[str, ...] = ()):
    """The random jitter of pix2pix (Isola et al. 2017, Sec. 6.2) and CycleGAN (Zhu et al.
    2017, Sec. 7.1): resize to load_size x load_size, a random crop_size crop, a random
    horizontal mirror. Every name in `targets` is an extra image that gets exactly the same
    resize, crop and mirror as `image` (albumentations' additional_targets): the two halves
    of a pair stay aligned. load_size == crop_size gives no crop, only the mirror."""
    A = albumentations()
    if crop_size > load_size:
        raise UserError(f"the crop ({crop_size}) cannot be larger than the loaded image ({load_size})")
    steps = [A.Resize(load_size, load_size, interpolation=_bicubic())]
    if crop_size < load_size:
        steps.append(A.RandomCrop(crop_size, crop_size))
    if flip:
        steps.append(A.HorizontalFlip(p=0.5))
    return A.Compose(steps, additional_targets={t: "image" for t in targets})


def resize_only(size: int, *, targets: tuple[str, ...] = ()):
    """The evaluation-time transform: resize to size x size, nothing random."""
    A = albumentations()
    return A.Compose([A.Resize(size, size, interpolation=_bicubic())],
                     additional_targets={t: "image" for t in targets})


def _bicubic() -> int:
    import cv2

    return cv2.INTER_CUBIC  # the official code resizes with PIL's bicubic


# ------------------------------------------------------------------ inference
def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad a BxCxHxW batch on the right and bottom to multiples of `multiple` (what a network
    with that total stride needs) by mirroring the border (replicating it where the image is
    too small to mirror); returns the padded batch and the original (H, W) to crop back to."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


@torch.no_grad()
def translate(G: torch.nn.Module, image: torch.Tensor, multiple: int, device, scale: int = 1) -> torch.Tensor:
    """G on one CxHxW image of any size: padded to `multiple`, run, cropped back (fp32, CPU out).
    `scale`: G's output is that many times larger (super-resolution)."""
    x, (h, w) = pad_to_multiple(image.unsqueeze(0).to(device), multiple)
    return G(x)[..., :h * scale, :w * scale].float().cpu()[0]


@torch.no_grad()
def translate_tiled(G: torch.nn.Module, image: torch.Tensor, multiple: int, device, *, tile: int, overlap: int,
                    scale: int = 1) -> torch.Tensor:
    """translate(), tile by tile, so memory stays bounded for any image size.

    The image is cut into cores of (tile - 2 * overlap) pixels; each core is run with `overlap`
    pixels of real image context on every side (less at the image's own borders) and only the
    core of the output is kept. For a network whose receptive field reaches at most `overlap`
    pixels from an output pixel and that has no image-wide operation (no normalisation over the
    image), the result equals the untiled one: there are no seams to hide, so no blending."""
    core = tile - 2 * overlap
    if core <= 0:
        raise UserError(f"--tile {tile} must be larger than twice the overlap ({overlap})")
    channels, h, w = image.shape
    if h <= tile and w <= tile:
        return translate(G, image, multiple, device, scale)
    out = None
    for top in range(0, h, core):
        for left in range(0, w, core):
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            t1, l1 = min(top + core + overlap, h), min(left + core + overlap, w)
            y = translate(G, image[:, t0:t1, l0:l1], multiple, device, scale)
            if out is None:
                out = y.new_zeros(y.shape[0], h * scale, w * scale)
            b, r = min(top + core, h), min(left + core, w)
            out[:, top * scale:b * scale, left * scale:r * scale] = \
                y[:, (top - t0) * scale:(b - t0) * scale, (left - l0) * scale:(r - l0) * scale]
    return out


def input_output_target_rows(inputs: torch.Tensor, outputs: torch.Tensor,
                             targets: torch.Tensor | None = None) -> torch.Tensor:
    """Images interleaved as rows input | output | target (or input | output): a grid of
    them with nrow = 3 (or 2) shows one example per row."""
    parts = [inputs, outputs] + ([targets] if targets is not None else [])
    return torch.stack([p.float().cpu() for p in parts], dim=1).flatten(0, 1)


def paired_report(outputs: torch.Tensor, targets: torch.Tensor) -> dict:
    """L1 (on [-1, 1], as the pix2pix loss), PSNR (dB) and SSIM (both on [0, 1]) of outputs
    against their targets: the paired-translation measures (pix2pix Sec. 4.2 reports L1)."""
    from common import metrics

    return {"l1": float((outputs.float() - targets.float()).abs().mean()),
            "psnr": metrics.psnr(outputs, targets), "ssim": metrics.ssim(outputs, targets)}
