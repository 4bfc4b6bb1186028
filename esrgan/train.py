"""Train ESRGAN (Wang et al. 2018, arXiv:1809.00219) in the paper's two stages (Sec. 4.1).

    cd esrgan && python train.py --stage psnr                       # RRDBNet, L1: the PSNR-oriented model
    python train.py --stage gan --init runs/esrgan-photos-psnr/checkpoints/last.pt --vgg-weights vgg19-dcbb9e9d.pth
    python -m esrgan.train --data /path/to/DIV2K_train_HR --lr-dir /path/to/DIV2K_train_LR_bicubic/X4

Stage psnr: the generator minimises the L1 pixel loss; Adam lr 2e-4, halved every 2x10^5 updates.
Stage gan: G starts from the psnr stage and minimises L_G = L_percep + lambda L_G^Ra + eta L1
(eq. 3; lambda = 5e-3, eta = 1e-2) with the perceptual loss on VGG19 conv5_4 features *before*
the activation (Sec. 3.3) and the relativistic average GAN loss (Sec. 3.2); the discriminator
minimises L_D^Ra. Adam lr 1e-4 for both, halved at 50k, 100k, 200k and 300k updates; batch 16
of 128x128 HR crops; LR and HR in [0, 1].
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import MultiStepLR

from common import device as cdev
from common import distributed
from common import run as crun
from common.checkpoint import Checkpointer
from common.cli import add_common_args, positive_int, set_help
from common.errors import run_main
from common.loop import TrainLoop, n_params, setup
from common.vgg import vgg19_features
from .dataset import build_dataset
from .model import CHANNELS_LAST, D_INPUT_SIZE, build_discriminator, build_generator
from .utils import MODEL_NAME, held_out_evaluator, held_out_sampler, load_init

ARCH_OPTIONS = ("nf", "nb", "gc", "scale")
STAGE_ITERS = {"psnr": 1_000_000, "gan": 400_000}  # the official training options of the two stages
STAGE_LR = {"psnr": 2e-4, "gan": 1e-4}  # Sec. 4.1
PSNR_HALVING_EVERY = 200_000  # Sec. 4.1: "decayed by a factor of 2 every 2 x 10^5 mini-batch updates"
GAN_MILESTONES = (50_000, 100_000, 200_000, 300_000)  # Sec. 4.1: lr halved at these iterations
LR_HALVING = 0.5  # Sec. 4.1: the learning rate is halved at each milestone
PERCEPTUAL_LAYER = "conv5_4"  # Sec. 3.3: VGG19's fourth convolution before the fifth max-pool, before its activation
WITHOUT_VGG = "--stage psnr and --percep-weight 0 need no VGG"  # what runs without the weights


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="ESRGAN (Wang et al. 2018). Defaults are the paper's (Sec. 4.1).")
    g = p.add_argument_group("ESRGAN hyper-parameters (paper defaults)")
    g.add_argument("--stage", default="psnr", choices=["psnr", "gan"],
                   help="psnr: RRDBNet with the L1 loss (default); gan: ESRGAN, G initialised with --init")
    g.add_argument("--init", default=None, metavar="PATH",
                   help="--stage gan: a --stage psnr checkpoint (or the released RRDB_PSNR_x4.pth) to start from")
    g.add_argument("--iters", type=positive_int, default=None,
                   help="updates (default: 10^6 for psnr, 4x10^5 for gan, the official training options)")
    g.add_argument("--batch-size", type=positive_int, default=16, help="minibatch (default 16, Sec. 4.1)")
    g.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate (default 2e-4 for psnr, 1e-4 for gan, Sec. 4.1), halved on schedule")
    g.add_argument("--beta1", type=float, default=0.9, help="Adam beta1 (default 0.9, Sec. 4.1)")
    g.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (default 0.999, Sec. 4.1)")
    g.add_argument("--scale", type=int, default=4, choices=[2, 4, 8], help="upscaling factor (default 4)")
    g.add_argument("--hr-size", type=positive_int, default=128, help="HR crop side (default 128, Sec. 4.1)")
    g.add_argument("--nf", type=positive_int, default=64, help="trunk features (default 64)")
    g.add_argument("--nb", type=positive_int, default=23, help="RRDBs (default 23, Sec. 4.1)")
    g.add_argument("--gc", type=positive_int, default=32, help="dense-block growth channels (default 32)")
    g.add_argument("--ndf", type=positive_int, default=64, help="discriminator's first width (default 64)")
    g.add_argument("--percep-weight", type=float, default=1.0,
                   help="weight of L_percep (default 1; 0 drops it, and the need for VGG weights: an ablation)")
    g.add_argument("--adv-weight", type=float, default=5e-3, help="lambda, weight of L_G^Ra (default 5e-3, Sec. 4.1)")
    g.add_argument("--l1-weight", type=float, default=1e-2, help="eta, weight of the L1 loss (default 1e-2, Sec. 4.1)")
    g.add_argument("--vgg-weights", default=None, metavar="PATH",
                   help="torchvision's vgg19-dcbb9e9d.pth (default: torchvision's cache; the gan stage stops with "
                        "a clear line if neither exists)")
    g.add_argument("--lr-dir", default=None, metavar="PATH",
                   help="given LR images paired by name with the HR images of --data (e.g. DIV2K's "
                        "LR_bicubic/X4); default: LR made from each HR crop by bicubic downsampling")
    g.add_argument("--epoch-length", type=positive_int, default=800,
                   help="crops per epoch of the embedded photos (default 800)")
    add_common_args(p, model=MODEL_NAME, data="photos")
    set_help(p, "--data", "photos (embedded: crops of the bundled photos minus the held-out ones, offline) | a folder "
                          "of HR images, e.g. DIV2K_train_HR (default: photos)")
    set_help(p, "--eval-every", "every N steps, PSNR / SSIM (Y channel, scale border) on the whole held-out photos "
                                "beside bicubic, to TensorBoard and <out>/metrics.jsonl, as evaluate.py computes "
                                "them (default 0: off)")
    set_help(p, "--eval-n", "unused (the held-out photos are measured whole)")
    opt = p.parse_args(argv)
    opt.iters = opt.iters or STAGE_ITERS[opt.stage]
    opt.lr = opt.lr or STAGE_LR[opt.stage]
    if opt.stage == "gan" and not opt.init and not opt.resume:
        p.error("--stage gan starts from the PSNR-oriented model: give --init PATH (a --stage psnr checkpoint "
                "or RRDB_PSNR_x4.pth), or --resume")
    if opt.stage == "gan" and opt.hr_size != D_INPUT_SIZE:
        p.error(f"--stage gan: the VGG-style discriminator is sized for {D_INPUT_SIZE}x{D_INPUT_SIZE} HR crops "
                f"(Sec. 4.1); use --hr-size {D_INPUT_SIZE}")
    return opt


def milestones(opt) -> list[int]:
    """The steps after which the learning rate halves (Sec. 4.1)."""
    if opt.stage == "gan":
        return list(GAN_MILESTONES)
    return list(range(PSNR_HALVING_EVERY, opt.iters, PSNR_HALVING_EVERY))


# ----------------------------------------------------------------- the losses
def l1_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """L1 = E ||G(x_i) - y||_1 (Sec. 3.3), the mean absolute pixel difference."""
    return F.l1_loss(sr.float(), hr.float())


def perceptual_loss(vgg, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """L_percep (Sec. 3.3): the L1 distance of VGG19 conv5_4 feature maps before the activation,
    which are denser than after it and keep brightness consistent."""
    with torch.no_grad():
        target = vgg(hr)
    return F.l1_loss(vgg(sr).float(), target.float())


def relativistic(logits_a: torch.Tensor, logits_b: torch.Tensor, a_is_real: bool) -> torch.Tensor:
    """-log D_Ra(a, b) or -log(1 - D_Ra(a, b)), D_Ra(a, b) = sigmoid(C(a) - E_b[C(b)]) (Sec. 3.2):
    the BCE of the relativistic average logit against 1 (a_is_real) or 0, averaged over a."""
    relative = logits_a.float() - logits_b.float().mean()
    target = torch.ones_like(relative) if a_is_real else torch.zeros_like(relative)
    return F.binary_cross_entropy_with_logits(relative, target)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_D^Ra = -E_xr[log D_Ra(x_r, x_f)] - E_xf[log(1 - D_Ra(x_f, x_r))] (Sec. 3.2), halved as
    in the official code, whose training gave the weights that lambda = 5e-3 was tuned for."""
    return (relativistic(real_logits, fake_logits, True) + relativistic(fake_logits, real_logits, False)) / 2


