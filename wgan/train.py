"""Train a Wasserstein GAN (Arjovsky, Chintala, Bottou 2017, arXiv:1701.07875).

    cd wgan && python train.py                        # embedded digits, the paper's settings
    python -m wgan.train --data cifar10               # from the repository root
    torchrun --nproc_per_node 2 -m wgan.train ...     # several processes / GPUs

The loop is the paper's Algorithm 1, with its defaults alpha = 5e-5 (RMSProp),
c = 0.01, m = 64, n_critic = 5:

    while theta has not converged:                            one "step" here
        for t = 0, ..., n_critic - 1:                         critic_step()
            sample a real batch and a prior batch
            g_w <- grad_w [mean f_w(x) - mean f_w(g_theta(z))]
            w <- w + alpha * RMSProp(w, g_w);  w <- clip(w, -c, c)
        sample a prior batch                                   generator_step()
        g_theta <- -grad_theta mean f_w(g_theta(z))
        theta <- theta - alpha * RMSProp(theta, g_theta)

A step is one generator iteration (the unit of the paper's figures); each critic
iteration reads a new real batch, so an epoch (a pass of the critic over the data)
takes about len(data) / (m * n_critic) steps.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

import torch

from common import data as cdata
from common import device as cdev
from common import distributed
from common import metrics as cmetrics
from common import run as crun
from common.checkpoint import Checkpointer
from common.cli import add_common_args, positive_float, positive_int
from common.errors import run_main
from common.loop import TrainLoop, evaluation, n_params, setup
from .dataset import build_dataset
from .model import CHANNELS_LAST, CRITIC_NORMS, Critic, Generator, clip_weights, init_weights
from .utils import batches_before, critic_iterations, generator_iterations_in, latents, sample_z

MODEL_NAME = "wgan"
ARCH_OPTIONS = ("nz", "ngf", "ndf", "image_size", "channels", "critic_norm")  # these decide tensor shapes


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="WGAN (Arjovsky et al. 2017). Defaults are Algorithm 1's and the "
                                            "authors' code's.")
    g = p.add_argument_group("Algorithm 1 (the paper's defaults)")
    g.add_argument("--epochs", type=positive_int, default=25,
                   help="passes of the critic over the data (default 25, the authors' code); "
                        "a step is one generator iteration")
    g.add_argument("--batch-size", type=positive_int, default=64, help="m, the batch size (default 64, Algorithm 1)")
    g.add_argument("--lr", type=positive_float, default=5e-5,
                   help="alpha, the RMSProp learning rate of both networks (default 5e-5, Algorithm 1)")
    g.add_argument("--clip", type=positive_float, default=0.01,
                   help="c, critic weights are clipped to [-c, c] (default 0.01, Algorithm 1)")
    g.add_argument("--n-critic", type=positive_int, default=5,
                   help="critic iterations per generator iteration (default 5, Algorithm 1)")
    g.add_argument("--extra-critic", action="store_true",
                   help="the authors' code: 100 critic iterations for the first 25 generator iterations and "
                        "every 500th (default off: not in the paper's Algorithm 1)")
    n = p.add_argument_group("the networks: DCGAN's generator and critic, sized as in the authors' code")
    n.add_argument("--critic-norm", default="batch", choices=CRITIC_NORMS,
                   help="normalisation in the critic's hidden layers (default batch: the DCGAN critic the paper "
                        "and its code use; see README)")
    n.add_argument("--nz", type=positive_int, default=100, help="latent size (default 100, the authors' code)")
    n.add_argument("--z-dist", default="normal", choices=["normal", "uniform"],
                   help="latent prior (default N(0, I), the authors' code; uniform is U[-1, 1])")
    n.add_argument("--ngf", type=positive_int, default=64,
                   help="G width of the last hidden layer; 4x4 has ngf*8 at 64x64 (default 64, the authors' code)")
    n.add_argument("--ndf", type=positive_int, default=64,
                   help="critic width of the first layer, doubling per block (default 64, the authors' code)")
    n.add_argument("--image-size", type=int, default=64, help="output size, a power of two (default 64, Sec. 4)")
    add_common_args(p, model=MODEL_NAME, data="digits", channels=3, log_every=1)
    return p.parse_args(argv)


# ----------------------------------------------------------------- the losses
def wasserstein_estimate(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """mean f_w(x) - mean f_w(g(z)): the critic's estimate of W(P_r, P_theta) up to the
    unknown Lipschitz constant K (eq. 3). Sec. 4.2: it tracks sample quality."""
    return real_scores.float().mean() - fake_scores.float().mean()


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic *maximises* the estimate (Algorithm 1, lines 5-6), so it minimises its negative."""
    return -wasserstein_estimate(real_scores, fake_scores)


def generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Algorithm 1, line 10: G descends -mean f_w(g_theta(z)) (the real term has no theta)."""
    return -fake_scores.float().mean()


# ------------------------------------------------------- one iteration of each
def critic_step(G, C, opt_c, real: torch.Tensor, z: torch.Tensor, prec: cdev.Precision, clip: float) -> dict:
    """Lines 3-7 for one t: an RMSProp step on the critic's loss, then weight clipping."""
    with torch.no_grad(), prec.autocast():
        fake = distributed.unwrap_ddp(G)(z)  # no graph: this step does not train G (still compiled)
    with prec.autocast():
        real_scores, fake_scores = C(real), C(fake)  # two batches, as in the authors' code
        loss_c = critic_loss(real_scores, fake_scores)
    opt_c.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_c).backward()
    prec.scaler.step(opt_c)
    prec.scaler.update()
    clip_weights(distributed.unwrap_all(C), clip)
    return {"loss_c": loss_c.detach(), "wasserstein_estimate": -loss_c.detach()}


def generator_step(G, C, opt_g, z: torch.Tensor, prec: cdev.Precision) -> dict:
    """Lines 9-10: one RMSProp step of G against the current critic."""
    with distributed.frozen_outside_ddp(C) as c, prec.autocast():  # G's gradients pass through the critic, not into it
        loss_g = generator_loss(c(G(z)))
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_g).backward()
    prec.scaler.step(opt_g)
    prec.scaler.update()
    return {"loss_g": loss_g.detach()}



def main(opt) -> Path:
    session = setup(opt, MODEL_NAME, CHANNELS_LAST)  # torchrun, seed, device, precision, channels_last, run name

    dataset = build_dataset(opt)
    opt.channels = dataset.channels
    loader = session.loader(dataset, opt.batch_size)

    G = Generator(opt.nz, opt.ngf, opt.channels, opt.image_size)
    C = Critic(opt.ndf, opt.channels, opt.image_size, opt.critic_norm)
    G, C = session.place(G.apply(init_weights)), session.place(C.apply(init_weights))  # DCGAN's init, Sec. 4
    opt_g = torch.optim.RMSprop(G.parameters(), lr=opt.lr)
    opt_c = torch.optim.RMSprop(C.parameters(), lr=opt.lr)

    options = crun.options_dict(opt)
    run = crun.Run(opt.out, options, session.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models={"G": G, "C": C},
                        optimizers={"G": opt_g, "C": opt_c}, scaler=session.prec.scaler, options=options,
                        arch_options=ARCH_OPTIONS, is_main=session.is_main)
    start_step, _ = ckpt.resume(opt.resume)
    G_train, C_train = session.for_training(G), session.for_training(C)  # --compile, DDP

    # fixed latents for the sample grids: their own generator, so sampling never moves the RNG
    fixed_z = sample_z(64, opt.nz, opt.z_dist, generator=torch.Generator().manual_seed(opt.seed), device=session.device)
    # --epochs passes of the critic over the data, counted in generator iterations
    total = generator_iterations_in(opt.epochs * len(loader), opt.n_critic, opt.extra_critic)
    loop = TrainLoop(opt, session, run, ckpt, total=total, start_step=start_step,
                     sample=lambda: cmetrics.generate(G, fixed_z, session.device),
                     evaluate=evaluation(opt, session, dataset, G, latents))  # --eval-every
    if session.is_main:
        print(f"WGAN {opt.image_size}x{opt.image_size}x{opt.channels}: G {n_params(G)} / critic {n_params(C)} "
              f"parameters ({opt.critic_norm} norm); {session.prec}, channels_last={session.channels_last}; "
              f"{len(dataset)} images, {len(loader)} batches/epoch, generator steps {start_step}->{loop.total}")

    # an endless stream of real batches that resumes where step `start_step` left it
    batches = cdata.iterate_steps(loader, batches_before(start_step, opt.n_critic, opt.extra_critic), 2**62)
    for step in loop.steps():
        # ---- critic: n_critic iterations (Algorithm 1, lines 2-8) --------
        for _ in range(critic_iterations(step, opt.n_critic, opt.extra_critic)):
            _, epoch, (real, _) = next(batches)
            z = sample_z(real.shape[0], opt.nz, opt.z_dist, device=session.device)
            critic_stats = critic_step(G_train, C_train, opt_c, session.to_input(real), z, session.prec, opt.clip)
        z = sample_z(opt.batch_size, opt.nz, opt.z_dist, device=session.device)  # ---- generator (lines 9-10)
        loop.after_step(step, epoch, {**critic_stats, **generator_step(G_train, C_train, opt_g, z, session.prec)})
    return loop.finish()


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
