"""Measure SRResNet / SRGAN as the paper reports it: PSNR (dB) and SSIM on the Y channel, with a
border of `scale` pixels cropped (Sec. 3.1), beside bicubic upsampling.

    python evaluate.py --checkpoint runs/srgan-photos/checkpoints/last.pt
    python evaluate.py --checkpoint ... --data /path/to/Set5/HR --crops crops.png

The images are the held-out bundled photos (whole, never cropped for training), or every image
of --data (HR images; their LR is made by the same bicubic downsampling as in training). G runs
in eval mode (BatchNorm's running statistics). Results are printed and appended as JSON lines
to <run>/metrics.jsonl (or --jsonl); --crops writes rows LR | bicubic | G | HR.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: `cd srgan && python evaluate.py` works

import argparse

import torch

from common import image2image as i2i
from common import inference, metrics, superres
from common.checkpoint import load_for_inference
from common.device import pick_device
from common.run import save_grid
from srgan.model import build_generator

MODEL_NAME = "srgan"


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="PSNR / SSIM (Y channel) of SRResNet / SRGAN beside bicubic.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by srgan/train.py (either stage)")
    p.add_argument("--data", default=None, help="a folder of HR images (default: the held-out bundled photos)")
    p.add_argument("--crops", default=None, metavar="PNG", help="also write rows LR | bicubic | G | HR (centre crops)")
    p.add_argument("--jsonl", default=None, help="append results here (default: <run>/metrics.jsonl)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    return p.parse_args(argv)


def evaluation_pairs(data: str | None, scale: int) -> tuple[list, str]:
    """(LR in [0, 1], HR in [-1, 1]) pairs and what they are."""
    if data is None or data == "photos":
        return superres.held_out_images(scale), f"held-out photos {', '.join(i2i.HELD_OUT_PHOTOS)}"
    pairs = []
    for f in superres.folder_images(data):
        hr = superres.modcrop(i2i.read_rgb(f), scale)
        pairs.append((superres.to_unit_tensor(superres.bicubic_downsample(hr, scale)), i2i.to_tensor(hr)))
    return pairs, f"{len(pairs)} images of {data}"


def y_report(outputs: list[torch.Tensor], targets: list[torch.Tensor], scale: int) -> dict:
    """Mean PSNR and SSIM on the Y channel with `scale` border pixels cropped, image by image."""
    psnr = [metrics.psnr(o.unsqueeze(0), t.unsqueeze(0), y_channel=True, crop_border=scale)
            for o, t in zip(outputs, targets)]
    ssim = [metrics.ssim(o.unsqueeze(0), t.unsqueeze(0), y_channel=True, crop_border=scale)
            for o, t in zip(outputs, targets)]
    return {"psnr_y": sum(psnr) / len(psnr), "ssim_y": sum(ssim) / len(ssim)}


def centre(image: torch.Tensor, side: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[..., top:top + side, left:left + side]


def main(opt) -> list[dict]:
    device = pick_device(opt.device)
    payload = load_for_inference(opt.checkpoint, MODEL_NAME)
    G, options = inference.load_generator(opt.checkpoint, MODEL_NAME, build_generator, device, payload=payload)
    scale = options["scale"]
    pairs, what = evaluation_pairs(opt.data, scale)
    with torch.no_grad():
        outputs = [i2i.translate(G, lr, 1, device, scale).clamp(-1, 1) for lr, _ in pairs]
    bicubic = [(superres.bicubic_upsample(lr.unsqueeze(0), scale)[0] * 2 - 1).clamp(-1, 1) for lr, _ in pairs]
    targets = [hr for _, hr in pairs]
    common = {"model": MODEL_NAME, "checkpoint": str(opt.checkpoint), "step": payload.get("step"),
              "stage": options["stage"], "scale": scale, "images": what}
    records = [{**common, "what": f"SRGAN G ({options['stage']} stage)", **y_report(outputs, targets, scale)},
               {**common, "what": "bicubic", **y_report(bicubic, targets, scale)}]
    path = Path(opt.jsonl) if opt.jsonl else Path(opt.checkpoint).resolve().parents[1] / "metrics.jsonl"
    for r in records:
        print(f"{r['what']}: PSNR(Y) {r['psnr_y']:.2f} dB  SSIM(Y) {r['ssim_y']:.4f}  [{what}, x{scale}]")
        metrics.append_jsonl(path, r)
    print(f"appended to {path}")
    if opt.crops:
        side = 96
        rows = []
        for (lr, hr), out, bic in zip(pairs, outputs, bicubic):
            nearest = torch.nn.functional.interpolate(lr.unsqueeze(0), scale_factor=scale, mode="nearest")[0] * 2 - 1
            rows += [centre(x, side) for x in (nearest, bic, out, hr)]
        save_grid(torch.stack(rows), opt.crops, nrow=4)
        print(f"wrote {opt.crops}: rows LR (nearest) | bicubic | G | HR")
    return records


if __name__ == "__main__":
    inference.run_script(parse_opt, main)
