"""Datasets every folder can train on, and a loader that resumes mid-epoch.

Embedded (offline, no download):
  * `digits`: scikit-learn's 1,797 real 8x8 handwritten digits with labels,
    resized to the requested size, 1 channel.
  * `photos`: random crops of the real photos bundled inside scikit-learn and
    scikit-image, 3 channels. Crop i is a pure function of (seed, i), so a run
    and its resumed copy see identical data whatever the worker count.
Real: torchvision's MNIST / FashionMNIST / CIFAR-10 / CelebA (their own download)
and any folder of images. Every image tensor is in [-1, 1] (the Tanh range).
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from common.errors import DataError, UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
EMBEDDED = ("digits", "photos")
TORCHVISION = ("mnist", "fashion-mnist", "cifar10", "celeba")

# Colour photos shipped inside the installed packages (no download): skimage.data
# functions read these from the package folder; scikit-learn ships china/flower.
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
                  "immunohistochemistry")


def to_tanh_range(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the range of a Tanh generator output."""
    return x * 2.0 - 1.0


# --------------------------------------------------------------------- digits
class Digits(Dataset):
    """scikit-learn's handwritten digits (8x8, 0..16), resized to `image_size`.

    Resizing is bilinear from 8x8, so large sizes look soft; digits stay
    recognisable at 28-64 px. Returns (image [1, S, S] in [-1, 1], label).
    """

    def __init__(self, image_size: int = 28):
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
        if image_size != 8:
            images = F.interpolate(images, size=(image_size, image_size), mode="bilinear",
                                   align_corners=False)
        self.images = to_tanh_range(images.clamp(0.0, 1.0)).contiguous()
        self.labels = torch.from_numpy(bunch.target.astype(np.int64))
        self.channels = 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


# --------------------------------------------------------------------- photos
BUNDLED_PHOTOS = SKIMAGE_PHOTOS + ("motorcycle", "china", "flower")  # load_bundled_photos' order
# Whole photos kept out of the image-conditioned folders' embedded training sets, for
# evaluation: a model is measured on scenes it never saw a crop of.
HELD_OUT_PHOTOS = ("chelsea", "china")


