"""Data for the conditional GAN: images *with class labels* (the y of Sec. 3.2).

The paper conditions on MNIST's digit classes (Sec. 4.1). Offline we default to the
embedded scikit-learn digits (10 classes, real handwriting); torchvision's MNIST,
FashionMNIST and CIFAR-10 (10 classes each) and a folder with one subfolder per class
also work. Unlabelled data (the embedded photos, CelebA's attributes, a flat folder)
cannot condition anything and is refused with one line.
"""
from __future__ import annotations

from pathlib import Path

from common.data import ImageFolderFlat
from common.data import build_dataset as _build
from common.errors import DataError

TEN_CLASSES = ("digits", "mnist", "fashion-mnist", "cifar10")
UNLABELLED = ("photos", "celeba")


class ClassFolder(ImageFolderFlat):
    """root/<class name>/**/image.png: the label is the index of the class folder's name
    in sorted order (as torchvision's ImageFolder). Images as in common.data."""

    def __init__(self, root: str | Path, image_size: int, channels: int = 3):
        super().__init__(root, image_size, channels)  # checks every file is a readable image
        root = Path(root)
        top = [p.relative_to(root).parts for p in self.files]
        loose = [root / parts[0] for parts in top if len(parts) == 1]
        if loose:
            raise DataError(f"--data {root}: {loose[0]} is not inside a class folder; a cGAN needs labels: "
                            f"put the images in one subfolder per class (root/<class>/image.png)")
        self.classes = sorted({parts[0] for parts in top})
        if len(self.classes) < 2:
            raise DataError(f"--data {root}: only one class folder ({self.classes[0]}); a cGAN needs at least "
                            f"two classes (one subfolder per class)")
        index = {name: i for i, name in enumerate(self.classes)}
        self.labels = [index[parts[0]] for parts in top]
        self.num_classes = len(self.classes)

    def __getitem__(self, i):
        image, _ = super().__getitem__(i)
        return image, self.labels[i]


def build_dataset(opt):
    """`--data` at `--image-size`, with `.channels` and `.num_classes`; labels are 0..num_classes-1."""
    if opt.data in UNLABELLED:
        raise DataError(f"--data {opt.data} has no class labels to condition on; use digits, mnist, "
                        f"fashion-mnist, cifar10 or a folder with one subfolder per class")
    if opt.data in TEN_CLASSES:
        dataset = _build(opt.data, opt.image_size, channels=opt.channels, data_root=opt.data_root, seed=opt.seed)
        dataset.num_classes = 10
        return dataset
    return ClassFolder(opt.data, opt.image_size, opt.channels)
