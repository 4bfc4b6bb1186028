"""ProGAN's networks: Table 2 layer by layer, equalised learning rate, pixel norm, minibatch
stddev, and the fade-in at alpha = 0 and 1."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from progan.model import (Discriminator, EqualizedConv2d, EqualizedLinear, Generator, minibatch_stddev, n_features,
                          pixel_norm)


def conv(cin: int, cout: int, k: int) -> int:
    """Weights and one bias per output map."""
    return cin * cout * k * k + cout


# Table 2 of the paper at 1024x1024, one row per layer: (module, in, out, kernel). G's "Conv 4x4"
# turns the 512x1x1 latent into 512x4x4 (a dense layer with one bias per map); "Conv 1x1" is
# toRGB / fromRGB. The official code keeps a toRGB / fromRGB for every resolution (the stages of
# growth), so these lists hold them all; Table 2 shows only the 1024x1024 one.
G_TABLE_2 = [
    ("blocks.0.dense", 512, 512, 4), ("blocks.0.conv", 512, 512, 3),                       # 4x4
    ("blocks.1.conv1", 512, 512, 3), ("blocks.1.conv2", 512, 512, 3),                      # 8x8
    ("blocks.2.conv1", 512, 512, 3), ("blocks.2.conv2", 512, 512, 3),                      # 16x16
    ("blocks.3.conv1", 512, 512, 3), ("blocks.3.conv2", 512, 512, 3),                      # 32x32
    ("blocks.4.conv1", 512, 256, 3), ("blocks.4.conv2", 256, 256, 3),                      # 64x64
    ("blocks.5.conv1", 256, 128, 3), ("blocks.5.conv2", 128, 128, 3),                      # 128x128
    ("blocks.6.conv1", 128, 64, 3), ("blocks.6.conv2", 64, 64, 3),                         # 256x256
    ("blocks.7.conv1", 64, 32, 3), ("blocks.7.conv2", 32, 32, 3),                          # 512x512
    ("blocks.8.conv1", 32, 16, 3), ("blocks.8.conv2", 16, 16, 3),                          # 1024x1024
] + [(f"to_rgb.{i}", c, 3, 1) for i, c in enumerate([512, 512, 512, 512, 256, 128, 64, 32, 16])]
D_TABLE_2 = [(f"from_rgb.{i}", 3, c, 1) for i, c in enumerate([512, 512, 512, 512, 256, 128, 64, 32, 16])] + [
    ("blocks.8.conv1", 16, 16, 3), ("blocks.8.conv2", 16, 32, 3),                          # 1024x1024
    ("blocks.7.conv1", 32, 32, 3), ("blocks.7.conv2", 32, 64, 3),                          # 512x512
    ("blocks.6.conv1", 64, 64, 3), ("blocks.6.conv2", 64, 128, 3),                         # 256x256
    ("blocks.5.conv1", 128, 128, 3), ("blocks.5.conv2", 128, 256, 3),                      # 128x128
    ("blocks.4.conv1", 256, 256, 3), ("blocks.4.conv2", 256, 512, 3),                      # 64x64
    ("blocks.3.conv1", 512, 512, 3), ("blocks.3.conv2", 512, 512, 3),                      # 32x32
    ("blocks.2.conv1", 512, 512, 3), ("blocks.2.conv2", 512, 512, 3),                      # 16x16
    ("blocks.1.conv1", 512, 512, 3), ("blocks.1.conv2", 512, 512, 3),                      # 8x8
    ("blocks.0.conv", 513, 512, 3), ("blocks.0.dense", 512, 512, 4), ("blocks.0.out", 512, 1, 1),  # 4x4 (+ stddev)
]


def per_layer(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        layer = "blocks.0.dense" if name == "blocks.0.bias" else name.rsplit(".", 1)[0]  # G's per-map bias
        counts[layer] = counts.get(layer, 0) + p.numel()
    return counts


@pytest.mark.parametrize("net, table", [("G", G_TABLE_2), ("D", D_TABLE_2)])
def test_1024_networks_match_table_2_layer_by_layer(net, table):
    model = Generator(1024) if net == "G" else Discriminator(1024)
    expected = {name: conv(cin, cout, k) for name, cin, cout, k in table}
    assert per_layer(model) == expected
    # the totals: 23.1M each, as Table 2 says (23,071,507 for G with the final toRGB only)
    assert sum(expected.values()) == {"G": 23_079_115, "D": 23_087_249}[net]
    if net == "G":
        assert sum(expected.values()) - sum(conv(c, 3, 1) for c in [512, 512, 512, 512, 256, 128, 64, 32]) \
            == 23_071_507


def test_table_2_params_column():
    """Table 2's rounded per-layer figures: 4.2M, 2.4M, 1.2M, 590k, 295k, 148k, 74k, 37k, 18k, 9.2k, 4.6k, 2.3k."""
    counts = per_layer(Generator(1024))
    rounded = [4.2e6, 2.4e6, 2.4e6, 2.4e6, 2.4e6, 2.4e6, 2.4e6, 2.4e6, 1.2e6, 590e3, 295e3, 148e3, 74e3, 37e3,
               18e3, 9.2e3, 4.6e3, 2.3e3]
    for (name, *_), value in zip(G_TABLE_2, rounded):
        assert abs(counts[name] - value) / value < 0.03, name


