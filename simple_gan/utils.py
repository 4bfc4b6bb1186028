"""What only the simple GAN needs: its latent priors, the data's mean image, and the SGD
schedule of --arch paper (the authors' mnist.yaml)."""
from __future__ import annotations

import math

import torch

Z_DISTS = ("normal", "uniform")


def sample_z(n: int, z_dim: int, dist: str = "normal", *, device=None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ N(0, I) (the seed's choice; the paper leaves p_z open), or "uniform": U[-sqrt 3,
    sqrt 3]^z_dim, unit variance, the authors' code's noise for MNIST (--arch paper). Drawn on
    `device` directly unless an explicit CPU `generator` is given."""
    where = device if generator is None else None
    if dist == "normal":
        z = torch.randn(n, z_dim, generator=generator, device=where)
    elif dist == "uniform":
        z = (torch.rand(n, z_dim, generator=generator, device=where) * 2.0 - 1.0) * math.sqrt(3.0)
    else:
        raise ValueError(f"unknown latent distribution {dist!r} ({' | '.join(Z_DISTS)})")
    return z.to(device) if device is not None else z


def latents(options: dict, n: int, generator: torch.Generator) -> torch.Tensor:
    """z from the run's prior (--z-dist; a checkpoint from before it drew N(0, I)): what
    generate.py and evaluate.py feed G."""
    return sample_z(n, options["z_dim"], options.get("z_dist", "normal"), generator=generator)


@torch.no_grad()
def mean_image01(dataset, limit: int = 10_000) -> torch.Tensor:
    """The mean training image in [0, 1], over at most `limit` images at evenly spaced indices
    (no RNG, so the run's random stream is untouched): for PaperGenerator.init_output_bias."""
    idx = torch.linspace(0, len(dataset) - 1, min(limit, len(dataset))).long()
    total = sum(dataset[int(i)][0].double() for i in idx)
    return ((total / len(idx)) + 1.0) / 2.0


# ------------------------------------------- --arch paper's SGD schedule (mnist.yaml)
# The same pylearn2 schedule as cgan/utils.py (the cGAN paper's Sec. 4.1 trains with it), each
# folder with its own copy; lapgan/utils.py has a similar one of its own, stepped per epoch.
def learning_rate(step: int, lr0: float = 0.1, decay: float = 1.000004, min_lr: float = 1e-6) -> float:
    """pylearn2's ExponentialDecay as the authors' mnist.yaml sets it (learning rate 0.1,
    decay_factor 1.000004, min_lr 1e-6): lr_t = max(lr0 / decay^(t-1), min_lr) for update
    t = 1, 2, ... (pylearn2 divides the rate once per minibatch, after the update)."""
    return max(lr0 / decay ** (step - 1), min_lr)


def momentum(step: int, ramp_steps: float, start: float = 0.5, final: float = 0.7) -> float:
    """pylearn2's MomentumAdjustor as mnist.yaml sets it (0.5 rising to final_momentum 0.7,
    saturate 250 epochs), per update: linear from `start` at update 1 to `final` after
    `ramp_steps` updates, then constant."""
    if ramp_steps <= 0:
        return final
    return start + (final - start) * min(1.0, (step - 1) / ramp_steps)


def apply_sgd_schedule(opt, step: int, steps_per_epoch: float, optimizers) -> dict[str, float]:
    """Write update `step`'s learning rate and momentum (--lr --lr-decay --min-lr; --momentum
    --final-momentum over --momentum-epochs) into every parameter group of `optimizers`, before
    the update. Returns them for the logs.

    Written here rather than as a torch.optim.lr_scheduler: the rule moves the learning rate and
    the momentum together, every update, and torch's schedulers move the learning rate only. A
    function of the step alone, it needs no state of its own for a resumed run to continue it
    exactly."""
    lr = learning_rate(step, opt.lr, opt.lr_decay, opt.min_lr)
    momentum_value = momentum(step, opt.momentum_epochs * steps_per_epoch, opt.momentum, opt.final_momentum)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = lr
            group["momentum"] = momentum_value
    return {"lr": lr, "momentum": momentum_value}
