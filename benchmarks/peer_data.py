"""Write the synthetic datasets that our train.py and the official code both train on in the
side-by-side rows of benchmarks/README.md ("Against the official code").

    python benchmarks/peer_data.py /tmp/peers        # ~15 MB, a few seconds

Every image is a smooth random colour field (one sine wave per channel) with a little noise,
from a fixed seed, in the layout each official code reads:

    p2p/train/NNN.jpg        20 aligned A|B pairs, 512x256 (pix2pix: 20 steps at batch 1)
    cyc/trainA, cyc/trainB   10 + 10 images, 256x256 (CycleGAN: 10 steps at batch 1)
    faces/img/NNNN.png       1,024 images, 64x64 (DCGAN: 8 batches of 128 per epoch)
    faces320/img/NNNN.png    the first 320 of them (WGAN: 5 batches of 64 per epoch)

The content does not matter for speed; the sizes and counts decide how many steps each run makes.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image


def colour_field(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    image = np.zeros((height, width, 3))
    for c in range(3):
        a, b, phase = rng.uniform(-1, 1, 3)
        image[..., c] = 0.5 + 0.3 * np.sin(6 * (a * x + b * y) + 3 * phase)
    image += rng.normal(0, 0.05, image.shape)
    return Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8))


def write(root: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    (root / "p2p/train").mkdir(parents=True, exist_ok=True)
    for i in range(20):
        pair = Image.new("RGB", (512, 256))
        pair.paste(colour_field(rng, 256, 256), (0, 0))
        pair.paste(colour_field(rng, 256, 256), (256, 0))
        pair.save(root / f"p2p/train/{i:03d}.jpg", quality=95)
    for side in "AB":
        (root / f"cyc/train{side}").mkdir(parents=True, exist_ok=True)
        for i in range(10):
            colour_field(rng, 256, 256).save(root / f"cyc/train{side}/{i:03d}.jpg", quality=95)
    (root / "faces/img").mkdir(parents=True, exist_ok=True)
    (root / "faces320/img").mkdir(parents=True, exist_ok=True)
    for i in range(1024):
        path = root / f"faces/img/{i:04d}.png"
        colour_field(rng, 64, 64).save(path)
        if i < 320:
            shutil.copy(path, root / f"faces320/img/{i:04d}.png")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path, help="folder to write the four datasets into")
    p.add_argument("--seed", type=int, default=0)
    opt = p.parse_args()
    write(opt.root, opt.seed)
    print(f"wrote {opt.root}/p2p, cyc, faces, faces320")


if __name__ == "__main__":
    main()
