"""Sample from a trained simple GAN (Goodfellow et al. 2014).

    python generate.py --checkpoint runs/simple_gan-digits/checkpoints/last.pt
    python generate.py --checkpoint ... --n 100 --individual out/

G (model.build_generator: the checkpoint's --arch) on z from the run's prior (utils.latents:
uniform for --arch paper, N(0, I) for --arch seed); flags, loading and files: common/inference.py.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import torch

from common import inference
from common.device import pick_device
from common.errors import run_main
from .model import build_generator
from .utils import latents

MODEL_NAME = "simple_gan"


def parse_opt(argv=None):
    return inference.generate_parser(MODEL_NAME, "Generate images with a trained simple GAN.").parse_args(argv)


@torch.no_grad()
def main(opt) -> Path:
    device = pick_device(opt.device)
    G, options = inference.load_generator(opt.checkpoint, MODEL_NAME, build_generator, device)
    z = latents(options, opt.n, torch.Generator().manual_seed(opt.seed))  # --seed decides the samples
    return inference.write_images(inference.in_batches(G, z, device), opt)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
