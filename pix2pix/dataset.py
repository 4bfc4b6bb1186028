"""Paired data for pix2pix: the official aligned layout, two A/ and B/ folders, and two
embedded tasks made from the bundled photos (offline).

Every item is (input, target) in [-1, 1], C x S x S, after the paper's random jitter
(Sec. 6.2: resize to 286, random 256 crop, random mirror) applied identically to both
images (`jitter` below, through albumentations' additional_targets). `--direction BtoA` swaps the
roles of A and B.

  * aligned (official `datasets/facades` etc.): <root>/<phase>/*.jpg, each file A | B side
    by side, so its width is twice its height.
  * folders: <root>/A/ and <root>/B/ (optionally <root>/A/<phase>/ and <root>/B/<phase>/) with
    the same file names; each A file must have its B partner and the reverse.
  * embedded: `colorize` (A = the photo's CIE Lab lightness L, B = its colour channels ab, as
    the paper's colourisation and the official code's colorization mode pose it) and `edges2photo`
    (A = Canny edges of the photo, black on white as in edges2shoes, B = the photo), from
    crops of the bundled photos except common.data.HELD_OUT_PHOTOS, which give the
    held-out evaluation pairs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from common.data import (BUNDLED_PHOTOS, HELD_OUT_PHOTOS, albumentations, augment, bundled_photos, conversion_note,
                         item_seed, list_images, read_rgb, split_key, to_tensor)
from common.errors import DataError, UserError

EMBEDDED = ("colorize", "edges2photo")
CHANNELS = {"colorize": (1, 2)}  # (G's input, G's output) channels where not (3, 3): L in, ab out


# ------------------------------------------------------------- random jitter
# cyclegan/dataset.py holds the same jitter, for one image at a time (its domains are unpaired)
def jitter(load_size: int, crop_size: int, *, flip: bool = True, targets: tuple[str, ...] = ()):
    """The paper's random jitter (Sec. 6.2): resize to load_size x load_size (286), a random
    crop_size (256) crop, a random horizontal mirror. Every name in `targets` is an extra image
    that gets exactly the same resize, crop and mirror as `image` (albumentations'
    additional_targets): the two halves of a pair stay aligned. load_size == crop_size gives
    no crop, only the mirror. Resizing is bicubic, as the official code's PIL resize."""
    import cv2

    A = albumentations()
    if crop_size > load_size:
        raise UserError(f"the crop ({crop_size}) cannot be larger than the loaded image ({load_size})")
    steps = [A.Resize(load_size, load_size, interpolation=cv2.INTER_CUBIC)]
    if crop_size < load_size:
        steps.append(A.RandomCrop(crop_size, crop_size))
    if flip:
        steps.append(A.HorizontalFlip(p=0.5))
    return A.Compose(steps, additional_targets={t: "image" for t in targets})


def resize_only(size: int, *, targets: tuple[str, ...] = ()):
    """The evaluation-time transform: a bicubic resize to size x size of the image and every
    one of `targets`, nothing random."""
    import cv2

    A = albumentations()
    return A.Compose([A.Resize(size, size, interpolation=cv2.INTER_CUBIC)],
                     additional_targets={t: "image" for t in targets})


