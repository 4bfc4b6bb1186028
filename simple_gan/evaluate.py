"""Measure a trained simple GAN: FID, KID, the Inception-Score analogue, SWD and MS-SSIM
diversity of its samples against the training data (common/metrics.py).

    python evaluate.py --checkpoint runs/simple_gan-digits/checkpoints/last.pt --real
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: `cd simple_gan && python evaluate.py` works

from common import inference
from simple_gan import dataset, model, utils

parse_opt, main = inference.evaluate_script("simple_gan", "Evaluate a trained simple GAN against its training data.",
                                            model.build_generator, utils.latents, dataset.build_dataset)

if __name__ == "__main__":
    inference.run_script(parse_opt, main)
