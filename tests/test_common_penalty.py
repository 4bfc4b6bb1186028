"""common.penalty: WGAN-GP gradient penalty (Gulrajani et al. 2017, eq. 3)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from common.penalty import gradient_penalty, interpolate

SHAPE = (6, 2, 3, 3)  # N, C, H, W
DIM = 2 * 3 * 3


class LinearCritic(nn.Module):
    """D(x) = w . flatten(x) + b: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor, b: float = 0.3):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x, **kwargs):
        return x.flatten(1) @ self.w + self.b


def conv_critic():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(4, 1, 3), nn.Flatten(), nn.Linear(1, 1))


def w_with_norm(norm: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(DIM, generator=g, dtype=torch.float64)
    return (w / w.norm() * norm).float()


def batches(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)


# ---------------------------------------------------------- exact values
@pytest.mark.parametrize("norm", [0.25, 0.5, 2.0, 5.0])
def test_linear_critic_penalty_is_norm_minus_one_squared(norm):
    w = w_with_norm(norm, seed=int(norm * 100))
    critic = LinearCritic(w)
    real, fake = batches(int(norm * 10))
    gp = gradient_penalty(critic, real, fake)
    expected = (w.double().norm() - 1.0) ** 2
    assert_close(gp, expected.float())
    assert gp.dtype == torch.float32 and gp.dim() == 0


def test_nn_linear_critic_penalty():
    torch.manual_seed(3)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(DIM, 1))
    with torch.no_grad():
        critic[1].weight.mul_(7.0)
    real, fake = batches(1)
    expected = (critic[1].weight.detach().double().norm() - 1.0) ** 2
    assert abs(expected.item()) > 0.1
    assert_close(gradient_penalty(critic, real, fake), expected.float())


def test_unit_norm_gives_zero_penalty():
    critic = LinearCritic(w_with_norm(1.0, seed=5))
    real, fake = batches(2)
    assert_close(gradient_penalty(critic, real, fake), torch.tensor(0.0), atol=1e-10, rtol=0)


def test_target_other_than_one():
    w = w_with_norm(3.0, seed=6)
    real, fake = batches(3)
    gp = gradient_penalty(LinearCritic(w), real, fake, target=2.0)
    assert_close(gp, ((w.double().norm() - 2.0) ** 2).float())


def test_critic_kwargs_are_passed():
    seen = {}

    class Conditional(LinearCritic):
        def forward(self, x, labels=None):
            seen["labels"] = labels
            return super().forward(x)

    labels = torch.arange(SHAPE[0])
    real, fake = batches(4)
    gradient_penalty(Conditional(w_with_norm(2.0, 7)), real, fake, labels=labels)
    assert seen["labels"] is labels


# ------------------------------------------------------------- interpolate
def test_interpolate_with_given_eps():
    real, fake = batches(5)
    eps = torch.rand(SHAPE[0], 1, 1, 1, generator=torch.Generator().manual_seed(0))
    x_hat = interpolate(real, fake, eps)
    assert x_hat.requires_grad
    expected = torch.stack([eps[i, 0, 0, 0].item() * real[i] + (1 - eps[i, 0, 0, 0].item()) * fake[i]
                            for i in range(SHAPE[0])])
    assert_close(x_hat.detach(), expected)


def test_interpolate_draws_one_eps_per_sample():
    torch.manual_seed(0)
    real, fake = batches(6)
    n = SHAPE[0] * 2
    real, fake = torch.cat([real, real * 2]), torch.cat([fake, fake - 1])
    x_hat = interpolate(real, fake).detach()
    ts = []
    for i in range(n):
        d = (x_hat[i] - fake[i]).double().flatten()
        r = (real[i] - fake[i]).double().flatten()
        t = float(d @ r / (r @ r))
        assert -1e-6 <= t <= 1 + 1e-6
        assert_close(d, t * r, atol=1e-5, rtol=1e-5)  # the same scalar for every element
        ts.append(t)
    assert len({round(t, 4) for t in ts}) == n  # a different eps for each sample


def test_no_gradient_flows_into_fake():
    real, fake = batches(7)
    fake.requires_grad_(True)
    gp = gradient_penalty(conv_critic(), real, fake)
    gp.backward()
    assert fake.grad is None