def generator_adversarial_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_G^Ra = -E_xr[log(1 - D_Ra(x_r, x_f))] - E_xf[log D_Ra(x_f, x_r)] (Sec. 3.2), halved like
    L_D^Ra: the symmetric form, so G gains from the real images' logits too."""
    return (relativistic(real_logits, fake_logits, False) + relativistic(fake_logits, real_logits, True)) / 2


# --------------------------------------------------------------- one iteration
def psnr_step(G, opt_g, lr: torch.Tensor, hr: torch.Tensor, prec: cdev.Precision) -> dict:
    """The PSNR-oriented model (Sec. 4.1): one update of G on the L1 loss."""
    with prec.autocast():
        loss = l1_loss(G(lr), hr)
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss).backward()
    prec.scaler.step(opt_g)
    prec.scaler.update()
    return {"loss_l1": loss.detach()}


def gan_step(G, D, opt_g, opt_d, lr: torch.Tensor, hr: torch.Tensor, prec: cdev.Precision, percep,
             weights: tuple[float, float, float]) -> dict:
    """One G update on L_G = w_p L_percep + lambda L_G^Ra + eta L1 (eq. 3), then one D update on
    L_D^Ra with the same SR batch: the order of the official training code.
    `percep(sr, hr)`: the perceptual loss; `weights`: (w_p, lambda, eta)."""
    w_percep, w_adv, w_l1 = weights
    # ---- generator step: eq. 3, D's weights frozen ---------------------------------
    with distributed.frozen_outside_ddp(D) as d, prec.autocast():
        sr = G(lr)
        real_logits, fake_logits = d(hr).detach(), d(sr)
        loss_percep, loss_l1 = percep(sr, hr), l1_loss(sr, hr)
        loss_adv = generator_adversarial_loss(real_logits, fake_logits)
        loss_g = w_percep * loss_percep + w_adv * loss_adv + w_l1 * loss_l1
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_g).backward()
    prec.scaler.step(opt_g)
    # ---- discriminator step ----------------------------------------------------------
    with prec.autocast():
        real_logits, fake_logits = D(hr), D(sr.detach())
        loss_d = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_d).backward()
    prec.scaler.step(opt_d)
    prec.scaler.update()
    relative = (real_logits.detach().float() - fake_logits.detach().float().mean())
    return {"loss_d": loss_d.detach(), "loss_percep": loss_percep.detach(), "loss_adv": loss_adv.detach(),
            "loss_l1": loss_l1.detach(), "D_Ra(HR,SR)": torch.sigmoid(relative).mean()}


