"""A training run imports only what it uses: without --eval-every no metrics package (torchmetrics,
torch-fidelity; scipy, unless albumentations brings it) is loaded, and on a folder of images neither are the packages that only
the embedded datasets need (scikit-learn, scikit-image). Each check is a real train.py run in its
own interpreter, which then lists the heavy top-level packages it holds."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT

HEAVY = {"scipy", "sklearn", "skimage", "torchmetrics", "torch_fidelity", "matplotlib", "pandas"}
PROBE = """
import json, runpy, sys
sys.argv = [sys.argv[1] + "/train.py"] + sys.argv[2:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    if exc.code:
        raise
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def loaded_after_training(folder: str, *args: str) -> set[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / folder), *args], cwd=ROOT / folder,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def write_images(folder, n: int, size: tuple[int, int]):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")


def test_dcgan_on_a_folder_loads_no_metrics_and_no_embedded_data_packages(tmp_path):
    write_images(tmp_path / "faces" / "img", 16, (32, 32))
    loaded = loaded_after_training("dcgan", "--data", str(tmp_path / "faces"), "--image-size", "32", "--ngf", "8",
                                   "--ndf", "8", "--batch-size", "8", "--max-steps", "1", "--out", str(tmp_path / "run"))
    assert "torch" in loaded and not loaded & HEAVY, loaded & HEAVY


def test_pix2pix_on_aligned_pairs_loads_no_metrics_and_no_embedded_data_packages(tmp_path):
    write_images(tmp_path / "pairs" / "train", 4, (128, 64))  # A|B side by side
    loaded = loaded_after_training("pix2pix", "--data", str(tmp_path / "pairs"), "--image-size", "32",
                                   "--load-size", "36", "--ngf", "8", "--ndf", "8", "--max-steps", "1",
                                   "--out", str(tmp_path / "run"))
    # albumentations (the paired jitter) imports scipy itself; nothing else heavy comes in
    assert "albumentations" in loaded and not loaded & (HEAVY - {"scipy"}), loaded & HEAVY


@pytest.mark.parametrize("folder", ["dcgan"])
def test_eval_every_loads_the_metrics_it_needs(tmp_path, folder):
    """The probe can see a metrics import: with --eval-every the run measures, and loads scipy."""
    write_images(tmp_path / "faces" / "img", 16, (32, 32))
    loaded = loaded_after_training(folder, "--data", str(tmp_path / "faces"), "--image-size", "32", "--ngf", "8",
                                   "--ndf", "8", "--batch-size", "8", "--max-steps", "1", "--eval-every", "1",
                                   "--eval-n", "8", "--out", str(tmp_path / "run"))
    assert loaded & {"scipy", "torchmetrics"}, sorted(loaded)
