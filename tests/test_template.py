"""Every folder is a template: copied under a new name, it runs its own files.

For each of the twelve folders: copy it under a new name into a temporary directory beside a
copy of common/, make a visible change in the copy's model.py (it prints its own module name
and path when imported), then run the copy's `train.py --max-steps 1` and its `generate.py` on
the checkpoint, as a user would (`cd my_copy && python train.py`). Both must run the copy's
model.py and never the original's. Then the same once more with the copy inside the repository
root, next to the original folder, where an import by the folder's name would silently pick the
original. (tests/test_layout.py checks the import rules statically; this runs them.)

The copies run two at a time, each with one thread, so the check costs about one process start
per run on a 2-core machine.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT, run_script

MARK = "TEMPLATE-COPY-MODEL"
CPU = ["--device", "cpu", "--precision", "fp32"]

# the smallest run of each folder: one step at tiny widths and sizes (the paper sizes are tested by
# parameter count elsewhere); generate.py's arguments after --checkpoint, given a folder of inputs
TRAIN = {
    "simple_gan": ["--arch", "seed", "--batch-size", "8"],
    "dcgan": ["--image-size", "16", "--ngf", "4", "--ndf", "4", "--batch-size", "8"],
    "wgan": ["--image-size", "16", "--ngf", "4", "--ndf", "4", "--batch-size", "8", "--n-critic", "1"],
    "wgan_gp": ["--image-size", "16", "--ngf", "4", "--ndf", "4", "--batch-size", "8", "--n-critic", "1"],
    "cgan": ["--image-size", "16", "--ngf", "4", "--ndf", "4", "--embed-size", "8", "--batch-size", "8",
             "--n-critic", "1"],
    "pix2pix": ["--image-size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4", "--epoch-length", "2"],
    "cyclegan": ["--image-size", "32", "--ngf", "4", "--ndf", "4", "--epoch-size", "2"],
    "progan": ["--max-resolution", "8", "--phase-images", "4", "--batch-size", "2", "--nz", "8",
               "--fmap-base", "32", "--fmap-max", "8"],
    "srgan": ["--features", "4", "--blocks", "1", "--batch-size", "1", "--epoch-length", "2", "--hr-size", "24"],
    "esrgan": ["--nf", "4", "--nb", "1", "--gc", "4", "--batch-size", "1", "--epoch-length", "2", "--hr-size", "32"],
    "lapgan": ["--image-size", "16", "--levels", "2", "--ngf", "4", "--ndf", "4", "--coarse-hidden-g", "8",
               "--coarse-hidden-d", "8", "--batch-size", "8"],
    "pix2pixhd": ["--ngf", "4", "--ndf", "4", "--n-blocks-global", "1", "--n-downsample-global", "2",
                  "--num-D", "1", "--load-size", "32", "--epoch-length", "1", "--no-vgg-loss"],
}
GENERATE = {
    "cyclegan": lambda inputs: ["--input", inputs, "--out", inputs.parent / "translated"],
    "srgan": lambda inputs: ["--input", inputs, "--out", inputs.parent / "upscaled"],
    "esrgan": lambda inputs: ["--input", inputs, "--out", inputs.parent / "upscaled"],
    "pix2pix": lambda inputs: ["--n", "2", "--out", inputs.parent / "rows.png"],
    "pix2pixhd": lambda inputs: ["--n", "1", "--out", inputs.parent / "rows.png"],
}
FOLDERS = sorted(TRAIN)


def generate_args(folder: str, inputs: Path) -> list:
    default = lambda inputs: ["--n", "4", "--out", inputs.parent / "samples.png"]  # noqa: E731
    return GENERATE.get(folder, default)(inputs)


def make_copy(folder: str, parent: Path, name: str) -> Path:
    """`cp -r folder parent/name`, with a visible change in the copy's model.py."""
    copy = parent / name
    shutil.copytree(ROOT / folder, copy, ignore=shutil.ignore_patterns("__pycache__", "runs", "assets"))
    with open(copy / "model.py", "a") as f:
        f.write(f'\nprint(f"{MARK} {{__name__}} {{__file__}}")  # the copy\'s own change\n')
    return copy


def run(copy: Path, script: str, args: list) -> subprocess.CompletedProcess:
    """`cd copy && python script.py args`, with nothing on PYTHONPATH and one thread."""
    return run_script(copy.name, script, *args, cwd=copy, timeout=600,
                      env={"PYTHONPATH": None, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                           "PYTHONDONTWRITEBYTECODE": "1"})


def train_and_generate(folder: str, copy: Path, work: Path, inputs: Path) -> dict:
    """The copy's `train.py --max-steps 1`, then its generate.py on the checkpoint it wrote."""
    train = run(copy, "train", [*TRAIN[folder], *CPU, "--max-steps", "1", "--out", work / "run"])
    generate = run(copy, "generate", ["--checkpoint", work / "run" / "checkpoints" / "last.pt", "--device", "cpu",
                                      *generate_args(folder, inputs)])
    return {"copy": copy, "package": copy.name, "train": train, "generate": generate}


def check_one(folder: str, work: Path) -> dict:
    """The check in a temporary directory beside a copy of common/, then beside the original folder."""
    inputs = work / "inputs"
    inputs.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(inputs / "photo.png")
    shutil.copytree(ROOT / "common", work / "common", ignore=shutil.ignore_patterns("__pycache__"))
    results = {"tmp": train_and_generate(folder, make_copy(folder, work, f"my_{folder}"), work / "tmp", inputs)}
    in_root = make_copy(folder, ROOT, f"_template_{folder}_{uuid.uuid4().hex[:8]}")
    try:
        results["root"] = train_and_generate(folder, in_root, work / "root", inputs)
    finally:
        shutil.rmtree(in_root, ignore_errors=True)
    return results


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    base = tmp_path_factory.mktemp("template")
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        futures = {f: pool.submit(check_one, f, base / f) for f in FOLDERS}
        return {f: future.result() for f, future in futures.items()}


def ran_the_copy(proc: subprocess.CompletedProcess, package: str, copy: Path) -> None:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    loaded = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith(MARK)]
    assert loaded == [[f"{package}.model", str(copy / "model.py")]], proc.stdout[-2000:]


@pytest.mark.parametrize("where", ["tmp", "root"])
@pytest.mark.parametrize("folder", FOLDERS)
def test_a_copy_runs_its_own_code(copies, folder, where):
    """where = tmp: a copy beside common/ only; root: a copy beside the original folder."""
    result = copies[folder][where]
    ran_the_copy(result["train"], result["package"], result["copy"])
    ran_the_copy(result["generate"], result["package"], result["copy"])
    assert not list(ROOT.glob("_template_*"))  # the repository is left as it was
