"""Sample from a trained WGAN.

    python generate.py --checkpoint runs/wgan-digits/checkpoints/last.pt            # 8x8 grid
    python generate.py --checkpoint ... --n 100 --individual out/                    # + one PNG each

G runs in eval mode (BatchNorm running statistics), so a sample does not depend
on the batch it is drawn with. The critic is not needed to sample.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: `cd wgan && python generate.py` works

import argparse

import torch

from common import inference
from common.device import pick_device
from common.errors import run_main
from wgan.model import Generator
from wgan.utils import sample_z

MODEL_NAME = "wgan"


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Generate images with a trained WGAN.")
    inference.add_generate_args(p, model=MODEL_NAME)
    return p.parse_args(argv)


def build_generator(o: dict) -> Generator:
    """The generator these training options describe (the checkpoint's "options")."""
    return Generator(o["nz"], o["ngf"], o["channels"], o["image_size"])


def load_generator(path, device, payload: dict | None = None) -> tuple[Generator, dict]:
    """G rebuilt from the options stored in the checkpoint, with its weights."""
    return inference.load_generator(path, MODEL_NAME, build_generator, device, payload=payload)


@torch.no_grad()
def main(opt) -> Path:
    device = pick_device(opt.device)
    G, o = load_generator(opt.checkpoint, device)
    z = sample_z(opt.n, o["nz"], o.get("z_dist", "normal"), generator=torch.Generator().manual_seed(opt.seed))
    return inference.write_images(inference.in_batches(G, z, device), opt)


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
