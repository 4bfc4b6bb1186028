"""The simple GAN's two pairs of multilayer perceptrons (Goodfellow et al. 2014, Sec. 5).

--arch seed: the reference repository's model, the smallest GAN that trains:

    Generator                              Discriminator
    z ~ N(0, I), 64                        x, 784 (28x28x1 flattened)
    Linear 64 -> 256,  LeakyReLU(0.01)     Linear 784 -> 128, LeakyReLU(0.01)
    Linear 256 -> 784, Tanh                Linear 128 -> 1 (logit)
    218,128 parameters                     100,609 parameters

--arch paper: the paper's MNIST model, as the authors' code (goodfeli/adversarial,
mnist.yaml) builds it. Sec. 5 says only "a mixture of rectifier linear activations and
sigmoid activations" for G and "maxout activations" with dropout for D:

    Generator                              Discriminator
    z ~ U[-sqrt 3, sqrt 3]^100             x, 784 in [0, 1]; dropout 0.2
    Linear 100 -> 1200, ReLU               maxout 240 units x 5 pieces; dropout 0.5
    Linear 1200 -> 1200, ReLU              maxout 240 units x 5 pieces; dropout 0.5
    Linear 1200 -> 784, sigmoid            Linear 240 -> 1 (logit)
    2,503,984 parameters                   1,231,441 parameters

Both D return a logit: the sigmoid of the paper's D(x) is folded into the loss (binary
cross-entropy with logits), the numerically stable form. The paper's images are in
[0, 1] (sigmoid output); the collection's are in [-1, 1], so PaperGenerator returns
2 sigmoid(a) - 1 and MaxoutDiscriminator maps its input back to [0, 1] first: the
networks compute exactly the paper's functions.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHS = ("seed", "paper")
G_IRANGE, D_IRANGE = 0.05, 0.005  # mnist.yaml: irange .05 for G's layers, .005 for D's


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
    """image -> one real/fake logit per image.

    `dropout` > 0 (--arch seed --dropout-d P; the seed has none) drops D's inputs and its
    hidden units with probability P in training, as the paper's D does: without it this D
    overpowers G and G collapses onto a few digits (README, "Why the seed's MLP collapses")."""

    def __init__(self, hidden: int = 128, channels: int = 1, image_size: int = 28, dropout: float = 0.0):
        super().__init__()
        self.channels, self.image_size, self.dropout = channels, image_size, dropout
        self.main = nn.Sequential(
            nn.Linear(channels * image_size * image_size, hidden),
            nn.LeakyReLU(0.01),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # functional dropout, so the layers keep the seed's state_dict keys; at p = 0 (the
        # seed's) F.dropout returns its input and draws no random numbers: the seed's D exactly
        h = F.dropout(x.flatten(1), self.dropout, self.training)
        h = F.dropout(self.main[1](self.main[0](h)), self.dropout, self.training)  # Linear, LeakyReLU
        return self.main[2](h).view(-1)


# ================================================================ --arch paper
# Maxout and init_irange: the same pylearn2 pieces as in cgan/model.py (cGAN's --arch mlp is built
# on this paper's code), each folder with its own copy.
class Maxout(nn.Module):
    """Maxout layer (Goodfellow et al. 2013), the unit of this paper's D (Sec. 5: "the
    discriminator net used maxout activations"; pylearn2's Maxout in the authors' mnist.yaml):
    `units` outputs, each the max over `pieces` affine functions of the input,
    h_i = max_j (x W_ij + b_ij). One Linear computes all units x pieces of them."""

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.units, self.pieces).amax(dim=2)


def init_irange(module: nn.Module, irange: float) -> None:
    """pylearn2's `irange` initialisation, as the authors' mnist.yaml sets it (G_IRANGE for G's
    layers, D_IRANGE for D's), for every Linear, a maxout layer's included: weights ~
    U[-irange, irange], biases 0. Use as model.apply(lambda m: init_irange(m, G_IRANGE))."""
    if isinstance(module, nn.Linear):
        nn.init.uniform_(module.weight, -irange, irange)
        nn.init.zeros_(module.bias)


class PaperGenerator(nn.Module):
    """G of the authors' mnist.yaml: two rectified linear layers of 1200 units and a sigmoid
    output layer of 784, from 100 uniform noise inputs."""

    def __init__(self, z_dim: int = 100, hidden: int = 1200, channels: int = 1, image_size: int = 28):
        super().__init__()
        self.z_dim, self.shape = z_dim, (channels, image_size, image_size)
        self.main = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.ReLU(True),  # h0
            nn.Linear(hidden, hidden), nn.ReLU(True),  # h1
            nn.Linear(hidden, channels * image_size * image_size),  # y, a sigmoid layer (below)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x01 = torch.sigmoid(self.main(z))  # the paper's [0, 1] pixels
        return (2.0 * x01 - 1.0).view(z.shape[0], *self.shape)  # the collection's [-1, 1]

    @torch.no_grad()
    def init_output_bias(self, mean_image01: torch.Tensor) -> None:
        """pylearn2's init_sigmoid_bias_from_marginals: the output bias is the logit of each
        pixel's mean over the training data (clipped to [1e-7, 1 - 1e-7]), so an untrained
        G already outputs the mean image."""
        p = mean_image01.flatten().double().clamp(1e-7, 1 - 1e-7)
        self.main[-1].bias.copy_(torch.log(p / (1 - p)).to(self.main[-1].bias.dtype))


class MaxoutDiscriminator(nn.Module):
    """D of the authors' mnist.yaml: two maxout layers of 240 units x 5 pieces and a sigmoid
    unit, with dropout on every layer's input (keep 0.8 on the pixels, 0.5 elsewhere; the
    kept units scaled by 1.25 and 2, as PyTorch's inverted dropout does)."""

    def __init__(self, channels: int = 1, image_size: int = 28, units: int = 240, pieces: int = 5,
                 input_dropout: float = 0.2, dropout: float = 0.5):
        super().__init__()
        self.main = nn.Sequential(
            nn.Dropout(input_dropout), Maxout(channels * image_size * image_size, units, pieces),  # h0
            nn.Dropout(dropout), Maxout(units, units, pieces),  # h1
            nn.Dropout(dropout), nn.Linear(units, 1),  # y: the logit of D(x)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x01 = (x.reshape(x.shape[0], -1) + 1.0) / 2.0  # back to the paper's [0, 1] pixels
        return self.main(x01).view(-1)


# ==================================================================== both
def build_generator(options: dict) -> nn.Module:
    """G as a run's options (a checkpoint's "options") describe it (train.py, generate.py,
    evaluate.py); a checkpoint from before --arch is the seed's model."""
    if options.get("arch", "seed") == "paper":
        return PaperGenerator(options["z_dim"], options["g_hidden"], options["channels"], options["image_size"])
    return Generator(options["z_dim"], options["g_hidden"], options["channels"], options["image_size"])


def build_discriminator(options: dict) -> nn.Module:
    if options.get("arch", "seed") == "paper":
        return MaxoutDiscriminator(options["channels"], options["image_size"], options["d_hidden"],
                                   options["maxout_pieces"], options["dropout_d_input"], options["dropout_d"])
    return Discriminator(options["d_hidden"], options["channels"], options["image_size"], options.get("dropout_d", 0.0))


def initialise(G: nn.Module, D: nn.Module, arch: str) -> None:
    """--arch paper: pylearn2's irange init (U[-0.05, 0.05] in G, U[-0.005, 0.005] in D,
    biases 0); the seed's model keeps PyTorch's default init, as the seed does."""
    if arch == "paper":
        G.apply(lambda m: init_irange(m, G_IRANGE))
        D.apply(lambda m: init_irange(m, D_IRANGE))
