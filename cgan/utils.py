"""What only the conditional GAN needs: its priors on z and y, the class-grid labels, sampling
and measuring G(z | y), and the paper's SGD schedule for --arch mlp (Sec. 4.1)."""
from __future__ import annotations

from typing import Callable

import torch

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


@torch.no_grad()
def class_accuracy(classifier: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Does G(z | y) show the digit y? The fraction of images generated for label k that the
    offline digit classifier (label_classifier) calls k; on real digits, its own accuracy."""
    predictions = torch.cat([classifier(chunk).argmax(1).cpu() for chunk in images.split(256)])
    return float((predictions == labels.cpu()).float().mean())


def label_classifier(data: str):
    """The offline digit classifier (common/features.py, the network behind the offline FID
    features) for class accuracy when the data are digits; None otherwise (it knows no other classes)."""
    from common.metrics import DIGIT_DATA

    if data not in DIGIT_DATA:
        return None
    from common.features import load_classifier

    with torch.random.fork_rng(devices=[]):  # a first-time training must not move a run's RNG
        return load_classifier()[0]


def evaluation(opt, session, dataset, G: torch.nn.Module) -> Callable[[], dict] | None:
    """--eval-every's measurement (train.py hands it to TrainLoop), or None when it is off (and
    off rank 0): common.metrics' report of G(z | y) for the balanced labels 0, 1, ..., 9, 0, ...,
    plus class accuracy on digit data. The real half and its features are computed once, here;
    the latents and G's dropout masks come from --seed + 1, so evaluating never moves the run's RNG."""
    if opt.eval_every <= 0 or not session.is_main:
        return None
    from common import metrics

    evaluator = metrics.Evaluator(dataset, opt.data, n=opt.eval_n, device=session.device)
    z = sample_z(evaluator.n, opt.nz, opt.z_dist, generator=torch.Generator().manual_seed(opt.seed + 1))
    labels = cycling_labels(evaluator.n, opt.num_classes)
    classifier = label_classifier(opt.data)

    def evaluate() -> dict:
        images = generate(G, z, labels, session.device, seed=opt.seed + 1)
        report = evaluator(images)
        if classifier is not None:
            report["class_accuracy"] = class_accuracy(classifier, images, labels)
        return report

    return evaluate


# ------------------------------------------- the SGD schedule of --arch mlp
# The pylearn2 schedule of the GAN paper's code, as in simple_gan/utils.py (each folder with its
# own copy); lapgan/utils.py has a similar one of its own, stepped per epoch.
def learning_rate(step: int, lr0: float = 0.1, decay: float = 1.00004, min_lr: float = 1e-6) -> float:
    """Sec. 4.1: "initial learning rate of 0.1 which was exponentially decreased down to
    .000001 with decay factor of 1.00004": pylearn2's ExponentialDecay,
    lr_t = max(lr0 / decay^(t-1), min_lr) for update t = 1, 2, ... (pylearn2 divides the rate
    once per minibatch, after the update)."""
    return max(lr0 / decay ** (step - 1), min_lr)


def momentum(step: int, ramp_steps: float, start: float = 0.5, final: float = 0.7) -> float:
    """Sec. 4.1: "momentum ... with initial value of .5 which was increased up to 0.7". The paper
    gives no pace; as pylearn2's MomentumAdjustor, per update: linear from `start` at update 1
    to `final` after `ramp_steps` updates, then constant."""
    if ramp_steps <= 0:
        return final
    return start + (final - start) * min(1.0, (step - 1) / ramp_steps)


def apply_sgd_schedule(opt, step: int, steps_per_epoch: float, optimizers) -> dict[str, float]:
    """Write update `step`'s learning rate and momentum (--lr --lr-decay --min-lr; --momentum
    --final-momentum over --momentum-epochs) into every parameter group of `optimizers`, before
    the update. Returns them for the logs.

    Written here rather than as a torch.optim.lr_scheduler: Sec. 4.1's rule moves the learning
    rate and the momentum together, every update, and torch's schedulers move the learning rate
    only. A function of the step alone, it needs no state of its own for a resumed run to
    continue it exactly."""
    lr = learning_rate(step, opt.lr, opt.lr_decay, opt.min_lr)
    momentum_value = momentum(step, opt.momentum_epochs * steps_per_epoch, opt.momentum, opt.final_momentum)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = lr
            group["momentum"] = momentum_value
    return {"lr": lr, "momentum": momentum_value}
