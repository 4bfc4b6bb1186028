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
from .model import Generator, build_generator
from .utils import interpolate_z, latents

MODEL_NAME = "dcgan"


def add_args(p) -> None:
    p.add_argument("--interpolate", action="store_true",
                   help="latent walk: each row goes in a straight line between two random z (Sec. 6.1, Fig. 4)")
    p.add_argument("--rows", type=positive_int, default=8, help="rows of the interpolation grid (default 8)")
    p.add_argument("--steps", type=positive_int, default=10, help="images per interpolation row (default 10)")


def draw(G, o: dict, opt, device) -> inference.Samples:
    """--n samples of the prior, or --rows walks of --steps images each (Sec. 6.1)."""
    gen = torch.Generator().manual_seed(opt.seed)
    if not opt.interpolate:
        return inference.Samples(inference.in_batches(G, latents(o, opt.n, gen), device))
    ends = latents(o, 2 * opt.rows, gen)
    z = torch.cat([interpolate_z(ends[2 * r], ends[2 * r + 1], opt.steps) for r in range(opt.rows)])
    return inference.Samples(inference.in_batches(G, z, device), nrow=opt.steps, note="a walk per row")


def load_generator(path, device, use_ema: bool = True, payload: dict | None = None) -> tuple[Generator, dict]:
    """G rebuilt from the checkpoint's options (build_generator: a VBNGenerator for
    --virtual-batch-norm runs, whose reference batch is a buffer and comes back with the weights)."""
    return inference.load_generator(path, MODEL_NAME, build_generator, device, payload=payload, use_ema=use_ema)


parse_opt, main = inference.generate_script(MODEL_NAME, "Generate images with a trained DCGAN.", build_generator,
                                            draw, add_args=add_args, ema=True)

if __name__ == "__main__":
    inference.run_script(parse_opt, main)
