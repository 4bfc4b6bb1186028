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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: `cd dcgan && python generate.py` works

import argparse
import math

import torch

from common.checkpoint import load_for_inference, load_state_checked
from common.device import pick_device
from common.errors import CheckpointError, run_main
from common.run import save_grid
from dcgan.model import Generator, build_generator
from dcgan.utils import interpolate_z, sample_z

MODEL_NAME = "dcgan"


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Generate images with a trained DCGAN.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by dcgan/train.py")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--out", default="samples.png", help="grid PNG to write (default samples.png)")
    p.add_argument("--individual", default=None, metavar="DIR", help="also write each image as DIR/00000.png ...")
    p.add_argument("--interpolate", action="store_true",
                   help="latent walk: each row goes in a straight line between two random z (Sec. 6.1, Fig. 4)")
    p.add_argument("--rows", type=int, default=8, help="rows of the interpolation grid (default 8)")
    p.add_argument("--steps", type=int, default=10, help="images per interpolation row (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed for z (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    p.add_argument("--no-ema", action="store_true", help="use the raw G weights even if an EMA was saved")
    return p.parse_args(argv)


def load_generator(path, device, use_ema: bool = True, payload: dict | None = None) -> tuple[Generator, dict]:
    """Rebuild G from the options stored in the checkpoint and load its weights
    (`payload`: the checkpoint already loaded by load_for_inference, to read it once).
    A VBNGenerator's reference batch is a buffer, so it comes back with the weights."""
    payload = payload or load_for_inference(path, MODEL_NAME)
    o = payload["options"]
    try:
        G = build_generator(o)  # Generator, or VBNGenerator for --virtual-batch-norm runs
    except KeyError as exc:
        raise CheckpointError(f"{path}: options lack {exc}, needed to rebuild the generator") from exc
    state = payload["ema"]["module"] if use_ema and "ema" in payload else payload["models"]["G"]
    load_state_checked(G, state, what="G", path=path)
    return G.to(device).eval(), o


@torch.no_grad()
def main(opt) -> Path:
    device = pick_device(opt.device)
    G, o = load_generator(opt.checkpoint, device, use_ema=not opt.no_ema)
    gen = torch.Generator().manual_seed(opt.seed)
    if opt.interpolate:
        ends = sample_z(2 * opt.rows, o["nz"], o.get("z_dist", "uniform"), generator=gen)
        z = torch.cat([interpolate_z(ends[2 * r], ends[2 * r + 1], opt.steps) for r in range(opt.rows)])
        nrow = opt.steps
    else:
        z = sample_z(opt.n, o["nz"], o.get("z_dist", "uniform"), generator=gen)
        nrow = max(1, int(math.sqrt(opt.n)))
    images = torch.cat([G(chunk.to(device)).float().cpu() for chunk in z.split(256)])
    out = save_grid(images, opt.out, nrow=nrow)
    print(f"wrote {out} ({images.shape[0]} images, {images.shape[-1]}x{images.shape[-1]})")
    if opt.individual:
        folder = Path(opt.individual)
        for i, image in enumerate(images):
            save_grid(image.unsqueeze(0), folder / f"{i:05d}.png", nrow=1)
        print(f"wrote {images.shape[0]} images to {folder}/")
    return out


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
