"""Super-resolution data shared by srgan and esrgan: HR images, LR made on the fly, held-out photos.

* `bicubic_downsample`: the LR image of an HR one, by PIL's bicubic resize, which filters with
  the kernel widened by the scale (antialiased) like MATLAB's imresize, the function the SR
  papers use to make their LR images; the two differ in rounding and edge handling only.
* `HRCrops`: random HR crops (size `hr_size`) of a folder of images or of the bundled photos,
  with random horizontal flips and 90-degree rotations (albumentations), each crop's LR made
  from it; the draws come from (seed, epoch, index) (a keyed dataset, common.image2image), so a
  resumed run reads the same crops. Returns (LR in [0, 1], HR in [-1, 1]) as the SRGAN paper
  scales them (Sec. 3.2).
* `held_out_images`: whole held-out photos cut to a multiple of the scale, for evaluation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from common import image2image as i2i
from common.data import BUNDLED_PHOTOS, bundled_photos
from common.errors import DataError


def bicubic_downsample(image: np.ndarray, scale: int) -> np.ndarray:
    """uint8 HxWxC -> uint8 (H/scale)x(W/scale)xC, antialiased bicubic (PIL). H and W must be
    multiples of `scale`."""
    from PIL import Image

    h, w = image.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"an HR image of {w}x{h} cannot be reduced exactly by {scale}")
    return np.array(Image.fromarray(image).resize((w // scale, h // scale), Image.BICUBIC))  # writable


def bicubic_upsample(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The trivial baseline: BxCxhxw in any range -> Bx Cx(h*scale)x(w*scale) by bicubic
    interpolation (torch's, a = -0.75, as the SR papers' 'bicubic' rows approximate)."""
    import torch.nn.functional as F

    return F.interpolate(lr.float(), scale_factor=scale, mode="bicubic", align_corners=False)


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Cut the bottom and right edges so both sides are multiples of `scale` (the SR convention)."""
    h, w = image.shape[:2]
    return image[:h - h % scale, :w - w % scale]


def to_unit_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC -> float CxHxW in [0, 1] (the LR input's range)."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0  # a writable copy


class HRCrops(Dataset):
    """`length` random hr_size crops per epoch of `images` (uint8 HxWx3 arrays, or files read on
    demand), each flipped and rotated by multiples of 90 degrees at random, with its LR made by
    bicubic_downsample. Item i reads image i mod len(images), so every image is used every epoch."""

    keyed = True
    channels = 3

    def __init__(self, images: list, hr_size: int, scale: int, *, length: int | None = None, seed: int = 0):
        if hr_size % scale:
            raise DataError(f"the HR crop ({hr_size}) must be a multiple of the scale ({scale})")
        self.images, self.hr_size, self.scale, self.seed = images, hr_size, scale, seed
        self.length = length or len(images)
        A = i2i.albumentations()
        self.transform = A.Compose([A.RandomCrop(hr_size, hr_size), A.HorizontalFlip(p=0.5),
                                    A.RandomRotate90(p=1.0)])

    def __len__(self) -> int:
        return self.length

    def read(self, i: int) -> np.ndarray:
        item = self.images[i % len(self.images)]
        image = item if isinstance(item, np.ndarray) else i2i.read_rgb(item)
        h, w = image.shape[:2]
        if min(h, w) < self.hr_size:
            raise DataError(f"{item if not isinstance(item, np.ndarray) else 'an image'} is {w}x{h}, smaller than "
                            f"the HR crop {self.hr_size}x{self.hr_size}: lower --hr-size or remove it")
        return image

    def __getitem__(self, key):
        index, epoch = i2i.split_key(key)
        hr = i2i.augment(self.transform, i2i.item_seed(self.seed, epoch, index), self.read(index))["image"]
        return to_unit_tensor(bicubic_downsample(hr, self.scale)), i2i.to_tensor(hr)


def training_photos() -> list[np.ndarray]:
    """The bundled photos minus the held-out ones: the embedded SR training set."""
    return list(bundled_photos([n for n in BUNDLED_PHOTOS if n not in i2i.HELD_OUT_PHOTOS]).values())


def folder_images(root: str | Path) -> list[Path]:
    """A folder of HR images (DIV2K-style); errors name the folder or the file."""
    return i2i.image_files(root)


def held_out_images(scale: int, max_side: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(LR in [0, 1], HR in [-1, 1]) for each held-out photo (common.image2image.HELD_OUT_PHOTOS),
    its sides cut to multiples of the scale; `max_side` first takes a centred crop of at most that
    side (a CPU evaluation budget)."""
    pairs = []
    for photo in bundled_photos(i2i.HELD_OUT_PHOTOS).values():
        if max_side:
            h, w = photo.shape[:2]
            top, left = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
            photo = photo[top:top + max_side, left:left + max_side]
        hr = modcrop(photo, scale)
        pairs.append((to_unit_tensor(bicubic_downsample(hr, scale)), i2i.to_tensor(hr)))
    return pairs