def load_bundled_photos() -> list[np.ndarray]:
    """The real RGB photos shipped with scikit-image and scikit-learn (uint8 HxWx3), in the
    order of BUNDLED_PHOTOS."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(getattr(skimage.data, name)()) for name in SKIMAGE_PHOTOS]
    photos.append(np.asarray(skimage.data.stereo_motorcycle()[0]))  # the left view of the stereo pair
    photos += list(load_sample_images().images)
    return [p[..., :3] for p in photos if p.ndim == 3]


def bundled_photos(names: tuple[str, ...] | list[str] | None = None) -> dict[str, np.ndarray]:
    """The bundled photos by name (all of them, or `names` in that order)."""
    photos = dict(zip(BUNDLED_PHOTOS, load_bundled_photos()))
    return {n: photos[n] for n in (names if names is not None else BUNDLED_PHOTOS)}


class PhotoCrops(Dataset):
    """`length` random square crops of the bundled photos, resized to `image_size`.

    The crop side is a random 15-60% of the photo's shorter side, with a random
    horizontal flip; crop i is drawn from a generator seeded by (seed, i), so the
    dataset is a fixed set of images. Returns (image [3, S, S], photo index).
    """

    def __init__(self, image_size: int = 64, length: int = 8192, seed: int = 0):
        self.photos = [torch.from_numpy(p.copy()).permute(2, 0, 1).contiguous() for p in load_bundled_photos()]
        self.image_size, self.length, self.seed = image_size, length, seed
        self.channels = 3

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, i])
        k = int(rng.integers(len(self.photos)))
        photo = self.photos[k]
        h, w = photo.shape[1:]
        side = max(8, int(min(h, w) * rng.uniform(0.15, 0.6)))
        top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        crop = photo[:, top:top + side, left:left + side].float().unsqueeze(0) / 255.0
        crop = F.interpolate(crop, size=(self.image_size, self.image_size), mode="bilinear",
                             antialias=True, align_corners=False)[0]
        if rng.random() < 0.5:
            crop = crop.flip(-1)
        return to_tanh_range(crop.clamp(0.0, 1.0)), k


# --------------------------------------------------------------- image folder
def list_images(root: str | Path, what: str = "--data", *, open_each: bool = True) -> list[Path]:
    """Every image below `root`; a missing or empty folder, a non-image file or an
    unreadable image is a DataError naming the culprit and the flag `what` that gave the
    path (hidden files are skipped). Only --data hints at the embedded dataset.
    `open_each=False` leaves the unreadable images to the caller (generate.py skips them one
    by one and writes the rest)."""
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.exists():
        hint = " (use --data digits for the embedded dataset)" if what == "--data" else ""
        raise DataError(f"{what} {root}: no such file or directory{hint}")
    if not root.is_dir():
        raise DataError(f"{what} {root}: not a folder of images")
    files = sorted(p for p in root.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise DataError(f"{what} {root}: the folder is empty")
    for p in files:
        if p.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(f"{what} {root}: {p} is not an image (expected one of "
                            f"{' '.join(IMAGE_EXTENSIONS)}); move it out of the folder")
        if not open_each:
            continue
        try:
            with Image.open(p) as im:  # reads the header only: fast on large folders
                im.size
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{what} {root}: cannot read image {p} ({exc.__class__.__name__})") from exc
    return files


HIGH_BIT_DEPTH = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # PIL's 16-bit, 32-bit integer and float modes


def to_8bit(im):
    """A 16-bit, 32-bit integer or float PIL image as an 8-bit greyscale one ('L'), scaled,
    not clipped: PIL's own convert() clips such values at 255, so a 16-bit image of mean
    32,000 would come out almost white.

    - 16-bit (I;16*): value / 257, i.e. 0..65535 -> 0..255.
    - 32-bit integer (I): by the range the values use: 0..255 as they are, 0..65535 as
      16-bit (PNG and TIFF readers often hand 16-bit data over as I), anything else
      stretched from its own min..max to 0..255.
    - float (F): 0..1 -> 0..255; any other range stretched from its min..max. NaN/inf -> 0.
    Stretching is per image, so absolute intensities are not comparable between such files."""
    from PIL import Image

    a = np.asarray(im, dtype=np.float64)
    a = np.where(np.isfinite(a), a, 0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if im.mode.startswith("I;16") or (im.mode == "I" and lo >= 0 and 255 < hi <= 65535):
        a = a / 257.0
    elif im.mode == "F" and lo >= 0 and hi <= 1:
        a = a * 255.0
    elif not (im.mode == "I" and lo >= 0 and hi <= 255):
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), mode="L")


def convert_image(im, channels: int):
    """A PIL image of any mode as 'L' (channels=1) or 'RGB' (channels=3).

    High bit depths are scaled to 8 bits first (to_8bit); the rest is PIL's convert():
    grey is repeated into R, G and B, a palette is looked up, CMYK is converted, and an
    alpha channel (RGBA, LA, a palette's transparency) is dropped, not composited: a
    transparent pixel shows whatever colour it stores, often black."""
    if im.mode in HIGH_BIT_DEPTH:
        im = to_8bit(im)
    return im.convert("L" if channels == 1 else "RGB")


def load_image(path: str | Path, channels: int = 3):
    """Open `path` as an 8-bit 'L' or 'RGB' PIL image (convert_image); an unreadable file is
    a DataError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return convert_image(im, channels)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot read image {path} ({exc})") from exc


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as uint8 HxWx3 (grey repeated, alpha dropped, 16-bit scaled:
    convert_image); an unreadable file is a DataError naming it."""
    return np.array(load_image(path, 3))  # a writable copy: torch.from_numpy warns on PIL's read-only buffer


def conversion_note(files: list[Path], what: str) -> str | None:
    """One line saying how many of `files` are not 8-bit RGB and will be converted (None if
    all are): grey and 16-bit images are accepted and turned into RGB rather than refused,
    because a dataset with a few grey photos in it is common and the conversion loses
    nothing an RGB network could use."""
    from PIL import Image

    modes: dict[str, int] = {}
    for f in files:
        try:
            with Image.open(f) as im:
                if im.mode != "RGB":
                    modes[im.mode] = modes.get(im.mode, 0) + 1
        except OSError:  # unreadable: whoever reads it says so
            continue
    if not modes:
        return None
    kinds = ", ".join(f"{m}: {n}" for m, n in sorted(modes.items()))
    return (f"note: {sum(modes.values())} of {len(files)} images in {what} are not 8-bit RGB ({kinds}); "
            f"converted to RGB (grey repeated into R, G and B, alpha dropped, 16-bit scaled to 8)")


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC -> float CxHxW in [-1, 1]."""
    return to_tanh_range(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0)  # a writable copy


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """float CxHxW in [-1, 1] -> uint8 HxWxC."""
    x = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte()
    return x.permute(1, 2, 0).cpu().numpy()


def input_files(path: str | Path, what: str = "--input") -> list[Path]:
    """A generate.py's --input (or `what`): one image file, or every image in a folder."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(f"{what} {path} is not an image (expected one of {' '.join(IMAGE_EXTENSIONS)})")
        return [path]
    return list_images(path, what, open_each=False)  # an unreadable one is skipped when its turn comes


def output_path(source: Path, inputs_root: Path | None, out: Path, suffix: str = ".png") -> Path:
    """Where the output for input file `source` goes: `out` itself for a single input file
    named with an image extension, else out/<source's path below the input folder>.png."""
    if inputs_root is None:
        return out if out.suffix.lower() in IMAGE_EXTENSIONS else out / (source.stem + suffix)
    return out / source.relative_to(inputs_root).with_suffix(suffix)


def save_image(image: torch.Tensor, path: Path) -> Path:
    """Write a CxHxW image in [-1, 1] as an 8-bit file (creating its folder)."""
    from PIL import Image

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(to_uint8(image)).save(path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc}") from exc
    return path


class ImageFolderFlat(Dataset):
    """Any folder of images (searched recursively), resized and centre-cropped to
    `image_size`, converted to `channels` (1 = greyscale, 3 = RGB). Label is 0."""

    def __init__(self, root: str | Path, image_size: int, channels: int = 3):
        if channels not in (1, 3):
            raise DataError(f"--channels must be 1 or 3, not {channels}")
        self.files = list_images(root)
        self.image_size, self.channels = image_size, channels
        from torchvision import transforms

        self.transform = transforms.Compose([
            transforms.Resize(image_size, antialias=True),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
        ])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        return to_tanh_range(self.transform(load_image(self.files[i], self.channels))), 0


# ---------------------------------------------------------------- torchvision
def torchvision_dataset(name: str, image_size: int, root: str | Path = "data", download: bool = True):
    """MNIST / FashionMNIST / CIFAR-10 / CelebA via torchvision (downloads into `root`)."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Resize(image_size, antialias=True),
                             transforms.CenterCrop(image_size),
                             transforms.ToTensor(),
                             transforms.Lambda(to_tanh_range)])
    builders = {
        "mnist": (lambda: datasets.MNIST(root, train=True, transform=tf, download=download), 1),
        "fashion-mnist": (lambda: datasets.FashionMNIST(root, train=True, transform=tf, download=download), 1),
        "cifar10": (lambda: datasets.CIFAR10(root, train=True, transform=tf, download=download), 3),
        "celeba": (lambda: datasets.CelebA(root, split="train", transform=tf, download=download), 3),
    }
    build, channels = builders[name]
    try:
        ds = build()
    except Exception as exc:  # noqa: BLE001 - network, checksum and missing-file errors alike
        raise DataError(f"--data {name}: could not load or download it into {Path(root).resolve()} "
                        f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                        f"offline, use --data digits or put the files there") from exc
    ds.channels = channels
    return ds


def build_dataset(data: str, image_size: int, *, channels: int = 3, data_root: str | Path = "data",
                  seed: int = 0) -> Dataset:
    """Resolve `--data` to a dataset; the result has a `.channels` attribute."""
    if data == "digits":
        return Digits(image_size)
    if data == "photos":
        return PhotoCrops(image_size, seed=seed)
    if data in TORCHVISION:
        return torchvision_dataset(data, image_size, data_root)
    return ImageFolderFlat(data, image_size, channels)


# ------------------------------------------------------- augmentation that resumes
# A dataset with `keyed = True` is indexed by (index, epoch) (ResumableSampler) and draws its
# augmentation from a generator seeded by (seed, epoch, index): its crops change every epoch,
# do not touch the global RNG and do not depend on the worker count.
def split_key(key) -> tuple[int, int]:
    """(index, epoch) from a keyed sampler's item, or (index, 0) for a plain integer index."""
    if isinstance(key, tuple):
        return int(key[0]), int(key[1])
    return int(key), 0


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of item `index`'s augmentation in `epoch`: a pure function of the three."""
    return int(np.random.default_rng([seed, epoch, index]).integers(2**31 - 1))


def albumentations():
    """The albumentations module, imported without its start-up check for a newer release
    (a network request: this project never reaches the network behind the user's back)."""
    import os

    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations as A

    return A


def augment(transform, seed: int, image: np.ndarray, **targets: np.ndarray) -> dict:
    """An albumentations `transform(image=..., **targets)` with its random draws seeded by
    `seed` (item_seed): every target gets the same crop, flip or rotation as `image`."""
    transform.set_random_seed(seed)
    return transform(image=image, **targets)


# ------------------------------------------------------------------- loading
class ResumableSampler(DistributedSampler):
    """DistributedSampler (per-epoch shuffle from seed + epoch, one shard per rank)
    that can also skip the first batches of an epoch, to resume mid-epoch exactly.
    Works without torchrun too (one replica).

    `keyed`: yield (index, epoch) instead of index, for a dataset whose random
    augmentation draws from a generator seeded by (seed, epoch, index) (a dataset with
    `keyed = True`, e.g. pix2pix's paired jitter): its crops then differ every epoch, yet
    depend neither on the global RNG nor on the worker count, so a resumed run reads
    exactly the images an unbroken one would."""

    def __init__(self, dataset, *, num_replicas=1, rank=0, shuffle=True, seed=0, keyed=False):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=True)
        self.skip = 0
        self.keyed = keyed

    def set_epoch(self, epoch: int, skip: int = 0) -> None:  # noqa: D401 - same meaning as the parent's
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        indices = itertools.islice(super().__iter__(), self.skip, None)
        return ((i, self.epoch) for i in indices) if self.keyed else indices

    def __len__(self) -> int:
        return super().__len__() - self.skip


