"""DCGAN + the Improved Techniques toolbox (Salimans et al. 2016, arXiv:1606.03498, Sec. 3).

Each technique's mechanics against a hand-computed value or an independent formula, one
training step with all of them, train.py end to end (generate.py and evaluate.py load the
checkpoint), exact resume with historical averaging, and the defaults leave DCGAN alone.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from common.checkpoint import atomic_save, load_file
from common.device import Precision
from common.errors import CheckpointError
from dcgan import evaluate as dcgan_evaluate
from dcgan import generate as dcgan_generate
from dcgan import train as dcgan_train
from dcgan.model import (Discriminator, Generator, MinibatchDiscrimination, MinibatchDiscriminator,
                         VBNGenerator, VirtualBatchNorm, init_weights)
from dcgan.utils import HistoricalAverage, sample_z
from tests.helpers import run_script

TINY = ["--image-size", "16", "--ngf", "8", "--ndf", "8", "--batch-size", "16", "--precision", "fp32",
        "--device", "cpu", "--log-every", "1", "--sample-every", "100", "--save-every", "100"]
ALL_ON = ["--feature-matching", "--minibatch-discrimination", "--historical-averaging", "0.01",
          "--label-smoothing", "0.9", "--virtual-batch-norm", "--vbn-ref-size", "8"]
CPU = Precision("fp32", torch.device("cpu"))


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------ 3.1 feature matching
def test_feature_matching_loss_is_the_squared_distance_of_the_feature_means():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]])  # mean (1, 1)
    assert dcgan_train.feature_matching_loss(real, fake).item() == pytest.approx(1.0 + 4.0)
    # conv-shaped features are flattened: each unit of each position is one feature
    real4, fake4 = real.view(2, 2, 1, 1), fake.view(2, 2, 1, 1)
    assert dcgan_train.feature_matching_loss(real4, fake4).item() == pytest.approx(5.0)
    assert dcgan_train.feature_matching_loss(real, real[[1, 0]]).item() == 0.0  # same mean, any order


def test_features_are_the_input_of_the_output_layer():
    torch.manual_seed(0)
    D = Discriminator(8, 1, 16).apply(init_weights).eval()
    seen = []
    D.main[-1].register_forward_hook(lambda m, i, o: seen.append(i[0].clone()))
    x = torch.randn(3, 1, 16, 16)
    D(x)
    features = D.features(x)
    assert features.shape == (3, 16, 4, 4)  # last hidden layer: 2 * ndf maps at 4x4 for 16x16
    torch.testing.assert_close(features, seen[0])


def test_feature_matching_train_step_matches_features_of_real_and_fake(monkeypatch):
    torch.manual_seed(0)
    G, D = Generator(100, 8, 1, 16).apply(init_weights), Discriminator(8, 1, 16).apply(init_weights)
    calls, original = [], dcgan_train.feature_matching_loss

    def spy(real_features, fake_features):
        calls.append((real_features.shape, real_features.requires_grad, fake_features.shape,
                      fake_features.requires_grad))
        return original(real_features, fake_features)

    def refuse(*args):
        raise AssertionError("the non-saturating loss must not be used with feature matching")

    monkeypatch.setattr(dcgan_train, "feature_matching_loss", spy)
    monkeypatch.setattr(dcgan_train, "generator_loss", refuse)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 2e-4), torch.optim.Adam(D.parameters(), 2e-4)
    g0 = [p.detach().clone() for p in G.parameters()]
    dcgan_train.train_step(G, D, opt_g, opt_d, torch.rand(8, 1, 16, 16) * 2 - 1, sample_z(8, 100), CPU,
                           dcgan_train.ImprovedTechniques(feature_matching=True))
    # real features are a constant for G; the fake ones carry G's gradient
    assert calls == [((8, 16, 4, 4), False, (8, 16, 4, 4), True)]
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))


# ----------------------------------------------- 3.2 minibatch discrimination
def test_minibatch_discrimination_by_hand():
    """A = B = C = 1, T = 1: M_i = f_i, so o_i = sum over j != i of exp(-|f_i - f_j|)."""
    layer = MinibatchDiscrimination(1, kernels=1, kernel_dims=1)
    with torch.no_grad():
        layer.T.fill_(1.0)
    f = torch.tensor([[0.0], [1.0], [3.0]])
    e = math.exp
    expected = torch.tensor([[e(-1) + e(-3)], [e(-1) + e(-2)], [e(-3) + e(-2)]])
    torch.testing.assert_close(layer(f), expected)
    layer.include_self = True  # the paper's sum over every j: exp(0) = 1 more in each kernel
    torch.testing.assert_close(layer(f), expected + 1.0)


@pytest.mark.parametrize("include_self", [False, True])
def test_minibatch_discrimination_against_a_loop_over_pairs(include_self):
    torch.manual_seed(0)
    A, B, C, n = 3, 2, 4, 5
    layer = MinibatchDiscrimination(A, kernels=B, kernel_dims=C, include_self=include_self)
    f = torch.randn(n, A)
    T = layer.T.detach()
    expected = torch.zeros(n, B)
    for i in range(n):
        for j in range(n):
            if j == i and not include_self:
                continue
            for b in range(B):
                M_ib = sum(f[i, a] * T[a, b] for a in range(A))  # row b of M_i = f(x_i) T
                M_jb = sum(f[j, a] * T[a, b] for a in range(A))
                expected[i, b] += torch.exp(-(M_ib - M_jb).abs().sum())
    torch.testing.assert_close(layer(f), expected)


def test_minibatch_discrimination_sees_a_collapsed_batch():
    """Identical samples are at L1 distance 0 from each other: o = n - 1 in every kernel."""
    layer = MinibatchDiscrimination(6, kernels=4, kernel_dims=3)
    o = layer(torch.randn(1, 6).expand(5, 6))
    torch.testing.assert_close(o, torch.full((5, 4), 4.0))


def test_minibatch_discriminator_feeds_f_and_o_to_one_output_layer():
    torch.manual_seed(0)
    D = MinibatchDiscriminator(4, 1, 8, kernels=3, kernel_dims=2).apply(init_weights).eval()
    x = torch.randn(4, 1, 8, 8)
    f = D.features(x).flatten(1)
    o = D.minibatch(f)
    assert f.shape == (4, 4 * 4 * 4) and o.shape == (4, 3)  # 8x8: one block, ndf maps at 4x4
    out = D.main[-1]  # the output layer's weights for f (DCGAN's 4x4 conv), plus minibatch_out's for o
    w = torch.cat([out.weight.flatten(), D.minibatch_out.weight.flatten()])
    torch.testing.assert_close(D(x), torch.cat([f, o], dim=1) @ w + out.bias)
    # so an example's logit depends on the rest of its minibatch (and a plain D's does not)
    x2 = x.clone()
    x2[1:] = torch.randn(3, 1, 8, 8)
    assert not torch.allclose(D(x)[0], D(x2)[0])
    plain = Discriminator(4, 1, 8).apply(init_weights).eval()
    torch.testing.assert_close(plain(x)[0], plain(x2)[0])
    # parameters: D's own plus T (A x B x C), o's B biases and the B output weights
    assert n_params(D) == n_params(plain) + 64 * 3 * 2 + 3 + 3


def test_data_dependent_initialisation_sets_nearest_distance_two_and_centres_o():
    """The authors' initialisation: on the given batch, each kernel's mean nearest-neighbour
    L1 distance becomes 2 and each kernel's o has mean 0."""
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(12, kernels=4, kernel_dims=3)
    f = torch.randn(20, 12) * 5.0  # far from the scale N(0, 1/A) was chosen for
    T0 = layer.T.detach().clone()
    layer.initialise_from(f)
    l1 = layer.distances(f) + torch.eye(20) * 1e9  # j = i is not a neighbour
    torch.testing.assert_close(l1.min(dim=2).values.mean(dim=1), torch.full((4,), 2.0))
    torch.testing.assert_close(layer(f).mean(dim=0), torch.zeros(4), atol=1e-6, rtol=0)
    ratio = layer.T.detach() / T0  # each kernel's slice of T is scaled by one positive number
    assert torch.allclose(ratio, ratio[:, :, :1].expand_as(ratio)) and bool((ratio > 0).all())
    assert torch.allclose(ratio[0, :, 0], ratio[5, :, 0])
    with pytest.raises(ValueError, match="two examples"):
        layer.initialise_from(f[:1])


