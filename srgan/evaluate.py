"""Measure SRResNet / SRGAN as the paper reports it: PSNR (dB) and SSIM on the Y channel, with a
border of `scale` pixels cropped (Sec. 3.1), beside bicubic upsampling.

    python evaluate.py --checkpoint runs/srgan-photos/checkpoints/last.pt
    python evaluate.py --checkpoint psnr/last.pt gan/last.pt --crops crops.png   # LR | bicubic | PSNR | GAN | HR
    python evaluate.py --checkpoint ... --data /path/to/Set5/HR

The images are the held-out bundled photos (whole, never cropped for training), or every image
of --data (HR images; their LR is made by the same bicubic downsampling as in training). G runs
in eval mode (BatchNorm's running statistics). Results are printed and appended as JSON lines
to <run>/metrics.jsonl of the first checkpoint (or --jsonl); --crops writes rows
LR | bicubic | each checkpoint's G | HR.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

from common import inference
from common.checkpoint import load_for_inference
from common.device import pick_device
from common.errors import UserError, run_main
from .dataset import evaluation_pairs
from .model import build_generator
from .utils import MODEL_NAME, report, upscale


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="PSNR / SSIM (Y channel) of SRResNet / SRGAN beside bicubic.")
    p.add_argument("--checkpoint", required=True, nargs="+",
                   help="one or more checkpoints written by srgan/train.py (either stage), measured side by side")
    p.add_argument("--data", default=None, help="a folder of HR images (default: the held-out bundled photos)")
    p.add_argument("--crops", default=None, metavar="PNG",
                   help="also write rows LR | bicubic | G of each checkpoint | HR (centre crops)")
    p.add_argument("--jsonl", default=None, help="append results here (default: <run>/metrics.jsonl)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    return p.parse_args(argv)


def main(opt) -> list[dict]:
    device = pick_device(opt.device)
    models, fields, scales, base = {}, {}, set(), None
    for path in opt.checkpoint:
        payload = load_for_inference(path, MODEL_NAME)
        G, options = inference.load_generator(path, MODEL_NAME, build_generator, device, payload=payload)
        scales.add(options["scale"])
        if len(scales) > 1:
            raise UserError(f"the checkpoints upscale by different factors ({sorted(scales)}): compare one scale")
        if base is None:
            pairs, what = evaluation_pairs(opt.data, options["scale"])
            base = {"model": MODEL_NAME, "scale": options["scale"], "images": what}
        outputs = [upscale(G, lr, device).clamp(-1, 1) for lr, _ in pairs]
        name = f"SRGAN G ({options['stage']} stage, step {payload.get('step')})"
        name = name if name not in models else f"{name} [{path}]"
        models[name] = outputs
        fields[name] = {"stage": options["stage"], "step": payload.get("step"), "checkpoint": str(path)}
    jsonl = Path(opt.jsonl) if opt.jsonl else Path(opt.checkpoint[0]).resolve().parents[1] / "metrics.jsonl"
    return report(models, pairs, scales.pop(), base, jsonl, opt.crops, fields=fields)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
