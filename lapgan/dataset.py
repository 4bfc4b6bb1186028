"""Data for LAPGAN: the paper trains on CIFAR-10, STL-10 and LSUN (Sec. 4); offline we default
to the embedded photo crops (3 channels, like CIFAR-10), and `--data cifar10`, the digits, MNIST
or any image folder work through common.data. The pyramid itself is built per batch in train.py
(lapgan.utils.training_pairs), so every dataset gives plain images in [-1, 1]."""
from __future__ import annotations

from common.data import build_dataset as _build
from common.errors import DataError

# datasets with class labels 0..9, for the class-conditional variant (--conditional)
LABELLED = {"digits": 10, "mnist": 10, "fashion-mnist": 10, "cifar10": 10}


def build_dataset(opt):
    """`--data` resolved at `--image-size`; `.channels` tells 1 or 3, `.num_classes` 10 for the
    labelled datasets and 0 otherwise. A conditional run on unlabelled data is refused."""
    conditional = getattr(opt, "conditional", False) or bool(getattr(opt, "num_classes", 0))
    if conditional and opt.data not in LABELLED:
        raise DataError(f"--data {opt.data} has no class labels; the class-conditional LAPGAN needs one of "
                        f"{', '.join(LABELLED)}")
    dataset = _build(opt.data, opt.image_size, channels=opt.channels, data_root=opt.data_root, seed=opt.seed)
    dataset.num_classes = LABELLED.get(opt.data, 0)
    return dataset