def test_initialising_the_minibatch_layer_leaves_batch_norm_and_the_rng_alone():
    torch.manual_seed(0)
    D = MinibatchDiscriminator(8, 1, 16, kernels=5, kernel_dims=2).apply(init_weights)
    real = torch.rand(10, 1, 16, 16) * 2 - 1
    buffers = {k: v.clone() for k, v in D.named_buffers()}
    rng = torch.get_rng_state()
    D.eval()
    D.initialise_minibatch_layer(real)
    assert not D.training  # the mode is restored
    assert all(torch.equal(buffers[k], v) for k, v in D.named_buffers())
    assert torch.equal(torch.get_rng_state(), rng)
    D.train()
    o = D.minibatch(D.features(real).flatten(1))  # f as the D step computes it: batch statistics
    torch.testing.assert_close(o.mean(dim=0), torch.zeros(5), atol=1e-5, rtol=0)
    assert torch.equal(dcgan_train.spread_batch(list(zip(real, range(10))), 4), real[[0, 3, 6, 9]])


def test_minibatch_features_are_computed_per_minibatch_real_and_fake_apart():
    torch.manual_seed(0)
    G = Generator(100, 8, 1, 16).apply(init_weights)
    D = MinibatchDiscriminator(8, 1, 16, kernels=5, kernel_dims=2).apply(init_weights)
    sizes = []
    D.minibatch.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 2e-4), torch.optim.Adam(D.parameters(), 2e-4)
    dcgan_train.train_step(G, D, opt_g, opt_d, torch.rand(6, 1, 16, 16) * 2 - 1, sample_z(6, 100), CPU)
    assert sizes == [6, 6, 6]  # D step: real, fake; G step: fake. Never the 12 of both together


