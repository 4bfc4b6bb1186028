"""What only LAPGAN needs: the Laplacian pyramid of Sec. 3.1 (Burt & Adelson 1983), its
exact inverse, the pyramid's geometry checks, the noise of each level and the SGD schedule
of Sec. 4.

Notation (Sec. 3.1): d(.) blurs and halves an image, u(.) doubles it. The Gaussian pyramid is
G(I) = [I_0, I_1, ..., I_K] with I_0 = I and I_{k+1} = d(I_k). The Laplacian pyramid holds the
band-pass images h_k = I_k - u(I_{k+1}) for k < K and the low-pass residual h_K = I_K (eq. 3);
the image comes back coarse to fine as I_k = u(I_{k+1}) + h_k (eq. 4). Level 0 is the finest.
Because eq. 4 adds back exactly what eq. 3 took away, reconstruction is exact for *any* d and u
(up to float rounding); d and u only decide what the bands look like.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from common.errors import UserError

# Burt & Adelson's 5-tap generating kernel with a = 0.375: [1, 4, 6, 4, 1] / 16
BINOMIAL_5 = (1.0 / 16, 4.0 / 16, 6.0 / 16, 4.0 / 16, 1.0 / 16)
# the coarsest level the refinement networks allow: D_k's two valid 5x5 convolutions
# (the second with stride 2) need 16x16 at the first refinement level, so the coarsest is 8x8 or more
MIN_COARSEST = 8


# ----------------------------------------------------------------- d(.) and u(.)
def blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5x5 binomial blur per channel, reflect-padded (edges are not darkened)."""
    c = x.shape[1]
    k = torch.tensor(BINOMIAL_5, dtype=x.dtype, device=x.device)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5).contiguous(), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1).contiguous(), groups=c)


def downsample(x: torch.Tensor) -> torch.Tensor:
    """d(.): blur, then keep every second pixel (Burt & Adelson's REDUCE). (N,C,H,W) -> (N,C,H/2,W/2)."""
    return blur(x)[..., ::2, ::2]


def upsample(x: torch.Tensor) -> torch.Tensor:
    """u(.): bilinear doubling (the authors' code also upsamples bilinearly, torch7's image.scale)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


# ------------------------------------------------------------------ the pyramids
def gaussian_pyramid(image: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[I_0, ..., I_K], K = levels - 1, each half the size of the one before."""
    pyramid = [image]
    for _ in range(levels - 1):
        pyramid.append(downsample(pyramid[-1]))
    return pyramid


