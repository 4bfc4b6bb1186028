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
from common.errors import run_main
from .dataset import build_dataset
from .model import build_generator
from .utils import latents

MODEL_NAME = "dcgan"


def parse_opt(argv=None):
    return inference.evaluate_parser(MODEL_NAME, "Evaluate a trained DCGAN against its training data.",
                                     ema=True).parse_args(argv)


def main(opt) -> list[dict]:
    return inference.evaluate_samples(opt, MODEL_NAME, build_generator, latents, build_dataset,
                                      use_ema=not opt.no_ema)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
