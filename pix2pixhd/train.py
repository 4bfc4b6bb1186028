"""Train pix2pixHD (Wang et al. 2018, arXiv:1711.11585): semantic label maps -> photos with a
coarse-to-fine generator, multi-scale discriminators and feature matching.

The paper's schedule (Sec. 3.2) is three commands (README, Running):

    cd pix2pixhd
    python train.py --out runs/g1                                   # 1. G1 alone, half resolution
    python train.py --n-local-enhancers 1 --load-size 512 \\
        --load-global runs/g1/checkpoints/last.pt --out runs/g12    # 2.+3. G2 with G1 fixed for
                                                                    #   --niter-fix-global epochs, then both

Each step (Sec. 3.2-3.4, train_step): G reads the one-hot label map + the instance boundary map
(+ E's instance-averaged features of the real image with --instance-feat); D_1..D_3 see
(labels, image) at three scales. G minimises the least-squares GAN loss + lambda * feature
matching (eq. 4, lambda = 10) + lambda * the VGG perceptual loss the official code adds; then D
minimises its least-squares loss, halved. Adam lr 2e-4, beta1 0.5, batch 1; constant for 100
epochs, then linear decay to 0 over 100 (linear_decay).

With --instance-feat, the end of training is Sec. 3.4's clustering: E encodes every training
scene and k-means gives each class its looks (<run>/features_clustered.npz, which generate.py
--style reads). cluster_features.py does the same for any checkpoint.
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
from common.errors import UserError, run_main
from common.loop import TrainLoop, n_params, setup
from common.vgg import vgg19_features
from .dataset import (RESIZE_OR_CROP, build_dataset, default_fine_size, default_label_nc, default_load_size,
                      sample_scenes)
from .model import CHANNELS_LAST, build_discriminator, build_encoder, build_generator, encode_input, size_multiple
from .utils import (MODEL_NAME, STYLES_FILE, GlobalFreeze, load_global_stage, periodic_evaluation, sample_rows,
                    synthesize, write_styles)

ARCH_OPTIONS = ("label_nc", "input_nc", "output_nc", "no_instance", "instance_feat", "label_feat", "feat_num",
                "ngf", "n_downsample_global", "n_blocks_global", "n_local_enhancers", "n_blocks_local", "ndf",
                "n_layers_D", "num_D", "nef", "n_downsample_E")


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="pix2pixHD (Wang et al. 2018). Defaults are the paper's and the "
                                            "official code's (Sec. 3-4).")
    g = p.add_argument_group("pix2pixHD networks (paper / official defaults)")
    g.add_argument("--label-nc", type=int, default=None,
                   help="classes of the label maps (default: 8 for --data scenes, the official 35 for a folder, "
                        "Cityscapes' label ids); 0 = the inputs are RGB images, translated as pix2pix does")
    g.add_argument("--no-instance", action="store_true",
                   help="no instance boundary map (Sec. 3.3; default: its channel is added to G's and D's input)")
    g.add_argument("--instance-feat", action="store_true",
                   help="Sec. 3.4: G also reads E's features averaged over each instance (official --instance_feat; "
                        "default off, as the official code); the run ends by clustering them for generate.py --style "
                        "(as cluster_features.py does)")
    g.add_argument("--label-feat", action="store_true",
                   help="the same, averaged over each semantic label instead (official --label_feat)")
    g.add_argument("--feat-num", type=positive_int, default=3, help="length of E's feature vector (default 3)")
    g.add_argument("--nef", type=positive_int, default=16, help="E's first-layer filters (default 16)")
    g.add_argument("--n-downsample-E", type=positive_int, default=4, help="E's downsamplings (default 4)")
    g.add_argument("--ngf", type=positive_int, default=None,
                   help="G's first-layer filters: G1's (default 64, Sec. 3.2 / appendix) or, with local enhancers, "
                        "the outermost enhancer's (default 32, the official 1024p scripts; G1 then has 64)")
    g.add_argument("--n-downsample-global", type=positive_int, default=4, help="G1's downsamplings (default 4)")
    g.add_argument("--n-blocks-global", type=positive_int, default=9, help="G1's residual blocks (default 9)")
    g.add_argument("--n-local-enhancers", type=int, default=0, choices=range(0, 4), metavar="{0,1,2,3}",
                   help="local enhancers G2 around G1 (default 0: G1 alone, stage 1; 1 for the paper's full G)")
    g.add_argument("--n-blocks-local", type=positive_int, default=3, help="each G2's residual blocks (default 3)")
    g.add_argument("--ndf", type=positive_int, default=64, help="each D's first-layer filters (default 64)")
    g.add_argument("--n-layers-D", type=positive_int, default=3, help="stride-2 layers of each D (default 3: 70x70)")
    g.add_argument("--num-D", type=positive_int, default=3,
                   help="discriminators on the image pyramid (default 3, Sec. 3.2; the official default is 2)")

    g = p.add_argument_group("pix2pixHD objective and schedule (paper / official defaults)")
    g.add_argument("--lambda-feat", type=non_negative_float, default=10.0,
                   help="lambda of eq. 5 for the feature matching loss and the VGG loss (default 10)")
    g.add_argument("--no-gan-feat-loss", action="store_true", help="drop the feature matching loss (eq. 4)")
    g.add_argument("--no-vgg-loss", action="store_true",
                   help="drop the VGG perceptual loss (default on; it needs ImageNet VGG19 weights)")
    g.add_argument("--vgg-weights", default=None, metavar="PATH",
                   help="torchvision's vgg19-dcbb9e9d.pth (default: torchvision's cache; without it the run stops "
                        "and says where to put the file, or use --no-vgg-loss)")
    g.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate of G (+E) and D (default 2e-4)")
    g.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5)")
    g.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (default 0.999)")
    g.add_argument("--batch-size", type=positive_int, default=1, help="scenes per step (default 1)")
    g.add_argument("--epochs", type=positive_int, default=200,
                   help="passes over the data (default 200: the official --niter 100 + --niter_decay 100)")
    g.add_argument("--decay-epochs", type=int, default=100,
                   help="the last N epochs decay the rate linearly to 0 (default 100, official --niter_decay)")
    g.add_argument("--niter-fix-global", type=int, default=None,
                   help="with local enhancers: epochs in which only the outermost G2 learns, G1 fixed, before "
                        "both are fine-tuned (Sec. 3.2; default 10, the official 1024p script; 0 with G1 alone)")
    g.add_argument("--load-global", default=None, metavar="CKPT",
                   help="stage 1's checkpoint (a run with --n-local-enhancers 0): its G goes into G1, its D and E "
                        "are loaded where they fit (the official --load_pretrain)")

    g = p.add_argument_group("pix2pixHD data (official defaults)")
    g.add_argument("--load-size", type=positive_int, default=None,
                   help="images are scaled to this width (default: 256 for --data scenes, drawn at 128x256; the "
                        "official 1024 for a folder)")
    g.add_argument("--fine-size", type=positive_int, default=None,
                   help="crop size of the *_and_crop / crop modes (default: 128 scenes, 512 folders)")
    g.add_argument("--resize-or-crop", default="scale_width", choices=RESIZE_OR_CROP,
                   help="the official --resize_or_crop (default scale_width)")
    g.add_argument("--no-flip", action="store_true", help="no random horizontal flips (default: flip)")
    g.add_argument("--epoch-length", type=positive_int, default=None,
                   help="training scenes of --data scenes (default 2975, as many as Cityscapes' train split)")
    add_common_args(p, model=MODEL_NAME, data="scenes", log_every=50, sample_every=500, save_every=1000)
    set_help(p, "data", "scenes (embedded procedural street scenes with label and instance maps, offline) | a folder "
                        "in the official layout: train_label/, train_inst/, train_img/ (+ test_*) (default: scenes)")
    set_help(p, "channels", "unused: images are RGB")
    set_help(p, "eval_every", "every N steps, the segmentation scores of evaluate.py (pixel accuracy, mean IoU of a "
                              "segmenter trained on real scenes) on G's outputs for the held-out label maps, to "
                              "TensorBoard and <out>/metrics.jsonl (default 0: off)")
    set_help(p, "eval_n", "held-out scenes per evaluation (default 32)")
    opt = p.parse_args(argv)
    resolve(opt, p)
    return opt


def resolve(opt, parser) -> None:
    """Fill the data- and stage-dependent defaults in, so options.json and the checkpoint hold numbers."""
    opt.label_nc = default_label_nc(opt.data) if opt.label_nc is None else opt.label_nc
    opt.load_size = opt.load_size or default_load_size(opt.data)
    opt.fine_size = opt.fine_size or default_fine_size(opt.data)
    opt.input_nc, opt.output_nc = 3, 3
    if opt.label_nc < 0:
        parser.error(f"--label-nc must be 0 or more, got {opt.label_nc}")
    if opt.ngf is None:
        opt.ngf = 32 if opt.n_local_enhancers else 64
    if opt.niter_fix_global is None:
        opt.niter_fix_global = 10 if opt.n_local_enhancers else 0
    if not 0 <= opt.decay_epochs <= opt.epochs:
        parser.error(f"--decay-epochs must be between 0 and --epochs ({opt.epochs}), got {opt.decay_epochs}")
    if opt.load_global and not opt.n_local_enhancers:
        parser.error("--load-global puts a stage-1 G into G1 of a local enhancer: add --n-local-enhancers 1")
    if opt.label_nc == 0 and (opt.instance_feat or opt.label_feat):
        parser.error("--instance-feat / --label-feat need label maps (--label-nc > 0)")


# --------------------------------------------------------- eq. 2: multi-scale LSGAN
# The least-squares GAN loss and the halved D loss are cyclegan/train.py's functions of the
# same job (folders never import one another), here summed over the discriminator scales.
def lsgan_discriminator_loss(real_outputs: list, fake_outputs: list) -> torch.Tensor:
    """D_1..D_k's part of eq. 2 in the least-squares form (Sec. 3.2, after Mao et al.): for each
    scale, E[(D_k(s, x) - 1)^2] + E[D_k(s, G(s))^2] on the last (patch score) map, summed over
    the scales, then halved as the official train.py halves loss_D."""
    loss = 0.0
    for real, fake in zip(real_outputs, fake_outputs):
        r, f = real[-1].float(), fake[-1].float()
        loss = loss + F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f))
    return 0.5 * loss


def lsgan_generator_loss(fake_outputs: list) -> torch.Tensor:
    """G's part of eq. 2, least squares: sum over the scales of E[(D_k(s, G(s)) - 1)^2]."""
    loss = 0.0
    for fake in fake_outputs:
        f = fake[-1].float()
        loss = loss + F.mse_loss(f, torch.ones_like(f))
    return loss


