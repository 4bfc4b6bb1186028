"""pix2pix networks (Isola et al. 2017, arXiv:1611.07004, Sec. 3.2 and Appendix 6.1).

Notation of the appendix: Ck = Convolution-BatchNorm-ReLU with k filters; CDk the same
with dropout 0.5; every convolution is 4x4 with stride 2 (down in the encoder and the
discriminator, up in the decoder). Encoder ReLUs are leaky (0.2), decoder ReLUs are not.

    U-Net generator, 256x256 (8 downsamplings):
      encoder  C64-C128-C256-C512-C512-C512-C512-C512        (no BatchNorm on C64)
      decoder  CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128 (widths after the skip concat)
      then a convolution to 3 channels and Tanh
    70x70 PatchGAN discriminator: C64-C128-C256-C512, then a convolution to 1 channel

Where the official code (junyanz/pytorch-CycleGAN-and-pix2pix) and the table differ, the
README's Deviations table says which is followed here.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

# --channels-last auto: whether these networks train faster in the NHWC memory format, per kind of
# device (common.device.device_kind), as benchmarks/throughput.py measured it (README.md, Speed): a
# batch-1 U-Net at 256x256 runs slower in NHWC on CPUs. CUDA is not measured yet (no GPU lent so far):
# on there, as PyTorch advises for convolutions under autocast.
CHANNELS_LAST = {"cpu-fp32": False, "cpu-bf16": False, "cuda": True}

NET_G = ("unet", "encoder-decoder")
# Where the U-Net drops out and in what order a skip is concatenated: "paper" (Appendix 6.1.1:
# CD512-CD1024-CD1024, the first three decoder layers; [up, skip]) or "official", the layout of
# junyanz/pytorch-CycleGAN-and-pix2pix's UnetGenerator (dropout in the decoder layers of its
# n_down - 5 middle blocks, the second to the fourth for 256x256; [skip, up]), which its released
# weights need so that test mode drops out the same units (README, Official weights).
UNET_LAYOUTS = ("paper", "official")
# --netD: the paper's Table 3 receptive fields, as the number of stride-2 C-blocks after C64
# (the official code's n_layers); "pixel" is the 1x1 PixelGAN, built from 1x1 convolutions.
NET_D = {"pixel": None, "patch16": 1, "patch70": 3, "image": 5}


def num_downs(image_size: int) -> int:
    """Downsamplings that take `image_size` to 1x1 at the bottleneck: 8 for 256 (the paper's)."""
    n = int(math.log2(image_size))
    if 2 ** n != image_size or n < 5:
        raise ValueError(f"the U-Net needs a power-of-two image size of at least 32, got {image_size}")
    return n


def encoder_widths(ngf: int, n_down: int) -> list[int]:
    """C64-C128-C256-C512-C512-...: doubling from ngf, capped at 8*ngf."""
    return [ngf * min(2 ** i, 8) for i in range(n_down)]


class Down(nn.Sequential):
    """Encoder block Ck: LeakyReLU(0.2) on the previous output, 4x4 stride-2 convolution,
    BatchNorm. The first block has no activation before it (it sees the image) and no
    BatchNorm (Appendix 6.1.1); the bottleneck block has no BatchNorm either, as in the
    official code: at 1x1 with batch 1 it would normalise every channel to its bias."""

    def __init__(self, c_in: int, c_out: int, *, first: bool = False, norm: bool = True):
        layers = [] if first else [nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False))  # the official code: no bias here
        if norm:
            layers.append(nn.BatchNorm2d(c_out))
        super().__init__(*layers)


