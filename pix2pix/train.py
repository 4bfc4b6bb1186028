"""Train pix2pix (Isola et al. 2017, arXiv:1611.07004): image-to-image translation with a
conditional GAN.

    cd pix2pix && python train.py                         # embedded colourisation, paper settings
    python train.py --data edges2photo                    # embedded edges -> photo
    python -m pix2pix.train --data datasets/facades --direction BtoA   # the official aligned layout

Each step (Sec. 3.3 / 6.2): G translates the input x; D takes one gradient step on the
cGAN loss of eq. (1), halved; G takes one on eq. (4): the non-saturating cGAN loss plus
lambda = 100 times the L1 distance to the target (eq. 3). Adam lr 2e-4, beta1 0.5,
batch 1, random jitter; constant learning rate, then linear decay to 0 over the second half.
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
from .dataset import CHANNELS, EMBEDDED, build_dataset
from .model import CHANNELS_LAST, NET_D, NET_G, build_discriminator, build_generator, init_weights, num_downs
from .utils import evaluation, sample_pairs, sample_rows

MODEL_NAME = "pix2pix"
ARCH_OPTIONS = ("netG", "netD", "ngf", "ndf", "image_size", "input_channels", "output_channels")  # decide tensor shapes (generate.py rebuilds G)


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="pix2pix (Isola et al. 2017). Defaults are the paper's (Sec. 3, 6).")
    g = p.add_argument_group("pix2pix hyper-parameters (paper defaults)")
    g.add_argument("--netG", default="unet", choices=NET_G,
                   help="unet (Sec. 3.2.1, default) or encoder-decoder (the same layers without skips: the ablation of Sec. 4.3)")
    g.add_argument("--netD", default="patch70", choices=list(NET_D),
                   help="receptive field of D (Table 3): pixel 1x1, patch16 16x16, patch70 70x70 (default), "
                        "image 286x286")
    g.add_argument("--ngf", type=positive_int, default=64, help="G's first-layer filters (default 64, Appendix 6.1.1)")
    g.add_argument("--ndf", type=positive_int, default=64, help="D's first-layer filters (default 64, Appendix 6.1.2)")
    g.add_argument("--lambda-l1", type=non_negative_float, default=100.0,
                   help="weight of the L1 term, lambda in eq. (4) (default 100, Sec. 4.2); 0 = cGAN only")
    g.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4, Sec. 3.3)")
    g.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5, Sec. 3.3)")
    g.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (default 0.999, Sec. 3.3)")
    g.add_argument("--batch-size", type=positive_int, default=1,
                   help="minibatch size (default 1, Sec. 6.2: batch 1 makes BatchNorm instance normalization)")
    g.add_argument("--epochs", type=positive_int, default=200,
                   help="passes over the data (default 200, the paper's facades/maps/cityscapes setting; "
                        "it uses 15 for edges2shoes)")
    g.add_argument("--decay-epochs", type=int, default=100,
                   help="the last N epochs decay the learning rate linearly to 0 (default 100: constant for the "
                        "first half, the official code's schedule)")
    g.add_argument("--image-size", type=positive_int, default=256,
                   help="crop size, a power of two >= 32; the U-Net has log2 of it downsamplings (default 256)")
    g.add_argument("--load-size", type=positive_int, default=286,
                   help="random jitter: images are resized to this before the random crop (default 286, Sec. 6.2)")
    g.add_argument("--no-flip", action="store_true", help="no random mirroring (default: mirror, Sec. 6.2)")
    g.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"],
                   help="AtoB: translate A into B (default); BtoA swaps the roles of the two images of a pair")
    g.add_argument("--epoch-length", type=positive_int, default=400,
                   help="pairs per epoch of the embedded tasks (default 400, the size of facades)")
    add_common_args(p, model=MODEL_NAME, data="colorize")
    set_help(p, "data", "colorize | edges2photo (embedded, offline: pairs made from the bundled photos) | a folder "
                        "of aligned A|B images (with train/, val/, test/ as the official datasets) | a folder "
                        "with A/ and B/ holding pairs under the same file names (default: colorize)")
    set_help(p, "eval_every", "every N steps, L1 / PSNR / SSIM of G's outputs against the targets of the held-out "
                              "pairs (or the test/val split), as evaluate.py measures them, to TensorBoard and "
                              "<out>/metrics.jsonl (default 0: off)")
    set_help(p, "eval_n", "pairs per evaluation (default 16)")
    p.set_defaults(log_every=100)
    opt = p.parse_args(argv)
    if not 0 <= opt.decay_epochs <= opt.epochs:
        p.error(f"--decay-epochs must be between 0 and --epochs ({opt.epochs})")
    if opt.load_size < opt.image_size:
        p.error(f"--load-size ({opt.load_size}) must be at least --image-size ({opt.image_size})")
    try:
        num_downs(opt.image_size)
    except ValueError as exc:
        p.error(f"--image-size: {exc}")
    if opt.data == "colorize" and opt.direction != "AtoB":
        p.error("--data colorize predicts colour from lightness (L -> ab); --direction BtoA does not apply")
    opt.input_channels, opt.output_channels = CHANNELS.get(opt.data, (3, 3))  # colorize: L in, ab out
    return opt


# ----------------------------------------------------------------- the losses
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D maximises log D(x, y) + log(1 - D(x, G(x, z))) (eq. 1), computed on the patch
    logits as BCE(D(x, y), 1) + BCE(D(x, G(x)), 0), each the mean over the patch map;
    halved "while optimizing D, to slow down the rate at which D learns" (Sec. 3.3)."""
    return 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_gan_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """G's cGAN term: maximise log D(x, G(x, z)) (Sec. 3.3, the non-saturating form of eq. 1)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def l1_loss(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_L1(G) = E ||y - G(x, z)||_1 (eq. 3), the mean absolute difference per pixel."""
    return (target.float() - fake.float()).abs().mean()


