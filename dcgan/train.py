"""Train DCGAN (Radford, Metz, Chintala 2015, arXiv:1511.06434).

    cd dcgan && python train.py                      # embedded digits, paper settings
    python -m dcgan.train --data cifar10             # from the repository root
    torchrun --nproc_per_node 2 -m dcgan.train ...   # several processes / GPUs

The loop is Algorithm 1 of Goodfellow et al. 2014 with k = 1 (one D step, then
one G step per minibatch) and the non-saturating generator loss, with the
DCGAN paper's settings from Sec. 4: Adam lr 2e-4, beta1 0.5, batch 128.

The Improved Techniques of Salimans et al. 2016 (arXiv:1606.03498, Sec. 3) are flags,
all off by default: --feature-matching (3.1), --minibatch-discrimination (3.2),
--historical-averaging LAMBDA (3.3), --label-smoothing ALPHA (3.4),
--virtual-batch-norm (3.5). See README.md, "Improved Techniques toolbox".
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from common import device as cdev
from common import distributed
from common import metrics as cmetrics
from common import run as crun
from common.checkpoint import Checkpointer
from common.cli import add_common_args, non_negative_float, positive_int
from common.ema import EMA
from common.errors import run_main
from common.loop import TrainLoop, evaluation, n_params, setup
from .dataset import build_dataset
from .model import CHANNELS_LAST, build_discriminator, build_generator, init_weights
from .utils import HistoricalAverage, latents, sample_z

MODEL_NAME = "dcgan"
# these decide tensor shapes; generate.py reads them from the checkpoint (model.build_generator),
# where a checkpoint older than the toolbox lacks the last five and they mean "off"
ARCH_OPTIONS = ("nz", "ngf", "ndf", "image_size", "channels",
                "minibatch_discrimination", "minibatch_kernels", "minibatch_dims", "virtual_batch_norm", "vbn_ref_size")


def label_smoothing_alpha(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] (1 = off, 0.9 = the paper's example), got {text}")
    return value


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="DCGAN (Radford et al. 2015). Defaults are the paper's (Sec. 4).")
    g = p.add_argument_group("DCGAN hyper-parameters (paper defaults)")
    g.add_argument("--epochs", type=int, default=25,
                   help="passes over the data (default 25, the authors' code; the paper shows LSUN after 1 and 5)")
    g.add_argument("--batch-size", type=int, default=128, help="minibatch size (default 128, Sec. 4)")
    g.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate for G and D (default 2e-4, Sec. 4)")
    g.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5, Sec. 4: 0.9 oscillated)")
    g.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (default 0.999, Adam's default)")
    g.add_argument("--nz", type=int, default=100, help="latent size (default 100, Fig. 1)")
    g.add_argument("--z-dist", default="uniform", choices=["uniform", "normal"],
                   help="latent prior (default uniform on [-1,1], Fig. 1; the PyTorch example uses normal)")
    g.add_argument("--ngf", type=int, default=128,
                   help="G width of the last hidden layer; 4x4 has ngf*8 (default 128 = Fig. 1's 1024 at 4x4; "
                        "the PyTorch example uses 64)")
    g.add_argument("--ndf", type=int, default=128,
                   help="D width of the first layer, doubling per block (default 128, mirrors G; example: 64)")
    g.add_argument("--image-size", type=int, default=64, help="output size, a power of two (default 64, Sec. 4)")
    g.add_argument("--ema-decay", type=float, default=0.0,
                   help="EMA of G's weights for samples, e.g. 0.999 (default 0 = off; the paper uses none)")
    t = p.add_argument_group("Improved Techniques for Training GANs (Salimans et al. 2016, Sec. 3); all off by default")
    t.add_argument("--feature-matching", action="store_true",
                   help="Sec. 3.1: G minimises ||E f(x) - E f(G(z))||^2, f = D's last hidden layer, instead of "
                        "the non-saturating loss; D trains as usual")
    t.add_argument("--minibatch-discrimination", action="store_true",
                   help="Sec. 3.2: D's output layer also sees o(x_i)_b = sum_(j!=i) exp(-||M_i,b - M_j,b||_L1), "
                        "M_i = f(x_i) T, per minibatch (real and fake separately)")
    t.add_argument("--minibatch-kernels", type=positive_int, default=100, metavar="B",
                   help="B, the number of minibatch kernels (default 100, the authors' code; the paper names none)")
    t.add_argument("--minibatch-dims", type=positive_int, default=5, metavar="C",
                   help="C, the dimension of each kernel (default 5, the authors' code)")
    t.add_argument("--historical-averaging", type=non_negative_float, default=0.0, metavar="LAMBDA",
                   help="Sec. 3.3: add LAMBDA * ||theta - mean of past theta||^2 to each player's cost "
                        "(default 0 = off; the paper gives no value)")
    t.add_argument("--label-smoothing", type=label_smoothing_alpha, default=1.0, metavar="ALPHA",
                   help="Sec. 3.4, one-sided: D's target for real images is ALPHA, for fakes still 0 "
                        "(default 1 = off; the paper suggests 0.9)")
    t.add_argument("--virtual-batch-norm", action="store_true",
                   help="Sec. 3.5: G normalises each example with the statistics of a reference batch of z fixed "
                        "at the start, plus itself (costs a forward pass on the reference batch)")
    t.add_argument("--vbn-ref-size", type=positive_int, default=None, metavar="N",
                   help="size of VBN's reference batch (default: --batch-size)")
    add_common_args(p, model=MODEL_NAME, data="digits", channels=3)
    opt = p.parse_args(argv)
    if opt.virtual_batch_norm and opt.vbn_ref_size is None:
        opt.vbn_ref_size = opt.batch_size  # resolved here, so options.json and the checkpoint hold the number
    return opt


# ----------------------------------------------------------------- the losses
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """D maximises log D(x) + log(1 - D(G(z))) (Goodfellow et al. 2014, eq. 1):
    minimise BCE(D(x), 1) + BCE(D(G(z)), 0), computed on logits.

    One-sided label smoothing (Salimans et al. 2016, Sec. 3.4): `real_target` alpha < 1
    (e.g. 0.9) replaces the real target 1, i.e. BCE(D(x), alpha); the fake target stays 0:
    with a fake target beta > 0, the optimal D is (alpha p_data + beta p_model) / (p_data + p_model),
    so where p_data ~ 0 the model's samples would still score beta and not be pushed to the data."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss (Goodfellow et al. 2014, Sec. 3): maximise log D(G(z)),
    i.e. minimise BCE(D(G(z)), 1)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Feature matching (Salimans et al. 2016, Sec. 3.1): G minimises
    ||E_x f(x) - E_z f(G(z))||_2^2, f = D's last hidden layer (flattened), each expectation
    estimated by the mean over a minibatch. The squared L2 norm is the paper's; the
    authors' code takes mean |difference| (an L1 mean) instead (see README)."""
    real_mean = real_features.flatten(1).float().mean(dim=0)
    fake_mean = fake_features.flatten(1).float().mean(dim=0)
    return (real_mean - fake_mean).square().sum()


