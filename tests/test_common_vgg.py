"""common.vgg: torchvision's VGG19 layout and indices, the weights policy (a file, the cache, or
one clear line; random features only when asked), normalisation and freezing."""
from __future__ import annotations

import pytest
import torch

from common import vgg
from common.errors import UserError


def test_layout_and_indices_are_torchvisions():
    from torchvision.models import vgg19

    reference = vgg19(weights=None).features
    names = vgg.layer_names()
    assert len(names) == len(reference) == 37
    assert names.index("conv5_4") == 34 and names.index("relu5_4") == 35  # ESRGAN before, SRGAN after the ReLU
    assert names.index("relu2_2") == 8
    ours = vgg.build_features("pool5")
    assert [type(m) for m in ours] == [type(m) for m in reference]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    assert len(vgg.build_features("relu5_4")) == 36 and len(vgg.build_features("conv5_4")) == 35
    with pytest.raises(ValueError, match="conv6_1"):
        vgg.build_features("conv6_1")


def test_weights_from_a_file_load_exactly(tmp_path):
    torch.manual_seed(0)
    full = vgg.build_features("pool5")
    state = {f"features.{k}": v for k, v in full.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a torchvision file also holds the classifier
    torch.save(state, tmp_path / vgg.WEIGHTS_FILE)
    net = vgg.vgg19_features("relu2_2", tmp_path / vgg.WEIGHTS_FILE)
    assert torch.equal(net.features[0].weight, full[0].weight) and torch.equal(net.features[7].bias, full[7].bias)
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training  # a loss network stays in eval mode


def test_missing_wrong_or_corrupt_weights_give_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(UserError, match=r"vgg19-dcbb9e9d.pth.*--vgg-weights PATH\)$"):
        vgg.vgg19_features("relu5_4")  # nothing in the cache, nothing given: never random, never a download
    with pytest.raises(UserError, match=r"--vgg-weights PATH\); the other stage needs none$"):  # the folder's sentence
        vgg.vgg19_features("relu5_4", without="the other stage needs none")
    with pytest.raises(UserError, match="no such file"):
        vgg.vgg19_features("relu5_4", tmp_path / "nope.pth")
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="do not fit"):
        vgg.vgg19_features("relu5_4", tmp_path / "other.pth")
    (tmp_path / "corrupt.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot be read"):
        vgg.vgg19_features("relu5_4", tmp_path / "corrupt.pth")


def test_cached_weights_are_found(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    path = vgg.cached_weights_path()
    path.parent.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in vgg.build_features("relu1_2").state_dict().items()}, path)
    assert vgg.vgg19_features("relu1_2").features[2].weight.shape == (64, 64, 3, 3)


def test_inputs_are_normalised_like_torchvision_expects():
    net = vgg.vgg19_features("conv1_1", random_init=True)
    grey_minus1 = torch.full((1, 3, 4, 4), -1.0)  # black in [-1, 1]
    x01 = vgg.vgg19_features("conv1_1", random_init=True, input_range=(0.0, 1.0))
    x01.features.load_state_dict(net.features.state_dict())
    assert torch.allclose(net(grey_minus1), x01(torch.zeros(1, 3, 4, 4)), atol=1e-6)
    conv = net.features[0]
    expected = conv((torch.zeros(1, 3, 4, 4) - net.mean) / net.std)
    assert torch.allclose(net(grey_minus1), expected, atol=1e-6)


def test_taps_are_the_named_layers_outputs_from_one_pass():
    """pix2pixHD's perceptual loss reads relu1_1 ... relu5_1: each tap equals the output of the
    same weights cut at that layer, in the order asked; a layer past the cut is refused."""
    torch.manual_seed(0)
    full = vgg.vgg19_features("relu5_1", random_init=True)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    names = ("relu3_1", "relu1_1", "relu5_1")
    taps = full.taps(x, names)
    for name, tap in zip(names, taps):
        cut = vgg.VGGFeatures(vgg.build_features(name))
        cut.features.load_state_dict({k: v for k, v in full.features.state_dict().items() if k in
                                      cut.features.state_dict()})
        assert torch.equal(tap, cut(x)), name
    assert torch.equal(taps[2], full(x)) and taps[1].shape == (1, 64, 32, 32)
    with pytest.raises(ValueError, match="stop at relu5_1"):
        full.taps(x, ("relu5_2",))
    with pytest.raises(UserError, match="--no-vgg-loss"):  # the caller's hint in the missing-weights line
        vgg.vgg19_features("relu5_1", "/nonexistent/vgg19.pth", without="or train without that term: --no-vgg-loss")