def pair(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """D's input: condition and image concatenated along channels (Sec. 3.1, D(x, y))."""
    return torch.cat([x, y], dim=1)


# ------------------------------------------------------------ the learning rate
# cyclegan/train.py holds the same rule (the CycleGAN paper states it, Sec. 4; the official code shares it)
def linear_decay(epoch: int, epochs: int, decay_epochs: int) -> float:
    """The learning rate's factor in (0-based) `epoch`, the official pix2pix/CycleGAN code's
    rule: constant for the first n_constant = epochs - decay_epochs epochs, then linear decay
    towards zero over the last decay_epochs,
        1 - max(0, e + 1 - n_constant) / (decay_epochs + 1):
    1 through epoch n_constant - 1, then steps of 1 / (decay_epochs + 1) down to
    1 / (decay_epochs + 1) in the last epoch. (The paper says only "200 epochs" with Adam.)"""
    return max(0.0, 1.0 - max(0, epoch + 1 - (epochs - decay_epochs)) / (decay_epochs + 1))


# --------------------------------------------------------------- one iteration
def train_step(G, D, opt_g, opt_d, x: torch.Tensor, y: torch.Tensor, prec: cdev.Precision,
               lambda_l1: float = 100.0) -> dict:
    """One D update, then one G update on the same G(x) (Sec. 3.3); returns detached losses.
    G's noise z is its dropout (Sec. 3.1), so G(x) takes no z."""
    # ---- discriminator step: eq. (1), halved -----------------------------------
    with prec.autocast():
        fake = G(x)  # runs once; its graph is reused in the G step
        real_logits = D(pair(x, y))  # real and fake pairs in separate calls, as the official code:
        fake_logits = D(pair(x, fake.detach()))  # BatchNorm sees one kind at a time
        loss_d = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_d).backward()
    prec.scaler.step(opt_d)  # the G step updates the scale

    # ---- generator step: eq. (4), G* = arg min_G max_D L_cGAN + lambda L_L1 -----
    with distributed.frozen_outside_ddp(D) as d, prec.autocast():
        loss_gan = generator_gan_loss(d(pair(x, fake)))
        loss_l1 = l1_loss(fake, y)
        loss_g = loss_gan + lambda_l1 * loss_l1
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_g).backward()
    prec.scaler.step(opt_g)
    prec.scaler.update()
    return {"loss_d": loss_d.detach(), "loss_g_gan": loss_gan.detach(), "loss_l1": loss_l1.detach(),
            "D(x,y)": torch.sigmoid(real_logits.detach().float()).mean(),
            "D(x,G(x))": torch.sigmoid(fake_logits.detach().float()).mean()}


def grid_examples(image_size: int) -> int:
    """Rows of a sample grid: 8 fixed pairs, 4 from 256x256 up. Each row is one generator pass,
    and at 256x256 on a 2-core CPU eight of them take as long as three training steps, which a
    short run pays at its end."""
    return 8 if image_size < 256 else 4


def main(opt) -> Path:
    session = setup(opt, MODEL_NAME, CHANNELS_LAST)  # torchrun, seed, device, precision, channels_last, run name

    dataset = build_dataset(opt)
    loader = session.loader(dataset, opt.batch_size)
    options = crun.options_dict(opt)
    G, D = build_generator(options), build_discriminator(options)
    G.apply(init_weights)
    D.apply(init_weights)
    G, D = session.place(G), session.place(D)
    opt_g = cdev.adam(G.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2))  # fused where available
    opt_d = cdev.adam(D.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2))
    decay = lambda epoch: linear_decay(epoch, opt.epochs, opt.decay_epochs)  # noqa: E731
    sched_g, sched_d = LambdaLR(opt_g, decay), LambdaLR(opt_d, decay)  # the loop brings them to each epoch

    run = crun.Run(opt.out, options, session.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models={"G": G, "D": D},
                        optimizers={"G": opt_g, "D": opt_d}, scaler=session.prec.scaler, options=options,
                        arch_options=ARCH_OPTIONS, is_main=session.is_main,
                        states={"lr_G": sched_g, "lr_D": sched_d})
    start_step, _ = ckpt.resume(opt.resume)
    G_train, D_train = session.for_training(G), session.for_training(D)  # --compile, DDP

    sample_x, sample_y = sample_pairs(opt, dataset, grid_examples(opt.image_size))
    loop = TrainLoop(opt, session, run, ckpt, total=opt.epochs * len(loader), start_step=start_step,
                     sample=lambda: sample_rows(G, opt, sample_x, sample_y, session.device), grid_columns=3,
                     evaluate=evaluation(opt, session, G),
                     lr_schedulers={"G": sched_g, "D": sched_d}, schedule_every="epoch")
    if session.is_main:
        data = opt.data if opt.data in EMBEDDED else getattr(dataset, "layout", opt.data)
        print(f"pix2pix {opt.netG} / {opt.netD} {opt.image_size}x{opt.image_size}: G {n_params(G)} / D {n_params(D)} "
              f"parameters; {session.prec}, channels_last={session.channels_last}; {len(dataset)} pairs ({data}, "
              f"{opt.direction}), {len(loader)} steps/epoch, steps {start_step}->{loop.total}")
        if getattr(dataset, "note", None):
            print(dataset.note)

    for step, epoch, (x, y) in loop.over(loader):
        losses = train_step(G_train, D_train, opt_g, opt_d, session.to_input(x), session.to_input(y),
                            session.prec, opt.lambda_l1)
        loop.after_step(step, epoch, losses)
    return loop.finish()


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