class Up(nn.Sequential):
    """Decoder block Ck / CDk: ReLU, 4x4 stride-2 transposed convolution, BatchNorm, and
    dropout 0.5 in CDk. The last block maps to the output channels with a bias and Tanh."""

    def __init__(self, c_in: int, c_out: int, *, dropout: bool = False, last: bool = False):
        layers = [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=last)]
        layers += [nn.Tanh()] if last else [nn.BatchNorm2d(c_out)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        super().__init__(*layers)


class UNetGenerator(nn.Module):
    """The generator of Sec. 3.2.1 / Fig. 3: an encoder-decoder whose decoder layer i also
    receives encoder layer n - i (the skip connections concatenate channels), so low-level
    information such as edge positions can bypass the bottleneck. `skips=False` is the
    paper's "encoder-decoder" ablation (Sec. 4.3, Table 2, Fig. 5): the same layers without skips.

    Dropout 0.5 in the first three decoder layers is G's only noise (Sec. 3.1); it stays on
    at test time in the paper (generate.py's default)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, image_size: int = 256,
                 skips: bool = True, layout: str = "paper"):
        super().__init__()
        if layout not in UNET_LAYOUTS:
            raise ValueError(f"unknown U-Net layout {layout!r}: one of {', '.join(UNET_LAYOUTS)}")
        n = num_downs(image_size)
        widths = encoder_widths(ngf, n)
        self.skips = skips
        self.skip_first = layout == "official"  # concatenate [skip, up] rather than [up, skip]
        dropout_layers = range(3) if layout == "paper" else range(1, n - 4)
        self.encoder = nn.ModuleList(
            [Down(in_channels, widths[0], first=True, norm=False)]
            + [Down(widths[i - 1], widths[i], norm=i < n - 1) for i in range(1, n)])
        grow = 2 if skips else 1  # a skip doubles a decoder layer's input channels
        self.decoder = nn.ModuleList()
        for j in range(n):  # decoder layer j mirrors encoder layer n - 1 - j
            c_in = widths[n - 1 - j] * (grow if j > 0 else 1)
            if j < n - 1:
                self.decoder.append(Up(c_in, widths[n - 2 - j], dropout=j in dropout_layers))
            else:
                self.decoder.append(Up(c_in, out_channels, last=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = []
        for down in self.encoder:
            x = down(x)
            features.append(x)
        x = self.decoder[0](features[-1])
        for j, up in enumerate(self.decoder[1:], start=1):
            if self.skips:
                skip = features[-1 - j]
                x = torch.cat([skip, x] if self.skip_first else [x, skip], dim=1)
            x = up(x)
        return x


class PatchDiscriminator(nn.Module):
    """PatchGAN (Sec. 3.2.2): classifies each N x N patch of the (input, output) pair as real
    or fake, one logit per patch; D's answer is the mean over the map. `n_layers` stride-2
    blocks after C64 plus one stride-1 block give N = 16 (n_layers 1), 70 (3), 286 (5)."""

    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]  # C64: no BatchNorm
        width = ndf
        for i in range(1, n_layers + 1):
            nxt = ndf * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1  # the last C-block keeps the resolution
            layers += [nn.Conv2d(width, nxt, 4, stride, 1, bias=False), nn.BatchNorm2d(nxt), nn.LeakyReLU(0.2)]
            width = nxt
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))  # one logit per patch (no sigmoid: the loss takes logits)
        self.net = nn.Sequential(*layers)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        return self.net(pair)


class PixelDiscriminator(nn.Module):
    """PixelGAN (Sec. 4.4, Table 3's 1x1): C64-C128 with 1x1 convolutions, one logit per pixel."""

    def __init__(self, in_channels: int = 6, ndf: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ndf, ndf * 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * 2, 1, 1, bias=False))  # the official code: no bias on the output either

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        return self.net(pair)


def init_weights(m: nn.Module) -> None:
    """Gaussian N(0, 0.02) weights, zero biases; BatchNorm scale N(1, 0.02) (Sec. 6.2, as in DCGAN)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def build_generator(options: dict) -> UNetGenerator:
    return UNetGenerator(options.get("input_channels", 3), options.get("output_channels", 3), options["ngf"],
                         options["image_size"], skips=options["netG"] == "unet",
                         layout=options.get("unet_layout", "paper"))


# ------------------------------------------------- the official code's names for the same tensors
def official_module_names(n_down: int) -> dict[str, str]:
    """Our module name -> the official UnetGenerator's, for a U-Net of `n_down` levels. The
    official network nests one UnetSkipConnectionBlock per level, each a Sequential: the outermost
    [conv, block, relu, convT, tanh], a middle one [lrelu, conv, norm, block, relu, convT, norm(,
    dropout)], the innermost [lrelu, conv, relu, convT, norm]. Encoder layer d and decoder layer
    n_down - 1 - d are level d's down and up halves."""
    names = {}
    prefix = "model.model."
    for d in range(n_down):
        up = f"decoder.{n_down - 1 - d}"
        if d == 0:
            names.update({"encoder.0.0": prefix + "0", f"{up}.1": prefix + "3"})
            prefix += "1.model."
        elif d < n_down - 1:
            names.update({f"encoder.{d}.1": prefix + "1", f"encoder.{d}.2": prefix + "2",
                          f"{up}.1": prefix + "5", f"{up}.2": prefix + "6"})
            prefix += "3.model."
        else:
            names.update({f"encoder.{d}.1": prefix + "1", f"{up}.1": prefix + "3", f"{up}.2": prefix + "4"})
    return names


def official_key(ours: str, n_down: int) -> str:
    """The official state-dict key of one of our U-Net keys (e.g. decoder.0.2.running_mean)."""
    module, _, tensor = ours.rpartition(".")
    return f"{official_module_names(n_down)[module]}.{tensor}"


def to_official_state(G: UNetGenerator) -> dict:
    """G's state dict under the official key names, in the official layout. A paper-layout G
    has its skip halves swapped in each decoder weight ([up, skip] -> [skip, up]: both halves
    are as wide), so the official network computes the same function; dropout stays where the
    official network has it, so only its eval mode (no dropout) matches ours exactly."""
    n = len(G.encoder)
    state = {}
    for key, value in G.state_dict().items():
        value = value.detach().clone()
        concatenated = key.startswith("decoder.") and key.endswith(".1.weight") and key != "decoder.0.1.weight"
        if G.skips and not G.skip_first and concatenated:  # decoder layer 0 reads the bottleneck alone
            half = value.shape[0] // 2
            value = torch.cat([value[half:], value[:half]])
        state[official_key(key, n)] = value
    return state


def build_discriminator(options: dict) -> nn.Module:
    """D sees input and output concatenated along channels (Sec. 3.1: D(x, y))."""
    in_channels = options.get("input_channels", 3) + options.get("output_channels", 3)
    n_layers = NET_D[options["netD"]]
    if n_layers is None:
        return PixelDiscriminator(in_channels, options["ndf"])
    return PatchDiscriminator(in_channels, options["ndf"], n_layers)
