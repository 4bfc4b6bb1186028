"""Measure a pix2pixHD generator as the paper does (Sec. 4.1, Table 1), at small scale: a
segmentation network trained on *real* scenes segments the images G makes from held-out label
maps; pixel accuracy and mean IoU against those label maps, beside the same network on the
real images of the same scenes (the ceiling), plus FID (offline conv-statistics features)
against the real held-out images, beside the real data's own floor (other real scenes).

    python evaluate.py --checkpoint runs/g1/checkpoints/last.pt
    python evaluate.py --checkpoint ... --n 200 --style cluster=0       # Sec. 3.4 models: which look

The segmenter (pix2pixhd/segmentation.py) knows the embedded procedural scenes only; it is
trained once per machine and size (about 1.5 CPU minutes at 256x128) and cached. A model
trained on a folder (e.g. Cityscapes) needs a segmentation network for that data, which this
script does not have: it says so and stops. Results are printed and appended as JSON lines to
<run>/metrics.jsonl (or --jsonl).
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse
from types import SimpleNamespace

import torch

from common import inference
from common import metrics
from common.cli import positive_int
from common.device import pick_device
from common.errors import UserError
from .dataset import EMBEDDED, HELD_OUT_SEED, build_dataset
from .generate import load_model, style_setup
from .model import size_multiple
from .segmentation import (cache_path, cache_settings, load_segmenter, render_scenes, score_images,
                                    to_signed)
from .utils import synthesize

MODEL_NAME = "pix2pixhd"
REFERENCE_SEED = 500_000  # the FID floor's second real set: scenes from here (neither training nor held out)


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Segmentation scores (pixel accuracy, mean IoU) and FID of a pix2pixHD "
                                            "generator on held-out scenes, beside real images.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by pix2pixhd/train.py")
    p.add_argument("--n", type=positive_int, default=100, help="held-out scenes (default 100)")
    p.add_argument("--style", default=None,
                   help="Sec. 3.4 models: random (default, seeded) | cluster=K | encode (the real image's features)")
    p.add_argument("--styles", default=None, metavar="NPZ", help="k-means centres (default: the run's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random styles (default 0)")
    p.add_argument("--jsonl", default=None, help="append results here (default: <run>/metrics.jsonl)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    p.set_defaults(n_styles=1)  # generate.style_setup's: one look per label map
    return p.parse_args(argv)


def held_out(options: dict, n: int) -> dict:
    """The first n held-out scenes as one batch, at the run's scene size, never augmented."""
    ds = build_dataset(SimpleNamespace(**options), "test", train=False, multiple=size_multiple(options))
    if n > len(ds):
        raise UserError(f"--n {n}: there are {len(ds)} held-out scenes")
    from torch.utils.data import default_collate

    return default_collate([ds[i] for i in range(n)])


class HeldOut:
    """What every score is measured against, built once: the first n held-out scenes, the
    segmenter for their size (and its cache name), and the features of their real images."""

    def __init__(self, options: dict, n: int):
        self.batch, self.n, self.label_nc = held_out(options, n), n, options["label_nc"]
        h, w = self.batch["image"].shape[-2:]
        self.segmenter = load_segmenter(h, w)
        self.segmenter_name = cache_path(cache_settings(h, w)).name
        self.extractor = metrics.feature_extractor("offline", "scenes")
        self.real_features = metrics.extract(self.extractor, self.batch["image"])[0]


def scores(G, E, held: HeldOut, options: dict, device, *, style: str = "encode", centres=None,
           seed: int = 0) -> dict:
    """Sec. 4.1 on the held-out scenes: the segmentation scores and FID of G's images. The real
    images' own figures are `reference_scores`."""
    g = torch.Generator().manual_seed(seed)
    fakes = synthesize(G, E, held.batch, options, device, style=style, centres=centres, generator=g)
    seg = score_images(held.segmenter, fakes, held.batch["label"], held.label_nc)
    return {"pixel_acc": seg["pixel_acc"], "mean_iou": seg["mean_iou"],
            "fid": metrics.fid(held.real_features, metrics.extract(held.extractor, fakes)[0]), "n": held.n}


def reference_scores(held: HeldOut) -> dict:
    """The ceiling and floor: the segmenter on the real held-out images, and the FID between
    them and n other real scenes (seeds from REFERENCE_SEED: neither trained on nor held out)."""
    h, w = held.batch["image"].shape[-2:]
    others = to_signed(render_scenes(range(REFERENCE_SEED, REFERENCE_SEED + held.n), h, w)[0])
    seg = score_images(held.segmenter, held.batch["image"], held.batch["label"], held.label_nc)
    return {"pixel_acc": seg["pixel_acc"], "mean_iou": seg["mean_iou"],
            "fid": metrics.fid(held.real_features, metrics.extract(held.extractor, others)[0]), "n": held.n}


def periodic_evaluation(G, E, opt, options: dict, device, n: int):
    """train.py --eval-every: the same scores on n held-out scenes, the scenes, segmenter and
    real features built once (E encodes the real image: the clusters come after training)."""
    if opt.data not in EMBEDDED:
        raise UserError("--eval-every: the scene segmenter knows the embedded scenes only (--data scenes)")
    held = HeldOut(options, n)
    return lambda: scores(G, E, held, options, device)


def main(opt) -> list[dict]:
    device = pick_device(opt.device)
    G, E, options, payload = load_model(opt.checkpoint, device)
    if options["data"] not in EMBEDDED:
        raise UserError(f"{opt.checkpoint} was trained on {options['data']}: the scene segmenter knows the embedded "
                        f"scenes only; score such a model with a segmentation network for its data (the paper: PSPNet)")
    style, centres = style_setup(opt, E, Path(opt.checkpoint))
    held = HeldOut(options, opt.n)
    common = {"model": MODEL_NAME, "checkpoint": str(opt.checkpoint), "step": payload.get("step"),
              "scenes": f"held-out seeds {HELD_OUT_SEED}..{HELD_OUT_SEED + opt.n - 1}",
              "metric": "offline scene segmenter (pix2pixhd/segmentation.py); offline conv-statistics FID",
              "segmenter": held.segmenter_name}
    generated = {**common, "what": "generated", "style": style if E is not None else None,
                 **scores(G, E, held, options, device, style=style, centres=centres, seed=opt.seed)}
    real = {**common, "what": "real images (reference)", **reference_scores(held)}
    path = Path(opt.jsonl) if opt.jsonl else Path(opt.checkpoint).resolve().parents[1] / "metrics.jsonl"
    for record in (generated, real):
        label = f"generated (step {record['step']})" if record["what"] == "generated" else record["what"]
        print(f"{label}: {metrics.format_report(record)}")
        metrics.append_jsonl(path, record)
    print(f"appended to {path}")
    return [generated, real]


if __name__ == "__main__":
    inference.run_script(parse_opt, main)
