"""--channels-last auto: every convolutional folder keeps its measured memory-format table
beside its networks (model.py's CHANNELS_LAST, figures in its README's speed section) and its
train.py hands that table to common.loop.setup, so an unset flag follows this model's
measurements while --channels-last / --no-channels-last still force either format."""
from __future__ import annotations

import ast
import importlib

import pytest
import torch

from tests.helpers import ROOT

FOLDERS = sorted(p.parent.name for p in ROOT.glob("*/train.py"))
MLP_ONLY = {"simple_gan"}  # no convolutions: the memory format does not apply
KINDS = {"cpu-fp32", "cpu-bf16", "cuda"}


def setup_calls(folder: str) -> list[ast.Call]:
    tree = ast.parse((ROOT / folder / "train.py").read_text())
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "setup"]


@pytest.mark.parametrize("folder", sorted(set(FOLDERS) - MLP_ONLY))
def test_each_conv_folder_measures_and_passes_its_table(folder):
    table = importlib.import_module(f"{folder}.model").CHANNELS_LAST
    assert set(table) == KINDS and all(isinstance(v, bool) for v in table.values()), table
    (call,) = setup_calls(folder)
    assert [ast.unparse(a) for a in call.args] == ["opt", "MODEL_NAME", "CHANNELS_LAST"]
    imports = [n for n in ast.parse((ROOT / folder / "train.py").read_text()).body
               if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module == "model"]
    assert any(a.name == "CHANNELS_LAST" for n in imports for a in n.names)
    readme = (ROOT / folder / "README.md").read_text()
    rows = {"cpu-fp32": "| CPU in fp32 (no native bf16) |", "cpu-bf16": "| CPU in bf16 (AVX512-BF16 / AMX) |",
            "cuda": "| CUDA |"}
    for kind, start in rows.items():  # the README's speed section records the same choice
        (line,) = [line for line in readme.splitlines() if line.startswith(start)]
        assert f"| **{'on' if table[kind] else 'off'}** |" in line, (folder, kind, line)


def test_mlp_folders_pass_no_table():
    for folder in MLP_ONLY:
        (call,) = setup_calls(folder)
        assert len(call.args) == 2


@pytest.mark.parametrize("flag, expected", [(None, False), (True, True), (False, False)])
def test_pix2pix_auto_is_nchw_on_an_fp32_cpu_and_the_flag_forces(tmp_path, flag, expected):
    from common.loop import setup
    from pix2pix import train

    argv = ["--device", "cpu", "--precision", "fp32", "--out", str(tmp_path)]
    argv += [] if flag is None else ["--channels-last" if flag else "--no-channels-last"]
    session = setup(train.parse_opt(argv), train.MODEL_NAME, train.CHANNELS_LAST)
    assert session.channels_last is expected
    G = session.place(torch.nn.Conv2d(3, 4, 3))
    assert G.weight.is_contiguous(memory_format=torch.channels_last) is expected


def test_dcgan_auto_is_nhwc_on_an_fp32_cpu(tmp_path):
    from common.loop import setup
    from dcgan import train

    session = setup(train.parse_opt(["--device", "cpu", "--precision", "fp32", "--out", str(tmp_path)]),
                    train.MODEL_NAME, train.CHANNELS_LAST)
    assert session.channels_last is True
