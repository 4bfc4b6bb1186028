"""WGAN generator and critic (Arjovsky, Chintala, Bottou 2017, arXiv:1701.07875).

The paper's image experiments (Sec. 4) use "the DCGAN architecture" for both
networks; the only change in the critic is at its end: no sigmoid, because the
critic f_w outputs a real number, not a probability (Algorithm 1, eq. 3). The
widths are those of the authors' code (ngf = ndf = 64), z ~ N(0, I) of size 100.

Generator for 64x64 (ngf = 64):

    layer                               output        params (nz=100, C=3)
    z ~ N(0, I)^100                     100x1x1
    project: ConvT 4x4 /1 (no bias)     512x4x4         819,200 + BN 1,024
    ConvT 4x4 /2 pad 1 (no bias)        256x8x8       2,097,152 + BN   512
    ConvT 4x4 /2 pad 1 (no bias)        128x16x16       524,288 + BN   256
    ConvT 4x4 /2 pad 1 (no bias)        64x32x32        131,072 + BN   128
    ConvT 4x4 /2 pad 1 (no bias) + Tanh Cx64x64           3,072
                                                      total 3,576,704

Critic for 64x64 (ndf = 64), `--critic-norm batch` (the default):

    layer                               output        params (C=3)
    Conv 4x4 /2 pad 1 (no bias), LReLU  64x32x32          3,072
    Conv 4x4 /2 pad 1, norm, LReLU      128x16x16       131,072 + norm 256
    Conv 4x4 /2 pad 1, norm, LReLU      256x8x8         524,288 + norm 512
    Conv 4x4 /2 pad 1, norm, LReLU      512x4x4       2,097,152 + norm 1,024
    Conv 4x4 /1 (no bias)               1x1x1             8,192   (f_w(x): no sigmoid)
                                                      total 2,765,568

The authors' code has no bias in any convolution (BatchNorm follows them, and
the first and last layers follow suit); we keep that. The critic's norm is a flag
(`--critic-norm batch|instance|none`); see the README for why batch is the
default. Weight clipping (Algorithm 1, line 7) applies to every critic parameter,
the norm's scale and shift included, as in the authors' code.
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

CRITIC_NORMS = ("batch", "instance", "none")


def num_blocks(image_size: int) -> int:
    """Number of stride-2 (de)convolutions between 4x4 and the image: log2(size / 4)."""
    n = int(round(math.log2(image_size / 4))) if image_size > 0 else 0
    if image_size < 8 or 4 * 2**n != image_size:
        raise ValueError(f"WGAN image size must be a power of two >= 8, got {image_size}")
    return n


class Generator(nn.Module):
    """z (nz) -> image (channels x image_size x image_size) in [-1, 1]: DCGAN's G."""

    def __init__(self, nz: int = 100, ngf: int = 64, channels: int = 3, image_size: int = 64):
        super().__init__()
        self.nz = nz
        n = num_blocks(image_size)
        width = ngf * 2 ** (n - 1)  # 512 at 4x4 for 64x64 with ngf 64
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),  # project and reshape
                                   nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(n - 1):  # fractionally-strided convolutions, halving the width
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], self.nz, 1, 1))


def critic_norm(kind: str, width: int) -> list[nn.Module]:
    """The normalisation after each hidden critic convolution (`--critic-norm`)."""
    if kind == "batch":
        return [nn.BatchNorm2d(width)]
    if kind == "instance":
        return [nn.InstanceNorm2d(width, affine=True)]
    if kind == "none":
        return []
    raise ValueError(f"unknown critic norm {kind!r} (choose from {', '.join(CRITIC_NORMS)})")


class Critic(nn.Module):
    """image -> f_w(x), one real number per image (no sigmoid: Sec. 3, Algorithm 1)."""

    def __init__(self, ndf: int = 64, channels: int = 3, image_size: int = 64, norm: str = "batch"):
        super().__init__()
        n = num_blocks(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        width = ndf
        for _ in range(n - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), *critic_norm(norm, width * 2),
                       nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]  # 4x4xwidth -> one number
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


@torch.no_grad()
def clip_weights(critic: nn.Module, c: float) -> None:
    """Algorithm 1, line 7: w <- clip(w, -c, c), for every parameter of the critic.

    This keeps f_w in a compact set of functions, so that they are all K-Lipschitz
    for some K (Sec. 3); the paper calls it "a clearly terrible way" to do so."""
    for p in critic.parameters():
        p.clamp_(-c, c)


def init_weights(module: nn.Module) -> None:
    """DCGAN's initialisation, as the authors' code uses: conv weights ~ N(0, 0.02),
    norm scale ~ N(1, 0.02), shift 0 (the critic's are clipped at its first step)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_generator(options: dict) -> Generator:
    """G as a run's options (a checkpoint's "options") describe it: generate.py and evaluate.py."""
    return Generator(options["nz"], options["ngf"], options["channels"], options["image_size"])