@dataclass
class ImprovedTechniques:
    """The training-procedure techniques of Salimans et al. 2016 that train_step applies
    (minibatch discrimination and virtual batch norm are layers: model.py). The defaults
    switch everything off, which is plain DCGAN."""
    feature_matching: bool = False  # Sec. 3.1: G's loss
    real_target: float = 1.0  # Sec. 3.4: one-sided label smoothing alpha (1 = off)
    historical_lambda: float = 0.0  # Sec. 3.3: weight of the historical-averaging penalty
    g_average: HistoricalAverage | None = None  # running means of G's / D's parameters (Sec. 3.3)
    d_average: HistoricalAverage | None = None


# --------------------------------------------------------------- one iteration
def train_step(G, D, opt_g, opt_d, real: torch.Tensor, z: torch.Tensor, prec: cdev.Precision,
               tricks: ImprovedTechniques | None = None) -> dict:
    """One D update then one G update on the same fakes; returns detached losses
    (with historical averaging on, also each player's penalty before its lambda)."""
    tricks = tricks or ImprovedTechniques()
    stats = {}
    # ---- discriminator step ------------------------------------------------
    with prec.autocast():
        fake = G(z)  # G's forward runs once; its graph is reused in the G step
        real_logits = D(real)  # real and fake in separate calls: BatchNorm and minibatch
        fake_logits = D(fake.detach())  # discrimination see one kind of example at a time
        loss_d = cost_d = discriminator_loss(real_logits, fake_logits, tricks.real_target)
        if tricks.d_average is not None:  # Sec. 3.3
            stats["hist_d"] = tricks.d_average.penalty(distributed.unwrap_all(D))
            cost_d = loss_d + tricks.historical_lambda * stats["hist_d"]
    opt_d.zero_grad(set_to_none=True)
    prec.scaler.scale(cost_d).backward()
    prec.scaler.step(opt_d)  # the G step updates the scale
    if tricks.d_average is not None:
        tricks.d_average.update(distributed.unwrap_all(D))

    # ---- generator step ----------------------------------------------------
    with distributed.frozen_outside_ddp(D) as d, prec.autocast():  # G's gradients pass through D, not into it
        if tricks.feature_matching:  # Sec. 3.1: match D's features, with D as just updated
            with torch.no_grad():
                real_features = d.features(real)
            loss_g = cost_g = feature_matching_loss(real_features, d.features(fake))
        else:
            loss_g = cost_g = generator_loss(d(fake))
        if tricks.g_average is not None:  # Sec. 3.3
            stats["hist_g"] = tricks.g_average.penalty(distributed.unwrap_all(G))
            cost_g = loss_g + tricks.historical_lambda * stats["hist_g"]
    opt_g.zero_grad(set_to_none=True)
    prec.scaler.scale(cost_g).backward()
    prec.scaler.step(opt_g)
    prec.scaler.update()
    if tricks.g_average is not None:
        tricks.g_average.update(distributed.unwrap_all(G))
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
            "D(x)": torch.sigmoid(real_logits.detach().float()).mean(),
            "D(G(z))": torch.sigmoid(fake_logits.detach().float()).mean(),
            **{k: v.detach() for k, v in stats.items()}}



