"""The simple GAN: two small multilayer perceptrons (Goodfellow et al. 2014, Sec. 3/5).

The seed's model, kept as the smallest working GAN:

    Generator                              Discriminator
    z ~ N(0, I), 64                        x, 784 (28x28x1 flattened)
    Linear 64 -> 256,  LeakyReLU(0.01)     Linear 784 -> 128, LeakyReLU(0.01)
    Linear 256 -> 784, Tanh                Linear 128 -> 1 (logit)
    218,128 parameters                     100,609 parameters

D returns a logit; the sigmoid of the paper's D(x) is folded into the loss
(binary cross-entropy with logits), which is the numerically stable form.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class Generator(nn.Module):
    """z (z_dim) -> image (channels x image_size x image_size) in [-1, 1]."""

    def __init__(self, z_dim: int = 64, hidden: int = 256, channels: int = 1, image_size: int = 28):
        super().__init__()
        self.z_dim, self.channels, self.image_size = z_dim, channels, image_size
        self.main = nn.Sequential(
            nn.Linear(z_dim, hidden),
            nn.LeakyReLU(0.01),
            nn.Linear(hidden, channels * image_size * image_size),
            nn.Tanh(),  # images are scaled to [-1, 1]
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z).view(-1, self.channels, self.image_size, self.image_size)


class Discriminator(nn.Module):
    """image -> one real/fake logit per image."""

    def __init__(self, hidden: int = 128, channels: int = 1, image_size: int = 28):
        super().__init__()
        self.channels, self.image_size = channels, image_size
        self.main = nn.Sequential(
            nn.Linear(channels * image_size * image_size, hidden),
            nn.LeakyReLU(0.01),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x.flatten(1)).view(-1)


def build_generator(options: dict) -> Generator:
    """G as a run's options (a checkpoint's "options") describe it: generate.py and evaluate.py."""
    return Generator(options["z_dim"], options["g_hidden"], options["channels"], options["image_size"])
