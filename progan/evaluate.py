"""Measure a trained ProGAN as the paper does: the sliced Wasserstein distance per level of a
Laplacian pyramid (Sec. 5, Table 1; common/swd.py), MS-SSIM between pairs of samples (Sec. 5,
Odena et al.'s diversity measure), and FID / KID with the project's offline features.

    python evaluate.py --checkpoint runs/progan-photos/checkpoints/last.pt --real
    python evaluate.py --checkpoint ... --features inception        # standard FID (weights file)

The real images are the run's training data seen as the network sees them at the stage the
checkpoint reached: averaged down to its resolution (and, mid-fade, blended as in training);
below 16x16, where the features and SWD are not defined, both sets are enlarged to 16x16.
--real adds real half A against half B, the floor a perfect model reaches at this n.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import torch

from common import inference, metrics
from common.checkpoint import load_for_inference
from common.device import pick_device
from common.errors import run_main
from .dataset import AtStage, build_dataset, for_measuring
from .model import build_generator
from .utils import latents

MODEL_NAME = "progan"


def parse_opt(argv=None):
    return inference.evaluate_parser(MODEL_NAME, "SWD, MS-SSIM and FID of a trained ProGAN against its data.",
                                     ema=True).parse_args(argv)


def main(opt) -> list[dict]:
    device = pick_device(opt.device)
    payload = load_for_inference(opt.checkpoint, MODEL_NAME)
    G, options = inference.load_generator(opt.checkpoint, MODEL_NAME, build_generator, device, payload=payload,
                                          use_ema=not opt.no_ema)
    data = AtStage(build_dataset(inference.stored_data(options, opt.data_root)), G.resolution, G.alpha)
    reference = inference.evaluator(opt, data, options, device)
    z = latents(options, reference.n, torch.Generator().manual_seed(opt.seed))
    images = for_measuring(metrics.generate(G, z, device))
    records = inference.evaluation_records(opt, payload, reference, images, MODEL_NAME, resolution=G.resolution,
                                           alpha=G.alpha)
    metrics.report_records(records, opt.checkpoint, opt.jsonl)
    return records


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
