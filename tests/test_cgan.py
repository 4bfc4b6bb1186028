"""cGAN: both architectures against their tables, the label really conditions, one step of
each, the mlp arch's SGD schedule, end to end, resume, generate, evaluate, bad input."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from cgan import evaluate as cgan_evaluate
from cgan import generate as cgan_generate
from cgan import train as cgan_train
from cgan.dataset import ClassFolder, build_dataset
from cgan.model import (ConvCritic, ConvGenerator, Maxout, MaxoutDiscriminator, MLPGenerator, build_generator,
                        build_models, init_conv_weights, init_irange)
from cgan.utils import (apply_sgd_schedule, class_grid_labels, class_grid_z, cycling_labels, generate, learning_rate,
                        momentum, sample_z)
from common.checkpoint import atomic_save, load_file
from common.device import Precision
from common.errors import CheckpointError, DataError, UserError
from common.inference import load_generator
from tests.helpers import ROOT, assert_one_line_error, run_script

TINY = ["--image-size", "16", "--ngf", "4", "--ndf", "4", "--embed-size", "8", "--batch-size", "16",
        "--precision", "fp32", "--device", "cpu", "--log-every", "1"]
TINY_MLP = ["--arch", "mlp", "--batch-size", "20", "--precision", "fp32", "--device", "cpu", "--log-every", "1"]
FP32 = Precision("fp32", torch.device("cpu"))
LABELS = torch.tensor([0, 3, 7, 9])


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------- architecture
def expected_conv_generator_params(nz: int, classes: int, embed: int, ngf: int, c: int, size: int) -> int:
    """Embedding table; 4x4 transposed convs without bias, each followed by BatchNorm (2 per
    channel); the output layer has a bias. Widths ngf * 2^n ... 2 * ngf (the seed's 16, 8, 4, 2)."""
    n = int(math.log2(size // 4))
    widths = [ngf * 2 ** (n - i) for i in range(n)]
    total = classes * embed + (nz + embed) * widths[0] * 16 + 2 * widths[0]
    for w_in, w_out in zip(widths, widths[1:]):
        total += w_in * w_out * 16 + 2 * w_out
    return total + widths[-1] * c * 16 + c


def expected_conv_critic_params(classes: int, ndf: int, c: int, size: int) -> int:
    """An HxW embedding per class; a biased input conv on c + 1 channels; hidden convs without
    bias, each with an affine InstanceNorm (2 per channel); a biased 4x4 conv to one score."""
    n = int(math.log2(size // 4))
    widths = [ndf * 2 ** i for i in range(n)]
    total = classes * size * size + (c + 1) * widths[0] * 16 + widths[0]
    for w_in, w_out in zip(widths, widths[1:]):
        total += w_in * w_out * 16 + 2 * w_out
    return total + widths[-1] * 16 + 1


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def expected_mlp_generator_params(nz: int, classes: int, pixels: int) -> int:
    """Sec. 4.1: z -> 200, y -> 1000, [200 + 1000] -> 1200, 1200 -> pixels."""
    return linear(nz, 200) + linear(classes, 1000) + linear(1200, 1200) + linear(1200, pixels)


def expected_maxout_discriminator_params(classes: int, pixels: int) -> int:
    """Sec. 4.1: a maxout layer of u units x k pieces is a linear map to u * k values."""
    return (linear(pixels, 240 * 5) + linear(classes, 50 * 5) + linear(240 + 50, 240 * 4) + linear(240, 1))


def test_conv_parameter_counts_match_the_seed_table():
    G, C = ConvGenerator(100, 10, 100, 16, 1, 64), ConvCritic(10, 16, 1, 64)
    assert n_params(G) == expected_conv_generator_params(100, 10, 100, 16, 1, 64) == 1_509_801  # model.py's table
    assert n_params(C) == expected_conv_critic_params(10, 16, 1, 64) == 216_017
    for classes, c, size, width in [(10, 3, 32, 16), (4, 1, 16, 8), (10, 1, 32, 32)]:
        assert n_params(ConvGenerator(64, classes, 20, width, c, size)) == \
            expected_conv_generator_params(64, classes, 20, width, c, size)
        assert n_params(ConvCritic(classes, width, c, size)) == expected_conv_critic_params(classes, width, c, size)


def test_mlp_parameter_counts_follow_section_4_1():
    assert n_params(MLPGenerator(100, 10, 1, 28)) == expected_mlp_generator_params(100, 10, 784)
    assert n_params(MaxoutDiscriminator(10, 1, 28)) == expected_maxout_discriminator_params(10, 784)
    assert n_params(MLPGenerator(50, 4, 3, 8)) == expected_mlp_generator_params(50, 4, 3 * 64)
    assert n_params(MaxoutDiscriminator(4, 3, 8)) == expected_maxout_discriminator_params(4, 3 * 64)


def output_shapes(model: nn.Module, kind, *inputs) -> list[tuple]:
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for m in model.modules() if isinstance(m, kind)]
    model(*inputs)
    for h in hooks:
        h.remove()
    return shapes


def test_conv_layer_shapes_and_blocks_follow_the_seed():
    G, C = ConvGenerator(100, 10, 100, 16, 1, 64).eval(), ConvCritic(10, 16, 1, 64).eval()
    z, x = torch.randn(4, 100), torch.randn(4, 1, 64, 64)
    assert output_shapes(G, nn.ConvTranspose2d, z, LABELS) == [
        (256, 4, 4), (128, 8, 8), (64, 16, 16), (32, 32, 32), (1, 64, 64)]
    assert output_shapes(C, nn.Conv2d, x, LABELS) == [(16, 32, 32), (32, 16, 16), (64, 8, 8), (128, 4, 4), (1, 1, 1)]
    assert C.main[0].in_channels == 2  # the image and the label channel
    assert G.main[0].in_channels == 200  # z and the label embedding
    # critic: no BatchNorm, no sigmoid; affine InstanceNorm in the hidden blocks; LeakyReLU 0.2
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Sigmoid)) for m in C.modules())
    norms = [m for m in C.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 and all(m.affine for m in norms)
    assert all(m.negative_slope == 0.2 for m in C.modules() if isinstance(m, nn.LeakyReLU))
    # G: BatchNorm + ReLU after every transposed conv but the last, Tanh at the output
    layers = list(G.main)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in layers) == 4 and isinstance(layers[-1], nn.Tanh)
    assert G(z, LABELS).shape == (4, 1, 64, 64) and C(x, LABELS).shape == (4,)
    G32 = ConvGenerator(100, 10, 100, 16, 1, 32).eval()
    assert output_shapes(G32, nn.ConvTranspose2d, z, LABELS)[-1] == (1, 32, 32)
    with pytest.raises(ValueError, match="power of two"):
        ConvCritic(10, 16, 1, 48)


def test_mlp_layers_follow_section_4_1():
    G, D = MLPGenerator().eval(), MaxoutDiscriminator().eval()
    z = torch.rand(4, 100)
    assert output_shapes(G, nn.Linear, z, LABELS) == [(200,), (1000,), (1200,), (784,)]
    assert output_shapes(D, Maxout, torch.randn(4, 1, 28, 28), LABELS) == [(240,), (50,), (240,)]
    assert [(m.units, m.pieces) for m in D.modules() if isinstance(m, Maxout)] == [(240, 5), (50, 5), (240, 4)]
    assert [m.p for m in G.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    assert [m.p for m in D.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5, 0.5]
    out = G(z, LABELS)
    assert out.shape == (4, 1, 28, 28) and out.min() >= -1 and out.max() <= 1  # 2 * sigmoid - 1


def test_maxout_takes_the_max_over_pieces():
    layer = Maxout(2, units=2, pieces=3)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [-1, 0], [2, 0], [0, 0], [0, -3]]))
        layer.linear.bias.zero_()
    x = torch.tensor([[1.0, 2.0], [-1.0, -1.0]])
    # unit 0: max(x0, x1, -x0); unit 1: max(2 x0, 0, -3 x1)
    torch.testing.assert_close(layer(x), torch.tensor([[2.0, 2.0], [1.0, 3.0]]))


