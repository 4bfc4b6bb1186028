"""Measure ESRGAN as the paper reports it: PSNR (dB) and SSIM on the Y channel with a border of
`scale` pixels cropped, beside bicubic upsampling; for the PSNR-oriented model, the GAN model and
network interpolations between them (Sec. 3.4), side by side.

    python evaluate.py --checkpoint runs/esrgan-photos-psnr/checkpoints/last.pt
    python evaluate.py --checkpoint psnr/last.pt gan/last.pt --crops crops.png     # LR | bicubic | PSNR | GAN | HR
    python evaluate.py --psnr-checkpoint psnr/last.pt --gan-checkpoint gan/last.pt --interp 0.2 0.5 0.8
    python evaluate.py --checkpoint RRDB_ESRGAN_x4.pth --data /path/to/Set14/HR   # the released weights

The images are the held-out bundled photos (whole, never cropped for training), or every image
of --data (HR images; LR made by the same bicubic downsampling as in training). Results are
printed and appended as JSON lines to --jsonl (default: <run>/metrics.jsonl beside the first
checkpoint of ours, else ./esrgan_metrics.jsonl).
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

from common.device import pick_device
from common.errors import UserError, run_main
from .dataset import evaluation_pairs
from .utils import MODEL_NAME, load_generator, report, signed, upscale


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="PSNR / SSIM (Y channel) of ESRGAN models beside bicubic.")
    p.add_argument("--checkpoint", nargs="+", default=[],
                   help="esrgan checkpoints (either stage) or released RRDBNet weights, measured side by side")
    p.add_argument("--psnr-checkpoint", default=None, help="with --interp: the PSNR-oriented model")
    p.add_argument("--gan-checkpoint", default=None, help="with --interp: the GAN model")
    p.add_argument("--interp", type=float, nargs="+", default=[], metavar="ALPHA",
                   help="network interpolations (1 - alpha) PSNR + alpha GAN to measure (Sec. 3.4)")
    p.add_argument("--data", default=None, help="a folder of HR images (default: the held-out bundled photos)")
    p.add_argument("--crops", default=None, metavar="PNG", help="also write rows LR | bicubic | each model | HR")
    p.add_argument("--jsonl", default=None, help="append results here (default: <run>/metrics.jsonl)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    opt = p.parse_args(argv)
    if opt.interp and not (opt.psnr_checkpoint and opt.gan_checkpoint):
        p.error("--interp needs --psnr-checkpoint and --gan-checkpoint")
    if not opt.checkpoint and not opt.interp:
        p.error("give --checkpoint PATH [PATH ...], or --interp ALPHA with --psnr-checkpoint and --gan-checkpoint")
    return opt


def generators(opt, device):
    """(name, G, options, fields) for every model asked for, in the order given."""
    for path in opt.checkpoint:
        G, options, info = load_generator(device, path)
        yield (f"ESRGAN G ({info['what']})", G, options,
               {"stage": options.get("stage"), "step": info["step"], "checkpoint": str(path)})
    for alpha in opt.interp:
        G, options, info = load_generator(device, psnr_checkpoint=opt.psnr_checkpoint,
                                          gan_checkpoint=opt.gan_checkpoint, interp=alpha)
        yield f"ESRGAN G ({info['what']})", G, options, {"stage": "interpolated", "alpha": alpha, "step": None}


def default_jsonl(opt) -> Path:
    first = opt.checkpoint[0] if opt.checkpoint else opt.gan_checkpoint
    run = Path(first).resolve().parents[1]
    return run / "metrics.jsonl" if (run / "checkpoints").is_dir() else Path("esrgan_metrics.jsonl")


def main(opt) -> list[dict]:
    device = pick_device(opt.device)
    models, fields, scale, pairs, what = {}, {}, None, None, None
    for name, G, options, extra in generators(opt, device):
        if scale is None:
            scale = options["scale"]
            pairs, what = evaluation_pairs(opt.data, scale)
        elif options["scale"] != scale:
            raise UserError(f"the models upscale by different factors (x{scale}, x{options['scale']}): "
                            f"compare one scale")
        models[name] = [upscale(signed(G), lr, device).clamp(-1, 1) for lr, _ in pairs]  # G gives [0, 1]
        fields[name] = extra
    base = {"model": MODEL_NAME, "scale": scale, "images": what}
    jsonl = Path(opt.jsonl) if opt.jsonl else default_jsonl(opt)
    return report(models, pairs, scale, base, jsonl, opt.crops, fields=fields)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
