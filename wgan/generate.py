"""Sample from a trained WGAN (Arjovsky et al. 2017).

    python generate.py --checkpoint runs/wgan-digits/checkpoints/last.pt            # 8x8 grid
    python generate.py --checkpoint ... --n 100 --individual out/                    # + one PNG each
    python generate.py --checkpoint ... --out runs/wgan-digits/                      # the grid in a folder

Only the generator is rebuilt (model.build_generator) and fed the run's prior
(utils.latents): the critic, which estimates W during training, is not needed to
sample. G runs in eval mode (BatchNorm running statistics), so a sample does not
depend on the batch it is drawn with. Flags, loading and files: common/inference.py.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

from common import inference
from . import model, utils

parse_opt, main = inference.generate_script("wgan", "Generate images with a trained WGAN.", model.build_generator,
                                            inference.from_prior(utils.latents))

if __name__ == "__main__":
    inference.run_script(parse_opt, main)
