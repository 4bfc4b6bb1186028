"""Every generate.py that reads image files: one file that cannot be used, in the middle of a
folder, gets its line; the files before and after it are still written; the exit status (5)
says that some were skipped. The generators are small random ones (the official weights
formats where a folder reads them, so no training is needed; one short srgan run)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import run_script
from tests.test_cyclegan_official import official_state as cyclegan_state
from tests.test_pix2pix_official import official_state as pix2pix_state
from tests.test_pix2pixhd_official import official_global as pix2pixhd_state

pytestmark = pytest.mark.usefixtures("one_thread")


def photo_folder(folder, bad: str):
    """a.png, b.png (unusable: `bad`), c.png."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a", "c"):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    if bad == "tiny":
        Image.new("RGB", (1, 1)).save(folder / "b.png")
    else:
        (folder / "b.png").write_text("not an image")
    return folder


def assert_skipped_middle(proc, out, suffix=".png"):
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "skipped" in proc.stderr and "b.png" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: skipped 1 of 3")
    assert (out / f"a{suffix}").is_file() and (out / f"c{suffix}").is_file() and not (out / f"b{suffix}").exists()


def test_pix2pix(tmp_path):
    torch.save(pix2pix_state(ngf=2, n_down=5), tmp_path / "g.pth")
    proc = run_script("pix2pix", "generate", "--checkpoint", tmp_path / "g.pth", "--input",
                      photo_folder(tmp_path / "in", "corrupt"), "--out", tmp_path / "out", "--device", "cpu")
    assert_skipped_middle(proc, tmp_path / "out")


def test_cyclegan_a_1x1_image(tmp_path):
    torch.save(cyclegan_state(ngf=2, blocks=1), tmp_path / "g.pth")
    proc = run_script("cyclegan", "generate", "--checkpoint", tmp_path / "g.pth", "--input",
                      photo_folder(tmp_path / "in", "tiny"), "--out", tmp_path / "out", "--device", "cpu")
    assert_skipped_middle(proc, tmp_path / "out")
    assert "1x1" in proc.stderr


def test_esrgan(tmp_path):
    from esrgan.model import build_generator

    torch.save(build_generator({"nf": 4, "nb": 1, "gc": 4}).state_dict(), tmp_path / "g.pth")
    proc = run_script("esrgan", "generate", "--checkpoint", tmp_path / "g.pth", "--input",
                      photo_folder(tmp_path / "in", "corrupt"), "--out", tmp_path / "out", "--device", "cpu")
    assert_skipped_middle(proc, tmp_path / "out")


def test_srgan(tmp_path):
    run = tmp_path / "run"
    proc = run_script("srgan", "train", "--features", "4", "--blocks", "1", "--batch-size", "2", "--hr-size", "32",
                      "--precision", "fp32", "--device", "cpu", "--epoch-length", "2", "--max-steps", "1",
                      "--out", run)
    assert proc.returncode == 0, proc.stderr
    proc = run_script("srgan", "generate", "--checkpoint", run / "checkpoints/last.pt", "--input",
                      photo_folder(tmp_path / "in", "corrupt"), "--out", tmp_path / "out", "--device", "cpu")
    assert_skipped_middle(proc, tmp_path / "out")


def test_pix2pixhd_a_label_out_of_range(tmp_path):
    torch.save(pix2pixhd_state(5 + 1, ngf=2, n_down=1, blocks=1), tmp_path / "g.pth")  # 5 labels + instances
    labels = tmp_path / "labels"
    labels.mkdir()
    for name, value in (("a", 1), ("b", 9), ("c", 4)):  # b holds label 9, beyond the model's 0..4
        Image.fromarray(np.full((16, 24), value, np.uint8)).save(labels / f"{name}.png")
    proc = run_script("pix2pixhd", "generate", "--checkpoint", tmp_path / "g.pth", "--label", labels, "--out",
                      tmp_path / "out", "--device", "cpu")
    assert_skipped_middle(proc, tmp_path / "out")
    assert "label value 9" in proc.stderr
