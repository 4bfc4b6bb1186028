"""Train ProGAN (Karras, Aila, Laine, Lehtinen 2018, arXiv:1710.10196).

    cd progan && python train.py --phase-images 20000         # embedded photo crops, 4x4 -> 64x64
    python -m progan.train --data /path/to/celeba-hq           # the paper's run: 4x4 -> 1024x1024
    python train.py --resume auto                              # continue, mid-fade included

Progressive growing (Sec. 3): training starts at 4x4; each doubling fades the new blocks in
while alpha rises linearly from 0 to 1 over --phase-images real images, then stabilises for as
many; --max-resolution says where growing stops. Each step is one D update then one G update
(n_critic = 1, Appendix A.1) with WGAN-GP and the drift term:

    L_D = E[D(G(z))] - E[D(x)] + lambda E[(||grad D(x_hat)|| - 1)^2] + eps_drift E[D(x)^2]
    L_G = -E[D(G(z))]

Adam lr 1e-3, beta1 0, beta2 0.99, eps 1e-8; minibatch 16 up to 128x128, then 14, 6, 3
(Appendix A.1); samples and evaluation use an exponential moving average of G (decay 0.999).
Adam's moments restart at each phase, as the official code does (reset_opt_for_new_lod).
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

import torch

from common import device as cdev
from common import distributed
from common import run as crun
from common.checkpoint import Checkpointer
from common.cli import add_common_args, non_negative_float, positive_float, positive_int
from common.ema import EMA
from common.errors import UserError, run_main
from common.loop import TrainLoop, n_params, setup
from common import metrics as cmetrics
from common.metrics import generate
from common.penalty import gradient_penalty
from .dataset import AtStage, ImageStream, build_dataset, default_resolution, for_measuring
from .model import CHANNELS_LAST, Discriminator, Generator, resolutions_up_to
from .utils import growth_schedule, latents, paper_batch_size, reals_at_stage, sample_z, stage_at, total_steps

MODEL_NAME = "progan"
ARCH_OPTIONS = ("max_resolution", "nz", "fmap_base", "fmap_max", "channels", "mbstd_group")
GRID_SAMPLES = 16


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="ProGAN (Karras et al. 2018). Defaults are the paper's (Appendix A.1).")
    g = p.add_argument_group("progressive growing (Sec. 3, Appendix A.1)")
    g.add_argument("--max-resolution", type=int, default=None,
                   help="where growing stops, a power of two (default: 1024 for an image folder, the paper's "
                        "CelebA-HQ; 64 for the embedded photos; 32 for digits, MNIST and CIFAR-10)")
    g.add_argument("--start-resolution", type=int, default=4,
                   help="where growing starts (default 4, Sec. 3); equal to --max-resolution it trains the final "
                        "network from the start without growing, Table 1's baseline")
    g.add_argument("--phase-images", type=positive_int, default=800_000,
                   help="real images shown per fade-in and per stabilising phase (default 800,000, Appendix A.1)")
    g.add_argument("--final-images", type=positive_int, default=None,
                   help="real images of the last stabilising phase (default: --phase-images)")
    g.add_argument("--batch-size", type=positive_int, default=None,
                   help="minibatch at every resolution (default: the paper's 16 up to 128x128, then 14 at 256, "
                        "6 at 512, 3 at 1024)")
    g.add_argument("--lr", type=positive_float, default=1e-3, help="Adam alpha, both networks (default 0.001)")
    g.add_argument("--beta1", type=float, default=0.0, help="Adam beta1 (default 0)")
    g.add_argument("--beta2", type=float, default=0.99, help="Adam beta2 (default 0.99)")
    g.add_argument("--adam-eps", type=positive_float, default=1e-8, help="Adam epsilon (default 1e-8)")
    g.add_argument("--lambda-gp", type=non_negative_float, default=10.0,
                   help="WGAN-GP penalty weight lambda (default 10)")
    g.add_argument("--drift", type=non_negative_float, default=1e-3,
                   help="eps_drift, weight of E[D(x)^2] in D's loss (default 0.001)")
    g.add_argument("--ema-decay", type=float, default=0.999,
                   help="decay of G's moving average used for samples and evaluation (default 0.999)")
    n = p.add_argument_group("the networks (Table 2)")
    n.add_argument("--nz", type=positive_int, default=512, help="latent size (default 512)")
    n.add_argument("--fmap-base", type=positive_int, default=8192,
                   help="widths are min(fmap_base * 2 / resolution, fmap_max): 8192 gives Table 2's 512 up to "
                        "32x32, then 256 ... 16 (default 8192)")
    n.add_argument("--fmap-max", type=positive_int, default=512, help="the widest layer (default 512)")
    n.add_argument("--mbstd-group", type=positive_int, default=4,
                   help="group size of the minibatch standard deviation layer (default 4)")
    add_common_args(p, model=MODEL_NAME, data="photos", channels=3, log_every=50, sample_every=500, save_every=1000)
    opt = p.parse_args(argv)
    if opt.max_resolution is None:
        opt.max_resolution = default_resolution(opt.data)
    try:
        resolutions_up_to(opt.max_resolution)
    except ValueError:
        p.error(f"--max-resolution must be a power of two of at least 4 (4, 8, ..., 1024), not {opt.max_resolution}")
    if opt.start_resolution not in resolutions_up_to(opt.max_resolution):
        p.error(f"--start-resolution must be a power of two from 4 to --max-resolution ({opt.max_resolution}), "
                f"not {opt.start_resolution}")
    if not 0.0 <= opt.ema_decay < 1.0:
        p.error(f"--ema-decay must be in [0, 1), not {opt.ema_decay}")
    return opt


# ----------------------------------------------------------------- the losses
def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor, penalty: torch.Tensor,
                       lambda_gp: float, drift: float) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017, eq. 3) plus the drift term of Sec. A.1:
    E[D(G(z))] - E[D(x)] + lambda * GP + eps_drift * E[D(x)^2], which keeps D's output near 0."""
    real, fake = real_scores.float(), fake_scores.float()
    return fake.mean() - real.mean() + lambda_gp * penalty + drift * real.square().mean()


def generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """G descends -E[D(G(z))] (WGAN)."""
    return -fake_scores.float().mean()


# ------------------------------------------------------- one iteration of each
def discriminator_step(G, D, opt_d, real: torch.Tensor, z: torch.Tensor, prec: cdev.Precision,
                       lambda_gp: float, drift: float) -> dict:
    """One Adam step of D. Real and fake images are scored in separate calls: the minibatch
    stddev layer must see a batch of one kind only (the official code does the same)."""
    with torch.no_grad(), prec.autocast():
        fake = distributed.unwrap_ddp(G)(z)
    with prec.autocast():
        real_scores, fake_scores = D(real), D(fake)
        penalty = gradient_penalty(D, real, fake, scaler=prec.scaler)
        loss_d = discriminator_loss(real_scores, fake_scores, penalty, lambda_gp, drift)
    opt_d.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_d).backward()
    prec.scaler.step(opt_d)
    prec.scaler.update()
    return {"loss_d": loss_d.detach(), "gp": penalty.detach(),
            "wasserstein_estimate": (real_scores.float().mean() - fake_scores.float().mean()).detach()}


def generator_step(G, D, opt_g, z: torch.Tensor, prec: cdev.Precision) -> dict:
    """One Adam step of G against the current D."""
    with distributed.frozen_outside_ddp(D) as d, prec.autocast():
        loss_g = generator_loss(d(G(z)))
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_g).backward()
    prec.scaler.step(opt_g)
    prec.scaler.update()
    return {"loss_g": loss_g.detach()}


def set_stage(resolution: int, alpha: float, *models) -> None:
    """Grow every network (G, D, the EMA copy) to the same stage."""
    for model in models:
        distributed.unwrap_all(model).set_stage(resolution, alpha)


def restart_adam(*optimizers) -> None:
    """Reset Adam's moments: the official code does it whenever new layers come in or
    finish fading in (train.py: reset_opt_for_new_lod)."""
    for optimizer in optimizers:
        optimizer.state.clear()


def stage_evaluation(opt, session, dataset, ema: EMA):
    """--eval-every's measurement (evaluate.py's, on rank 0): the EMA generator's samples against
    the real images averaged down to its current resolution (one reference per resolution, built
    when first reached; below 16x16 both enlarged to it, progan.dataset.for_measuring), with
    latents of their own so that evaluating never moves the run's random stream."""
    if opt.eval_every <= 0 or not session.is_main:
        return None
    evaluators = {}

    def evaluate() -> dict:
        G = ema.module
        if G.resolution not in evaluators:
            evaluators[G.resolution] = cmetrics.Evaluator(AtStage(dataset, G.resolution, 1.0), opt.data,
                                                          n=opt.eval_n, device=session.device)
        evaluator = evaluators[G.resolution]
        z = latents(vars(opt), evaluator.n, torch.Generator().manual_seed(opt.seed + 1))
        images = for_measuring(generate(G, z, session.device))
        return {**evaluator(images), "resolution": G.resolution, "alpha": G.alpha}

    return evaluate


