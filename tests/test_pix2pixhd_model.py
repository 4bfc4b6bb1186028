"""pix2pixHD networks: parameter counts layer by layer against the official code's, shapes,
the coarse-to-fine wiring, G1 weights moving into the local enhancer, the multi-scale
discriminator's scales, the encoder's instance-wise average pooling, and the input G and D
read (one-hot label map, instance boundary map)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pix2pixhd.model import (DEFAULTS, Encoder, GlobalGenerator, LocalEnhancer, MultiscaleDiscriminator,
                             NLayerDiscriminator, build_discriminator, build_encoder, build_generator,
                             boundary_map, discriminator_in_channels, encode_input, generator_in_channels,
                             init_weights, input_channels, instance_features, instance_mean_pool, one_hot,
                             size_multiple)
from pix2pixhd.scenes import LABEL_NC

META = torch.device("meta")  # the full-size networks are only counted, never run: no memory, no time


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def conv_params(m: nn.Module) -> list[int]:
    """Parameters of every (transposed) convolution in module order. InstanceNorm has none."""
    return [n_params(c) for c in m.modules() if isinstance(c, (nn.Conv2d, nn.ConvTranspose2d))]


# ------------------------------------------------------------ counts from the official code
# Read from NVIDIA/pix2pixHD models/networks.py, not from our model. Every convolution has a
# bias; norm is nn.InstanceNorm2d(affine=False), so it has no parameters; transposed
# convolutions have in * out * 9 weights like convolutions.

# GlobalGenerator(input_nc=36, output_nc=3, ngf=64, n_downsampling=4, n_blocks=9): the official
# --netG global with --label_nc 35 plus the instance boundary map (Cityscapes 1024x512).
GLOBAL_G = (
    [36 * 64 * 49 + 64,                 # c7s1-64
     64 * 128 * 9 + 128,                # d128
     128 * 256 * 9 + 256,               # d256
     256 * 512 * 9 + 512,               # d512
     512 * 1024 * 9 + 1024]             # d1024
    + [1024 * 1024 * 9 + 1024] * 18     # R1024 x9, two 3x3 convolutions each
    + [1024 * 512 * 9 + 512,            # u512
       512 * 256 * 9 + 256,             # u256
       256 * 128 * 9 + 128,             # u128
       128 * 64 * 9 + 64,               # u64
       64 * 3 * 49 + 3]                 # c7s1-3, Tanh
)

# LocalEnhancer(input_nc=36, output_nc=3, ngf=32, n_downsample_global=4, n_blocks_global=9,
# n_local_enhancers=1, n_blocks_local=3): the official --netG local --ngf 32 (2048x1024). Its G1
# is GlobalGenerator with ngf 32 * 2 = 64 minus the last three layers (pad, conv, Tanh).
LOCAL_G = (
    GLOBAL_G[:-1]                       # G1 without its output convolution
    + [36 * 32 * 49 + 32,               # model1_1: c7s1-32
       32 * 64 * 9 + 64]                # model1_1: d64
    + [64 * 64 * 9 + 64] * 6            # model1_2: R64 x3
    + [64 * 32 * 9 + 32,                # model1_2: u32
       32 * 3 * 49 + 3]                 # model1_2: c7s1-3, Tanh
)

# NLayerDiscriminator(input_nc=39, ndf=64, n_layers=3): labels 35 + boundary 1 + image 3, the
# official define_D(netD_input_nc, ndf 64, n_layers_D 3); 4x4 kernels.
ONE_D = [39 * 64 * 16 + 64,             # C64, no norm
         64 * 128 * 16 + 128,           # C128
         128 * 256 * 16 + 256,          # C256
         256 * 512 * 16 + 512,          # C512, stride 1
         512 * 1 * 16 + 1]              # 1-channel patch map

# Encoder(input_nc=3, output_nc=3, ngf=16, n_downsampling=4): the official
# define_G(output_nc, feat_num, nef, 'encoder', n_downsample_E).
ENCODER = [3 * 16 * 49 + 16,            # c7s1-16
           16 * 32 * 9 + 32,            # d32
           32 * 64 * 9 + 64,            # d64
           64 * 128 * 9 + 128,          # d128
           128 * 256 * 9 + 256,         # d256
           256 * 128 * 9 + 128,         # u128
           128 * 64 * 9 + 64,           # u64
           64 * 32 * 9 + 32,            # u32
           32 * 16 * 9 + 16,            # u16
           16 * 3 * 49 + 3]             # c7s1-3, Tanh


def test_global_generator_matches_the_official_count():
    with META:
        G = GlobalGenerator(36, 3, ngf=64, n_downsampling=4, n_blocks=9)
    assert conv_params(G) == GLOBAL_G
    assert n_params(G) == sum(GLOBAL_G) == 182_546_755
    assert not any(isinstance(m, nn.InstanceNorm2d) and m.affine for m in G.modules())


def test_local_enhancer_matches_the_official_count():
    with META:
        G = LocalEnhancer(36, 3, ngf=32, n_downsample_global=4, n_blocks_global=9, n_local_enhancers=1,
                          n_blocks_local=3)
    assert conv_params(G) == LOCAL_G
    assert n_params(G) == sum(LOCAL_G) == 182_857_059
    assert n_params(G.global_generator) == sum(GLOBAL_G[:-1])


def test_discriminators_match_the_official_count():
    with META:
        D1 = NLayerDiscriminator(39, 64, 3)
        D = MultiscaleDiscriminator(39, 64, 3, num_D=3)
    assert conv_params(D1) == ONE_D and n_params(D1) == sum(ONE_D) == 2_801_601
    assert conv_params(D) == ONE_D * 3 and n_params(D) == 3 * sum(ONE_D) == 8_404_803


def test_encoder_matches_the_official_count():
    with META:
        E = Encoder(3, 3, ngf=16, n_downsampling=4)
    assert conv_params(E) == ENCODER and n_params(E) == sum(ENCODER) == 788_803


def test_builders_use_the_official_defaults_and_channel_arithmetic():
    assert generator_in_channels(35, True, 0) == 36 and generator_in_channels(35, True, 3) == 39
    assert generator_in_channels(0, False, 0) == 3 and generator_in_channels(0, True, 0, input_nc=1) == 2
    assert discriminator_in_channels(35, True) == 39 and discriminator_in_channels(35, False) == 38
    with META:
        G, D, E = build_generator({}), build_discriminator({}), build_encoder({})
        G_feat = build_generator({"instance_feat": True})
        D_feat = build_discriminator({"instance_feat": True})
        E_feat = build_encoder({"instance_feat": True})
        G_local = build_generator({"n_local_enhancers": 1, "ngf": 32})
    assert isinstance(G, GlobalGenerator) and n_params(G) == sum(GLOBAL_G)
    assert isinstance(G_local, LocalEnhancer) and n_params(G_local) == sum(LOCAL_G)
    assert n_params(D) == n_params(D_feat) == 3 * sum(ONE_D)  # D never sees the feature channels
    assert E is None and n_params(E_feat) == sum(ENCODER)
    assert G_feat.model[1].in_channels == 36 + 3
    assert len(D.discriminators) == DEFAULTS["num_D"] == 3
    assert size_multiple({}) == 16 and size_multiple({"n_local_enhancers": 1}) == 32
    assert size_multiple({"n_local_enhancers": 2, "n_downsample_global": 3}) == 32
    with META:
        assert build_encoder({"label_feat": True, "feat_num": 0}) is None


# --------------------------------------------------------------------------- generators
def test_global_generator_shapes_and_features():
    torch.manual_seed(0)
    G = GlobalGenerator(36, 3, ngf=8, n_downsampling=4, n_blocks=2)
    G.apply(init_weights)
    x = torch.randn(1, 36, 64, 128)
    y = G(x)
    assert y.shape == (1, 3, 64, 128) and float(y.detach().abs().max()) <= 1.0
    h = G.features(x)
    assert h.shape == (1, 8, 64, 128)
    assert torch.allclose(G.output(h), y)
    assert isinstance(G.output[-1], nn.Tanh) and isinstance(G.model[0], nn.ReflectionPad2d)
    widths = [m.out_channels for m in G.model if isinstance(m, nn.Conv2d)][:5]
    assert widths == [8, 16, 32, 64, 128]  # c7s1-64 d128 d256 d512 d1024 at ngf 64, scaled


def pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


@pytest.mark.parametrize("n_local", [1, 2])
def test_local_enhancer_shapes_and_coarse_to_fine_wiring(n_local):
    torch.manual_seed(0)
    G = LocalEnhancer(5, 3, ngf=8, n_downsample_global=3, n_blocks_global=2, n_local_enhancers=n_local,
                      n_blocks_local=1)
    G.apply(init_weights)
    x = torch.randn(1, 5, 128, 256)
    y = G(x)
    assert y.shape == (1, 3, 128, 256)
    assert G.global_generator.output is None and len(G.enhancers) == n_local
    assert G.global_generator.model[1].out_channels == 8 * 2 ** n_local
    # by hand: G1 on the coarsest pyramid level, then each enhancer's front-end + the features
    pyramid = [x]
    for _ in range(n_local):
        pyramid.append(pool(pyramid[-1]))
    h = G.global_generator.features(pyramid[-1])
    assert h.shape == (1, 8 * 2 ** n_local, 128 >> n_local, 256 >> n_local)  # G1 width, at G1 resolution
    for n, level in enumerate(G.enhancers, start=1):
        front = level.front_end(pyramid[n_local - n])
        assert front.shape == h.shape
        h = level.back_end(front + h)
    assert torch.allclose(h, y, atol=1e-6)
    # only the outermost enhancer ends in the output block; its parameters are the first phase's
    assert [isinstance(e.back_end[-1], nn.Tanh) for e in G.enhancers] == [False] * (n_local - 1) + [True]
    ids = {id(p) for p in G.enhancer_parameters()}
    assert ids == {id(p) for p in G.enhancers[-1].parameters()}
    assert not ids & {id(p) for p in G.global_generator.parameters()}


def test_standalone_g1_weights_load_into_the_local_enhancer():
    torch.manual_seed(1)
    G1 = GlobalGenerator(5, 3, ngf=16, n_downsampling=2, n_blocks=1)  # trained alone at half resolution
    G1.apply(init_weights)
    G = LocalEnhancer(5, 3, ngf=8, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=1)
    x = torch.randn(2, 5, 32, 32)
    assert not torch.allclose(G.global_generator.features(x), G1.features(x))
    G.load_global(G1.state_dict())
    assert torch.equal(G.global_generator.features(x), G1.features(x))
    for p in G.global_generator.parameters():  # the schedule's first phase freezes G1
        p.requires_grad_(False)
    G(torch.randn(1, 5, 64, 64)).mean().backward()
    assert all(p.grad is not None for p in G.enhancers.parameters())
    with pytest.raises(RuntimeError):  # G1 trained at another width does not fit
        G.load_global(GlobalGenerator(5, 3, ngf=8, n_downsampling=2, n_blocks=1).state_dict())


# ------------------------------------------------------------------------ discriminators
# (side after each layer) for a 64x128 input: stride 2, 2, 2, 1, 1 with 4x4 kernels and padding 2
# map H to H/2 + 1 and H + 1; the next scale's input is the 3x3 stride-2 average (H/2).
D_SIZES = [
    [(33, 65), (17, 33), (9, 17), (10, 18), (11, 19)],  # D1 on 64x128
    [(17, 33), (9, 17), (5, 9), (6, 10), (7, 11)],      # D2 on 32x64
    [(9, 17), (5, 9), (3, 5), (4, 6), (5, 7)],          # D3 on 16x32
]


def test_multiscale_discriminator_scales_and_features():
    torch.manual_seed(0)
    D = MultiscaleDiscriminator(7, ndf=4, n_layers=3, num_D=3)
    D.apply(init_weights)
    x = torch.randn(2, 7, 64, 128)
    out = D(x)
    assert len(out) == 3 and all(len(feats) == 5 for feats in out)
    assert [[tuple(f.shape[2:]) for f in feats] for feats in out] == D_SIZES
    assert [f.shape[1] for f in out[0]] == [4, 8, 16, 32, 1]
    # finest first: scale k is discriminators[k] on the input averaged k times
    assert all(torch.equal(a, b) for a, b in zip(out[0], D.discriminators[0](x)))
    assert all(torch.allclose(a, b) for a, b in zip(out[2], D.discriminators[2](pool(pool(x)))))
    # the same architecture, separate weights
    assert not torch.equal(D.discriminators[0].layers[0][0].weight, D.discriminators[1].layers[0][0].weight)


def test_nlayer_discriminator_layers_are_the_official_ones():
    D = NLayerDiscriminator(7, ndf=4, n_layers=3)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(4, 4)] * 5 and [c.padding for c in convs] == [(2, 2)] * 5
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert [any(isinstance(m, nn.InstanceNorm2d) for m in layer) for layer in D.layers] == [False, True, True, True,
                                                                                            False]
    slopes = [m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.2] * 4
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())  # LSGAN: raw scores
    assert [c.out_channels for c in NLayerDiscriminator(3, 64, 5).modules() if isinstance(c, nn.Conv2d)] == [
        64, 128, 256, 512, 512, 512, 1]  # widths capped at 512


def test_init_is_the_official_one():
    torch.manual_seed(0)
    G = GlobalGenerator(8, 3, ngf=16, n_downsampling=2, n_blocks=1)
    bias_before = G.model[1].bias.clone()
    G.apply(init_weights)
    w = [m for m in G.modules() if isinstance(m, nn.Conv2d)][3].weight.detach()  # the first R64 convolution
    assert w.numel() == 64 * 64 * 9
    assert abs(float(w.std()) - 0.02) < 1e-3 and abs(float(w.mean())) < 1e-3
    assert torch.equal(G.model[1].bias, bias_before)  # the official code leaves biases alone
    bn = nn.BatchNorm2d(512)
    init_weights(bn)
    assert abs(float(bn.weight.detach().mean()) - 1.0) < 0.01 and float(bn.bias.detach().abs().max()) == 0.0


# ------------------------------------------------------------------------ Sec. 3.4 encoder
def hand_made_instances() -> torch.Tensor:
    """Two 16x16 maps: image 0 has road (7) on the bottom half, a car (26001) and another car
    (26002) on top, sky (23) elsewhere; image 1 reuses id 26001 (a different car) and has 7."""
    inst = torch.full((2, 1, 16, 16), 23, dtype=torch.int32)
    inst[0, 0, 8:] = 7
    inst[0, 0, 2:6, 1:5] = 26001
    inst[0, 0, 3:7, 10:16] = 26002
    inst[1, 0, :, :5] = 26001
    inst[1, 0, 12:, 5:] = 7
    return inst


def test_encoder_pools_every_instance_to_its_mean():
    torch.manual_seed(0)
    E = Encoder(3, 3, ngf=4, n_downsampling=2)
    E.apply(init_weights)
    image, inst = torch.randn(2, 3, 16, 16), hand_made_instances()
    raw, pooled = E.encode(image), E(image, inst)
    assert pooled.shape == raw.shape == (2, 3, 16, 16)
    expected_ids = [[7, 23, 26001, 26002], [7, 23, 26001]]
    for b in range(2):
        assert sorted(inst[b].unique().tolist()) == expected_ids[b]
        for i in expected_ids[b]:
            mask = inst[b, 0] == i
            mean = raw[b][:, mask].mean(dim=1)  # (3,)
            inside = pooled[b][:, mask]
            assert torch.allclose(inside, mean.unsqueeze(1).expand_as(inside), atol=1e-6)
    assert not torch.allclose(pooled[0][:, inst[0, 0] == 26001][:, 0], pooled[1][:, inst[1, 0] == 26001][:, 0])
    assert torch.equal(instance_mean_pool(raw, inst[:, 0]), pooled)  # (B, H, W) maps too
    pooled.square().sum().backward()
    assert E.model[1].weight.grad is not None and float(E.model[1].weight.grad.abs().sum()) > 0


def test_instance_features_are_the_per_instance_means():
    feats = torch.randn(2, 3, 16, 16)
    inst = hand_made_instances()
    per_image = instance_features(feats, inst)
    assert [[i for i, _ in image] for image in per_image] == [[7, 23, 26001, 26002], [7, 23, 26001]]
    for b, image in enumerate(per_image):
        for i, mean in image:
            assert torch.allclose(mean, feats[b][:, inst[b, 0] == i].mean(dim=1), atol=1e-6)
    one = instance_features(torch.ones(1, 2, 4, 4), torch.full((1, 1, 4, 4), -5))
    assert len(one[0]) == 1 and one[0][0][0] == -5 and torch.equal(one[0][0][1], torch.ones(2))
    with pytest.raises(ValueError):
        instance_mean_pool(feats, inst[:, :, :8])


# ------------------------------------------------------- Sec. 3.3: the generator's input
def test_boundary_map_on_a_hand_made_instance_map():
    inst = torch.tensor([[5, 5, 5, 5],
                         [5, 7, 5, 5],
                         [5, 5, 5, 5],
                         [5, 5, 5, 9]])
    expected = torch.tensor([[0, 1, 0, 0],   # both sides of each boundary, 4-neighbours only:
                             [1, 1, 1, 0],   # (0,0) and (2,2) touch the 7 diagonally only
                             [0, 1, 0, 1],
                             [0, 0, 1, 1]], dtype=torch.float32)
    out = boundary_map(inst[None])
    assert out.shape == (1, 1, 4, 4) and out.dtype == torch.float32
    assert torch.equal(out[0, 0], expected)
    assert torch.equal(boundary_map(inst[None, None]), out)        # N x 1 x H x W too
    assert not boundary_map(torch.full((2, 3, 5), 26001)).any()    # the border is no boundary
    big = torch.tensor([[[26001, 26002]]])                           # ids > 255 compared exactly
    assert torch.equal(boundary_map(big)[0, 0], torch.ones(1, 2))


def test_one_hot_and_encode_input_channels():
    label = torch.randint(0, LABEL_NC, (2, 8, 16))
    inst = torch.randint(0, 3, (2, 8, 16))
    oh = one_hot(label, LABEL_NC)
    assert oh.shape == (2, LABEL_NC, 8, 16) and oh.dtype == torch.float32
    assert torch.equal(oh.sum(1), torch.ones(2, 8, 16)) and torch.equal(oh.argmax(1), label)
    x = encode_input(label, inst, LABEL_NC, use_instance=True)
    assert x.shape == (2, LABEL_NC + 1, 8, 16) == (2, input_channels(LABEL_NC, True), 8, 16)
    assert torch.equal(x[:, :LABEL_NC], oh) and torch.equal(x[:, -1:], boundary_map(inst))
    assert encode_input(label, None, LABEL_NC, use_instance=False).shape[1] == LABEL_NC
    image = torch.rand(2, 3, 8, 16) * 2 - 1
    assert torch.equal(encode_input(image, None, 0, use_instance=False), image)
    assert encode_input(image, inst, 0, use_instance=True).shape[1] == 4 == input_channels(0, True)
