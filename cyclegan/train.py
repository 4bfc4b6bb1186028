"""Train CycleGAN (Zhu, Park, Isola, Efros 2017, arXiv:1703.10593).

    cd cyclegan && python train.py                         # embedded unpaired photos, paper settings
    python -m cyclegan.train --data datasets/horse2zebra   # a trainA/ trainB/ folder, 256x256
    python train.py --resume auto                          # continue exactly where it stopped

Two generators, G_AB: A -> B (the paper's G: X -> Y) and G_BA: B -> A (the paper's F), and two
discriminators, D_A on domain A (the paper's D_X) and D_B on domain B (D_Y). Each iteration
(the official code's order): one generator step that updates G_AB and G_BA together on
eq. 3 (least-squares adversarial terms, cycle consistency, identity), then one discriminator
step that updates D_A and D_B together, each on the current real images against fakes drawn
from a history of 50 generated ones (Sec. 4). Adam lr 2e-4, beta1 0.5, batch 1; the rate is
constant for 100 epochs, then decays linearly to 0 over 100 more (Sec. 4 / 7.1).
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR

from common import device as cdev
from common import distributed
from common import run as crun
from common.checkpoint import Checkpointer
from common.cli import add_common_args, non_negative_float, positive_int, set_help
from common.errors import run_main
from common.loop import TrainLoop, n_params, setup
from .dataset import build_dataset, sample_pairs
from .model import CHANNELS_LAST, build_discriminator, build_generator, default_blocks, init_weights
from .utils import MODEL_NAME, ImagePool, evaluation, grid_rows

ARCH_OPTIONS = ("ngf", "ndf", "n_blocks", "channels")  # decide tensor shapes; generate.py rebuilds from them
EMBEDDED_SIZE = 64  # --image-size for --data photos: a 2-core CPU trains it in minutes (README, Results)


CYCLEGAN_MEANING = {
    "--data": "photos (embedded unpaired photos with a hidden colour mapping, offline) | a folder with trainA/ "
              "and trainB/ (optionally testA/, testB/), the official layout (default: photos)",
    "--channels": "unused: both domains are RGB (grey and RGBA files are converted, with a note)",
    "--eval-every": "every N steps and at the end, L1/PSNR/SSIM of G_AB(a) against T(a) on the held-out crops "
                    "(a folder: the cycle error A -> B -> A) to TensorBoard and <out>/metrics.jsonl, with the "
                    "identity baseline and the cycle errors beside them in metrics.jsonl, as evaluate.py computes "
                    "them (default 0: off)",
    "--eval-n": "unused (the embedded evaluation set is fixed; evaluate.py --n sets a folder's)",
}


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="CycleGAN (Zhu et al. 2017). Defaults are the paper's (Sec. 4, 7).")
    g = p.add_argument_group("CycleGAN hyper-parameters (paper defaults)")
    g.add_argument("--epochs", type=positive_int, default=200,
                   help="passes over the data (default 200 = 100 at constant rate + 100 decaying, Sec. 4)")
    g.add_argument("--decay-epochs", type=int, default=100,
                   help="the last N epochs decay the rate linearly to 0 (default 100, Sec. 4)")
    g.add_argument("--batch-size", type=positive_int, default=1, help="images per step (default 1, Sec. 4)")
    g.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate of G and D (default 2e-4, Sec. 4)")
    g.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5, official code)")
    g.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (default 0.999, official code)")
    g.add_argument("--lambda-cycle", type=non_negative_float, default=10.0,
                   help="lambda, weight of the cycle-consistency loss (default 10, Sec. 4, eq. 3)")
    g.add_argument("--lambda-identity", type=non_negative_float, default=0.5,
                   help="identity-loss weight AS A FRACTION OF --lambda-cycle: the loss is lambda_identity * "
                        "lambda_cycle * ||G(y) - y||_1 (default 0.5, i.e. 0.5*lambda = 5, Sec. 5.2 and the "
                        "official code's --lambda_identity; 0 = off)")
    g.add_argument("--pool-size", type=int, default=50,
                   help="generated images per domain kept for the D updates (default 50, Sec. 4; 0 = off)")
    g.add_argument("--ngf", type=positive_int, default=64, help="filters of G's first layer (default 64, Sec. 7.2)")
    g.add_argument("--ndf", type=positive_int, default=64, help="filters of D's first layer (default 64, Sec. 7.2)")
    g.add_argument("--n-blocks", type=positive_int, default=None,
                   help="residual blocks in G (default 9 when --image-size >= 256, else 6, Sec. 7.2)")
    g.add_argument("--image-size", type=int, default=None,
                   help=f"training crop (default 256 for a folder, Sec. 7.1; {EMBEDDED_SIZE} for --data photos, "
                        f"so a CPU trains it: see README); a multiple of 4, at least 32")
    g.add_argument("--load-size", type=int, default=None,
                   help="images are resized to this before the random crop (default image-size * 286/256: "
                        "286 for 256, the official --load_size)")
    g.add_argument("--epoch-size", type=positive_int, default=200,
                   help="items per epoch of the embedded --data photos (default 200; a folder's epoch is "
                        "max(|trainA|, |trainB|), as the official code)")
    add_common_args(p, model=MODEL_NAME, data="photos", log_every=50, sample_every=500, save_every=1000)
    for flag, text in CYCLEGAN_MEANING.items():  # common flags whose meaning differs here
        set_help(p, flag, text)
    opt = p.parse_args(argv)
    resolve(opt, p)
    return opt


def resolve(opt, parser) -> None:
    """Fill the size-dependent defaults in, so options.json and the checkpoint hold numbers."""
    if opt.image_size is None:
        opt.image_size = EMBEDDED_SIZE if opt.data == "photos" else 256
    if opt.image_size < 32 or opt.image_size % 4:
        parser.error(f"--image-size must be a multiple of 4 and at least 32 (PatchGAN's map), got {opt.image_size}")
    if opt.load_size is None:
        opt.load_size = int(round(opt.image_size * 286 / 256))
    if opt.load_size < opt.image_size:
        parser.error(f"--load-size ({opt.load_size}) cannot be smaller than --image-size ({opt.image_size})")
    if opt.n_blocks is None:
        opt.n_blocks = default_blocks(opt.image_size)
    if not 0 <= opt.decay_epochs <= opt.epochs:
        parser.error(f"--decay-epochs must be between 0 and --epochs ({opt.epochs}), got {opt.decay_epochs}")
    opt.channels = 3  # both domains are RGB (grey files are converted)


# ----------------------------------------------------------------- the losses
def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Adversarial loss of eq. 1 for the generator, in the least-squares form of Sec. 4
    (Mao et al. 2017): minimise E_x[(D(G(x)) - 1)^2], over every patch score of D's map."""
    scores = fake_scores.float()
    return F.mse_loss(scores, torch.ones_like(scores))


