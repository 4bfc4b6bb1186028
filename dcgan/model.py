"""DCGAN generator and discriminator (Radford, Metz, Chintala 2015, arXiv:1511.06434).

Architecture guidelines of Sec. 3, as the paper lists them:
  * no pooling: strided convolutions (D) and fractionally-strided convolutions (G);
  * BatchNorm in both networks, except G's output layer and D's input layer;
  * no fully-connected hidden layers: z is projected and reshaped to 4x4 (G),
    D's last convolution is flattened into a single output;
  * ReLU in G with Tanh at the output; LeakyReLU (slope 0.2) in D.
Sec. 4: weights from N(0, 0.02); here BatchNorm scale from N(1, 0.02) and biases 0,
as in the authors' code.

Generator for 64x64 (Fig. 1, ngf = 128):

    layer                               output        params (nz=100, C=3)
    z ~ U[-1, 1]^100                    100x1x1
    project: ConvT 4x4 /1 (no bias)     1024x4x4      1,638,400 + BN 2,048
    ConvT 4x4 /2 pad 1 (no bias)        512x8x8       8,388,608 + BN 1,024
    ConvT 4x4 /2 pad 1 (no bias)        256x16x16     2,097,152 + BN   512
    ConvT 4x4 /2 pad 1 (no bias)        128x32x32       524,288 + BN   256
    ConvT 4x4 /2 pad 1 + Tanh           Cx64x64           6,144 + bias   3
                                                      total 12,658,435

A 4x4 transposed convolution with stride 1 on a 1x1 input is exactly the
paper's "project and reshape" (a matrix multiply to 4*4*1024 values); its bias
is dropped because BatchNorm follows. Stride-2 layers use padding 1 so each
doubles the size: (in - 1) * 2 - 2 * 1 + 4 = 2 * in.

The discriminator mirrors it (ndf = 128): Conv 4x4 /2 pad 1 from C to 128 at
32x32 (LeakyReLU, no BatchNorm), then 256, 512, 1024 down to 4x4 (BatchNorm +
LeakyReLU), then a 4x4 convolution to one logit (the flattened single output).
It returns logits; the sigmoid lives in the loss (BCE with logits), which is
numerically safe under autocast.

`image_size` 32 removes the widest block of each network (4x4x512 for G), other
powers of two add or remove blocks the same way.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn


def num_blocks(image_size: int) -> int:
    """Number of stride-2 (de)convolutions between 4x4 and the image: log2(size / 4)."""
    n = int(round(math.log2(image_size / 4)))
    if image_size < 8 or 4 * 2**n != image_size:
        raise ValueError(f"DCGAN image size must be a power of two >= 8, got {image_size}")
    return n


class Generator(nn.Module):
    """z (nz) -> image (channels x image_size x image_size) in [-1, 1]."""

    def __init__(self, nz: int = 100, ngf: int = 128, channels: int = 3, image_size: int = 64):
        super().__init__()
        self.nz, self.ngf, self.channels, self.image_size = nz, ngf, channels, image_size
        n = num_blocks(image_size)
        width = ngf * 2 ** (n - 1)  # 1024 at 4x4 for 64x64 with ngf 128
        layers: list[nn.Module] = [
            # "project and reshape": z -> width x 4 x 4
            nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(n - 1):  # fractionally-strided convolutions, halving the width
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2),
                       nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]  # no BatchNorm at the output
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], self.nz, 1, 1))


class Discriminator(nn.Module):
    """image -> one real/fake logit per image."""

    def __init__(self, ndf: int = 128, channels: int = 3, image_size: int = 64):
        super().__init__()
        self.ndf, self.channels, self.image_size = ndf, channels, image_size
        n = num_blocks(image_size)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, 2, 1),  # input layer: no BatchNorm (Sec. 3)
            nn.LeakyReLU(0.2, True),
        ]
        width = ndf
        for _ in range(n - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width * 2),
                       nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0)]  # flatten 4x4xwidth into a single output (logit)
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def init_weights(module: nn.Module) -> None:
    """Sec. 4: conv weights ~ N(0, 0.02); BatchNorm scale ~ N(1, 0.02); biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
