"""Sample from a trained WGAN-GP.

    python generate.py --checkpoint runs/wgan_gp-digits/checkpoints/last.pt            # 8x8 grid
    python generate.py --checkpoint ... --n 100 --individual out/                    # + one PNG each

G runs in eval mode (BatchNorm running statistics), so a sample does not depend
on the batch it is drawn with. The critic is not needed to sample.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: `cd wgan_gp && python generate.py` works

import argparse
import math

import torch

from common.checkpoint import load_for_inference, load_state_checked
from common.cli import positive_int
from common.device import pick_device
from common.errors import CheckpointError, run_main
from common.run import save_grid
from wgan_gp.model import Generator
from wgan_gp.utils import sample_z

MODEL_NAME = "wgan_gp"


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Generate images with a trained WGAN-GP.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by wgan_gp/train.py")
    p.add_argument("--n", type=positive_int, default=64, help="number of samples (default 64)")
    p.add_argument("--out", default="samples.png", help="grid PNG to write (default samples.png)")
    p.add_argument("--individual", default=None, metavar="DIR", help="also write each image as DIR/00000.png ...")
    p.add_argument("--seed", type=int, default=0, help="random seed for z (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    return p.parse_args(argv)


def load_generator(path, device, payload: dict | None = None) -> tuple[Generator, dict]:
    """Rebuild G from the options stored in the checkpoint and load its weights
    (`payload`: the checkpoint already loaded by load_for_inference, to read it once)."""
    payload = payload or load_for_inference(path, MODEL_NAME)
    o = payload["options"]
    try:
        G = Generator(o["nz"], o["ngf"], o["channels"], o["image_size"])
    except KeyError as exc:
        raise CheckpointError(f"{path}: options lack {exc}, needed to rebuild the generator") from exc
    load_state_checked(G, payload["models"]["G"], what="G", path=path)
    return G.to(device).eval(), o


@torch.no_grad()
def main(opt) -> Path:
    device = pick_device(opt.device)
    G, o = load_generator(opt.checkpoint, device)
    z = sample_z(opt.n, o["nz"], o.get("z_dist", "normal"), generator=torch.Generator().manual_seed(opt.seed))
    images = torch.cat([G(chunk.to(device)).float().cpu() for chunk in z.split(256)])
    out = save_grid(images, opt.out, nrow=max(1, int(math.sqrt(opt.n))))
    print(f"wrote {out} ({images.shape[0]} images, {images.shape[-1]}x{images.shape[-1]})")
    if opt.individual:
        folder = Path(opt.individual)
        for i, image in enumerate(images):
            save_grid(image.unsqueeze(0), folder / f"{i:05d}.png", nrow=1)
        print(f"wrote {images.shape[0]} images to {folder}/")
    return out


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
