"""Measure a trained pix2pix generator against its targets: L1, PSNR and SSIM of G(A) vs B,
beside the trivial baseline, the input itself (for colourisation: its grey image, L with no colour).

    python evaluate.py --checkpoint runs/pix2pix-colorize/checkpoints/last.pt
    python evaluate.py --checkpoint ... --phase val --n 100          # a folder dataset's val/ split
    python evaluate.py --checkpoint facades_label2photo.pth --data datasets/facades --direction BtoA
                                                                      # the official code's G weights

The pairs are the embedded task's held-out crops (whole photos never seen in training,
common.data.HELD_OUT_PHOTOS) or a folder's test/ (else val/) split, resized to the
training crop size without jitter. G runs in the paper's test mode (dropout on, each
image's own BatchNorm statistics; Sec. 6.1) unless --eval-mode. L1 is on [-1, 1] (the
training loss's scale), PSNR and SSIM on [0, 1], all on RGB images (colourisation: L with
the predicted ab, against L with the true ab). Results are printed and appended as JSON
lines to <run>/metrics.jsonl (or --jsonl); --rows writes input | output | target rows.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse
from types import SimpleNamespace

from common import metrics
from common.cli import positive_int
from common.device import pick_device
from common.errors import UserError, run_main
from common.run import save_grid
from .dataset import as_images, evaluation_pairs
from .utils import input_output_target_rows, load_generator, paired_report, run_generator

MODEL_NAME = "pix2pix"


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="L1 / PSNR / SSIM of a pix2pix generator against its targets.")
    p.add_argument("--checkpoint", required=True,
                   help="a checkpoint written by pix2pix/train.py, or the official code's G weights (latest_net_G.pth)")
    p.add_argument("--n", type=positive_int, default=16, help="pairs to measure (default 16: all held-out crops)")
    p.add_argument("--phase", default=None, help="split of a folder dataset (default: test, else val)")
    p.add_argument("--data", default=None,
                   help="override the dataset stored in the checkpoint (a folder; needed for official weights)")
    p.add_argument("--direction", default=None, choices=("AtoB", "BtoA"),
                   help="override the checkpoint's direction (official weights: AtoB unless given)")
    p.add_argument("--eval-mode", action="store_true",
                   help="BatchNorm running averages and no dropout (default: the paper's test mode)")
    p.add_argument("--rows", default=None, metavar="PNG", help="also write rows input | output | target here")
    p.add_argument("--jsonl", default=None, help="append results here (default: <run>/metrics.jsonl)")
    p.add_argument("--seed", type=int, default=0, help="seed of the dropout noise (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    return p.parse_args(argv)


def main(opt) -> list[dict]:
    device = pick_device(opt.device)
    G, options, info = load_generator(opt.checkpoint, device)
    if not (opt.data or options.get("data")):
        raise UserError(f"{opt.checkpoint} holds weights without a dataset: give --data (a folder of pairs)")
    data_opt = SimpleNamespace(**{**options, "data": opt.data or options["data"],
                                  "direction": opt.direction or options.get("direction", "AtoB")})
    inputs, targets, what = evaluation_pairs(data_opt, opt.n, opt.phase)
    outputs = run_generator(G, inputs, device, eval_mode=opt.eval_mode, seed=opt.seed)
    inputs, outputs, targets = as_images(data_opt.data, inputs, outputs, targets)  # RGB, as measured and shown
    common = {"model": MODEL_NAME, "checkpoint": str(opt.checkpoint), "step": info["step"],
              "data": data_opt.data, "direction": data_opt.direction, "pairs": what,
              "mode": "eval" if opt.eval_mode else "paper test mode"}
    records = [{**common, "what": "G(A) vs B", **paired_report(outputs, targets)},
               {**common, "what": "baseline: A itself vs B", **paired_report(inputs, targets)}]
    metrics.report_records(records, opt.checkpoint, opt.jsonl)
    if opt.rows:
        save_grid(input_output_target_rows(inputs, outputs, targets), opt.rows, nrow=3)
        print(f"wrote {opt.rows}: rows input | output | target")
    return records


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
