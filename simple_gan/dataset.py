"""Data for the simple GAN: 28x28 digits. Default: scikit-learn's embedded digits
(offline); `--data mnist` / `--data fashion-mnist` use torchvision's datasets."""
from __future__ import annotations

from common.data import build_dataset as _build


def build_dataset(opt):
    """`--data` at `--image-size` (28 by default, MNIST's size)."""
    return _build(opt.data, opt.image_size, channels=opt.channels, data_root=opt.data_root, seed=opt.seed)
