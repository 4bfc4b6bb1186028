"""Train WGAN-GP (Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville 2017, arXiv:1704.00028).

    cd wgan_gp && python train.py                     # embedded digits, the paper's settings
    python -m wgan_gp.train --data cifar10            # from the repository root
    torchrun --nproc_per_node 2 -m wgan_gp.train ...  # several processes / GPUs

The loop is the paper's Algorithm 1, with its defaults lambda = 10, n_critic = 5,
Adam alpha = 1e-4, beta1 = 0, beta2 = 0.9, batch m = 64:

    while theta has not converged:                              one "step" here
        for t = 1, ..., n_critic:                               critic_step()
            real x, latent z, eps ~ U[0, 1] per example
            x_tilde = G(z);  x_hat = eps x + (1 - eps) x_tilde
            L = D(x_tilde) - D(x) + lambda (||grad_x_hat D(x_hat)||_2 - 1)^2
            w <- Adam(grad_w mean L, w, alpha, beta1, beta2)
        sample z                                                 generator_step()
        theta <- Adam(grad_theta mean -D(G(z)), theta, alpha, beta1, beta2)

A step is one generator iteration; each critic iteration reads a new real batch.
Under fp16, the penalty's input gradient is taken of a (GradScaler-)scaled fp32 mean
of the scores and unscaled before the norm (common.penalty), the recipe of PyTorch's
AMP examples for gradient penalties; fp16 needs CUDA, bf16 works on CPU and GPU.
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
from common.penalty import gradient_penalty
from .dataset import build_dataset
from .model import CHANNELS_LAST, CRITIC_NORMS, Critic, Generator, init_weights
from .utils import latents, sample_z

MODEL_NAME = "wgan_gp"
ARCH_OPTIONS = ("nz", "ngf", "ndf", "image_size", "channels", "critic_norm")  # these decide tensor shapes


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="WGAN-GP (Gulrajani et al. 2017). Defaults are Algorithm 1's.")
    g = p.add_argument_group("Algorithm 1 and Sec. 4 (the paper's defaults)")
    g.add_argument("--iters", type=positive_int, default=200_000,
                   help="generator iterations (default 200,000, the authors' code)")
    g.add_argument("--batch-size", type=positive_int, default=64, help="m, the batch size (default 64, Algorithm 1)")
    g.add_argument("--lr", type=positive_float, default=1e-4, help="Adam alpha for both networks (default 1e-4)")
    g.add_argument("--beta1", type=float, default=0.0, help="Adam beta1 (default 0, Algorithm 1)")
    g.add_argument("--beta2", type=float, default=0.9, help="Adam beta2 (default 0.9, Algorithm 1)")
    g.add_argument("--lambda-gp", type=float, default=10.0, help="penalty weight lambda (default 10, Algorithm 1)")
    g.add_argument("--n-critic", type=positive_int, default=5,
                   help="critic iterations per generator iteration (default 5, Algorithm 1)")
    g.add_argument("--critic-norm", default="layer", choices=CRITIC_NORMS,
                   help="normalisation in the critic's hidden layers (default layer, Sec. 4's recommendation; "
                        "never batch)")
    n = p.add_argument_group("the networks: the DCGAN-like G and critic of the authors' code")
    n.add_argument("--nz", type=positive_int, default=128, help="latent size (default 128, the authors' code)")
    n.add_argument("--z-dist", default="normal", choices=["normal", "uniform"],
                   help="latent prior (default N(0, I), the authors' code; uniform is U[-1, 1])")
    n.add_argument("--ngf", type=positive_int, default=64,
                   help="G width of the last hidden layer; 4x4 has ngf*8 at 64x64 (default 64)")
    n.add_argument("--ndf", type=positive_int, default=64,
                   help="critic width of the first layer, doubling per block (default 64)")
    n.add_argument("--image-size", type=int, default=64, help="output size, a power of two (default 64)")
    add_common_args(p, model=MODEL_NAME, data="digits", channels=3, log_every=10)
    return p.parse_args(argv)


# ----------------------------------------------------------------- the losses
def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor, penalty: torch.Tensor,
                lambda_gp: float) -> torch.Tensor:
    """Eq. 3 / Algorithm 1, line 7: mean [D(x_tilde) - D(x)] + lambda * mean (||grad D(x_hat)|| - 1)^2."""
    return -wasserstein_estimate(real_scores, fake_scores) + lambda_gp * penalty


def wasserstein_estimate(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """mean D(x) - mean D(x_tilde): the critic's estimate of W(P_r, P_g) (Sec. 5.4 plots its negative)."""
    return real_scores.float().mean() - fake_scores.float().mean()


def generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Algorithm 1, line 11: G descends mean -D(G(z))."""
    return -fake_scores.float().mean()


# ------------------------------------------------------- one iteration of each
def critic_step(G, C, opt_c, real: torch.Tensor, z: torch.Tensor, prec: cdev.Precision, lambda_gp: float) -> dict:
    """Lines 2-8 for one t: score real, fake and interpolates, one Adam step on eq. 3.

    Real and fake are scored in one call (2m images; the critic has no batch statistics, so
    that equals two calls), the interpolates in a call of their own: the penalty's input
    gradient, and its second backward, then run over m rows. Scored together with real and
    fake they ran over all 3m (zeros for 2m), which made a critic step 1.4-1.6x slower on the
    CPU (benchmarks/README.md). The fakes carry no graph to G."""
    with torch.no_grad(), prec.autocast():
        fake = distributed.unwrap_ddp(G)(z)  # no graph to G; still compiled
    with prec.autocast():
        real_scores, fake_scores = C(torch.cat([real, fake])).split(real.shape[0])
        # x_hat = eps x + (1 - eps) x~, eps ~ U[0, 1] per example (line 5); ||grad_x_hat D(x_hat)||, create_graph
        penalty = gradient_penalty(C, real, fake, scaler=prec.scaler)
        loss_c = critic_loss(real_scores, fake_scores, penalty, lambda_gp)
    opt_c.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_c).backward()
    prec.scaler.step(opt_c)
    prec.scaler.update()
    return {"loss_c": loss_c.detach(), "gp": penalty.detach(),
            "wasserstein_estimate": wasserstein_estimate(real_scores.detach(), fake_scores.detach())}


def generator_step(G, C, opt_g, z: torch.Tensor, prec: cdev.Precision) -> dict:
    """Lines 10-11: one Adam step of G against the current critic (no penalty term for G)."""
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
    opt_g = torch.optim.Adam(G.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2))
    opt_c = torch.optim.Adam(C.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2))

    options = crun.options_dict(opt)
    run = crun.Run(opt.out, options, session.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models={"G": G, "C": C},
                        optimizers={"G": opt_g, "C": opt_c}, scaler=session.prec.scaler, options=options,
                        arch_options=ARCH_OPTIONS, is_main=session.is_main)
    start_step, _ = ckpt.resume(opt.resume)
    G_train, C_train = session.for_training(G), session.for_training(C)  # --compile, DDP

    # fixed latents for the sample grids: their own generator, so sampling never moves the RNG
    fixed_z = sample_z(64, opt.nz, opt.z_dist, generator=torch.Generator().manual_seed(opt.seed), device=session.device)
    loop = TrainLoop(opt, session, run, ckpt, total=opt.iters, start_step=start_step,  # --iters generator iterations
                     sample=lambda: cmetrics.generate(G, fixed_z, session.device),
                     evaluate=evaluation(opt, session, dataset, G, latents))  # --eval-every
    if session.is_main:
        print(f"WGAN-GP {opt.image_size}x{opt.image_size}x{opt.channels}: G {n_params(G)} / critic {n_params(C)} "
              f"parameters ({opt.critic_norm} norm); {session.prec}, channels_last={session.channels_last}; "
              f"{len(dataset)} images, {len(loader)} batches/epoch, generator steps {start_step}->{loop.total}")

    # an endless stream of real batches that resumes where step `start_step` left it
    batches = cdata.iterate_steps(loader, start_step * opt.n_critic, 2**62)
    for step in loop.steps():
        # ---- critic: n_critic iterations (Algorithm 1, lines 2-9) --------
        for _ in range(opt.n_critic):
            _, epoch, (real, _) = next(batches)
            z = sample_z(real.shape[0], opt.nz, opt.z_dist, device=session.device)
            critic_stats = critic_step(G_train, C_train, opt_c, session.to_input(real), z, session.prec, opt.lambda_gp)
        z = sample_z(opt.batch_size, opt.nz, opt.z_dist, device=session.device)  # ---- generator (lines 10-11)
        loop.after_step(step, epoch, {**critic_stats, **generator_step(G_train, C_train, opt_g, z, session.prec)})
    return loop.finish()


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
