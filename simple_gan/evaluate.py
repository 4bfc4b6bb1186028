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

import torch

from common import inference, metrics
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


def main(opt) -> list[dict]:
    device = pick_device(opt.device)
    payload = load_for_inference(opt.checkpoint, MODEL_NAME)
    G, o = load_generator(opt.checkpoint, device, payload=payload)
    evaluator = inference.evaluator(opt, build_dataset(inference.stored_data(o, opt.data_root)), o, device)
    z = sample_z(evaluator.n, o["z_dim"], generator=torch.Generator().manual_seed(opt.seed))
    records = inference.evaluation_records(opt, payload, evaluator, metrics.generate(G, z, device), MODEL_NAME)
    metrics.report_records(records, opt.checkpoint, opt.jsonl)
    return records


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