# ------------------------------------------------- 3.3 historical averaging
def test_historical_average_is_the_mean_of_past_snapshots_and_pulls_towards_it():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = HistoricalAverage(model)
    snapshots = [[p.detach().clone() for p in model.parameters()]]  # theta[1]: as initialised
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        average.update(model)
        snapshots.append([p.detach().clone() for p in model.parameters()])
    assert int(average.count) == 4
    for k, (name, p) in enumerate(model.named_parameters()):
        torch.testing.assert_close(average.mean(name), torch.stack([s[k] for s in snapshots]).mean(0))
    assert not any("running" in key for key in average.state_dict())  # parameters only
    # penalty = ||theta - mean||^2 over all parameters at once
    theta = torch.cat([p.detach().flatten() for p in model.parameters()])
    mean = torch.cat([torch.stack([s[k] for s in snapshots]).mean(0).flatten() for k in range(len(snapshots[0]))])
    penalty = average.penalty(model)
    torch.testing.assert_close(penalty, torch.linalg.vector_norm(theta - mean) ** 2)
    # its gradient is 2 (theta - mean): a small step against it moves theta towards the mean
    penalty.backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, 2 * (p.detach() - average.mean(name)))
    with torch.no_grad():
        stepped = theta - 0.1 * torch.cat([p.grad.flatten() for p in model.parameters()])
    assert torch.linalg.vector_norm(stepped - mean) < torch.linalg.vector_norm(theta - mean)
    assert all(not b.requires_grad for b in average.buffers())  # the history gets no gradient


def test_historical_averaging_in_train_step_adds_the_penalty_and_counts_steps():
    torch.manual_seed(0)
    G, D = Generator(100, 8, 1, 16).apply(init_weights), Discriminator(8, 1, 16).apply(init_weights)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 2e-4), torch.optim.Adam(D.parameters(), 2e-4)
    tricks = dcgan_train.ImprovedTechniques(historical_lambda=0.5, g_average=HistoricalAverage(G),
                                            d_average=HistoricalAverage(D))
    real = torch.rand(8, 1, 16, 16) * 2 - 1
    first = dcgan_train.train_step(G, D, opt_g, opt_d, real, sample_z(8, 100), CPU, tricks)
    assert first["hist_d"].item() == 0.0 and first["hist_g"].item() == 0.0  # the mean holds only theta now
    second = dcgan_train.train_step(G, D, opt_g, opt_d, real, sample_z(8, 100), CPU, tricks)
    assert second["hist_d"].item() > 0 and second["hist_g"].item() > 0
    assert int(tricks.g_average.count) == int(tricks.d_average.count) == 3


