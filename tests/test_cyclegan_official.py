"""cyclegan: the official code's G weights (junyanz/pytorch-CycleGAN-and-pix2pix's ResnetGenerator)
load and give the official network's outputs, and --export-official writes them back.

The official network is written out here from its structure, independently of cyclegan/model.py:
one nn.Sequential `model`,
  0 ReflectionPad(3), 1 Conv7x7, 2 IN, 3 ReLU, 4 Conv3x3/2, 5 IN, 6 ReLU, 7 Conv3x3/2, 8 IN, 9 ReLU,
  10 .. 9+B ResnetBlock (its `conv_block`: 0 ReflectionPad(1), 1 Conv3x3, 2 IN, 3 ReLU,
                         4 ReflectionPad(1), 5 Conv3x3, 6 IN),
  10+B ConvT3x3/2, IN, ReLU, 13+B ConvT3x3/2, IN, ReLU, 16+B ReflectionPad(3), 17+B Conv7x7, Tanh;
every convolution with a bias (InstanceNorm has no affine parameters).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cyclegan import generate as cyc_generate
from cyclegan import train as cyc_train
from cyclegan.utils import load_generator
from tests.helpers import assert_one_line_error, fake_downloads, in_process


def official_state(ngf: int, blocks: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)

    def conv(name, c_out, c_in, k, transposed=False):
        shape = (c_in, c_out, k, k) if transposed else (c_out, c_in, k, k)
        return {f"model.{name}.weight": torch.randn(*shape, generator=g) * 0.1,
                f"model.{name}.bias": torch.randn(c_out, generator=g) * 0.1}

    state = {**conv(1, ngf, 3, 7), **conv(4, 2 * ngf, ngf, 3), **conv(7, 4 * ngf, 2 * ngf, 3)}
    for b in range(10, 10 + blocks):
        state.update({**conv(f"{b}.conv_block.1", 4 * ngf, 4 * ngf, 3), **conv(f"{b}.conv_block.5", 4 * ngf, 4 * ngf, 3)})
    state.update({**conv(10 + blocks, 2 * ngf, 4 * ngf, 3, transposed=True),
                  **conv(13 + blocks, ngf, 2 * ngf, 3, transposed=True), **conv(17 + blocks, 3, ngf, 7)})
    return state


def official_forward(state: dict, x: torch.Tensor, blocks: int) -> torch.Tensor:
    def conv(y, i, stride=1, padding=0):
        return F.conv2d(y, state[f"model.{i}.weight"], state[f"model.{i}.bias"], stride, padding)

    def up(y, i):
        return F.conv_transpose2d(y, state[f"model.{i}.weight"], state[f"model.{i}.bias"], 2, 1, 1)

    def norm_relu(y):
        return F.relu(F.instance_norm(y))

    y = norm_relu(conv(F.pad(x, (3,) * 4, mode="reflect"), 1))
    y = norm_relu(conv(y, 4, 2, 1))
    y = norm_relu(conv(y, 7, 2, 1))
    for b in range(10, 10 + blocks):
        r = norm_relu(conv(F.pad(y, (1,) * 4, mode="reflect"), f"{b}.conv_block.1"))
        y = y + F.instance_norm(conv(F.pad(r, (1,) * 4, mode="reflect"), f"{b}.conv_block.5"))
    y = norm_relu(up(y, 10 + blocks))
    y = norm_relu(up(y, 13 + blocks))
    return torch.tanh(conv(F.pad(y, (3,) * 4, mode="reflect"), 17 + blocks))


def save_state(state: dict, path) -> str:
    torch.save(state, path)
    return str(path)


@pytest.mark.parametrize("blocks", [9, 6])
def test_official_weights_give_the_official_output(tmp_path, blocks, capsys):
    state = official_state(ngf=4, blocks=blocks)
    G, options = load_generator(save_state(state, tmp_path / "latest_net_G_A.pth"), "BtoA", "cpu")
    assert "official" in capsys.readouterr().out
    assert (options["ngf"], options["n_blocks"]) == (4, blocks)
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(G(x), official_forward(state, x, blocks), atol=1e-5)


def test_instance_norm_statistics_of_old_files_are_dropped(tmp_path, capsys):
    state = official_state(ngf=4, blocks=9)
    state.update({"model.2.running_mean": torch.zeros(4), "model.2.running_var": torch.ones(4),
                  "model.10.conv_block.2.running_mean": torch.zeros(16)})  # as PyTorch 0.3 saved them
    G, _ = load_generator(save_state(state, tmp_path / "horse2zebra.pth"), "AtoB", "cpu")
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(G(x), official_forward(state, x, 9), atol=1e-5)


@pytest.mark.parametrize("damage, needle", [
    ("drop", "lacks model.13.conv_block.5.bias"),
    ("shape", "model.4.weight of shape (9, 4, 3, 3)"),
    ("unet", "pix2pix/ reads U-Net generators"),
    ("other", "neither a cyclegan checkpoint"),
])
def test_a_wrong_or_partial_state_dict_is_one_line(tmp_path, capsys, damage, needle):
    state = official_state(ngf=4, blocks=9)
    if damage == "drop":
        del state["model.13.conv_block.5.bias"]
    elif damage == "shape":
        state["model.4.weight"] = torch.zeros(9, 4, 3, 3)
    elif damage == "unet":
        state = {"model.model.0.weight": torch.zeros(64, 3, 4, 4)}
    else:
        state = {"conv.weight": torch.zeros(1)}
    path = save_state(state, tmp_path / "bad.pth")
    proc = in_process(capsys, lambda: cyc_generate.main(cyc_generate.parse_opt(
        ["--checkpoint", path, "--input", str(tmp_path), "--out", str(tmp_path / "o"), "--device", "cpu"])))
    assert_one_line_error(proc, needle)


def test_export_official_round_trips_either_direction(tmp_path, capsys):
    out = tmp_path / "run"
    cyc_train.main(cyc_train.parse_opt(["--image-size", "32", "--ngf", "4", "--ndf", "4", "--precision", "fp32",
                                        "--device", "cpu", "--max-steps", "1", "--out", str(out)]))
    ckpt = str(out / "checkpoints/last.pt")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    for direction in ("AtoB", "BtoA"):
        exported = tmp_path / f"{direction}.pth"
        cyc_generate.main(cyc_generate.parse_opt(["--checkpoint", ckpt, "--direction", direction,
                                                  "--export-official", str(exported)]))
        ours, options = load_generator(ckpt, direction, "cpu")
        state = torch.load(exported, weights_only=True)
        assert set(state) == set(official_state(ngf=4, blocks=options["n_blocks"]))
        back, _ = load_generator(str(exported), direction, "cpu")
        with torch.no_grad():
            assert torch.equal(back(x), ours(x))
            assert torch.allclose(ours(x), official_forward(state, x, options["n_blocks"]), atol=1e-5)


def test_pretrained_downloads_a_released_model_once(tmp_path, monkeypatch, capsys):
    from PIL import Image

    urls = fake_downloads(monkeypatch, tmp_path, lambda: official_state(ngf=2, blocks=9))
    Image.new("RGB", (40, 32), (120, 30, 200)).save(tmp_path / "in.png")
    for _ in range(2):
        cyc_generate.main(cyc_generate.parse_opt(["--pretrained", "horse2zebra", "--input", str(tmp_path / "in.png"),
                                                  "--out", str(tmp_path / "out.png"), "--device", "cpu"]))
    assert urls == ["http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth"]
    assert "translated 1 image(s) the official G" in capsys.readouterr().out
