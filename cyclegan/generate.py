"""Translate images with a trained CycleGAN.

    python generate.py --checkpoint runs/cyclegan-photos/checkpoints/last.pt --input photo.jpg --out out.png
    python generate.py --checkpoint ... --input folder/ --out translated/               # every image, A -> B
    python generate.py --checkpoint ... --input folder/ --out back/ --direction BtoA   # the other generator
    python generate.py --checkpoint horse2zebra.pth --input horses/ --out zebras/      # the official code's G
    python generate.py --pretrained horse2zebra --input horses/ --out zebras/          # ... downloaded once
    python generate.py --checkpoint runs/.../last.pt --export-official latest_net_G.pth   # ... and back

--checkpoint also takes the official code's G weights (junyanz/pytorch-CycleGAN-and-pix2pix:
latest_net_G_A.pth, latest_net_G_B.pth, or a released model such as horse2zebra.pth), detected
by their keys: one generator, so --direction does not apply.

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
from common.inference import each_input
from .utils import GENERATORS, RELEASED, export_official, load_generator, released_weights, translate

MULTIPLE = 4  # two stride-2 convolutions in G
MIN_SIDE = 8  # below this, the residual blocks' reflection padding has nothing to mirror


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Translate an image or a folder with a trained CycleGAN.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint",
                        help="a checkpoint written by cyclegan/train.py, or the official code's G weights "
                             "(latest_net_G_A.pth)")
    source.add_argument("--pretrained", choices=RELEASED, metavar="NAME",
                        help=f"a model the authors released, downloaded once into torch hub's cache: "
                             f"{', '.join(RELEASED)}")
    p.add_argument("--input", default=None, help="an image file, or a folder of images (searched recursively)")
    p.add_argument("--out", default=None,
                   help="output: a file name (.png, .jpg...) for a single input, else a folder")
    p.add_argument("--direction", default="AtoB", choices=sorted(GENERATORS),
                   help="AtoB uses G_AB (the paper's G), BtoA uses G_BA (the paper's F) (default AtoB)")
    p.add_argument("--export-official", default=None, metavar="PTH",
                   help="write the --direction generator in the official code's format (for its test.py) and stop")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    opt = p.parse_args(argv)
    if not opt.export_official and not (opt.input and opt.out):
        p.error("--input and --out are required (unless --export-official)")
    return opt


def main(opt) -> list[Path]:
    from common.device import pick_device

    device = pick_device(opt.device)
    if opt.pretrained:  # fetched before any work, once
        opt.checkpoint = released_weights(opt.pretrained)
    G, options = load_generator(opt.checkpoint, opt.direction, device)
    if opt.export_official:
        return [export_official(G, opt.export_official, opt.direction)]
    source = Path(opt.input)
    files = input_files(source)
    root = source if source.is_dir() else None
    note = conversion_note(files, str(source))
    if note:
        print(note)

    def translate_one(f: Path) -> Path:
        image = to_tensor(read_rgb(f))
        if min(image.shape[-2:]) < MIN_SIDE:
            raise DataError(f"{f} is {image.shape[-1]}x{image.shape[-2]}; images need at least "
                            f"{MIN_SIDE} pixels on each side")
        return save_image(translate(G, image, MULTIPLE, device), output_path(f, root, Path(opt.out)))

    written = each_input(files, translate_one, out=opt.out)
    where = written[0] if len(written) == 1 else f"{opt.out}/"
    which = "the official G" if options.get("official") else f"{opt.direction} with {GENERATORS[opt.direction]}"
    print(f"translated {len(written)} image(s) {which}: {where}")
    return written


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
