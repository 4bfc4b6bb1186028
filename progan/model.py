"""The networks of ProGAN (Karras, Aila, Laine, Lehtinen 2018, arXiv:1710.10196), Table 2.

Both networks are built once for the final resolution (`max_resolution`) and grow by using
more of their blocks: `set_stage(resolution, alpha)` says which blocks are live and how far
the newest one has faded in (Sec. 3, Fig. 2). The stage is part of the state dict (extra
state), so a checkpoint's G samples at the resolution it had reached.

Generator (Table 2, left), per resolution r = 4, 8, ..., max_resolution:
    4x4:  latent 512 -> pixel norm -> "Conv 4x4" (a dense layer to 512x4x4) -> Conv 3x3
    r>4:  Upsample (nearest) -> Conv 3x3 -> Conv 3x3
    toRGB_r: Conv 1x1 to 3 channels, linear
Discriminator (Table 2, right), from the current resolution down:
    fromRGB_r: Conv 1x1 from 3 channels
    r>4:  Conv 3x3 -> Conv 3x3 -> Downsample (2x2 average)
    4x4:  minibatch stddev (+1 channel) -> Conv 3x3 -> "Conv 4x4" (a dense layer) -> Fully-connected 1
Widths: 512 up to 32x32, then 256, 128, 64, 32, 16 at 64..1024 (n_features). Every conv and
dense layer uses the equalised learning rate (Sec. 4.1) and LeakyReLU 0.2, except toRGB and
D's last layer, which are linear; G has pixelwise feature normalisation after each conv
(Sec. 4.2); nothing has BatchNorm.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# --channels-last auto: whether these networks train faster in the NHWC memory format, per kind of
# device (common.device.device_kind), as benchmarks/throughput.py measured it (README.md, Speed):
# level in fp32 (so PyTorch's default), faster in bf16. CUDA is not measured yet (no GPU lent so far):
# on there, as PyTorch advises for convolutions under autocast.
CHANNELS_LAST = {"cpu-fp32": False, "cpu-bf16": True, "cuda": True}

LEAK = 0.2  # LeakyReLU slope everywhere (Appendix A.1)
HE_GAIN = math.sqrt(2.0)  # He's gain for a LeakyReLU/ReLU layer


def n_features(resolution: int, fmap_base: int = 8192, fmap_max: int = 512) -> int:
    """Feature maps at `resolution` (Table 2): min(fmap_base * 2 / r, fmap_max), i.e. 512 up to
    32x32, then 256, 128, 64, 32 and 16 at 64..1024 (the official code's nf())."""
    return max(1, min(fmap_base * 2 // resolution, fmap_max))


def resolutions_up_to(max_resolution: int) -> list[int]:
    """4, 8, ..., max_resolution (a power of two, at least 4)."""
    if max_resolution < 4 or max_resolution & (max_resolution - 1):
        raise ValueError(f"the resolution must be a power of two of at least 4, not {max_resolution}")
    return [2 ** k for k in range(2, int(math.log2(max_resolution)) + 1)]


# ------------------------------------------------------------ Sec. 4.1 and 4.2
class EqualizedConv2d(nn.Module):
    """A conv whose weights are drawn from N(0, 1) and scaled at run time by He's constant
    c = gain / sqrt(fan_in) (Sec. 4.1, "equalized learning rate"): w_hat = w * c. Adam's
    update is scale-free, so every layer then learns at the same effective speed."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = HE_GAIN):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """A dense layer with the equalised learning rate (Sec. 4.1); `bias=False` where the bias
    is added per feature map after a reshape (G's first layer, as a 4x4 conv adds it)."""

    def __init__(self, in_features: int, out_features: int, gain: float = HE_GAIN, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Eq. of Sec. 4.2: b_xy = a_xy / sqrt(1/N sum_j (a^j_xy)^2 + eps), over the N channels of
    each pixel; on the latent it puts z on the sphere of radius sqrt(512) (Appendix A.1)."""
    return x * torch.rsqrt(x.float().square().mean(dim=1, keepdim=True) + eps).to(x.dtype)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Sec. 3's minibatch standard deviation, in groups as the official code computes it: the
    batch splits into groups of `group_size` (samples i, i + M, i + 2M, ... with M = N / G);
    the std of each feature at each pixel over a group, averaged over features and pixels,
    is one number per group, appended to each of its samples as a constant extra channel."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g:
        raise ValueError(f"minibatch stddev: the batch ({n}) must be a multiple of the group size ({g})")
    y = x.float().reshape(g, n // g, c, h, w)
    y = (y - y.mean(dim=0, keepdim=True)).square().mean(dim=0)  # variance over the group: [M, C, H, W]
    y = (y + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [M]
    y = y.reshape(1, n // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)  # sample j*M + m gets y[m]
    return torch.cat([x, y.to(x.dtype)], dim=1)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAK)


# ----------------------------------------------------------------- the stage
class Growing(nn.Module):
    """What G and D share: the resolution reached and the fade-in weight alpha of its block,
    saved in the state dict so that a checkpoint knows its own stage."""

    def __init__(self, max_resolution: int):
        super().__init__()
        self.resolutions = resolutions_up_to(max_resolution)
        self.max_resolution = max_resolution
        self.resolution, self.alpha = 4, 1.0

    def set_stage(self, resolution: int, alpha: float = 1.0) -> None:
        """Grow to `resolution`, its newest block faded in by `alpha` (1: fully in; Fig. 2)."""
        if resolution not in self.resolutions:
            raise ValueError(f"resolution {resolution} is not one of {self.resolutions}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], not {alpha}")
        self.resolution, self.alpha = int(resolution), float(alpha)

    @property
    def level(self) -> int:
        """Index of the current resolution: 0 for 4x4."""
        return self.resolutions.index(self.resolution)

    @property
    def fading(self) -> bool:
        return self.level > 0 and self.alpha < 1.0

    def get_extra_state(self) -> dict:
        return {"resolution": self.resolution, "alpha": self.alpha}

    def set_extra_state(self, state: dict) -> None:
        self.set_stage(int(state["resolution"]), float(state["alpha"]))


# ----------------------------------------------------------------- generator
class GeneratorFirstBlock(nn.Module):
    """Table 2, G at 4x4: "Conv 4x4" from the 512x1x1 latent, then Conv 3x3. The 4x4 conv on a
    1x1 input padded by 3 is a dense layer to C*4*4 with one bias per map; its fan-in is then
    512, where the conv's is 512*16, hence the gain sqrt(2)/4 (the official code's choice)
    that gives the same He constant as the conv."""

    def __init__(self, nz: int, channels: int):
        super().__init__()
        self.channels = channels
        self.dense = EqualizedLinear(nz, channels * 16, gain=HE_GAIN / 4, bias=False)
        self.bias = nn.Parameter(torch.zeros(channels))  # one per map, as the 4x4 conv has
        self.conv = EqualizedConv2d(channels, channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(pixel_norm(z)).view(-1, self.channels, 4, 4) + self.bias.view(1, -1, 1, 1)
        x = pixel_norm(lrelu(x))
        return pixel_norm(lrelu(self.conv(x)))


class GeneratorBlock(nn.Module):
    """Table 2, G at r > 4: Upsample (nearest), Conv 3x3, Conv 3x3, each + LReLU + pixel norm."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv2 = EqualizedConv2d(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = pixel_norm(lrelu(self.conv1(x)))
        return pixel_norm(lrelu(self.conv2(x)))


class Generator(Growing):
    """G of Table 2 up to `max_resolution`; forward(z) renders at the current stage:
    toRGB of the newest block, blended during a fade-in with the upsampled toRGB of the one
    before: (1 - alpha) * upsample(toRGB_{r/2}(x_{r/2})) + alpha * toRGB_r(x_r) (Fig. 2b)."""

    def __init__(self, max_resolution: int = 1024, nz: int = 512, channels: int = 3, fmap_base: int = 8192,
                 fmap_max: int = 512):
        super().__init__(max_resolution)
        self.nz = nz
        nf = [n_features(r, fmap_base, fmap_max) for r in self.resolutions]
        self.blocks = nn.ModuleList([GeneratorFirstBlock(nz, nf[0])] +
                                    [GeneratorBlock(nf[i - 1], nf[i]) for i in range(1, len(nf))])
        self.to_rgb = nn.ModuleList([EqualizedConv2d(c, channels, 1, gain=1.0) for c in nf])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.blocks[0](z)
        previous = x
        for block in self.blocks[1:self.level + 1]:
            previous, x = x, block(x)
        image = self.to_rgb[self.level](x)
        if self.fading:
            old = F.interpolate(self.to_rgb[self.level - 1](previous), scale_factor=2, mode="nearest")
            image = torch.lerp(old, image, self.alpha)
        return image


# ------------------------------------------------------------- discriminator
class DiscriminatorBlock(nn.Module):
    """Table 2, D at r > 4: Conv 3x3 (C_r -> C_r), Conv 3x3 (C_r -> C_{r/2}), each + LReLU,
    then Downsample (2x2 average pooling)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv2 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(lrelu(self.conv2(lrelu(self.conv1(x)))), 2)


class DiscriminatorLastBlock(nn.Module):
    """Table 2, D at 4x4: minibatch stddev (C -> C + 1), Conv 3x3, "Conv 4x4" (a dense layer
    from C*4*4, the same thing on a 4x4 input), Fully-connected to 1, linear (a critic)."""

    def __init__(self, channels: int, group_size: int = 4):
        super().__init__()
        self.group_size = group_size
        self.conv = EqualizedConv2d(channels + 1, channels, 3)
        self.dense = EqualizedLinear(channels * 16, channels)
        self.out = EqualizedLinear(channels, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = lrelu(self.conv(minibatch_stddev(x, self.group_size)))
        x = lrelu(self.dense(x.flatten(1)))
        return self.out(x)


class Discriminator(Growing):
    """D of Table 2 up to `max_resolution`; forward(x) judges images at the current stage.
    During a fade-in the new block's output is blended with the old path's:
    (1 - alpha) * fromRGB_{r/2}(avgpool(x)) + alpha * block_r(fromRGB_r(x)) (Fig. 2b)."""

    def __init__(self, max_resolution: int = 1024, channels: int = 3, fmap_base: int = 8192, fmap_max: int = 512,
                 mbstd_group: int = 4):
        super().__init__(max_resolution)
        nf = [n_features(r, fmap_base, fmap_max) for r in self.resolutions]
        self.from_rgb = nn.ModuleList([EqualizedConv2d(channels, c, 1) for c in nf])
        self.blocks = nn.ModuleList([DiscriminatorLastBlock(nf[0], mbstd_group)] +
                                    [DiscriminatorBlock(nf[i], nf[i - 1]) for i in range(1, len(nf))])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-1] != self.resolution or image.shape[-2] != self.resolution:
            raise ValueError(f"D is at {self.resolution}x{self.resolution}, got images of "
                             f"{image.shape[-2]}x{image.shape[-1]}")
        x = lrelu(self.from_rgb[self.level](image))
        for i in range(self.level, -1, -1):
            x = self.blocks[i](x)
            if i == self.level and self.fading:
                old = lrelu(self.from_rgb[self.level - 1](F.avg_pool2d(image, 2)))
                x = torch.lerp(old, x, self.alpha)
        return x.squeeze(1)


def build_generator(options: dict) -> Generator:
    """G as a run's options describe it (generate.py, evaluate.py)."""
    return Generator(options["max_resolution"], options["nz"], options["channels"], options["fmap_base"],
                     options["fmap_max"])
