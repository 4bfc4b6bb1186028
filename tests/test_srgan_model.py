"""SRGAN's networks against Fig. 4 of Ledig et al. 2017 (the training code comes with issue #13)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from srgan.model import Discriminator, ResidualBlock, SRResNet


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# Fig. 4's configuration (3 channels, 64 features, B = 16, x4), layer by layer. The authors
# released no code, so the count is the figure's with the choices model.py states: PReLU
# slopes per channel, no bias before a BatchNorm (2 parameters per BN channel).
HEAD = 3 * 64 * 81 + 64 + 64                      # k9n64s1 with bias, PReLU(64)
RESIDUAL_BLOCK = 2 * (64 * 64 * 9 + 2 * 64) + 64  # two k3n64s1 + BN, one PReLU(64)
BODY_END = 64 * 64 * 9 + 2 * 64                  # k3n64s1 + BN before the long skip
UPSAMPLE = 64 * 256 * 9 + 256 + 64               # k3n256s1 with bias, PixelShuffle (none), PReLU(64)
TAIL = 64 * 3 * 81 + 3                           # k9n3s1 with bias
D_CONVS = [3 * 64 * 9 + 64,                      # k3n64s1 with bias, no BN
           64 * 64 * 9 + 128, 64 * 128 * 9 + 256, 128 * 128 * 9 + 256, 128 * 256 * 9 + 512,
           256 * 256 * 9 + 512, 256 * 512 * 9 + 1024, 512 * 512 * 9 + 1024]
D_DENSE = [512 * 6 * 6 * 1024 + 1024, 1024 + 1]   # 96 / 2^4 = 6


def test_srresnet_matches_figure_4_layer_by_layer():
    G = SRResNet()
    assert n_params(G.head) == HEAD
    assert [n_params(b) for b in G.body] == [RESIDUAL_BLOCK] * 16
    assert n_params(G.body_end) == BODY_END
    assert [n_params(u) for u in G.upsample] == [UPSAMPLE] * 2
    assert n_params(G.tail) == TAIL
    assert n_params(G) == HEAD + 16 * RESIDUAL_BLOCK + BODY_END + 2 * UPSAMPLE + TAIL == 1_548_547


def test_discriminator_matches_figure_4_layer_by_layer():
    D = Discriminator()
    convs = [m for m in D.features if isinstance(m, nn.Conv2d)]
    norms = [m for m in D.features if isinstance(m, nn.BatchNorm2d)]
    per_layer = [n_params(convs[0])] + [n_params(c) + n_params(b) for c, b in zip(convs[1:], norms)]
    assert per_layer == D_CONVS
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert [n_params(m) for m in D.classifier if n_params(m)] == D_DENSE
    assert n_params(D) == sum(D_CONVS + D_DENSE) == 23_563_649


def test_shapes_scale_and_logits():
    G = SRResNet(features=8, blocks=2)
    assert G(torch.rand(2, 3, 12, 10)).shape == (2, 3, 48, 40)
    assert SRResNet(features=8, blocks=1, scale=2)(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)
    D = Discriminator(features=8, image_size=96)
    assert D(torch.rand(3, 3, 96, 96)).shape == (3, 1)
    with pytest.raises(ValueError, match="scale"):
        SRResNet(scale=3)
    with pytest.raises(ValueError, match="multiple of 16"):
        Discriminator(image_size=100)


def test_residual_block_is_a_skip_plus_a_correction():
    block = ResidualBlock(8)
    for m in block.body:
        if isinstance(m, nn.BatchNorm2d):
            nn.init.zeros_(m.weight)  # the last BN's scale at 0: the block is the identity
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(block(x), x)
    assert not any(isinstance(m, nn.Conv2d) and m.bias is not None for m in block.body)  # BN cancels a bias
    prelus = [m for m in SRResNet().modules() if isinstance(m, nn.PReLU)]
    assert len(prelus) == 1 + 16 + 2 and all(p.num_parameters == 64 for p in prelus)
