"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, ProGAN,
Sec. 5 and App. D). No well-kept library has it, so it is written here.

For each image set:
  1. build a Laplacian pyramid from full resolution down to 16x16 (the coarsest level
     is the 16x16 low-pass image itself);
  2. take `patches_per_image` random 7x7 neighbourhoods from every level of every image:
     one descriptor of 7*7*C values each. The positions are drawn once per level and used
     for every image of both sets (common random numbers), so identical sets give exactly
     0 and the value does not depend on the order of the images; the official code draws
     a position per patch, which gives the same expectation with more noise;
  3. normalise each level's descriptors with the mean and standard deviation of each
     colour channel over that set of descriptors.
Then, per level, the sliced Wasserstein distance between the two descriptor sets is
the mean over `n_directions` random unit directions of the mean absolute difference
between the sorted projections (the 1-D Wasserstein-1 distance). The paper reports
each level and their average, multiplied by 1e3.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5x5 binomial (Gaussian-like) filter, per channel, reflect padding."""
    c = x.shape[1]
    k = _BINOMIAL.to(x)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).repeat(c, 1, 1, 1), groups=c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur, then keep every second pixel: half the resolution."""
    return _blur(x)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """Insert zeros between pixels, then blur with 4x the kernel (keeps the mean)."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, h * 2, w * 2)
    up[:, :, ::2, ::2] = x * 4.0
    return _blur(up)


def laplacian_pyramid(images: torch.Tensor, min_size: int = 16) -> list[torch.Tensor]:
    """Band-pass levels from full resolution down, ending with the low-pass image at `min_size`."""
    levels, current = [], images.float()
    while current.shape[-1] > min_size:
        smaller = pyr_down(current)
        levels.append(current - pyr_up(smaller))
        current = smaller
    levels.append(current)
    return levels


def patch_positions(size: int, patches_per_image: int, patch: int, generator: torch.Generator):
    """Top-left corners (ys, xs) of `patches_per_image` random patches in a size x size level."""
    ys = torch.randint(0, size - patch + 1, (patches_per_image,), generator=generator)
    xs = torch.randint(0, size - patch + 1, (patches_per_image,), generator=generator)
    return ys, xs


def patch_descriptors(level: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, patch: int) -> torch.Tensor:
    """The patch x patch neighbourhoods at (ys, xs) of every image: (N * P, C, patch, patch)."""
    n, c, h, w = level.shape
    patches_per_image = ys.shape[0]
    ys, xs = ys.expand(n, -1), xs.expand(n, -1)
    offsets = torch.arange(patch)
    rows = (ys[..., None] + offsets).view(n, patches_per_image, patch, 1).expand(-1, -1, -1, patch)
    cols = (xs[..., None] + offsets).view(n, patches_per_image, 1, patch).expand(-1, -1, patch, -1)
    batch = torch.arange(n).view(n, 1, 1, 1).expand_as(rows)
    patches = level.permute(0, 2, 3, 1)[batch, rows, cols]  # (n, P, patch, patch, C)
    return patches.permute(0, 1, 4, 2, 3).reshape(n * patches_per_image, c, patch, patch)


def normalise_descriptors(desc: torch.Tensor) -> torch.Tensor:
    """Subtract the mean and divide by the standard deviation of each colour channel (App. D)."""
    mean = desc.mean(dim=(0, 2, 3), keepdim=True)
    std = desc.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return ((desc - mean) / std).flatten(1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, n_directions: int,
                       generator: torch.Generator) -> torch.Tensor:
    """Mean over random unit directions of W1 between the projected point sets (equal sizes)."""
    directions = torch.randn(a.shape[1], n_directions, generator=generator)
    directions = directions / directions.norm(dim=0, keepdim=True)
    # Sorting dominates the cost. NumPy's vectorised sort of contiguous rows was 4x faster
    # than torch.sort here (0.8 s vs 3.3 s for 512 x 115k floats on 2 AVX2 cores).
    proj_a = np.sort((a @ directions).t().contiguous().numpy(), axis=1)
    proj_b = np.sort((b @ directions).t().contiguous().numpy(), axis=1)
    return torch.from_numpy(np.abs(proj_a - proj_b).mean(axis=1, dtype=np.float64)).mean()


def swd(images_a: torch.Tensor, images_b: torch.Tensor, *, patches_per_image: int = 128, patch: int = 7,
        n_directions: int = 512, min_size: int = 16, seed: int = 0) -> dict:
    """SWD between two equally sized image sets (N, C, H, W), values in any fixed range.

    Returns {"levels": {resolution: value x1e3}, "mean": average x1e3}, coarse levels last,
    keyed by each level's resolution (e.g. 64, 32, 16), as in the ProGAN tables.
    """
    if images_a.shape != images_b.shape:
        raise ValueError(f"SWD needs two sets of the same shape, got {tuple(images_a.shape)} and "
                         f"{tuple(images_b.shape)}")
    if images_a.shape[-1] != images_a.shape[-2] or images_a.shape[-1] < min_size:
        raise ValueError(f"SWD needs square images of at least {min_size}x{min_size}")
    gen = torch.Generator().manual_seed(seed)
    pyr_a = laplacian_pyramid(images_a.cpu(), min_size)
    pyr_b = laplacian_pyramid(images_b.cpu(), min_size)
    levels = {}
    for level_a, level_b in zip(pyr_a, pyr_b):
        ys, xs = patch_positions(level_a.shape[-1], patches_per_image, patch, gen)
        desc_a = normalise_descriptors(patch_descriptors(level_a, ys, xs, patch))
        desc_b = normalise_descriptors(patch_descriptors(level_b, ys, xs, patch))
        levels[int(level_a.shape[-1])] = float(sliced_wasserstein(desc_a, desc_b, n_directions, gen)) * 1e3
    return {"levels": levels, "mean": sum(levels.values()) / len(levels)}
