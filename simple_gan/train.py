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

from common import data as cdata
from common import device as cdev
from common import distributed
from common import metrics as cmetrics
from common import run as crun
from common.checkpoint import Checkpointer
from common.cli import add_common_args, default_out
from common.errors import run_main
from simple_gan.dataset import build_dataset
from simple_gan.model import Discriminator, Generator
from simple_gan.utils import sample_z

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
    g.add_argument("--channels", type=int, default=1,
                   help="channels for an image folder (default 1); embedded/torchvision data set it")
    add_common_args(p, model=MODEL_NAME, data="digits", log_every=100, sample_every=1000, save_every=2000)
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
    opt_d.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_d).backward()
    prec.scaler.step(opt_d)

    # ---- generator step ----------------------------------------------------
    d = distributed.unwrap(D)
    d.requires_grad_(False)  # gradients flow through D to G, not into D's weights
    with prec.autocast():
        loss_g = generator_loss(d(fake))
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_g).backward()
    prec.scaler.step(opt_g)
    prec.scaler.update()
    d.requires_grad_(True)
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
            "D(x)": torch.sigmoid(real_logits.detach().float()).mean(),
            "D(G(z))": torch.sigmoid(fake_logits.detach().float()).mean()}


@torch.no_grad()
def sample(G: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    return G(z).float()


def main(opt) -> Path:
    info = distributed.setup(opt.device)
    device = info.device
    crun.seed_everything(opt.seed + info.rank)
    prec = cdev.Precision(opt.precision, device)
    opt.out = default_out(opt, MODEL_NAME)

    dataset = build_dataset(opt)
    opt.channels = dataset.channels
    loader = cdata.make_loader(dataset, opt.batch_size, workers=opt.workers, seed=opt.seed, rank=info.rank,
                               world_size=info.world_size, pin_memory=device.type == "cuda")

    G = Generator(opt.z_dim, opt.g_hidden, opt.channels, opt.image_size).to(device)
    D = Discriminator(opt.d_hidden, opt.channels, opt.image_size).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=opt.lr)
    opt_d = torch.optim.Adam(D.parameters(), lr=opt.lr)

    options = crun.options_dict(opt)
    run = crun.Run(opt.out, options, info.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models={"G": G, "D": D},
                        optimizers={"G": opt_g, "D": opt_d}, scaler=prec.scaler, options=options,
                        arch_options=ARCH_OPTIONS, is_main=info.is_main)
    start_step, epoch = ckpt.resume(opt.resume)
    G_train = distributed.wrap(cdev.maybe_compile(G, opt.compile), info)
    D_train = distributed.wrap(cdev.maybe_compile(D, opt.compile), info)

    fixed_z = sample_z(64, opt.z_dim, generator=torch.Generator().manual_seed(opt.seed), device=device)
    total = opt.epochs * len(loader)
    total = min(total, opt.max_steps) if opt.max_steps is not None else total
    if info.is_main:
        print(f"simple GAN {opt.image_size}x{opt.image_size}x{opt.channels}: G {sum(p.numel() for p in G.parameters()):,}"
              f" / D {sum(p.numel() for p in D.parameters()):,} parameters; {prec}; {len(dataset)} images, "
              f"{len(loader)} steps/epoch, steps {start_step}->{total}")

    evaluator = eval_z = None
    if opt.eval_every > 0 and info.is_main:  # the real half and its features once; its own latents
        evaluator = cmetrics.Evaluator(dataset, opt.data, n=opt.eval_n, device=device)
        eval_z = sample_z(evaluator.n, opt.z_dim, generator=torch.Generator().manual_seed(opt.seed + 1))

    def evaluate(step: int, write) -> None:
        report = evaluator(cmetrics.generate(G, eval_z, device))
        cmetrics.log_to_run(run, step, report, MODEL_NAME)
        write(f"step {step}: {cmetrics.format_report(report)}")

    step = start_step
    budget = crun.TimeBudget(opt.max_minutes, info)
    with run.progress(total, start_step) as bar, crun.GracefulStop(enabled=not info.enabled) as stop:
        for step, epoch, (real, _) in cdata.iterate_steps(loader, start_step, total):
            real = real.to(device, non_blocking=True)
            z = sample_z(real.shape[0], opt.z_dim, device=device)
            losses = train_step(G_train, D_train, opt_g, opt_d, real, z, prec)
            stats = torch.stack(list(losses.values())).float()
            values = crun.check_finite(step, dict(zip(losses, distributed.all_reduce_mean(stats, info).tolist())),
                                       ckpt.last_path)
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
            if step % opt.log_every == 0:
                run.log_scalars(step, {f"train/{k}": v for k, v in values.items()})
            if step % opt.sample_every == 0:
                run.save_samples(step, sample(G, fixed_z))
            if step % opt.save_every == 0:
                ckpt.save(step, epoch)
            if evaluator is not None and step % opt.eval_every == 0:
                evaluate(step, bar.write)
            if stop.requested or budget.spent():
                break

    if step > start_step:
        if step % opt.save_every != 0:
            ckpt.save(step, epoch)
        if step % opt.sample_every != 0:
            run.save_samples(step, sample(G, fixed_z))
        if evaluator is not None and step % opt.eval_every != 0:
            evaluate(step, print)
        if info.is_main:
            print(f"samples: {run.sample_path(step)}\ncheckpoint: {ckpt.last_path}")
    elif info.is_main:
        print(f"nothing to do: the run is already at step {step} of {total}")
    run.close()
    distributed.cleanup()
    return Path(opt.out)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
