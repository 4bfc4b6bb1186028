"""LAPGAN's networks (Denton, Chintala, Szlam, Fergus 2015, Sec. 4, "Model Architecture"),
layer for layer as in the authors' CIFAR-10 code (facebook/eyescream, cifar/scripts/).

    level K (coarsest, 8x8):  G_K, D_K  fully connected, 2 hidden ReLU layers     (CoarseGenerator / CoarseDiscriminator)
    level k < K (16x16, 32x32): G_k  3 conv layers, D_k  2 conv layers + linear  (RefineGenerator / RefineDiscriminator)
    the cascade (Sec. 3, Fig. 1): I~_K = G_K(z_K); I~_k = u(I~_{k+1}) + G_k(z_k, u(I~_{k+1}))  (LAPGANGenerator)

Every D returns a logit (the sigmoid lives in the loss). The class-conditional variant (Sec. 4,
"class conditional") gives each network the one-hot label c as an extra input: concatenated to
the input vector of the fully connected level, and at the convolutional levels passed through a
linear layer + ReLU whose output is reshaped into one extra feature plane of the level's size.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .utils import level_sizes, upsample

# --channels-last auto: whether these networks train faster in the NHWC memory format, per kind of
# device (common.device.device_kind), as benchmarks/throughput.py measured it (README.md, Speed): the
# small 32x32 levels run slower in fp32 NHWC without AVX-512, faster in bf16. CUDA is not measured yet
# (no GPU lent so far): on there, as PyTorch advises for convolutions under autocast.
CHANNELS_LAST = {"cpu-fp32": False, "cpu-bf16": True, "cuda": True}


def one_hot(labels: torch.Tensor | None, num_classes: int, like: torch.Tensor) -> torch.Tensor | None:
    """The class vector c (float, on `like`'s device and dtype), or None when unconditional."""
    if not num_classes:
        return None
    if labels is None:
        raise ValueError("this is a class-conditional LAPGAN: pass the labels")
    return F.one_hot(labels.long(), num_classes).to(device=like.device, dtype=like.dtype)


class ClassPlane(nn.Module):
    """c -> Linear -> ReLU -> one size x size feature map (Sec. 4; the authors' code: nn.Linear(10, s*s),
    ReLU, reshaped to 1 x s x s), concatenated with the first layer's input maps."""

    def __init__(self, num_classes: int, size: int):
        super().__init__()
        self.size = size
        self.linear = nn.Linear(num_classes, size * size)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return F.relu(self.linear(c)).view(-1, 1, self.size, self.size)


# ------------------------------------------------------------ level K: fully connected
class CoarseGenerator(nn.Module):
    """G_K (Sec. 4, "Initial scale"): z_K (100-d, uniform) [+ c] -> Linear -> ReLU -> Linear -> ReLU
    -> Linear -> C x s x s. No output nonlinearity, as in the authors' code."""

    def __init__(self, nz: int = 100, hidden: int = 1200, channels: int = 3, size: int = 8, num_classes: int = 0):
        super().__init__()
        self.nz, self.channels, self.size, self.num_classes = nz, channels, size, num_classes
        self.main = nn.Sequential(
            nn.Linear(nz + num_classes, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, channels * size * size))

    def forward(self, z: torch.Tensor, low: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        c = one_hot(labels, self.num_classes, z)
        x = z if c is None else torch.cat([z, c], dim=1)
        return self.main(x).view(-1, self.channels, self.size, self.size)


class CoarseDiscriminator(nn.Module):
    """D_K (Sec. 4): image (flattened) [+ c] -> Linear -> ReLU -> Dropout -> Linear -> ReLU -> Dropout
    -> Linear -> logit. Dropout p = 0.5 (torch7's nn.Dropout() default)."""

    def __init__(self, hidden: int = 600, channels: int = 3, size: int = 8, num_classes: int = 0,
                 dropout: float = 0.5):
        super().__init__()
        self.num_classes = num_classes
        self.main = nn.Sequential(
            nn.Linear(channels * size * size + num_classes, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, 1))

    def forward(self, image: torch.Tensor, low: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        x = image.reshape(image.shape[0], -1)
        c = one_hot(labels, self.num_classes, x)
        return self.main(x if c is None else torch.cat([x, c], dim=1)).view(-1)


# --------------------------------------------------------- levels k < K: convolutional
class RefineGenerator(nn.Module):
    """G_k (Sec. 4, "Subsequent scales": a 3-layer convnet): input maps [z_k, (class plane), l_k],
    z_k one U[-1, 1] plane ("a 4th colour plane"), l_k = u(I_{k+1}) the upsampled coarser image;
    conv 7x7 -> ReLU -> conv 7x7 -> ReLU -> conv 5x5 -> h~_k (C maps, no output nonlinearity).
    Every conv is 'same'-padded, stride 1 (the authors' SpatialConvolutionUpsample with factor 1)."""

    def __init__(self, channels: int = 3, width: int = 64, size: int = 32, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.class_plane = ClassPlane(num_classes, size) if num_classes else None
        in_maps = 1 + (1 if num_classes else 0) + channels
        self.main = nn.Sequential(
            nn.Conv2d(in_maps, width, 7, padding=3), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 7, padding=3), nn.ReLU(inplace=True),
            nn.Conv2d(width, channels, 5, padding=2))

    def forward(self, noise: torch.Tensor, low: torch.Tensor, labels: torch.Tensor | None = None):
        maps = [noise, low]
        if self.class_plane is not None:  # the authors' order: noise, class plane, coarse image
            maps.insert(1, self.class_plane(one_hot(labels, self.num_classes, low)))
        return self.main(torch.cat(maps, dim=1))


class RefineDiscriminator(nn.Module):
    """D_k (Sec. 4: a 2-layer convnet): h_k or h~_k *added* to l_k (Sec. 4: "explicitly added ...
    before the first convolution layer"), [+ class plane]; conv 5x5 (valid) -> ReLU -> conv 5x5
    stride 2 (valid) -> ReLU -> Dropout -> Linear -> logit."""

    def __init__(self, channels: int = 3, width: int = 64, size: int = 32, num_classes: int = 0,
                 dropout: float = 0.5):
        super().__init__()
        self.num_classes = num_classes
        self.class_plane = ClassPlane(num_classes, size) if num_classes else None
        out = ((size - 4) - 5) // 2 + 1  # two valid 5x5 convolutions, the second with stride 2
        if out < 1:
            raise ValueError(f"a refinement level needs at least 16x16 images, got {size}x{size}")
        self.main = nn.Sequential(
            nn.Conv2d(channels + (1 if num_classes else 0), width, 5), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 5, stride=2), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Flatten(), nn.Linear(width * out * out, 1))

    def forward(self, band: torch.Tensor, low: torch.Tensor, labels: torch.Tensor | None = None):
        x = band + low
        if self.class_plane is not None:
            x = torch.cat([x, self.class_plane(one_hot(labels, self.num_classes, x))], dim=1)
        return self.main(x).view(-1)


# ------------------------------------------------------------------- the cascade
class LAPGANGenerator(nn.Module):
    """The generative cascade (Sec. 3, Fig. 1): `levels[k]` is G_k, level 0 the finest.

    `forward(latent)` takes one flat vector per sample (lapgan.utils.latents): z_K, then the noise
    plane of each refinement level coarse to fine, then (conditional variant) the class index as a
    float, so that common.metrics / common.inference can treat the whole cascade as one G.
    `cascade(...)` is the same with the pieces given separately, and returns every level."""

    def __init__(self, levels: int = 3, image_size: int = 32, channels: int = 3, nz: int = 100,
                 coarse_hidden: int = 1200, ngf: int = 64, num_classes: int = 0):
        super().__init__()
        self.sizes = level_sizes(image_size, levels)
        self.nz, self.channels, self.num_classes = nz, channels, num_classes
        self.levels = nn.ModuleList(
            [RefineGenerator(channels, ngf, s, num_classes) for s in self.sizes[:-1]]
            + [CoarseGenerator(nz, coarse_hidden, channels, self.sizes[-1], num_classes)])

    def split(self, latent: torch.Tensor):
        """(z_K, [noise plane of level K-1, ..., level 0], labels or None) from the flat latent."""
        z, rest = latent[:, :self.nz], latent[:, self.nz:]
        planes = []
        for s in reversed(self.sizes[:-1]):
            planes.append(rest[:, :s * s].reshape(-1, 1, s, s))
            rest = rest[:, s * s:]
        labels = rest[:, 0].round().long() if self.num_classes else None
        return z, planes, labels

    def cascade(self, z: torch.Tensor | None, planes: list[torch.Tensor], labels: torch.Tensor | None = None,
                start: torch.Tensor | None = None) -> list[torch.Tensor]:
        """[I~_K, ..., I~_0], coarse to fine. I~_K = G_K(z_K), or `start` (a given coarse image, the
        paper's conditional sampling) at the level whose size it has; then for each finer
        level I~_k = l_k + G_k(z_k, l_k) with l_k = u(I~_{k+1}). `planes` holds the noise of each
        level still to run, coarse to fine (extra ones are ignored from the front)."""
        if start is None:
            image, first = self.levels[-1](z, None, labels), len(self.sizes) - 1
        else:
            if start.shape[-1] not in self.sizes:
                raise ValueError(f"a {start.shape[-1]}x{start.shape[-1]} start image fits no level of "
                                 f"{self.sizes}")
            image, first = start, self.sizes.index(start.shape[-1])
        out = [image]
        planes = planes[len(planes) - first:] if first else []
        for k, noise in zip(range(first - 1, -1, -1), planes):
            low = upsample(image)
            image = low + self.levels[k](noise, low, labels)
            out.append(image)
        return out

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        z, planes, labels = self.split(latent)
        return self.cascade(z, planes, labels)[-1]


class LAPGANDiscriminator(nn.Module):
    """The discriminators D_0 .. D_K, one per level (each trains on its own level only)."""

    def __init__(self, levels: int = 3, image_size: int = 32, channels: int = 3, coarse_hidden: int = 600,
                 ndf: int = 64, num_classes: int = 0, dropout: float = 0.5):
        super().__init__()
        sizes = level_sizes(image_size, levels)
        self.levels = nn.ModuleList(
            [RefineDiscriminator(channels, ndf, s, num_classes, dropout) for s in sizes[:-1]]
            + [CoarseDiscriminator(coarse_hidden, channels, sizes[-1], num_classes, dropout)])


def build_generator(options: dict) -> LAPGANGenerator:
    """The cascade from a run's options (train.py's ARCH_OPTIONS; generate.py / evaluate.py)."""
    return LAPGANGenerator(options["levels"], options["image_size"], options["channels"], options["nz"],
                           options["coarse_hidden_g"], options["ngf"], options.get("num_classes", 0))


def build_discriminator(options: dict) -> LAPGANDiscriminator:
    return LAPGANDiscriminator(options["levels"], options["image_size"], options["channels"],
                               options["coarse_hidden_d"], options["ndf"], options.get("num_classes", 0),
                               options.get("dropout", 0.5))


def init_weights(G: LAPGANGenerator, D: LAPGANDiscriminator, g_std: float = 0.05, d_std: float = 0.005) -> None:
    """The authors' initialisation. The fully connected level (their train_cifar.lua): weights
    N(0, 0.05) in G and N(0, 0.005) in D, biases 0. The convolutional levels (their cascade
    scripts set nothing): torch7's default, uniform on +-1/sqrt(fan_in) for weights and biases,
    which is exactly PyTorch's default for nn.Linear and nn.Conv2d, so they are left as built."""
    for net, std in ((G.levels[-1], g_std), (D.levels[-1], d_std)):
        for m in net.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, std)
                nn.init.zeros_(m.bias)