def main(opt) -> Path:
    session = setup(opt, MODEL_NAME, CHANNELS_LAST)

    dataset = build_dataset(opt)
    opt.channels = dataset.channels
    stream = ImageStream(dataset, opt.seed)
    batch_size = (lambda r: opt.batch_size) if opt.batch_size else paper_batch_size
    phases = growth_schedule(opt.max_resolution, opt.phase_images, final_images=opt.final_images,
                             batch_size=batch_size, start_resolution=opt.start_resolution)
    if opt.batch_size is None and session.info.world_size > 1:
        raise UserError("under torchrun give --batch-size (per process): the paper's minibatches are totals")

    G = session.place(Generator(opt.max_resolution, opt.nz, opt.channels, opt.fmap_base, opt.fmap_max))
    D = session.place(Discriminator(opt.max_resolution, opt.channels, opt.fmap_base, opt.fmap_max, opt.mbstd_group))
    opt_g = torch.optim.Adam(G.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2), eps=opt.adam_eps)
    opt_d = torch.optim.Adam(D.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2), eps=opt.adam_eps)
    ema = EMA(G, opt.ema_decay)

    options = crun.options_dict(opt)
    run = crun.Run(opt.out, options, session.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models={"G": G, "D": D},
                        optimizers={"G": opt_g, "D": opt_d}, scaler=session.prec.scaler, ema=ema, options=options,
                        arch_options=ARCH_OPTIONS, is_main=session.is_main)
    start_step, _ = ckpt.resume(opt.resume)
    G_train, D_train = session.for_training(G), session.for_training(D)

    fixed_z = sample_z(GRID_SAMPLES, opt.nz, generator=torch.Generator().manual_seed(opt.seed), device=session.device)
    loop = TrainLoop(opt, session, run, ckpt, total=total_steps(phases), start_step=start_step,
                     sample=lambda: generate(ema.module, fixed_z, session.device), grid_columns=4,
                     evaluate=stage_evaluation(opt, session, dataset, ema))  # --eval-every
    if session.is_main:
        start, top = opt.start_resolution, opt.max_resolution
        print(f"ProGAN {start}x{start} -> {top}x{top}x{opt.channels}: G {n_params(G)} / D "
              f"{n_params(D)} parameters; {len(phases)} phases of {opt.phase_images:,} images; {session.prec}, "
              f"channels_last={session.channels_last}; {len(dataset)} images; steps {start_step}->{loop.total}")

    world, rank = session.info.world_size, session.info.rank
    for step in loop.steps():
        stage = stage_at(phases, step)
        phase = stage.phase
        set_stage(phase.resolution, stage.alpha, G, D, ema.module)
        if stage.new_phase and step > 1:
            restart_adam(opt_g, opt_d)
        position = world * stage.images_seen + rank * phase.batch_size  # this rank's slice of the stream
        real = reals_at_stage(session.to_input(stream.batch(position, phase.batch_size)), phase.resolution,
                              stage.alpha)
        z = sample_z(phase.batch_size, opt.nz, device=session.device)
        d_stats = discriminator_step(G_train, D_train, opt_d, real, z, session.prec, opt.lambda_gp, opt.drift)
        z = sample_z(phase.batch_size, opt.nz, device=session.device)
        g_stats = generator_step(G_train, D_train, opt_g, z, session.prec)
        ema.update(G)
        loop.after_step(step, 0, {**d_stats, **g_stats},
                        log={"resolution": phase.resolution, "alpha": stage.alpha,
                             "kimg": (stage.images_seen + phase.batch_size) / 1000})
        if step == phase.last_step and session.is_main:  # a grid per resolution reached
            run.save_samples(step, generate(ema.module, fixed_z, session.device), nrow=4,
                             tag=f"{phase.resolution}x{phase.resolution}{'-fade' if phase.fade else ''}")
    return loop.finish()


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
