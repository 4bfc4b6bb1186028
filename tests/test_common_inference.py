"""common.inference: generate.py / evaluate.py plumbing, and what a user's bad input gets,
once here and once through a folder's script (the way the READMEs say to run it)."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from PIL import Image

from common import inference
from common.errors import CheckpointError
from tests.helpers import assert_one_line_error, run_script


# ------------------------------------------------------------------ --out
def test_out_as_a_file_keeps_its_name(tmp_path):
    assert inference.grid_path(str(tmp_path / "grid.png")) == tmp_path / "grid.png"
    assert inference.grid_path(str(tmp_path / "grid.JPG")) == tmp_path / "grid.JPG"


@pytest.mark.parametrize("how", ["existing folder", "trailing slash", "no extension"])
def test_out_as_a_folder_puts_the_grid_inside(tmp_path, how):
    if how == "existing folder":
        (tmp_path / "samples.d").mkdir()
        text, folder = str(tmp_path / "samples.d"), tmp_path / "samples.d"
    elif how == "trailing slash":
        text, folder = str(tmp_path / "new.d") + "/", tmp_path / "new.d"
    else:
        text, folder = str(tmp_path / "runs" / "samples"), tmp_path / "runs" / "samples"
    assert inference.grid_path(text) == folder / inference.GRID_NAME


def test_out_with_an_extension_no_image_format_has_is_refused(tmp_path):
    with pytest.raises(argparse.ArgumentTypeError, match=r"'\.txt' is not an image format.*folder"):
        inference.grid_path(str(tmp_path / "grid.txt"))


def test_individual_must_be_a_folder(tmp_path):
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(argparse.ArgumentTypeError, match="is a file"):
        inference.individual_folder(str(tmp_path / "file.png"))


@pytest.mark.parametrize("n", ["0", "-3", "two"])
def test_counts_must_be_positive_integers(n, capsys):
    parser = inference.generate_parser("toy", "test")
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--checkpoint", "x.pt", "--n", n])
    assert exc.value.code == 2 and "--n" in capsys.readouterr().err


def test_write_images_grid_and_single_files(tmp_path):
    opt = argparse.Namespace(out=inference.grid_path(str(tmp_path / "out") + "/"), individual=tmp_path / "each")
    images = torch.rand(6, 3, 8, 8) * 2 - 1
    path = inference.write_images(images, opt, nrow=3, names=[f"{i}.png" for i in range(6)])
    assert path == tmp_path / "out" / "samples.png"
    assert Image.open(path).size == (3 * 10 + 2, 2 * 10 + 2)  # 3 columns, 2 rows, 2 px padding
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == [f"{i}.png" for i in range(6)]


# -------------------------------------------------------- loading the generator
def test_load_generator_names_a_missing_option(tmp_path):
    payload = {"options": {"nz": 4}, "models": {"G": {}}}
    with pytest.raises(CheckpointError, match="options lack 'ngf'"):
        inference.load_generator(tmp_path / "x.pt", "toy", lambda o: torch.nn.Linear(o["nz"], o["ngf"]), "cpu",
                                 payload=payload)


# ----------------------------------------------------- through a folder's script
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("simple_gan") / "run"
    proc = run_script("simple_gan", "train", "--max-steps", "1", "--batch-size", "8", "--device", "cpu",
                      "--precision", "fp32", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out / "checkpoints" / "last.pt"


def test_generate_into_a_folder(checkpoint, tmp_path):
    proc = run_script("simple_gan", "generate", "--checkpoint", checkpoint, "--n", "4",
                      "--out", tmp_path / "runs" / "samples", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "runs" / "samples" / "samples.png").is_file()
    assert "samples.png" in proc.stdout


@pytest.mark.parametrize("args, needle", [
    (["--n", "0"], "--n"),
    (["--n", "-3"], "--n"),
    (["--out", "grid.txt"], "not an image format"),
])
def test_generate_refuses_bad_flags_in_one_line(checkpoint, args, needle):
    proc = run_script("simple_gan", "generate", "--checkpoint", checkpoint, "--device", "cpu", *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("script", ["generate", "evaluate"])
def test_a_corrupt_checkpoint_is_called_corrupt(script, tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"\x13" + bytes(range(256)) * 8)
    proc = run_script("simple_gan", script, "--checkpoint", bad, "--device", "cpu")
    line = assert_one_line_error(proc, "not a PyTorch file")
    assert "arbitrary Python objects" not in line


def test_a_truncated_checkpoint_is_called_truncated(checkpoint, tmp_path):
    bad = tmp_path / "cut.pt"
    data = Path(checkpoint).read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    proc = run_script("simple_gan", "generate", "--checkpoint", bad, "--device", "cpu")
    assert_one_line_error(proc, "truncated")
