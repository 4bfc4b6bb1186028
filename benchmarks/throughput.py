"""Training throughput (images/s) of each model in each precision / memory-format mode.

    python benchmarks/throughput.py                      # every model, every mode on this machine
    python benchmarks/throughput.py --models dcgan --modes fp32,fp32-cl

One "step" is a full training iteration as train.py runs it (D update + G update,
through each folder's own step functions; for WGAN a generator iteration: 5 critic
updates and one G update, so images/s counts generated batches, not critic reads), on random input already in memory, so
the figure is compute only (no data loading). Each mode is warmed up, then timed
for at least --min-time seconds (and at least one step). Ratios are to fp32 NCHW
on the same device, measured in the same run. Peak MiB: on CUDA the most memory torch
allocated in that mode; on the CPU the process's peak resident set so far (it only grows, so
read it for one model and mode per run).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from common.device import Precision, cpu_has_fast_bf16

MODES = {  # name: (precision, channels_last)
    "fp32": ("fp32", False),
    "fp32-cl": ("fp32", True),
    "bf16": ("bf16", False),
    "bf16-cl": ("bf16", True),
    "fp16-cl": ("fp16", True),  # CUDA only
}


def build_dcgan(cfg, channels_last, device):
    from dcgan.model import Discriminator, Generator, init_weights
    from dcgan.train import train_step

    G = Generator(100, cfg["ngf"], 3, cfg["size"]).apply(init_weights)
    D = Discriminator(cfg["ngf"], 3, cfg["size"]).apply(init_weights)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G, D = G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    real = (torch.rand(cfg["batch"], 3, cfg["size"], cfg["size"], device=device) * 2 - 1).contiguous(memory_format=fmt)

    def step(prec):
        z = torch.rand(cfg["batch"], 100, device=device) * 2 - 1
        return train_step(G, D, opt_g, opt_d, real, z, prec)

    return step


def build_simple_gan(cfg, channels_last, device):
    """One D + G update of simple_gan/train.py with an arch's defaults: --arch paper (SGD +
    momentum, maxout D with dropout) or --arch seed (Adam, no dropout)."""
    from simple_gan.model import build_discriminator, build_generator, initialise
    from simple_gan.train import build_optimizers, parse_opt, train_step
    from simple_gan.utils import sample_z

    opt = parse_opt(["--arch", cfg["arch"], "--batch-size", str(cfg["batch"])])
    G, D = build_generator(vars(opt)), build_discriminator(vars(opt))
    initialise(G, D, opt.arch)
    G, D = G.to(device), D.to(device)
    opt_g, opt_d = build_optimizers(opt, G, D)
    real = torch.rand(opt.batch_size, 1, 28, 28, device=device) * 2 - 1

    def step(prec):
        return train_step(G, D, opt_g, opt_d, real, sample_z(opt.batch_size, opt.z_dim, opt.z_dist, device=device), prec)

    return step


def build_wgan(cfg, channels_last, device):
    """One generator iteration of Algorithm 1: n_critic critic steps (clipping included), one G step."""
    from wgan.model import Critic, Generator, init_weights
    from wgan.train import critic_step, generator_step

    G = Generator(100, cfg["ngf"], 3, cfg["size"]).apply(init_weights)
    C = Critic(cfg["ngf"], 3, cfg["size"], "batch").apply(init_weights)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G, C = G.to(device, memory_format=fmt), C.to(device, memory_format=fmt)
    opt_g, opt_c = torch.optim.RMSprop(G.parameters(), 5e-5), torch.optim.RMSprop(C.parameters(), 5e-5)
    real = (torch.rand(cfg["batch"], 3, cfg["size"], cfg["size"], device=device) * 2 - 1).contiguous(memory_format=fmt)

    def step(prec):
        for _ in range(5):
            critic_step(G, C, opt_c, real, torch.randn(cfg["batch"], 100, device=device), prec, 0.01)
        return generator_step(G, C, opt_g, torch.randn(cfg["batch"], 100, device=device), prec)

    return step


def build_wgan_gp(cfg, channels_last, device):
    """One generator iteration of WGAN-GP's Algorithm 1: 5 penalised critic steps, one G step."""
    from wgan_gp.model import Critic, Generator, init_weights
    from wgan_gp.train import critic_step, generator_step

    G = Generator(128, cfg["ngf"], 3, cfg["size"]).apply(init_weights)
    C = Critic(cfg["ngf"], 3, cfg["size"], "layer").apply(init_weights)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G, C = G.to(device, memory_format=fmt), C.to(device, memory_format=fmt)
    opt_g = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.0, 0.9))
    opt_c = torch.optim.Adam(C.parameters(), 1e-4, betas=(0.0, 0.9))
    real = (torch.rand(cfg["batch"], 3, cfg["size"], cfg["size"], device=device) * 2 - 1).contiguous(memory_format=fmt)

    def step(prec):
        for _ in range(5):
            critic_step(G, C, opt_c, real, torch.randn(cfg["batch"], 128, device=device), prec, 10.0)
        return generator_step(G, C, opt_g, torch.randn(cfg["batch"], 128, device=device), prec)

    return step