def test_widths_follow_table_2():
    assert [n_features(2 ** k) for k in range(2, 11)] == [512, 512, 512, 512, 256, 128, 64, 32, 16]


def test_equalized_layers_have_unit_variance_weights_and_he_constants():
    torch.manual_seed(0)
    c = EqualizedConv2d(256, 256, 3)
    w = c.weight.detach()
    assert abs(float(w.std()) - 1.0) < 0.01 and abs(float(w.mean())) < 0.01
    assert c.scale == pytest.approx(math.sqrt(2) / math.sqrt(256 * 9))
    assert torch.count_nonzero(c.bias) == 0
    to_rgb = EqualizedConv2d(64, 3, 1, gain=1.0)
    assert to_rgb.scale == pytest.approx(1 / 8)
    first = Generator(8).blocks[0].dense  # the "Conv 4x4" as a dense layer: the 4x4 conv's He constant
    assert first.scale == pytest.approx(math.sqrt(2) / math.sqrt(512 * 16))
    # the scale is applied at run time: the output equals a plain conv with the scaled weights
    x = torch.randn(2, 256, 5, 5)
    assert torch.allclose(c(x), F.conv2d(x, c.weight * c.scale, c.bias, padding=1), atol=1e-5)
    lin = EqualizedLinear(100, 10)
    assert torch.allclose(lin(torch.ones(1, 100)), (lin.weight.sum(1) * math.sqrt(2) / 10).unsqueeze(0), atol=1e-5)


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    x = torch.randn(3, 16, 5, 7) * torch.rand(3, 1, 5, 7) * 10
    y = pixel_norm(x)
    assert torch.allclose(y.square().mean(dim=1), torch.ones(3, 5, 7), atol=1e-4)
    z = pixel_norm(torch.randn(4, 512))  # the latent on the sphere of radius sqrt(512)
    assert torch.allclose(z.norm(dim=1), torch.full((4,), math.sqrt(512)), atol=1e-3)


def test_minibatch_stddev_by_hand():
    """Batch of 4 = one group: per feature and pixel the population std over the 4 samples,
    averaged over features and pixels, appended as a constant channel."""
    x = torch.zeros(4, 2, 1, 2)
    x[:, 0, 0, 0] = torch.tensor([1.0, 3.0, 1.0, 3.0])   # std 1
    x[:, 1, 0, 1] = torch.tensor([0.0, 0.0, 4.0, 4.0])   # std 2
    y = minibatch_stddev(x, group_size=4)                  # other positions: std 0 (sqrt(1e-8) = 1e-4)
    assert y.shape == (4, 3, 1, 2) and torch.equal(y[:, :2], x)
    assert torch.allclose(y[:, 2], torch.full((4, 1, 2), (1 + 2 + 1e-4 + 1e-4) / 4), atol=1e-6)
    # batch 8, groups of 4: samples i and i + 2, i + 4, i + 6 form a group (the official grouping)
    x8 = torch.zeros(8, 1, 1, 1)
    x8[0::2, 0, 0, 0] = torch.tensor([0.0, 2.0, 0.0, 2.0])  # group of the even samples: std 1
    y8 = minibatch_stddev(x8, group_size=4)[:, 1, 0, 0]
    assert torch.allclose(y8[0::2], torch.ones(4), atol=1e-4) and torch.allclose(y8[1::2], torch.full((4,), 1e-4))
    with pytest.raises(ValueError):
        minibatch_stddev(torch.zeros(6, 1, 1, 1), group_size=4)


def small_nets():
    torch.manual_seed(0)
    return Generator(32, 16, 3, 64, 32), Discriminator(32, 3, 64, 32)


def test_fade_in_alpha_0_is_the_old_network_upsampled_and_alpha_1_the_new_branch():
    G, D = small_nets()
    z = torch.randn(4, 16)
    with torch.no_grad():
        G.set_stage(8, 1.0)
        old = G(z)
        G.set_stage(16, 0.0)
        assert torch.allclose(G(z), F.interpolate(old, scale_factor=2, mode="nearest"), atol=1e-6)
        G.set_stage(16, 1.0)
        new = G(z)
        x8 = G.blocks[1](G.blocks[0](z))
        assert torch.allclose(new, G.to_rgb[2](G.blocks[2](x8)), atol=1e-6)  # the new block only
        G.set_stage(16, 0.25)
        assert torch.allclose(G(z), 0.75 * F.interpolate(old, scale_factor=2) + 0.25 * new, atol=1e-5)

        image = torch.randn(4, 3, 16, 16)
        D.set_stage(8, 1.0)
        d_old = D(F.avg_pool2d(image, 2))
        D.set_stage(16, 0.0)
        assert torch.allclose(D(image), d_old, atol=1e-5)
        D.set_stage(16, 1.0)
        d_new = D(image)
        assert not torch.allclose(d_new, d_old, atol=1e-3)


def test_stage_travels_in_the_state_dict():
    G, _ = small_nets()
    G.set_stage(32, 0.4)
    H = Generator(32, 16, 3, 64, 32)
    H.load_state_dict(G.state_dict())
    assert (H.resolution, H.alpha) == (32, 0.4)
    with pytest.raises(ValueError):
        G.set_stage(12, 1.0)
    with pytest.raises(ValueError):
        Generator(48)