def perceptual(opt, device):
    """L_percep with VGG19 conv5_4 before activation; needs the ImageNet weights: a clear line
    before any training if they are not there. --percep-weight 0 (an ablation) needs none."""
    if opt.percep_weight == 0:
        return lambda sr, hr: torch.zeros((), device=sr.device)
    vgg = vgg19_features(PERCEPTUAL_LAYER, opt.vgg_weights, input_range=(0.0, 1.0), without=WITHOUT_VGG).to(device)
    return lambda sr, hr: perceptual_loss(vgg, sr, hr)


def main(opt) -> Path:
    session = setup(opt, MODEL_NAME, CHANNELS_LAST)
    # ---- data: HR crops and their bicubic LR, both in [0, 1] (Sec. 4.1)
    dataset = build_dataset(opt)
    loader = session.loader(dataset, opt.batch_size)
    options = crun.options_dict(opt)

    # ---- models: RRDBNet; the gan stage adds D, starts G from the psnr stage and needs VGG19
    gan = opt.stage == "gan"
    G = build_generator(options)
    models = {"G": G}
    percep = perceptual(opt, session.device) if gan else None  # before any training: a missing VGG stops here
    if gan and opt.init and not opt.resume:
        load_init(G, opt.init)
    G = session.place(G)
    if gan:
        models["D"] = session.place(build_discriminator(options))

    # ---- optimizers: Adam (0.9, 0.999), the rate halved at the milestones (Sec. 4.1)
    optimizers = {name: cdev.adam(m.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2))
                  for name, m in models.items()}
    schedulers = {name: MultiStepLR(o, milestones(opt), gamma=LR_HALVING) for name, o in optimizers.items()}

    run = crun.Run(opt.out, options, session.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models=models, optimizers=optimizers,
                        scaler=session.prec.scaler, options=options, arch_options=ARCH_OPTIONS,
                        is_main=session.is_main, states={f"lr_{name}": s for name, s in schedulers.items()})
    start_step, _ = ckpt.resume(opt.resume)
    G_train = session.for_training(G)
    D_train = session.for_training(models["D"]) if gan else None

    evaluate = held_out_evaluator(G, opt.scale, session.device) if opt.eval_every > 0 and session.is_main else None
    loop = TrainLoop(opt, session, run, ckpt, total=opt.iters, start_step=start_step,
                     sample=held_out_sampler(G, opt.scale, opt.hr_size, session.device), evaluate=evaluate,
                     grid_columns=3, lr_schedulers=schedulers, schedule_every="step")
    if session.is_main:
        d_text = f" / D {n_params(models['D'])}" if gan else ""
        print(f"ESRGAN stage {opt.stage} x{opt.scale}: G {n_params(G)}{d_text} parameters; {session.prec}, "
              f"channels_last={session.channels_last}; {len(dataset)} crops/epoch of {opt.hr_size}x{opt.hr_size}, "
              f"steps {start_step}->{loop.total}")

    weights = (opt.percep_weight, opt.adv_weight, opt.l1_weight)
    for step, epoch, (lr, hr) in loop.over(loader):
        lr, hr = session.to_input(lr), session.to_input(hr)
        if gan:
            losses = gan_step(G_train, D_train, optimizers["G"], optimizers["D"], lr, hr, session.prec, percep,
                              weights)
        else:
            losses = psnr_step(G_train, optimizers["G"], lr, hr, session.prec)
        loop.after_step(step, epoch, losses)
    return loop.finish()


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
