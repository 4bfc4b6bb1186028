"""What the 2014 GAN papers' pylearn2 code is made of, for the folders that rebuild those models:
simple_gan --arch paper (Goodfellow et al. 2014, the authors' mnist.yaml) and cgan --arch mlp
(Mirza & Osindero 2014, Sec. 4.1, which builds on that code).

- the maxout layer (Goodfellow et al. 2013) of their discriminators;
- pylearn2's `irange` initialisation: weights ~ U[-irange, irange], biases 0;
- their SGD schedule: pylearn2's ExponentialDecay (the learning rate divided by a factor
  after every update, down to a floor) and MomentumAdjustor (momentum rising linearly).
"""
from __future__ import annotations

import torch
import torch.nn as nn


class Maxout(nn.Module):
    """Maxout layer (Goodfellow et al. 2013): `units` outputs, each the max over `pieces`
    affine functions of the input: h_i = max_j (x W_ij + b_ij)."""

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.units, self.pieces).amax(dim=2)


def init_irange(module: nn.Module, irange: float) -> None:
    """pylearn2's `irange` init for every Linear (a maxout layer's too): weights ~ U[-irange,
    irange], biases 0. Use as model.apply(lambda m: init_irange(m, 0.05))."""
    if isinstance(module, nn.Linear):
        nn.init.uniform_(module.weight, -irange, irange)
        nn.init.zeros_(module.bias)


def learning_rate(step: int, lr0: float = 0.1, decay: float = 1.00004, min_lr: float = 1e-6) -> float:
    """ExponentialDecay: lr_t = max(lr0 / decay^(t-1), min_lr) for update t = 1, 2, ...
    (pylearn2 divides once per minibatch, after it). cGAN Sec. 4.1: 0.1, decay 1.00004, floor
    1e-6; the GAN paper's mnist.yaml: 0.1, decay 1.000004, floor 1e-6."""
    return max(lr0 / decay ** (step - 1), min_lr)


def momentum(step: int, ramp_steps: float, start: float = 0.5, final: float = 0.7) -> float:
    """MomentumAdjustor: momentum rises linearly from `start` at update 1 to `final` after
    `ramp_steps` updates, then stays (0.5 -> 0.7 over 250 epochs in the GAN code's mnist.yaml;
    cGAN Sec. 4.1 gives 0.5 -> 0.7 and no pace)."""
    if ramp_steps <= 0:
        return final
    return start + (final - start) * min(1.0, (step - 1) / ramp_steps)


def sgd_schedule(opt, step: int, steps_per_epoch: float) -> tuple[float, float]:
    """(lr, momentum) of update `step` from the flags the two folders share (--lr --lr-decay
    --min-lr, --momentum --final-momentum --momentum-epochs)."""
    return (learning_rate(step, opt.lr, opt.lr_decay, opt.min_lr),
            momentum(step, opt.momentum_epochs * steps_per_epoch, opt.momentum, opt.final_momentum))


def apply_sgd_schedule(opt, step: int, steps_per_epoch: float, optimizers) -> dict[str, float]:
    """Write update `step`'s lr and momentum into every parameter group of `optimizers`, before
    the update: a pure function of the step, so a resumed run continues the schedule exactly.
    Returns them for the logs."""
    lr, momentum_value = sgd_schedule(opt, step, steps_per_epoch)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = lr
            group["momentum"] = momentum_value
    return {"lr": lr, "momentum": momentum_value}
