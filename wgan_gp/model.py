"""WGAN-GP generator and critic (Gulrajani et al. 2017, arXiv:1704.00028).

The paper's point is the loss, not an architecture: Sec. 4 asks only that the
critic have **no batch normalisation** (the penalty is per example, and BatchNorm
makes each example's score depend on the whole batch) and recommends layer
normalisation in its place. Here both networks are DCGAN-style (the architecture
of the paper's Sec. 5 comparisons and of its 64x64 DCGAN runs): 4x4 kernels,
strided (de)convolutions, BatchNorm + ReLU in G (allowed: only the critic is
penalised), LeakyReLU(0.2) in the critic, no sigmoid.

Generator for 64x64 (ngf = 64, nz = 128 as in the authors' code):

    layer                               output        params (C=3)
    z ~ N(0, I)^128                     128x1x1
    project: ConvT 4x4 /1 (no bias)     512x4x4       1,048,576 + BN 1,024
    ConvT 4x4 /2 pad 1 (no bias)        256x8x8       2,097,152 + BN   512
    ConvT 4x4 /2 pad 1 (no bias)        128x16x16       524,288 + BN   256
    ConvT 4x4 /2 pad 1 (no bias)        64x32x32        131,072 + BN   128
    ConvT 4x4 /2 pad 1 + Tanh           Cx64x64           3,072 + bias   3
                                                      total 3,806,083

Critic for 64x64 (ndf = 64), `--critic-norm layer` (the default):

    layer                               output        params (C=3)
    Conv 4x4 /2 pad 1, LReLU            64x32x32          3,072 + bias  64
    Conv 4x4 /2 pad 1, LN, LReLU        128x16x16       131,072 + LN   256
    Conv 4x4 /2 pad 1, LN, LReLU        256x8x8         524,288 + LN   512
    Conv 4x4 /2 pad 1, LN, LReLU        512x4x4       2,097,152 + LN 1,024
    Conv 4x4 /1                         1x1x1             8,192 + bias   1   (D(x): no sigmoid)
                                                      total 2,765,633

"Layer normalisation" of a feature map normalises each example over all its
channels and positions, with a learned scale and shift per channel (as the
authors' code does): that is nn.GroupNorm with a single group.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

# --channels-last auto: whether these networks train faster in the NHWC memory format, per kind of
# device (common.device.device_kind), as benchmarks/throughput.py measured it (README.md, Speed):
# DCGAN's convolutions: NHWC is level or faster on every CPU measured. CUDA is not measured yet (no
# GPU lent so far): on there, as PyTorch advises for convolutions under autocast.
CHANNELS_LAST = {"cpu-fp32": True, "cpu-bf16": True, "cuda": True}

CRITIC_NORMS = ("layer", "instance", "none")


def num_blocks(image_size: int) -> int:
    """Number of stride-2 (de)convolutions between 4x4 and the image: log2(size / 4)."""
    n = int(round(math.log2(image_size / 4))) if image_size > 0 else 0
    if image_size < 8 or 4 * 2**n != image_size:
        raise ValueError(f"WGAN-GP image size must be a power of two >= 8, got {image_size}")
    return n


class Generator(nn.Module):
    """z (nz) -> image (channels x image_size x image_size) in [-1, 1]."""

    def __init__(self, nz: int = 128, ngf: int = 64, channels: int = 3, image_size: int = 64):
        super().__init__()
        self.nz = nz
        n = num_blocks(image_size)
        width = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),  # project and reshape
                                   nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(n - 1):  # fractionally-strided convolutions, halving the width
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], self.nz, 1, 1))


def critic_norm(kind: str, width: int) -> list[nn.Module]:
    """The per-example normalisation after each hidden critic convolution (`--critic-norm`).
    Never BatchNorm: it couples the examples of a batch, and the penalty is per example (Sec. 4)."""
    if kind == "layer":
        return [nn.GroupNorm(1, width)]  # over (C, H, W) of each example, affine per channel
    if kind == "instance":
        return [nn.InstanceNorm2d(width, affine=True)]
    if kind == "none":
        return []
    raise ValueError(f"unknown critic norm {kind!r} (choose from {', '.join(CRITIC_NORMS)}; "
                     f"batch norm is not valid with a gradient penalty, Sec. 4)")


class Critic(nn.Module):
    """image -> D(x), one real number per image; each image's score depends on it alone."""

    def __init__(self, ndf: int = 64, channels: int = 3, image_size: int = 64, norm: str = "layer"):
        super().__init__()
        n = num_blocks(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for _ in range(n - 1):
            # no bias when a norm with a shift follows (it would cancel the bias)
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm == "none"), *critic_norm(norm, width * 2),
                       nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0)]  # 4x4xwidth -> one number, no sigmoid
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def init_weights(module: nn.Module) -> None:
    """DCGAN's initialisation: conv weights ~ N(0, 0.02), norm scale ~ N(1, 0.02), shifts and biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_generator(options: dict) -> Generator:
    """G as a run's options (a checkpoint's "options") describe it: generate.py and evaluate.py."""
    return Generator(options["nz"], options["ngf"], options["channels"], options["image_size"])
