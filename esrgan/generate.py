"""Upscale images with a trained ESRGAN generator, or with a network interpolation (Sec. 3.4).

    python generate.py --checkpoint runs/esrgan-photos-gan/checkpoints/last.pt --input photo.png
    python generate.py --interp 0.8 --psnr-checkpoint psnr/last.pt --gan-checkpoint gan/last.pt --input photos/
    python generate.py --checkpoint RRDB_ESRGAN_x4.pth --input photo.png        # the released weights

Network interpolation blends the two generators parameter by parameter, theta = (1 - alpha)
theta_PSNR + alpha theta_GAN: alpha 0 is the PSNR-oriented model (smooth), 1 the GAN one (sharp,
with more artefacts); values between trade one for the other without retraining.
An input larger than --tile LR pixels on a side is upscaled tile by tile, each tile with
--tile-overlap pixels of real context around the part that is kept
(utils.upscale_tiled), so memory stays bounded. RRDBNet's receptive field is
hundreds of pixels wide in theory but its weights fall off fast: with the default overlap the
tiled and untiled images differ by far less than one grey level. Grey, RGBA and 16-bit files
are converted to RGB first (and said so).
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

from common.cli import positive_int
from common.device import pick_device
from common.errors import run_main
from .utils import load_generator, signed, upscale_files


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Upscale images with ESRGAN (or an interpolation of two ESRGANs).")
    p.add_argument("--checkpoint", default=None,
                   help="an esrgan checkpoint (either stage) or released RRDBNet weights (RRDB_ESRGAN_x4.pth)")
    p.add_argument("--interp", type=float, default=None, metavar="ALPHA",
                   help="network interpolation (Sec. 3.4): (1 - ALPHA) x --psnr-checkpoint + ALPHA x "
                        "--gan-checkpoint, ALPHA in [0, 1] (the paper shows 0.8)")
    p.add_argument("--psnr-checkpoint", default=None, help="with --interp: the PSNR-oriented model")
    p.add_argument("--gan-checkpoint", default=None, help="with --interp: the GAN model")
    p.add_argument("--input", required=True, metavar="FILE|DIR", help="an image or a folder of images (LR)")
    p.add_argument("--out", default=None,
                   help="output file (one input) or folder (default: <name>_x<scale>.png beside one file, "
                        "upscaled/ for a folder)")
    p.add_argument("--tile", type=positive_int, default=192, help="largest LR tile side (default 192)")
    p.add_argument("--tile-overlap", type=int, default=48,
                   help="LR pixels of context around each tile's kept part (default 48)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    opt = p.parse_args(argv)
    if opt.interp is None and not opt.checkpoint:
        p.error("give --checkpoint PATH, or --interp ALPHA with --psnr-checkpoint and --gan-checkpoint")
    if opt.interp is not None:
        if opt.checkpoint or not (opt.psnr_checkpoint and opt.gan_checkpoint):
            p.error("--interp blends --psnr-checkpoint and --gan-checkpoint (and takes no --checkpoint)")
        if not 0.0 <= opt.interp <= 1.0:
            p.error(f"--interp {opt.interp}: alpha must lie in [0, 1]")
    return opt


def main(opt) -> Path:
    device = pick_device(opt.device)
    G, options, info = load_generator(device, opt.checkpoint, psnr_checkpoint=opt.psnr_checkpoint,
                                      gan_checkpoint=opt.gan_checkpoint, interp=opt.interp)
    print(f"ESRGAN x{options['scale']}: {info['what']}")
    return upscale_files(signed(G), options["scale"], opt, device)  # G works in [0, 1], the writer takes [-1, 1]


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
