"""CycleGAN generators and discriminators (Zhu, Park, Isola, Efros 2017, arXiv:1703.10593).

Generator (appendix, Sec. 7.2, after Johnson et al. 2016), written in the paper's notation:

    c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-3

  c7s1-k  7x7 convolution, stride 1, k filters, InstanceNorm, ReLU (reflection padding 3)
  dk      3x3 convolution, stride 2, k filters, InstanceNorm, ReLU (zero padding 1)
  Rk      residual block: two 3x3 convolutions with k filters (reflection padding 1 each),
          InstanceNorm after both, ReLU after the first only, plus the skip connection
  uk      3x3 fractionally-strided convolution, stride 1/2, k filters, InstanceNorm, ReLU
  last    c7s1-3 has no norm and ends in Tanh (images live in [-1, 1])

n = 9 residual blocks for 256x256 training images and 6 for 128x128 (appendix).

Parameters with ngf = 64, 3 channels, every convolution with a bias (InstanceNorm here has no
affine scale/shift, so it has no parameters; the official code keeps the biases):

    c7s1-64        3*64*49 + 64        =      9,472
    d128          64*128*9 + 128       =     73,856
    d256         128*256*9 + 256       =    295,168
    R256 (each) 2*(256*256*9 + 256)    =  1,180,160   x9 = 10,621,440   x6 = 7,080,960
    u128         256*128*9 + 128       =    295,040
    u64           128*64*9 + 64        =     73,792
    c7s1-3          64*3*49 + 3        =      9,411
    total                                11,378,179 (9 blocks)   7,837,699 (6 blocks)

Discriminator: the 70x70 PatchGAN (appendix; pix2pix Sec. 3.2.2), C64-C128-C256-C512:

  Ck   4x4 convolution, k filters, InstanceNorm, LeakyReLU(0.2); C64 has no norm.
  C64, C128, C256 use stride 2; C512 and the final 4x4 convolution to 1 channel use stride 1
  (all with padding 1, as the official code). Each output value sees a 70x70 patch of the
  input; a 256x256 image gives a 30x30 map of real/fake scores (no sigmoid: least squares).

    C64            3*64*16 + 64        =      3,136
    C128          64*128*16 + 128      =    131,200
    C256         128*256*16 + 256      =    524,544
    C512         256*512*16 + 512      =  2,097,664
    out            512*1*16 + 1        =      8,193
    total                                 2,764,737
"""
from __future__ import annotations

import torch
import torch.nn as nn

# --channels-last auto: whether these networks train faster in the NHWC memory format, per kind of
# device (common.device.device_kind), as benchmarks/throughput.py measured it (README.md, Speed): the
# 9-block ResNet at batch 1 runs far slower in NHWC on a CPU without bf16. CUDA is not measured yet
# (no GPU lent so far): on there, as PyTorch advises for convolutions under autocast.
CHANNELS_LAST = {"cpu-fp32": False, "cpu-bf16": False, "cuda": True}


def instance_norm(channels: int) -> nn.Module:
    """InstanceNorm (Ulyanov et al. 2016; CycleGAN Sec. 4 "Network architecture"), without a
    learned scale/shift and without running statistics, as the official code builds it, so
    training and eval mode compute the same thing."""
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def c7s1(in_ch: int, out_ch: int) -> list[nn.Module]:
    """c7s1-k: 7x7 conv, stride 1, reflection padding 3, InstanceNorm, ReLU."""
    return [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, out_ch, 7), instance_norm(out_ch), nn.ReLU(True)]


def down(in_ch: int, out_ch: int) -> list[nn.Module]:
    """dk: 3x3 conv, stride 2 (halves the size), InstanceNorm, ReLU."""
    return [nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1), instance_norm(out_ch), nn.ReLU(True)]


def up(in_ch: int, out_ch: int) -> list[nn.Module]:
    """uk: 3x3 fractionally-strided conv, stride 1/2 (doubles the size exactly thanks to
    output_padding 1), InstanceNorm, ReLU."""
    return [nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1),
            instance_norm(out_ch), nn.ReLU(True)]


class ResidualBlock(nn.Module):
    """Rk: x + [pad, conv3x3, IN, ReLU, pad, conv3x3, IN](x) (appendix; Johnson et al.'s block
    without dropout, the official default for CycleGAN)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), instance_norm(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), instance_norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3 (appendix), output Tanh.
    Fully convolutional: any input whose sides are multiples of 4 (two stride-2 steps)."""

    def __init__(self, channels: int = 3, ngf: int = 64, n_blocks: int = 9):
        super().__init__()
        self.channels, self.ngf, self.n_blocks = channels, ngf, n_blocks
        layers: list[nn.Module] = [*c7s1(channels, ngf), *down(ngf, 2 * ngf), *down(2 * ngf, 4 * ngf)]
        layers += [ResidualBlock(4 * ngf) for _ in range(n_blocks)]
        layers += [*up(4 * ngf, 2 * ngf), *up(2 * ngf, ngf)]
        # c7s1-3 at the output: no norm, Tanh instead of ReLU
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN: C64-C128-C256-C512 then a 1-channel 4x4 conv (appendix), returning a
    map of raw scores (least-squares GAN: no sigmoid)."""

    def __init__(self, channels: int = 3, ndf: int = 64):
        super().__init__()
        self.channels, self.ndf = channels, ndf
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for stride in (2, 2, 1):  # C128, C256 at stride 2; C512 at stride 1 (official code)
            layers += [nn.Conv2d(width, 2 * width, 4, stride=stride, padding=1), instance_norm(2 * width),
                       nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, stride=1, padding=1)]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def init_weights(module: nn.Module) -> None:
    """Weights from N(0, 0.02), biases 0 (the official code's 'normal' init, gain 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def default_blocks(image_size: int) -> int:
    """Residual blocks the appendix uses: 9 for 256x256 training images, 6 for 128x128 (and below)."""
    return 9 if image_size >= 256 else 6


def build_generator(options: dict) -> ResnetGenerator:
    """A generator (G_AB or G_BA: both have this shape) from a run's stored options."""
    return ResnetGenerator(options.get("channels", 3), options["ngf"], options["n_blocks"])


# ------------------------------------------------- the official code's names for the same tensors
def official_key(ours: str) -> str:
    """The key junyanz/pytorch-CycleGAN-and-pix2pix's ResnetGenerator gives one of our G's tensors.
    Its nn.Sequential `model` holds the same layers in the same order (so the same indices), and
    its ResnetBlock calls the residual branch `conv_block`: main.10.body.5.weight ->
    model.10.conv_block.5.weight."""
    return "model." + ours[len("main."):].replace(".body.", ".conv_block.")


def official_options(state: dict) -> dict:
    """ngf, n_blocks and channels of the official ResnetGenerator whose state dict this is, read
    from its tensors (model.1 is the first 7x7 convolution; one conv_block per residual block)."""
    blocks = {key.split(".")[1] for key in state if ".conv_block." in key}
    first = state["model.1.weight"]
    return {"ngf": first.shape[0], "channels": first.shape[1], "n_blocks": len(blocks)}


def to_official_state(G: ResnetGenerator) -> dict:
    """G's state dict under the official key names (a plain state dict, as its train.py saves
    latest_net_G_A.pth): the networks are the same, so this is a renaming."""
    return {official_key(key): value.detach().clone() for key, value in G.state_dict().items()}


def build_discriminator(options: dict) -> PatchDiscriminator:
    return PatchDiscriminator(options.get("channels", 3), options["ndf"])