# ------------------------------------------------------------ eq. 4: feature matching
def feature_matching_loss(fake_outputs: list, real_outputs: list, n_layers_d: int) -> torch.Tensor:
    """L_FM(G, D_k) of eq. 4, summed over k: for every intermediate layer i of every D_k (all but
    the score map), the mean absolute difference (the 1/N_i of eq. 4) between D_k's features of
    the real and the generated image. D is only a feature extractor here: the real features are
    detached, and the caller runs D on the fake with its weights frozen. The official code
    weights each term by 1 / num_D and 4 / (n_layers_D + 1) (1 with 3 layers), which we keep."""
    num_d = len(fake_outputs)
    weight = (1.0 / num_d) * (4.0 / (n_layers_d + 1))
    loss = 0.0
    for fake, real in zip(fake_outputs, real_outputs):
        for f, r in zip(fake[:-1], real[:-1]):
            loss = loss + weight * F.l1_loss(f.float(), r.detach().float())
    return loss


# ------------------------------------------------- the official code's VGG loss
# L1 between VGG19 features of the output and of the real image after these layers, with these
# weights, times lambda_feat (official networks.VGGLoss).
VGG_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
VGG_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def vgg_loss(vgg, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The perceptual term the official code adds (Sec. 4: "our final objective ... with the
    VGG loss"): sum_i w_i * L1(F_i(G(s)), F_i(x)) over VGG19's relu1_1..relu5_1 (VGG_LAYERS,
    VGG_LAYER_WEIGHTS); the real image's features carry no gradient."""
    with torch.no_grad():
        targets = vgg.taps(real, VGG_LAYERS)
    outputs = vgg.taps(fake, VGG_LAYERS)
    return sum(w * F.l1_loss(o.float(), t.float()) for w, o, t in zip(VGG_LAYER_WEIGHTS, outputs, targets))


# -------------------------------------------------------------- learning-rate schedule
# pix2pix/train.py and cyclegan/train.py decay in steps of 1 / (decay_epochs + 1) instead.
def linear_decay(epoch: int, epochs: int, decay_epochs: int) -> float:
    """The learning rate's factor in (0-based) `epoch`: constant for the first
    n_constant = epochs - decay_epochs epochs, then the official update_learning_rate, which
    takes lr0 / decay_epochs off the rate after each epoch past the constant ones:
        1 - max(0, e - n_constant) / decay_epochs,
    1 in the first decaying epoch and 1 / decay_epochs in the last (the official rate reaches
    0 only after the last epoch). LambdaLR multiplies --lr by it; the loop brings it to each
    epoch before the epoch's first step."""
    return max(0.0, 1.0 - max(0, epoch - (epochs - decay_epochs)) / max(1, decay_epochs))


# --------------------------------------------------------------- one iteration
def train_step(G, D, E, opt_g, opt_d, label_map: torch.Tensor, inst: torch.Tensor, real: torch.Tensor,
               prec: cdev.Precision, *, lambda_feat: float = 10.0, n_layers_d: int = 3, feat_loss: bool = True,
               vgg=None) -> dict:
    """One G (+E) update, then one D update, on one forward pass of G (the official order).
    D's weights do not change in G's step and D's loss sees the fake detached, so building
    D's loss after G's step gives the numbers the official code gets building it before (bit
    for bit in fp32; under autocast D's two passes no longer share one cached low-precision
    copy of D's weights, so their weight gradients are summed in fp32: a rounding difference)."""
    with prec.autocast():
        g_input = label_map if E is None else torch.cat([label_map, E(real, inst)], dim=1)  # Sec. 3.4
        fake = G(g_input)
        real_out = D(torch.cat([label_map, real], dim=1))  # D's features of the real pair: for L_FM and D's loss

    # ---- G (and E): eq. 5, GAN + lambda * L_FM (+ lambda * the official VGG term), D frozen
    with distributed.frozen_outside_ddp(D) as d, prec.autocast():
        fake_out = d(torch.cat([label_map, fake], dim=1))
        loss_gan = lsgan_generator_loss(fake_out)
        loss_fm = (feature_matching_loss(fake_out, real_out, n_layers_d) * lambda_feat if feat_loss
                   else fake.new_zeros(()))
        loss_vgg = vgg_loss(vgg, fake, real) * lambda_feat if vgg is not None else fake.new_zeros(())
        loss_g = loss_gan + loss_fm + loss_vgg
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_g).backward()
    prec.scaler.step(opt_g)

    # ---- D: eq. 2's least-squares loss on the real pair and the (detached) fake pair, halved
    with prec.autocast():
        fake_out_d = D(torch.cat([label_map, fake.detach()], dim=1))
        loss_d = lsgan_discriminator_loss(real_out, fake_out_d)
    opt_d.zero_grad(set_to_none=True)
    prec.scaler.scale(loss_d).backward()
    prec.scaler.step(opt_d)
    prec.scaler.update()
    return {"loss_d": loss_d.detach(), "G_GAN": loss_gan.detach(), "G_FM": loss_fm.detach(),
            "G_VGG": loss_vgg.detach()}


