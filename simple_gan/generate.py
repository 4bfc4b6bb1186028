"""Sample from a trained simple GAN (Goodfellow et al. 2014).

    python generate.py --checkpoint runs/simple_gan-digits/checkpoints/last.pt
    python generate.py --checkpoint ... --n 100 --individual out/

G (model.build_generator: the checkpoint's --arch) on z from the run's prior (utils.latents:
uniform for --arch paper, N(0, I) for --arch seed); flags, loading and files: common/inference.py.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

from common import inference
from . import model, utils

parse_opt, main = inference.generate_script("simple_gan", "Generate images with a trained simple GAN.",
                                            model.build_generator, inference.from_prior(utils.latents))

if __name__ == "__main__":
    inference.run_script(parse_opt, main)