def spread_batch(dataset, n: int) -> torch.Tensor:
    """n real images at evenly spaced indices: a fixed batch that needs no RNG and no loader
    (so the training run's random stream and data order stay those of a plain run)."""
    idx = torch.linspace(0, len(dataset) - 1, min(n, len(dataset))).long()
    return torch.stack([dataset[int(i)][0] for i in idx])


def improved_techniques_on(opt) -> list[str]:
    """The Salimans et al. techniques this run uses, for the start-up line."""
    on = []
    if opt.feature_matching:
        on.append("feature matching (3.1)")
    if opt.minibatch_discrimination:
        on.append(f"minibatch discrimination B={opt.minibatch_kernels} C={opt.minibatch_dims} (3.2)")
    if opt.historical_averaging > 0:
        on.append(f"historical averaging lambda={opt.historical_averaging:g} (3.3)")
    if opt.label_smoothing < 1.0:
        on.append(f"one-sided label smoothing alpha={opt.label_smoothing:g} (3.4)")
    if opt.virtual_batch_norm:
        on.append(f"virtual batch norm in G, reference batch {opt.vbn_ref_size} (3.5)")
    return on


def main(opt) -> Path:
    session = setup(opt, MODEL_NAME, CHANNELS_LAST)  # torchrun, seed, device, precision, channels_last, run name

    dataset = build_dataset(opt)
    opt.channels = dataset.channels
    loader = session.loader(dataset, opt.batch_size)

    options = crun.options_dict(opt)
    G = build_generator(options)  # Generator, or VBNGenerator with --virtual-batch-norm
    D = build_discriminator(options)  # Discriminator, or MinibatchDiscriminator with --minibatch-discrimination
    G.apply(init_weights)
    D.apply(init_weights)
    if opt.virtual_batch_norm:  # Sec. 3.5: the reference batch, fixed now; its own RNG, so weights match a plain run
        ref_rng = torch.Generator().manual_seed(opt.seed + 2)
        G.z_ref.copy_(sample_z(opt.vbn_ref_size, opt.nz, opt.z_dist, generator=ref_rng))
    G, D = session.place(G), session.place(D)
    if opt.minibatch_discrimination:  # Sec. 3.2 with the authors' data-dependent scale (a resume overwrites it)
        D.initialise_minibatch_layer(session.to_input(spread_batch(dataset, opt.batch_size)))
    opt_g = torch.optim.Adam(G.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2))
    ema = EMA(G, opt.ema_decay) if opt.ema_decay > 0 else None
    tricks = ImprovedTechniques(feature_matching=opt.feature_matching, real_target=opt.label_smoothing,
                                historical_lambda=opt.historical_averaging)
    models = {"G": G, "D": D}
    if opt.historical_averaging > 0:  # Sec. 3.3: the running means live in the checkpoint, so resume is exact
        tricks.g_average, tricks.d_average = HistoricalAverage(G), HistoricalAverage(D)
        models.update(G_avg=tricks.g_average, D_avg=tricks.d_average)

    run = crun.Run(opt.out, options, session.is_main)
    ckpt = Checkpointer(run.checkpoints, model_name=MODEL_NAME, models=models,
                        optimizers={"G": opt_g, "D": opt_d}, scaler=session.prec.scaler, ema=ema, options=options,
                        arch_options=ARCH_OPTIONS, is_main=session.is_main)
    start_step, _ = ckpt.resume(opt.resume)
    G_train, D_train = session.for_training(G), session.for_training(D)  # --compile, DDP
    if tricks.g_average is not None and start_step == 0:
        # under torchrun, DDP has just copied rank 0's initial weights to every rank: start the history there
        tricks.g_average.restart(G)
        tricks.d_average.restart(D)

    # fixed latents for the sample grids: their own generator, so sampling never moves the RNG
    fixed_z = sample_z(64, opt.nz, opt.z_dist, generator=torch.Generator().manual_seed(opt.seed), device=session.device)
    sampler_G = ema.module if ema is not None else G
    loop = TrainLoop(opt, session, run, ckpt, total=opt.epochs * len(loader), start_step=start_step,
                     sample=lambda: cmetrics.generate(sampler_G, fixed_z, session.device),
                     evaluate=evaluation(opt, session, dataset, sampler_G, latents))  # --eval-every
    if session.is_main:
        print(f"DCGAN {opt.image_size}x{opt.image_size}x{opt.channels}: G {n_params(G)} / D {n_params(D)} "
              f"parameters; {session.prec}, channels_last={session.channels_last}; {len(dataset)} images, "
              f"{len(loader)} steps/epoch, steps {start_step}->{loop.total}")
        if on := improved_techniques_on(opt):
            print(f"Improved Techniques (Salimans et al. 2016): {', '.join(on)}")

    for step, epoch, (real, _) in loop.over(loader):
        real = session.to_input(real)
        z = sample_z(real.shape[0], opt.nz, opt.z_dist, device=session.device)
        losses = train_step(G_train, D_train, opt_g, opt_d, real, z, session.prec, tricks)  # Algorithm 1, k = 1
        if ema is not None:
            ema.update(G)
        loop.after_step(step, epoch, losses)
    return loop.finish()


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
