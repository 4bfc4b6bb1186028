"""ESRGAN networks: parameter counts layer by layer against the official x4 model, shapes,
residual scaling, the smaller initialisation, the 128x128 discriminator, network interpolation."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from esrgan.model import (RRDB, ResidualDenseBlock, RRDBNet, VGGDiscriminator128, build_discriminator,
                          build_generator, init_weights, interpolate_state)

TINY = {"nf": 8, "nb": 1, "gc": 4, "scale": 4}


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def conv(c_in: int, c_out: int, k: int = 3, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


# ------------------------------------------------------------- generator counts
# The paper's x4 configuration (nf 64, nb 23, gc 32), layer by layer; every convolution 3x3 with a bias.
NF, GC, NB = 64, 32, 23
DENSE_BLOCK = [conv(NF, GC), conv(NF + GC, GC), conv(NF + 2 * GC, GC), conv(NF + 3 * GC, GC), conv(NF + 4 * GC, NF)]
ONE_RRDB = 3 * sum(DENSE_BLOCK)
G_LAYERS = {
    "conv_first": conv(3, NF),
    "RRDB_trunk": NB * ONE_RRDB,
    "trunk_conv": conv(NF, NF),
    "upconv1": conv(NF, NF),
    "upconv2": conv(NF, NF),
    "HRconv": conv(NF, NF),
    "conv_last": conv(NF, 3),
}


def test_generator_counts_match_the_official_x4_model_layer_by_layer():
    assert DENSE_BLOCK == [18_464, 27_680, 36_896, 46_112, 110_656]
    assert sum(DENSE_BLOCK) == 239_808 and ONE_RRDB == 719_424
    G = build_generator({"nf": NF, "nb": NB, "gc": GC})
    rdb = G.RRDB_trunk[0].RDB1
    assert [n_params(c) for c in (rdb.conv1, rdb.conv2, rdb.conv3, rdb.conv4, rdb.conv5)] == DENSE_BLOCK
    assert n_params(G.RRDB_trunk[0]) == ONE_RRDB
    assert {name: n_params(child) for name, child in G.named_children() if n_params(child)} == G_LAYERS
    assert n_params(G) == sum(G_LAYERS.values()) == 16_697_987  # RRDB_ESRGAN_x4.pth
    assert not any(isinstance(m, nn.BatchNorm2d) for m in G.modules())  # Sec. 3.1: no BatchNorm


def test_generator_keys_are_the_official_ones():
    keys = set(RRDBNet(nb=2).state_dict())
    for key in ("conv_first.weight", "RRDB_trunk.1.RDB3.conv5.bias", "trunk_conv.weight", "upconv1.weight",
                "upconv2.bias", "HRconv.weight", "conv_last.bias"):
        assert key in keys, key


# ------------------------------------------------------------- generator behaviour
@pytest.mark.parametrize("scale", [2, 4])
def test_output_is_scale_times_the_input(scale):
    G = build_generator({**TINY, "scale": scale})
    assert G(torch.randn(2, 3, 12, 12)).shape == (2, 3, 12 * scale, 12 * scale)
    assert G(torch.randn(1, 3, 7, 10)).shape == (1, 3, 7 * scale, 10 * scale)  # any size, not square


def test_bad_scale_is_refused():
    for scale in (1, 3, 0):
        with pytest.raises(ValueError, match="power of two"):
            RRDBNet(nf=8, nb=1, gc=4, scale=scale)


def test_residual_scaling_is_beta_0_2_in_dense_blocks_and_rrdbs():
    torch.manual_seed(0)
    x = torch.randn(1, 8, 6, 6)
    block = ResidualDenseBlock(8, 4)
    with torch.no_grad():
        block.conv5.weight.zero_(), block.conv5.bias.zero_()
    assert torch.equal(block(x), x)  # a zero residual: the block is the identity
    with torch.no_grad():
        block.conv5.bias.fill_(1.0)  # a residual of exactly 1 everywhere adds beta
    assert torch.allclose(block(x), x + 0.2)
    rrdb = RRDB(8, 4)
    for rdb in (rrdb.RDB1, rrdb.RDB2, rrdb.RDB3):
        with torch.no_grad():
            rdb.conv5.weight.zero_(), rdb.conv5.bias.fill_(1.0)
    # each dense block adds 0.2, the three add 0.6, and the RRDB scales that by 0.2 again
    assert torch.allclose(rrdb(x), x + 0.2 * (x + 0.6))


def test_dense_connections_reach_every_later_convolution():
    block = ResidualDenseBlock(8, 4)
    assert [c.in_channels for c in (block.conv1, block.conv2, block.conv3, block.conv4, block.conv5)] == \
        [8, 12, 16, 20, 24]
    x = torch.randn(1, 8, 5, 5)
    outputs = {}
    hooks = [getattr(block, f"conv{k}").register_forward_hook(
        lambda m, inp, out, k=k: outputs.__setitem__(k, inp[0])) for k in range(1, 6)]
    block(x)
    for h in hooks:
        h.remove()
    for k in range(1, 6):
        assert torch.equal(outputs[k][:, :8], x)  # the block input is the first slice of every conv's input


def test_smaller_initialisation_in_dense_blocks():
    torch.manual_seed(0)
    G = RRDBNet(nf=64, nb=2, gc=32)
    for rdb in (G.RRDB_trunk[0].RDB1, G.RRDB_trunk[1].RDB3):
        for c in (rdb.conv1, rdb.conv3, rdb.conv5):
            w = c.weight.detach()
            expected = 0.1 * math.sqrt(2 / (c.in_channels * 9))  # Kaiming normal, fan_in, ReLU gain, times 0.1
            assert abs(float(w.std()) / expected - 1) < 0.05
            assert abs(float(w.mean())) < 0.1 * expected
            assert float(c.bias.detach().abs().max()) == 0.0
    # the other convolutions keep PyTorch's default (uniform, much larger than 0.1 x Kaiming), as officially
    assert float(G.conv_first.bias.detach().abs().max()) > 0
    block = ResidualDenseBlock(64, 32)
    init_weights(block, scale=0.5)
    assert abs(float(block.conv2.weight.detach().std()) / (0.5 * math.sqrt(2 / (96 * 9))) - 1) < 0.05


# ------------------------------------------------------------- discriminator
# BasicSR's discriminator_vgg_128 with nf 64: 3x3 convs (stride 1) and 4x4 convs (stride 2), no
# bias before a BatchNorm (2 parameters a channel); then 512 * 4 * 4 -> 100 -> 1.
D_LAYERS = [
    conv(3, 64),                          # conv0_0, bias, no BatchNorm
    conv(64, 64, 4, False) + 2 * 64,      # conv0_1 + bn0_1
    conv(64, 128, 3, False) + 2 * 128,    # conv1_0 + bn1_0
    conv(128, 128, 4, False) + 2 * 128,   # conv1_1 + bn1_1
    conv(128, 256, 3, False) + 2 * 256,   # conv2_0
    conv(256, 256, 4, False) + 2 * 256,   # conv2_1
    conv(256, 512, 3, False) + 2 * 512,   # conv3_0
    conv(512, 512, 4, False) + 2 * 512,   # conv3_1
    conv(512, 512, 3, False) + 2 * 512,   # conv4_0
    conv(512, 512, 4, False) + 2 * 512,   # conv4_1
    512 * 4 * 4 * 100 + 100,              # linear1
    100 * 1 + 1,                          # linear2
]
D_NAMES = ["conv0_0", "0_1", "1_0", "1_1", "2_0", "2_1", "3_0", "3_1", "4_0", "4_1", "linear1", "linear2"]


def test_discriminator_counts_layer_by_layer():
    D = build_discriminator({})
    per_layer = []
    for name in D_NAMES:
        if name.startswith(("conv", "linear")):
            per_layer.append(n_params(getattr(D, name)))
        else:
            per_layer.append(n_params(getattr(D, f"conv{name}")) + n_params(getattr(D, f"bn{name}")))
    assert per_layer == D_LAYERS
    assert n_params(D) == sum(D_LAYERS) == 14_499_401
    assert D.conv0_0.bias is not None and all(getattr(D, f"conv{n}").bias is None for n in D_NAMES[1:10])


def test_discriminator_gives_one_raw_logit_per_128_crop_and_refuses_96():
    torch.manual_seed(0)
    D = VGGDiscriminator128(ndf=8)  # narrower, same layout: the linear layer reads 64 * 4 * 4
    assert D.linear1.in_features == 64 * 16
    out = D(torch.randn(3, 3, 128, 128))
    assert out.shape == (3, 1)
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())  # a raw logit for the relativistic loss
    with pytest.raises(ValueError, match="128"):
        D(torch.randn(1, 3, 96, 96))
    with pytest.raises(ValueError, match="128"):
        D(torch.randn(1, 3, 128, 96))


# ------------------------------------------------------------- network interpolation
def test_interpolation_by_hand():
    psnr = {"w": torch.tensor([0.0, 2.0, -4.0]), "b": torch.tensor(1.0), "n": torch.tensor(3)}
    gan = {"w": torch.tensor([4.0, 2.0, 4.0]), "b": torch.tensor(3.0), "n": torch.tensor(7)}
    mixed = interpolate_state(psnr, gan, 0.25)  # 0.75 * PSNR + 0.25 * GAN
    assert torch.equal(mixed["w"], torch.tensor([1.0, 2.0, -2.0]))
    assert float(mixed["b"]) == 1.5
    assert int(mixed["n"]) == 7  # an integer counter is not blended
    assert torch.equal(interpolate_state(psnr, gan, 0.0)["w"], psnr["w"])
    assert torch.equal(interpolate_state(psnr, gan, 1.0)["w"], gan["w"])


def test_interpolated_generator_loads_and_lies_between():
    torch.manual_seed(0)
    a, b = build_generator(TINY), build_generator(TINY)
    mixed = build_generator(TINY)
    mixed.load_state_dict(interpolate_state(a.state_dict(), b.state_dict(), 0.8))
    expected = 0.2 * a.conv_first.weight + 0.8 * b.conv_first.weight
    assert torch.allclose(mixed.conv_first.weight, expected)


def test_interpolation_refuses_different_architectures():
    with pytest.raises(ValueError, match="only in the GAN state: \\['extra'\\]"):
        interpolate_state({"w": torch.zeros(2)}, {"w": torch.zeros(2), "extra": torch.zeros(1)}, 0.5)
    with pytest.raises(ValueError, match="'w' has shape \\(2,\\) in the PSNR state and \\(3,\\)"):
        interpolate_state({"w": torch.zeros(2)}, {"w": torch.zeros(3)}, 0.5)
    with pytest.raises(ValueError, match="keys only in"):
        interpolate_state(build_generator(TINY).state_dict(), build_generator({**TINY, "nb": 2}).state_dict(), 0.5)