# ------------------------------------------- 3.4 one-sided label smoothing
def test_one_sided_label_smoothing_targets_alpha_for_real_and_zero_for_fake():
    real, fake = torch.tensor([2.0, -1.0], requires_grad=True), torch.tensor([0.5, -3.0], requires_grad=True)
    s = torch.sigmoid
    loss = dcgan_train.discriminator_loss(real, fake, 0.9)
    expected = (-(0.9 * torch.log(s(real)) + 0.1 * torch.log(1 - s(real))).mean()
                - torch.log(1 - s(fake)).mean())
    torch.testing.assert_close(loss, expected)
    # the fake half is untouched: same gradient as without smoothing, sigmoid(f) / n (target 0)
    grad_fake, = torch.autograd.grad(loss, fake)
    torch.testing.assert_close(grad_fake, s(fake.detach()) / 2)
    # the real half is minimal where D(x) = alpha, no longer at D(x) -> 1
    at_alpha = torch.tensor([math.log(0.9 / 0.1)], requires_grad=True)
    grad_real, = torch.autograd.grad(dcgan_train.discriminator_loss(at_alpha, torch.zeros(1), 0.9), at_alpha)
    assert abs(grad_real.item()) < 1e-6


def test_label_smoothing_off_is_the_plain_loss_bit_for_bit():
    real, fake = torch.randn(16), torch.randn(16)
    plain = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
             + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    assert torch.equal(dcgan_train.discriminator_loss(real, fake), plain)


# --------------------------------------- 3.5 virtual batch normalisation
def test_virtual_batch_norm_equals_batch_norm_over_reference_plus_the_example():
    torch.manual_seed(0)
    vbn = VirtualBatchNorm(3)
    with torch.no_grad():
        vbn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        vbn.bias.copy_(torch.tensor([0.0, -1.0, 0.3]))
    n_ref, n = 4, 3
    x = torch.randn(n_ref + n, 3, 2, 2) * 3 + 1
    out = vbn(x, n_ref)
    ref = x[:n_ref]
    # the reference rows: plain BatchNorm (training mode) over the reference batch alone
    torch.testing.assert_close(out[:n_ref], F.batch_norm(ref, None, None, vbn.weight, vbn.bias, training=True))
    w, b = vbn.weight.view(1, 3, 1, 1), vbn.bias.view(1, 3, 1, 1)
    for i in range(n):
        example = x[n_ref + i: n_ref + i + 1]
        union = torch.cat([ref, example])  # statistics of {reference batch, this example}
        mean = union.mean(dim=(0, 2, 3), keepdim=True)
        var = union.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        torch.testing.assert_close(out[n_ref + i: n_ref + i + 1], (example - mean) / torch.sqrt(var + 1e-5) * w + b)
        # ... which is the authors' weighting: the example's own moments count 1/(N+1)
        own, refm = example.mean(dim=(0, 2, 3)), ref.mean(dim=(0, 2, 3))
        torch.testing.assert_close(mean.flatten(), own / (n_ref + 1) + refm * n_ref / (n_ref + 1))


def test_vbn_generator_output_does_not_depend_on_the_rest_of_the_batch():
    torch.manual_seed(0)
    G = VBNGenerator(100, 8, 1, 16, ref_size=6).apply(init_weights)
    G.z_ref.copy_(sample_z(6, 100))
    z, others = sample_z(5, 100), sample_z(7, 100)
    alone = G(z[:1])
    torch.testing.assert_close(G(z)[:1], alone)  # training mode: no batch statistics either
    torch.testing.assert_close(G(torch.cat([z[:1], others]))[:1], alone)
    assert G(z).shape == (5, 1, 16, 16)
    # it depends on the reference batch (the test can fail)
    G.z_ref.copy_(sample_z(6, 100))
    assert not torch.allclose(G(z[:1]), alone)


def test_vbn_generator_has_the_same_parameters_and_keeps_its_reference_batch_in_the_state():
    plain, vbn = Generator(100, 8, 1, 16), VBNGenerator(100, 8, 1, 16, ref_size=6)
    assert n_params(vbn) == n_params(plain)  # gamma, beta per channel, as BatchNorm
    assert [p.shape for p in vbn.parameters()] == [p.shape for p in plain.parameters()]
    state = vbn.state_dict()
    assert state["z_ref"].shape == (6, 100)
    assert not any("running" in key for key in state)  # no running statistics to drift
    assert sum(isinstance(m, VirtualBatchNorm) for m in vbn.modules()) == 2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in vbn.modules())


