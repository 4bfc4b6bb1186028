"""The project's offline feature extractor: a small digit classifier.

FID/KID and the Inception Score need a pretrained network; offline there is none,
so the project trains its own, deterministically, in seconds on the CPU: a small
CNN on the embedded digits' training split (80%, a fixed permutation), checked on
the held-out 20%. Its 128-d penultimate features stand in for Inception's pool3
features and its softmax for Inception's class posterior. Every figure computed
with it must say so ("offline digit features"), never "FID" alone.

The trained weights are cached (GAN_PAPERS_CACHE, else ~/.cache/gan-papers) and
reloaded with weights_only=True.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

VERSION = 1  # bump when the architecture or the training recipe changes
INPUT_SIZE = 28


class DigitClassifier(nn.Module):
    """28x28x1 in [-1, 1] -> 10 logits; `features()` gives the 128-d penultimate layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 14 x 14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 64 x 7 x 7
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    @staticmethod
    def prepare(images: torch.Tensor) -> torch.Tensor:
        """Any size, 1 or 3 channels, in [-1, 1] -> 1 x 28 x 28 (mean over colour channels)."""
        x = images.float()
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > INPUT_SIZE)
        return x

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(self.prepare(images)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def digits_split(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train images, train labels, test images, test labels): a fixed 80/20 split at 28x28."""
    from common.data import Digits

    digits = Digits(INPUT_SIZE)
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed))
    n_test = len(digits) // 5
    test, train = order[:n_test], order[n_test:]
    return digits.images[train], digits.labels[train], digits.images[test], digits.labels[test]


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    return float((model(images).argmax(1) == labels).float().mean())


def train_classifier(seed: int = 0, epochs: int = 20, batch_size: int = 64, lr: float = 1e-3) -> tuple[DigitClassifier, float]:
    """Train on the training split with a fixed seed; return (model, held-out accuracy)."""
    x_train, y_train, x_test, y_test = digits_split(seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # do not disturb the caller's RNG
        torch.manual_seed(seed)
        model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            # small random shifts (+-2 px) so the features do not rely on exact placement
            shift = torch.randint(-2, 3, (2,), generator=gen).tolist()
            batch = torch.roll(x_train[idx], shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(model(batch), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval(), accuracy(model, x_test, y_test)


def cache_dir() -> Path:
    return Path(os.environ.get("GAN_PAPERS_CACHE", Path.home() / ".cache" / "gan-papers"))


def load_classifier(seed: int = 0, directory: str | Path | None = None, verbose: bool = True) -> tuple[DigitClassifier, float]:
    """The cached classifier, trained (a few seconds) and cached on first use."""
    from common.checkpoint import atomic_save

    path = Path(directory or cache_dir()) / f"digit_classifier_v{VERSION}_seed{seed}.pt"
    model = DigitClassifier()
    if path.is_file():
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(payload["model"])
        return model.eval(), float(payload["test_accuracy"])
    model, acc = train_classifier(seed)
    atomic_save({"model": model.state_dict(), "test_accuracy": acc, "version": VERSION, "seed": seed}, path)
    if verbose:
        print(f"offline digit classifier trained: held-out accuracy {acc:.4f}; cached at {path}")
    return model, acc
