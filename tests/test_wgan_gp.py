"""WGAN-GP: architecture, the penalised critic step (hand values, AMP), end to end, resume, generate."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from common.checkpoint import load_file
from common.inference import load_generator
from common.device import Precision
from tests.helpers import assert_one_line_error, run_script
from wgan_gp import train as gp_train
from wgan_gp.model import Critic, Generator, build_generator, init_weights
from wgan_gp.utils import sample_z

TINY = ["--image-size", "16", "--ngf", "8", "--ndf", "8", "--batch-size", "16", "--precision", "fp32",
        "--device", "cpu", "--log-every", "1"]
CPU = torch.device("cpu")
FP32 = Precision("fp32", CPU)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------- architecture
def test_parameter_counts_match_the_layer_tables():
    # G: 128->512 (4x4 kernel, no bias) + BN, 512->256, 256->128, 128->64 + BN, 64->3 with bias
    g = 128 * 512 * 16 + 1024 + 512 * 256 * 16 + 512 + 256 * 128 * 16 + 256 + 128 * 64 * 16 + 128 + 64 * 3 * 16 + 3
    assert n_params(Generator(128, 64, 3, 64)) == g == 3_806_083
    # critic: 3->64 with bias, then convs without bias + layer norm (scale and shift per channel), 512->1 with bias
    c = 3 * 64 * 16 + 64 + 64 * 128 * 16 + 256 + 128 * 256 * 16 + 512 + 256 * 512 * 16 + 1024 + 512 * 16 + 1
    assert n_params(Critic(64, 3, 64, "layer")) == c == 2_765_633
    assert n_params(Critic(64, 3, 64, "none")) == c - (256 + 512 + 1024) + (128 + 256 + 512)  # biases instead


def test_critic_never_uses_batch_statistics():
    for norm in ("layer", "instance", "none"):
        C = Critic(8, 1, 32, norm).train()
        assert not any(isinstance(m, nn.BatchNorm2d) for m in C.modules())
        x = torch.randn(6, 1, 32, 32)
        torch.testing.assert_close(C(x)[:2], C(x[:2]))  # each score depends on its own image only
    with pytest.raises(ValueError, match="batch norm is not valid"):
        Critic(8, 1, 32, "batch")


def test_layer_norm_normalises_each_example_over_channels_and_positions():
    C = Critic(8, 1, 32, "layer")
    norm = next(m for m in C.modules() if isinstance(m, nn.GroupNorm))
    assert norm.num_groups == 1 and norm.weight.shape == (norm.num_channels,)
    x = torch.randn(3, norm.num_channels, 8, 8) * 5 + 2
    with torch.no_grad():
        norm.weight.fill_(1.0)
        norm.bias.zero_()
        y = norm(x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    var = x.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
    torch.testing.assert_close(y, (x - mean) / torch.sqrt(var + norm.eps), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------- the critic's step
class LinearCritic(nn.Module):
    """D(x) = w . x + b: its input gradient is w everywhere, so the penalty is (||w|| - 1)^2."""

    def __init__(self, w: torch.Tensor, b: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b


class ConstantG(nn.Module):
    def __init__(self, image: torch.Tensor):
        super().__init__()
        self.image = image

    def forward(self, z):
        return self.image.expand(z.shape[0], *self.image.shape)


def test_critic_loss_for_a_known_critic_matches_the_hand_value():
    """Eq. 3 for D(x) = w.x with ||w|| = 3: mean D(fake) - mean D(real) + 10 * (3 - 1)^2."""
    w = torch.zeros(4)
    w[0], w[1] = 3.0 * 0.6, 3.0 * 0.8  # ||w|| = 3
    C = LinearCritic(w, b=0.5)
    real = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]).view(2, 1, 2, 2)
    fake_image = torch.tensor([0.0, 0.0, 1.0, 1.0]).view(1, 2, 2)
    opt = torch.optim.SGD(C.parameters(), lr=0.0)  # look, don't touch
    stats = gp_train.critic_step(ConstantG(fake_image), C, opt, real, torch.zeros(2, 1), FP32, 10.0)
    d_real = (1.8 + 2.4) / 2 + 0.5  # w.x + b for the two real images
    d_fake = 0.0 + 0.5
    assert float(stats["gp"]) == pytest.approx((3.0 - 1.0) ** 2, rel=1e-5)
    assert float(stats["wasserstein_estimate"]) == pytest.approx(d_real - d_fake, rel=1e-5)
    assert float(stats["loss_c"]) == pytest.approx(d_fake - d_real + 10.0 * 4.0, rel=1e-5)


def test_one_critic_step_pulls_a_steep_critics_gradient_norm_towards_one():
    torch.manual_seed(0)
    w = torch.randn(16)
    C = LinearCritic(w / w.norm() * 8.0)  # gradient norm 8, penalty 49
    opt = torch.optim.Adam(C.parameters(), lr=0.1, betas=(0.0, 0.9))
    real = torch.rand(8, 1, 4, 4)
    G = ConstantG(torch.rand(1, 4, 4))
    before = float(gp_train.critic_step(G, C, opt, real, torch.zeros(8, 1), FP32, 10.0)["gp"])
    after = float(gp_train.critic_step(G, C, opt, real, torch.zeros(8, 1), FP32, 10.0)["gp"])
    assert before == pytest.approx(49.0, rel=1e-4)
    assert after < before - 1.0  # Adam's first step moves each w_i by ~lr towards a smaller norm
    assert float(C.w.norm()) < 8.0


def tiny_models(seed: int = 0):
    torch.manual_seed(seed)
    G, C = Generator(32, 8, 1, 16), Critic(8, 1, 16)
    G.apply(init_weights)
    C.apply(init_weights)
    opt_g = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.0, 0.9))
    opt_c = torch.optim.Adam(C.parameters(), 1e-4, betas=(0.0, 0.9))
    return G, C, opt_g, opt_c


def test_critic_step_trains_only_the_critic_and_builds_no_graph_through_g():
    G, C, opt_g, opt_c = tiny_models()
    g0 = [p.detach().clone() for p in G.parameters()]
    c0 = [p.detach().clone() for p in C.parameters()]
    stats = gp_train.critic_step(G, C, opt_c, torch.rand(8, 1, 16, 16) * 2 - 1, sample_z(8, 32), FP32, 10.0)
    assert all(torch.isfinite(v) for v in stats.values()) and float(stats["gp"]) > 0
    assert all(torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert all(p.grad is None for p in G.parameters())  # fakes made under no_grad
    changed = {name for (name, p), before in zip(C.named_parameters(), c0) if not torch.equal(p, before)}
    # every weight moves except the output bias: it cancels in mean D(fake) - mean D(real), and
    # the penalty does not see it either
    assert changed == {name for name, _ in C.named_parameters()} - {f"main.{len(C.main) - 1}.bias"}


def test_generator_step_trains_only_g():
    G, C, opt_g, opt_c = tiny_models()
    c0 = [p.detach().clone() for p in C.parameters()]
    g0 = [p.detach().clone() for p in G.parameters()]
    stats = gp_train.generator_step(G, C, opt_g, sample_z(8, 32), FP32)
    assert torch.isfinite(stats["loss_g"])
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(c0, C.parameters()))
    assert all(p.requires_grad for p in C.parameters())


def test_bf16_autocast_step_is_finite_and_close_to_fp32():
    """On CPU, bf16 autocast: the penalty is computed in fp32 from bf16 gradients, close to fp32's."""
    real, z = torch.rand(8, 1, 16, 16) * 2 - 1, sample_z(8, 32, generator=torch.Generator().manual_seed(0))
    stats = {}
    for name in ("fp32", "bf16"):
        G, C, _, opt_c = tiny_models(seed=1)
        torch.manual_seed(5)  # the same eps for both
        stats[name] = gp_train.critic_step(G, C, opt_c, real, z, Precision(name, CPU), 10.0)
    assert all(torch.isfinite(v) for v in stats["bf16"].values())
    assert float(stats["bf16"]["gp"]) == pytest.approx(float(stats["fp32"]["gp"]), rel=0.05)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 with a GradScaler needs CUDA")
