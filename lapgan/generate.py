"""Sample from a trained LAPGAN, coarse to fine (Sec. 3, Fig. 1).

    python generate.py --checkpoint runs/lapgan-photos/checkpoints/last.pt              # 8x8 grid of 32x32 samples
    python generate.py --checkpoint ... --every-level levels/                           # + each level's images
    python generate.py --checkpoint ... --coarse photo.png --n 16 --every-level lv/     # from a given coarse image
    python generate.py --checkpoint ... --coarse photo.png --start-size 16              # start one level finer
    python generate.py --checkpoint ... --label 3                                       # class-conditional runs

With --coarse, the image is resized to the finest size, reduced by the pyramid's d(.) to
--start-size (default: the coarsest level), and every sample refines that same image with its
own noise: the samples differ only in what the finer levels add (the paper's conditional-sampling figure).
--every-level DIR writes DIR/level_08.png, level_16.png, ... (each level's images at their own
size, the same samples in the same places) and DIR/pyramid.png (one row per sample, one column
per level, all shown at the finest size). Every network runs in eval mode (D's dropout is not
used; the generators have none), so a sample does not depend on its batch.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import torch
import torch.nn.functional as F

from common import inference
from common.cli import positive_int
from common.data import load_image
from common.device import pick_device
from common.errors import UserError, run_main
from common.run import save_grid
from .model import LAPGANGenerator, build_generator
from .utils import gaussian_pyramid, latents

MODEL_NAME = "lapgan"


def parse_opt(argv=None):
    p = inference.generate_parser(MODEL_NAME, "Generate images with a trained LAPGAN, coarse to fine.")
    p.add_argument("--coarse", default=None, metavar="IMAGE",
                   help="start the cascade from this image's pyramid level instead of G_K's samples "
                        "(the paper's conditional sampling)")
    p.add_argument("--start-size", type=positive_int, default=None,
                   help="with --coarse: the level to start at, by its size (default: the coarsest level)")
    p.add_argument("--every-level", default=None, metavar="DIR",
                   help="also write each level's images (DIR/level_<size>.png) and DIR/pyramid.png")
    p.add_argument("--label", type=int, default=None,
                   help="class-conditional runs: every sample of this class (default: a random class each)")
    return p.parse_args(argv)


def start_image(path: str, size: int, image_size: int, channels: int) -> torch.Tensor:
    """I_k of the image at `path`: resized (and centre-cropped) to the finest size, in [-1, 1],
    then reduced by the pyramid's d(.) to `size`; shape (1, C, size, size)."""
    from torchvision.transforms.functional import center_crop, pil_to_tensor, resize

    im = load_image(path, channels)
    x = pil_to_tensor(center_crop(resize(im, image_size, antialias=True), image_size)).float() / 127.5 - 1.0
    levels = int(torch.log2(torch.tensor(image_size / size)).item()) + 1
    return gaussian_pyramid(x.unsqueeze(0), levels)[-1]


def cascade_levels(G: LAPGANGenerator, options: dict, opt, device) -> list[torch.Tensor]:
    """Every level's images [I~_K (or the given start), ..., I~_0] for --n samples, as fp32 on the CPU."""
    latent = latents(options, opt.n, torch.Generator().manual_seed(opt.seed))
    z, planes, labels = G.split(latent)
    if labels is not None and opt.label is not None:
        if not 0 <= opt.label < options["num_classes"]:
            raise UserError(f"--label {opt.label}: this run has classes 0..{options['num_classes'] - 1}")
        labels = torch.full_like(labels, opt.label)
    elif opt.label is not None:
        raise UserError("--label: this checkpoint is not class-conditional (train with --conditional)")
    start = None
    if opt.coarse is not None:
        size = opt.start_size or G.sizes[-1]
        if size not in G.sizes:
            raise UserError(f"--start-size {size}: this cascade's levels are {', '.join(map(str, G.sizes))}")
        if size == G.sizes[0]:
            coarser = ", ".join(map(str, G.sizes[1:]))
            raise UserError(f"--coarse: starting at the finest level ({size}x{size}) leaves nothing to refine; "
                            + (f"use --start-size {coarser.replace(', ', ' or ')}" if coarser
                               else "this checkpoint has a single level, so it cannot start from an image"))
        start = start_image(opt.coarse, size, options["image_size"], options["channels"]).expand(opt.n, -1, -1, -1)
    elif opt.start_size is not None:
        raise UserError("--start-size needs --coarse IMAGE (the image to start from)")
    move = (lambda t: None if t is None else t.to(device))  # noqa: E731
    levels = G.cascade(move(z), [move(p) for p in planes], move(labels), move(start))
    return [level.float().cpu() for level in levels]


def write_levels(levels: list[torch.Tensor], folder: Path, nrow: int) -> None:
    """DIR/level_<size>.png per level and DIR/pyramid.png (a row per sample, a column per level)."""
    finest = levels[-1].shape[-1]
    for level in levels:
        save_grid(level, folder / f"level_{level.shape[-1]:02d}.png", nrow=nrow)
    rows = [F.interpolate(level[:8], size=finest, mode="nearest") for level in levels]
    save_grid(torch.stack(rows, dim=1).flatten(0, 1), folder / "pyramid.png", nrow=len(levels))
    print(f"wrote {folder}/level_*.png and pyramid.png ({len(levels)} levels: "
          f"{', '.join(str(level.shape[-1]) for level in levels)})")


def load_generator(path, device, payload: dict | None = None) -> tuple[LAPGANGenerator, dict]:
    """The whole cascade rebuilt from the checkpoint's options, every level's weights."""
    return inference.load_generator(path, MODEL_NAME, build_generator, device, payload=payload)


@torch.no_grad()
def main(opt) -> Path:
    device = pick_device(opt.device)
    G, options = load_generator(opt.checkpoint, device)
    levels = cascade_levels(G, options, opt, device)
    nrow = inference.square_columns(opt.n)
    if opt.every_level:
        try:
            write_levels(levels, Path(opt.every_level), nrow)
        except OSError as exc:
            raise UserError(f"cannot write the levels: {exc}") from exc
    note = f"refined from {opt.coarse}" if opt.coarse else "the full cascade"
    return inference.write_images(levels[-1], opt, nrow=nrow, note=note)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
