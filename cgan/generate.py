"""Sample from a trained conditional GAN.

    python generate.py --checkpoint runs/cgan-digits/checkpoints/last.pt               # 10x10 grid, row k = class k
    python generate.py --checkpoint ... --label 7 --n 64                               # 64 sevens
    python generate.py --checkpoint ... --label 3 --n 100 --individual out/            # + one PNG each

In the class grid (Fig. 2 of the paper) each column shares one z, so along a column
only the label changes. G runs in eval mode (BatchNorm running statistics), so a
sample does not depend on the batch it is drawn with; the MLP generator's dropout
stays on (it is part of its noise), its masks drawn from --seed like z.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: `cd cgan && python generate.py` works

import argparse

import torch

from common import inference
from common.cli import positive_int
from common.device import pick_device
from common.errors import UserError, run_main
from cgan.model import build_models
from cgan.utils import class_grid_labels, class_grid_z, generate, sample_z

MODEL_NAME = "cgan"


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Generate images with a trained conditional GAN.")
    inference.add_generate_args(p, model=MODEL_NAME, n_help="number of samples with --label")
    p.add_argument("--label", type=int, default=None,
                   help="draw --n samples of this class (default: the class grid, one row per class)")
    p.add_argument("--per-class", type=positive_int, default=10,
                   help="columns of the class grid: samples per class (default 10)")
    return p.parse_args(argv)


def load_generator(path, device, payload: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """G rebuilt from the options stored in the checkpoint (either --arch), with its weights."""
    return inference.load_generator(path, MODEL_NAME, lambda o: build_models(o)[0], device, payload=payload)


def requested(opt, o: dict) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(z, labels, images per grid row) for --label k or for the class grid."""
    gen = torch.Generator().manual_seed(opt.seed)
    classes = o["num_classes"]
    if opt.label is None:
        z = class_grid_z(classes, opt.per_class, o["nz"], o["z_dist"], gen)
        return z, class_grid_labels(classes, opt.per_class), opt.per_class
    if not 0 <= opt.label < classes:
        raise UserError(f"--label {opt.label}: this model knows classes 0..{classes - 1}")
    z = sample_z(opt.n, o["nz"], o["z_dist"], generator=gen)
    return z, torch.full((opt.n,), opt.label, dtype=torch.long), inference.square_columns(opt.n)


def main(opt) -> Path:
    device = pick_device(opt.device)
    G, o = load_generator(opt.checkpoint, device)
    z, labels, nrow = requested(opt, o)
    images = generate(G, z, labels, device, seed=opt.seed)
    what = f"class {opt.label}" if opt.label is not None else f"row k = class k, {o['num_classes']} classes"
    names = [f"{i:05d}_class{label}.png" for i, label in enumerate(labels.tolist())]
    return inference.write_images(images, opt, nrow=nrow, names=names, note=what)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
