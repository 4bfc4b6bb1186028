"""Train a LAPGAN (Denton, Chintala, Szlam, Fergus 2015, arXiv:1506.05751).

    python train.py                                  # 8 -> 16 -> 32 on the embedded photo crops, Sec. 4 settings
    python train.py --data cifar10                   # CIFAR-10 (downloads into data/)
    python train.py --data cifar10 --conditional     # the class-conditional variant (Sec. 4)
    python train.py --levels 1                       # a single-level GAN (the coarse network at full size)

Every level k has its own G_k, D_k and optimizers and trains on its own level of the real
images' pyramid (Sec. 3: the levels are trained independently): the coarsest pair on the
low-pass images I_K, each finer pair on the band-pass images h_k given l_k = u(I_{k+1}). One
step here is one D update and one G update at every level, on the same minibatch of images.
"""
import argparse
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import torch
import torch.nn.functional as F

from common import device as cdev
from common import distributed
from common import metrics as cmetrics
from common import run as crun
from common.checkpoint import Checkpointer
from common.cli import add_common_args, positive_float, positive_int
from common.errors import run_main
from common.loop import TrainLoop, evaluation, n_params, setup
from .dataset import build_dataset
from .model import CHANNELS_LAST, build_discriminator, build_generator, init_weights
from .utils import apply_sgd_schedule, check_pyramid, latents, training_pairs, uniform

MODEL_NAME = "lapgan"
# these decide tensor shapes; generate.py and evaluate.py rebuild the cascade from them
ARCH_OPTIONS = ("levels", "image_size", "channels", "nz", "coarse_hidden_g", "coarse_hidden_d", "ngf", "ndf",
                "num_classes")


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="LAPGAN (Denton et al. 2015). Defaults are the paper's CIFAR-10 "
                                            "settings (Sec. 4) and, where it is silent, the authors' code.")
    g = p.add_argument_group("LAPGAN hyper-parameters (paper defaults)")
    g.add_argument("--levels", type=positive_int, default=3,
                   help="pyramid levels, the coarsest a fully connected GAN, the others convolutional refiners "
                        "(default 3: 8 -> 16 -> 32, the authors' CIFAR-10 code; 1 = a single-level GAN)")
    g.add_argument("--image-size", type=int, default=32,
                   help="finest level's size, a power of two (default 32, CIFAR-10)")
    g.add_argument("--epochs", type=positive_int, default=100,
                   help="passes over the data (default 100; the paper keeps the best model by Parzen likelihood "
                        "and the authors' code loops forever)")
    g.add_argument("--batch-size", type=positive_int, default=64,
                   help="real images per step; D sees as many generated ones (default 64: the authors' code's "
                        "minibatch of 128 is half real, half generated)")
    g.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"],
                   help="sgd with Sec. 4's schedule (default), or adam (--lr, --beta1, --beta2; not the paper's)")
    g.add_argument("--lr", type=positive_float, default=0.02,
                   help="initial learning rate of every G_k and D_k (default 0.02, Sec. 4; try 2e-4 with adam)")
    g.add_argument("--lr-decay", type=positive_float, default=1.00004,
                   help="SGD: lr is divided by this after every epoch (default 1 + 4e-5, Sec. 4)")
    g.add_argument("--momentum", type=probability, default=0.5, help="SGD: initial momentum (default 0.5, Sec. 4)")
    g.add_argument("--momentum-step", type=float, default=0.0008,
                   help="SGD: momentum added after every epoch (default 0.0008, Sec. 4)")
    g.add_argument("--momentum-max", type=probability, default=0.8,
                   help="SGD: momentum cap (default 0.8, Sec. 4; the authors' code caps at 0.7)")
    g.add_argument("--beta1", type=float, default=0.5, help="adam only: beta1 (default 0.5)")
    g.add_argument("--beta2", type=float, default=0.999, help="adam only: beta2 (default 0.999)")
    g.add_argument("--nz", type=positive_int, default=100, help="z_K, the coarsest level's noise (default 100, Sec. 4)")
    g.add_argument("--coarse-hidden-g", type=positive_int, default=1200,
                   help="units in each of G_K's 2 hidden layers (default 1200, Sec. 4; the authors' plain-GAN "
                        "script defaults to 8000)")
    g.add_argument("--coarse-hidden-d", type=positive_int, default=600,
                   help="units in each of D_K's 2 hidden layers (default 600, Sec. 4; the authors' script: 1600)")
    g.add_argument("--ngf", type=positive_int, default=64,
                   help="feature maps in G_k's hidden layers, k < K (default 64, the authors' --hidden_G)")
    g.add_argument("--ndf", type=positive_int, default=64,
                   help="feature maps in D_k's layers, k < K (default 64, the authors' --hidden_D)")
    g.add_argument("--dropout", type=probability, default=0.5,
                   help="dropout in every D (default 0.5, torch7's nn.Dropout() in the authors' code)")
    g.add_argument("--conditional", action="store_true",
                   help="class-conditional LAPGAN (Sec. 4): the one-hot label is an extra input of every G_k "
                        "and D_k; needs labelled data (cifar10, digits, mnist, fashion-mnist)")
    add_common_args(p, model=MODEL_NAME, data="photos", channels=3)
    return p.parse_args(argv)


