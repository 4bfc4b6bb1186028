"""Measure a trained simple GAN: FID, KID and the Inception-Score analogue, SWD, MS-SSIM diversity.

    python evaluate.py --checkpoint runs/simple_gan-digits/checkpoints/last.pt
    python evaluate.py --checkpoint ... --n 10000 --features inception      # standard Inception
    python evaluate.py --checkpoint ... --real                              # + real-vs-real line

`--n` generated images are compared with `--n` real ones (half B of a fixed split
of the training data, common/metrics.py); `--real` adds half A against B, the
value a perfect model would get at this n. The results are printed and appended
as JSON lines to <run>/metrics.jsonl (or --jsonl), each naming its features.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: `cd simple_gan && python evaluate.py` works

import argparse
from types import SimpleNamespace

import torch

from common import metrics
from common.checkpoint import load_for_inference
from common.cli import add_evaluate_args
from common.device import pick_device
from common.errors import run_main
from simple_gan.dataset import build_dataset
from simple_gan.generate import load_generator
from simple_gan.utils import sample_z

MODEL_NAME = "simple_gan"


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Evaluate a trained simple GAN against its training data.")
    add_evaluate_args(p, model=MODEL_NAME)
    return p.parse_args(argv)


def real_dataset(o: dict, data_root: str | None):
    """The training data as the checkpoint's options describe it."""
    return build_dataset(SimpleNamespace(data=o["data"], image_size=o["image_size"], channels=o["channels"],
                                         data_root=data_root or o.get("data_root", "data"), seed=o.get("seed", 0)))


def main(opt) -> list[dict]:
    device = pick_device(opt.device)
    payload = load_for_inference(opt.checkpoint, MODEL_NAME)
    G, o = load_generator(opt.checkpoint, device, payload=payload)
    evaluator = metrics.Evaluator(real_dataset(o, opt.data_root), o["data"], n=opt.n, features=opt.features,
                                  device=device, inception_weights=opt.inception_weights, seed=opt.seed)
    z = sample_z(evaluator.n, o["z_dim"], generator=torch.Generator().manual_seed(opt.seed))
    common = {"model": MODEL_NAME, "checkpoint": str(opt.checkpoint), "step": payload.get("step"), "data": o["data"]}
    records = [{**common, "what": "generated", **evaluator(metrics.generate(G, z, device))}]
    if opt.real:
        records.append({**common, "what": "real A vs B", **evaluator.real_vs_real()})
    metrics.report_records(records, opt.checkpoint, opt.jsonl)
    return records


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