# --------------------------------------------------------------- embedded tasks
def grey(photo: np.ndarray) -> np.ndarray:
    """The photo's luma (ITU-R BT.601 weights) repeated into three channels: what edges() reads."""
    y = photo.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat(np.clip(np.rint(y), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def edges(photo: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Canny edges of the photo's grey copy, black lines on white, three channels: the
    input of edges -> photo (the paper's edges2shoes used HED edges; Canny needs no network)."""
    from skimage.feature import canny

    lines = canny(grey(photo)[..., 0].astype(np.float32) / 255.0, sigma=sigma)
    return np.repeat(np.where(lines, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


MAKE_INPUT = {"edges2photo": edges}  # colorize: lab_pair below


# ------------------------------------------------- colourisation in CIE Lab
# The paper's colourisation (Sec. 4.5, after Zhang et al. 2016) predicts a photo's colour
# from its lightness: the input is the L channel of CIE Lab, the output the two colour
# channels ab, and the shown image is L with the predicted ab. The official code scales L
# (0..100) and ab (about -110..110) to [-1, 1] as L / 50 - 1 and ab / 110; so do we.
def lab_pair(photo: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, ab) of an RGB uint8 photo: 1 x H x W and 2 x H x W tensors in [-1, 1]."""
    from skimage.color import rgb2lab

    lab = torch.from_numpy(rgb2lab(photo).astype(np.float32)).permute(2, 0, 1)
    return lab[:1] / 50.0 - 1.0, lab[1:] / 110.0


def lab_to_rgb(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """RGB in [-1, 1] (N x 3 x H x W) from L and ab in [-1, 1] (N x 1 and N x 2 x H x W); colours
    outside the RGB gamut are clipped (skimage.color.lab2rgb)."""
    import warnings

    from skimage.color import lab2rgb

    lab = torch.cat([(lightness.float().cpu() + 1.0) * 50.0, ab.float().cpu() * 110.0], dim=1)
    with warnings.catch_warnings():  # the clipping warning of out-of-gamut colours
        warnings.simplefilter("ignore")
        rgb = np.stack([lab2rgb(x) for x in lab.double().permute(0, 2, 3, 1).numpy()])
    return torch.from_numpy(rgb).float().permute(0, 3, 1, 2) * 2.0 - 1.0


def as_images(data: str, inputs: torch.Tensor, outputs: torch.Tensor,
              targets: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """(inputs, outputs[, targets]) as RGB images in [-1, 1], the form that is shown and measured.
    For colorize the input L is shown as its grey image (L with ab = 0: the trivial baseline),
    outputs and targets as L with their ab; every other task's tensors are images already."""
    if data != "colorize":
        return (inputs, outputs) + ((targets,) if targets is not None else ())
    shown = [lab_to_rgb(inputs, torch.zeros_like(outputs)), lab_to_rgb(inputs, outputs)]
    return tuple(shown + ([lab_to_rgb(inputs, targets)] if targets is not None else []))


def embedded_pair(task: str, photo: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) of an embedded task made from one photo: (L, ab) for colorize, (edges, photo) else."""
    if task == "colorize":
        return lab_pair(photo)
    return to_tensor(MAKE_INPUT[task](photo)), to_tensor(photo)


def square_region(photo: np.ndarray, rng: np.random.Generator, smallest: float) -> np.ndarray:
    """A random square region of the photo, its side `smallest`..1 of the photo's shorter side."""
    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(smallest, 1.0))
    top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
    return photo[top:top + side, left:left + side]


class EmbeddedPairs(Dataset):
    """`length` pairs for `task` from the bundled training photos.

    Item i is a square region of one photo, fixed by (seed, i); each epoch jitters it anew
    (a generator seeded by seed, epoch, i: common.data.item_seed), then derives the input from
    the jittered photo, so the pair is aligned by construction."""

    keyed = True  # indexed by (index, epoch): see common.data.ResumableSampler

    def __init__(self, task: str, *, load_size: int = 286, crop_size: int = 256, flip: bool = True,
                 length: int = 400, direction: str = "AtoB", seed: int = 0):
        self.task, self.length, self.direction, self.seed = task, length, direction, seed
        self.photos = list(bundled_photos([n for n in BUNDLED_PHOTOS if n not in HELD_OUT_PHOTOS]).values())
        if task == "colorize" and direction != "AtoB":
            raise DataError("--data colorize predicts colour from lightness (L -> ab); --direction BtoA does not apply")
        self.transform = jitter(load_size, crop_size, flip=flip)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key):
        index, epoch = split_key(key)
        rng = np.random.default_rng([self.seed, index])
        photo = self.photos[int(rng.integers(len(self.photos)))]
        region = square_region(photo, rng, smallest=0.4)
        b = augment(self.transform, item_seed(self.seed, epoch, index), region)["image"]
        return oriented(*embedded_pair(self.task, b), self.direction)


def held_out_pairs(task: str, size: int, n: int = 16, direction: str = "AtoB") -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets): n fixed crops (half from each held-out photo), size x size, never
    seen in training, for evaluate.py and the training run's sample rows."""
    photos = list(bundled_photos(HELD_OUT_PHOTOS).values())
    transform = resize_only(size)
    inputs, targets = [], []
    for i in range(n):
        rng = np.random.default_rng([12345, i])
        b = transform(image=square_region(photos[i % len(photos)], rng, smallest=0.5))["image"]
        a, b = oriented(*embedded_pair(task, b), direction)
        inputs.append(a)
        targets.append(b)
    return torch.stack(inputs), torch.stack(targets)


def oriented(a: torch.Tensor, b: torch.Tensor, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target): (A, B) for AtoB, (B, A) for BtoA."""
    return (a, b) if direction == "AtoB" else (b, a)


# ----------------------------------------------------------------- user folders
def aligned_files(folder: Path) -> list[Path]:
    """The aligned A | B images of `folder`; one whose width is not twice its height is an
    error naming it (read from the headers only)."""
    from PIL import Image

    files = list_images(folder)
    for f in files:
        with Image.open(f) as im:
            w, h = im.size
        if w != 2 * h:
            raise DataError(f"{f}: {w}x{h} is not an aligned A|B pair (its width must be twice its height); "
                            f"use two folders A/ and B/ for pairs stored as separate files")
    return files


def partner_files(folder_a: Path, folder_b: Path) -> list[tuple[Path, Path]]:
    """(A, B) files matched by their path below A/ and B/, extension aside; an A without its
    B partner (or the reverse) is an error naming the file."""
    a_files, b_files = list_images(folder_a), list_images(folder_b)
    key = lambda root, p: p.relative_to(root).with_suffix("").as_posix()  # noqa: E731
    b_by_key = {key(folder_b, p): p for p in b_files}
    a_keys = {key(folder_a, p) for p in a_files}
    for p in a_files:
        if key(folder_a, p) not in b_by_key:
            raise DataError(f"{p} has no partner in {folder_b} (expected a file named "
                            f"{p.relative_to(folder_a).with_suffix('')}.*)")
    for p in b_files:
        if key(folder_b, p) not in a_keys:
            raise DataError(f"{p} has no partner in {folder_a}")
    return [(p, b_by_key[key(folder_a, p)]) for p in a_files]


class PairedFolder(Dataset):
    """A user's pairs: aligned A | B files, or A/ and B/ folders, with the paper's jitter
    (or, with train=False, only a resize to crop_size) applied to both images alike."""

    keyed = True

    def __init__(self, root: str | Path, phase: str = "train", *, load_size: int = 286, crop_size: int = 256,
                 flip: bool = True, direction: str = "AtoB", train: bool = True, seed: int = 0):
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"--data {root}: no such folder (or use --data colorize | edges2photo)")
        self.direction, self.seed = direction, seed
        if (root / "A").is_dir() and (root / "B").is_dir():
            sub = phase if (root / "A" / phase).is_dir() else ""
            self.pairs = partner_files(root / "A" / sub, root / "B" / sub)
            files = [f for pair in self.pairs for f in pair]
            self.layout = f"A/ and B/ folders{' (' + phase + ')' if sub else ''}"
        else:
            folder = root / phase if (root / phase).is_dir() else root
            self.pairs = [(f, None) for f in aligned_files(folder)]
            files = [f for f, _ in self.pairs]
            self.layout = f"aligned A|B files in {folder}"
        self.note = conversion_note(files, str(root))
        self.transform = (jitter(load_size, crop_size, flip=flip, targets=("target",)) if train
                          else resize_only(crop_size, targets=("target",)))
        self.channels = 3

    def __len__(self) -> int:
        return len(self.pairs)

    def read_pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        path_a, path_b = self.pairs[i]
        if path_b is None:  # aligned: A is the left half, B the right
            both = read_rgb(path_a)
            w = both.shape[1] // 2
            return both[:, :w], both[:, w:2 * w]
        a, b = read_rgb(path_a), read_rgb(path_b)
        if a.shape != b.shape:
            raise DataError(f"{path_a} ({a.shape[1]}x{a.shape[0]}) and its partner {path_b} "
                            f"({b.shape[1]}x{b.shape[0]}) differ in size")
        return a, b

    def __getitem__(self, key):
        index, epoch = split_key(key)
        a, b = self.read_pair(index)
        out = augment(self.transform, item_seed(self.seed, epoch, index), a, target=b)
        return oriented(to_tensor(out["image"]), to_tensor(out["target"]), self.direction)


def build_dataset(opt, phase: str = "train", train: bool = True) -> Dataset:
    """--data colorize | edges2photo (embedded) or a folder in one of the layouts above."""
    if opt.data in EMBEDDED:
        return EmbeddedPairs(opt.data, load_size=opt.load_size, crop_size=opt.image_size, flip=not opt.no_flip,
                             length=opt.epoch_length, direction=opt.direction, seed=opt.seed)
    return PairedFolder(opt.data, phase, load_size=opt.load_size, crop_size=opt.image_size, flip=not opt.no_flip,
                        direction=opt.direction, train=train, seed=opt.seed)


def evaluation_pairs(opt, n: int = 16, phase: str | None = None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(inputs, targets, what): the held-out crops of the embedded tasks, or the first n pairs
    of the folder's test (else val) split, resized to --image-size without jitter."""
    if opt.data in EMBEDDED:
        a, b = held_out_pairs(opt.data, opt.image_size, n, opt.direction)
        return a, b, f"{n} held-out crops of {', '.join(HELD_OUT_PHOTOS)}"
    root = Path(opt.data)
    phases = [phase] if phase else [p for p in ("test", "val") if (root / p).is_dir()
                                     or (root / "A" / p).is_dir()]
    if not phases:
        raise DataError(f"{root} has no test/ or val/ split to evaluate on (name one with --phase)")
    ds = PairedFolder(root, phases[0], crop_size=opt.image_size, direction=opt.direction, train=False)
    items = [ds[i] for i in range(min(n, len(ds)))]
    return (torch.stack([a for a, _ in items]), torch.stack([b for _, b in items]),
            f"{len(items)} pairs of {root}/{phases[0]}")
