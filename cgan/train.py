"""Train a conditional GAN (Mirza, Osindero 2014, arXiv:1411.1784).

    cd cgan && python train.py                         # the seed's conv cGAN (WGAN-GP), embedded digits
    cd cgan && python train.py --arch mlp              # the paper's MNIST model (Sec. 4.1)
    python -m cgan.train --data mnist                  # from the repository root
    torchrun --nproc_per_node 2 -m cgan.train ...      # several processes / GPUs

Both networks see the label: min_G max_D V = E[log D(x|y)] + E[log(1 - D(G(z|y)|y))]
(Sec. 3.2, eq. 2). One "step" is one generator iteration; before it the critic /
discriminator takes n_critic iterations, each on a new real batch (x, y) and fakes
G(z | y) drawn for the same labels y:

  --arch conv  WGAN-GP (Gulrajani et al. 2017, Algorithm 1): n_critic 5, lambda 10,
               Adam lr 1e-4, betas (0, 0.9), batch 64 (the seed's settings).
  --arch mlp   the GAN objective with the non-saturating G loss (Goodfellow et al. 2014),
               k = 1, SGD with momentum, batch 100, lr 0.1 decayed by 1.00004 per
               update down to 1e-6, momentum 0.5 rising to 0.7 (Sec. 4.1).

The generator step conditions on the labels of the last real batch, so G is trained
on the data's own label frequencies; its noise is drawn afresh.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

import torch
import torch.nn.functional as F

from common import data as cdata
from common import device as cdev
from common import distributed
from common import run as crun
from common.checkpoint import Checkpointer
from common.cli import add_common_args, positive_float, positive_int, resolve_arch_defaults
from common.errors import run_main
from common.loop import TrainLoop, n_params, setup
from common.penalty import gradient_penalty
from .dataset import build_dataset
from .model import CHANNELS_LAST, ARCHS, build_models
from .utils import Z_DISTS, apply_sgd_schedule, class_grid_labels, class_grid_z, evaluation, generate, sample_z

MODEL_NAME = "cgan"
ARCH_OPTIONS = ("arch", "nz", "embed_size", "ngf", "ndf", "image_size", "channels", "num_classes")
GRID_COLUMNS = 10  # samples per class in the sample grids (one row per class)

# Defaults that differ between the two architectures (a flag left unset takes these).
ARCH_DEFAULTS = {
    "conv": dict(epochs=5, batch_size=64, lr=1e-4, n_critic=5, image_size=64, z_dist="normal"),
    "mlp": dict(epochs=250, batch_size=100, lr=0.1, n_critic=1, image_size=28, z_dist="hypercube"),
}


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Conditional GAN (Mirza & Osindero 2014). --arch conv: the seed's "
                                            "WGAN-GP cGAN; --arch mlp: the paper's MNIST model (Sec. 4.1).")
    g = p.add_argument_group("cGAN hyper-parameters (defaults: conv = the seed's, mlp = the paper's Sec. 4.1)")
    g.add_argument("--arch", default="conv", choices=ARCHS,
                   help="conv: DCGAN-style G and critic with embedded labels, WGAN-GP (default, the seed's); "
                        "mlp: the paper's ReLU G and maxout D with one-hot labels, GAN loss, SGD (Sec. 4.1)")
    g.add_argument("--epochs", type=positive_int, default=None,
                   help="passes of the critic/discriminator over the data (default: conv 5, the seed's; "
                        "mlp 250, where the momentum ramp ends; the paper stops on a validation estimate)")
    g.add_argument("--batch-size", type=positive_int, default=None,
                   help="minibatch size (default: conv 64, the seed's; mlp 100, Sec. 4.1)")
    g.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate of G and D (default: conv 1e-4 Adam, the seed's / WGAN-GP's; "
                        "mlp 0.1 SGD, the initial value of Sec. 4.1)")
    g.add_argument("--n-critic", type=positive_int, default=None,
                   help="critic/discriminator iterations per generator iteration (default: conv 5, WGAN-GP "
                        "Algorithm 1; mlp 1, the k = 1 of Goodfellow et al.)")
    g.add_argument("--nz", type=positive_int, default=100, help="latent size (default 100, Sec. 4.1 and the seed)")
    g.add_argument("--z-dist", default=None, choices=Z_DISTS,
                   help="latent prior (default: conv normal, the seed's; mlp hypercube = U[0, 1]^nz, Sec. 4.1)")
    g.add_argument("--image-size", type=positive_int, default=None,
                   help="image size (default: conv 64, the seed's, any power of two >= 8, e.g. 32; "
                        "mlp 28, MNIST's 784 pixels)")
    c = p.add_argument_group("--arch conv (the seed's WGAN-GP cGAN)")
    c.add_argument("--embed-size", type=positive_int, default=100,
                   help="size of G's label embedding, joined to z (default 100, the seed's)")
    c.add_argument("--ngf", type=positive_int, default=16,
                   help="G width: 4x4 has ngf * image_size / 4 maps, the last hidden layer 2 * ngf (default 16, "
                        "the seed's features_g)")
    c.add_argument("--ndf", type=positive_int, default=16,
                   help="critic width of the first layer, doubling per block (default 16, the seed's features_d)")
    c.add_argument("--lambda-gp", type=float, default=10.0,
                   help="gradient-penalty weight lambda (default 10, WGAN-GP Algorithm 1)")
    c.add_argument("--beta1", type=float, default=0.0, help="Adam beta1 (default 0, WGAN-GP Algorithm 1)")
    c.add_argument("--beta2", type=float, default=0.9, help="Adam beta2 (default 0.9, WGAN-GP Algorithm 1)")
    m = p.add_argument_group("--arch mlp (the paper's MNIST model, Sec. 4.1)")
    m.add_argument("--lr-decay", type=positive_float, default=1.00004,
                   help="the learning rate is divided by this after every update (default 1.00004, Sec. 4.1)")
    m.add_argument("--min-lr", type=positive_float, default=1e-6,
                   help="floor of the decaying learning rate (default 1e-6, Sec. 4.1)")
    m.add_argument("--momentum", type=float, default=0.5, help="initial SGD momentum (default 0.5, Sec. 4.1)")
    m.add_argument("--final-momentum", type=float, default=0.7,
                   help="momentum reached at the end of the ramp (default 0.7, Sec. 4.1)")
    m.add_argument("--momentum-epochs", type=float, default=250,
                   help="epochs over which the momentum rises linearly (default 250: the paper gives no pace; "
                        "pylearn2's MomentumAdjustor saturate=250 in the GAN code the paper builds on)")
    m.add_argument("--dropout-g", type=float, default=0.5,
                   help="dropout probability in G's hidden layers, kept on when sampling (default 0.5, Sec. 4.1: "
                        "\"applied to both the generator and discriminator\"; README)")
    m.add_argument("--dropout-d", type=float, default=0.5,
                   help="dropout probability on D's image input and hidden layers (default 0.5, Sec. 4.1)")
    add_common_args(p, model=MODEL_NAME, data="digits", channels=3, log_every=10)
    return resolve_arch_defaults(p.parse_args(argv), ARCH_DEFAULTS)


# ----------------------------------------------------------------- the losses
def wasserstein_estimate(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[C(x|y)] - E[C(G(z|y)|y)]: the critic's estimate of the Wasserstein distance (WGAN-GP eq. 2)."""
    return real_scores.float().mean() - fake_scores.float().mean()


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor, gp: torch.Tensor,
                lambda_gp: float) -> torch.Tensor:
    """WGAN-GP Algorithm 1, line 7, with the label inside the critic:
    L = E[C(G(z|y)|y)] - E[C(x|y)] + lambda * GP = -wasserstein_estimate + lambda * GP."""
    return -wasserstein_estimate(real_scores, fake_scores) + lambda_gp * gp


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN-GP Algorithm 1, line 11: G minimises -E[C(G(z|y)|y)]."""
    return -fake_scores.float().mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D maximises log D(x|y) + log(1 - D(G(z|y)|y)) (Sec. 3.2, eq. 2):
    minimise BCE(D(x|y), 1) + BCE(D(G(z|y)|y), 0), on logits."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss (Goodfellow et al. 2014, Sec. 3): maximise log D(G(z|y)|y),
    i.e. minimise BCE(D(G(z|y)|y), 1)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# ------------------------------------------------------- one iteration of each
def make_fakes(G, z: torch.Tensor, labels: torch.Tensor, prec: cdev.Precision) -> torch.Tensor:
    """G(z | y) without a graph: the critic/discriminator step does not train G."""
    with torch.no_grad(), prec.autocast():
        return distributed.unwrap_ddp(G)(z, labels)  # still compiled


def critic_step(G, C, opt_c, real: torch.Tensor, labels: torch.Tensor, z: torch.Tensor,
                prec: cdev.Precision, lambda_gp: float) -> dict:
    """WGAN-GP Algorithm 1, lines 3-9, for one critic iteration (--arch conv)."""
    fake = make_fakes(G, z, labels, prec)
    with prec.autocast():
        real_scores, fake_scores = C(real, labels), C(fake, labels)
        # the penalty's interpolates x_hat keep the real/fake pair's shared label y
        gp = gradient_penalty(C, real, fake, scaler=prec.scaler, labels=labels)
        loss_c = critic_loss(real_scores, fake_scores, gp, lambda_gp)
    opt_c.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_c).backward()
    prec.scaler.step(opt_c)
    prec.scaler.update()
    return {"loss_c": loss_c.detach(), "gp": gp.detach(),
            "wasserstein_estimate": wasserstein_estimate(real_scores.detach(), fake_scores.detach())}


def discriminator_step(G, D, opt_d, real: torch.Tensor, labels: torch.Tensor, z: torch.Tensor,
                       prec: cdev.Precision) -> dict:
    """Goodfellow et al. Algorithm 1, the inner loop, with y fed to both nets (--arch mlp)."""
    fake = make_fakes(G, z, labels, prec)
    with prec.autocast():
        real_logits, fake_logits = D(real, labels), D(fake, labels)
        loss_d = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_d).backward()
    prec.scaler.step(opt_d)
    prec.scaler.update()
    return {"loss_d": loss_d.detach(), "D(x)": torch.sigmoid(real_logits.detach().float()).mean(),
            "D(G(z))": torch.sigmoid(fake_logits.detach().float()).mean()}


def generator_step(G, D, opt_g, z: torch.Tensor, labels: torch.Tensor, prec: cdev.Precision, loss_fn) -> dict:
    """One update of G against the current D / critic (`loss_fn`: wgan_generator_loss or generator_loss)."""
    with distributed.frozen_outside_ddp(D) as d, prec.autocast():  # G's gradients pass through D, not into it
        loss_g = loss_fn(d(G(z, labels), labels))
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_g).backward()
    prec.scaler.step(opt_g)
    prec.scaler.update()
    return {"loss_g": loss_g.detach()}


def build_optimizers(opt, G, D):
    if opt.arch == "conv":
        return (torch.optim.Adam(G.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2)),
                torch.optim.Adam(D.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2)))
    # lr and momentum are rewritten before every update by utils.apply_sgd_schedule (Sec. 4.1)
    return (torch.optim.SGD(G.parameters(), lr=opt.lr, momentum=opt.momentum),
            torch.optim.SGD(D.parameters(), lr=opt.lr, momentum=opt.momentum))


def main(opt) -> Path:
    session = setup(opt, MODEL_NAME, CHANNELS_LAST)  # torchrun, seed, device, precision, channels_last, run name
    session.channels_last = session.channels_last and opt.arch == "conv"  # NHWC helps convolutions only

    dataset = build_dataset(opt)
    opt.channels, opt.num_classes = dataset.channels, dataset.num_classes
    loader = session.loader(dataset, opt.batch_size)

    G, D = build_models(vars(opt))
    G, D = session.place(G), session.place(D)
    opt_g, opt_d = build_optimizers(opt, G, D)

    options = crun.options_dict(opt)
    run = crun.Run(opt.out, options, session.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models={"G": G, "D": D},
                        optimizers={"G": opt_g, "D": opt_d}, scaler=session.prec.scaler, options=options,
                        arch_options=ARCH_OPTIONS, is_main=session.is_main)
    start_step, _ = ckpt.resume(opt.resume)
    G_train, D_train = session.for_training(G), session.for_training(D)  # --compile, DDP

    # the sample grid: one row per class, one fixed z per column, from their own generator
    fixed_labels = class_grid_labels(opt.num_classes, GRID_COLUMNS)
    fixed_z = class_grid_z(opt.num_classes, GRID_COLUMNS, opt.nz, opt.z_dist, torch.Generator().manual_seed(opt.seed))
    steps_per_epoch = len(loader) / opt.n_critic  # generator iterations per pass of the critic over the data
    loop = TrainLoop(opt, session, run, ckpt, total=opt.epochs * len(loader) // opt.n_critic, start_step=start_step,
                     sample=lambda: generate(G, fixed_z, fixed_labels, session.device, seed=opt.seed),
                     evaluate=evaluation(opt, session, dataset, G),  # --eval-every, with class accuracy
                     grid_columns=GRID_COLUMNS)
    if session.is_main:
        what = "WGAN-GP, Adam" if opt.arch == "conv" else "GAN loss, SGD + momentum"
        print(f"cGAN --arch {opt.arch} ({what}) {opt.image_size}x{opt.image_size}x{opt.channels}, "
              f"{opt.num_classes} classes: G {n_params(G)} / D {n_params(D)} parameters; {session.prec}, "
              f"channels_last={session.channels_last}; {len(dataset)} images, {len(loader)} batches/epoch, "
              f"n_critic {opt.n_critic}, generator steps {start_step}->{loop.total}; sample grids: row k = class k")

    g_loss = wgan_generator_loss if opt.arch == "conv" else generator_loss
    # an endless stream of real (x, y) batches; step s has read exactly s * n_critic of them
    batches = cdata.iterate_steps(loader, start_step * opt.n_critic, 2**62)
    for step in loop.steps():
        # --arch mlp: this update's lr and momentum (Sec. 4.1), a function of the step alone
        schedule = apply_sgd_schedule(opt, step, steps_per_epoch, (opt_g, opt_d)) if opt.arch == "mlp" else {}
        # ---- critic / discriminator: n_critic iterations, each on a new real batch ----
        for _ in range(opt.n_critic):
            _, epoch, (real, labels) = next(batches)
            real, labels = session.to_input(real), labels.to(session.device, non_blocking=True)
            z = sample_z(real.shape[0], opt.nz, opt.z_dist, device=session.device)
            if opt.arch == "conv":  # the WGAN-GP critic
                d_stats = critic_step(G_train, D_train, opt_d, real, labels, z, session.prec, opt.lambda_gp)
            else:  # the GAN discriminator
                d_stats = discriminator_step(G_train, D_train, opt_d, real, labels, z, session.prec)
        # ---- generator: one iteration, fresh z, the last real batch's labels ----
        z = sample_z(labels.shape[0], opt.nz, opt.z_dist, device=session.device)
        g_stats = generator_step(G_train, D_train, opt_g, z, labels, session.prec, g_loss)
        loop.after_step(step, epoch, {**d_stats, **g_stats}, log=schedule)
    return loop.finish()


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
