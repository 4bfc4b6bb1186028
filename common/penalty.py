"""Gradient penalty of WGAN-GP (Gulrajani et al. 2017, eq. 3), shared with ProGAN.

    GP = E_{x_hat} [ (||grad_{x_hat} D(x_hat)||_2 - 1)^2 ],
    x_hat = eps * x + (1 - eps) * x_tilde,  eps ~ U[0, 1] per sample.

The caller multiplies by lambda (10 in the paper). Under AMP the gradient is
taken of a *scaled* fp32 reduction of the scores and unscaled afterwards, as
PyTorch's AMP examples ("gradient penalty") prescribe, so fp16 gradients neither
underflow nor overflow at the scaler's initial scale, and the loss scale does not
leak into the penalty. The norm is computed in fp32.
"""
from __future__ import annotations

import torch


def interpolate(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """x_hat = eps * real + (1 - eps) * fake, one eps ~ U[0, 1] per sample."""
    if eps is None:
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    return (eps * real + (1.0 - eps) * fake.detach()).requires_grad_(True)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, *, scaler=None,
                     eps: torch.Tensor | None = None, target: float = 1.0, **critic_kwargs) -> torch.Tensor:
    """(||grad D(x_hat)|| - target)^2 averaged over the batch (eq. 3 without lambda).

    Call it inside the same autocast context as the critic's loss; pass the
    GradScaler when fp16 is in use. `critic_kwargs` go to the critic (e.g. labels).
    """
    x_hat = interpolate(real, fake, eps)
    return penalty_at(critic(x_hat, **critic_kwargs), x_hat, scaler=scaler, target=target)


def penalty_at(scores: torch.Tensor, x_hat: torch.Tensor, *, scaler=None, target: float = 1.0) -> torch.Tensor:
    """The penalty from critic scores already computed on x_hat (one per example).

    Under fp16 the input gradient is taken of an fp32 reduction of the scores, scaled:
    mean(scores) in fp32 times the GradScaler's scale, then the gradient is unscaled (and
    multiplied by m, the batch size, to undo the mean) before the norm. Each score's
    gradient is then scale / m, which fits fp16 (max 65504) at the scaler's initial
    65536 for m >= 2; scaling the fp16 scores themselves, or their sum, makes it 65536,
    an inf in fp16, and the penalty NaN. Should a grown scale overflow anyway, the
    penalty is inf, the critic's gradients too, and GradScaler.step skips that update and
    lowers the scale, as it does for any overflow (common.loop lets such a step pass).

    Give it the scores of a call on x_hat alone where speed matters: if x_hat was
    scored in one call together with other images, the input gradient and its
    second backward run over every row of that call (on the CPU, scoring real,
    fake and x_hat together made a WGAN-GP critic step 1.4-1.6x slower)."""
    if scaler is not None and scaler.is_enabled():
        m, scale = scores.shape[0], scaler.get_scale()
        (grad,) = torch.autograd.grad(outputs=scores.float().mean() * scale, inputs=x_hat, create_graph=True)
        grad = grad.float() * (m / scale)
    else:  # fp32 / bf16: no scale, so the plain sum (each score's gradient is 1)
        (grad,) = torch.autograd.grad(outputs=scores.float().sum(), inputs=x_hat, create_graph=True)
        grad = grad.float()
    norm = grad.flatten(1).norm(2, dim=1)
    return ((norm - target) ** 2).mean()
