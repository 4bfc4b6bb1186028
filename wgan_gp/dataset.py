"""Data for WGAN-GP: the paper trains on toy sets, CIFAR-10 and LSUN bedrooms (Sec. 5-6);
offline we default to the embedded digits, and any torchvision dataset (MNIST, CIFAR-10,
CelebA...) or image folder works through common.data."""
from __future__ import annotations

from common.data import build_dataset as _build


def build_dataset(opt):
    """`--data` resolved at `--image-size`; `.channels` tells 1 (digits, MNIST) or 3."""
    return _build(opt.data, opt.image_size, channels=opt.channels, data_root=opt.data_root, seed=opt.seed)