def laplacian_pyramid(image: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """L(I) = [h_0, ..., h_{K-1}, I_K] (Sec. 3.1, eq. 3): band-pass residuals, finest first,
    and the low-pass image last."""
    g = gaussian_pyramid(image, levels)
    return [g[k] - upsample(g[k + 1]) for k in range(levels - 1)] + [g[-1]]


def reconstruct(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """The inverse of laplacian_pyramid (eq. 4): I_K = h_K, then I_k = u(I_{k+1}) + h_k."""
    image = pyramid[-1]
    for h in reversed(pyramid[:-1]):
        image = upsample(image) + h
    return image


def training_pairs(image: torch.Tensor, levels: int) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """What each level trains on, finest first: (h_k, l_k) with l_k = u(I_{k+1}) for the
    refinement levels (Sec. 3: G_k learns h_k given l_k), and (I_K, None) for the coarsest."""
    g = gaussian_pyramid(image, levels)
    pairs = []
    for k in range(levels - 1):
        low = upsample(g[k + 1])
        pairs.append((g[k] - low, low))
    return pairs + [(g[-1], None)]


# ---------------------------------------------------------------- geometry checks
def level_sizes(image_size: int, levels: int) -> list[int]:
    """Side of each level, finest first: [32, 16, 8] for 32x32 images and 3 levels."""
    return [image_size >> k for k in range(levels)]


def check_pyramid(image_size: int, levels: int) -> list[int]:
    """The level sizes, or a UserError saying what is wrong with --image-size / --levels."""
    if image_size < 1 or image_size & (image_size - 1):
        raise UserError(f"--image-size {image_size} is not a power of two; the pyramid halves the image at "
                        f"every level (e.g. 32 for CIFAR-10, 64)")
    if levels < 1:
        raise UserError(f"--levels {levels}: a pyramid needs at least one level")
    coarsest = image_size >> (levels - 1) if levels - 1 < 32 else 0
    if levels > 1 and coarsest < MIN_COARSEST:
        deepest = int(math.log2(image_size // MIN_COARSEST)) + 1 if image_size >= MIN_COARSEST else 1
        raise UserError(f"--levels {levels} is deeper than {image_size}x{image_size} images allow: the coarsest "
                        f"level would be {max(coarsest, 0)}x{max(coarsest, 0)}, and the refinement networks "
                        f"(Sec. 4) need it at {MIN_COARSEST}x{MIN_COARSEST} or more; use --levels {deepest} "
                        f"or fewer, or larger images")
    return level_sizes(image_size, levels)


# ----------------------------------------------------------------------- noise
def uniform(shape, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """U[-1, 1] noise (the authors' code draws every z this way); with an explicit CPU
    generator the draw is made on the CPU and moved, so fixed latents never touch the run's RNG."""
    where = device if generator is None else None
    z = torch.rand(*shape, generator=generator, device=where) * 2.0 - 1.0
    return z.to(device) if device is not None else z


def latent_size(options: dict) -> int:
    """Length of the cascade's flat latent: z_K (nz) and one noise plane per refinement level,
    plus one column for the class label in the class-conditional variant (model.LAPGANGenerator)."""
    sizes = level_sizes(options["image_size"], options["levels"])
    return options["nz"] + sum(s * s for s in sizes[:-1]) + (1 if options.get("num_classes", 0) else 0)


def latents(options: dict, n: int, generator: torch.Generator) -> torch.Tensor:
    """n flat latents for the whole cascade (what generate.py and evaluate.py feed it):
    z_K ~ U[-1, 1]^nz, each level's noise plane ~ U[-1, 1], and a label drawn uniformly
    from the classes in the conditional variant."""
    noise = uniform((n, latent_size(options) - (1 if options.get("num_classes", 0) else 0)), generator=generator)
    if not options.get("num_classes", 0):
        return noise
    labels = torch.randint(options["num_classes"], (n, 1), generator=generator).float()
    return torch.cat([noise, labels], dim=1)


# -------------------------------------------------------------- Sec. 4's SGD schedule
# simple_gan/utils.py and cgan/utils.py have a similar schedule of their own (pylearn2's, per update).
def sgd_schedule(epoch: int, lr0: float, momentum0: float, momentum_max: float, momentum_step: float,
                 lr_decay: float) -> tuple[float, float]:
    """(lr, momentum) at `epoch` (0-based), Sec. 4: the learning rate divided by `lr_decay`
    (1 + 4e-5) every epoch, momentum raised by `momentum_step` (0.0008) every epoch up to
    `momentum_max` (0.8). A pure function of the epoch, so a resumed run gets the same values."""
    return lr0 / lr_decay ** epoch, min(momentum0 + momentum_step * epoch, momentum_max)


def apply_sgd_schedule(opt, epoch: int, optimizers) -> dict[str, float]:
    """Write `epoch`'s learning rate and momentum (sgd_schedule with --lr --lr-decay, --momentum
    --momentum-step --momentum-max) into every parameter group of `optimizers`, before the
    step. Returns them for the logs.

    Written here rather than as a torch.optim.lr_scheduler: Sec. 4's rule moves the learning
    rate and the momentum together, and torch's schedulers move the learning rate only."""
    lr, momentum = sgd_schedule(epoch, opt.lr, opt.momentum, opt.momentum_max, opt.momentum_step, opt.lr_decay)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = lr
            group["momentum"] = momentum
    return {"lr": lr, "momentum": momentum}
