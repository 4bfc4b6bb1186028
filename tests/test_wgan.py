"""WGAN: architecture, Algorithm 1's pieces (losses, clipping, schedule), end to end, resume, generate."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn as nn

from common.checkpoint import load_file
from common.inference import load_generator
from common.device import Precision
from tests.helpers import assert_one_line_error, in_process, run_script
from wgan import train as wgan_train
from wgan.model import Critic, Generator, build_generator, clip_weights, init_weights
from wgan.utils import batches_before, critic_iterations, generator_iterations_in, sample_z

TINY = ["--image-size", "16", "--ngf", "8", "--ndf", "8", "--batch-size", "16", "--precision", "fp32",
        "--device", "cpu"]
FP32 = Precision("fp32", torch.device("cpu"))


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------- architecture
def expected_generator_params(nz: int, ngf: int, c: int, size: int) -> int:
    """4x4 kernels, no biases (the authors' code), BatchNorm (2 per channel) after each hidden layer."""
    n = int(math.log2(size // 4))
    widths = [ngf * 2 ** (n - 1 - i) for i in range(n)]  # 512, 256, 128, 64 for 64x64, ngf 64
    total = nz * widths[0] * 16 + 2 * widths[0]
    for w_in, w_out in zip(widths, widths[1:]):
        total += w_in * w_out * 16 + 2 * w_out
    return total + widths[-1] * c * 16


def expected_critic_params(ndf: int, c: int, size: int, norm_params_per_channel: int) -> int:
    n = int(math.log2(size // 4))
    widths = [ndf * 2 ** i for i in range(n)]  # 64, 128, 256, 512
    total = c * widths[0] * 16  # input layer: no norm, no bias
    for w_in, w_out in zip(widths, widths[1:]):
        total += w_in * w_out * 16 + norm_params_per_channel * w_out
    return total + widths[-1] * 16  # 4x4 conv to f_w(x)


def test_parameter_counts_match_the_layer_tables():
    assert n_params(Generator(100, 64, 3, 64)) == expected_generator_params(100, 64, 3, 64) == 3_576_704
    assert n_params(Critic(64, 3, 64, "batch")) == expected_critic_params(64, 3, 64, 2) == 2_765_568
    assert n_params(Critic(64, 3, 64, "instance")) == expected_critic_params(64, 3, 64, 2)  # affine
    assert n_params(Critic(64, 3, 64, "none")) == expected_critic_params(64, 3, 64, 0)
    for c, size in [(1, 32), (3, 16)]:
        assert n_params(Generator(100, 32, c, size)) == expected_generator_params(100, 32, c, size)
        assert n_params(Critic(32, c, size)) == expected_critic_params(32, c, size, 2)


def test_critic_has_no_sigmoid_and_returns_one_real_number_per_image():
    C = Critic(8, 1, 32).eval()
    assert not any(isinstance(m, nn.Sigmoid) for m in C.modules())
    out = C(torch.randn(5, 1, 32, 32) * 10)
    assert out.shape == (5,)
    with torch.no_grad():  # unbounded, unlike a probability: scaling the last layer scales f_w
        C.main[-1].weight.mul_(1000.0)
    assert C(torch.randn(5, 1, 32, 32)).abs().max() > 1.0


def test_critic_norm_choices_put_the_right_layers_in_the_hidden_blocks():
    kinds = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d}
    for norm, kind in kinds.items():
        C = Critic(8, 3, 64, norm)
        assert sum(isinstance(m, kind) for m in C.modules()) == 3  # not on the input layer
        assert isinstance(C.main[0], nn.Conv2d) and isinstance(C.main[1], nn.LeakyReLU)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in Critic(8, 3, 64, "none").modules())
    with pytest.raises(ValueError, match="critic norm"):
        Critic(8, 3, 64, "layer")


def test_generator_makes_images_in_tanh_range():
    out = Generator(100, 8, 3, 32)(sample_z(4, 100))
    assert out.shape == (4, 3, 32, 32) and out.abs().max() <= 1.0


# -------------------------------------------------------------- Algorithm 1
def test_losses_are_the_papers_estimate_and_its_negations():
    real, fake = torch.tensor([2.0, 0.0, 1.0]), torch.tensor([-1.0, 0.5])
    estimate = (2.0 + 0.0 + 1.0) / 3 - (-1.0 + 0.5) / 2  # mean f(x) - mean f(g(z)) = 1.25
    assert float(wgan_train.wasserstein_estimate(real, fake)) == pytest.approx(1.25)
    assert float(wgan_train.critic_loss(real, fake)) == pytest.approx(-estimate)
    assert float(wgan_train.generator_loss(fake)) == pytest.approx(0.25)


def test_clip_weights_bounds_every_critic_parameter():
    torch.manual_seed(0)
    C = Critic(8, 1, 16)
    C.apply(init_weights)
    assert max(float(p.detach().abs().max()) for p in C.parameters()) > 0.5  # BatchNorm scales start near 1
    clip_weights(C, 0.01)
    assert all(float(p.abs().max()) <= 0.01 for p in C.parameters())
    inside = [p for p in C.parameters() if float(p.abs().max()) < 0.01]
    before = [p.detach().clone() for p in inside]
    clip_weights(C, 0.01)
    assert all(torch.equal(a, b) for a, b in zip(before, inside))  # values inside the box are untouched


def tiny_models(norm: str = "batch", seed: int = 0):
    torch.manual_seed(seed)
    G, C = Generator(100, 8, 1, 16), Critic(8, 1, 16, norm)
    G.apply(init_weights)
    C.apply(init_weights)
    return G, C, torch.optim.RMSprop(G.parameters(), lr=5e-5), torch.optim.RMSprop(C.parameters(), lr=5e-5)


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_critic_step_trains_only_the_critic_and_clips(norm):
    G, C, opt_g, opt_c = tiny_models(norm)
    g0 = [p.detach().clone() for p in G.parameters()]
    c0 = [p.detach().clone() for p in C.parameters()]
    stats = wgan_train.critic_step(G, C, opt_c, torch.rand(8, 1, 16, 16) * 2 - 1, sample_z(8, 100), FP32, 0.01)
    assert torch.isfinite(stats["loss_c"]) and float(stats["wasserstein_estimate"]) == -float(stats["loss_c"])
    assert all(torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert all(p.grad is None for p in G.parameters())  # the fakes were made without a graph
    assert all(not torch.equal(a, b) for a, b in zip(c0, C.parameters()))
    assert all(float(p.abs().max()) <= 0.01 for p in C.parameters())


def test_generator_step_trains_only_g_and_gives_the_critic_its_gradients_back():
    G, C, opt_g, opt_c = tiny_models()
    clip_weights(C, 0.01)
    c0 = [p.detach().clone() for p in C.parameters()]
    g0 = [p.detach().clone() for p in G.parameters()]
    stats = wgan_train.generator_step(G, C, opt_g, sample_z(8, 100), FP32)
    assert torch.isfinite(stats["loss_g"])
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(c0, C.parameters()))
    assert all(p.requires_grad and p.grad is None for p in C.parameters())


def test_critic_steps_raise_the_estimate_on_fixed_batches():
    """The critic ascends mean f(x) - mean f(g(z)) (line 6): on a fixed pair of batches a few
    steps must raise it. Without clipping's box (c large) the rise is fast and monotone-ish."""
    G, C, _, _ = tiny_models("none", seed=1)
    opt_c = torch.optim.RMSprop(C.parameters(), lr=1e-3)
    real, z = torch.rand(16, 1, 16, 16) * 2 - 1, sample_z(16, 100)
    estimates = [float(wgan_train.critic_step(G, C, opt_c, real, z, FP32, 10.0)["wasserstein_estimate"])
                 for _ in range(15)]
    assert estimates[-1] > estimates[0] + 0.1, estimates


def test_critic_schedule_plain_and_with_the_authors_extra_iterations():
    assert [critic_iterations(s, 5) for s in (1, 25, 26, 501)] == [5, 5, 5, 5]
    extra = [critic_iterations(s, 5, True) for s in range(1, 1102)]
    assert extra[:25] == [100] * 25 and extra[25] == 5  # generator steps 1-25
    assert [s + 1 for s, k in enumerate(extra) if k == 100 and s >= 25] == [501, 1001]  # every 500th after
    for extra_on in (False, True):
        for step in (0, 1, 24, 25, 26, 500, 501, 502, 1101):
            assert batches_before(step, 5, extra_on) == sum(critic_iterations(s, 5, extra_on)
                                                            for s in range(1, step + 1))


def test_generator_iterations_in_a_budget_of_batches():
    assert generator_iterations_in(28 * 25, 5) == 140  # 25 epochs of 28 batches, 5 per step
    assert generator_iterations_in(4, 5) == 0
    for budget in (99, 100, 2500, 2501, 2599, 10_000):
        steps = generator_iterations_in(budget, 5, True)
        assert batches_before(steps, 5, True) <= budget < batches_before(steps + 1, 5, True)


# -------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("wgan") / "run"
    proc = run_script("wgan", "train", *TINY, "--max-steps", "3", "--sample-every", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_train_script_writes_checkpoint_grid_events_and_options(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, proc = tiny_run
    payload = load_file(out / "checkpoints" / "last.pt")
    assert payload["step"] == 3 and payload["model_name"] == "wgan"
    assert set(payload["models"]) == {"G", "C"} and set(payload["optimizers"]) == {"G", "C"}
    assert all(float(v.abs().max()) <= 0.01 for k, v in payload["models"]["C"].items() if "running" not in k
               and "num_batches" not in k)  # the saved critic is inside the clipping box
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["samples_0000002.png", "samples_0000003.png"]
    options = json.loads((out / "options.json").read_text())
    assert options["lr"] == 5e-5 and options["n_critic"] == 5 and options["clip"] == 0.01
    acc = EventAccumulator(str(out))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/wasserstein_estimate")] == [1, 2, 3]  # every step (Sec. 4.2)
    assert {"train/loss_c", "train/loss_g"} <= set(acc.Tags()["scalars"])


def test_defaults_are_algorithm_1s():
    opt = wgan_train.parse_opt([])
    assert (opt.lr, opt.clip, opt.batch_size, opt.n_critic) == (5e-5, 0.01, 64, 5)
    assert opt.critic_norm == "batch" and not opt.extra_critic and opt.log_every == 1


def test_generate_and_evaluate_the_checkpoint(tiny_run, tmp_path):
    ckpt = tiny_run[0] / "checkpoints" / "last.pt"
    proc = run_script("wgan", "generate", "--checkpoint", ckpt, "--n", "9", "--out", tmp_path / "g.png",
                      "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    from PIL import Image

    assert Image.open(tmp_path / "g.png").size == (3 * 18 + 2, 3 * 18 + 2)
    G, _ = load_generator(ckpt, "wgan", build_generator, torch.device("cpu"))
    z = sample_z(6, 100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(G(z)[:2], G(z[:2]))  # eval mode: no batch statistics
    proc = run_script("wgan", "evaluate", "--checkpoint", ckpt, "--n", "64", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tiny_run[0] / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["model"] == "wgan" and record["step"] == 3 and record["n"] == 64 and record["fid"] > 0


def weights(path):
    payload = load_file(path)
    return payload["models"], payload["optimizers"]


@pytest.mark.parametrize("extra", [False, True])
def test_resume_is_exact(tmp_path, extra):
    """4 generator steps in one run == 2, stop, resume, 2 more: same weights bit for bit. With
    --extra-critic the first steps read 100 batches each, so the data position must be right."""
    common = TINY + ["--seed", "3", "--sample-every", "100", "--save-every", "100", "--batch-size", "64"]
    common += ["--extra-critic", "--n-critic", "2"] if extra else []
    for out, steps, resume in [("a", 4, []), ("b", 2, []), ("b", 4, ["--resume", "auto"])]:
        wgan_train.main(wgan_train.parse_opt(common + ["--max-steps", str(steps), "--out", str(tmp_path / out)]
                                             + resume))
    (ma, oa), (mb, ob) = weights(tmp_path / "a/checkpoints/last.pt"), weights(tmp_path / "b/checkpoints/last.pt")
    for net in ("G", "C"):
        for key in ma[net]:
            assert torch.equal(ma[net][key], mb[net][key]), f"{net}.{key} differs after resume"
        for va, vb in zip(oa[net]["state"].values(), ob[net]["state"].values()):
            assert torch.equal(va["square_avg"], vb["square_avg"])
    wgan_train.main(wgan_train.parse_opt(common + ["--max-steps", "3", "--out", str(tmp_path / "c")]))
    assert not torch.equal(ma["G"]["main.0.weight"], weights(tmp_path / "c/checkpoints/last.pt")[0]["G"]["main.0.weight"])


def test_each_critic_iteration_reads_a_new_real_batch(tmp_path, monkeypatch):
    seen = []
    real_step = wgan_train.critic_step

    def spy(G, C, opt_c, real, *args):
        seen.append(real.clone())
        return real_step(G, C, opt_c, real, *args)

    monkeypatch.setattr(wgan_train, "critic_step", spy)
    wgan_train.main(wgan_train.parse_opt(TINY + ["--max-steps", "2", "--n-critic", "3", "--out", str(tmp_path / "r")]))
    assert len(seen) == 6  # n_critic per generator step
    assert all(not torch.equal(seen[i], seen[j]) for i in range(6) for j in range(i))


def test_epochs_count_passes_of_the_critic_over_the_data(tmp_path):
    # digits: 1797 images, batch 64 -> 28 batches per epoch; 1 epoch at n_critic 5 -> 5 generator steps
    out = tmp_path / "epoch"
    wgan_train.main(wgan_train.parse_opt(TINY + ["--batch-size", "64", "--epochs", "1", "--out", str(out)]))
    assert load_file(out / "checkpoints/last.pt")["step"] == 28 // 5


def test_bad_checkpoint_paths_and_other_models_get_one_line_errors(tiny_run, tmp_path, capsys):
    from dcgan import train as dcgan_train
    from wgan import generate as wgan_generate

    proc = run_script("wgan", "generate", "--checkpoint", tmp_path / "missing.pt", "--device", "cpu")
    assert_one_line_error(proc, "missing.pt")
    dcgan_out = dcgan_train.main(dcgan_train.parse_opt(["--image-size", "16", "--ngf", "8", "--ndf", "8", "--batch-size",
                                                        "16", "--max-steps", "1", "--device", "cpu",
                                                        "--out", str(tmp_path / "dcgan")]))
    generate = wgan_generate.parse_opt(["--checkpoint", str(dcgan_out / "checkpoints/last.pt"), "--device", "cpu",
                                        "--out", str(tmp_path / "g.png")])
    assert_one_line_error(in_process(capsys, lambda: wgan_generate.main(generate)), "dcgan")
