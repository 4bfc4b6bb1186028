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

from common import metrics
from common.cli import positive_int
from common.device import pick_device
from common.errors import UserError, run_main
from .dataset import EMBEDDED, HELD_OUT_SEED
from .segmentation import render_scenes, score_images, to_signed
from .utils import MODEL_NAME, HeldOut, load_model, scores, style_setup

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
    p.set_defaults(n_styles=1)  # utils.style_setup's: one look per label map
    return p.parse_args(argv)


def reference_scores(held: HeldOut) -> dict:
    """The ceiling and floor: the segmenter on the real held-out images, and the FID between
    them and n other real scenes (seeds from REFERENCE_SEED: neither trained on nor held out)."""
    h, w = held.batch["image"].shape[-2:]
    others = to_signed(render_scenes(range(REFERENCE_SEED, REFERENCE_SEED + held.n), h, w)[0])
    seg = score_images(held.segmenter, held.batch["image"], held.batch["label"], held.label_nc)
    return {"pixel_acc": seg["pixel_acc"], "mean_iou": seg["mean_iou"],
            "fid": metrics.fid(held.real_features, metrics.extract(held.extractor, others)[0]), "n": held.n}


def main(opt) -> list[dict]:
    device = pick_device(opt.device)
    G, E, options, payload = load_model(opt.checkpoint, device)
    if options.get("official"):
        raise UserError(f"{opt.checkpoint} holds the official code's weights: the scene segmenter knows the embedded "
                        f"scenes only; score them with a segmentation network for their data (the paper: PSPNet)")
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
    run_main(lambda: main(parse_opt()))
