"""Label maps to images with a trained pix2pixHD generator.

    python generate.py --checkpoint runs/g1/checkpoints/last.pt                 # held-out scenes: labels | output | real
    python generate.py --checkpoint ... --n-styles 4                            # labels | 4 looks (--instance-feat models)
    python generate.py --checkpoint ... --label lab.png --inst inst.png --out photo.png --style cluster=3
    python generate.py --checkpoint ... --label labels/ --inst insts/ --out photos/   # folders, paired by sorted order
    python generate.py --checkpoint latest_net_G.pth --label L.png --inst I.png      # the official code's G
    python generate.py --checkpoint runs/.../last.pt --export-official latest_net_G.pth   # ... and back

--checkpoint also takes the official code's G weights (NVIDIA/pix2pixHD: a run's
latest_net_G.pth, or the released label2city_512p / label2city_1024p), detected by their keys:
global or with its local enhancer, its label count and the instance channel read from the
first layer (label_nc + 1 inputs, the official defaults; --no-instance for a model trained
without instance maps).

Label maps are single-channel images of class ids (< the model's --label-nc; Cityscapes'
*_labelIds.png), instance maps single-channel images of instance ids (16-bit Cityscapes
*_instanceIds.png are read as they are). A model trained with instance maps but given none
uses the label map as its instance map (every class one instance), and says so. Any size
works: the maps are padded by repeating their border to what the generator needs (a multiple
of 2^(downsamplings + enhancers)) and the image is cropped back.

With Sec. 3.4's features (models trained with --instance-feat), --style picks the look of
every instance: `random` (default: a k-means centre of its class drawn per instance, seeded by
--seed), `cluster=K` (centre K for every class), or `encode` (the real image's own features,
only for the held-out rows). The centres are the run's features_clustered.npz, written at
the end of training (or by cluster_features.py).
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse
from types import SimpleNamespace

import numpy as np
import torch

from common import data as cdata
from common.cli import positive_int
from common.device import pick_device
from common.errors import UserError, run_main
from common.inference import each_input
from common.run import save_grid
from .dataset import evaluation_scenes, read_ids
from .model import size_multiple
from .utils import STYLES_FILE, export_official, load_model, parse_style, sample_rows, shown_labels, style_setup, synthesize

ROWS_NAME = "pix2pixhd_rows.png"


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Label maps to images with a trained pix2pixHD generator.")
    p.add_argument("--checkpoint", required=True,
                   help="a checkpoint written by pix2pixhd/train.py, or the official code's G weights (latest_net_G.pth)")
    p.add_argument("--no-instance", action="store_true",
                   help="official weights trained with --no_instance: read their input channels as labels only")
    p.add_argument("--export-official", default=None, metavar="PTH",
                   help="write G in the official code's format (for its test.py) and stop")
    p.add_argument("--label", default=None, metavar="FILE|DIR",
                   help="a label map or a folder of them (default: the run's held-out scenes, as rows)")
    p.add_argument("--inst", default=None, metavar="FILE|DIR", help="the matching instance map(s)")
    p.add_argument("--out", default=None,
                   help=f"output file (one --label file) or folder (default: {ROWS_NAME} for the rows, "
                        f"synthesized/ for a folder, <name>_pix2pixhd.png beside one file)")
    p.add_argument("--style", default=None,
                   help="random | cluster=K | encode (Sec. 3.4; default random; only for --instance-feat models)")
    p.add_argument("--n-styles", type=positive_int, default=1,
                   help="held-out rows: this many looks per label map (cluster=0..N-1; default 1)")
    p.add_argument("--styles", default=None, metavar="NPZ",
                   help=f"k-means centres (default: the run's {STYLES_FILE})")
    p.add_argument("--n", type=positive_int, default=4, help="held-out rows (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random styles (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    opt = p.parse_args(argv)
    if opt.style is not None:
        try:
            parse_style(opt.style)
        except ValueError as exc:
            p.error(str(exc))
    if opt.inst and not opt.label:
        p.error("--inst needs --label")
    return opt


# ------------------------------------------------------------------- held-out rows
def held_out_rows(G, E, options: dict, opt, device, style: str, centres) -> Path:
    multiple = size_multiple(options)
    batch, what = evaluation_scenes(SimpleNamespace(**options), opt.n, multiple=multiple)
    g = torch.Generator().manual_seed(opt.seed)
    if opt.n_styles > 1:  # labels | look 0 | look 1 | ...
        looks = [synthesize(G, E, batch, options, device, style=f"cluster={k}", centres=centres)
                 for k in range(opt.n_styles)]
        grid, columns, text = (torch.stack([shown_labels(batch, options), *looks], dim=1).flatten(0, 1),
                               opt.n_styles + 1, f"labels | cluster=0..{opt.n_styles - 1}")
    else:
        out = synthesize(G, E, batch, options, device, style=style, centres=centres, generator=g)
        columns = 3 if "image" in batch else 2
        grid, text = sample_rows(batch, out, options), "labels | output | real" if columns == 3 else "labels | output"
    path = Path(opt.out or ROWS_NAME)
    path = path / ROWS_NAME if path.is_dir() or not path.suffix else path
    save_grid(grid, path, nrow=columns)
    print(f"wrote {path}: rows {text}, {what}")
    return path


# ----------------------------------------------------------------------- files
def paired_files(label: str, inst: str | None) -> list[tuple[Path, Path | None]]:
    labels = cdata.input_files(label, "--label")
    if inst is None:
        return [(f, None) for f in labels]
    insts = cdata.input_files(inst, "--inst")
    if len(insts) != len(labels):
        raise UserError(f"--label has {len(labels)} map(s) but --inst {len(insts)}: they pair by sorted order")
    return list(zip(labels, insts))


def read_maps(label_path: Path, inst_path: Path | None, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """(label, inst) as integer arrays; the checks of the one-line errors."""
    label_nc = options["label_nc"]
    if label_nc == 0:
        label = cdata.read_rgb(label_path)
    else:
        label = read_ids(label_path, "label map")
        if label.max() >= label_nc or label.min() < 0:
            bad = int(label.max() if label.max() >= label_nc else label.min())
            raise UserError(f"{label_path}: label value {bad} is outside 0..{label_nc - 1} (this model has "
                            f"--label-nc {label_nc})")
    if inst_path is None:  # every class one instance; an image input (label_nc 0) has none, as in training
        inst = np.zeros(label.shape[:2], np.int64) if label_nc == 0 else label
    else:
        inst = read_ids(inst_path, "instance map")
        if inst.shape != label.shape[:2]:
            raise UserError(f"{label_path} is {label.shape[1]}x{label.shape[0]} but its instance map {inst_path} "
                            f"is {inst.shape[1]}x{inst.shape[0]}")
    return label, inst


def padded(a: np.ndarray, multiple: int) -> np.ndarray:
    """`a` with its border repeated down and right up to a multiple of `multiple`."""
    h, w = a.shape[:2]
    pad = [(0, -h % multiple), (0, -w % multiple)] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, pad, mode="edge")


def synthesize_files(G, E, options: dict, opt, device, style: str, centres) -> Path:
    pairs = paired_files(opt.label, opt.inst)
    single = Path(opt.label).is_file()
    out = Path(opt.out) if opt.out else (pairs[0][0].with_name(pairs[0][0].stem + "_pix2pixhd.png") if single
                                         else Path("synthesized"))
    if style == "encode" and E is not None:
        raise UserError("--style encode needs the real image: give label maps --style random or cluster=K")
    if pairs[0][1] is None and not options["no_instance"] and options["label_nc"]:
        print("no --inst given: each class is taken as one instance (the boundary map shows class edges only)")
    multiple = size_multiple(options)
    g = torch.Generator().manual_seed(opt.seed)

    def synthesize_one(pair: tuple[Path, Path | None]) -> Path:
        label_path, inst_path = pair
        label, inst = read_maps(label_path, inst_path, options)
        h, w = label.shape[:2]
        lab = padded(label, multiple)
        batch = {"label": (cdata.to_tensor(lab) if options["label_nc"] == 0 else torch.from_numpy(lab).long())[None],
                 "inst": torch.from_numpy(padded(inst, multiple)).long()[None]}
        image = synthesize(G, E, batch, options, device, style=style, centres=centres, generator=g)[0, :, :h, :w]
        return cdata.save_image(image, cdata.output_path(label_path, None if single else Path(opt.label), out))

    each_input(pairs, synthesize_one, out=out, what="label map")
    print(f"wrote {len(pairs)} image(s) to {out}")
    return out


def main(opt) -> Path:
    device = pick_device(opt.device)
    G, E, options, _ = load_model(opt.checkpoint, device, no_instance=opt.no_instance)
    if opt.export_official:
        return export_official(G, opt.export_official)
    if options.get("official") and opt.label is None:
        raise UserError(f"{opt.checkpoint} holds weights without a dataset: give --label (and --inst) maps")
    style, centres = style_setup(opt, E, Path(opt.checkpoint))
    if opt.label is None:
        return held_out_rows(G, E, options, opt, device, style, centres)
    return synthesize_files(G, E, options, opt, device, style, centres)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
