"""Measure a trained WGAN-GP with the offline (or Inception) features: FID, KID, the
Inception-Score analogue, SWD and MS-SSIM diversity, against half B of the training data.

    python evaluate.py --checkpoint runs/wgan_gp-digits/checkpoints/last.pt
    python evaluate.py --checkpoint ... --real          # + real half A vs B: the floor at this n

Printed, and appended as JSON lines to <run>/metrics.jsonl (or --jsonl); common/metrics.py
says how each number is computed.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

from common import inference
from . import dataset, model, utils

parse_opt, main = inference.evaluate_script("wgan_gp", "Evaluate a trained WGAN-GP against its training data.",
                                            model.build_generator, utils.latents, dataset.build_dataset)

if __name__ == "__main__":
    inference.run_script(parse_opt, main)
