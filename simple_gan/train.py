"""Train the simple fully-connected GAN (Goodfellow et al. 2014, arXiv:1406.2661).

    cd simple_gan && python train.py                  # the paper's MNIST model, embedded digits
    cd simple_gan && python train.py --arch seed      # the reference repository's small MLP
    python -m simple_gan.train --data mnist           # from the repository root

Algorithm 1 of the paper with k = 1 (one D step, then one G step per minibatch) and the
non-saturating generator loss of Sec. 3, for either model:

  --arch paper  the authors' MNIST model (goodfeli/adversarial, mnist.yaml): G with two ReLU
                layers of 1200 and a sigmoid output from 100-d uniform noise, D with two
                maxout layers (240 x 5) and dropout; SGD, lr 0.1 divided by 1.000004 after
                every update (floor 1e-6), momentum 0.5 rising to 0.7 over 250 epochs, batch 100.
  --arch seed   the reference repository's MLPs: one LeakyReLU hidden layer each, Adam 3e-4,
                batch 32, z ~ N(0, I) of 64.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

import torch
import torch.nn.functional as F

from common import device as cdev
from common import distributed
from common import metrics as cmetrics
from common import run as crun
from common.checkpoint import Checkpointer
from common.cli import add_common_args, positive_float, positive_int, resolve_arch_defaults
from common.errors import run_main
from common.loop import TrainLoop, evaluation, n_params, setup
from .dataset import build_dataset
from .model import ARCHS, build_discriminator, build_generator, initialise
from .utils import Z_DISTS, apply_sgd_schedule, latents, mean_image01, sample_z

MODEL_NAME = "simple_gan"
ARCH_OPTIONS = ("arch", "z_dim", "g_hidden", "d_hidden", "maxout_pieces", "image_size", "channels")  # shapes

# Defaults that differ between the two models (a flag left unset takes these).
ARCH_DEFAULTS = {
    "paper": dict(epochs=250, batch_size=100, lr=0.1, z_dim=100, z_dist="uniform", g_hidden=1200, d_hidden=240,
                  dropout_d=0.5),
    "seed": dict(epochs=50, batch_size=32, lr=3e-4, z_dim=64, z_dist="normal", g_hidden=256, d_hidden=128,
                 dropout_d=0.0),
}


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Simple GAN (Goodfellow et al. 2014): --arch paper, the authors' MNIST "
                                            "model (default), or --arch seed, the reference repository's MLPs.")
    g = p.add_argument_group("hyper-parameters (defaults: paper = the authors' mnist.yaml, seed = the reference "
                             "repository's)")
    g.add_argument("--arch", default="paper", choices=ARCHS,
                   help="paper: ReLU/sigmoid G and maxout D with dropout, SGD + momentum (default); seed: one "
                        "LeakyReLU hidden layer each, Adam")
    g.add_argument("--epochs", type=positive_int, default=None,
                   help="passes over the data (default: paper 250, where mnist.yaml's momentum ramp ends (it sets "
                        "no end); seed 50)")
    g.add_argument("--batch-size", type=positive_int, default=None, help="minibatch size (default: paper 100, seed 32)")
    g.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate of G and D (default: paper 0.1, SGD; seed 3e-4, Adam)")
    g.add_argument("--z-dim", type=positive_int, default=None, help="latent size (default: paper 100, seed 64)")
    g.add_argument("--z-dist", default=None, choices=Z_DISTS,
                   help="latent prior (default: paper uniform = U[-sqrt 3, sqrt 3], mnist.yaml's noise: 'uniform'; "
                        "seed normal)")
    g.add_argument("--g-hidden", type=positive_int, default=None,
                   help="G hidden units per layer (default: paper 1200, two layers; seed 256, one layer)")
    g.add_argument("--d-hidden", type=positive_int, default=None,
                   help="D hidden units per layer (default: paper 240 maxout units, two layers; seed 128, one layer)")
    g.add_argument("--dropout-d", type=float, default=None,
                   help="dropout in D (default: paper 0.5 on its hidden layers, mnist.yaml; seed 0, the reference "
                        "repository's; 0.5 on the seed's input and hidden layer keeps it from collapsing, README)")
    g.add_argument("--image-size", type=positive_int, default=28, help="image side (default 28, MNIST's)")
    a = p.add_argument_group("--arch paper (the authors' mnist.yaml)")
    a.add_argument("--maxout-pieces", type=positive_int, default=5, help="pieces per maxout unit (default 5)")
    a.add_argument("--dropout-d-input", type=float, default=0.2,
                   help="dropout on D's input pixels (default 0.2: include probability 0.8)")
    a.add_argument("--lr-decay", type=positive_float, default=1.000004,
                   help="the learning rate is divided by this after every update (default 1.000004, ExponentialDecay)")
    a.add_argument("--min-lr", type=positive_float, default=1e-6, help="floor of the decaying rate (default 1e-6)")
    a.add_argument("--momentum", type=float, default=0.5, help="initial SGD momentum (default 0.5)")
    a.add_argument("--final-momentum", type=float, default=0.7, help="momentum at the end of the ramp (default 0.7)")
    a.add_argument("--momentum-epochs", type=float, default=250,
                   help="epochs over which momentum rises linearly (default 250, MomentumAdjustor saturate=250)")
    s = p.add_argument_group("--arch seed (the reference repository)")
    s.add_argument("--beta1", type=float, default=0.9, help="Adam beta1 (default 0.9, PyTorch's, as the seed)")
    s.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (default 0.999, PyTorch's)")
    add_common_args(p, model=MODEL_NAME, data="digits", channels=1, log_every=100, sample_every=1000, save_every=2000)
    return resolve_arch_defaults(p.parse_args(argv), ARCH_DEFAULTS)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D maximises log D(x) + log(1 - D(G(z))) (eq. 1): the mean of BCE(D(x), 1) and
    BCE(D(G(z)), 0) on logits (halved as in the seed, which only rescales D's gradient)."""
    return 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss (Sec. 3): maximise log D(G(z)) = minimise BCE(D(G(z)), 1)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def train_step(G, D, opt_g, opt_d, real: torch.Tensor, z: torch.Tensor, prec: cdev.Precision) -> dict:
    """One D update then one G update on the same fakes; returns detached losses."""
    # ---- discriminator step ------------------------------------------------
    with prec.autocast():
        fake = G(z)
        real_logits = D(real)
        fake_logits = D(fake.detach())
        loss_d = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_d).backward()
    prec.scaler.step(opt_d)  # the G step updates the scale

    # ---- generator step ----------------------------------------------------
    with distributed.frozen_outside_ddp(D) as d, prec.autocast():  # G's gradients pass through D, not into it
        loss_g = generator_loss(d(fake))
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_g).backward()
    prec.scaler.step(opt_g)
    prec.scaler.update()
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
            "D(x)": torch.sigmoid(real_logits.detach().float()).mean(),
            "D(G(z))": torch.sigmoid(fake_logits.detach().float()).mean()}