def build_cgan(cfg, channels_last, device):
    """One generator iteration of cgan/train.py: n_critic critic (conv, WGAN-GP) or D (mlp, GAN) steps, one G step."""
    from cgan.model import build_models
    from cgan.train import critic_step, discriminator_step, generator_loss, generator_step, wgan_generator_loss

    conv = cfg["arch"] == "conv"
    G, D = build_models({"arch": cfg["arch"], "nz": 100, "num_classes": 10, "embed_size": 100, "ngf": cfg.get("ngf"),
                         "ndf": cfg.get("ngf"), "channels": 1, "image_size": cfg["size"]})
    fmt = torch.channels_last if channels_last and conv else torch.contiguous_format
    G, D = G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)
    if conv:  # WGAN-GP Algorithm 1, the seed's settings
        opt_g = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.0, 0.9))
        opt_d = torch.optim.Adam(D.parameters(), 1e-4, betas=(0.0, 0.9))
    else:  # Sec. 4.1: SGD with momentum
        opt_g = torch.optim.SGD(G.parameters(), 0.1, momentum=0.5)
        opt_d = torch.optim.SGD(D.parameters(), 0.1, momentum=0.5)
    batch, size = cfg["batch"], cfg["size"]
    real = (torch.rand(batch, 1, size, size, device=device) * 2 - 1).contiguous(memory_format=fmt)
    labels = torch.arange(batch, device=device) % 10

    def z():
        return torch.randn(batch, 100, device=device) if conv else torch.rand(batch, 100, device=device)

    def step(prec):
        for _ in range(5 if conv else 1):
            if conv:
                critic_step(G, D, opt_d, real, labels, z(), prec, 10.0)
            else:
                discriminator_step(G, D, opt_d, real, labels, z(), prec)
        return generator_step(G, D, opt_g, z(), labels, prec, wgan_generator_loss if conv else generator_loss)

    return step


