"""pix2pix: the official code's G weights (junyanz/pytorch-CycleGAN-and-pix2pix's UnetGenerator)
load, give the official network's outputs, and --export-official writes them back.

The official network is written out here from its structure, independently of pix2pix/model.py:
one UnetSkipConnectionBlock per level, nested, each an nn.Sequential whose indices name its keys
  outermost  [Conv, <block>, ReLU, ConvT(bias), Tanh]                       -> 0, 3
  middle     [LeakyReLU, Conv, BN, <block>, ReLU, ConvT, BN (, Dropout)]    -> 1, 2, 5, 6
  innermost  [LeakyReLU, Conv, ReLU, ConvT, BN]                             -> 1, 3, 4
and each level but the outermost returns cat([its input, its output]) (skip first). Dropout 0.5
sits in the middle levels 4 .. n-2, the "ngf * 8" blocks of its constructor.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from common.checkpoint import load_file
from pix2pix import generate as p2p_generate
from pix2pix import train as p2p_train
from pix2pix.model import UNetGenerator
from pix2pix.utils import load_generator, run_generator
from tests.helpers import assert_one_line_error, fake_downloads, in_process

TINY = ["--image-size", "32", "--load-size", "36", "--ngf", "8", "--ndf", "8", "--precision", "fp32",
        "--device", "cpu", "--epoch-length", "4", "--max-steps", "2", "--seed", "3"]

# the key prefix of each level of unet_256 (8 levels), as the official nesting names it
PREFIXES_256 = ["model.model.",
                "model.model.1.model.",
                "model.model.1.model.3.model.",
                "model.model.1.model.3.model.3.model.",
                "model.model.1.model.3.model.3.model.3.model.",
                "model.model.1.model.3.model.3.model.3.model.3.model.",
                "model.model.1.model.3.model.3.model.3.model.3.model.3.model.",
                "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model."]
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def official_state(ngf: int, n_down: int = 8, c_in: int = 3, c_out: int = 3, seed: int = 0) -> dict:
    """A state dict with the official keys and shapes of unet_(2**n_down), random values (and
    running statistics that are not the defaults, so using them shows)."""
    g = torch.Generator().manual_seed(seed)
    width = [ngf * min(2 ** d, 8) for d in range(n_down)]  # level d's down-convolution output
    prefixes = PREFIXES_256[:n_down]

    def rand(*shape, scale=0.1):
        return torch.randn(*shape, generator=g) * scale

    def bn(prefix, c):
        return {f"{prefix}weight": 1 + rand(c), f"{prefix}bias": rand(c), f"{prefix}running_mean": rand(c),
                f"{prefix}running_var": 1 + rand(c).abs(), f"{prefix}num_batches_tracked": torch.tensor(7)}

    state = {}
    for d, p in enumerate(prefixes):
        if d == 0:
            state[p + "0.weight"] = rand(width[0], c_in, 4, 4)
            state[p + "3.weight"] = rand(2 * width[0], c_out, 4, 4)
            state[p + "3.bias"] = rand(c_out)
        elif d < n_down - 1:
            state[p + "1.weight"] = rand(width[d], width[d - 1], 4, 4)
            state.update(bn(p + "2.", width[d]))
            state[p + "5.weight"] = rand(2 * width[d], width[d - 1], 4, 4)
            state.update(bn(p + "6.", width[d - 1]))
        else:
            state[p + "1.weight"] = rand(width[d], width[d - 1], 4, 4)
            state[p + "3.weight"] = rand(width[d], width[d - 1], 4, 4)
            state.update(bn(p + "4.", width[d - 1]))
    return state


def official_forward(state: dict, x: torch.Tensor, n_down: int = 8, *, training: bool = True) -> torch.Tensor:
    """The official UnetGenerator's forward, computed from the state dict alone: in its test
    script's default mode (train mode: batch statistics, dropout on), or with training=False
    in eval mode (running statistics, no dropout)."""
    prefixes = PREFIXES_256[:n_down]

    def norm(y, p):
        return F.batch_norm(y, state[p + "running_mean"].clone(), state[p + "running_var"].clone(),
                            state[p + "weight"], state[p + "bias"], training=training)

    def level(d, x):
        p = prefixes[d]
        if d == 0:
            y = level(1, F.conv2d(x, state[p + "0.weight"], stride=2, padding=1))
            return torch.tanh(F.conv_transpose2d(F.relu(y), state[p + "3.weight"], state[p + "3.bias"], 2, 1))
        y = F.conv2d(F.leaky_relu(x, 0.2), state[p + "1.weight"], stride=2, padding=1)
        if d == n_down - 1:
            y = norm(F.conv_transpose2d(F.relu(y), state[p + "3.weight"], None, 2, 1), p + "4.")
        else:
            y = level(d + 1, norm(y, p + "2."))
            y = norm(F.conv_transpose2d(F.relu(y), state[p + "5.weight"], None, 2, 1), p + "6.")
            if 4 <= d:
                y = F.dropout(y, 0.5, training=training)
        return torch.cat([x, y], 1)

    with torch.no_grad():
        return level(0, x)


def save_state(state: dict, path) -> str:
    torch.save(state, path)
    return str(path)


@pytest.mark.parametrize("n_down", [8, 7])
def test_official_weights_give_the_official_output_with_its_dropout_masks(tmp_path, n_down, capsys):
    state = official_state(ngf=4, n_down=n_down)
    G, options, info = load_generator(save_state(state, tmp_path / "latest_net_G.pth"), "cpu")
    assert "official" in capsys.readouterr().out
    assert options["image_size"] == 2 ** n_down and options["ngf"] == 4 and options["unet_layout"] == "official"
    assert info["step"] is None
    x = torch.rand(2, 3, 2 ** n_down, 2 ** n_down) * 2 - 1
    for seed in (0, 5):  # the test script's default mode: one image at a time, dropout masks from the seed
        torch.manual_seed(seed)
        expected = torch.cat([official_forward(state, xi[None], n_down) for xi in x])
        ours = run_generator(G, x, "cpu", seed=seed)
        assert torch.allclose(ours, expected, atol=1e-5), (ours - expected).abs().max()
    assert not torch.allclose(run_generator(G, x, "cpu", seed=1), expected, atol=1e-3)  # the masks matter
    # BatchNorm's running statistics are the released ones, and eval mode uses them
    expected_eval = run_generator(G, x, "cpu", eval_mode=True)
    assert torch.equal(G.encoder[1][2].running_mean, state[PREFIXES_256[1] + "2.running_mean"])
    assert not torch.allclose(expected_eval, ours, atol=1e-3)


def test_weights_saved_before_pytorch_0_4_1_load(tmp_path, capsys):
    state = {k: v for k, v in official_state(ngf=4).items() if not k.endswith("num_batches_tracked")}
    G, _, _ = load_generator(save_state(state, tmp_path / "old.pth"), "cpu")
    assert int(G.decoder[1][2].num_batches_tracked) == 0


@pytest.mark.parametrize("damage, needle", [
    ("drop", "lacks model.model.1.model.3.model.2.running_var"),
    ("shape", "model.model.1.model.1.weight of shape (9, 4, 4, 4)"),
    ("extra", "model.model.9.weight, which this network has no place for"),
])
def test_a_wrong_or_partial_state_dict_names_the_first_key_that_does_not_fit(tmp_path, capsys, damage, needle):
    state = official_state(ngf=4)
    if damage == "drop":
        del state[PREFIXES_256[2] + "2.running_var"]
        del state[PREFIXES_256[5] + "6.weight"]  # a later one: the first in the network's order is named
    elif damage == "shape":
        state[PREFIXES_256[1] + "1.weight"] = torch.zeros(9, 4, 4, 4)
    else:
        state["model.model.9.weight"] = torch.zeros(1)
    path = save_state(state, tmp_path / "bad.pth")
    proc = in_process(capsys, lambda: p2p_generate.main(p2p_generate.parse_opt(
        ["--checkpoint", path, "--input", str(tmp_path), "--device", "cpu"])))
    assert_one_line_error(proc, needle)


def test_other_files_are_refused_in_one_line(tmp_path, capsys):
    resnet = {"model.1.weight": torch.zeros(64, 3, 7, 7), "model.10.conv_block.1.weight": torch.zeros(1)}
    for state, needle in [(resnet, "cyclegan/ reads ResNet generators"), ({"x": torch.zeros(1)}, "neither")]:
        path = save_state(state, tmp_path / "w.pth")
        proc = in_process(capsys, lambda: p2p_generate.main(p2p_generate.parse_opt(
            ["--checkpoint", path, "--input", str(tmp_path), "--device", "cpu"])))
        assert_one_line_error(proc, needle)
    proc = in_process(capsys, lambda: p2p_generate.main(p2p_generate.parse_opt(
        ["--checkpoint", save_state(official_state(4), tmp_path / "g.pth"), "--device", "cpu"])))
    assert_one_line_error(proc, "give --input")


def test_export_official_round_trips(tmp_path, capsys):
    out = tmp_path / "run"
    p2p_train.main(p2p_train.parse_opt(TINY + ["--out", str(out)]))
    ckpt = str(out / "checkpoints/last.pt")
    exported = tmp_path / "latest_net_G.pth"
    p2p_generate.main(p2p_generate.parse_opt(["--checkpoint", ckpt, "--export-official", str(exported)]))
    assert "official" in capsys.readouterr().out
    state = torch.load(exported, weights_only=True)
    assert set(state) == set(official_state(ngf=8, n_down=5))  # 32x32: five levels, the official names
    # the paper-layout G and the official-layout G it became compute the same function (eval mode:
    # without dropout, which the two layouts place differently)
    ours = UNetGenerator(1, 2, ngf=8, image_size=32)
    ours.load_state_dict(load_file(ckpt)["models"]["G"])
    back, _, _ = load_generator(str(exported), "cpu")
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    assert torch.allclose(run_generator(back, x, "cpu", eval_mode=True), run_generator(ours.eval(), x, "cpu",
                                                                                      eval_mode=True), atol=1e-5)
    assert torch.allclose(back(x), official_forward(state, x, 5, training=False), atol=1e-5)
    # an official-layout G exports to exactly the file it was read from
    again = tmp_path / "again.pth"
    p2p_generate.main(p2p_generate.parse_opt(["--checkpoint", str(exported), "--export-official", str(again)]))
    assert all(torch.equal(v, torch.load(again, weights_only=True)[k]) for k, v in state.items())


def test_the_layouts_differ_only_where_the_readme_says():
    paper, official = UNetGenerator(ngf=4), UNetGenerator(ngf=4, layout="official")
    dropout = [[j for j, up in enumerate(G.decoder) if any(isinstance(m, torch.nn.Dropout) for m in up)]
               for G in (paper, official)]
    assert dropout == [[0, 1, 2], [1, 2, 3]]
    assert [tuple(v.shape) for v in paper.state_dict().values()] == \
        [tuple(v.shape) for v in official.state_dict().values()]
    with pytest.raises(ValueError, match="layout"):
        UNetGenerator(layout="sideways")


def test_pretrained_downloads_a_released_model_once_and_offline_is_one_line(tmp_path, monkeypatch, capsys):
    import common.pretrained as pretrained
    from PIL import Image

    urls = fake_downloads(monkeypatch, tmp_path, lambda: official_state(ngf=2))
    Image.new("RGB", (40, 30), (120, 30, 200)).save(tmp_path / "in.png")
    for _ in range(2):
        p2p_generate.main(p2p_generate.parse_opt(["--pretrained", "facades_label2photo", "--input",
                                                  str(tmp_path / "in.png"), "--out", str(tmp_path / "out.png"),
                                                  "--device", "cpu"]))
    assert urls == ["http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/facades_label2photo.pth"]
    assert (tmp_path / "out.png").is_file()
    monkeypatch.setenv(pretrained.NO_DOWNLOAD, "1")
    proc = in_process(capsys, lambda: p2p_generate.main(p2p_generate.parse_opt(
        ["--pretrained", "day2night", "--input", str(tmp_path / "in.png"), "--device", "cpu"])))
    assert_one_line_error(proc, "the released pix2pix model day2night", "day2night.pth")
