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
from . import dataset, model, utils

parse_opt, main = inference.evaluate_script("lapgan", "Evaluate a trained LAPGAN against its training data.",
                                            model.build_generator, utils.latents, dataset.build_dataset)

if __name__ == "__main__":
    inference.run_script(parse_opt, main)