def build_pix2pix(cfg, channels_last, device):
    """One D + G update of pix2pix/train.py (eq. 1 halved, then eq. 4 with lambda 100) at the
    paper's 256x256, batch 1. cfg["adam"]: "fused" is train.py's optimizer (common.device.adam);
    "default" is torch.optim.Adam's default implementation, the official code's."""
    from common.device import adam
    from pix2pix.model import build_discriminator, build_generator, init_weights
    from pix2pix.train import train_step

    options = {"netG": cfg.get("netG", "unet"), "netD": cfg.get("netD", "patch70"), "ngf": 64, "ndf": 64,
               "image_size": cfg["size"]}
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G = build_generator(options).apply(init_weights).to(device, memory_format=fmt)
    D = build_discriminator(options).apply(init_weights).to(device, memory_format=fmt)
    make = adam if cfg.get("adam", "fused") == "fused" else (lambda ps, lr, betas: torch.optim.Adam(ps, lr, betas))
    opt_g, opt_d = (make(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (G, D))
    x, y = ((torch.rand(cfg["batch"], 3, cfg["size"], cfg["size"], device=device) * 2 - 1).contiguous(memory_format=fmt)
            for _ in range(2))

    def step(prec):
        return train_step(G, D, opt_g, opt_d, x, y, prec, 100.0)

    return step


def build_cyclegan(cfg, channels_last, device):
    """One iteration of cyclegan/train.py at 256x256, batch 1: the generator step (G_AB and G_BA
    on eq. 3 with the identity loss) and the discriminator step on pooled fakes. cfg["adam"]:
    "default" is torch.optim.Adam's (cyclegan/train.py's and the official code's), "fused" is
    common.device.adam (pix2pix's choice; for CycleGAN's convolution-bound step it made no measurable difference)."""
    from common.device import adam
    from cyclegan.model import build_discriminator, build_generator, default_blocks, init_weights
    from cyclegan.train import train_step
    from cyclegan.utils import ImagePool

    options = {"ngf": 64, "ndf": 64, "n_blocks": default_blocks(cfg["size"]), "channels": 3}
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G_AB, G_BA = (build_generator(options).apply(init_weights).to(device, memory_format=fmt) for _ in range(2))
    D_A, D_B = (build_discriminator(options).apply(init_weights).to(device, memory_format=fmt) for _ in range(2))
    make = adam if cfg.get("adam", "default") == "fused" else (lambda ps, lr, betas: torch.optim.Adam(ps, lr, betas))
    opt_g = make([*G_AB.parameters(), *G_BA.parameters()], lr=2e-4, betas=(0.5, 0.999))
    opt_d = make([*D_A.parameters(), *D_B.parameters()], lr=2e-4, betas=(0.5, 0.999))
    pool_a, pool_b = ImagePool(50), ImagePool(50)
    a, b = ((torch.rand(cfg["batch"], 3, cfg["size"], cfg["size"], device=device) * 2 - 1).contiguous(memory_format=fmt)
            for _ in range(2))

    def step(prec):
        return train_step(G_AB, G_BA, D_A, D_B, opt_g, opt_d, a, b, prec, pool_a, pool_b)

    return step


def _sr_batch(cfg, device, fmt, hr_signed: bool):
    """A batch of random (LR in [0, 1], HR) crops of cfg["size"] at x4."""
    lr = torch.rand(cfg["batch"], 3, cfg["size"] // 4, cfg["size"] // 4, device=device).contiguous(memory_format=fmt)
    hr = torch.rand(cfg["batch"], 3, cfg["size"], cfg["size"], device=device)
    return lr, (hr * 2 - 1 if hr_signed else hr).contiguous(memory_format=fmt)


def build_srgan(cfg, channels_last, device):
    """One iteration of srgan/train.py, batch 16: stage "psnr" (SRResNet on MSE) or "gan" (D on
    eq. 2, then G on VGG54 + 1e-3 adversarial; the VGG19 has random weights here: speed only)."""
    from common.device import adam
    from common.vgg import vgg19_features
    from srgan.model import Discriminator, SRResNet
    from srgan.train import gan_step, psnr_step, vgg_content_loss

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G = SRResNet(3, 64, 16, 4).to(device, memory_format=fmt)
    opt_g = adam(G.parameters(), lr=1e-4, betas=(0.9, 0.999))
    lr, hr = _sr_batch(cfg, device, fmt, hr_signed=True)
    if cfg["stage"] == "psnr":
        return lambda prec: psnr_step(G, opt_g, lr, hr, prec)
    D = Discriminator(3, 64, cfg["size"]).to(device, memory_format=fmt)
    opt_d = adam(D.parameters(), lr=1e-4, betas=(0.9, 0.999))
    vgg = vgg19_features("relu5_4", random_init=True).to(device, memory_format=fmt)
    return lambda prec: gan_step(G, D, opt_g, opt_d, lr, hr, prec, lambda a, b: vgg_content_loss(vgg, a, b))


def build_esrgan(cfg, channels_last, device):
    """One iteration of esrgan/train.py with the paper's RRDBNet (nb 23), batch 16: stage "psnr"
    (L1) or "gan" (G on L_percep + 5e-3 L_G^Ra + 1e-2 L1, then D on L_D^Ra; random VGG weights)."""
    from common.device import adam
    from common.vgg import vgg19_features
    from esrgan.model import build_discriminator, build_generator
    from esrgan.train import PERCEPTUAL_LAYER, gan_step, perceptual_loss, psnr_step

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G = build_generator({}).to(device, memory_format=fmt)
    opt_g = adam(G.parameters(), lr=2e-4, betas=(0.9, 0.999))
    lr, hr = _sr_batch(cfg, device, fmt, hr_signed=False)
    if cfg["stage"] == "psnr":
        return lambda prec: psnr_step(G, opt_g, lr, hr, prec)
    D = build_discriminator({}).to(device, memory_format=fmt)
    opt_d = adam(D.parameters(), lr=1e-4, betas=(0.9, 0.999))
    vgg = vgg19_features(PERCEPTUAL_LAYER, random_init=True, input_range=(0.0, 1.0)).to(device, memory_format=fmt)
    return lambda prec: gan_step(G, D, opt_g, opt_d, lr, hr, prec, lambda a, b: perceptual_loss(vgg, a, b),
                                 (1.0, 5e-3, 1e-2))


def build_lapgan(cfg, channels_last, device):
    """One step of lapgan/train.py at one pyramid level (cfg["level"], 0 = finest) or, with level None,
    at every level: D_k then G_k on that level's band-pass (or low-pass) images, SGD as in Sec. 4."""
    from lapgan.model import LAPGANDiscriminator, LAPGANGenerator, init_weights
    from lapgan.train import level_step
    from lapgan.utils import check_pyramid, training_pairs

    sizes = check_pyramid(cfg["size"], cfg["levels"])
    G, D = LAPGANGenerator(cfg["levels"], cfg["size"], 3), LAPGANDiscriminator(cfg["levels"], cfg["size"], 3)
    init_weights(G, D)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G, D = G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)
    real = (torch.rand(cfg["batch"], 3, cfg["size"], cfg["size"], device=device) * 2 - 1).contiguous(memory_format=fmt)
    pairs = training_pairs(real, cfg["levels"])
    levels = [cfg["level"]] if cfg["level"] is not None else list(range(cfg["levels"]))
    opts = {k: (torch.optim.SGD(G.levels[k].parameters(), 0.02, momentum=0.5),
                torch.optim.SGD(D.levels[k].parameters(), 0.02, momentum=0.5)) for k in levels}

    def noise(k):
        shape = (100,) if k == cfg["levels"] - 1 else (1, sizes[k], sizes[k])
        return torch.rand(cfg["batch"], *shape, device=device) * 2 - 1

    def step(prec):
        losses = {}
        for k in levels:
            out = level_step(G.levels[k], D.levels[k], *opts[k], *pairs[k], noise(k), noise(k), prec)
            losses.update({f"{name}_{k}": v for name, v in out.items()})
        return losses

    return step


def build_progan(cfg, channels_last, device):
    """One step of progan/train.py at resolution cfg["size"], mid-fade (alpha 0.5: both paths of G
    and D run, the dearest stage of a resolution): D on WGAN-GP + drift, then G, then the EMA;
    Table 2's widths unless cfg["fmap_base"] / cfg["fmap_max"] say otherwise."""
    from common.ema import EMA
    from progan.model import Discriminator, Generator
    from progan.train import discriminator_step, generator_step

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    base, top = cfg.get("fmap_base", 8192), cfg.get("fmap_max", 512)
    G = Generator(cfg["size"], 512, 3, base, top).to(device, memory_format=fmt)
    D = Discriminator(cfg["size"], 3, base, top).to(device, memory_format=fmt)
    ema = EMA(G, 0.999)
    for model in (G, D, ema.module):
        model.set_stage(cfg["size"], 0.5 if cfg["size"] > 4 else 1.0)
    opt_g = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.0, 0.99), eps=1e-8)
    real = (torch.rand(cfg["batch"], 3, cfg["size"], cfg["size"], device=device) * 2 - 1).contiguous(memory_format=fmt)

    def step(prec):
        z = torch.randn(cfg["batch"], 512, device=device)
        losses = discriminator_step(G, D, opt_d, real, z, prec, 10.0, 1e-3)
        losses.update(generator_step(G, D, opt_g, torch.randn(cfg["batch"], 512, device=device), prec))
        ema.update(G)
        return losses

    return step


