"""Measure a trained simple GAN: FID, KID, the Inception-Score analogue, SWD and MS-SSIM
diversity of its samples against the training data (common/metrics.py).

    python evaluate.py --checkpoint runs/simple_gan-digits/checkpoints/last.pt --real
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

from common import inference
from common.errors import run_main
from .dataset import build_dataset
from .model import build_generator
from .utils import latents

MODEL_NAME = "simple_gan"


def parse_opt(argv=None):
    return inference.evaluate_parser(MODEL_NAME,
                                     "Evaluate a trained simple GAN against its training data.").parse_args(argv)


def main(opt) -> list[dict]:
    return inference.evaluate_samples(opt, MODEL_NAME, build_generator, latents, build_dataset)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
