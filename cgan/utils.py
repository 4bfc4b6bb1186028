"""What only the conditional GAN needs: its priors on z and y, the class-grid labels, and
the paper's SGD schedule for --arch mlp (Sec. 4.1)."""
from __future__ import annotations

import torch

from common import pylearn2

Z_DISTS = ("normal", "hypercube")


# ------------------------------------------------------------------ z and y
def sample_z(n: int, nz: int, dist: str = "normal", *, device=None, generator: torch.Generator | None = None):
    """z ~ N(0, I) (the seed's prior, --arch conv) or U[0, 1]^nz, "a uniform distribution
    within the unit hypercube" (Sec. 4.1, --arch mlp).

    Drawn directly on `device`, except with an explicit CPU `generator` (fixed latents),
    whose draws are then moved."""
    where = device if generator is None else None
    if dist == "normal":
        z = torch.randn(n, nz, generator=generator, device=where)
    elif dist == "hypercube":
        z = torch.rand(n, nz, generator=generator, device=where)
    else:
        raise ValueError(f"unknown latent distribution {dist!r} ({' | '.join(Z_DISTS)})")
    return z.to(device) if device is not None else z


def class_grid_labels(num_classes: int, per_class: int = 10) -> torch.Tensor:
    """0,0,...,0, 1,1,...,1, ...: row k of a grid with `per_class` columns is class k (Fig. 2)."""
    return torch.arange(num_classes).repeat_interleave(per_class)


def class_grid_z(num_classes: int, per_class: int, nz: int, dist: str, generator: torch.Generator) -> torch.Tensor:
    """One z per column, repeated down the rows: each column is the same noise drawn as every
    class, so what changes along a column is the label alone."""
    return sample_z(per_class, nz, dist, generator=generator).repeat(num_classes, 1)


def cycling_labels(n: int, num_classes: int) -> torch.Tensor:
    """0, 1, ..., num_classes-1, 0, 1, ...: a balanced set of requested classes (evaluation)."""
    return torch.arange(n) % num_classes


@torch.no_grad()
def generate(G: torch.nn.Module, z: torch.Tensor, labels: torch.Tensor, device, *, seed: int = 0,
             batch_size: int = 256) -> torch.Tensor:
    """G(z | y) in eval mode (BatchNorm running statistics), in batches, fp32 on the CPU.

    The MLP generator's dropout stays on (model.GeneratorDropout), so its masks are drawn from
    the global RNG seeded with `seed` inside a fork: the same call gives the same images, and a
    training run's RNG (hence an exact resume) is untouched. G's train/eval mode is restored."""
    was_training = G.training
    G.eval()
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        images = torch.cat([G(zc.to(device), yc.to(device)).float().cpu()
                            for zc, yc in zip(z.split(batch_size), labels.split(batch_size))])
    G.train(was_training)
    return images


def label_classifier(data: str):
    """The offline digit classifier (common/features.py, the network behind the offline FID
    features) for class accuracy when the data are digits; None otherwise (it knows no other classes)."""
    from common.metrics import DIGIT_DATA

    if data not in DIGIT_DATA:
        return None
    from common.features import load_classifier

    with torch.random.fork_rng(devices=[]):  # a first-time training must not move a run's RNG
        return load_classifier()[0]


# ------------------------------------------- the SGD schedule of --arch mlp
def learning_rate(step: int, lr0: float = 0.1, decay: float = 1.00004, min_lr: float = 1e-6) -> float:
    """Sec. 4.1: "initial learning rate of 0.1 which was exponentially decreased down to
    .000001 with decay factor of 1.00004" (common.pylearn2.learning_rate)."""
    return pylearn2.learning_rate(step, lr0, decay, min_lr)


def momentum(step: int, ramp_steps: float, start: float = 0.5, final: float = 0.7) -> float:
    """Sec. 4.1: "momentum ... with initial value of .5 which was increased up to 0.7"; the
    paper gives no pace: linear over `ramp_steps` updates (common.pylearn2.momentum)."""
    return pylearn2.momentum(step, ramp_steps, start, final)