def build_pix2pixhd(cfg, channels_last, device):
    """One iteration of pix2pixhd/train.py (G step: LSGAN over num_D scales + lambda 10 x (feature
    matching + VGG19 perceptual loss); D step) at cfg's height x width, batch 1. The VGG19 is
    randomly initialised (same compute as ImageNet weights, which the benchmark does not need)."""
    from common.device import adam
    from common.vgg import vgg19_features
    from pix2pixhd.model import encode_input
    from pix2pixhd.model import build_discriminator, build_encoder, build_generator
    from pix2pixhd.train import train_step

    options = {"label_nc": cfg.get("label_nc", 35), "no_instance": False, "ngf": cfg.get("ngf", 64),
               "n_local_enhancers": cfg.get("local", 0), "n_blocks_global": cfg.get("blocks", 9),
               "instance_feat": cfg.get("feat", False), "num_D": 3}
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G = build_generator(options).to(device, memory_format=fmt)
    D = build_discriminator(options).to(device, memory_format=fmt)
    E = build_encoder(options)
    E = E.to(device, memory_format=fmt) if E is not None else None
    vgg = vgg19_features("relu5_1", random_init=True).to(device) if cfg.get("vgg", True) else None
    opt_g = adam([*G.parameters(), *(E.parameters() if E is not None else [])], lr=2e-4, betas=(0.5, 0.999))
    opt_d = adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    h, w = cfg["size"]
    g = torch.Generator().manual_seed(0)
    label = torch.randint(options["label_nc"], (cfg["batch"], h // 8, w // 8), generator=g)
    label = label.repeat_interleave(8, 1).repeat_interleave(8, 2)  # blocks, so the boundary map is sparse
    inst = label * 1000 + 1
    label_map = encode_input(label, inst, options["label_nc"], True).to(device).contiguous(memory_format=fmt)
    real = (torch.rand(cfg["batch"], 3, h, w, generator=g) * 2 - 1).to(device).contiguous(memory_format=fmt)
    inst = inst.to(device)

    def step(prec):
        return train_step(G, D, E, opt_g, opt_d, label_map, inst, real, prec, vgg=vgg)

    return step


CONFIGS = {  # name: (builder, config, description)
    "dcgan": (build_dcgan, {"size": 64, "ngf": 128, "batch": 128}, "64x64x3, ngf=ndf=128 (paper), batch 128"),
    "dcgan-demo": (build_dcgan, {"size": 32, "ngf": 32, "batch": 128}, "32x32x3, ngf=ndf=32 (demo), batch 128"),
    "simple_gan": (build_simple_gan, {"arch": "paper", "batch": 100},
                   "--arch paper: 28x28x1, ReLU 1200x2 G, maxout 240x5 x2 D with dropout, batch 100"),
    "simple_gan-seed": (build_simple_gan, {"arch": "seed", "batch": 32}, "--arch seed: 28x28x1 MLP, batch 32"),
    "wgan": (build_wgan, {"size": 64, "ngf": 64, "batch": 64},
             "64x64x3, ngf=ndf=64 (authors' code), batch 64, 5 critic steps per generator step"),
    "wgan-demo": (build_wgan, {"size": 32, "ngf": 32, "batch": 64}, "32x32x3, ngf=ndf=32 (demo), batch 64, n_critic 5"),
    "wgan_gp": (build_wgan_gp, {"size": 64, "ngf": 64, "batch": 64},
                "64x64x3, ngf=ndf=64, layer norm, batch 64, 5 penalised critic steps per generator step"),
    "wgan_gp-demo": (build_wgan_gp, {"size": 32, "ngf": 32, "batch": 64},
                     "32x32x3, ngf=ndf=32 (demo), batch 64, n_critic 5"),
    "cgan": (build_cgan, {"arch": "conv", "size": 64, "ngf": 16, "batch": 64},
             "conv (seed): 64x64x1, ngf=ndf=16, batch 64, 5 penalised critic steps per generator step"),
    "cgan-demo": (build_cgan, {"arch": "conv", "size": 32, "ngf": 16, "batch": 64},
                  "conv (seed): 32x32x1, ngf=ndf=16, batch 64, n_critic 5"),
    "cgan-mlp": (build_cgan, {"arch": "mlp", "size": 28, "batch": 100},
                 "mlp (Sec. 4.1): 28x28x1, maxout D, dropout 0.5, batch 100, k = 1"),
    "pix2pix": (build_pix2pix, {"size": 256, "batch": 1}, "256x256, U-Net G + 70x70 PatchGAN (paper), batch 1"),
    "pix2pix-plain-adam": (build_pix2pix, {"size": 256, "batch": 1, "adam": "default"},
                           "the same with torch.optim.Adam's default (multi-tensor) update, as the official code"),
    "pix2pix-pixel": (build_pix2pix, {"size": 256, "batch": 1, "netD": "pixel"}, "256x256, U-Net + 1x1 PixelGAN"),
    "pix2pix-image": (build_pix2pix, {"size": 256, "batch": 1, "netD": "image"}, "256x256, U-Net + 286x286 ImageGAN"),
    "cyclegan": (build_cyclegan, {"size": 256, "batch": 1},
                 "256x256, two 9-block ResNet G + two 70x70 PatchGAN (paper), identity loss, batch 1"),
    "cyclegan-fused-adam": (build_cyclegan, {"size": 256, "batch": 1, "adam": "fused"},
                            "the same with common.device.adam's fused update (pix2pix's choice)"),
    "srgan-psnr-96": (build_srgan, {"size": 96, "batch": 16, "stage": "psnr"}, "96x96 HR, SRResNet on MSE, batch 16"),
    "srgan-psnr-128": (build_srgan, {"size": 128, "batch": 16, "stage": "psnr"}, "128x128 HR, SRResNet on MSE, batch 16"),
    "srgan-gan-96": (build_srgan, {"size": 96, "batch": 16, "stage": "gan"},
                     "96x96 HR (paper), SRGAN: D + G with VGG54, batch 16"),
    "srgan-gan-128": (build_srgan, {"size": 128, "batch": 16, "stage": "gan"},
                      "128x128 HR, SRGAN: D + G with VGG54, batch 16"),
    "esrgan-psnr-96": (build_esrgan, {"size": 96, "batch": 16, "stage": "psnr"}, "96x96 HR, RRDBNet (23 blocks) on L1, batch 16"),
    "esrgan-psnr-128": (build_esrgan, {"size": 128, "batch": 16, "stage": "psnr"},
                        "128x128 HR (paper), RRDBNet (23 blocks) on L1, batch 16"),
    "esrgan-gan-128": (build_esrgan, {"size": 128, "batch": 16, "stage": "gan"},
                       "128x128 HR (paper), ESRGAN: G + RaGAN D with VGG conv5_4, batch 16"),
    "progan-16": (build_progan, {"size": 16, "batch": 16}, "16x16 fading in, Table 2 widths (512), batch 16"),
    "progan-64": (build_progan, {"size": 64, "batch": 16}, "64x64 fading in, Table 2 widths, batch 16"),
    "progan-256": (build_progan, {"size": 256, "batch": 14}, "256x256 fading in, Table 2 widths, batch 14"),
    "progan-1024": (build_progan, {"size": 1024, "batch": 3}, "1024x1024 fading in, Table 2 (23.1M each), batch 3"),
    "progan-64-cpu": (build_progan, {"size": 64, "batch": 16, "fmap_base": 1024, "fmap_max": 128},
                      "64x64 fading in, the CPU quality run's widths (fmap_base 1024, max 128), batch 16"),
    "lapgan-32": (build_lapgan, {"size": 32, "levels": 3, "level": 0, "batch": 64},
                  "level 0 (16 -> 32): conv G_0 (ngf 64) + conv D_0 (ndf 64), Sec. 4 / authors' code, batch 64"),
    "lapgan-16": (build_lapgan, {"size": 32, "levels": 3, "level": 1, "batch": 64},
                  "level 1 (8 -> 16): conv G_1 (ngf 64) + conv D_1 (ndf 64), batch 64"),
    "lapgan-8": (build_lapgan, {"size": 32, "levels": 3, "level": 2, "batch": 64},
                 "level 2 (8x8): fully connected G_2 (1200) + D_2 (600), Sec. 4, batch 64"),
    "pix2pixhd-512": (build_pix2pixhd, {"size": (256, 512), "batch": 1},
                      "512x256, global G1 (ngf 64, 9 blocks) + 3 D, FM + VGG loss, 35 labels + instance map, batch 1"),
    "pix2pixhd-1024": (build_pix2pixhd, {"size": (512, 1024), "local": 1, "ngf": 32, "batch": 1},
                       "1024x512, G1 + local enhancer (ngf 32) + 3 D, FM + VGG loss, batch 1"),
    "pix2pixhd-cpu": (build_pix2pixhd, {"size": (128, 256), "label_nc": 8, "ngf": 16, "feat": True, "vgg": False,
                                        "batch": 1},
                      "256x128 scenes, the CPU quality runs' G1 (ngf 16, 9 blocks) + E + 3 D, FM, no VGG, batch 1"),
    "lapgan": (build_lapgan, {"size": 32, "levels": 3, "level": None, "batch": 64},
               "all three levels, one step each (a train.py step), batch 64"),
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class StepTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise StepTimeout


def measure_bounded(name, mode, device, warmup, min_time, max_steps, timeout):
    """measure(), but give up after `timeout` seconds: returns (None, upper bound on img/s, 0)."""
    import signal

    if not timeout or not hasattr(signal, "SIGALRM"):
        return measure(name, mode, device, warmup, min_time, max_steps)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(timeout))
    try:
        return measure(name, mode, device, warmup, min_time, max_steps)
    except StepTimeout:
        return None, CONFIGS[name][1]["batch"] / timeout, 0
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def peak_memory_mib(device) -> float:
    """CUDA: the most memory torch allocated since the last reset (per mode); CPU: the process's
    peak resident set so far (cumulative over the rows of one run: run one model and mode per
    process to read it for that configuration)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(name, mode, device, warmup, min_time, max_steps):
    builder, cfg, _ = CONFIGS[name]
    precision, channels_last = MODES[mode]
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step = builder(cfg, channels_last, device)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prec = Precision(precision, device)
    for _ in range(warmup):
        step(prec)
    sync(device)
    n, start = 0, time.perf_counter()
    while n < max_steps and (n == 0 or time.perf_counter() - start < min_time):
        losses = step(prec)
        n += 1
    sync(device)
    seconds = (time.perf_counter() - start) / n
    assert all(torch.isfinite(v) for v in losses.values()), f"{name} {mode}: non-finite loss"
    PEAK[(name, mode, device.type)] = peak_memory_mib(device)
    return seconds, cfg["batch"] / seconds, n


PEAK: dict = {}  # (model, mode, device type) -> peak memory in MiB (peak_memory_mib)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(CONFIGS), help="comma list of " + ",".join(CONFIGS) + " (default all)")
    p.add_argument("--modes", default=None, help="comma list of " + ",".join(MODES) + " (default: all that apply)")
    p.add_argument("--devices", default=None, help="comma list, e.g. cpu,cuda (default: cpu, and cuda if present)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per mode (default 1)")
    p.add_argument("--min-time", type=float, default=20.0, help="time each mode at least this long (s, default 20)")
    p.add_argument("--max-steps", type=int, default=20, help="at most this many timed steps per mode (default 20)")
    p.add_argument("--timeout", type=float, default=600,
                   help="give up on a mode after this many seconds and report it as slower (default 600)")
    opt = p.parse_args()

    devices = opt.devices.split(",") if opt.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}; CPU: {cpu_name()}, {torch.get_num_threads()} threads, "
          f"capability {torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_has_fast_bf16()}")
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name()}")
    rows = []
    for device_name in devices:
        device = torch.device(device_name)
        modes = opt.modes.split(",") if opt.modes else [m for m in MODES if m != "fp16-cl" or device.type == "cuda"]
        for name in opt.models.split(","):
            base = None
            for mode in modes:
                seconds, ips, n = measure_bounded(name, mode, device, opt.warmup, opt.min_time, opt.max_steps,
                                                  opt.timeout)
                base = ips if mode == "fp32" else base
                if seconds is None:  # timed out: only bounds are known
                    s_txt, ips_txt, ratio = f"> {opt.timeout:.0f}", f"< {ips:.2f}", f"< {ips / base:.2f}x" if base else "-"
                else:
                    s_txt, ips_txt, ratio = f"{seconds:.3f}", f"{ips:.1f}", f"{ips / base:.2f}x" if base else "-"
                peak = PEAK.get((name, mode, device.type))
                peak_txt = "-" if peak is None or seconds is None else f"{peak:,.0f}"
                rows.append((name, CONFIGS[name][2], device_name, mode, s_txt, ips_txt, ratio, n, peak_txt))
                print(f"  {name:11s} {device_name:4s} {mode:8s} {s_txt:>8s} s/step {ips_txt:>9s} img/s {ratio:>7s} "
                      f"({n} steps, peak {peak_txt} MiB)", flush=True)
    print("\n| model | config | device | mode | s/step | images/s | vs fp32 NCHW | timed steps | peak MiB |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
