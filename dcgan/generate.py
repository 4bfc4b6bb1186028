"""Sample from a trained DCGAN.

    python generate.py --checkpoint runs/dcgan-digits/checkpoints/last.pt            # 8x8 grid
    python generate.py --checkpoint ... --n 100 --individual out/                     # + one PNG each
    python generate.py --checkpoint ... --interpolate --rows 8 --steps 10             # Sec. 6.1 walk

G runs in eval mode (BatchNorm running statistics), so a sample does not
depend on the batch it is drawn with. A generator trained with
--virtual-batch-norm (Salimans et al. 2016, Sec. 3.5) is rebuilt with its
reference batch from the checkpoint and normalises each sample with it, which is
batch-independent too. With an EMA in the checkpoint, the EMA weights are used
unless --no-ema.
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
from common.errors import run_main
from .model import Generator, build_generator
from .utils import interpolate_z, latents

MODEL_NAME = "dcgan"


def parse_opt(argv=None):
    p = inference.generate_parser(MODEL_NAME, "Generate images with a trained DCGAN.", ema=True)
    p.add_argument("--interpolate", action="store_true",
                   help="latent walk: each row goes in a straight line between two random z (Sec. 6.1, Fig. 4)")
    p.add_argument("--rows", type=positive_int, default=8, help="rows of the interpolation grid (default 8)")
    p.add_argument("--steps", type=positive_int, default=10, help="images per interpolation row (default 10)")
    return p.parse_args(argv)


def load_generator(path, device, use_ema: bool = True, payload: dict | None = None) -> tuple[Generator, dict]:
    """G rebuilt from the checkpoint's options (build_generator: a VBNGenerator for
    --virtual-batch-norm runs, whose reference batch is a buffer and comes back with the weights)."""
    return inference.load_generator(path, MODEL_NAME, build_generator, device, payload=payload, use_ema=use_ema)


def latent_walks(options: dict, rows: int, steps: int, generator: torch.Generator) -> torch.Tensor:
    """Sec. 6.1: `rows` straight lines of `steps` points, each between two random z."""
    ends = latents(options, 2 * rows, generator)
    return torch.cat([interpolate_z(ends[2 * r], ends[2 * r + 1], steps) for r in range(rows)])


@torch.no_grad()
def main(opt) -> Path:
    device = pick_device(opt.device)
    G, options = load_generator(opt.checkpoint, device, use_ema=not opt.no_ema)
    rng = torch.Generator().manual_seed(opt.seed)
    if opt.interpolate:
        z = latent_walks(options, opt.rows, opt.steps, rng)
        return inference.write_images(inference.in_batches(G, z, device), opt, nrow=opt.steps, note="a walk per row")
    return inference.write_images(inference.in_batches(G, latents(options, opt.n, rng), device), opt)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
