"""LAPGAN: the Laplacian pyramid, every level's network against the authors' CIFAR-10 code
(facebook/eyescream, cifar/scripts/), the cascade, the losses and one step per level."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from common.device import Precision
from common.errors import UserError
from lapgan import train as lapgan_train
from lapgan.model import (CoarseDiscriminator, CoarseGenerator, LAPGANDiscriminator, LAPGANGenerator,
                          RefineDiscriminator, RefineGenerator, init_weights)
from lapgan.utils import (apply_sgd_schedule, check_pyramid, downsample, gaussian_pyramid, laplacian_pyramid, latents,
                          reconstruct, sgd_schedule, training_pairs, upsample)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ------------------------------------------------------------------ the pyramid
@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_laplacian_pyramid_is_an_exact_inverse(levels):
    torch.manual_seed(0)
    x = torch.rand(3, 3, 64, 64, dtype=torch.float64) * 2 - 1
    pyramid = laplacian_pyramid(x, levels)
    assert [tuple(p.shape[-2:]) for p in pyramid] == [(64 >> k, 64 >> k) for k in range(levels)]
    torch.testing.assert_close(reconstruct(pyramid), x, rtol=0, atol=1e-12)
    x32 = x.float()
    assert (reconstruct(laplacian_pyramid(x32, levels)) - x32).abs().max() < 1e-5
    if levels > 1:  # the bands carry real content: dropping the finest one loses detail
        assert pyramid[0].abs().mean() > 0.05
        assert (reconstruct([torch.zeros_like(pyramid[0])] + pyramid[1:]) - x).abs().max() > 0.1


def test_pyramid_operators_follow_burt_and_adelson():
    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(downsample(flat), torch.full((1, 3, 8, 8), 0.3))  # the blur sums to 1
    assert laplacian_pyramid(flat, 3)[0].abs().max() < 1e-6  # a flat image has no band-pass content
    impulse = torch.zeros(1, 1, 16, 16)
    impulse[0, 0, 8, 8] = 1.0
    row = downsample(impulse)[0, 0, 4]  # the separable [1 4 6 4 1]/16 kernel, sampled every second pixel
    torch.testing.assert_close(row[3:6], torch.tensor([1 / 16, 6 / 16, 1 / 16]) * 6 / 16)
    assert upsample(torch.ones(1, 1, 4, 4)).shape == (1, 1, 8, 8)


def test_training_pairs_are_band_and_low_pass_of_each_level():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    pairs = training_pairs(x, 3)
    g = gaussian_pyramid(x, 3)
    assert [tuple(h.shape[-1:]) for h, _ in pairs] == [(32,), (16,), (8,)] and pairs[-1][1] is None
    for k in range(2):
        h, low = pairs[k]
        torch.testing.assert_close(low, upsample(g[k + 1]))
        torch.testing.assert_close(h + low, g[k])  # D_k's input (h_k added to l_k) is I_k


@pytest.mark.parametrize("size,levels,needle", [(48, 3, "not a power of two"), (32, 4, "deeper than 32x32"),
                                                (8, 2, "--levels 1 or fewer"), (32, 0, "at least one")])
def test_bad_pyramid_geometry_is_refused(size, levels, needle):
    with pytest.raises(UserError, match=needle):
        check_pyramid(size, levels)
    assert check_pyramid(32, 3) == [32, 16, 8] and check_pyramid(64, 4) == [64, 32, 16, 8]


# -------------------------------------------------- the networks, layer by layer
# The authors' networks (facebook/eyescream, cifar/scripts/), parameters counted from their layer
# definitions by hand. torch7's nn.Linear and nn.SpatialConvolution have a bias, like ours.
# (Their scripts print "free parameters" counting weights only, so their printed numbers are
# smaller by the biases.) C = 3 colour channels, nplanes = --hidden_G / --hidden_D = 64.
#
# Refinement G (train_cifar_coarse_to_fine.lua): JoinTable(noise plane, coarse image) = 4 maps;
#   SpatialConvolutionUpsample(4, 64, 7, 7, 1)  = a 'same' 7x7 conv: 4*64*49 + 64  = 12,608
#   SpatialConvolutionUpsample(64, 64, 7, 7, 1):                    64*64*49 + 64 = 200,768
#   SpatialConvolutionUpsample(64, 3, 5, 5, 1):                     64*3*25 + 3   =   4,803
AUTHORS_REFINE_G = 12_608 + 200_768 + 4_803  # = 218,179 at every size
# Refinement D: CAddTable(h, l); SpatialConvolution(3, 64, 5, 5): 3*64*25 + 64 = 4,864;
#   SpatialConvolution(64, 64, 5, 5, 2, 2): 64*64*25 + 64 = 102,464; Linear(64*sz*sz, 1),
#   sz = floor(((s - 5 + 1) - 5) / 2 + 1): 12 at s = 32 (9,217), 4 at s = 16 (1,025)
AUTHORS_REFINE_D = {32: 4_864 + 102_464 + 64 * 12 * 12 + 1, 16: 4_864 + 102_464 + 64 * 4 * 4 + 1}
# Coarsest level (train_cifar.lua --scale 8; 8x8x3 = 192 inputs), at their script defaults
# hidden_G = 8000, hidden_D = 1600:
#   G: Linear(100, 8000) 808,000; Linear(8000, 8000) 64,008,000; Linear(8000, 192) 1,536,192
#   D: Linear(192, 1600) 308,800; Linear(1600, 1600) 2,561,600; Linear(1600, 1) 1,601
AUTHORS_COARSE_G_8000 = 808_000 + 64_008_000 + 1_536_192  # = 66,352,192
AUTHORS_COARSE_D_1600 = 308_800 + 2_561_600 + 1_601  # = 2,872,001
# ... and at the paper's widths (Sec. 4: 1200 units in G_K, 600 in D_K), our default:
#   G: 100*1200 + 1200 = 121,200; 1200*1200 + 1200 = 1,441,200; 1200*192 + 192 = 230,592
#   D: 192*600 + 600 = 115,800; 600*600 + 600 = 360,600; 600 + 1 = 601
PAPER_COARSE_G = 121_200 + 1_441_200 + 230_592  # = 1,792,992
PAPER_COARSE_D = 115_800 + 360_600 + 601  # = 477,001
# Class-conditional (train_cifar_coarse_to_fine_classcond.lua): G adds Linear(10, s*s) (11*s*s
# with bias) and its first conv reads 5 maps (noise, class plane, coarse image): 5*64*49 + 64 = 15,744;
# D adds the same Linear and its first conv reads 4 maps: 4*64*25 + 64 = 6,464.
AUTHORS_COND_REFINE_G_32 = 11 * 32 * 32 + 15_744 + 200_768 + 4_803  # = 232,579
AUTHORS_COND_REFINE_D_32 = 11 * 32 * 32 + 6_464 + 102_464 + 9_217  # = 129,409
# train_cifar_classcond.lua (the coarsest level): the class vector joins the input vector:
#   G: Linear(100 + 10, h) ...; D: Linear(192 + 10, h) ... (+ 10 * hidden each)


def test_default_cifar10_cascade_parameter_counts_per_level():
    G, D = LAPGANGenerator(levels=3, image_size=32, channels=3), LAPGANDiscriminator(levels=3, image_size=32)
    assert [n_params(g) for g in G.levels] == [218_179, 218_179, 1_792_992]
    assert [n_params(d) for d in D.levels] == [116_545, 108_353, 477_001]
    # the same as the authors' layer definitions at the same widths
    assert [n_params(g) for g in G.levels] == [AUTHORS_REFINE_G, AUTHORS_REFINE_G, PAPER_COARSE_G]
    assert [n_params(d) for d in D.levels] == [AUTHORS_REFINE_D[32], AUTHORS_REFINE_D[16], PAPER_COARSE_D]


def test_coarse_level_at_the_authors_script_widths():
    with torch.device("meta"):  # 66 million parameters: counted without allocating them
        assert n_params(CoarseGenerator(100, 8000, 3, 8)) == AUTHORS_COARSE_G_8000
    assert n_params(CoarseDiscriminator(1600, 3, 8)) == AUTHORS_COARSE_D_1600


def test_class_conditional_counts_follow_the_authors_code():
    assert n_params(RefineGenerator(3, 64, 32, num_classes=10)) == AUTHORS_COND_REFINE_G_32
    assert n_params(RefineDiscriminator(3, 64, 32, num_classes=10)) == AUTHORS_COND_REFINE_D_32
    assert n_params(CoarseGenerator(100, 1200, 3, 8, num_classes=10)) == PAPER_COARSE_G + 10 * 1200
    assert n_params(CoarseDiscriminator(600, 3, 8, num_classes=10)) == PAPER_COARSE_D + 10 * 600


def layer_shapes(model: nn.Module, *inputs, kind=nn.Conv2d) -> list[tuple]:
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for m in model.modules() if isinstance(m, kind)]
    model(*inputs)
    for h in hooks:
        h.remove()
    return shapes


def test_level_shapes():
    low, noise = torch.randn(2, 3, 32, 32), torch.rand(2, 1, 32, 32)
    G = RefineGenerator(3, 64, 32)
    assert layer_shapes(G, noise, low) == [(64, 32, 32), (64, 32, 32), (3, 32, 32)]
    assert G.main[0].in_channels == 4  # "a 4th colour plane" (Sec. 4)
    D = RefineDiscriminator(3, 64, 32).eval()
    assert layer_shapes(D, low, low) == [(64, 28, 28), (64, 12, 12)]
    assert D(low, low).shape == (2,)
    D16 = RefineDiscriminator(3, 64, 16).eval()
    assert layer_shapes(D16, low[..., :16, :16], low[..., :16, :16]) == [(64, 12, 12), (64, 4, 4)]
    assert CoarseGenerator(100, 1200, 3, 8)(torch.rand(2, 100)).shape == (2, 3, 8, 8)
    assert CoarseDiscriminator(600, 3, 8).eval()(torch.randn(2, 3, 8, 8)).shape == (2,)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Tanh)) for m in [*G.modules(), *D.modules()])


def test_discriminator_judges_the_band_added_to_its_low_pass():
    D = RefineDiscriminator(3, 8, 16).eval()
    h, low = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(D(h, low), D(h + low, torch.zeros_like(low)))
    assert not torch.allclose(D(h, low), D(h, torch.zeros_like(low)))  # and l_k matters


def test_conditional_inputs_change_the_output():
    torch.manual_seed(0)
    G = RefineGenerator(3, 8, 16, num_classes=10)
    noise, low = torch.rand(2, 1, 16, 16), torch.randn(2, 3, 16, 16)
    assert not torch.allclose(G(noise, low, torch.tensor([0, 0])), G(noise, low, torch.tensor([1, 1])))
    Gc = CoarseGenerator(10, 16, 3, 8, num_classes=10)
    z = torch.rand(2, 10)
    assert not torch.allclose(Gc(z, None, torch.tensor([2, 2])), Gc(z, None, torch.tensor([3, 3])))
    with pytest.raises(ValueError, match="labels"):
        Gc(z)


def test_cascade_runs_coarse_to_fine_and_from_a_given_coarse_image():
    torch.manual_seed(0)
    options = {"levels": 3, "image_size": 32, "nz": 100, "num_classes": 0}
    G = LAPGANGenerator(3, 32, 3, 100, 32, 8).eval()
    latent = latents(options, 4, torch.Generator().manual_seed(0))
    assert latent.shape == (4, 100 + 16 * 16 + 32 * 32)
    z, planes, _ = G.split(latent)
    with torch.no_grad():
        levels = G.cascade(z, planes)
        assert [lv.shape[-1] for lv in levels] == [8, 16, 32]
        i8 = G.levels[2](z)  # by hand: I~_K = G_K(z); I~_k = u(I~_{k+1}) + G_k(z_k, u(I~_{k+1}))
        i16 = upsample(i8) + G.levels[1](planes[0], upsample(i8))
        i32 = upsample(i16) + G.levels[0](planes[1], upsample(i16))
        torch.testing.assert_close(levels[-1], i32)
        torch.testing.assert_close(G(latent), i32)
        start = torch.zeros(4, 3, 16, 16)
        from_16 = G.cascade(None, planes, start=start)
        assert len(from_16) == 2 and torch.equal(from_16[0], start)
        torch.testing.assert_close(from_16[1], G.levels[0](planes[1], torch.zeros(4, 3, 32, 32)))
        assert len(G.cascade(None, planes, start=torch.zeros(4, 3, 32, 32))) == 1


def test_initialisation_follows_the_authors_code():
    torch.manual_seed(0)
    G, D = LAPGANGenerator(), LAPGANDiscriminator()
    init_weights(G, D)
    assert abs(float(G.levels[-1].main[2].weight.detach().std()) - 0.05) < 1e-3
    assert abs(float(D.levels[-1].main[3].weight.detach().std()) - 0.005) < 1e-4
    assert float(G.levels[-1].main[0].bias.detach().abs().max()) == 0.0
    conv = G.levels[0].main[2]  # torch7's default: uniform on +-1/sqrt(fan_in)
    assert float(conv.weight.detach().abs().max()) <= (64 * 49) ** -0.5


# ------------------------------------------------------------- losses and schedule
def test_losses_match_equation_2_as_the_authors_compute_it():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sig = torch.sigmoid
    expected_d = -0.5 * (torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    torch.testing.assert_close(lapgan_train.discriminator_loss(real, fake), expected_d)
    torch.testing.assert_close(lapgan_train.generator_loss(fake), -torch.log(sig(fake)).mean())


def test_sgd_schedule_of_section_4():
    assert sgd_schedule(0, 0.02, 0.5, 0.8, 0.0008, 1.00004) == (0.02, 0.5)
    lr, momentum = sgd_schedule(10, 0.02, 0.5, 0.8, 0.0008, 1.00004)
    assert lr == pytest.approx(0.02 / 1.00004 ** 10) and momentum == pytest.approx(0.508)
    assert sgd_schedule(1000, 0.02, 0.5, 0.8, 0.0008, 1.00004)[1] == 0.8  # capped
    opt = lapgan_train.parse_opt([])  # the flags' defaults are the same numbers
    sgd = [torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=opt.lr, momentum=opt.momentum) for _ in range(2)]
    assert apply_sgd_schedule(opt, 10, sgd) == {"lr": lr, "momentum": momentum}
    for o in sgd:  # written into every optimizer
        assert (o.param_groups[0]["lr"], o.param_groups[0]["momentum"]) == (lr, momentum)


# ------------------------------------------------------------ one step per level
@pytest.mark.parametrize("num_classes", [0, 10])
def test_one_training_step_per_level_updates_both_networks_with_finite_losses(num_classes):
    torch.manual_seed(0)
    G = LAPGANGenerator(3, 32, 3, 100, 32, 8, num_classes)
    D = LAPGANDiscriminator(3, 32, 3, 16, 8, num_classes)
    init_weights(G, D)
    prec = Precision("fp32", torch.device("cpu"))
    images = torch.rand(6, 3, 32, 32) * 2 - 1
    labels = torch.arange(6) % 10 if num_classes else None
    for k, (real, low) in enumerate(training_pairs(images, 3)):
        g, d = G.levels[k], D.levels[k]
        opt_g, opt_d = torch.optim.SGD(g.parameters(), 0.02, momentum=0.5), torch.optim.SGD(d.parameters(), 0.02)
        g0, d0 = [p.detach().clone() for p in g.parameters()], [p.detach().clone() for p in d.parameters()]
        others = [p.detach().clone() for j, lv in enumerate(G.levels) if j != k for p in lv.parameters()]
        noise = (lambda: torch.rand(6, 100)) if low is None else (lambda: torch.rand(6, 1, *real.shape[-2:]))
        losses = lapgan_train.level_step(g, d, opt_g, opt_d, real, low, noise(), noise(), prec, labels)
        assert all(torch.isfinite(v) for v in losses.values()), losses
        assert all(not torch.equal(a, b) for a, b in zip(g0, g.parameters())), f"G_{k} did not move"
        assert all(not torch.equal(a, b) for a, b in zip(d0, d.parameters())), f"D_{k} did not move"
        assert all(p.requires_grad for p in d.parameters())
        after = [p for j, lv in enumerate(G.levels) if j != k for p in lv.parameters()]
        assert all(torch.equal(a, b) for a, b in zip(others, after)), "a step moved another level"


def test_train_step_runs_every_level_once_and_names_its_losses_by_size():
    torch.manual_seed(0)
    opt = lapgan_train.parse_opt(["--ngf", "8", "--ndf", "8", "--coarse-hidden-g", "16", "--coarse-hidden-d", "16"])
    G = LAPGANGenerator(3, 32, 3, 100, 16, 8)
    D = LAPGANDiscriminator(3, 32, 3, 16, 8)
    opt_g = [lapgan_train.make_optimizer(opt, g.parameters()) for g in G.levels]
    opt_d = [lapgan_train.make_optimizer(opt, d.parameters()) for d in D.levels]
    before = [p.detach().clone() for p in [*G.parameters(), *D.parameters()]]
    losses, outputs = lapgan_train.train_step(G.levels, D.levels, opt_g, opt_d, torch.rand(4, 3, 32, 32) * 2 - 1,
                                              None, opt, Precision("fp32", torch.device("cpu")))
    assert list(losses) == ["loss_d_32", "loss_g_32", "loss_d_16", "loss_g_16", "loss_d_8", "loss_g_8"]
    assert list(outputs) == ["D(x)_32", "D(G(z))_32", "D(x)_16", "D(G(z))_16", "D(x)_8", "D(G(z))_8"]
    assert all(torch.isfinite(v) for v in [*losses.values(), *outputs.values()])
    assert all(0 < float(v) < 1 for v in outputs.values())
    assert all(not torch.equal(a, b) for a, b in zip(before, [*G.parameters(), *D.parameters()]))
