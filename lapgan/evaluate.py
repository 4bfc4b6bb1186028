"""Measure a trained LAPGAN: FID, KID (and the Inception-Score analogue on digits), SWD and
MS-SSIM diversity of full cascade samples (every level run, coarse to fine).

    python evaluate.py --checkpoint runs/lapgan-photos/checkpoints/last.pt
    python evaluate.py --checkpoint ... --real                              # + real-vs-real line
    python evaluate.py --checkpoint ... --n 10000 --features inception      # standard Inception

`--n` cascade samples are compared with `--n` real images (half B of a fixed split of the
training data, common/metrics.py); `--real` adds half A against B, the value a perfect model
would get at this n. Class-conditional runs draw a uniformly random class per sample.
Results are printed and appended to <run>/metrics.jsonl (or --jsonl).
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

MODEL_NAME = "lapgan"


def parse_opt(argv=None):
    return inference.evaluate_parser(MODEL_NAME,
                                     "Evaluate a trained LAPGAN against its training data.").parse_args(argv)


def main(opt) -> list[dict]:
    return inference.evaluate_samples(opt, MODEL_NAME, build_generator, latents, build_dataset)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
