"""Translate images with a trained pix2pix generator.

    python generate.py --checkpoint runs/pix2pix-colorize/checkpoints/last.pt                   # held-out rows
    python generate.py --checkpoint ... --input photo.jpg --out photo_colour.png                # one image
    python generate.py --checkpoint ... --input photos/ --out translated/                       # a folder
    python generate.py --checkpoint ... --input photos/ --out translated/ --eval-mode           # no dropout
    python generate.py --checkpoint latest_net_G.pth --input labels/ --out photos/              # the official code's G
    python generate.py --pretrained facades_label2photo --input labels/ --out photos/          # a released model
    python generate.py --checkpoint runs/.../last.pt --export-official latest_net_G.pth        # ... and back

--checkpoint also takes the official code's G weights (junyanz/pytorch-CycleGAN-and-pix2pix: its
latest_net_G.pth, or a released model such as facades_label2photo.pth), detected by their keys;
G is then built in the official layout (README, Official weights), and its outputs are the
official network's, dropout masks included, for the same --seed.

G runs as the paper runs it at test time (Sec. 3.1, 6.1): dropout on and BatchNorm with
each image's own statistics (its noise, seeded by --seed); --eval-mode uses BatchNorm's
running averages and no dropout instead. Any image size works: it is padded by mirroring
to a multiple of the U-Net's total stride (256 for the 8-downsampling G) and cropped back.
For a model trained on an embedded task the inputs are photos and G's input is made from
them as in training: their Lab lightness for colorize (the output is that lightness with
G's colours), their edges for edges2photo unless --as-is; a grey or RGBA file is converted
to RGB (and said so).
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse
from types import SimpleNamespace

import torch

from common.cli import positive_int
from common.inference import each_input
from common.data import conversion_note, input_files, output_path, read_rgb, save_image, to_tensor
from common.device import pick_device
from common.errors import UserError, run_main
from common.run import save_grid
from .dataset import EMBEDDED, MAKE_INPUT, as_images, evaluation_pairs, lab_pair, lab_to_rgb
from .model import num_downs
from .utils import (RELEASED, export_official, input_output_target_rows, load_generator, pad_to_multiple,
                    released_weights, run_generator)

MODEL_NAME = "pix2pix"
ROWS_NAME = "pix2pix_rows.png"


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Translate images with a trained pix2pix generator.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint",
                        help="a checkpoint written by pix2pix/train.py, or the official code's G weights (latest_net_G.pth)")
    source.add_argument("--pretrained", choices=RELEASED, metavar="NAME",
                        help=f"a model the authors released, downloaded once into torch hub's cache: "
                             f"{', '.join(RELEASED)}")
    p.add_argument("--export-official", default=None, metavar="PTH",
                   help="write G in the official code's format (a plain state dict for its test.py) and stop")
    p.add_argument("--input", default=None, metavar="FILE|DIR",
                   help="an image or a folder of images to translate (default: the run's evaluation pairs, "
                        "written as rows input | output | target)")
    p.add_argument("--out", default=None,
                   help=f"output image file (one --input file) or folder (default: {ROWS_NAME} for the rows, "
                        f"translated/ for a folder, <name>_pix2pix.png beside one file)")
    p.add_argument("--n", type=positive_int, default=8, help="rows of evaluation pairs (default 8)")
    p.add_argument("--eval-mode", action="store_true",
                   help="BatchNorm running averages and no dropout (default: the paper's test mode, Sec. 6.1)")
    p.add_argument("--as-is", action="store_true",
                   help="feed the files to G unchanged, even for a model of edges2photo (a colorize model "
                        "always reads the files' lightness)")
    p.add_argument("--seed", type=int, default=0, help="seed of the dropout noise (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    return p.parse_args(argv)


def model_input(image, options: dict, as_is: bool) -> torch.Tensor:
    """What G was trained to read: for the embedded tasks, the Lab lightness or the edges of a photo."""
    if options["data"] == "colorize":
        return lab_pair(image)[0]
    if options["data"] in EMBEDDED and not as_is and options.get("direction", "AtoB") == "AtoB":
        return to_tensor(MAKE_INPUT[options["data"]](image))
    return to_tensor(image)


def shown_output(x: torch.Tensor, y: torch.Tensor, options: dict) -> torch.Tensor:
    """G's output as an RGB image: for colorize, the input's lightness with G's colours."""
    return lab_to_rgb(x[None], y[None])[0] if options["data"] == "colorize" else y


def translate_files(G, options: dict, opt, device) -> Path:
    files = input_files(opt.input)
    single = Path(opt.input).is_file()
    out = Path(opt.out) if opt.out else (files[0].with_name(files[0].stem + "_pix2pix.png") if single
                                         else Path("translated"))
    note = conversion_note(files, opt.input)
    if note:
        print(note)
    if options["data"] == "colorize":
        print("this G was trained on the embedded task 'colorize': it reads the photos' Lab lightness (their "
              "grey copies) and gives them colour")
    elif options["data"] in EMBEDDED and not opt.as_is and options.get("direction", "AtoB") == "AtoB":
        print(f"this G was trained on the embedded task {options['data']!r}: its inputs are made from the photos "
              f"(their Canny edges); --as-is to skip")
    multiple = 2 ** num_downs(options["image_size"])

    def translate_one(f: Path) -> Path:
        x = model_input(read_rgb(f), options, opt.as_is)
        y = run_generator(G, pad_to_multiple(x.unsqueeze(0), multiple)[0], device,
                          eval_mode=opt.eval_mode, seed=opt.seed)[0, :, :x.shape[1], :x.shape[2]]
        return save_image(shown_output(x, y, options), output_path(f, None if single else Path(opt.input), out))

    each_input(files, translate_one, out=out)
    print(f"wrote {len(files)} image(s) to {out}")
    return out


def evaluation_rows(G, options: dict, opt, device) -> Path:
    if options.get("data") is None:
        raise UserError(f"{opt.checkpoint} holds weights without a dataset: give --input FILE|DIR to translate")
    data_opt = SimpleNamespace(**options)
    inputs, targets, what = evaluation_pairs(data_opt, opt.n)
    outputs = run_generator(G, inputs, device, eval_mode=opt.eval_mode, seed=opt.seed)
    out = Path(opt.out or ROWS_NAME)
    out = out / ROWS_NAME if out.is_dir() or not out.suffix else out
    save_grid(input_output_target_rows(*as_images(options["data"], inputs, outputs, targets)), out, nrow=3)
    print(f"wrote {out}: rows input | output | target, {what}")
    return out


def main(opt) -> Path:
    device = pick_device(opt.device)
    if opt.pretrained:  # fetched before any work, once
        opt.checkpoint = released_weights(opt.pretrained)
    G, options, _ = load_generator(opt.checkpoint, device)
    if opt.export_official:
        return export_official(G, opt.export_official)
    if opt.input is None:
        return evaluation_rows(G, options, opt, device)
    return translate_files(G, options, opt, device)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
