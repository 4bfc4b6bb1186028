"""Unpaired data for CycleGAN: the official folder layout, and an embedded default.

Folder layout (the official code's, e.g. horse2zebra): <root>/trainA, trainB, testA, testB.
An epoch has max(|A|, |B|) items (the official code's length); item i is A[i mod |A|] beside
a B image drawn at random, independently of A. Here that draw, and each domain's own random
jitter (resize to --load-size, random --image-size crop, random mirror: Sec. 7.1, the
official resize_and_crop), come from a generator seeded by (seed, epoch, index)
(common.data.item_seed, a `keyed` dataset), so a resumed run reads exactly the
images an unbroken run would.

Embedded default (`--data photos`, offline): domain A is random crops of some of the bundled
photos, domain B random crops of OTHER bundled photos passed through a fixed hidden mapping
T (`hidden_mapping`: a colour matrix then a tone curve). A and B are never paired in
training, and no A crop has a B counterpart, so G_AB has to discover T from the two
distributions alone. Because T is known, evaluate.py can measure how close G_AB(a) comes to
T(a) on crops of photos that never appear in training (common.data.HELD_OUT_PHOTOS).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from common.data import (HELD_OUT_PHOTOS, albumentations, augment, bundled_photos, conversion_note, item_seed,
                         list_images, read_rgb, split_key, to_tensor)
from common.errors import DataError, UserError

# the bundled photos of each embedded domain: disjoint, and none of HELD_OUT_PHOTOS
PHOTOS_A = ("astronaut", "rocket", "coffee")
PHOTOS_B = ("motorcycle", "flower")
EPOCH_SIZE = 200  # items per embedded epoch (--epoch-size): an arbitrary unit for the 100 + 100 epoch schedule
EVAL_CROPS = 32  # held-out crops evaluate.py measures (16 of each held-out photo)
CROP_SIDE = (0.3, 0.7)  # side of an embedded crop, as a fraction of its photo's shorter side

# The hidden mapping T on RGB in [0, 1]: a colour matrix whose rows sum to 1 (it keeps
# [0, 1] and turns greys into greys) that moves most of red into green, green into blue and
# blue into red (a hue rotation of roughly 120 degrees), then a tone curve y = x^0.7 that
# lifts the shadows. Both are invertible on [0, 1], so G_BA has something to learn as well.
COLOUR_MATRIX = torch.tensor([[0.15, 0.10, 0.75],
                              [0.70, 0.20, 0.10],
                              [0.10, 0.75, 0.15]])
GAMMA = 0.7


def hidden_mapping(image: torch.Tensor) -> torch.Tensor:
    """T: CxHxW (or BxCxHxW) in [-1, 1] -> the same shape in [-1, 1]: the colour matrix, then
    the tone curve, per pixel."""
    x = ((image.float() + 1.0) / 2.0).clamp(0.0, 1.0)
    mixed = torch.einsum("ij,...jhw->...ihw", COLOUR_MATRIX, x).clamp(0.0, 1.0)
    return mixed.pow(GAMMA) * 2.0 - 1.0


# ------------------------------------------------------------------ random jitter
# pix2pix/dataset.py holds the same jitter, there applied alike to both images of a pair
def jitter(load_size: int, crop_size: int):
    """The random jitter of Sec. 7.1 (the official --preprocess resize_and_crop, with its
    flip): resize to load_size x load_size (286), a random crop_size (256) crop, a random
    horizontal mirror; load_size == crop_size gives no crop, only the mirror. Each domain's
    image gets its own draws. Resizing is bicubic, as the official code's PIL resize."""
    import cv2

    A = albumentations()
    if crop_size > load_size:
        raise UserError(f"the crop ({crop_size}) cannot be larger than the loaded image ({load_size})")
    steps = [A.Resize(load_size, load_size, interpolation=cv2.INTER_CUBIC)]
    if crop_size < load_size:
        steps.append(A.RandomCrop(crop_size, crop_size))
    steps.append(A.HorizontalFlip(p=0.5))
    return A.Compose(steps)


