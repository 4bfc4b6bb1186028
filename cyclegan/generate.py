"""Translate images with a trained CycleGAN.

    python generate.py --checkpoint runs/cyclegan-photos/checkpoints/last.pt --input photo.jpg --out out.png
    python generate.py --checkpoint ... --input folder/ --out translated/               # every image, A -> B
    python generate.py --checkpoint ... --input folder/ --out back/ --direction BtoA   # the other generator

--direction picks the generator (AtoB: G_AB, BtoA: G_BA); it does not change the data.
The networks are fully convolutional, so each image is translated at its own size: padded
(mirrored) on the right and bottom to a multiple of 4, translated, cropped back. Grey and
RGBA files are converted to RGB (one note line says how many). Folders keep their
sub-folder structure; every output is a PNG.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

from common.data import conversion_note, input_files, output_path, read_rgb, save_image, to_tensor
from common.errors import DataError, run_main
from .utils import GENERATORS, load_generator, translate

MULTIPLE = 4  # two stride-2 convolutions in G
MIN_SIDE = 8  # below this, the residual blocks' reflection padding has nothing to mirror


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Translate an image or a folder with a trained CycleGAN.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by cyclegan/train.py")
    p.add_argument("--input", required=True, help="an image file, or a folder of images (searched recursively)")
    p.add_argument("--out", required=True,
                   help="output: a file name (.png, .jpg...) for a single input, else a folder")
    p.add_argument("--direction", default="AtoB", choices=sorted(GENERATORS),
                   help="AtoB uses G_AB (the paper's G), BtoA uses G_BA (the paper's F) (default AtoB)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    return p.parse_args(argv)


def main(opt) -> list[Path]:
    from common.device import pick_device

    device = pick_device(opt.device)
    G, _ = load_generator(opt.checkpoint, opt.direction, device)
    source = Path(opt.input)
    files = input_files(source)
    root = source if source.is_dir() else None
    note = conversion_note(files, str(source))
    if note:
        print(note)
    written = []
    for f in files:
        image = to_tensor(read_rgb(f))
        if min(image.shape[-2:]) < MIN_SIDE:
            raise DataError(f"{f} is {image.shape[-1]}x{image.shape[-2]}; images need at least "
                            f"{MIN_SIDE} pixels on each side")
        out = translate(G, image, MULTIPLE, device)
        written.append(save_image(out, output_path(f, root, Path(opt.out))))
    where = written[0] if len(written) == 1 else f"{opt.out}/"
    print(f"translated {len(written)} image(s) {opt.direction} with {GENERATORS[opt.direction]}: {where}")
    return written


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