def test_init_irange_is_uniform_with_zero_biases():
    torch.manual_seed(0)
    net = nn.Sequential(Maxout(50, 40, 5), nn.Linear(40, 3), nn.Conv2d(1, 1, 3))
    conv_before = net[2].weight.detach().clone()
    net.apply(lambda m: init_irange(m, 0.005))
    weights = torch.cat([net[0].linear.weight.detach().flatten(), net[1].weight.detach().flatten()])
    assert 0.0049 < weights.abs().max() <= 0.005 and abs(float(weights.mean())) < 0.0002
    assert net[0].linear.bias.abs().max() == 0 and net[1].bias.abs().max() == 0
    assert torch.equal(net[2].weight, conv_before)  # Linear layers only


def test_init_follows_the_seed_and_the_irange_of_the_gan_code():
    torch.manual_seed(0)
    G, D = build_models(dict(arch="conv", nz=100, num_classes=10, embed_size=100, ngf=16, ndf=16, channels=1,
                             image_size=64))
    w = torch.cat([m.weight.detach().flatten() for m in G.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(float(w.std()) - 0.02) < 1e-3
    G, D = build_models(dict(arch="mlp", nz=100, num_classes=10, channels=1, image_size=28))
    with torch.no_grad():
        g_max = max(float(m.weight.abs().max()) for m in G.modules() if isinstance(m, nn.Linear))
        d_max = max(float(m.linear.weight.abs().max()) for m in D.modules() if isinstance(m, Maxout))
    assert 0.04 < g_max <= 0.05 and 0.004 < d_max <= 0.005  # U[-irange, irange]: fills the range


# ------------------------------------------------------- conditioning is real
@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_the_label_changes_the_generators_output(arch):
    torch.manual_seed(0)
    o = dict(arch=arch, nz=100, num_classes=10, embed_size=100, ngf=8, ndf=8, channels=1, image_size=16)
    G, _ = build_models(o)
    z = torch.randn(1, 100)
    # one z drawn as every class, one image per call with one seed: the same dropout masks (mlp)
    images = [generate(G, z, torch.tensor([k]), "cpu", seed=1) for k in range(10)]
    torch.testing.assert_close(images[3], generate(G, z, torch.tensor([3]), "cpu", seed=1))  # all fixed: same image
    for k in range(1, 10):
        assert (images[k] - images[0]).abs().max() > 1e-4, f"class {k} looks exactly like class 0"


def test_generator_dropout_is_noise_and_stays_on_when_sampling():
    torch.manual_seed(0)
    G, D = build_models(dict(arch="mlp", nz=100, num_classes=10, channels=1, image_size=28))
    G.eval(), D.eval()
    z, y = torch.rand(2, 100), torch.tensor([1, 2])
    assert not torch.equal(generate(G, z, y, "cpu", seed=1), generate(G, z, y, "cpu", seed=2))  # other masks
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(D(x, y), D(x, y))  # D's dropout is ordinary: off in eval mode
    state = torch.get_rng_state()
    generate(G, z, y, "cpu", seed=5)
    assert torch.equal(state, torch.get_rng_state())  # sampling leaves the global RNG where it was


def test_the_critic_reads_the_label_channel():
    torch.manual_seed(0)
    C = ConvCritic(10, 8, 1, 16)
    C.apply(init_conv_weights)
    x = torch.randn(1, 1, 16, 16).repeat(10, 1, 1, 1)
    scores = C(x, torch.arange(10))
    assert len(set(scores.tolist())) == 10  # the same image scores differently under each label
    channel = C.label_channel(torch.tensor([3]))
    assert channel.shape == (1, 1, 16, 16)
    torch.testing.assert_close(channel.flatten(), C.embed.weight[3])  # Embedding(classes, H*W) as an image
    scores.sum().backward()
    assert C.embed.weight.grad.abs().sum() > 0  # the label channel is learned
    # and the gradient penalty hands the labels to the critic: other labels, another penalty
    from common.penalty import gradient_penalty

    real, fake, eps = torch.randn(10, 1, 16, 16), torch.randn(10, 1, 16, 16), torch.rand(10, 1, 1, 1)
    gp_a = gradient_penalty(C, real, fake, eps=eps, labels=torch.arange(10))
    gp_b = gradient_penalty(C, real, fake, eps=eps, labels=torch.zeros(10, dtype=torch.long))
    assert not torch.allclose(gp_a, gp_b)


def test_the_maxout_discriminator_reads_the_label():
    torch.manual_seed(0)
    _, D = build_models(dict(arch="mlp", nz=100, num_classes=10, channels=1, image_size=28))
    D.eval()
    with torch.no_grad():
        nn.init.normal_(D.y_layer.linear.weight)  # larger than the 0.005 init, so the effect is plain
        scores = D(torch.randn(1, 1, 28, 28).repeat(10, 1, 1, 1), torch.arange(10))
    assert len(set(scores.tolist())) == 10


# ---------------------------------------------------------------- one step
def snapshot(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def changed(before: dict, model: nn.Module) -> set:
    return {k for k, v in model.named_parameters() if not torch.equal(before[k], v)}


def test_one_wgan_gp_step_updates_each_network_and_gives_finite_losses():
    torch.manual_seed(0)
    G, C = build_models(dict(arch="conv", nz=100, num_classes=10, embed_size=8, ngf=4, ndf=4, channels=1,
                             image_size=16))
    opt = SimpleNamespace(arch="conv", lr=1e-4, beta1=0.0, beta2=0.9)
    opt_g, opt_c = cgan_train.build_optimizers(opt, G, C)
    real, labels = torch.rand(8, 1, 16, 16) * 2 - 1, torch.randint(0, 10, (8,))
    g0, c0 = snapshot(G), snapshot(C)
    stats = cgan_train.critic_step(G, C, opt_c, real, labels, sample_z(8, 100), FP32, lambda_gp=10.0)
    # every critic weight moves but the output bias: E[C(x)] - E[C(G(z))] cancels it and the
    # penalty differentiates with respect to the input, so its gradient is exactly 0 (the seed keeps it)
    output_bias = f"main.{len(C.main) - 1}.bias"
    assert changed(c0, C) == set(c0) - {output_bias} and not changed(g0, G)  # and G stays
    assert all(torch.isfinite(v) for v in stats.values()) and stats["gp"] >= 0
    torch.testing.assert_close(stats["loss_c"], -stats["wasserstein_estimate"] + 10.0 * stats["gp"],
                               rtol=1e-5, atol=1e-6)
    c1 = snapshot(C)
    stats = cgan_train.generator_step(G, C, opt_g, sample_z(8, 100), labels, FP32, cgan_train.wgan_generator_loss)
    assert torch.isfinite(stats["loss_g"])
    assert changed(g0, G) == set(g0) and not changed(c1, C)  # the G step leaves the critic alone
    assert all(p.requires_grad for p in C.parameters())


def test_one_gan_step_of_the_mlp_arch_updates_each_network():
    torch.manual_seed(0)
    G, D = build_models(dict(arch="mlp", nz=100, num_classes=10, channels=1, image_size=28))
    opt_g, opt_d = cgan_train.build_optimizers(SimpleNamespace(arch="mlp", lr=0.1, momentum=0.5), G, D)
    assert isinstance(opt_d, torch.optim.SGD) and opt_d.param_groups[0]["momentum"] == 0.5
    real, labels = torch.rand(10, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (10,))
    g0, d0 = snapshot(G), snapshot(D)
    stats = cgan_train.discriminator_step(G, D, opt_d, real, labels, sample_z(10, 100, "hypercube"), FP32)
    assert changed(d0, D) == set(d0) and not changed(g0, G)
    assert all(torch.isfinite(v) for v in stats.values())
    stats = cgan_train.generator_step(G, D, opt_g, sample_z(10, 100, "hypercube"), labels, FP32,
                                      cgan_train.generator_loss)
    assert torch.isfinite(stats["loss_g"]) and changed(g0, G) == set(g0)


def test_losses_match_their_equations():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    gp = torch.tensor(0.25)
    # -(E[C(x|y)] - E[C(G(z|y)|y)]) + lambda GP = -(0.5 - (-1.25)) + 10 * 0.25
    torch.testing.assert_close(cgan_train.critic_loss(real, fake, gp, 10.0), torch.tensor(-1.75 + 2.5))
    torch.testing.assert_close(cgan_train.wgan_generator_loss(fake), torch.tensor(1.25))
    sig = torch.sigmoid
    expected_d = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    torch.testing.assert_close(cgan_train.discriminator_loss(real, fake), expected_d)
    torch.testing.assert_close(cgan_train.generator_loss(fake), -torch.log(sig(fake)).mean())


def test_priors_and_label_sets():
    z = sample_z(2000, 100, "hypercube", generator=torch.Generator().manual_seed(0))
    assert z.min() >= 0 and z.max() <= 1 and abs(float(z.mean()) - 0.5) < 0.01  # the unit hypercube
    assert class_grid_labels(3, 2).tolist() == [0, 0, 1, 1, 2, 2]
    grid_z = class_grid_z(3, 2, 5, "normal", torch.Generator().manual_seed(0))
    assert torch.equal(grid_z[0], grid_z[2]) and torch.equal(grid_z[1], grid_z[5])  # one z per column
    assert cycling_labels(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]


# ---------------------------------------------------- the schedule of Sec. 4.1
def test_learning_rate_and_momentum_schedule_by_hand():
    assert learning_rate(1) == 0.1
    assert learning_rate(2) == pytest.approx(0.1 / 1.00004)
    # 1.00004^1000 = exp(1000 * 3.99992e-5) = exp(0.0399992) = 1.0408098...
    assert learning_rate(1001) == pytest.approx(0.1 / 1.0408098, rel=1e-6)
    # the floor: 0.1 / 1.00004^t = 1e-6 at t = ln(1e5) / ln(1.00004) = 287,829.6
    assert learning_rate(287_800) > 1e-6 and learning_rate(287_900) == 1e-6 and learning_rate(10**7) == 1e-6
    assert momentum(1, ramp_steps=100) == 0.5
    assert momentum(51, ramp_steps=100) == pytest.approx(0.6)
    assert momentum(101, ramp_steps=100) == pytest.approx(0.7) and momentum(5000, ramp_steps=100) == 0.7
    assert momentum(1, ramp_steps=0) == 0.7
    # train.py: the ramp spans --momentum-epochs (250) epochs; digits at batch 100: 17 steps per epoch
    opt = cgan_train.parse_opt(["--arch", "mlp"])
    sgd = [torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=opt.lr, momentum=opt.momentum) for _ in range(2)]
    values = apply_sgd_schedule(opt, 2126, 17, sgd)
    assert values["momentum"] == pytest.approx(0.5 + 0.2 * 2125 / 4250) and values["momentum"] == pytest.approx(0.6)
    assert values["lr"] == pytest.approx(0.1 / 1.00004**2125)
    for o in sgd:  # written into every optimizer, before the update
        assert (o.param_groups[0]["lr"], o.param_groups[0]["momentum"]) == (values["lr"], values["momentum"])


def test_arch_defaults_resolve_and_flags_override():
    conv = cgan_train.parse_opt([])
    assert (conv.arch, conv.image_size, conv.batch_size, conv.lr, conv.n_critic, conv.z_dist) == \
        ("conv", 64, 64, 1e-4, 5, "normal")
    assert (conv.beta1, conv.beta2, conv.lambda_gp) == (0.0, 0.9, 10.0)
    assert (conv.ngf, conv.ndf, conv.embed_size, conv.nz) == (16, 16, 100, 100)
    mlp = cgan_train.parse_opt(["--arch", "mlp"])
    assert (mlp.image_size, mlp.batch_size, mlp.lr, mlp.n_critic, mlp.z_dist) == (28, 100, 0.1, 1, "hypercube")
    assert cgan_train.parse_opt(["--arch", "mlp", "--lr", "0.05", "--image-size", "32"]).lr == 0.05


def test_help_names_the_defaults_and_their_sources(capsys):
    with pytest.raises(SystemExit):
        cgan_train.parse_opt(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("conv 64, the seed's", "mlp 100, Sec. 4.1", "default 1.00004, Sec. 4.1", "WGAN-GP Algorithm 1",
                   "--max-steps", "--resume", "--precision"):
        assert needle in text, needle


# -------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """`cd cgan && python train.py` (conv), 3 steps."""
    out = tmp_path_factory.mktemp("cgan") / "run"
    proc = run_script("cgan", "train", *TINY, "--max-steps", "3", "--sample-every", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_train_script_writes_checkpoint_class_grid_and_events(tiny_run):
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, proc = tiny_run
    assert str(out.resolve()) in proc.stdout
    assert "generator steps 0->3" in proc.stdout  # the loop's total, cut by --max-steps
    payload = load_file(out / "checkpoints" / "last.pt")
    assert payload["step"] == 3 and payload["model_name"] == "cgan"
    assert set(payload["models"]) == {"G", "D"} and set(payload["optimizers"]) == {"G", "D"}
    o = payload["options"]
    assert (o["arch"], o["num_classes"], o["channels"], o["n_critic"], o["lambda_gp"]) == ("conv", 10, 1, 5, 10.0)
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["samples_0000002.png", "samples_0000003.png"]
    # one row per class, 10 per row, 16 px with 2 px padding
    assert Image.open(out / "samples" / "samples_0000003.png").size == (10 * 18 + 2, 10 * 18 + 2)
    acc = EventAccumulator(str(out))
    acc.Reload()
    for tag in ("train/loss_c", "train/loss_g", "train/gp", "train/wasserstein_estimate"):
        assert [e.step for e in acc.Scalars(tag)] == [1, 2, 3], tag
    assert "samples" in acc.Tags()["images"]


def test_mlp_arch_trains_and_follows_the_schedule(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = cgan_train.main(cgan_train.parse_opt(TINY_MLP + ["--max-steps", "3", "--out", str(tmp_path / "mlp")]))
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["step"] == 3 and payload["options"]["image_size"] == 28
    # the last update (step 3) ran with lr 0.1 / 1.00004^2 and momentum 0.5 + 0.2 * 2 / (250 epochs * 89 steps)
    for name in ("G", "D"):
        group = payload["optimizers"][name]["param_groups"][0]
        assert group["lr"] == pytest.approx(0.1 / 1.00004**2)
        assert group["momentum"] == pytest.approx(0.5 + 0.2 * 2 / (250 * (1797 // 20)))
    acc = EventAccumulator(str(out))
    acc.Reload()
    assert {"train/loss_d", "train/loss_g", "train/D(x)", "train/D(G(z))", "train/lr", "train/momentum"} <= \
        set(acc.Tags()["scalars"])
    assert [e.value for e in acc.Scalars("train/lr")] == pytest.approx([0.1, 0.1 / 1.00004, 0.1 / 1.00004**2])


def weights(path):
    payload = load_file(path)
    return payload["models"], payload["optimizers"]


@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_resume_is_exact(tmp_path, arch):
    """4 steps in one run == 2 steps, stop, resume, 2 more: same weights and optimizer state bit
    for bit (the data stream resumes at step * n_critic batches; dropout and the penalty's
    epsilons come from the restored RNG; the SGD schedule is a function of the step)."""
    common = (TINY if arch == "conv" else TINY_MLP) + ["--seed", "3", "--sample-every", "100", "--save-every", "100"]
    run = lambda *extra: cgan_train.main(cgan_train.parse_opt(common + list(extra)))  # noqa: E731
    run("--max-steps", "4", "--out", str(tmp_path / "a"))
    run("--max-steps", "2", "--out", str(tmp_path / "b"))
    run("--max-steps", "4", "--out", str(tmp_path / "b"), "--resume", "auto")
    (ma, oa), (mb, ob) = weights(tmp_path / "a/checkpoints/last.pt"), weights(tmp_path / "b/checkpoints/last.pt")
    for net in ("G", "D"):
        for key in ma[net]:
            assert torch.equal(ma[net][key], mb[net][key]), f"{net}.{key} differs after resume"
        for (_, va), (_, vb) in zip(oa[net]["state"].items(), ob[net]["state"].items()):
            assert va.keys() == vb.keys() and all(torch.equal(va[k], vb[k]) for k in va)
        assert oa[net]["param_groups"][0]["lr"] == ob[net]["param_groups"][0]["lr"]
    # and a 3-step run is not equal (the comparison can fail)
    run("--max-steps", "3", "--out", str(tmp_path / "c"))
    mc, _ = weights(tmp_path / "c/checkpoints/last.pt")
    first = next(iter(ma["G"]))
    assert not torch.equal(ma["G"][first], mc["G"][first])


def test_generate_one_class_and_the_class_grid(tiny_run, tmp_path):
    from PIL import Image

    ckpt = tiny_run[0] / "checkpoints" / "last.pt"
    cgan_generate.main(cgan_generate.parse_opt(["--checkpoint", str(ckpt), "--label", "3", "--n", "9", "--out",
                                                str(tmp_path / "g.png"), "--individual", str(tmp_path / "each"),
                                                "--device", "cpu"]))
    assert Image.open(tmp_path / "g.png").size == (3 * 18 + 2, 3 * 18 + 2)
    assert sorted(p.name for p in (tmp_path / "each").glob("*.png"))[:2] == ["00000_class3.png", "00001_class3.png"]
    cgan_generate.main(cgan_generate.parse_opt(["--checkpoint", str(ckpt), "--per-class", "4", "--out",
                                                str(tmp_path / "grid.png"), "--device", "cpu"]))
    assert Image.open(tmp_path / "grid.png").size == (4 * 18 + 2, 10 * 18 + 2)  # 10 rows, one per class
    o = load_file(ckpt)["options"]
    _, labels, nrow = cgan_generate.requested(cgan_generate.parse_opt(["--checkpoint", "x", "--label", "7"]), o)
    assert labels.tolist() == [7] * 64 and nrow == 8
    with pytest.raises(UserError, match=r"--label 10: this model knows classes 0\.\.9"):
        cgan_generate.main(cgan_generate.parse_opt(["--checkpoint", str(ckpt), "--label", "10", "--device", "cpu"]))


def test_generate_is_deterministic_and_batch_independent(tiny_run):
    G, o = load_generator(tiny_run[0] / "checkpoints" / "last.pt", "cgan", build_generator, torch.device("cpu"))
    z = sample_z(6, o["nz"], o["z_dist"], generator=torch.Generator().manual_seed(1))
    y = torch.tensor([1, 2, 3, 4, 5, 6])
    with torch.no_grad():
        torch.testing.assert_close(G(z, y)[:2], G(z[:2], y[:2]))  # eval mode: no batch statistics


def test_evaluate_reports_class_accuracy(tiny_run, capsys):
    ckpt = tiny_run[0] / "checkpoints" / "last.pt"
    records = cgan_evaluate.main(cgan_evaluate.parse_opt(["--checkpoint", str(ckpt), "--n", "64", "--real",
                                                          "--device", "cpu"]))
    generated, real = records
    assert 0.0 <= generated["class_accuracy"] <= 1.0 and generated["n"] == 64 and generated["step"] == 3
    assert real["class_accuracy"] > 0.9 > generated["class_accuracy"]  # real digits vs 3 steps of training
    assert real["fid"] < generated["fid"]
    assert "class accuracy" in capsys.readouterr().out
    lines = [json.loads(line) for line in (tiny_run[0] / "metrics.jsonl").read_text().splitlines()]
    assert lines[-2]["class_accuracy"] == generated["class_accuracy"] and lines[-2]["model"] == "cgan"


def test_eval_every_logs_class_accuracy_and_leaves_training_unchanged(tmp_path):
    """Neither the evaluation nor a sample grid mid-run may move the run's RNG."""
    common = TINY + ["--seed", "2", "--max-steps", "2", "--save-every", "100"]
    cgan_train.main(cgan_train.parse_opt(common + ["--out", str(tmp_path / "plain"), "--sample-every", "100"]))
    cgan_train.main(cgan_train.parse_opt(common + ["--out", str(tmp_path / "eval"), "--sample-every", "1",
                                                   "--eval-every", "1", "--eval-n", "64"]))
    plain, _ = weights(tmp_path / "plain/checkpoints/last.pt")
    evaluated, _ = weights(tmp_path / "eval/checkpoints/last.pt")
    for key, value in plain["G"].items():
        assert torch.equal(value, evaluated["G"][key]), f"evaluation changed training: G.{key}"
    records = [json.loads(line) for line in (tmp_path / "eval/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2] and all(0.0 <= r["class_accuracy"] <= 1.0 for r in records)


# -------------------------------------------------------------- bad input
def test_a_missing_checkpoint_gives_one_clear_line_in_the_module_form(tmp_path):
    """`python -m cgan.generate` from the root (the scripts' other form), with a checkpoint that is not there."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "cgan.generate", "--checkpoint", str(tmp_path / "nope.pt")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc, "nope.pt", "does not exist")


def test_a_checkpoint_of_another_model_or_shape_is_refused(tiny_run, tmp_path):
    other = tmp_path / "dcgan.pt"
    atomic_save({"format": 1, "model_name": "dcgan", "models": {}, "options": {}}, other)
    with pytest.raises(CheckpointError, match="'dcgan', not of 'cgan'"):
        load_generator(other, "cgan", build_generator, torch.device("cpu"))
    ckpt = str(tiny_run[0] / "checkpoints/last.pt")
    wider = [a if a != "4" else "8" for a in TINY]  # --ngf 8 --ndf 8
    with pytest.raises(CheckpointError, match="ngf=4 in checkpoint, 8 now"):
        cgan_train.main(cgan_train.parse_opt(wider + ["--resume", ckpt, "--out", str(tmp_path / "w")]))
    with pytest.raises(CheckpointError, match="arch='conv' in checkpoint, 'mlp' now"):
        cgan_train.main(cgan_train.parse_opt(TINY_MLP + ["--image-size", "16", "--resume", ckpt,
                                                         "--out", str(tmp_path / "m")]))


def test_unlabelled_data_is_refused_and_class_folders_give_labels(tmp_path):
    from PIL import Image

    opt = lambda data: SimpleNamespace(data=str(data), image_size=8, channels=1, data_root="data", seed=0)  # noqa: E731
    with pytest.raises(DataError, match="no class labels"):
        build_dataset(opt("photos"))
    for name, colour in [("cats", 40), ("dogs", 200)]:
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (12, 12), colour).save(tmp_path / "pets" / name / f"{i}.png")
    folder = build_dataset(opt(tmp_path / "pets"))
    assert isinstance(folder, ClassFolder) and folder.classes == ["cats", "dogs"] and folder.num_classes == 2
    assert [folder[i][1] for i in range(4)] == [0, 0, 1, 1] and folder[0][0].shape == (1, 8, 8)
    Image.new("L", (12, 12), 0).save(tmp_path / "pets" / "loose.png")
    with pytest.raises(DataError, match="loose.png is not inside a class folder"):
        build_dataset(opt(tmp_path / "pets"))


def test_class_accuracy_of_real_digits_and_of_shuffled_labels():
    """On the classifier's own held-out digits the measure is its accuracy; labels shuffled: chance."""
    from cgan.utils import class_accuracy
    from common.features import digits_split, load_classifier

    classifier, held_out = load_classifier()
    _, _, images, labels = digits_split()
    assert class_accuracy(classifier, images, labels) == pytest.approx(held_out)
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    assert class_accuracy(classifier, images, shuffled) < 0.3