# ----------------------------------------------------------------- the losses
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D_k maximises eq. 2's E_{h,l}[log D_k(h_k, l_k)] + E_{z,l}[log(1 - D_k(G_k(z_k, l_k), l_k))]:
    minimise (BCE(D(real), 1) + BCE(D(fake), 0)) / 2, on logits. The 1/2 is the authors' code's
    one BCE over a minibatch that is half real and half generated; with SGD the scale is the step."""
    return 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """G_k's side of eq. 2 in its non-saturating form (Goodfellow et al. 2014, Sec. 3; the authors'
    code): maximise log D_k(G_k(z_k, l_k), l_k), i.e. minimise BCE(D(fake), 1)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# -------------------------------------------------------- one iteration, one level
def level_step(G, D, opt_g, opt_d, real: torch.Tensor, low: torch.Tensor | None, noise_d: torch.Tensor,
               noise_g: torch.Tensor, prec: cdev.Precision, labels: torch.Tensor | None = None,
               update_scale: bool = True) -> dict:
    """One D_k update, then one G_k update with fresh noise, at one level (Sec. 3, eq. 2).

    `real` is h_k (or I_K at the coarsest level, where `low` is None), `low` is l_k = u(I_{k+1}),
    `noise_*` is z_k: a 100-d vector at the coarsest level, one U[-1, 1] plane elsewhere."""
    # ---- discriminator step ------------------------------------------------
    with prec.autocast():
        fake = G(noise_d, low, labels)
        real_logits = D(real, low, labels)
        fake_logits = D(fake.detach(), low, labels)
        loss_d = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_d).backward()
    prec.scaler.step(opt_d)

    # ---- generator step ----------------------------------------------------
    with distributed.frozen_outside_ddp(D) as d, prec.autocast():  # G's gradients pass through D, not into it
        loss_g = generator_loss(d(G(noise_g, low, labels), low, labels))
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_g).backward()
    prec.scaler.step(opt_g)
    if update_scale:
        prec.scaler.update()
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
            "D(x)": torch.sigmoid(real_logits.detach().float()).mean(),
            "D(G(z))": torch.sigmoid(fake_logits.detach().float()).mean()}


def level_noise(opt, size: int, coarsest: bool, n: int, device) -> torch.Tensor:
    """z_k ~ U[-1, 1]: nz numbers at the coarsest level, one size x size plane at the others (Sec. 4)."""
    return uniform((n, opt.nz) if coarsest else (n, 1, size, size), device=device)