# --------------------------------------------------------------------- AMP
def test_grad_scaler_does_not_change_the_penalty():
    torch.manual_seed(1)
    critic = conv_critic()
    real, fake = batches(8)
    eps = torch.rand(SHAPE[0], 1, 1, 1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    assert scaler.is_enabled() and scaler.get_scale() == 2.0 ** 12
    plain = gradient_penalty(critic, real, fake, eps=eps)
    scaled = gradient_penalty(critic, real, fake, eps=eps, scaler=scaler)
    assert plain.item() > 1e-3
    assert_close(scaled, plain)
    disabled = torch.amp.GradScaler("cpu", enabled=False)
    assert_close(gradient_penalty(critic, real, fake, eps=eps, scaler=disabled), plain)


def test_bf16_autocast_penalty_is_finite():
    torch.manual_seed(2)
    critic = conv_critic()
    real, fake = batches(9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp = gradient_penalty(critic, real, fake)
    assert gp.dtype == torch.float32
    assert math.isfinite(gp.item())
    gp.backward()
    # (the biases get no gradient: the input gradient does not depend on them)
    grads = [p.grad for name, p in critic.named_parameters() if name.endswith("weight")]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


# ------------------------------------------------------------------- graph
def test_penalty_backpropagates_into_critic_weights():
    torch.manual_seed(3)
    critic = conv_critic()
    real, fake = batches(10)
    gp = gradient_penalty(critic, real, fake)
    gp.backward()
    for name, p in critic.named_parameters():
        if name.endswith("weight"):
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_linear_critic_gradient_matches_closed_form():
    w = w_with_norm(5.0, seed=11)
    critic = LinearCritic(w)
    real, fake = batches(11)
    gradient_penalty(critic, real, fake).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    expected = 2 * (w.norm() - 1) * w / w.norm()
    assert_close(critic.w.grad, expected)


def test_sgd_step_reduces_penalty():
    critic = LinearCritic(w_with_norm(5.0, seed=12))
    opt = torch.optim.SGD(critic.parameters(), lr=0.1)
    real, fake = batches(12)
    before = gradient_penalty(critic, real, fake)
    opt.zero_grad()
    before.backward()
    opt.step()
    after = gradient_penalty(critic, real, fake)
    assert after.item() < before.item() - 1.0
    assert 1.0 < critic.w.detach().norm().item() < 5.0


def test_penalty_at_scores_of_a_joint_forward_equals_the_separate_penalty():
    """Scoring real, fake and x_hat in one pass (wgan_gp) gives the same penalty and the
    same critic gradient as the separate call, for a critic without batch statistics."""
    from common.penalty import penalty_at

    torch.manual_seed(0)
    critic = conv_critic()
    real, fake = torch.randn(*SHAPE), torch.randn(*SHAPE)
    eps = torch.rand(SHAPE[0], 1, 1, 1)
    separate = gradient_penalty(critic, real, fake, eps=eps)
    (g_separate,) = torch.autograd.grad(separate, critic[0].weight)
    x_hat = interpolate(real, fake, eps)
    scores = critic(torch.cat([real, fake, x_hat]))
    joint = penalty_at(scores[2 * SHAPE[0]:], x_hat)
    (g_joint,) = torch.autograd.grad(joint, critic[0].weight)
    assert_close(joint, separate)
    assert_close(g_joint, g_separate)
    assert separate.item() > 0.01  # not a trivially zero penalty


# ------------------------------------------------- fp16 + GradScaler, on the CPU
def fp16_case(seed: int = 4):
    """A critic whose fp16 scores are larger than 1 (so scores * 65536 is inf in fp16)."""
    torch.manual_seed(seed)
    critic = conv_critic()
    with torch.no_grad():
        critic[-1].bias.fill_(3.0)
    real, fake = batches(seed)
    return critic, real, fake, torch.rand(SHAPE[0], 1, 1, 1)


def test_fp16_penalty_at_the_scalers_initial_scale_is_finite_and_equals_fp32():
    """Autocast fp16 (which the CPU also runs) with an enabled GradScaler at its initial
    scale, 65536 > fp16's largest value 65504: the scaled reduction is taken in fp32, so the
    penalty is finite and equals the fp32 one. (Scaling the fp16 scores made it NaN.)"""
    critic, real, fake, eps = fp16_case()
    reference = gradient_penalty(critic, real, fake, eps=eps)
    scaler = torch.amp.GradScaler("cpu")
    assert scaler.is_enabled() and scaler.get_scale() == 65536.0
    with torch.autocast("cpu", dtype=torch.float16):
        assert critic(real).dtype == torch.float16 and (critic(real).abs() > 1).all()
        gp = gradient_penalty(critic, real, fake, eps=eps, scaler=scaler)
    assert math.isfinite(gp.item()) and reference.item() > 1e-3
    assert_close(gp, reference, rtol=1e-2, atol=1e-3)


def test_fp16_overflow_is_a_skipped_step_not_a_crash():
    """A scale grown far past what fp16 holds: the penalty overflows (inf), the critic's
    gradients too, and GradScaler skips the update (weights unchanged) and lowers its
    scale; common.device.GradScaler counts the skip. At the lowered scale the next step
    goes through."""
    from common.device import GradScaler

    critic, real, fake, eps = fp16_case(5)
    opt = torch.optim.SGD(critic.parameters(), lr=0.01)
    scaler = GradScaler("cpu", init_scale=2.0 ** 40)
    before = [p.detach().clone() for p in critic.parameters()]
    with torch.autocast("cpu", dtype=torch.float16):
        gp = gradient_penalty(critic, real, fake, eps=eps, scaler=scaler)
    assert not math.isfinite(gp.item())
    opt.zero_grad()
    scaler.scale(gp).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler.skipped_updates == 1 and scaler.get_scale() == 2.0 ** 39
    assert all(torch.equal(a, b) for a, b in zip(before, critic.parameters()))  # the step was skipped
    scaler.update(2.0 ** 10)  # (as if it had backed off many times) the next step is taken
    with torch.autocast("cpu", dtype=torch.float16):
        gp = gradient_penalty(critic, real, fake, eps=eps, scaler=scaler)
    opt.zero_grad()
    scaler.scale(gp).backward()
    scaler.step(opt)
    scaler.update()
    assert math.isfinite(gp.item()) and scaler.skipped_updates == 1
    assert not all(torch.equal(a, b) for a, b in zip(before, critic.parameters()))