def build_optimizers(opt, G, D):
    """--arch paper: SGD with momentum, lr and momentum rewritten before every update
    (utils.apply_sgd_schedule); --arch seed: Adam."""
    if opt.arch == "paper":
        return (torch.optim.SGD(G.parameters(), lr=opt.lr, momentum=opt.momentum),
                torch.optim.SGD(D.parameters(), lr=opt.lr, momentum=opt.momentum))
    return (torch.optim.Adam(G.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2)),
            torch.optim.Adam(D.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2)))


def build_models(options: dict, dataset):
    """G and D as a run's options describe them, initialised: --arch paper as mnist.yaml (irange,
    and G's sigmoid bias from the data's pixel means; a resume overwrites both), --arch seed as
    PyTorch's defaults."""
    G, D = build_generator(options), build_discriminator(options)
    initialise(G, D, options["arch"])
    if options["arch"] == "paper":
        G.init_output_bias(mean_image01(dataset))
    return G, D


def main(opt) -> Path:
    session = setup(opt, MODEL_NAME)  # torchrun, seed, device, precision, run name

    dataset = build_dataset(opt)
    opt.channels = dataset.channels
    loader = session.loader(dataset, opt.batch_size)

    options = crun.options_dict(opt)
    G, D = build_models(options, dataset)
    G, D = G.to(session.device), D.to(session.device)  # MLPs: no channels_last
    opt_g, opt_d = build_optimizers(opt, G, D)

    run = crun.Run(opt.out, options, session.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models={"G": G, "D": D},
                        optimizers={"G": opt_g, "D": opt_d}, scaler=session.prec.scaler, options=options,
                        arch_options=ARCH_OPTIONS, is_main=session.is_main)
    start_step, _ = ckpt.resume(opt.resume)
    G_train, D_train = session.for_training(G), session.for_training(D)  # --compile, DDP

    fixed_z = sample_z(64, opt.z_dim, opt.z_dist, generator=torch.Generator().manual_seed(opt.seed),
                       device=session.device)
    steps_per_epoch = len(loader)  # read now: a loader resumed mid-epoch is shorter for its first epoch
    loop = TrainLoop(opt, session, run, ckpt, total=opt.epochs * steps_per_epoch, start_step=start_step,
                     sample=lambda: cmetrics.generate(G, fixed_z, session.device),
                     evaluate=evaluation(opt, session, dataset, G, latents))  # --eval-every
    if session.is_main:
        print(f"simple GAN --arch {opt.arch} {opt.image_size}x{opt.image_size}x{opt.channels}: G {n_params(G)} / "
              f"D {n_params(D)} parameters; {session.prec}; {len(dataset)} images, {steps_per_epoch} steps/epoch, "
              f"steps {start_step}->{loop.total}")

    for step, epoch, (real, _) in loop.over(loader):
        # --arch paper: this update's lr and momentum (mnist.yaml's schedule), a function of the step
        schedule = apply_sgd_schedule(opt, step, steps_per_epoch, (opt_g, opt_d)) if opt.arch == "paper" else {}
        real = real.to(session.device, non_blocking=True)
        z = sample_z(real.shape[0], opt.z_dim, opt.z_dist, device=session.device)
        losses = train_step(G_train, D_train, opt_g, opt_d, real, z, session.prec)  # Algorithm 1, k = 1
        loop.after_step(step, epoch, losses, log=schedule)
    return loop.finish()


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
