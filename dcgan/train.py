"""Train DCGAN (Radford, Metz, Chintala 2015, arXiv:1511.06434).

    cd dcgan && python train.py                      # embedded digits, paper settings
    python -m dcgan.train --data cifar10             # from the repository root
    torchrun --nproc_per_node 2 -m dcgan.train ...   # several processes / GPUs

The loop is Algorithm 1 of Goodfellow et al. 2014 with k = 1 (one D step, then
one G step per minibatch) and the non-saturating generator loss, with the
DCGAN paper's settings from Sec. 4: Adam lr 2e-4, beta1 0.5, batch 128.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: `cd dcgan && python train.py` works

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
from common.ema import EMA
from common.errors import run_main
from dcgan.dataset import build_dataset
from dcgan.model import Discriminator, Generator, init_weights
from dcgan.utils import sample_z

MODEL_NAME = "dcgan"
ARCH_OPTIONS = ("nz", "ngf", "ndf", "image_size", "channels")  # these decide tensor shapes


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="DCGAN (Radford et al. 2015). Defaults are the paper's (Sec. 4).")
    g = p.add_argument_group("DCGAN hyper-parameters (paper defaults)")
    g.add_argument("--epochs", type=int, default=25,
                   help="passes over the data (default 25, the authors' code; the paper shows LSUN after 1 and 5)")
    g.add_argument("--batch-size", type=int, default=128, help="minibatch size (default 128, Sec. 4)")
    g.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate for G and D (default 2e-4, Sec. 4)")
    g.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5, Sec. 4: 0.9 oscillated)")
    g.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (default 0.999, Adam's default)")
    g.add_argument("--nz", type=int, default=100, help="latent size (default 100, Fig. 1)")
    g.add_argument("--z-dist", default="uniform", choices=["uniform", "normal"],
                   help="latent prior (default uniform on [-1,1], Fig. 1; the PyTorch example uses normal)")
    g.add_argument("--ngf", type=int, default=128,
                   help="G width of the last hidden layer; 4x4 has ngf*8 (default 128 = Fig. 1's 1024 at 4x4; "
                        "the PyTorch example uses 64)")
    g.add_argument("--ndf", type=int, default=128,
                   help="D width of the first layer, doubling per block (default 128, mirrors G; example: 64)")
    g.add_argument("--image-size", type=int, default=64, help="output size, a power of two (default 64, Sec. 4)")
    g.add_argument("--channels", type=int, default=3,
                   help="image channels for an image folder (default 3); embedded and torchvision data set it")
    g.add_argument("--ema-decay", type=float, default=0.0,
                   help="EMA of G's weights for samples, e.g. 0.999 (default 0 = off; the paper uses none)")
    add_common_args(p, model=MODEL_NAME, data="digits")
    return p.parse_args(argv)


# ----------------------------------------------------------------- the losses
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D maximises log D(x) + log(1 - D(G(z))) (Goodfellow et al. 2014, eq. 1):
    minimise BCE(D(x), 1) + BCE(D(G(z)), 0), computed on logits."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss (Goodfellow et al. 2014, Sec. 3): maximise log D(G(z)),
    i.e. minimise BCE(D(G(z)), 1)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# --------------------------------------------------------------- one iteration
def train_step(G, D, opt_g, opt_d, real: torch.Tensor, z: torch.Tensor, prec: cdev.Precision) -> dict:
    """One D update then one G update on the same fakes; returns detached losses."""
    # ---- discriminator step ------------------------------------------------
    with prec.autocast():
        fake = G(z)  # G's forward runs once; its graph is reused in the G step
        real_logits = D(real)
        fake_logits = D(fake.detach())
        loss_d = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_d).backward()
    prec.scaler.step(opt_d)

    # ---- generator step ----------------------------------------------------
    d = distributed.unwrap(D)  # plain module: no DDP sync of D's (unused) gradients here
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
    """G(z) in eval mode (BatchNorm running statistics), fp32; leaves G in train mode."""
    was_training = G.training
    G.eval()
    images = G(z).float()
    G.train(was_training)
    return images


def total_steps(opt, steps_per_epoch: int) -> int:
    total = opt.epochs * steps_per_epoch
    return min(total, opt.max_steps) if opt.max_steps is not None else total


def main(opt) -> Path:
    info = distributed.setup(opt.device)
    device = info.device
    crun.seed_everything(opt.seed + info.rank)
    prec = cdev.Precision(opt.precision, device)
    channels_last = cdev.resolve_channels_last(opt.channels_last, device)
    opt.out = default_out(opt, MODEL_NAME)

    dataset = build_dataset(opt)
    opt.channels = dataset.channels
    loader = cdata.make_loader(dataset, opt.batch_size, workers=opt.workers, seed=opt.seed, rank=info.rank,
                               world_size=info.world_size, pin_memory=device.type == "cuda")

    G = Generator(opt.nz, opt.ngf, opt.channels, opt.image_size)
    D = Discriminator(opt.ndf, opt.channels, opt.image_size)
    G.apply(init_weights)
    D.apply(init_weights)
    G = cdev.prepare_model(G, device, channels_last)
    D = cdev.prepare_model(D, device, channels_last)
    opt_g = torch.optim.Adam(G.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2))
    ema = EMA(G, opt.ema_decay) if opt.ema_decay > 0 else None

    options = crun.options_dict(opt)
    run = crun.Run(opt.out, options, info.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models={"G": G, "D": D},
                        optimizers={"G": opt_g, "D": opt_d}, scaler=prec.scaler, ema=ema, options=options,
                        arch_options=ARCH_OPTIONS, is_main=info.is_main)
    start_step, epoch = ckpt.resume(opt.resume)
    G_train = distributed.wrap(cdev.maybe_compile(G, opt.compile), info)
    D_train = distributed.wrap(cdev.maybe_compile(D, opt.compile), info)

    # fixed latents for the sample grids: their own generator, so sampling never moves the RNG
    fixed_z = sample_z(64, opt.nz, opt.z_dist, generator=torch.Generator().manual_seed(opt.seed), device=device)
    sampler_G = ema.module if ema is not None else G
    total = total_steps(opt, len(loader))
    if info.is_main:
        print(f"DCGAN {opt.image_size}x{opt.image_size}x{opt.channels}: G {sum(p.numel() for p in G.parameters()):,} "
              f"/ D {sum(p.numel() for p in D.parameters()):,} parameters; {prec}, channels_last={channels_last}; "
              f"{len(dataset)} images, {len(loader)} steps/epoch, steps {start_step}->{total}")

    evaluator = eval_z = None
    if opt.eval_every > 0 and info.is_main:  # the real half and its features once; its own latents
        evaluator = cmetrics.Evaluator(dataset, opt.data, n=opt.eval_n, device=device)
        eval_z = sample_z(evaluator.n, opt.nz, opt.z_dist, generator=torch.Generator().manual_seed(opt.seed + 1))

    def evaluate(step: int, write) -> None:
        report = evaluator(cmetrics.generate(sampler_G, eval_z, device))
        cmetrics.log_to_run(run, step, report, MODEL_NAME)
        write(f"step {step}: {cmetrics.format_report(report)}")

    step = start_step
    budget = crun.TimeBudget(opt.max_minutes, info)
    with run.progress(total, start_step) as bar, crun.GracefulStop(enabled=not info.enabled) as stop:
        for step, epoch, (real, _) in cdata.iterate_steps(loader, start_step, total):
            real = cdev.to_input(real, device, channels_last)
            z = sample_z(real.shape[0], opt.nz, opt.z_dist, device=device)
            losses = train_step(G_train, D_train, opt_g, opt_d, real, z, prec)
            if ema is not None:
                ema.update(G)
            stats = torch.stack(list(losses.values())).float()
            values = crun.check_finite(step, dict(zip(losses, distributed.all_reduce_mean(stats, info).tolist())),
                                       ckpt.last_path)
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
            if step % opt.log_every == 0:
                run.log_scalars(step, {f"train/{k}": v for k, v in values.items()})
            if step % opt.sample_every == 0:
                run.save_samples(step, sample(sampler_G, fixed_z))
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
            run.save_samples(step, sample(sampler_G, fixed_z))
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
