"""Conditional GAN generators and discriminators (Mirza, Osindero 2014, arXiv:1411.1784).

The paper's one idea (Sec. 3.2, eq. 2): feed the condition y to *both* networks,
G(z | y) and D(x | y). How y enters is left open ("combined in joint hidden
representation"); here are two ways.

--arch conv (default): the seed's convolutional cGAN, trained as a WGAN-GP
------------------------------------------------------------------------------
DCGAN-style blocks; y is an integer class, embedded by a learned table.

Generator, 64x64, ngf = 16, nz = embed = 100, 1 channel (10 classes):

    layer                                   output        params
    z ~ N(0, I)^100 ++ Embedding(10, 100)   200x1x1       1,000 (table)
    ConvT 4x4 /1 (no bias), BN, ReLU        256x4x4       819,200 + BN 512
    ConvT 4x4 /2 pad 1 (no bias), BN, ReLU  128x8x8       524,288 + BN 256
    ConvT 4x4 /2 pad 1 (no bias), BN, ReLU  64x16x16      131,072 + BN 128
    ConvT 4x4 /2 pad 1 (no bias), BN, ReLU  32x32x32       32,768 + BN  64
    ConvT 4x4 /2 pad 1 + bias, Tanh         1x64x64           512 + 1
                                                          total 1,509,801

Critic, 64x64, ndf = 16, 1 channel (10 classes):

    layer                                   output        params
    Embedding(10, 64*64) -> 1x64x64, concatenated to the image: 2x64x64    40,960 (table)
    Conv 4x4 /2 pad 1 + bias, LReLU 0.2     16x32x32          528
    Conv 4x4 /2 pad 1 (no bias), IN, LReLU  32x16x16        8,192 + IN 64
    Conv 4x4 /2 pad 1 (no bias), IN, LReLU  64x8x8         32,768 + IN 128
    Conv 4x4 /2 pad 1 (no bias), IN, LReLU  128x4x4       131,072 + IN 256
    Conv 4x4 + bias                         1x1x1           2,049   (a score: no sigmoid)
                                                          total 216,017

The critic has no BatchNorm: the gradient penalty of WGAN-GP (Gulrajani et al.
2017, Sec. 4) is a per-sample constraint, which batch statistics would break;
InstanceNorm with a learned scale and shift (affine) is the seed's replacement.
The seed's last convolution has stride 2; on a 4x4 input with a 4x4 kernel and no
padding, stride 1 or 2 gives the same single output, so stride 1 is used.
`image_size` 32 drops the widest block of each network, like DCGAN.

--arch mlp: the paper's own MNIST model (Sec. 4.1)
---------------------------------------------------
y is one-hot. z and y are mapped to ReLU hidden layers of 200 and 1000 units,
"before both being mapped to second, combined hidden ReLu layer of dimensionality
1200. We then have a final sigmoid unit layer as our output".

    G layer                                 output        params (28x28x1, 10 classes)
    z ~ U[0, 1]^100 -> Linear, ReLU         200            20,200
    one-hot y (10)  -> Linear, ReLU         1000           11,000
    [200 ++ 1000] -> dropout, Linear, ReLU  1200        1,441,200
    dropout, Linear, sigmoid -> 2s - 1      784 = 1x28x28  941,584
                                                          total 2,413,984

"The discriminator maps x to a maxout layer with 240 units and 5 pieces, and y
to a maxout layer with 50 units and 5 pieces. Both of the hidden layers [are]
mapped to a joint maxout layer with 240 units and 4 pieces before being fed to
the sigmoid layer."

    D layer                                 output        params
    x (784) -> dropout, maxout 240 x 5      240           942,000
    one-hot y (10) -> maxout 50 x 5         50              2,750
    [240 ++ 50] -> dropout, maxout 240 x 4  240           279,360
    dropout, Linear -> logit                1                 241   (sigmoid in the loss)
                                                          total 1,224,351

"Dropout with probability of 0.5 was applied to both the generator and
discriminator" (Sec. 4.1) does not say where; see the README's Deviations: here it
drops the inputs of every layer that reads hidden units (both nets) and D's image
input, but never z or the label y (dropping the one-hot y would hide the condition).
G's dropout stays on when sampling (`GeneratorDropout`): the masks are part of G's
noise, and D was trained against G *with* them; switched off, a briefly trained G
draws nearly the same image for every z (README, Deviations).

The paper's sigmoid output gives images in [0, 1]; the rest of this collection
(data, sample grids, metrics) works in [-1, 1]. So G returns 2 * sigmoid - 1 and D
first maps its input back with (x + 1) / 2: inside, both networks compute exactly the
paper's functions on [0, 1] pixels, and the SGD settings of Sec. 4.1 (used on [0, 1]
MNIST, whose black background is 0 and so feeds no gradient to D's first layer) apply
unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# --channels-last auto: whether these networks train faster in the NHWC memory format, per kind of
# device (common.device.device_kind), as benchmarks/throughput.py measured it (README.md, Speed): the
# conv arch's small convolutions: NHWC is level or faster (the MLP arch ignores it). CUDA is not
# measured yet (no GPU lent so far): on there, as PyTorch advises for convolutions under autocast.
CHANNELS_LAST = {"cpu-fp32": True, "cpu-bf16": True, "cuda": True}

ARCHS = ("conv", "mlp")


def num_blocks(image_size: int) -> int:
    """Number of stride-2 (de)convolutions between 4x4 and the image: log2(size / 4)."""
    n = int(round(math.log2(image_size / 4))) if image_size > 0 else 0
    if image_size < 8 or 4 * 2**n != image_size:
        raise ValueError(f"cGAN --arch conv image size must be a power of two >= 8, got {image_size}")
    return n


# =============================================================== --arch conv
class ConvGenerator(nn.Module):
    """G(z | y): [z, Embedding(y)] -> image in [-1, 1] (the seed's generator)."""

    def __init__(self, nz: int = 100, num_classes: int = 10, embed_size: int = 100, ngf: int = 16,
                 channels: int = 1, image_size: int = 64):
        super().__init__()
        self.nz = nz
        n = num_blocks(image_size)
        self.embed = nn.Embedding(num_classes, embed_size)  # y -> a learned vector joined to z
        width = ngf * 2**n  # 256 at 4x4 for 64x64 with ngf 16 (the seed's features_g * 16)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz + embed_size, width, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(n - 1):  # fractionally-strided convolutions, halving the width
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]  # no BatchNorm at the output
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z.view(z.shape[0], self.nz), self.embed(labels)], dim=1)
        return self.main(h.view(*h.shape, 1, 1))


