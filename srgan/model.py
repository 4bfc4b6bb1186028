"""SRGAN networks (Ledig et al. 2017, arXiv:1609.04802, Sec. 2.2 and Fig. 4).

Generator (SRResNet), for scale x4:

    conv 9x9, 64, PReLU                                   (k9n64s1)
    B = 16 residual blocks: conv 3x3 64, BN, PReLU, conv 3x3 64, BN, + skip   (k3n64s1)
    conv 3x3 64, BN, + the first layer's output           (the long skip)
    2 x [conv 3x3 256, PixelShuffle x2, PReLU]            (k3n256s1: sub-pixel upsampling, x2 each)
    conv 9x9, 3                                           (k9n3s1)

Discriminator, on 96x96 HR crops:

    conv 3x3 64 s1, LeakyReLU(0.2)                        (no BN on the first layer)
    conv 3x3 64 s2 | 128 s1 | 128 s2 | 256 s1 | 256 s2 | 512 s1 | 512 s2, each BN + LeakyReLU
    dense 1024, LeakyReLU, dense 1                        (a logit: the sigmoid lives in the loss)

The authors released no code; where Fig. 4 is silent this follows common practice and says so:
PReLU with one slope per channel (He et al. 2015's form), no convolution bias before a BatchNorm
(it would be cancelled by it), no output non-linearity (Fig. 4 shows none).
"""
from __future__ import annotations

import torch
import torch.nn as nn

# --channels-last auto: whether these networks train faster in the NHWC memory format, per kind of
# device (common.device.device_kind), as benchmarks/throughput.py measured it (README.md, Speed):
# SRResNet's 64-channel 3x3 convolutions at batch 16 gain from NHWC. CUDA is not measured yet (no GPU
# lent so far): on there, as PyTorch advises for convolutions under autocast.
CHANNELS_LAST = {"cpu-fp32": True, "cpu-bf16": True, "cuda": True}


class ResidualBlock(nn.Module):
    """k3n64s1 - BN - PReLU - k3n64s1 - BN, plus the block's input (Fig. 4, after Gross and Wilber)."""

    def __init__(self, channels: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleBlock(nn.Sequential):
    """k3n256s1 - PixelShuffle x2 - PReLU: "two trained sub-pixel convolution layers as proposed
    by Shi et al." (Sec. 2.2) each double the resolution; 256 = 64 channels x 2 x 2."""

    def __init__(self, channels: int = 64):
        super().__init__(nn.Conv2d(channels, channels * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(channels))


class SRResNet(nn.Module):
    """The generator of Fig. 4 (used alone, trained with MSE, it is SRResNet; as SRGAN's G the same
    network is trained with the perceptual loss). Input LR in [0, 1], output HR on [-1, 1]'s scale."""

    def __init__(self, channels: int = 3, features: int = 64, blocks: int = 16, scale: int = 4):
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"SRResNet upsamples by powers of two with x2 sub-pixel blocks: scale 2, 4 or 8, "
                             f"not {scale}")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(channels, features, 9, 1, 4), nn.PReLU(features))
        self.body = nn.Sequential(*[ResidualBlock(features) for _ in range(blocks)])
        self.body_end = nn.Sequential(nn.Conv2d(features, features, 3, 1, 1, bias=False), nn.BatchNorm2d(features))
        self.upsample = nn.Sequential(*[UpsampleBlock(features) for _ in range(scale.bit_length() - 1)])
        self.tail = nn.Conv2d(features, channels, 9, 1, 4)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        first = self.head(lr)
        x = first + self.body_end(self.body(first))  # the long skip around all residual blocks
        return self.tail(self.upsample(x))


class Discriminator(nn.Module):
    """The discriminator of Fig. 4: eight 3x3 convolutions whose filters double from 64 to 512
    every second layer while stride-2 layers halve the resolution (Radford et al.'s guidelines,
    Sec. 2.2), then two dense layers. A 96x96 crop reaches the dense layer as 512x6x6."""

    WIDTHS = (64, 64, 128, 128, 256, 256, 512, 512)

    def __init__(self, channels: int = 3, features: int = 64, image_size: int = 96):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"the discriminator halves the crop four times: its side must be a multiple of 16, "
                             f"not {image_size}")
        widths = [w * features // 64 for w in self.WIDTHS]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, 1, 1), nn.LeakyReLU(0.2)]
        for i in range(1, len(widths)):
            stride = 2 if i % 2 == 1 else 1
            layers += [nn.Conv2d(widths[i - 1], widths[i], 3, stride, 1, bias=False), nn.BatchNorm2d(widths[i]),
                       nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        side = image_size // 16
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * side * side, 1024), nn.LeakyReLU(0.2),
                                        nn.Linear(1024, 1))

    def forward(self, hr: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(hr))


def build_generator(options: dict) -> SRResNet:
    """G from a run's stored options (generate.py and evaluate.py rebuild it from the checkpoint)."""
    return SRResNet(3, options["features"], options["blocks"], options["scale"])