def resize_only(size: int):
    """The transform of the fixed grid and evaluation images: a bicubic resize to size x size, nothing random."""
    import cv2

    A = albumentations()
    return A.Compose([A.Resize(size, size, interpolation=cv2.INTER_CUBIC)])


# ------------------------------------------------------------------ the embedded data
def random_crop(photo: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random square crop of `photo` (side CROP_SIDE of its shorter side) resized to size x size."""
    import cv2

    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(*CROP_SIDE))
    top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
    return cv2.resize(photo[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)


class EmbeddedUnpaired(Dataset):
    """`epoch_size` unpaired (a, b) items per epoch: a = jittered crop of a PHOTOS_A photo,
    b = T(jittered crop of a PHOTOS_B photo), each from its own draws of (seed, epoch, index).
    Returns (a, b) as 3xSxS tensors in [-1, 1]."""

    keyed = True
    channels = 3

    def __init__(self, image_size: int, load_size: int, seed: int = 0, epoch_size: int = EPOCH_SIZE):
        photos = bundled_photos(PHOTOS_A + PHOTOS_B)
        self.photos_a = [photos[n] for n in PHOTOS_A]
        self.photos_b = [photos[n] for n in PHOTOS_B]
        self.load_size, self.seed, self.epoch_size = load_size, seed, epoch_size
        self.transform = jitter(load_size, image_size)

    def __len__(self) -> int:
        return self.epoch_size

    def _side(self, photos: list[np.ndarray], rng: np.random.Generator) -> torch.Tensor:
        crop = random_crop(photos[int(rng.integers(len(photos)))], rng, self.load_size)
        jitter_seed = int(rng.integers(2**31 - 1))
        return to_tensor(augment(self.transform, jitter_seed, crop)["image"])

    def __getitem__(self, key):
        index, epoch = split_key(key)
        rng = np.random.default_rng(item_seed(self.seed, epoch, index))
        a = self._side(self.photos_a, rng)
        b = hidden_mapping(self._side(self.photos_b, rng))
        return a, b


def held_out_crops(image_size: int, n: int = EVAL_CROPS) -> torch.Tensor:
    """A fixed set of n crops (n/2 per photo, seed 0 whatever the run's seed, so every run is
    measured on the same images) of HELD_OUT_PHOTOS at image_size: the A side of the
    evaluation, whose targets are hidden_mapping(crops)."""
    photos = list(bundled_photos(HELD_OUT_PHOTOS).values())
    rng = np.random.default_rng(0)
    crops = [random_crop(photos[i % len(photos)], rng, image_size) for i in range(n)]
    return torch.stack([to_tensor(c) for c in crops])


# ------------------------------------------------------------------ the folder layout
def domain_files(root: Path, split: str, side: str) -> list[Path]:
    """The images of <root>/<split><side> (e.g. trainA); a missing or empty folder, or a
    non-image file, is a one-line DataError."""
    folder = root / f"{split}{side}"
    if not folder.is_dir():
        raise DataError(f"--data {root}: no {split}{side}/ folder (CycleGAN's layout: trainA/, trainB/ and "
                        f"optionally testA/, testB/ with the images of each domain)")
    return list_images(folder, f"--data {split}{side}")


class UnpairedFolder(Dataset):
    """<root>/trainA and trainB: max(|A|, |B|) items per epoch, item i = (A[i mod |A|],
    B[random]), each jittered independently (Sec. 7.1). Grey / RGBA files are converted to
    RGB (a one-line note is printed). Returns (a, b) in [-1, 1]."""

    keyed = True
    channels = 3

    def __init__(self, root: str | Path, image_size: int, load_size: int, seed: int = 0, split: str = "train"):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"--data {root}: no such folder (give a folder with trainA/ and trainB/, or "
                            f"--data photos for the embedded data)")
        self.files_a = domain_files(self.root, split, "A")
        self.files_b = domain_files(self.root, split, "B")
        for files, side in ((self.files_a, "A"), (self.files_b, "B")):
            note = conversion_note(files, f"{root}/{split}{side}")
            if note:
                print(note)
        self.seed = seed
        self.transform = jitter(load_size, image_size)

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def __getitem__(self, key):
        index, epoch = split_key(key)
        rng = np.random.default_rng(item_seed(self.seed, epoch, index))
        b_index = int(rng.integers(len(self.files_b)))  # B independent of A (official: random B index)
        seed_a, seed_b = (int(s) for s in rng.integers(2**31 - 1, size=2))  # each domain its own jitter
        a = augment(self.transform, seed_a, read_rgb(self.files_a[index % len(self.files_a)]))["image"]
        b = augment(self.transform, seed_b, read_rgb(self.files_b[b_index]))["image"]
        return to_tensor(a), to_tensor(b)


def fixed_images(files: list[Path], image_size: int, n: int) -> torch.Tensor:
    """The first n of `files` resized to image_size (no randomness): sample grids, evaluation."""
    resize = resize_only(image_size)
    return torch.stack([to_tensor(resize(image=read_rgb(f))["image"]) for f in files[:n]])


def fixed_domain(root: str | Path, side: str, image_size: int, n: int) -> tuple[torch.Tensor, str]:
    """n fixed images of domain `side` for grids and evaluate.py: from test<side>/ when it
    exists, else from train<side>/ (the returned name says which)."""
    root = Path(root)
    split = "test" if (root / f"test{side}").is_dir() else "train"
    return fixed_images(domain_files(root, split, side), image_size, n), f"{split}{side}"


def is_embedded(data: str) -> bool:
    return data == "photos"


def build_dataset(opt):
    """`--data photos` (embedded) or a folder with trainA/ and trainB/."""
    if is_embedded(opt.data):
        return EmbeddedUnpaired(opt.image_size, opt.load_size, seed=opt.seed, epoch_size=opt.epoch_size)
    if opt.data in ("digits", "mnist", "fashion-mnist", "cifar10", "celeba"):
        raise DataError(f"--data {opt.data}: CycleGAN trains on two domains; use --data photos (embedded) or a "
                        f"folder with trainA/ and trainB/ (e.g. horse2zebra)")
    return UnpairedFolder(opt.data, opt.image_size, opt.load_size, seed=opt.seed)


def sample_pairs(options: dict, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed A and B images for the sample grids: held-out crops (A) and T of other held-out
    crops (B) on the embedded data; the first test (or train) images of a folder."""
    if is_embedded(options["data"]):
        crops = held_out_crops(options["image_size"], 2 * n)
        return crops[:n], hidden_mapping(crops[n:])
    a, _ = fixed_domain(options["data"], "A", options["image_size"], n)
    b, _ = fixed_domain(options["data"], "B", options["image_size"], n)
    return a, b


def evaluation_set(options: dict, n: int = 100) -> dict:
    """What evaluate.py (and --eval-every) measure: on the embedded data the EVAL_CROPS
    held-out crops a with their ground truth T(a); on a folder, up to n images of testA and
    testB (trainA/B where there is no test split), with no ground truth."""
    size = options["image_size"]
    if is_embedded(options["data"]):
        a = held_out_crops(size)
        return {"a": a, "target": hidden_mapping(a), "b": None,
                "source": f"{a.shape[0]} held-out crops of {', '.join(HELD_OUT_PHOTOS)}"}
    a, split_a = fixed_domain(options["data"], "A", size, n)
    b, split_b = fixed_domain(options["data"], "B", size, n)
    return {"a": a, "target": None, "b": b, "source": f"{options['data']}: {split_a} ({len(a)}), {split_b} ({len(b)})"}