def lsgan_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Adversarial loss of eq. 1 for a discriminator, least-squares form (Sec. 4): minimise
    E_y[(D(y) - 1)^2] + E_x[D(G(x))^2], divided by 2 "to slow down the rate at which D
    learns relative to G" (Sec. 7.1)."""
    real, fake = real_scores.float(), fake_scores.float()
    return 0.5 * (F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake)))


def cycle_loss(reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Cycle-consistency loss, one direction of eq. 2: E_x[||F(G(x)) - x||_1] (mean absolute error)."""
    return F.l1_loss(reconstructed.float(), real.float())


def identity_loss(same: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Identity mapping loss (Sec. 5.2, "photo generation from paintings", after Taigman et al.
    2017): E_y[||G(y) - y||_1], a generator fed an image of its target domain should leave it be."""
    return F.l1_loss(same.float(), real.float())


def full_objective(gan_ab, gan_ba, cycle_a, cycle_b, idt_a, idt_b, lambda_cycle: float,
                   lambda_identity: float) -> torch.Tensor:
    """Eq. 3, L_GAN(G, D_Y) + L_GAN(F, D_X) + lambda * L_cyc(G, F), as the generators minimise
    it, plus the identity loss of Sec. 5.2 weighted lambda_identity * lambda (0.5 * lambda by
    default; the official code's form)."""
    loss = gan_ab + gan_ba + lambda_cycle * (cycle_a + cycle_b)
    if lambda_identity > 0:
        loss = loss + lambda_identity * lambda_cycle * (idt_a + idt_b)
    return loss


# ------------------------------------------------------------ the learning rate
# pix2pix/train.py holds the same rule
def linear_decay(epoch: int, epochs: int, decay_epochs: int) -> float:
    """The learning rate's factor in (0-based) `epoch`: "We keep the same learning rate for the
    first 100 epochs and linearly decay the rate to zero over the next 100 epochs" (Sec. 4),
    by the official code's rule, with n_constant = epochs - decay_epochs,
        1 - max(0, e + 1 - n_constant) / (decay_epochs + 1):
    1 through epoch n_constant - 1, then steps of 1 / (decay_epochs + 1) down to
    1 / (decay_epochs + 1) in the last epoch."""
    return max(0.0, 1.0 - max(0, epoch + 1 - (epochs - decay_epochs)) / (decay_epochs + 1))


# --------------------------------------------------------------- one iteration
def train_step(G_AB, G_BA, D_A, D_B, opt_g, opt_d, real_a: torch.Tensor, real_b: torch.Tensor,
               prec: cdev.Precision, pool_a: ImagePool, pool_b: ImagePool, *,
               lambda_cycle: float = 10.0, lambda_identity: float = 0.5) -> dict:
    """One generator step (G_AB and G_BA, one optimizer), then one discriminator step (D_A and
    D_B, one optimizer) on fakes from the image pools; returns the detached losses.
    D_A judges domain A (real a vs G_BA(b)), D_B judges domain B (real b vs G_AB(a))."""
    zero = real_a.new_zeros(())
    # ---- generator step: G_AB and G_BA minimise eq. 3 (+ identity) -------------
    with distributed.frozen_outside_ddp(D_A) as d_a, distributed.frozen_outside_ddp(D_B) as d_b, prec.autocast():
        fake_b = G_AB(real_a)  # G(x)
        rec_a = G_BA(fake_b)  # F(G(x)), the forward cycle
        fake_a = G_BA(real_b)  # F(y)
        rec_b = G_AB(fake_a)  # G(F(y)), the backward cycle
        gan_ab = lsgan_generator_loss(d_b(fake_b))
        gan_ba = lsgan_generator_loss(d_a(fake_a))
        cycle_a, cycle_b = cycle_loss(rec_a, real_a), cycle_loss(rec_b, real_b)
        idt_a = idt_b = zero
        if lambda_identity > 0:
            idt_b = identity_loss(G_AB(real_b), real_b)  # G(y) ~ y
            idt_a = identity_loss(G_BA(real_a), real_a)  # F(x) ~ x
        loss_g = full_objective(gan_ab, gan_ba, cycle_a, cycle_b, idt_a, idt_b, lambda_cycle, lambda_identity)
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_g).backward()
    prec.scaler.step(opt_g)  # the D step updates the fp16 scale

    # ---- discriminator step: D_A and D_B on real images vs the history of fakes -----
    with prec.autocast():
        loss_d_a = lsgan_discriminator_loss(D_A(real_a), D_A(pool_a.query(fake_a)))
        loss_d_b = lsgan_discriminator_loss(D_B(real_b), D_B(pool_b.query(fake_b)))
        loss_d = loss_d_a + loss_d_b  # one optimizer over both: each D's gradient is its own loss's
    opt_d.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_d).backward()
    prec.scaler.step(opt_d)
    prec.scaler.update()
    return {"loss_g": loss_g.detach(), "G_AB": gan_ab.detach(), "G_BA": gan_ba.detach(),
            "cycle_A": cycle_a.detach(), "cycle_B": cycle_b.detach(), "idt_A": idt_a.detach(),
            "idt_B": idt_b.detach(), "D_A": loss_d_a.detach(), "D_B": loss_d_b.detach()}