# ------------------------------------------------------ one iteration, every level
def train_step(G_levels, D_levels, opt_g, opt_d, images: torch.Tensor, labels: torch.Tensor | None, opt,
               prec: cdev.Precision) -> tuple[dict, dict]:
    """One step of the whole pyramid on one minibatch: level_step at every level k on its own
    pair of the images' pyramid (Sec. 3: the levels are trained independently), (h_k, l_k) at the
    refinement levels and I_K at the coarsest. Returns the losses by level ("loss_d_32", ...) and
    D's mean outputs on real and generated inputs by level ("D(x)_32", ...), for the logs."""
    losses, outputs = {}, {}
    for k, (real, low) in enumerate(training_pairs(images, opt.levels)):  # finest first
        size, coarsest = real.shape[-1], k == opt.levels - 1
        noise_d = level_noise(opt, size, coarsest, images.shape[0], images.device)
        noise_g = level_noise(opt, size, coarsest, images.shape[0], images.device)
        stats = level_step(G_levels[k], D_levels[k], opt_g[k], opt_d[k], real, low, noise_d, noise_g, prec, labels,
                           update_scale=coarsest)  # the GradScaler's update: once per step, after the last level
        losses.update({f"loss_d_{size}": stats["loss_d"], f"loss_g_{size}": stats["loss_g"]})
        outputs.update({f"D(x)_{size}": stats["D(x)"], f"D(G(z))_{size}": stats["D(G(z))"]})
    return losses, outputs


def make_optimizer(opt, params):
    if opt.optimizer == "adam":
        return torch.optim.Adam(params, lr=opt.lr, betas=(opt.beta1, opt.beta2))
    return torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum)


def main(opt) -> Path:
    sizes = check_pyramid(opt.image_size, opt.levels)  # one clear line for a bad --image-size / --levels
    session = setup(opt, MODEL_NAME, CHANNELS_LAST)  # torchrun, seed, device, precision, channels_last, run name

    dataset = build_dataset(opt)
    opt.channels = dataset.channels
    opt.num_classes = dataset.num_classes if opt.conditional else 0
    loader = session.loader(dataset, opt.batch_size)

    options = crun.options_dict(opt)
    G, D = build_generator(options), build_discriminator(options)  # G.levels[k] = G_k, level 0 the finest
    init_weights(G, D)
    G, D = session.place(G), session.place(D)
    names = [str(s) for s in sizes]  # levels are named by their size: "32", "16", "8"
    opt_g = [make_optimizer(opt, g.parameters()) for g in G.levels]
    opt_d = [make_optimizer(opt, d.parameters()) for d in D.levels]

    run = crun.Run(opt.out, options, session.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models={"G": G, "D": D},
                        optimizers={**{f"G{n}": o for n, o in zip(names, opt_g)},
                                    **{f"D{n}": o for n, o in zip(names, opt_d)}},
                        scaler=session.prec.scaler, options=options, arch_options=ARCH_OPTIONS,
                        is_main=session.is_main)
    start_step, _ = ckpt.resume(opt.resume)
    G_train = [session.for_training(g) for g in G.levels]  # --compile, DDP, per level
    D_train = [session.for_training(d) for d in D.levels]

    # fixed latents for the sample grids: their own generator, so sampling never moves the RNG
    fixed = latents(options, 64, torch.Generator().manual_seed(opt.seed))
    loop = TrainLoop(opt, session, run, ckpt, total=opt.epochs * len(loader), start_step=start_step,
                     sample=lambda: cmetrics.generate(G, fixed, session.device),
                     evaluate=evaluation(opt, session, dataset, G, latents))  # --eval-every: the whole cascade
    if session.is_main:
        per_level = ", ".join(f"{n}x{n}: G {n_params(g)} / D {n_params(d)}"
                              for n, g, d in zip(reversed(names), reversed(G.levels), reversed(D.levels)))
        print(f"LAPGAN {' -> '.join(reversed(names))} x{opt.channels}"
              f"{', class-conditional' if opt.num_classes else ''}: {per_level} parameters; {session.prec}, "
              f"channels_last={session.channels_last}; {len(dataset)} images, {len(loader)} steps/epoch, "
              f"steps {start_step}->{loop.total}")

    for step, epoch, (images, labels) in loop.over(loader):
        # Sec. 4 (--optimizer sgd): this epoch's lr (divided by 1 + 4e-5 per epoch) and momentum (+0.0008 per epoch)
        schedule = apply_sgd_schedule(opt, epoch, opt_g + opt_d) if opt.optimizer == "sgd" else {}
        images = session.to_input(images)
        labels = labels.to(session.device) if opt.num_classes else None
        losses, d_outputs = train_step(G_train, D_train, opt_g, opt_d, images, labels, opt, session.prec)
        loop.after_step(step, epoch, losses, log={**schedule, **d_outputs})  # log: --log-every steps only
    return loop.finish()


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
