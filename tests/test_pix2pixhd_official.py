"""pix2pixhd: the official code's G weights (NVIDIA/pix2pixHD: GlobalGenerator, LocalEnhancer) load
and give the official network's outputs; --export-official and --load-global take its format.

The official networks are written out here from their structure, independently of
pix2pixhd/model.py. GlobalGenerator: one nn.Sequential `model`,
  0 ReflectionPad(3), 1 Conv7x7, IN, ReLU; per downsampling i: 4+3i Conv3x3/2, IN, ReLU;
  then B ResnetBlocks (`conv_block`: 0 pad, 1 Conv3x3, 2 IN, 3 ReLU, 4 pad, 5 Conv3x3, 6 IN);
  per upsampling: ConvT3x3/2, IN, ReLU; then ReflectionPad(3), Conv7x7, Tanh.
LocalEnhancer: `model` is that G1 (at twice the width) without its last three layers;
`model1_1` = [pad, Conv7x7, IN, ReLU, Conv3x3/2, IN, ReLU] on the full-size input, `model1_2` =
[Bl ResnetBlocks, ConvT3x3/2, IN, ReLU, pad, Conv7x7, Tanh] on model1_1's output + G1's; G1 reads
the input after AvgPool(3, 2, 1, count_include_pad=False). Every convolution has a bias.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pix2pixhd import generate as hd_generate
from pix2pixhd.model import encode_input
from pix2pixhd.utils import load_model
from tests.helpers import assert_one_line_error, in_process


def _conv(state, g, name, c_out, c_in, k, transposed=False):
    shape = (c_in, c_out, k, k) if transposed else (c_out, c_in, k, k)
    state[f"{name}.weight"] = torch.randn(*shape, generator=g) * 0.1
    state[f"{name}.bias"] = torch.randn(c_out, generator=g) * 0.1


def global_state(state, g, prefix, c_in, ngf, n_down, blocks, c_out=None):
    """The official GlobalGenerator's keys under `prefix` (c_out None: the LocalEnhancer's G1,
    without the output block). Returns the index after its last layer."""
    _conv(state, g, f"{prefix}1", ngf, c_in, 7)
    for i in range(n_down):
        _conv(state, g, f"{prefix}{4 + 3 * i}", ngf * 2 ** (i + 1), ngf * 2 ** i, 3)
    width, index = ngf * 2 ** n_down, 4 + 3 * n_down
    for b in range(blocks):
        for j in (1, 5):
            _conv(state, g, f"{prefix}{index + b}.conv_block.{j}", width, width, 3)
    index += blocks
    for i in range(n_down, 0, -1):
        _conv(state, g, f"{prefix}{index}", ngf * 2 ** (i - 1), ngf * 2 ** i, 3, transposed=True)
        index += 3
    if c_out is not None:
        _conv(state, g, f"{prefix}{index + 1}", c_out, ngf, 7)
    return index


def official_global(c_in, ngf=4, n_down=2, blocks=2, c_out=3, seed=0) -> dict:
    state, g = {}, torch.Generator().manual_seed(seed)
    global_state(state, g, "model.", c_in, ngf, n_down, blocks, c_out)
    return state


def official_local(c_in, ngf=4, n_down=2, blocks=2, local_blocks=2, c_out=3, seed=0) -> dict:
    state, g = {}, torch.Generator().manual_seed(seed)
    global_state(state, g, "model.", c_in, 2 * ngf, n_down, blocks)
    _conv(state, g, "model1_1.1", ngf, c_in, 7)
    _conv(state, g, "model1_1.4", 2 * ngf, ngf, 3)
    for b in range(local_blocks):
        for j in (1, 5):
            _conv(state, g, f"model1_2.{b}.conv_block.{j}", 2 * ngf, 2 * ngf, 3)
    _conv(state, g, f"model1_2.{local_blocks}", ngf, 2 * ngf, 3, transposed=True)
    _conv(state, g, f"model1_2.{local_blocks + 4}", c_out, ngf, 7)
    return state


def _run_global(state, prefix, x, n_down, blocks, with_output):
    def conv(y, i, stride=1, padding=0):
        return F.conv2d(y, state[f"{prefix}{i}.weight"], state[f"{prefix}{i}.bias"], stride, padding)

    def act(y):
        return F.relu(F.instance_norm(y))

    y = act(conv(F.pad(x, (3,) * 4, mode="reflect"), 1))
    for i in range(n_down):
        y = act(conv(y, 4 + 3 * i, 2, 1))
    index = 4 + 3 * n_down
    y = _blocks(state, prefix, y, index, blocks)
    index += blocks
    for _ in range(n_down):
        y = act(F.conv_transpose2d(y, state[f"{prefix}{index}.weight"], state[f"{prefix}{index}.bias"], 2, 1, 1))
        index += 3
    if with_output:
        y = torch.tanh(conv(F.pad(y, (3,) * 4, mode="reflect"), index + 1))
    return y


def _blocks(state, prefix, y, first, blocks):
    for b in range(first, first + blocks):
        def conv(t, j):
            return F.conv2d(F.pad(t, (1,) * 4, mode="reflect"), state[f"{prefix}{b}.conv_block.{j}.weight"],
                            state[f"{prefix}{b}.conv_block.{j}.bias"])
        y = y + F.instance_norm(conv(F.relu(F.instance_norm(conv(y, 1))), 5))
    return y


def official_forward(state, x, n_down=2, blocks=2, local_blocks=2):
    if not any(k.startswith("model1_") for k in state):
        return _run_global(state, "model.", x, n_down, blocks, True)
    coarse = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    h = _run_global(state, "model.", coarse, n_down, blocks, False)
    front = F.relu(F.instance_norm(F.conv2d(F.pad(x, (3,) * 4, mode="reflect"), state["model1_1.1.weight"],
                                            state["model1_1.1.bias"])))
    front = F.relu(F.instance_norm(F.conv2d(front, state["model1_1.4.weight"], state["model1_1.4.bias"], 2, 1)))
    y = _blocks(state, "model1_2.", front + h, 0, local_blocks)
    up = f"model1_2.{local_blocks}"
    y = F.relu(F.instance_norm(F.conv_transpose2d(y, state[f"{up}.weight"], state[f"{up}.bias"], 2, 1, 1)))
    last = f"model1_2.{local_blocks + 4}"
    return torch.tanh(F.conv2d(F.pad(y, (3,) * 4, mode="reflect"), state[f"{last}.weight"], state[f"{last}.bias"]))


def save(state, path) -> str:
    torch.save(state, path)
    return str(path)


@pytest.mark.parametrize("kind", ["global", "local"])
def test_official_weights_give_the_official_output(tmp_path, kind, capsys):
    label_nc = 5
    state = (official_global if kind == "global" else official_local)(label_nc + 1)
    G, E, options, _ = load_model(save(state, tmp_path / "latest_net_G.pth"), "cpu")
    note = capsys.readouterr().out
    assert "official" in note and "5 labels + the instance boundary map" in note
    assert E is None and options["label_nc"] == label_nc and not options["no_instance"]
    assert options["n_local_enhancers"] == (kind == "local") and options["ngf"] == 4
    label = torch.randint(0, label_nc, (2, 16, 32))
    inst = label * 3 + (torch.arange(32) > 15)  # instances that split classes
    x = encode_input(label, inst, label_nc)
    with torch.no_grad():
        assert torch.allclose(G(x), official_forward(state, x), atol=1e-5)


def test_no_instance_reads_the_channels_as_labels(tmp_path, capsys):
    _, _, options, _ = load_model(save(official_global(6), tmp_path / "g.pth"), "cpu", no_instance=True)
    assert options["label_nc"] == 6 and options["no_instance"]


def test_generate_needs_no_other_flag_for_official_weights(tmp_path, capsys):
    path = save(official_local(5 + 1), tmp_path / "latest_net_G.pth")
    rng = np.random.default_rng(0)
    label = rng.integers(0, 5, (20, 30)).astype(np.uint8)
    Image.fromarray(label).save(tmp_path / "L.png")
    Image.fromarray((label * 2).astype(np.uint8)).save(tmp_path / "I.png")
    hd_generate.main(hd_generate.parse_opt(["--checkpoint", path, "--label", str(tmp_path / "L.png"), "--inst",
                                            str(tmp_path / "I.png"), "--out", str(tmp_path / "out.png"),
                                            "--device", "cpu"]))
    assert Image.open(tmp_path / "out.png").size == (30, 20)
    proc = in_process(capsys, lambda: hd_generate.main(hd_generate.parse_opt(["--checkpoint", path, "--device", "cpu"])))
    assert_one_line_error(proc, "give --label")


@pytest.mark.parametrize("damage, needle", [
    ("drop", "lacks model1_2.1.conv_block.5.weight"),
    ("shape", "model1_1.4.weight of shape (8, 5, 3, 3)"),
    ("extra", "model1_3.0.weight, which this network has no place for"),
])
def test_a_wrong_or_partial_state_dict_names_the_first_key_that_does_not_fit(tmp_path, capsys, damage, needle):
    state = official_local(6)
    if damage == "drop":
        del state["model1_2.1.conv_block.5.weight"]
    elif damage == "shape":
        state["model1_1.4.weight"] = torch.zeros(8, 5, 3, 3)
    else:
        state["model1_3.0.weight"] = torch.zeros(1)
    path = save(state, tmp_path / "bad.pth")
    proc = in_process(capsys, lambda: hd_generate.main(hd_generate.parse_opt(
        ["--checkpoint", path, "--label", str(tmp_path), "--device", "cpu"])))
    assert_one_line_error(proc, needle)


def test_export_official_round_trips_and_loads_as_a_stage_1(tmp_path, capsys):
    from pix2pixhd import train as hd_train

    small = ["--ndf", "8", "--n-blocks-global", "2", "--n-downsample-global", "2", "--nef", "4",
             "--n-downsample-E", "2", "--num-D", "2", "--load-size", "64", "--precision", "fp32", "--device", "cpu",
             "--no-vgg-loss", "--epoch-length", "2", "--max-steps", "1"]
    hd_train.main(hd_train.parse_opt(small + ["--ngf", "8", "--out", str(tmp_path / "g1")]))
    ckpt = str(tmp_path / "g1/checkpoints/last.pt")
    exported = tmp_path / "latest_net_G.pth"
    hd_generate.main(hd_generate.parse_opt(["--checkpoint", ckpt, "--export-official", str(exported)]))
    ours, _, options, _ = load_model(ckpt, "cpu")
    state = torch.load(exported, weights_only=True)
    in_ch = state["model.1.weight"].shape[1]
    assert set(state) == set(official_global(in_ch, ngf=8, n_down=2, blocks=2))
    back, _, _, _ = load_model(str(exported), "cpu")
    x = torch.rand(1, in_ch, 32, 64)
    with torch.no_grad():
        assert torch.equal(back(x), ours(x))
        assert torch.allclose(ours(x), official_forward(state, x), atol=1e-5)
    # the official global G as stage 1 of a local-enhancer run (the official --load_pretrain)
    hd_train.main(hd_train.parse_opt(small + ["--ngf", "4", "--n-local-enhancers", "1", "--load-global",
                                              str(exported), "--out", str(tmp_path / "g2")]))
    assert "loaded G1 from the official code's global G" in capsys.readouterr().out