def grid_examples(image_size: int) -> int:
    """Rows of a sample grid: 4 fixed examples, 1 from 256x256 up (as the official code shows one
    example each way). Each row costs four generator passes (fake and reconstruction, both
    ways): at 256x256 on a 2-core CPU one row takes a fifth of a training step, which a short
    run pays at its end."""
    return 4 if image_size < 256 else 1


def main(opt) -> Path:
    session = setup(opt, MODEL_NAME, CHANNELS_LAST)  # torchrun, seed, device, precision, channels_last, run name

    dataset = build_dataset(opt)
    loader = session.loader(dataset, opt.batch_size)

    options = crun.options_dict(opt)
    G_AB, G_BA = build_generator(options), build_generator(options)
    D_A, D_B = build_discriminator(options), build_discriminator(options)
    for net in (G_AB, G_BA, D_A, D_B):
        net.apply(init_weights)
    G_AB, G_BA, D_A, D_B = (session.place(m) for m in (G_AB, G_BA, D_A, D_B))
    betas = (opt.beta1, opt.beta2)
    opt_g = torch.optim.Adam([*G_AB.parameters(), *G_BA.parameters()], lr=opt.lr, betas=betas)
    opt_d = torch.optim.Adam([*D_A.parameters(), *D_B.parameters()], lr=opt.lr, betas=betas)
    decay = lambda epoch: linear_decay(epoch, opt.epochs, opt.decay_epochs)  # noqa: E731
    sched_g, sched_d = LambdaLR(opt_g, decay), LambdaLR(opt_d, decay)  # the loop brings them to each epoch
    pool_a, pool_b = ImagePool(opt.pool_size), ImagePool(opt.pool_size)

    run = crun.Run(opt.out, options, session.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME,
                        models={"G_AB": G_AB, "G_BA": G_BA, "D_A": D_A, "D_B": D_B},
                        optimizers={"G": opt_g, "D": opt_d}, scaler=session.prec.scaler, options=options,
                        arch_options=ARCH_OPTIONS, is_main=session.is_main,
                        states={"pool_A": pool_a, "pool_B": pool_b, "lr_G": sched_g, "lr_D": sched_d})
    start_step, _ = ckpt.resume(opt.resume)
    nets = [session.for_training(m) for m in (G_AB, G_BA, D_A, D_B)]  # --compile, DDP

    # fixed images for the grids and the evaluation (no RNG, so neither changes the run)
    grid_a, grid_b = (session.to_input(x) for x in sample_pairs(options, grid_examples(opt.image_size)))
    loop = TrainLoop(opt, session, run, ckpt, total=opt.epochs * len(loader), start_step=start_step,
                     sample=lambda: grid_rows(G_AB, G_BA, grid_a, grid_b), grid_columns=6,
                     evaluate=evaluation(opt, session, G_AB, G_BA),
                     lr_schedulers={"G": sched_g, "D": sched_d}, schedule_every="epoch")
    if session.is_main:
        print(f"CycleGAN {opt.image_size}x{opt.image_size}, {opt.n_blocks} residual blocks: G_AB/G_BA "
              f"{n_params(G_AB)} / D_A/D_B {n_params(D_A)} parameters each; {session.prec}, "
              f"channels_last={session.channels_last}; {len(dataset)} items/epoch, {len(loader)} steps/epoch, "
              f"steps {start_step}->{loop.total}")

    for step, epoch, (real_a, real_b) in loop.over(loader):
        losses = train_step(*nets, opt_g, opt_d, session.to_input(real_a), session.to_input(real_b),
                            session.prec, pool_a, pool_b, lambda_cycle=opt.lambda_cycle,
                            lambda_identity=opt.lambda_identity)
        loop.after_step(step, epoch, losses)
    return loop.finish()


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
