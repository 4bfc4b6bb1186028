"""Sample from a trained WGAN-GP (Gulrajani et al. 2017).

    python generate.py --checkpoint runs/wgan_gp-digits/checkpoints/last.pt         # 8x8 grid
    python generate.py --checkpoint ... --n 100 --individual out/                    # + one PNG each

The gradient penalty shapes only the critic, so sampling is G alone
(model.build_generator) on the run's prior (utils.latents), in eval mode.
Flags, loading and files: common/inference.py.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

from common import inference
from . import model, utils

parse_opt, main = inference.generate_script("wgan_gp", "Generate images with a trained WGAN-GP.", model.build_generator,
                                            inference.from_prior(utils.latents))

if __name__ == "__main__":
    inference.run_script(parse_opt, main)
