"""Train the simple fully-connected GAN (Goodfellow et al. 2014).

    cd simple_gan && python train.py              # embedded digits at 28x28
    python -m simple_gan.train --data mnist       # from the repository root

Algorithm 1 of the paper with k = 1 (one D step, then one G step per
minibatch) and the non-saturating generator loss of Sec. 3. Settings are the
seed's: Adam lr 3e-4, batch 32, 50 epochs, z of size 64.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: `cd simple_gan && python train.py` works

import argparse

import torch
import torch.nn.functional as F

from common import device as cdev
from common import distributed
from common import metrics as cmetrics
from common import run as crun
from common.checkpoint import Checkpointer
from common.cli import add_common_args
from common.errors import run_main
from common.loop import TrainLoop, evaluation, n_params, setup
from simple_gan.dataset import build_dataset
from simple_gan.model import Discriminator, Generator
from simple_gan.utils import latents, sample_z

MODEL_NAME = "simple_gan"
ARCH_OPTIONS = ("z_dim", "g_hidden", "d_hidden", "image_size", "channels")


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Simple GAN (Goodfellow et al. 2014) with the seed's settings.")
    g = p.add_argument_group("hyper-parameters (the seed's defaults)")
    g.add_argument("--epochs", type=int, default=50, help="passes over the data (default 50)")
    g.add_argument("--batch-size", type=int, default=32, help="minibatch size (default 32)")
    g.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate for G and D (default 3e-4)")
    g.add_argument("--z-dim", type=int, default=64, help="latent size (default 64)")
    g.add_argument("--g-hidden", type=int, default=256, help="G hidden units (default 256)")
    g.add_argument("--d-hidden", type=int, default=128, help="D hidden units (default 128)")
    g.add_argument("--image-size", type=int, default=28, help="image side (default 28, MNIST's)")
    add_common_args(p, model=MODEL_NAME, data="digits", channels=1, log_every=100, sample_every=1000, save_every=2000)
    return p.parse_args(argv)


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
    prec.minimize(loss_d, opt_d, update_scale=False)  # the G step updates the scale

    # ---- generator step ----------------------------------------------------
    with distributed.frozen(D) as d, prec.autocast():  # G's gradients pass through D, not into it
        loss_g = generator_loss(d(fake))
    prec.minimize(loss_g, opt_g)
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
            "D(x)": torch.sigmoid(real_logits.detach().float()).mean(),
            "D(G(z))": torch.sigmoid(fake_logits.detach().float()).mean()}


def main(opt) -> Path:
    session = setup(opt, MODEL_NAME)  # torchrun, seed, device, precision, run name

    dataset = build_dataset(opt)
    opt.channels = dataset.channels
    loader = session.loader(dataset, opt.batch_size)

    G = Generator(opt.z_dim, opt.g_hidden, opt.channels, opt.image_size).to(session.device)
    D = Discriminator(opt.d_hidden, opt.channels, opt.image_size).to(session.device)
    opt_g = torch.optim.Adam(G.parameters(), lr=opt.lr)
    opt_d = torch.optim.Adam(D.parameters(), lr=opt.lr)

    options = crun.options_dict(opt)
    run = crun.Run(opt.out, options, session.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models={"G": G, "D": D},
                        optimizers={"G": opt_g, "D": opt_d}, scaler=session.prec.scaler, options=options,
                        arch_options=ARCH_OPTIONS, is_main=session.is_main)
    start_step, _ = ckpt.resume(opt.resume)
    G_train, D_train = session.for_training(G), session.for_training(D)  # --compile, DDP

    fixed_z = sample_z(64, opt.z_dim, generator=torch.Generator().manual_seed(opt.seed), device=session.device)
    total = opt.epochs * len(loader)
    total = min(total, opt.max_steps) if opt.max_steps is not None else total
    if session.is_main:
        print(f"simple GAN {opt.image_size}x{opt.image_size}x{opt.channels}: G {n_params(G)} / D {n_params(D)} "
              f"parameters; {session.prec}; {len(dataset)} images, {len(loader)} steps/epoch, "
              f"steps {start_step}->{total}")


    loop = TrainLoop(opt, session, run, ckpt, total=total, start_step=start_step,
                     sample=lambda: cmetrics.generate(G, fixed_z, session.device),
                     evaluate=evaluation(opt, session, dataset, G, latents))  # --eval-every
    for step, epoch, (real, _) in loop.over(loader):
        real = real.to(session.device, non_blocking=True)
        z = sample_z(real.shape[0], opt.z_dim, device=session.device)
        losses = train_step(G_train, D_train, opt_g, opt_d, real, z, session.prec)  # Algorithm 1, k = 1
        loop.after_step(step, epoch, losses)
    return loop.finish()


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
