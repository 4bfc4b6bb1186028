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
import math

import torch

from common.checkpoint import load_for_inference, load_state_checked
from common.cli import positive_int
from common.device import pick_device
from common.errors import CheckpointError, UserError, run_main
from common.run import save_grid
from cgan.model import build_models
from cgan.utils import class_grid_labels, class_grid_z, generate, sample_z

MODEL_NAME = "cgan"


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Generate images with a trained conditional GAN.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by cgan/train.py")
    p.add_argument("--label", type=int, default=None,
                   help="draw --n samples of this class (default: the class grid, one row per class)")
    p.add_argument("--n", type=positive_int, default=64, help="number of samples with --label (default 64)")
    p.add_argument("--per-class", type=positive_int, default=10,
                   help="columns of the class grid: samples per class (default 10)")
    p.add_argument("--out", default="samples.png", help="grid PNG to write (default samples.png)")
    p.add_argument("--individual", default=None, metavar="DIR", help="also write each image as DIR/00000.png ...")
    p.add_argument("--seed", type=int, default=0, help="random seed for z (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    return p.parse_args(argv)


def load_generator(path, device, payload: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """Rebuild G from the options stored in the checkpoint and load its weights
    (`payload`: the checkpoint already loaded by load_for_inference, to read it once)."""
    payload = payload or load_for_inference(path, MODEL_NAME)
    o = payload["options"]
    try:
        G, _ = build_models(o)
    except KeyError as exc:
        raise CheckpointError(f"{path}: options lack {exc}, needed to rebuild the generator") from exc
    load_state_checked(G, payload["models"]["G"], what="G", path=path)
    return G.to(device).eval(), o


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
    return z, torch.full((opt.n,), opt.label, dtype=torch.long), max(1, int(math.sqrt(opt.n)))


def main(opt) -> Path:
    device = pick_device(opt.device)
    G, o = load_generator(opt.checkpoint, device)
    z, labels, nrow = requested(opt, o)
    images = generate(G, z, labels, device, seed=opt.seed)
    out = save_grid(images, opt.out, nrow=nrow)
    what = f"class {opt.label}" if opt.label is not None else f"row k = class k, {o['num_classes']} classes"
    print(f"wrote {out} ({images.shape[0]} images, {images.shape[-1]}x{images.shape[-1]}; {what})")
    if opt.individual:
        folder = Path(opt.individual)
        for i, (image, label) in enumerate(zip(images, labels.tolist())):
            save_grid(image.unsqueeze(0), folder / f"{i:05d}_class{label}.png", nrow=1)
        print(f"wrote {images.shape[0]} images to {folder}/")
    return out


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