class ConvCritic(nn.Module):
    """f(x | y): [image, Embedding(y) as an image-sized channel] -> one real score."""

    def __init__(self, num_classes: int = 10, ndf: int = 16, channels: int = 1, image_size: int = 64):
        super().__init__()
        self.image_size = image_size
        n = num_blocks(image_size)
        self.embed = nn.Embedding(num_classes, image_size * image_size)  # y -> a 1xHxW "label image"
        layers: list[nn.Module] = [nn.Conv2d(channels + 1, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for _ in range(n - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                       nn.InstanceNorm2d(width * 2, affine=True), nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0)]  # 4x4xwidth -> one number
        self.main = nn.Sequential(*layers)

    def label_channel(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embed(labels).view(labels.shape[0], 1, self.image_size, self.image_size)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = self.label_channel(labels).to(x.dtype)
        return self.main(torch.cat([x, y], dim=1)).view(-1)


def init_conv_weights(module: nn.Module) -> None:
    """DCGAN's init (Radford et al. Sec. 4), as the seed: conv weights ~ N(0, 0.02);
    BatchNorm scale ~ N(1, 0.02) (the seed draws it from N(0, 0.02); see README); biases 0.
    Embeddings and InstanceNorm keep PyTorch's init (N(0, 1); scale 1, shift 0), as in the seed."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# ================================================================ --arch mlp
# Maxout and init_irange: the same pylearn2 pieces as in simple_gan/model.py (the GAN paper's code,
# on which Sec. 4.1 builds), each folder with its own copy.
class Maxout(nn.Module):
    """Maxout layer (Goodfellow et al. 2013), the unit of Sec. 4.1's discriminator ("maps x to
    a maxout layer with 240 units and 5 pieces"): `units` outputs, each the max over `pieces`
    affine functions of the input, h_i = max_j (x W_ij + b_ij). One Linear computes all
    units x pieces of them."""

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.units, self.pieces).amax(dim=2)


class GeneratorDropout(nn.Dropout):
    """Dropout that stays on in eval mode: in G it is a source of noise, like z. G is trained
    as a function of (z, y, masks), so its samples keep the masks (inverted dropout: kept
    units are scaled by 1 / (1 - p), as in training)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=True, inplace=self.inplace)


class MLPGenerator(nn.Module):
    """G(z | y) of Sec. 4.1: z -> 200 ReLU, y -> 1000 ReLU, joined -> 1200 ReLU -> sigmoid."""

    def __init__(self, nz: int = 100, num_classes: int = 10, channels: int = 1, image_size: int = 28,
                 dropout: float = 0.5):
        super().__init__()
        self.nz, self.num_classes, self.shape = nz, num_classes, (channels, image_size, image_size)
        self.z_layer = nn.Sequential(nn.Linear(nz, 200), nn.ReLU(True))
        self.y_layer = nn.Sequential(nn.Linear(num_classes, 1000), nn.ReLU(True))
        self.joint = nn.Sequential(GeneratorDropout(dropout), nn.Linear(1200, 1200), nn.ReLU(True))
        self.out = nn.Sequential(GeneratorDropout(dropout), nn.Linear(1200, channels * image_size * image_size))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = F.one_hot(labels, self.num_classes).to(z.dtype)
        h = torch.cat([self.z_layer(z.view(z.shape[0], self.nz)), self.y_layer(y)], dim=1)
        x01 = torch.sigmoid(self.out(self.joint(h)))  # the paper's [0, 1] images
        return (2.0 * x01 - 1.0).view(z.shape[0], *self.shape)  # the collection's [-1, 1]


class MaxoutDiscriminator(nn.Module):
    """D(x | y) of Sec. 4.1: x -> maxout 240x5, y -> maxout 50x5, joined -> maxout 240x4 -> logit."""

    def __init__(self, num_classes: int = 10, channels: int = 1, image_size: int = 28, dropout: float = 0.5):
        super().__init__()
        self.num_classes = num_classes
        self.x_layer = nn.Sequential(nn.Dropout(dropout), Maxout(channels * image_size * image_size, 240, 5))
        self.y_layer = Maxout(num_classes, 50, 5)  # no dropout on the condition itself
        self.joint = nn.Sequential(nn.Dropout(dropout), Maxout(240 + 50, 240, 4))
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(240, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = F.one_hot(labels, self.num_classes).to(x.dtype)
        x01 = (x.reshape(x.shape[0], -1) + 1.0) / 2.0  # back to the paper's [0, 1] pixels (see above)
        h = torch.cat([self.x_layer(x01), self.y_layer(y)], dim=1)
        return self.out(self.joint(h)).view(-1)  # a logit: the sigmoid lives in the loss


G_IRANGE, D_IRANGE = 0.05, 0.005  # the pylearn2 GAN code's mnist.yaml: irange .05 in G, .005 in D


def init_irange(module: nn.Module, irange: float) -> None:
    """pylearn2's `irange` initialisation for every Linear, a maxout layer's included: weights ~
    U[-irange, irange], biases 0. Sec. 4.1 gives no initialisation; these are the values of the
    pylearn2 GAN code the paper builds on (Goodfellow et al. 2014's mnist.yaml: G_IRANGE for G,
    D_IRANGE for D). Use as model.apply(lambda m: init_irange(m, G_IRANGE))."""
    if isinstance(module, nn.Linear):
        nn.init.uniform_(module.weight, -irange, irange)
        nn.init.zeros_(module.bias)


# ==================================================================== both
def build_models(o: dict) -> tuple[nn.Module, nn.Module]:
    """(G, D) for the options `o` (train.py's resolved options, or a checkpoint's), initialised."""
    arch = o.get("arch", "conv")
    if arch == "conv":
        G = ConvGenerator(o["nz"], o["num_classes"], o["embed_size"], o["ngf"], o["channels"], o["image_size"])
        D = ConvCritic(o["num_classes"], o["ndf"], o["channels"], o["image_size"])
        G.apply(init_conv_weights)
        D.apply(init_conv_weights)
    elif arch == "mlp":
        G = MLPGenerator(o["nz"], o["num_classes"], o["channels"], o["image_size"], o.get("dropout_g", 0.5))
        D = MaxoutDiscriminator(o["num_classes"], o["channels"], o["image_size"], o.get("dropout_d", 0.5))
        G.apply(lambda m: init_irange(m, G_IRANGE))
        D.apply(lambda m: init_irange(m, D_IRANGE))
    else:
        raise ValueError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
    return G, D


def build_generator(o: dict) -> nn.Module:
    """G of either --arch, as the options `o` (a checkpoint's) describe it (generate.py, evaluate.py)."""
    return build_models(o)[0]
