"""Train SRResNet and SRGAN (Ledig et al. 2017, arXiv:1609.04802), the paper's two stages.

    cd srgan && python train.py --stage psnr                        # SRResNet, MSE (Sec. 3.2)
    python train.py --stage gan --init runs/srgan-photos-psnr/checkpoints/last.pt   # SRGAN from it
    python -m srgan.train --data /path/to/DIV2K_train_HR --stage psnr
    python -m srgan.train --data DIV2K_train_HR --lr-dir DIV2K_train_LR_bicubic/X4   # given LR/HR pairs

Stage psnr: G minimises the pixel MSE (SRResNet-MSE). Stage gan: G starts from the stage-psnr
weights "to avoid undesired local optima" (Sec. 3.2) and minimises the perceptual loss of eq. 3,
the VGG54 content loss (eq. 5) plus 1e-3 times the adversarial loss (eq. 6), while D minimises
the GAN loss of eq. 2. Adam, beta1 0.9, lr 1e-4; in the gan stage 1e-5 for the second half;
batch 16 of 96x96 HR crops; LR in [0, 1], HR in [-1, 1].
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
from .model import CHANNELS_LAST, Discriminator, SRResNet
from .utils import MODEL_NAME, held_out_evaluator, held_out_sampler, load_init

ARCH_OPTIONS = ("features", "blocks", "scale")
STAGE_ITERS = {"psnr": 1_000_000, "gan": 200_000}  # Sec. 3.2: 10^6 SRResNet updates; 10^5 + 10^5 SRGAN updates
VGG_RESCALE = 1 / 12.75  # Sec. 3.2: "rescaled by 1/12.75 to obtain VGG losses of a scale comparable to the MSE loss"
CONTENT_LAYERS = {"vgg54": "relu5_4", "vgg22": "relu2_2"}  # phi_i,j: after the j-th conv's activation, before pool i
LR_DROP = 0.1  # Sec. 3.2: the gan stage's 10^5 updates at 1e-4, then 10^5 at 1e-5
WITHOUT_VGG = "--stage psnr (SRResNet) and --content-loss mse need no VGG"  # what runs without the weights


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="SRResNet / SRGAN (Ledig et al. 2017). Defaults are the paper's (Sec. 3.2).")
    g = p.add_argument_group("SRGAN hyper-parameters (paper defaults)")
    g.add_argument("--stage", default="psnr", choices=["psnr", "gan"],
                   help="psnr: SRResNet with the MSE loss (default); gan: SRGAN, G initialised with --init")
    g.add_argument("--init", default=None, metavar="PATH",
                   help="--stage gan: a stage-psnr checkpoint whose G starts the GAN stage (Sec. 3.2)")
    g.add_argument("--iters", type=positive_int, default=None,
                   help="updates (default: 10^6 for psnr, 2x10^5 for gan, Sec. 3.2)")
    g.add_argument("--batch-size", type=positive_int, default=16, help="minibatch (default 16, Sec. 3.2)")
    g.add_argument("--lr", type=float, default=1e-4,
                   help="Adam learning rate (default 1e-4; the gan stage drops it to 1e-5 for its second half)")
    g.add_argument("--beta1", type=float, default=0.9, help="Adam beta1 (default 0.9, Sec. 3.2)")
    g.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (default 0.999)")
    g.add_argument("--scale", type=int, default=4, choices=[2, 4, 8], help="upscaling factor (default 4)")
    g.add_argument("--hr-size", type=positive_int, default=96, help="HR crop side (default 96, Sec. 3.2)")
    g.add_argument("--blocks", type=positive_int, default=16, help="residual blocks B (default 16, Fig. 4)")
    g.add_argument("--features", type=positive_int, default=64, help="feature maps (default 64, Fig. 4)")
    g.add_argument("--content-loss", default="vgg54", choices=["vgg54", "vgg22", "mse"],
                   help="gan stage's content loss (default vgg54, the paper's SRGAN; vgg22 and mse are its "
                        "SRGAN-VGG22 and SRGAN-MSE variants, Table 1)")
    g.add_argument("--adv-weight", type=float, default=1e-3, help="weight of the adversarial loss (default 1e-3, eq. 3)")
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
    if opt.iters is None:
        opt.iters = STAGE_ITERS[opt.stage]
    if opt.stage == "gan" and not opt.init and not opt.resume:
        p.error("--stage gan starts from a trained SRResNet: give --init PATH (a --stage psnr checkpoint), "
                "or --resume")
    return opt


# ----------------------------------------------------------------- the losses
def mse_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """l_MSE (eq. 4): the mean squared pixel difference."""
    return F.mse_loss(sr.float(), hr.float())


def vgg_content_loss(vgg, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """l_VGG/i.j (eq. 5): the mean squared difference of VGG19 feature maps phi_i,j of the
    super-resolved and the HR image, the features rescaled by 1/12.75 (Sec. 3.2)."""
    with torch.no_grad():
        target = vgg(hr) * VGG_RESCALE
    return F.mse_loss((vgg(sr) * VGG_RESCALE).float(), target.float())


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D maximises log D(I_HR) + log(1 - D(G(I_LR))) (eq. 2), as BCE on logits."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """l_Gen (eq. 6): sum of -log D(G(I_LR)), here its mean: BCE(D(G(I_LR)), 1)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# --------------------------------------------------------------- one iteration
def psnr_step(G, opt_g, lr: torch.Tensor, hr: torch.Tensor, prec: cdev.Precision) -> dict:
    """SRResNet-MSE: one update of G on eq. 4."""
    with prec.autocast():
        loss = mse_loss(G(lr), hr)
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss).backward()
    prec.scaler.step(opt_g)
    prec.scaler.update()
    return {"loss_mse": loss.detach()}


