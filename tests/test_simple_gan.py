"""Simple GAN: architecture, one step, end to end, resume, generate, bad input."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from common.checkpoint import load_file
from common.inference import load_generator
from common.device import Precision, cpu_has_fast_bf16
from simple_gan import train as sg_train
from simple_gan.model import Discriminator, Generator, Maxout, build_discriminator, build_generator, init_irange
from simple_gan.utils import apply_sgd_schedule, learning_rate, momentum, sample_z
from tests.helpers import ROOT, assert_one_line_error, run_script

TINY = ["--batch-size", "16", "--device", "cpu", "--precision", "fp32", "--log-every", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def linear_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def test_architecture_matches_the_seed_table():
    G, D = Generator(), Discriminator()
    assert [type(m) for m in G.main] == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.Tanh]
    assert [type(m) for m in D.main] == [nn.Linear, nn.LeakyReLU, nn.Linear]
    assert [(m.in_features, m.out_features) for m in G.main if isinstance(m, nn.Linear)] == [(64, 256), (256, 784)]
    assert [(m.in_features, m.out_features) for m in D.main if isinstance(m, nn.Linear)] == [(784, 128), (128, 1)]
    assert all(m.negative_slope == 0.01 for m in [*G.modules(), *D.modules()] if isinstance(m, nn.LeakyReLU))
    assert sum(p.numel() for p in G.parameters()) == linear_params(64, 256) + linear_params(256, 784) == 218_128
    assert sum(p.numel() for p in D.parameters()) == linear_params(784, 128) + linear_params(128, 1) == 100_609
    x = G(sample_z(5, 64))
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    assert D(x).shape == (5,)


def test_seed_discriminator_dropout_is_off_by_default_and_keeps_the_keys():
    torch.manual_seed(0)
    plain, dropped = Discriminator(), Discriminator(dropout=0.5)
    dropped.load_state_dict(plain.state_dict())  # same layers, same keys: old checkpoints load
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    torch.testing.assert_close(plain(x), plain.main(x.flatten(1)).view(-1))  # p = 0: the seed's D exactly
    assert not torch.equal(dropped(x), dropped(x))  # training: a fresh mask each call
    dropped.eval()
    torch.testing.assert_close(dropped(x), plain(x))  # eval: no dropout
    assert sg_train.parse_opt(["--arch", "seed"]).dropout_d == 0.0
    assert sg_train.parse_opt(["--arch", "seed", "--dropout-d", "0.5"]).dropout_d == 0.5


def test_one_step_updates_weights_with_finite_losses():
    torch.manual_seed(0)
    G, D = Generator(), Discriminator()
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 3e-4), torch.optim.Adam(D.parameters(), 3e-4)
    before = [p.detach().clone() for p in [*G.parameters(), *D.parameters()]]
    losses = sg_train.train_step(G, D, opt_g, opt_d, torch.rand(8, 1, 28, 28) * 2 - 1, sample_z(8, 64),
                                 Precision("fp32", torch.device("cpu")))
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(not torch.equal(a, b) for a, b in zip(before, [*G.parameters(), *D.parameters()]))


def test_bf16_step_is_finite():
    G, D = Generator(), Discriminator()
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 3e-4), torch.optim.Adam(D.parameters(), 3e-4)
    with pytest.warns(UserWarning) if not cpu_has_fast_bf16() else contextlib.nullcontext():
        prec = Precision("bf16", torch.device("cpu"))
    losses = sg_train.train_step(G, D, opt_g, opt_d, torch.rand(8, 1, 28, 28) * 2 - 1, sample_z(8, 64), prec)
    assert all(torch.isfinite(v) for v in losses.values())


def test_defaults_are_the_papers_and_the_seeds_with_arch_seed():
    paper = sg_train.parse_opt([])
    assert (paper.arch, paper.lr, paper.batch_size, paper.z_dim, paper.z_dist, paper.epochs) == \
        ("paper", 0.1, 100, 100, "uniform", 250)
    assert (paper.lr_decay, paper.min_lr, paper.momentum, paper.final_momentum) == (1.000004, 1e-6, 0.5, 0.7)
    seed = sg_train.parse_opt(["--arch", "seed"])
    assert (seed.lr, seed.batch_size, seed.z_dim, seed.z_dist, seed.image_size, seed.epochs) == \
        (3e-4, 32, 64, "normal", 28, 50)
    assert (seed.beta1, seed.beta2) == (0.9, 0.999)
    assert sg_train.parse_opt(["--arch", "seed", "--lr", "1e-4"]).lr == 1e-4  # a flag given beats the default


# ------------------------------------------------------------ --arch paper
def paper_models():
    from simple_gan.model import initialise

    opt = sg_train.parse_opt(["--channels", "1"])
    options = vars(opt) | {"channels": 1}
    G, D = build_generator(options), build_discriminator(options)
    initialise(G, D, "paper")
    return G, D


def test_paper_model_matches_mnist_yaml_layer_by_layer():
    """goodfeli/adversarial mnist.yaml: G h0, h1 RectifiedLinear 1200, y Sigmoid 784 (nvis 100);
    D h0, h1 Maxout 240 units x 5 pieces, y Sigmoid 1 (nvis 784). Counted per layer."""
    G, D = paper_models()
    g_layers = [(m.in_features, m.out_features) for m in G.modules() if isinstance(m, nn.Linear)]
    assert g_layers == [(100, 1200), (1200, 1200), (1200, 784)]
    assert [type(m) for m in G.main] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    g_counts = [linear_params(100, 1200), linear_params(1200, 1200), linear_params(1200, 784)]
    assert g_counts == [121_200, 1_441_200, 941_584]
    assert sum(p.numel() for p in G.parameters()) == sum(g_counts) == 2_503_984
    maxouts = [m for m in D.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.units, m.pieces) for m in maxouts] == [(784, 240, 5), (240, 240, 5)]
    d_counts = [linear_params(784, 240 * 5), linear_params(240, 240 * 5), linear_params(240, 1)]
    assert d_counts == [942_000, 289_200, 241]
    assert sum(p.numel() for p in D.parameters()) == sum(d_counts) == 1_231_441
    # dropout on each of D's layer inputs: include probability 0.8 on the pixels, 0.5 after
    assert [m.p for m in D.modules() if isinstance(m, nn.Dropout)] == [0.2, 0.5, 0.5]


def test_paper_model_init_ranges_and_output_bias_from_the_data():
    G, D = paper_models()
    for net, irange in ((G, 0.05), (D, 0.005)):
        weights = [m.weight for m in net.modules() if isinstance(m, nn.Linear)]
        assert all(w.abs().max() <= irange and w.abs().max() > 0.9 * irange for w in weights)
    mean = torch.linspace(0.0, 1.0, 784).view(1, 28, 28)
    G.init_output_bias(mean)
    bias = G.main[-1].bias
    p = mean.flatten().double().clamp(1e-7, 1 - 1e-7)
    torch.testing.assert_close(bias, torch.log(p / (1 - p)).float())
    G.main[-1].weight.data.zero_()  # with no input signal an untrained G draws the mean image
    out = G(sample_z(2, 100, "uniform"))
    torch.testing.assert_close((out[0] + 1) / 2, mean.clamp(1e-7, 1 - 1e-7), atol=1e-5, rtol=0)


def test_paper_discriminator_sees_the_papers_0_1_pixels():
    _, D = paper_models()
    D.eval()
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    h = D.main[1](((x + 1) / 2).flatten(1))  # first maxout on [0, 1] pixels
    expected = D.main[5](D.main[3](h))
    torch.testing.assert_close(D(x), expected.view(-1))


def test_maxout_takes_the_max_over_pieces_and_irange_fills_its_range():
    layer = Maxout(2, units=2, pieces=3)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [-1, 0], [2, 0], [0, 0], [0, -3]]))
        layer.linear.bias.zero_()
    x = torch.tensor([[1.0, 2.0], [-1.0, -1.0]])
    # unit 0: max(x0, x1, -x0); unit 1: max(2 x0, 0, -3 x1)
    torch.testing.assert_close(layer(x), torch.tensor([[2.0, 2.0], [1.0, 3.0]]))
    torch.manual_seed(0)
    net = nn.Sequential(Maxout(50, 40, 5), nn.ReLU(), nn.Linear(40, 3))
    net.apply(lambda m: init_irange(m, 0.05))
    weights = torch.cat([m.weight.detach().flatten() for m in net.modules() if isinstance(m, nn.Linear)])
    assert 0.049 < weights.abs().max() <= 0.05 and abs(float(weights.mean())) < 0.002  # U[-0.05, 0.05]
    assert all(m.bias.abs().max() == 0 for m in net.modules() if isinstance(m, nn.Linear))


def test_sgd_schedule_of_mnist_yaml_by_hand():
    """ExponentialDecay (lr 0.1, decay 1.000004, floor 1e-6) and MomentumAdjustor (0.5 -> 0.7)."""
    assert learning_rate(1) == 0.1 and learning_rate(2) == pytest.approx(0.1 / 1.000004)
    # the floor: 0.1 / 1.000004^(t-1) = 1e-6 at t - 1 = ln(1e5) / ln(1.000004) = 2,878,237.1
    assert learning_rate(2_878_000) > 1e-6 and learning_rate(2_879_000) == 1e-6
    assert momentum(1, ramp_steps=100) == 0.5 and momentum(51, ramp_steps=100) == pytest.approx(0.6)
    assert momentum(101, ramp_steps=100) == pytest.approx(0.7) and momentum(10**6, ramp_steps=100) == 0.7
    assert momentum(1, ramp_steps=0) == 0.7
    # the flags' ramp spans --momentum-epochs (250) epochs: 17 steps per epoch at batch 100 on the digits
    opt = sg_train.parse_opt([])
    params = [nn.Parameter(torch.zeros(1))]
    sgd = [torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum) for _ in range(2)]
    values = apply_sgd_schedule(opt, 2126, 17, sgd)
    assert values == {"lr": pytest.approx(0.1 / 1.000004**2125), "momentum": pytest.approx(0.6)}
    assert all(o.param_groups[0]["lr"] == values["lr"] and o.param_groups[0]["momentum"] == values["momentum"]
               for o in sgd)


def test_uniform_prior_is_unit_variance_on_plus_minus_sqrt3():
    z = sample_z(20_000, 100, "uniform", generator=torch.Generator().manual_seed(0))
    assert z.abs().max() <= 3 ** 0.5 and z.abs().max() > 1.7
    assert abs(z.var().item() - 1.0) < 0.02


def test_paper_schedule_rewrites_lr_and_momentum_every_update(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "paper"
    sg_train.main(sg_train.parse_opt(TINY + ["--max-steps", "3", "--momentum-epochs", "0.02", "--out", str(out)]))
    assert "steps 0->3" in capsys.readouterr().out  # the loop's total, cut by --max-steps
    acc = EventAccumulator(str(out))
    acc.Reload()
    lrs = [e.value for e in acc.Scalars("train/lr")]
    moms = [e.value for e in acc.Scalars("train/momentum")]
    assert lrs == pytest.approx([0.1, 0.1 / 1.000004, 0.1 / 1.000004 ** 2])
    # 112 steps/epoch: a 0.02-epoch ramp is 2.24 updates, 0.5 -> 0.7
    assert moms == pytest.approx([0.5, 0.5 + 0.2 / 2.24, 0.5 + 0.2 * 2 / 2.24])
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["optimizers"]["G"]["param_groups"][0]["momentum"] == pytest.approx(moms[-1])


def test_seed_arch_trains_with_adam_and_no_schedule(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = sg_train.main(sg_train.parse_opt(TINY + ["--arch", "seed", "--max-steps", "2", "--out", str(tmp_path / "s")]))
    group = load_file(out / "checkpoints/last.pt")["optimizers"]["G"]["param_groups"][0]
    assert group["lr"] == 3e-4 and group["betas"] == (0.9, 0.999) and "momentum" not in group
    acc = EventAccumulator(str(out))
    acc.Reload()
    assert "train/loss_d" in acc.Tags()["scalars"] and "train/lr" not in acc.Tags()["scalars"]


def test_end_to_end_resume_exact_and_generate(tmp_path):
    args = TINY + ["--seed", "5", "--sample-every", "2", "--save-every", "100"]
    sg_train.main(sg_train.parse_opt(args + ["--max-steps", "6", "--out", str(tmp_path / "a")]))
    sg_train.main(sg_train.parse_opt(args + ["--max-steps", "3", "--out", str(tmp_path / "b")]))
    sg_train.main(sg_train.parse_opt(args + ["--max-steps", "6", "--out", str(tmp_path / "b"), "--resume", "auto"]))
    a, b = load_file(tmp_path / "a/checkpoints/last.pt"), load_file(tmp_path / "b/checkpoints/last.pt")
    assert a["step"] == b["step"] == 6
    for net in ("G", "D"):
        for key, value in a["models"][net].items():
            assert torch.equal(value, b["models"][net][key]), f"{net}.{key}"
    assert (tmp_path / "a/samples/samples_0000006.png").is_file()
    assert list((tmp_path / "a").glob("events.out.tfevents.*"))
    proc = run_script("simple_gan", "generate", "--checkpoint", tmp_path / "a/checkpoints/last.pt",
                      "--n", "16", "--out", tmp_path / "g.png", "--individual", tmp_path / "each", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "each").glob("*.png"))) == 16
    G, _ = load_generator(tmp_path / "a/checkpoints/last.pt", "simple_gan", build_generator, torch.device("cpu"))
    assert torch.equal(G.state_dict()["main.0.weight"], a["models"]["G"]["main.0.weight"])


def test_evaluate_reports_the_offline_metrics(tmp_path):
    from simple_gan import evaluate as sg_evaluate

    out = tmp_path / "run"
    sg_train.main(sg_train.parse_opt(TINY + ["--max-steps", "2", "--out", str(out)]))
    records = sg_evaluate.main(sg_evaluate.parse_opt(["--checkpoint", str(out / "checkpoints/last.pt"), "--n", "50",
                                                      "--device", "cpu", "--jsonl", str(tmp_path / "m.jsonl")]))
    record = json.loads((tmp_path / "m.jsonl").read_text())
    assert record == json.loads(json.dumps(records[0]))  # what main returns is what it wrote
    assert record["model"] == "simple_gan" and record["n"] == 50 and record["step"] == 2
    assert {"fid", "kid", "is", "swd", "ms_ssim"} <= set(record)
    assert list(record["swd_levels"]) == ["28", "14"]  # the pyramid of a 28x28 image
    assert not (out / "metrics.jsonl").exists()  # --jsonl chose another file


def test_fake_mnist_trains(tmp_path):
    """--data mnist reads torchvision's layout (files made here: no download)."""
    import numpy as np

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 8)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            (2051).to_bytes(4, "big") + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes((2049).to_bytes(4, "big") + n.to_bytes(4, "big")
                                                          + labels.tobytes())
    out = sg_train.main(sg_train.parse_opt(TINY + ["--data", "mnist", "--data-root", str(tmp_path),
                                                   "--max-steps", "2", "--out", str(tmp_path / "run")]))
    assert load_file(out / "checkpoints/last.pt")["options"]["data"] == "mnist"


def test_bad_input_is_one_line(tmp_path):
    assert_one_line_error(run_script("simple_gan", "train", "--data", tmp_path / "nope", "--out", tmp_path / "o"),
                          "no such file")
    bogus = tmp_path / "bogus.pt"
    import pickle

    bogus.write_bytes(pickle.dumps({"format": 1, "models": {}, "payload": print}))
    # the module form from the root (the scripts' other form)
    proc = subprocess.run([sys.executable, "-m", "simple_gan.generate", "--checkpoint", str(bogus)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc, "arbitrary Python objects")


@pytest.mark.slow
def test_compile_flag_trains_and_saves_plain_weights(tmp_path):
    """--compile wraps the models in torch.compile; the checkpoint still holds the plain module."""
    out = sg_train.main(sg_train.parse_opt(TINY + ["--compile", "--max-steps", "2", "--out", str(tmp_path / "c")]))
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["step"] == 2
    assert not any(k.startswith("_orig_mod.") for k in payload["models"]["G"])
    G, _ = load_generator(out / "checkpoints/last.pt", "simple_gan", build_generator, torch.device("cpu"))
    assert torch.equal(G.state_dict()["main.0.weight"], payload["models"]["G"]["main.0.weight"])