# ------------------------------------------------------- all of them at once
def test_one_training_step_with_all_techniques_updates_every_weight_with_finite_losses():
    torch.manual_seed(0)
    G = VBNGenerator(100, 8, 1, 16, ref_size=8).apply(init_weights)
    G.z_ref.copy_(sample_z(8, 100))
    D = MinibatchDiscriminator(8, 1, 16, kernels=10, kernel_dims=3).apply(init_weights)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    tricks = dcgan_train.ImprovedTechniques(feature_matching=True, real_target=0.9, historical_lambda=0.01,
                                            g_average=HistoricalAverage(G), d_average=HistoricalAverage(D))
    g0 = {k: p.detach().clone() for k, p in G.named_parameters()}
    d0 = {k: p.detach().clone() for k, p in D.named_parameters()}
    z_ref = G.z_ref.clone()
    losses = dcgan_train.train_step(G, D, opt_g, opt_d, torch.rand(8, 1, 16, 16) * 2 - 1, sample_z(8, 100),
                                    CPU, tricks)
    assert set(losses) == {"loss_d", "loss_g", "D(x)", "D(G(z))", "hist_d", "hist_g"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert [k for k, p in G.named_parameters() if torch.equal(g0[k], p)] == []
    assert [k for k, p in D.named_parameters() if torch.equal(d0[k], p)] == []
    assert torch.equal(G.z_ref, z_ref)  # the reference batch is fixed
    assert all(p.requires_grad for p in D.parameters())


# ------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def all_on_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dcgan_improved") / "run"
    dcgan_train.main(dcgan_train.parse_opt(TINY + ALL_ON + ["--max-steps", "3", "--out", str(out)]))
    return out


def test_train_script_with_every_technique_writes_a_complete_checkpoint(all_on_run):
    payload = load_file(all_on_run / "checkpoints/last.pt")
    assert payload["step"] == 3
    assert set(payload["models"]) == {"G", "D", "G_avg", "D_avg"}
    assert int(payload["models"]["G_avg"]["count"]) == int(payload["models"]["D_avg"]["count"]) == 4
    o = payload["options"]
    assert o["feature_matching"] and o["minibatch_discrimination"] and o["virtual_batch_norm"]
    assert (o["historical_averaging"], o["label_smoothing"], o["vbn_ref_size"]) == (0.01, 0.9, 8)
    assert (o["minibatch_kernels"], o["minibatch_dims"]) == (100, 5)  # the authors' B and C by default
    assert payload["models"]["D"]["minibatch.T"].shape == (16 * 4 * 4, 100, 5)
    assert payload["models"]["D"]["minibatch.bias"].abs().sum() > 0  # initialised from real data
    # the reference batch drawn at the start (its own seed), kept through training
    expected = sample_z(8, 100, "uniform", generator=torch.Generator().manual_seed(o["seed"] + 2))
    assert torch.equal(payload["models"]["G"]["z_ref"], expected)
    assert (all_on_run / "samples/samples_0000003.png").is_file()


def test_generate_and_evaluate_load_the_checkpoint(all_on_run, tmp_path):
    ckpt = all_on_run / "checkpoints/last.pt"
    proc = run_script("dcgan", "generate", "--checkpoint", ckpt, "--n", "4", "--out", tmp_path / "g.png",
                      "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "g.png").is_file()
    G, _ = dcgan_generate.load_generator(ckpt, torch.device("cpu"))
    assert isinstance(G, VBNGenerator)
    torch.testing.assert_close(G.z_ref, load_file(ckpt)["models"]["G"]["z_ref"])
    z = sample_z(5, 100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(G(z)[:2], G(z[:2]))
    records = dcgan_evaluate.main(dcgan_evaluate.parse_opt(["--checkpoint", str(ckpt), "--n", "32",
                                                            "--device", "cpu", "--jsonl",
                                                            str(tmp_path / "m.jsonl")]))
    assert records[0]["step"] == 3 and records[0]["fid"] > 0


def test_resume_is_exact_with_historical_averaging(tmp_path):
    """4 steps in one run == 2 steps, stop, resume, 2 more, with every technique on."""
    common = TINY + ALL_ON + ["--seed", "3"]
    dcgan_train.main(dcgan_train.parse_opt(common + ["--max-steps", "4", "--out", str(tmp_path / "a")]))
    dcgan_train.main(dcgan_train.parse_opt(common + ["--max-steps", "2", "--out", str(tmp_path / "b")]))
    dcgan_train.main(dcgan_train.parse_opt(common + ["--max-steps", "4", "--out", str(tmp_path / "b"),
                                                     "--resume", "auto"]))
    a, b = load_file(tmp_path / "a/checkpoints/last.pt"), load_file(tmp_path / "b/checkpoints/last.pt")
    for net in ("G", "D", "G_avg", "D_avg"):
        assert set(a["models"][net]) == set(b["models"][net])
        for key, value in a["models"][net].items():
            assert torch.equal(value, b["models"][net][key]), f"{net}.{key} differs after resume"
    assert int(b["models"]["G_avg"]["count"]) == 5
    for net in ("G", "D"):
        for va, vb in zip(a["optimizers"][net]["state"].values(), b["optimizers"][net]["state"].values()):
            assert torch.equal(va["exp_avg"], vb["exp_avg"]) and torch.equal(va["exp_avg_sq"], vb["exp_avg_sq"])
    # the average is not the current weights (the comparison above could fail)
    assert not torch.equal(a["models"]["G_avg"]["main__0__weight"], a["models"]["G"]["main.0.weight"])


def test_torchrun_starts_the_history_of_every_rank_at_the_shared_weights(tmp_path):
    """Ranks initialise different weights (seed + rank) until DDP copies rank 0's to all;
    the historical average must start from those, or rank 1 is pulled towards its own."""
    import os
    import subprocess
    import sys

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tests.helpers import ROOT

    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "dcgan.train", *TINY, "--batch-size", "8", *ALL_ON, "--max-steps", "2",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    acc = EventAccumulator(str(out))
    acc.Reload()
    first = {tag: acc.Scalars(tag)[0] for tag in ("train/hist_d", "train/hist_g")}
    assert all(e.step == 1 and e.value == 0.0 for e in first.values()), first  # mean over both ranks


# ------------------------------------------- defaults and old checkpoints
def test_every_technique_is_off_by_default():
    opt = dcgan_train.parse_opt([])
    assert not opt.feature_matching and not opt.minibatch_discrimination and not opt.virtual_batch_norm
    assert opt.historical_averaging == 0.0 and opt.label_smoothing == 1.0 and opt.vbn_ref_size is None
    assert dcgan_train.improved_techniques_on(opt) == []
    assert dcgan_train.parse_opt(["--virtual-batch-norm", "--batch-size", "32"]).vbn_ref_size == 32


@pytest.mark.parametrize("flag,value", [("--label-smoothing", "0"), ("--label-smoothing", "1.5"),
                                        ("--historical-averaging", "-1"), ("--minibatch-kernels", "0")])
def test_bad_values_are_refused(flag, value, capsys):
    with pytest.raises(SystemExit):
        dcgan_train.parse_opt([flag, value])
    assert flag in capsys.readouterr().err


def test_a_checkpoint_without_the_new_options_still_loads(tmp_path):
    """Checkpoints written before the toolbox hold no minibatch/VBN options: they mean off."""
    G = Generator(100, 8, 1, 16)
    options = {"nz": 100, "ngf": 8, "ndf": 8, "channels": 1, "image_size": 16, "data": "digits"}
    path = atomic_save({"format": 1, "model_name": "dcgan", "step": 1, "models": {"G": G.state_dict()},
                        "options": options}, tmp_path / "old.pt")
    loaded, _ = dcgan_generate.load_generator(path, torch.device("cpu"))
    assert type(loaded) is Generator


def test_resuming_with_another_architecture_names_the_option(all_on_run, tmp_path):
    flags = [a for a in ALL_ON if a not in ("--virtual-batch-norm", "--vbn-ref-size", "8")]
    with pytest.raises(CheckpointError, match="virtual_batch_norm=True in checkpoint, False now"):
        dcgan_train.main(dcgan_train.parse_opt(TINY + flags + ["--resume", str(all_on_run / "checkpoints/last.pt"),
                                                                "--out", str(tmp_path / "x")]))
