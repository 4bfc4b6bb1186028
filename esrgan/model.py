"""ESRGAN networks (Wang et al. 2018, arXiv:1809.00219, Sec. 3 and Figs. 3-4).

Notation: nf = trunk width, gc = growth channels of a dense block, nb = number of RRDBs,
beta = residual scaling, LReLU = LeakyReLU(0.2); every convolution is 3x3, stride 1, padding 1,
with a bias, unless said otherwise.

    Generator (SRResNet layout, Fig. 3, with BatchNorm removed and RRDBs as the basic block, Sec. 3.1):
      conv_first 3->nf
      trunk: RRDB x nb, then trunk_conv nf->nf; the conv_first output is added back (global skip)
      log2(scale) x [nearest-neighbour x2, upconv nf->nf, LReLU]       (two for x4)
      HRconv nf->nf, LReLU, conv_last nf->3
    RRDB (Fig. 4, right): x + beta * RDB3(RDB2(RDB1(x)))
    Dense block RDB: five convolutions, conv k sees [x, x1, .., x(k-1)] (nf + (k-1) gc channels);
      conv1..conv4 give gc channels + LReLU, conv5 gives nf with no activation; x + beta * x5
    beta = 0.2; dense-block convolutions start from Kaiming-normal weights times 0.1 ("smaller
      initialization", Sec. 3.1).

    Discriminator (VGG-style, as SRGAN's; the official code's discriminator_vgg_128), 128x128 input:
      C64(bias, no BN) C64/2 C128 C128/2 C256 C256/2 C512 C512/2 C512 C512/2
      (Ck: 3x3 stride 1 + BN + LReLU; Ck/2: 4x4 stride 2 + BN + LReLU; no bias before a BN)
      flatten 512*4*4, linear 100, LReLU, linear 1: a raw logit C(x), which the relativistic
      average loss (Sec. 3.2) compares between real and fake, so there is no sigmoid here.

Network interpolation (Sec. 3.4) blends a PSNR-oriented and a GAN generator parameter by parameter.
Parameter and module names follow the official code (xinntao/ESRGAN), so its released x4 weights
(RRDB_ESRGAN_x4.pth, 16,697,987 parameters) load into RRDBNet with load_state_dict.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# --channels-last auto: whether these networks train faster in the NHWC memory format, per kind of
# device (common.device.device_kind), as benchmarks/throughput.py measured it (README.md, Speed):
# RRDBNet's dense concatenations lose a little in fp32 NHWC; in bf16 NHWC gains. CUDA is not measured
# yet (no GPU lent so far): on there, as PyTorch advises for convolutions under autocast.
CHANNELS_LAST = {"cpu-fp32": False, "cpu-bf16": True, "cuda": True}

BETA = 0.2  # residual scaling of Sec. 3.1 / Fig. 4, in both the dense blocks and the RRDBs
INIT_SCALE = 0.1  # the "smaller initialization": Kaiming weights times 0.1 in the dense blocks
D_INPUT_SIZE = 128  # the VGG-style D's linear layer is sized for 128x128 HR crops (five halvings -> 4x4)


def conv3x3(c_in: int, c_out: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)


class ResidualDenseBlock(nn.Module):
    """The dense block inside an RRDB (Fig. 4, right): five 3x3 convolutions with dense
    connections (each reads the block input and every earlier output, concatenated), no
    BatchNorm (Sec. 3.1), and a residual scaled by beta so that a deep trunk of such blocks
    starts close to the identity and trains stably."""

    def __init__(self, nf: int = 64, gc: int = 32):
        super().__init__()
        # conv k (1-based) sees nf + (k - 1) * gc channels; conv5 maps back to nf for the residual
        self.conv1 = conv3x3(nf, gc)
        self.conv2 = conv3x3(nf + gc, gc)
        self.conv3 = conv3x3(nf + 2 * gc, gc)
        self.conv4 = conv3x3(nf + 3 * gc, gc)
        self.conv5 = conv3x3(nf + 4 * gc, nf)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            features.append(self.lrelu(conv(torch.cat(features, dim=1))))
        residual = self.conv5(torch.cat(features, dim=1))  # linear: the residual may be negative
        return x + BETA * residual


class RRDB(nn.Module):
    """Residual-in-Residual Dense Block (Sec. 3.1, Fig. 4): three dense blocks in sequence
    inside an outer residual connection, itself scaled by beta."""

    def __init__(self, nf: int = 64, gc: int = 32):
        super().__init__()
        self.RDB1 = ResidualDenseBlock(nf, gc)
        self.RDB2 = ResidualDenseBlock(nf, gc)
        self.RDB3 = ResidualDenseBlock(nf, gc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + BETA * self.RDB3(self.RDB2(self.RDB1(x)))


class RRDBNet(nn.Module):
    """The generator (Fig. 3): SRResNet's layout with BatchNorm removed and RRDBs as the basic
    block (Sec. 3.1). Nearly all work happens at the LR resolution; upsampling is nearest-
    neighbour x2 followed by a convolution, once per factor of two, as in the official code.
    Output is not squashed (no Tanh): the official model works on [0, 1] images and clamps
    only when saving."""

    def __init__(self, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 23, gc: int = 32, scale: int = 4):
        super().__init__()
        n_up = int(math.log2(scale)) if scale >= 2 else 0
        if 2 ** n_up != scale or n_up == 0:
            raise ValueError(f"ESRGAN's generator upsamples by a power of two (2, 4, 8, ...), got scale {scale}")
        self.scale = scale
        self.conv_first = conv3x3(in_nc, nf)
        self.RRDB_trunk = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.trunk_conv = conv3x3(nf, nf)
        # upconv1, upconv2 (, ...): the official names, so its x4 state dict loads as is
        for i in range(1, n_up + 1):
            self.add_module(f"upconv{i}", conv3x3(nf, nf))
        self.n_up = n_up
        self.HRconv = conv3x3(nf, nf)
        self.conv_last = conv3x3(nf, out_nc)
        self.lrelu = nn.LeakyReLU(0.2)
        init_weights(self, INIT_SCALE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv_first(x)
        # global skip: the trunk only has to learn what the first convolution's features lack
        features = features + self.trunk_conv(self.RRDB_trunk(features))
        for i in range(1, self.n_up + 1):
            # nearest neighbour + convolution, not a transposed convolution: no checkerboard pattern
            up = F.interpolate(features, scale_factor=2, mode="nearest")
            features = self.lrelu(getattr(self, f"upconv{i}")(up))
        return self.conv_last(self.lrelu(self.HRconv(features)))


class VGGDiscriminator128(nn.Module):
    """The discriminator: SRGAN's VGG-style classifier as the official ESRGAN training code
    builds it (discriminator_vgg_128). Five stages, each a 3x3 convolution then a 4x4 stride-2
    one, take 128x128 to 4x4 with 64-128-256-512-512 channels; two linear layers give one raw
    logit C(x) per image. The relativistic average loss (Sec. 3.2) uses C(x_r) - E[C(x_f)],
    so no sigmoid is applied here."""

    def __init__(self, in_nc: int = 3, ndf: int = 64):
        super().__init__()
        widths = [ndf, ndf * 2, ndf * 4, ndf * 8, ndf * 8]
        self.conv0_0 = nn.Conv2d(in_nc, ndf, 3, 1, 1, bias=True)  # the only convolution without a BatchNorm after it
        self.conv0_1 = nn.Conv2d(ndf, ndf, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(ndf)
        width = ndf
        for stage, nxt in enumerate(widths[1:], start=1):
            # no bias before a BatchNorm: its shift would be removed by the normalisation
            self.add_module(f"conv{stage}_0", nn.Conv2d(width, nxt, 3, 1, 1, bias=False))
            self.add_module(f"bn{stage}_0", nn.BatchNorm2d(nxt))
            self.add_module(f"conv{stage}_1", nn.Conv2d(nxt, nxt, 4, 2, 1, bias=False))
            self.add_module(f"bn{stage}_1", nn.BatchNorm2d(nxt))
            width = nxt
        self.n_stages = len(widths)
        self.final_width = width
        side = D_INPUT_SIZE // 2 ** len(widths)  # five halvings: 128 -> 4
        self.linear1 = nn.Linear(width * side * side, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (D_INPUT_SIZE, D_INPUT_SIZE):
            raise ValueError(f"the VGG-style discriminator takes (N, C, {D_INPUT_SIZE}, {D_INPUT_SIZE}) HR crops "
                             f"(its linear layer is sized for a 4x4 map), got shape {tuple(x.shape)}")
        x = self.lrelu(self.conv0_0(x))
        x = self.lrelu(self.bn0_1(self.conv0_1(x)))
        for stage in range(1, self.n_stages):
            for half in (0, 1):
                conv, bn = getattr(self, f"conv{stage}_{half}"), getattr(self, f"bn{stage}_{half}")
                x = self.lrelu(bn(conv(x)))
        return self.linear2(self.lrelu(self.linear1(x.flatten(1))))


def init_weights(model: nn.Module, scale: float = INIT_SCALE) -> nn.Module:
    """The "smaller initialization" of Sec. 3.1 as the official training code does it: every
    convolution inside a dense block gets Kaiming-normal weights (fan_in, gain sqrt(2)) times
    `scale`, and zero biases, so each residual starts small and the deep trunk near the
    identity. Other layers keep PyTorch's default initialisation, as in the official code."""
    for block in model.modules():
        if isinstance(block, ResidualDenseBlock):
            for conv in (block.conv1, block.conv2, block.conv3, block.conv4, block.conv5):
                nn.init.kaiming_normal_(conv.weight, a=0, mode="fan_in")
                with torch.no_grad():
                    conv.weight.mul_(scale)
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)
    return model


