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

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import torch

from common import inference
from common.cli import positive_int
from common.device import pick_device
from common.errors import UserError, run_main
from .model import build_generator
from .utils import class_grid_labels, class_grid_z, generate, sample_z

MODEL_NAME = "cgan"


def parse_opt(argv=None):
    p = inference.generate_parser(MODEL_NAME, "Generate images with a trained conditional GAN.",
                                  n_help="number of samples with --label")
    p.add_argument("--label", type=int, default=None,
                   help="draw --n samples of this class (default: the class grid, one row per class)")
    p.add_argument("--per-class", type=positive_int, default=10,
                   help="columns of the class grid: samples per class (default 10)")
    return p.parse_args(argv)


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


@torch.no_grad()
def main(opt) -> Path:
    """G(z | y) for the requested labels; single images are named by their class."""
    device = pick_device(opt.device)
    G, o = inference.load_generator(opt.checkpoint, MODEL_NAME, build_generator, device)
    z, labels, nrow = requested(opt, o)
    what = f"class {opt.label}" if opt.label is not None else f"row k = class k, {o['num_classes']} classes"
    return inference.write_images(generate(G, z, labels, device, seed=opt.seed), opt, nrow=nrow, note=what,
                                  names=[f"{i:05d}_class{label}.png" for i, label in enumerate(labels.tolist())])


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