def make_loader(dataset: Dataset, batch_size: int, *, workers: int = 0, seed: int = 0,
                rank: int = 0, world_size: int = 1, pin_memory: bool = False) -> DataLoader:
    """A shuffling DataLoader with whole batches only, whose order depends only on
    (seed, epoch): its own generator keeps the global RNG untouched."""
    sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank, seed=seed,
                               keyed=getattr(dataset, "keyed", False))
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        drop_last=True, pin_memory=pin_memory, persistent_workers=workers > 0,
                        generator=generator)
    if len(loader) == 0:
        raise DataError(f"the dataset has {len(dataset)} images, fewer than one batch of {batch_size} "
                        f"per process: lower --batch-size")
    return loader


def iterate_steps(loader: DataLoader, start_step: int, total_steps: int):
    """Yield (step, epoch, batch) for steps start_step+1 .. total_steps (1-based),
    crossing epochs as needed; resuming at any step sees the same batches."""
    loader.sampler.set_epoch(0)
    steps_per_epoch = len(loader)
    step = start_step
    while step < total_steps:
        epoch, offset = divmod(step, steps_per_epoch)
        loader.sampler.set_epoch(epoch, skip=offset * loader.batch_size)
        for batch in loader:
            step += 1
            yield step, epoch, batch
            if step >= total_steps:
                return
