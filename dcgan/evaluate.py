"""Measure a trained DCGAN: FID, KID and the Inception-Score analogue, SWD, MS-SSIM diversity.

    python evaluate.py --checkpoint runs/dcgan-digits/checkpoints/last.pt
    python evaluate.py --checkpoint ... --n 10000 --features inception      # standard Inception
    python evaluate.py --checkpoint ... --real                              # + real-vs-real line

`--n` generated images are compared with `--n` real ones (half B of a fixed split
of the training data, common/metrics.py); `--real` adds half A against B, the
value a perfect model would get at this n. The results are printed and appended
as JSON lines to <run>/metrics.jsonl (or --jsonl), each naming its features.
With an EMA in the checkpoint (--ema-decay) its weights are measured, unless --no-ema.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

from common import inference
from . import dataset, model, utils

parse_opt, main = inference.evaluate_script("dcgan", "Evaluate a trained DCGAN against its training data.",
                                            model.build_generator, utils.latents, dataset.build_dataset, ema=True)

if __name__ == "__main__":
    inference.run_script(parse_opt, main)
