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
from . import dataset, model, utils

parse_opt, main = inference.evaluate_script("simple_gan", "Evaluate a trained simple GAN against its training data.",
                                            model.build_generator, utils.latents, dataset.build_dataset)

if __name__ == "__main__":
    inference.run_script(parse_opt, main)
