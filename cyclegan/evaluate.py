"""Measure a trained CycleGAN.

    python evaluate.py --checkpoint runs/cyclegan-photos/checkpoints/last.pt
    python evaluate.py --checkpoint runs/cyclegan-horse2zebra/checkpoints/last.pt   # a folder run

On the embedded data the hidden mapping T is known (dataset.hidden_mapping), so on crops
of photos that never appear in training (common.data.HELD_OUT_PHOTOS):
    G_AB(a) vs T(a)          how close G_AB comes to the true mapping
    a vs T(a)                the identity baseline (G_AB has learned something if it beats this)
    G_BA(G_AB(a)) vs a       the cycle error (eq. 2)
each as L1 (on [-1, 1]), PSNR (dB) and SSIM. On a real dataset (trainA/testA layout)
there is no ground truth for a translation: only the cycle errors A -> B -> A and
B -> A -> B are reported (on testA/testB, or trainA/trainB without a test split).
Results are printed as a table and appended as JSON lines to <run>/metrics.jsonl (or --jsonl).
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

from common.checkpoint import load_for_inference
from common.cli import positive_int
from common.errors import run_main
from common.metrics import append_jsonl
from .dataset import evaluation_set, is_embedded
from .utils import MODEL_NAME, load_generator, translation_report


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Evaluate a trained CycleGAN (held-out translation and cycle error).")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by cyclegan/train.py")
    p.add_argument("--data", default=None, help="override the run's --data (e.g. the dataset moved)")
    p.add_argument("--n", type=positive_int, default=100,
                   help="images per test folder on a real dataset (default 100; the embedded set is fixed)")
    p.add_argument("--jsonl", default=None, help="append results here (default: <run>/metrics.jsonl)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    return p.parse_args(argv)


def format_table(rows: list[dict]) -> str:
    width = max(len(r["what"]) for r in rows)
    lines = [f"{'':{width}}  {'L1':>7}  {'PSNR dB':>7}  {'SSIM':>6}"]
    lines += [f"{r['what']:{width}}  {r['l1']:7.4f}  {r['psnr']:7.2f}  {r['ssim']:6.4f}" for r in rows]
    return "\n".join(lines)


def main(opt) -> list[dict]:
    from common.device import pick_device

    device = pick_device(opt.device)
    payload = load_for_inference(opt.checkpoint, MODEL_NAME)
    G_AB, options = load_generator(opt.checkpoint, "AtoB", device, payload)
    G_BA, _ = load_generator(opt.checkpoint, "BtoA", device, payload)
    if opt.data:
        options = {**options, "data": opt.data}
    evaluation = evaluation_set(options, opt.n)
    rows = translation_report(G_AB, G_BA, evaluation, device)
    print(f"step {payload.get('step')}, {evaluation['source']}, {options['image_size']}x{options['image_size']}:")
    print(format_table(rows))
    if not is_embedded(options["data"]):
        print("(a real dataset has no ground truth for a translation: only the cycle errors are measured)")
    path = Path(opt.jsonl) if opt.jsonl else Path(opt.checkpoint).resolve().parents[1] / "metrics.jsonl"
    for r in rows:
        append_jsonl(path, {"model": MODEL_NAME, "checkpoint": str(opt.checkpoint), "step": payload.get("step"),
                            "data": options["data"], **r})
    print(f"appended to {path}")
    return rows


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
