"""SRGAN's data: random HR crops with their bicubic LR (Ledig et al. 2017, Sec. 3.1-3.2).

"We obtained the LR images by downsampling the HR images (BGR, C = 3) using bicubic kernel with
downsampling factor r = 4", and trained on "16 random 96 x 96 HR sub images of distinct training
images" (Sec. 3.2), LR scaled to [0, 1] and HR to [-1, 1].

`--data photos` (embedded, offline): crops of the bundled photos except the held-out ones
(common.data.HELD_OUT_PHOTOS), which evaluate.py measures whole. `--data PATH`: a folder of HR
images (DIV2K, or ImageNet images as the paper's 350 thousand), LR made on the fly.
`--data PATH --lr-dir LR_PATH`: given LR/HR pairs matched by name (DIV2K's 0001.png / 0001x4.png).

Resume: the crops are keyed by (index, epoch) (common.data.ResumableSampler) and draw their
crop, flip and rotation from a generator seeded by (seed, epoch, index), so a resumed run reads
the same crops. esrgan/dataset.py holds the same pieces with HR in [0, 1].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from common.data import (BUNDLED_PHOTOS, HELD_OUT_PHOTOS, albumentations, augment, bundled_photos, item_seed,
                         list_images, read_rgb, split_key, to_tensor)
from common.errors import DataError


# ------------------------------------------------------------------ the degradation
def bicubic_downsample(image: np.ndarray, scale: int) -> np.ndarray:
    """The LR image of an HR one (Sec. 3.2's bicubic kernel): uint8 HxWxC -> uint8
    (H/scale)x(W/scale)xC by PIL's bicubic resize, which widens the kernel by the scale
    (antialiased) like MATLAB's imresize, the function the SR papers make their LR images with;
    the two differ in rounding and edge handling only. H and W must be multiples of `scale`."""
    # the same degradation as esrgan/dataset.py
    from PIL import Image

    h, w = image.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"an HR image of {w}x{h} cannot be reduced exactly by {scale}")
    return np.array(Image.fromarray(image).resize((w // scale, h // scale), Image.BICUBIC))  # writable


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Cut the bottom and right edges so both sides are multiples of `scale` (the SR convention)."""
    h, w = image.shape[:2]
    return image[:h - h % scale, :w - w % scale]


def to_unit_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC -> float CxHxW in [0, 1]: the LR input's range (Sec. 3.2)."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0  # a writable copy


# ------------------------------------------------------------------ training crops
class HRCrops(Dataset):
    """`length` random hr_size crops per epoch of `images` (uint8 HxWx3 arrays, or files read on
    demand), each flipped and rotated by multiples of 90 degrees at random (albumentations),
    with its LR made by bicubic_downsample. Item i reads image i mod len(images), so every image
    is used every epoch. Returns (LR in [0, 1], HR in [-1, 1]) as Sec. 3.2 scales them."""

    keyed = True
    channels = 3

    def __init__(self, images: list, hr_size: int, scale: int, *, length: int | None = None, seed: int = 0):
        if hr_size % scale:
            raise DataError(f"the HR crop ({hr_size}) must be a multiple of the scale ({scale})")
        self.images, self.hr_size, self.scale, self.seed = images, hr_size, scale, seed
        self.length = length or len(images)
        A = albumentations()
        self.transform = A.Compose([A.RandomCrop(hr_size, hr_size), A.HorizontalFlip(p=0.5),
                                    A.RandomRotate90(p=1.0)])

    def __len__(self) -> int:
        return self.length

    def read(self, i: int) -> np.ndarray:
        item = self.images[i % len(self.images)]
        image = item if isinstance(item, np.ndarray) else read_rgb(item)
        h, w = image.shape[:2]
        if min(h, w) < self.hr_size:
            raise DataError(f"{item if not isinstance(item, np.ndarray) else 'an image'} is {w}x{h}, smaller than "
                            f"the HR crop {self.hr_size}x{self.hr_size}: lower --hr-size or remove it")
        return image

    def __getitem__(self, key):
        index, epoch = split_key(key)
        hr = augment(self.transform, item_seed(self.seed, epoch, index), self.read(index))["image"]
        return to_unit_tensor(bicubic_downsample(hr, self.scale)), to_tensor(hr)


def lr_partner(hr_file: Path, lr_files: dict[str, Path], scale: int) -> Path | None:
    """The LR file of an HR one: the same stem, or the stem with DIV2K's x<scale> suffix
    (0001.png -> 0001x4.png)."""
    return lr_files.get(hr_file.stem) or lr_files.get(f"{hr_file.stem}x{scale}")


def paired_files(hr_dir: str | Path, lr_dir: str | Path, scale: int) -> list[tuple[Path, Path]]:
    """(LR, HR) file pairs of two folders matched by name; an HR image without its LR partner is
    a one-line DataError (a silently smaller dataset would be worse)."""
    hr_files = list_images(hr_dir)
    lr_files = {f.stem: f for f in list_images(lr_dir, "--lr-dir")}
    pairs = []
    for hr in hr_files:
        lr = lr_partner(hr, lr_files, scale)
        if lr is None:
            raise DataError(f"--lr-dir {lr_dir} has no LR image for {hr.name} (looked for {hr.stem}.* and "
                            f"{hr.stem}x{scale}.*)")
        pairs.append((lr, hr))
    return pairs


class PairedCrops(Dataset):
    """Random crops of given LR/HR pairs: an LR crop of hr_size / scale and the HR crop at scale
    times its position, then the same horizontal flip and 90-degree rotation on both
    (albumentations, the LR image as an additional target). HR must be scale times LR in size
    (after cutting HR to a multiple of the scale, as modcrop); a pair that is not is a one-line
    DataError naming the files. Returns (LR in [0, 1], HR in [-1, 1])."""

    keyed = True
    channels = 3

    def __init__(self, pairs: list[tuple[Path, Path]], hr_size: int, scale: int, *, length: int | None = None,
                 seed: int = 0):
        if hr_size % scale:
            raise DataError(f"the HR crop ({hr_size}) must be a multiple of the scale ({scale})")
        self.pairs, self.hr_size, self.scale, self.seed = pairs, hr_size, scale, seed
        self.length = length or len(pairs)
        A = albumentations()
        # the two images differ in size by design: shape checks off, the flips and rotations are the same
        self.transform = A.Compose([A.HorizontalFlip(p=0.5), A.RandomRotate90(p=1.0)],
                                   additional_targets={"lr": "image"}, is_check_shapes=False)

    def __len__(self) -> int:
        return self.length

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lr_file, hr_file = self.pairs[i % len(self.pairs)]
        lr, hr = read_rgb(lr_file), modcrop(read_rgb(hr_file), self.scale)
        if (hr.shape[0] != lr.shape[0] * self.scale) or (hr.shape[1] != lr.shape[1] * self.scale):
            raise DataError(f"{lr_file} ({lr.shape[1]}x{lr.shape[0]}) is not 1/{self.scale} of {hr_file} "
                            f"({hr.shape[1]}x{hr.shape[0]}): check --lr-dir and --scale")
        if min(hr.shape[:2]) < self.hr_size:
            raise DataError(f"{hr_file} is {hr.shape[1]}x{hr.shape[0]}, smaller than the HR crop "
                            f"{self.hr_size}x{self.hr_size}: lower --hr-size or remove it")
        return lr, hr

    def __getitem__(self, key):
        index, epoch = split_key(key)
        lr, hr = self.read(index)
        seed = item_seed(self.seed, epoch, index)
        side = self.hr_size // self.scale
        rng = np.random.default_rng(seed)
        top, left = int(rng.integers(lr.shape[0] - side + 1)), int(rng.integers(lr.shape[1] - side + 1))
        s = self.scale
        lr = lr[top:top + side, left:left + side]
        hr = hr[top * s:(top + side) * s, left * s:(left + side) * s]
        out = augment(self.transform, seed, hr, lr=lr)
        return to_unit_tensor(out["lr"]), to_tensor(out["image"])


def training_photos() -> list[np.ndarray]:
    """The bundled photos minus the held-out ones: the embedded training set."""
    return list(bundled_photos([n for n in BUNDLED_PHOTOS if n not in HELD_OUT_PHOTOS]).values())


def build_dataset(opt) -> Dataset:
    """train.py's training set: `--data photos` (the bundled photos minus the held-out ones,
    --epoch-length crops an epoch), a folder of HR images (LR made by bicubic_downsample), or
    with --lr-dir the given LR/HR pairs. Crops of --hr-size and 1 / --scale of it."""
    if opt.lr_dir:
        if opt.data == "photos":
            raise DataError("--lr-dir needs --data: the folder of the HR images that pair with it")
        return PairedCrops(paired_files(opt.data, opt.lr_dir, opt.scale), opt.hr_size, opt.scale, seed=opt.seed)
    if opt.data == "photos":
        return HRCrops(training_photos(), opt.hr_size, opt.scale, length=opt.epoch_length, seed=opt.seed)
    return HRCrops(list_images(opt.data), opt.hr_size, opt.scale, seed=opt.seed)


# ------------------------------------------------------------------ whole images for evaluation
def held_out_images(scale: int, max_side: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(LR in [0, 1], HR in [-1, 1]) for each held-out photo (common.data.HELD_OUT_PHOTOS), its
    sides cut to multiples of the scale; `max_side` first takes a centred crop of at most that
    side (a CPU evaluation budget)."""
    pairs = []
    for photo in bundled_photos(HELD_OUT_PHOTOS).values():
        if max_side:
            h, w = photo.shape[:2]
            top, left = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
            photo = photo[top:top + max_side, left:left + max_side]
        hr = modcrop(photo, scale)
        pairs.append((to_unit_tensor(bicubic_downsample(hr, scale)), to_tensor(hr)))
    return pairs


def evaluation_pairs(data: str | None, scale: int) -> tuple[list, str]:
    """evaluate.py's images: (LR in [0, 1], HR in [-1, 1]) pairs and what they are, the held-out
    photos (data None or 'photos'), else every image of the folder `data` (e.g. Set5's HR),
    LR made by bicubic_downsample."""
    if data is None or data == "photos":
        return held_out_images(scale), f"held-out photos {', '.join(HELD_OUT_PHOTOS)}"
    pairs = []
    for f in list_images(data):
        hr = modcrop(read_rgb(f), scale)
        pairs.append((to_unit_tensor(bicubic_downsample(hr, scale)), to_tensor(hr)))
    return pairs, f"{len(pairs)} images of {data}"