def test_fp16_with_grad_scaler_matches_fp32_on_cuda():
    cuda = torch.device("cuda")
    real = (torch.rand(8, 1, 16, 16) * 2 - 1).to(cuda)
    z = sample_z(8, 32, generator=torch.Generator().manual_seed(0)).to(cuda)
    stats = {}
    for name in ("fp32", "fp16"):
        G, C, _, opt_c = tiny_models(seed=1)
        G, C = G.to(cuda), C.to(cuda)
        opt_c = torch.optim.Adam(C.parameters(), 1e-4, betas=(0.0, 0.9))
        prec = Precision(name, cuda)
        if name == "fp16":
            assert prec.scaler.is_enabled() and prec.scaler.get_scale() > 1.0
        torch.manual_seed(5)
        stats[name] = gp_train.critic_step(G, C, opt_c, real, z, prec, 10.0)
    assert all(torch.isfinite(v) for v in stats["fp16"].values())
    assert float(stats["fp16"]["gp"]) == pytest.approx(float(stats["fp32"]["gp"]), rel=0.05)


# -------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("wgan_gp") / "run"
    proc = run_script("wgan_gp", "train", *TINY, "--max-steps", "3", "--sample-every", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_defaults_are_algorithm_1s():
    opt = gp_train.parse_opt([])
    assert (opt.lambda_gp, opt.n_critic, opt.lr, opt.beta1, opt.beta2, opt.batch_size) == (10.0, 5, 1e-4, 0.0, 0.9, 64)
    assert opt.critic_norm == "layer"


def test_train_script_writes_checkpoint_grid_and_penalty_events(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = tiny_run
    payload = load_file(out / "checkpoints" / "last.pt")
    assert payload["step"] == 3 and payload["model_name"] == "wgan_gp"
    assert set(payload["models"]) == {"G", "C"}
    assert payload["optimizers"]["C"]["param_groups"][0]["betas"] == (0.0, 0.9)
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["samples_0000002.png", "samples_0000003.png"]
    acc = EventAccumulator(str(out))
    acc.Reload()
    assert {"train/loss_c", "train/gp", "train/wasserstein_estimate", "train/loss_g"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("train/gp")] == [1, 2, 3]


def test_generate_and_evaluate_the_checkpoint(tiny_run, tmp_path):
    ckpt = tiny_run[0] / "checkpoints" / "last.pt"
    proc = run_script("wgan_gp", "generate", "--checkpoint", ckpt, "--n", "4", "--out", tmp_path / "g.png",
                      "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    G, o = load_generator(ckpt, "wgan_gp", build_generator, CPU)
    assert o["nz"] == 128 and G(sample_z(2, 128)).shape == (2, 1, 16, 16)
    proc = run_script("wgan_gp", "evaluate", "--checkpoint", ckpt, "--n", "64", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tiny_run[0] / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["model"] == "wgan_gp" and record["step"] == 3


def test_resume_is_exact(tmp_path):
    common = TINY + ["--seed", "3", "--sample-every", "100", "--save-every", "100", "--n-critic", "2"]
    for out, steps, resume in [("a", 4, []), ("b", 2, []), ("b", 4, ["--resume", "auto"])]:
        gp_train.main(gp_train.parse_opt(common + ["--max-steps", str(steps), "--out", str(tmp_path / out)] + resume))
    ma, mb = (load_file(tmp_path / f"{x}/checkpoints/last.pt")["models"] for x in "ab")
    for net in ("G", "C"):
        for key in ma[net]:
            assert torch.equal(ma[net][key], mb[net][key]), f"{net}.{key} differs after resume"
    gp_train.main(gp_train.parse_opt(common + ["--max-steps", "3", "--out", str(tmp_path / "c")]))
    mc = load_file(tmp_path / "c/checkpoints/last.pt")["models"]
    assert not torch.equal(ma["G"]["main.0.weight"], mc["G"]["main.0.weight"])


def test_a_batch_norm_critic_is_refused_on_the_command_line(tmp_path):
    proc = run_script("wgan_gp", "train", *TINY, "--critic-norm", "batch", "--out", tmp_path / "bn")
    assert proc.returncode != 0 and "invalid choice" in proc.stderr


def test_bad_checkpoint_path_gets_one_line_error(tmp_path):
    assert_one_line_error(run_script("wgan_gp", "generate", "--checkpoint", tmp_path / "nope.pt", "--device", "cpu"),
                          "nope.pt")