def main(opt) -> Path:
    session = setup(opt, MODEL_NAME, CHANNELS_LAST)  # torchrun, seed, device, precision, channels_last, run name
    options = crun.options_dict(opt)
    multiple = size_multiple(options)
    dataset = build_dataset(opt, multiple=multiple)
    loader = session.loader(dataset, opt.batch_size)

    G, D, E = build_generator(options), build_discriminator(options), build_encoder(options)
    note = load_global_stage(G, D, E, opt.load_global) if opt.load_global else None  # Sec. 3.2: stage 1's G1
    if opt.niter_fix_global and opt.n_local_enhancers and session.info.world_size > 1:
        raise UserError("--niter-fix-global freezes G1 part of the way, which DDP cannot follow: run it on one "
                        "process, or with --niter-fix-global 0")
    vgg = None if opt.no_vgg_loss else vgg19_features(
        "relu5_1", opt.vgg_weights, without="or train without that term: --no-vgg-loss").to(session.device)
    G, D = session.place(G), session.place(D)
    E = session.place(E) if E is not None else None
    betas = (opt.beta1, opt.beta2)
    opt_g = cdev.adam([*G.parameters(), *(E.parameters() if E is not None else [])], lr=opt.lr, betas=betas)
    opt_d = cdev.adam(D.parameters(), lr=opt.lr, betas=betas)
    decay = lambda epoch: linear_decay(epoch, opt.epochs, opt.decay_epochs)  # noqa: E731
    sched_g, sched_d = LambdaLR(opt_g, decay), LambdaLR(opt_d, decay)
    freeze = GlobalFreeze(G, opt_g, opt.niter_fix_global)  # Sec. 3.2: G1 fixed while the enhancer starts

    run = crun.Run(opt.out, options, session.is_main)
    models = {"G": G, "D": D, **({"E": E} if E is not None else {})}
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models=models, optimizers={"G": opt_g, "D": opt_d},
                        scaler=session.prec.scaler, options=options, arch_options=ARCH_OPTIONS,
                        is_main=session.is_main, states={"lr_G": sched_g, "lr_D": sched_d, "global_freeze": freeze})
    start_step, _ = ckpt.resume(opt.resume)
    G_train, D_train = session.for_training(G), session.for_training(D)  # --compile, DDP
    E_train = session.for_training(E) if E is not None else None

    shown = sample_scenes(opt, dataset, multiple)  # fixed scenes for the grids: labels | output | real
    evaluate = (periodic_evaluation(G, E, options, session.device, opt.eval_n or 32)
                if opt.eval_every > 0 and session.is_main else None)
    loop = TrainLoop(opt, session, run, ckpt, total=opt.epochs * len(loader), start_step=start_step,
                     sample=lambda: sample_rows(shown, synthesize(G, E, shown, options, session.device), options),
                     grid_columns=3, evaluate=evaluate,
                     lr_schedulers={"G": sched_g, "D": sched_d}, schedule_every="epoch")
    if session.is_main:
        h, w = shown["label"].shape[-2:]
        print(f"pix2pixHD {'G1' if not opt.n_local_enhancers else f'G1 + {opt.n_local_enhancers} local enhancer(s)'}"
              f" at {w}x{h}: G {n_params(G)} / D ({opt.num_D} scales) {n_params(D)}"
              f"{f' / E {n_params(E)}' if E is not None else ''} parameters; {session.prec}, "
              f"channels_last={session.channels_last}; {len(dataset)} scenes ({opt.data}), {len(loader)} steps/epoch, "
              f"steps {start_step}->{loop.total}; losses: LSGAN{'' if opt.no_gan_feat_loss else ' + FM'}"
              f"{'' if vgg is None else ' + VGG'}")
        if note:
            print(note)

    for step, epoch, batch in loop.over(loader):
        if freeze.set_epoch(epoch) and session.is_main:  # Sec. 3.2: after --niter-fix-global epochs
            print(f"epoch {epoch}: G1 released, G fine-tuned as a whole from now on (Sec. 3.2)")
        label_map = session.to_input(encode_input(batch["label"], batch["inst"], opt.label_nc, not opt.no_instance))
        losses = train_step(G_train, D_train, E_train, opt_g, opt_d, label_map, batch["inst"].to(session.device),
                            session.to_input(batch["image"]), session.prec, lambda_feat=opt.lambda_feat,
                            n_layers_d=opt.n_layers_D, feat_loss=not opt.no_gan_feat_loss, vgg=vgg)
        loop.after_step(step, epoch, losses)
    out = loop.finish()
    if E is not None and session.is_main:  # Sec. 3.4 after training: the looks generate.py --style picks from
        print(write_styles(E, options, session.device, run.directory / STYLES_FILE))
    return out


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