def gan_step(G, D, opt_g, opt_d, lr: torch.Tensor, hr: torch.Tensor, prec: cdev.Precision, content,
             adv_weight: float = 1e-3) -> dict:
    """One D update (eq. 2), then one G update on the perceptual loss l_X + 1e-3 l_Gen (eq. 3).
    `content(sr, hr)`: the content loss l_X (VGG54 by default)."""
    # ---- discriminator step ----------------------------------------------------
    with prec.autocast():
        sr = G(lr)
        real_logits, fake_logits = D(hr), D(sr.detach())
        loss_d = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_d).backward()
    prec.scaler.step(opt_d)
    # ---- generator step: eq. 3 --------------------------------------------------
    with distributed.frozen_outside_ddp(D) as d, prec.autocast():
        loss_content = content(sr, hr)
        loss_adv = adversarial_loss(d(sr))
        loss_g = loss_content + adv_weight * loss_adv
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_g).backward()
    prec.scaler.step(opt_g)
    prec.scaler.update()
    return {"loss_d": loss_d.detach(), "loss_content": loss_content.detach(), "loss_adv": loss_adv.detach(),
            "D(HR)": torch.sigmoid(real_logits.detach().float()).mean(),
            "D(G(LR))": torch.sigmoid(fake_logits.detach().float()).mean()}


def content_loss(opt, device):
    """l_X for the gan stage: MSE, or VGG19 features (which need the ImageNet weights: a clear
    line before training if they are not there)."""
    if opt.content_loss == "mse":
        return mse_loss
    vgg = vgg19_features(CONTENT_LAYERS[opt.content_loss], opt.vgg_weights, without=WITHOUT_VGG).to(device)
    return lambda sr, hr: vgg_content_loss(vgg, sr, hr)


def main(opt) -> Path:
    session = setup(opt, MODEL_NAME, CHANNELS_LAST)
    # ---- data: HR crops and their bicubic LR (Sec. 3.2)
    dataset = build_dataset(opt)
    loader = session.loader(dataset, opt.batch_size)
    options = crun.options_dict(opt)

    # ---- models: SRResNet; the gan stage adds D, starts G from the psnr stage and needs VGG19
    gan = opt.stage == "gan"
    G = SRResNet(3, opt.features, opt.blocks, opt.scale)
    models = {"G": G}
    content = content_loss(opt, session.device) if gan else None  # before any training: a missing VGG stops here
    if gan and opt.init and not opt.resume:
        load_init(G, opt.init)
    G = session.place(G)
    if gan:
        models["D"] = session.place(Discriminator(3, opt.features, opt.hr_size))

    # ---- optimizers: Adam (beta1 0.9), lr 1e-4; the gan stage drops it to 1e-5 halfway (Sec. 3.2)
    optimizers = {name: cdev.adam(m.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2))
                  for name, m in models.items()}
    milestones = [opt.iters // 2] if gan else []
    schedulers = {name: MultiStepLR(o, milestones, gamma=LR_DROP) for name, o in optimizers.items()}

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
        print(f"SRGAN stage {opt.stage} x{opt.scale}: G {n_params(G)}{d_text} parameters; {session.prec}, "
              f"channels_last={session.channels_last}; {len(dataset)} crops/epoch of {opt.hr_size}x{opt.hr_size}, "
              f"steps {start_step}->{loop.total}")

    for step, epoch, (lr, hr) in loop.over(loader):
        lr, hr = session.to_input(lr), session.to_input(hr)
        if gan:
            losses = gan_step(G_train, D_train, optimizers["G"], optimizers["D"], lr, hr, session.prec, content,
                              opt.adv_weight)
        else:
            losses = psnr_step(G_train, optimizers["G"], lr, hr, session.prec)
        loop.after_step(step, epoch, losses)
    return loop.finish()


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
