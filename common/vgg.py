"""ImageNet VGG19 features for perceptual losses (SRGAN, ESRGAN, pix2pixHD), with honest weights.

The weights are torchvision's VGG19 (IMAGENET1K_V1), found by common.pretrained's rule: a file
given with --vgg-weights, else torchvision's cache (torch hub's checkpoints folder), else
downloaded there at start-up when online; offline, `vgg19_features` stops with one line that
says where to put it. Never downloaded in the middle of a run, and a user's run never falls
back to random features. Tests pass `random_init=True` explicitly.

Only the convolutional part is built (the `features` of torchvision's vgg19, whose layer
indices are kept, so a torchvision state dict loads as it is), cut after the layer a paper
names: e.g. conv5_4 after its ReLU for SRGAN's VGG54 (index 35), before it for ESRGAN (34).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from common.errors import UserError
from common.pretrained import cache_dir, fetch

# torchvision's VGG19 configuration "E": channels per 3x3 convolution, "M" = 2x2 max-pool
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                512, 512, 512, 512, "M")
WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"
WEIGHTS_URL = f"https://download.pytorch.org/models/{WEIGHTS_FILE}"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names() -> list[str]:
    """The name of each module of `features` in order: conv1_1, relu1_1, ..., pool5."""
    names, block, conv = [], 1, 0
    for item in VGG19_LAYOUT:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


def build_features(until: str) -> nn.Sequential:
    """torchvision's vgg19 `features`, cut after the module called `until` (layer_names)."""
    names = layer_names()
    if until not in names:
        raise ValueError(f"no VGG19 layer {until!r}; one of {', '.join(names)}")
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=False)]
            channels = item
    return nn.Sequential(*layers[:names.index(until) + 1])


def cached_weights_path() -> Path:
    """Where torchvision keeps the VGG19 weights once downloaded."""
    return cache_dir() / WEIGHTS_FILE


def weights_path(weights: str | Path | None = None, without: str = "") -> Path:
    """The VGG19 weights file by common.pretrained's rule (given, cached, downloaded, or one line)."""
    return fetch(WEIGHTS_URL, what="ImageNet VGG19 weights (the perceptual loss)", given=weights,
                 flag="--vgg-weights", without=without)


def load_weights(features: nn.Sequential, path: str | Path | None, without: str = "") -> None:
    """Fill `features` from a torchvision VGG19 state dict (its `features.*` keys), the file
    `path` or, for None, the cached or downloaded one (weights_path); a missing, unreadable or
    different file is a one-line UserError naming it."""
    path = weights_path(path, without)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt, truncated, pickled objects: all the same to the user
        raise UserError(f"VGG19 weights {path} cannot be read ({exc.__class__.__name__}); "
                        f"expected torchvision's {WEIGHTS_FILE}") from exc
    wanted = features.state_dict()
    found = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")} \
        if isinstance(state, dict) else {}
    bad = [k for k, v in wanted.items() if k not in found or found[k].shape != v.shape]
    if bad:
        raise UserError(f"VGG19 weights {path} do not fit torchvision's VGG19 features (e.g. {bad[0]}); "
                        f"expected {WEIGHTS_FILE}")
    features.load_state_dict({k: found[k] for k in wanted})


class VGGFeatures(nn.Module):
    """Frozen VGG19 features of images in [-1, 1] (or [0, 1] with `input_range=(0, 1)`),
    normalised with ImageNet's mean and std as torchvision's VGG expects."""

    def __init__(self, features: nn.Sequential, input_range: tuple[float, float] = (-1.0, 1.0)):
        super().__init__()
        self.features = features.eval().requires_grad_(False)
        lo, hi = input_range
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.lo, self.span = lo, hi - lo

    def train(self, mode: bool = True):  # always eval: a loss network has no training mode
        return super().train(False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.lo) / self.span  # -> [0, 1]
        return (x - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(self.normalise(images))

    def taps(self, images: torch.Tensor, names: tuple[str, ...] | list[str]) -> list[torch.Tensor]:
        """The outputs of the named layers (layer_names, e.g. relu1_1 ... relu5_1 for pix2pixHD's
        perceptual loss), in the order given, from one pass that stops after the deepest one."""
        index = {name: i for i, name in enumerate(layer_names())}
        wanted = {index[name] for name in names}
        if max(wanted) >= len(self.features):
            raise ValueError(f"these features stop at {layer_names()[len(self.features) - 1]}; "
                             f"asked for {', '.join(names)}")
        outputs, x = {}, self.normalise(images)
        for i, layer in enumerate(self.features[:max(wanted) + 1]):
            x = layer(x)
            if i in wanted:
                outputs[i] = x
        return [outputs[index[name]] for name in names]


def vgg19_features(until: str, weights: str | Path | None = None, *, random_init: bool = False,
                   input_range: tuple[float, float] = (-1.0, 1.0), without: str = "") -> VGGFeatures:
    """VGG19 features up to `until` with ImageNet weights from `weights`, else torchvision's cache,
    else a download (common.pretrained); offline, a UserError saying where to put the file and
    (`without`) what runs without it. `random_init=True` (tests only) skips the weights on purpose."""
    features = build_features(until)
    if not random_init:
        load_weights(features, weights, without)
    return VGGFeatures(features, input_range)
