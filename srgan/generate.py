"""Upscale images with a trained SRResNet / SRGAN generator.

    python generate.py --checkpoint runs/srgan-photos/checkpoints/last.pt --input photo.png --out photo_x4.png
    python generate.py --checkpoint ... --input photos/ --out upscaled/        # a folder, any sizes

G runs in eval mode. An input larger than --tile pixels (LR) on a side is upscaled tile by
tile, each tile with --tile-overlap pixels of real context on every side of the part that is
kept (utils.upscale_tiled): memory stays bounded and, with an overlap at least
G's reach (about 40 LR pixels for B = 16 blocks), the result is the untiled one, without seams.
Grey, RGBA and 16-bit files are converted to RGB first (and said so).
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

from common import inference
from common.cli import positive_int
from common.device import pick_device
from common.errors import run_main
from .model import build_generator
from .utils import MODEL_NAME, upscale_files


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Upscale images with a trained SRResNet / SRGAN.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by srgan/train.py (either stage)")
    p.add_argument("--input", required=True, metavar="FILE|DIR", help="an image or a folder of images (LR)")
    p.add_argument("--out", default=None,
                   help="output file (one input) or folder (default: <name>_x<scale>.png beside one file, "
                        "upscaled/ for a folder)")
    p.add_argument("--tile", type=positive_int, default=192, help="largest LR tile side (default 192)")
    p.add_argument("--tile-overlap", type=int, default=48,
                   help="LR pixels of context around each tile's kept part (default 48, more than G's reach)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    return p.parse_args(argv)


def main(opt) -> Path:
    device = pick_device(opt.device)
    G, options = inference.load_generator(opt.checkpoint, MODEL_NAME, build_generator, device)
    return upscale_files(G, options["scale"], opt, device)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
