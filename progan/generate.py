"""Sample from a trained ProGAN at the stage its checkpoint reached.

    python generate.py --checkpoint runs/progan-photos/checkpoints/last.pt             # 8x8 grid
    python generate.py --checkpoint ... --n 100 --individual out/                       # + one PNG each
    python generate.py --checkpoint ... --interpolate --rows 4 --steps 8                # latent walks

The moving average of G (decay 0.999) draws the samples, as in the paper's figures, unless
--no-ema. The resolution and fade-in alpha are those of the checkpoint: a run stopped at
32x32 while 64x64 was fading in samples at 64x64 with that alpha.
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
from .model import build_generator
from .utils import latents

MODEL_NAME = "progan"


def parse_opt(argv=None):
    p = inference.generate_parser(MODEL_NAME, "Generate images with a trained ProGAN.", ema=True)
    p.add_argument("--interpolate", action="store_true",
                   help="latent walks: each row moves along a great circle between two random z, the path the "
                        "pixel-normalised latents live on (Appendix A.1)")
    p.add_argument("--rows", type=positive_int, default=4, help="rows of the interpolation grid (default 4)")
    p.add_argument("--steps", type=positive_int, default=8, help="images per interpolation row (default 8)")
    return p.parse_args(argv)


def slerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` points on the great circle from a to b (their directions; the lengths are
    interpolated linearly), since G only sees z / |z| (its first pixel norm)."""
    t = torch.linspace(0.0, 1.0, steps).unsqueeze(1)
    na, nb = a.norm(), b.norm()
    omega = torch.arccos(torch.clamp((a / na) @ (b / nb), -1.0, 1.0))
    if omega.abs() < 1e-6:
        return torch.lerp(a.unsqueeze(0), b.unsqueeze(0), t)
    direction = (torch.sin((1 - t) * omega) * a / na + torch.sin(t * omega) * b / nb) / torch.sin(omega)
    return direction * torch.lerp(na, nb, t)


@torch.no_grad()
def main(opt) -> Path:
    device = pick_device(opt.device)
    G, options = inference.load_generator(opt.checkpoint, MODEL_NAME, build_generator, device, use_ema=not opt.no_ema)
    stage = f"{G.resolution}x{G.resolution}" + (f", alpha {G.alpha:.2f}" if G.fading else "")
    rng = torch.Generator().manual_seed(opt.seed)
    if not opt.interpolate:
        return inference.write_images(inference.in_batches(G, latents(options, opt.n, rng), device), opt, note=stage)
    ends = latents(options, 2 * opt.rows, rng)
    z = torch.cat([slerp(ends[2 * r], ends[2 * r + 1], opt.steps) for r in range(opt.rows)])
    return inference.write_images(inference.in_batches(G, z, device), opt, nrow=opt.steps,
                                  note=f"{stage}; a walk per row")


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
