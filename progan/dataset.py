"""Data for ProGAN: any image folder (CelebA-HQ style, the paper's Sec. 4), torchvision's
datasets, and the embedded photo crops, all at the final resolution; the training loop
averages them down to the stage's resolution (progan.utils.reals_at_stage).

The minibatch changes with the resolution (Appendix A.1), so the real images come from an
`ImageStream` addressed by the number of images shown: a resumed run reads exactly the
images an unbroken one would have read.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from common.data import build_dataset as _build
from common.data import list_images
from common.errors import DataError
from .utils import reals_at_stage

# the largest final resolution each built-in dataset supports without making up detail:
# the native size rounded up to a power of two (MNIST's 28 -> 32); the embedded photo crops
# are cut from photos of 300-1400 pixels and are sharp up to 128x128; the 8x8 digits are
# blurry beyond 32
NATIVE_LIMIT = {"digits": 32, "photos": 128, "mnist": 32, "fashion-mnist": 32, "cifar10": 32, "celeba": 256}
# the paper's final resolution where the data allows it; the built-ins their own limit
DEFAULT_RESOLUTION = {"photos": 64}


def default_resolution(data: str) -> int:
    """--max-resolution when not given: 1024 (the paper's CelebA-HQ) for an image folder,
    else what the dataset holds (64 for the embedded photos, the CPU-friendly size)."""
    return DEFAULT_RESOLUTION.get(data, NATIVE_LIMIT.get(data, 1024))


def check_resolution(data: str, resolution: int) -> None:
    """One clear line where the data are smaller than the final resolution."""
    limit = NATIVE_LIMIT.get(data)
    if limit is not None and resolution > limit:
        raise DataError(f"--data {data} holds images of at most {limit}x{limit}; --max-resolution {resolution} "
                        f"would only upsample them: use --max-resolution {limit} or less")
    if limit is None:
        from PIL import Image

        for path in list_images(data):
            try:
                with Image.open(path) as im:
                    w, h = im.size
            except OSError as exc:
                raise DataError(f"{path}: cannot read this image ({exc})") from exc
            if min(w, h) < resolution:
                raise DataError(f"{path} is {w}x{h}, smaller than --max-resolution {resolution}: remove it "
                                f"or train at a lower resolution")


def build_dataset(opt):
    """`--data` at `--max-resolution`, checked first; `.channels` tells 1 or 3."""
    check_resolution(opt.data, opt.max_resolution)
    return _build(opt.data, opt.max_resolution, channels=opt.channels, data_root=opt.data_root, seed=opt.seed)


class ImageStream:
    """An endless stream of the dataset's images in shuffled epochs (a new permutation per
    epoch, from the seed); `batch(position, n)` returns the n images from `position` on."""

    def __init__(self, dataset, seed: int = 0):
        if len(dataset) == 0:
            raise DataError("the dataset is empty")
        self.dataset, self.seed = dataset, seed
        self._epoch, self._order = None, None

    def order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))
        return self._order

    def batch(self, position: int, n: int) -> torch.Tensor:
        size = len(self.dataset)
        picks = [int(self.order(p // size)[p % size]) for p in range(position, position + n)]
        return torch.stack([self.dataset[i][0] for i in picks])


# the metrics need at least 16x16 (the features' convolutions, SWD's coarsest pyramid level)
MIN_MEASURED = 16


def for_measuring(images: torch.Tensor) -> torch.Tensor:
    """Images below MIN_MEASURED enlarged to it by pixel repetition (nearest), generated and
    real alike, so an early stage (4x4, 8x8) can be measured too; others unchanged."""
    factor = MIN_MEASURED // images.shape[-1]
    return torch.nn.functional.interpolate(images, scale_factor=factor, mode="nearest") if factor > 1 else images


class AtStage(Dataset):
    """The training images at a stage, as measured: reals_at_stage of each item, for_measuring."""

    def __init__(self, dataset, resolution: int, alpha: float):
        self.dataset, self.resolution, self.alpha = dataset, resolution, alpha
        self.channels = getattr(dataset, "channels", 3)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        image, label = self.dataset[i]
        return for_measuring(reals_at_stage(image.unsqueeze(0), self.resolution, self.alpha))[0], label