def interpolate_state(psnr_state: dict, gan_state: dict, alpha: float) -> dict:
    """Network interpolation (Sec. 3.4): theta = (1 - alpha) * theta_PSNR + alpha * theta_GAN,
    parameter by parameter; alpha = 0 gives the PSNR-oriented model, 1 the GAN one. Both states
    must come from the same architecture. Non-float entries (counters) are taken from the GAN state."""
    if set(psnr_state) != set(gan_state):
        only_psnr = sorted(set(psnr_state) - set(gan_state))
        only_gan = sorted(set(gan_state) - set(psnr_state))
        raise ValueError(f"network interpolation needs two states of the same architecture; keys only in the "
                         f"PSNR state: {only_psnr[:5]}, only in the GAN state: {only_gan[:5]}")
    blended = {}
    for key, gan in gan_state.items():
        psnr = psnr_state[key]
        if psnr.shape != gan.shape:
            raise ValueError(f"network interpolation: '{key}' has shape {tuple(psnr.shape)} in the PSNR state "
                             f"and {tuple(gan.shape)} in the GAN state")
        if gan.is_floating_point():
            blended[key] = (1 - alpha) * psnr + alpha * gan
        else:
            blended[key] = gan.clone()
    return blended


def build_generator(options: dict) -> RRDBNet:
    """The paper's x4 generator is nf 64, nb 23, gc 32 (the official RRDB_ESRGAN_x4)."""
    return RRDBNet(options.get("input_channels", 3), options.get("output_channels", 3), options.get("nf", 64),
                   options.get("nb", 23), options.get("gc", 32), options.get("scale", 4))


def build_discriminator(options: dict) -> VGGDiscriminator128:
    return VGGDiscriminator128(options.get("output_channels", 3), options.get("ndf", 64))
