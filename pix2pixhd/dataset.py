"""Semantic label maps, instance maps and photos for pix2pixHD (Wang et al. 2018,
arXiv:1711.11585): the datasets, the official folder layout and its augmentation.

Two sources, one item format:

  * `--data scenes` (embedded, offline, the default): the procedural street scenes of
    scenes.py (`make_scene(seed, height, width)`). Training scenes are seeds 0..N-1,
    held-out scenes HELD_OUT_SEED + i: the two never meet.
  * a folder in the official (Cityscapes-style) layout:
        <root>/train_label/   class ids, one single-channel PNG per scene (< --label-nc)
        <root>/train_inst/    instance ids (Cityscapes *_instanceIds.png, 16-bit), optional
                              with --no-instance
        <root>/train_img/     the photos
        <root>/test_label/, test_inst/, test_img/ (test_img optional)
    paired by sorted file order, as the official code does. With --label-nc 0 the input is
    an ordinary RGB image: <root>/train_A/ and train_B/ (the official names) or
    train_label/ and train_img/.

Every item is a dict
    {"label": LongTensor H x W (class ids)      -- FloatTensor 3 x H x W in [-1, 1] for label_nc 0,
     "inst":  LongTensor H x W (instance ids; zeros without instance maps),
     "image": FloatTensor 3 x H x W in [-1, 1] (absent for a test split without test_img/),
     "name":  str}
and datasets are keyed by (index, epoch) (common.data.ResumableSampler), so a resumed run
sees the same flips and crops. Instance ids follow Cityscapes (scenes.py). The generator's
input encoding of an item (one-hot labels, the boundary map) is model.py's encode_input.

Augmentation is the official `--resize_or_crop` (data/base_dataset.py) through
albumentations with additional_targets: the photo is resized bicubic (area averaging when
shrinking, which is what PIL's bicubic does with its widened kernel and OpenCV's does not),
the label and instance maps nearest-neighbour only (cv2.INTER_NEAREST_EXACT, PIL's pixel-centre
nearest), so no new class or instance id can appear. Sizes are made multiples of `multiple`
(2**n_downsample_global * 2**n_local_enhancers: 32 for the paper's G1 + one G2) by the
official `__make_power_2` rule, resizing to round(size / multiple) * multiple; the official
applies it only with `none` and relies on Cityscapes' 2:1 aspect otherwise, here it follows
every resize (and a crop must itself be a multiple), so any folder gives sizes the
generator can take.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from common import data as cdata
from common.errors import DataError, UserError
from .model import input_channels
from .scenes import CLASS_NAMES, EMBEDDED_SIZE, LABEL_NC, make_scene

EMBEDDED = ("scenes",)
HELD_OUT_SEED = 10**6       # held-out scene i is make_scene(HELD_OUT_SEED + i); training scenes are 0..N-1
SCENES_TRAIN, SCENES_HELD_OUT = 2975, 500  # as many as Cityscapes' train and val splits

RESIZE_OR_CROP = ("scale_width", "scale_width_and_crop", "resize_and_crop", "crop", "none")
CITYSCAPES_LABEL_NC = 35    # the official --label_nc default (Cityscapes labelIds 0..33, plus one)
OFFICIAL_LOAD_SIZE, OFFICIAL_FINE_SIZE = 1024, 512  # the official --loadSize / --fineSize
DEFAULT_MULTIPLE = 32       # 2**4 (G1's downsamplings) * 2**1 (one local enhancer)


# ================================================================ sizes and augmentation
def make_multiple(n: int, multiple: int) -> int:
    """The official __make_power_2 rule: n rounded to the nearest multiple (Python's round,
    ties to even), at least one multiple."""
    return max(int(round(n / multiple) * multiple), multiple)


def scaled_size(height: int, width: int, resize_or_crop: str, load_size: int, multiple: int) -> tuple[int, int]:
    """The size an image of height x width is resized to before any crop (official
    base_dataset.get_transform): resize_and_crop -> load_size x load_size; scale_width(_and_crop)
    -> width load_size, height int(load_size * height / width) (the official __scale_width);
    crop / none -> unchanged. Then each side is made a multiple of `multiple` (make_multiple)."""
    if resize_or_crop == "resize_and_crop":
        height = width = load_size
    elif resize_or_crop.startswith("scale_width"):
        height, width = int(load_size * height / width), load_size
    return make_multiple(height, multiple), make_multiple(width, multiple)


def check_options(resize_or_crop: str, fine_size: int | None, multiple: int) -> None:
    if resize_or_crop not in RESIZE_OR_CROP:
        raise UserError(f"--resize-or-crop {resize_or_crop}: expected one of {', '.join(RESIZE_OR_CROP)}")
    if "crop" in resize_or_crop and (not fine_size or fine_size % multiple):
        raise UserError(f"--fine-size {fine_size} must be a multiple of {multiple} (the generator halves "
                        f"the image that many times) for --resize-or-crop {resize_or_crop}")


def transform(src: tuple[int, int], dst: tuple[int, int], *, crop: int | None, flip: bool, label_is_image: bool = False):
    """An albumentations pipeline: resize src (h, w) to dst (h, w) (bicubic for the photo,
    area averaging when it shrinks; nearest-neighbour for the label and instance maps), then
    an optional random crop x crop and random horizontal flip, identical for the three
    (additional_targets "label" and "inst"; "label" is an image for label_nc 0)."""
    import cv2

    A = cdata.albumentations()
    steps = []
    if dst != tuple(src):
        shrink = dst[0] < src[0] and dst[1] < src[1]
        steps.append(A.Resize(dst[0], dst[1], interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC,
                              mask_interpolation=cv2.INTER_NEAREST_EXACT))
    if crop:
        steps.append(A.RandomCrop(crop, crop))
    if flip:
        steps.append(A.HorizontalFlip(p=0.5))
    return A.Compose(steps, additional_targets={"label": "image" if label_is_image else "mask", "inst": "mask"})


def make_item(label: np.ndarray, inst: np.ndarray | None, image: np.ndarray | None, name: str) -> dict:
    """The item dict from numpy planes: label (H x W ids, or H x W x 3 for label_nc 0),
    inst (H x W ids or None -> zeros), image (H x W x 3 uint8 or None -> no "image" key)."""
    h, w = label.shape[:2]
    item = {"label": cdata.to_tensor(label) if label.ndim == 3 else torch.from_numpy(label.astype(np.int64)),
            "inst": (torch.zeros(h, w, dtype=torch.long) if inst is None
                     else torch.from_numpy(inst.astype(np.int64)))}
    if image is not None:
        item["image"] = cdata.to_tensor(image)
    item["name"] = name
    return item


# ================================================================ embedded scenes
class EmbeddedScenes(Dataset):
    """`length` procedural scenes at height x width: training scenes make_scene(i), or
    with train=False the held-out scenes make_scene(HELD_OUT_SEED + i), never seen in
    training. Drawn at the requested size (no resampling). Training items get a random
    horizontal flip (and a fine_size crop when given), drawn from (seed, epoch, index);
    held-out items are not augmented. `seed` only moves the augmentation: the scenes are
    a fixed set, like a real dataset's."""

    keyed = True  # indexed by (index, epoch): see common.data.ResumableSampler

    def __init__(self, length: int = SCENES_TRAIN, height: int = EMBEDDED_SIZE[0], width: int = EMBEDDED_SIZE[1],
                 seed: int = 0, train: bool = True, *, fine_size: int | None = None, flip: bool = True,
                 no_instance: bool = False):
        if train and length > HELD_OUT_SEED:
            raise UserError(f"at most {HELD_OUT_SEED} training scenes (seeds from {HELD_OUT_SEED} are held out)")
        if fine_size and fine_size > min(height, width):
            raise UserError(f"--fine-size {fine_size} is larger than the {height} x {width} scenes (raise --load-size)")
        self.length, self.height, self.width, self.seed, self.train = length, height, width, seed, train
        self.no_instance = no_instance
        self.label_nc, self.use_instance = LABEL_NC, not no_instance
        self.input_nc = input_channels(LABEL_NC, not no_instance)
        self.transform = transform((height, width), (height, width), crop=fine_size if train else None,
                                   flip=flip and train)

    def scene_seed(self, index: int) -> int:
        return index if self.train else HELD_OUT_SEED + index

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key):
        index, epoch = cdata.split_key(key)
        seed = self.scene_seed(index)
        label, inst, image = make_scene(seed, self.height, self.width)
        out = cdata.augment(self.transform, cdata.item_seed(self.seed, epoch, index), image, label=label, inst=inst)
        return make_item(out["label"], None if self.no_instance else out["inst"], out["image"], f"scene_{seed:07d}")


# ================================================================ the official folder layout
_SUFFIX = re.compile(r"_(gtFine|gtCoarse)?_?(labelIds|instanceIds|color|leftImg8bit|label|inst|img)$")
LABEL_MODES = ("1", "L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N")  # single-channel integer modes


def pairing_key(path: Path) -> str:
    """A file's name without its Cityscapes-style suffix (_gtFine_labelIds, _leftImg8bit,
    ...): what a label map and its photo share, used only to name the first mismatch."""
    return _SUFFIX.sub("", path.stem)


def first_mismatch(a: list[Path], b: list[Path]) -> Path:
    """The first file of the longer list without a partner in sorted-order pairing."""
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    for i, p in enumerate(longer):
        if i >= len(shorter) or pairing_key(p) != pairing_key(shorter[i]):
            return p
    return longer[-1]


def read_ids(path: Path, what: str) -> np.ndarray:
    """A single-channel label or instance map as integers, without losing values (16-bit
    and 32-bit PNG/TIFF read as they are, never scaled to 8 bits)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode not in LABEL_MODES:
                raise DataError(f"{path}: a {what} must be a single-channel image of integer ids, not mode "
                                f"{im.mode}" + (" (a colour-coded map? use the *_labelIds.png files, or --label-nc 0 "
                                                "for plain image input)" if im.mode in ("RGB", "RGBA") else ""))
            return np.array(im).astype(np.int32)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot read {what} {path} ({exc})") from exc


def _header(path: Path) -> tuple[tuple[int, int], str]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size, im.mode


class LabelFolder(Dataset):
    """A user's label maps, instance maps and photos in the official layout (module docstring).

    Pairs by sorted order as the official code does; checked on construction: the folders
    hold as many files each (else the first file without a partner is named), the partners
    have one size (read from the headers), label and instance maps are single-channel. A
    label value >= label_nc is found when the map is loaded (an error naming the file and
    the value). train=False: no crop and no flip (the official flips only when training)."""

    keyed = True

    def __init__(self, root: str | Path, phase: str = "train", *, label_nc: int = CITYSCAPES_LABEL_NC,
                 no_instance: bool = False, load_size: int = OFFICIAL_LOAD_SIZE, fine_size: int | None = OFFICIAL_FINE_SIZE,
                 resize_or_crop: str = "scale_width", flip: bool = True, train: bool = True,
                 multiple: int = DEFAULT_MULTIPLE, seed: int = 0):
        root = Path(root)
        check_options(resize_or_crop, fine_size, multiple)
        if not root.is_dir():
            raise DataError(f"--data {root}: no such folder (expected {phase}_label/, {phase}_inst/, {phase}_img/ "
                            f"inside; or use --data scenes)")
        self.root, self.phase, self.label_nc, self.seed = root, phase, label_nc, seed
        self.load_size, self.resize_or_crop, self.multiple = load_size, resize_or_crop, multiple
        self.crop = fine_size if (train and "crop" in resize_or_crop) else None
        self.flip = flip and train
        if label_nc == 0 and (root / f"{phase}_A").is_dir():
            label_dir, image_dir = root / f"{phase}_A", root / f"{phase}_B"
        else:
            label_dir, image_dir = root / f"{phase}_label", root / f"{phase}_img"
        inst_dir = root / f"{phase}_inst"
        if not label_dir.is_dir():
            raise DataError(f"--data {root}: no {label_dir.name}/ folder (the official layout: {phase}_label/, "
                            f"{phase}_inst/, {phase}_img/; or use --data scenes)")
        self.labels = cdata.list_images(label_dir)
        if not image_dir.is_dir() and train:
            raise DataError(f"--data {root}: no {image_dir.name}/ folder (the photos to train on)")
        if label_nc > 0 and not no_instance and not inst_dir.is_dir():
            raise DataError(f"--data {root}: no {inst_dir.name}/ folder; instance maps give the boundary map "
                            f"(Sec. 3.3): add them, or train without with --no-instance")
        self.use_instance = not no_instance and inst_dir.is_dir()
        self.label_dir = label_dir
        self.images = cdata.list_images(image_dir) if image_dir.is_dir() else None
        self.insts = cdata.list_images(inst_dir) if self.use_instance else None
        for other in (self.images, self.insts):
            if other is not None and len(other) != len(self.labels):
                raise DataError(f"{label_dir} has {len(self.labels)} files but {other[0].parent} has {len(other)} "
                                f"(paired by sorted order); the first without a partner: "
                                f"{first_mismatch(self.labels, other)}")
        self.sizes = [self._check_headers(i) for i in range(len(self.labels))]
        self.input_nc = input_channels(label_nc, self.use_instance)
        self.transforms: dict = {}

    def _check_headers(self, i: int) -> tuple[int, int]:
        """(h, w) of scene i; partners of another size, or a label or instance map that is
        not single-channel, are errors naming the files."""
        (w, h), mode = _header(self.labels[i])
        if self.label_nc > 0 and mode not in LABEL_MODES:
            read_ids(self.labels[i], "label map")  # raises the message
        for other, what in ((self.images, "photo"), (self.insts, "instance map")):
            if other is not None:
                (ow, oh), omode = _header(other[i])
                if (ow, oh) != (w, h):
                    raise DataError(f"{self.labels[i]} ({w}x{h}) and its {what} {other[i]} ({ow}x{oh}) differ in size")
                if what == "instance map" and omode not in LABEL_MODES:
                    read_ids(other[i], what)
        return h, w

    def __len__(self) -> int:
        return len(self.labels)

    def _transform(self, src: tuple[int, int], path: Path):
        if src not in self.transforms:
            dst = scaled_size(*src, self.resize_or_crop, self.load_size, self.multiple)
            if self.crop and (dst[0] < self.crop or dst[1] < self.crop):
                raise DataError(f"{path}: {dst[1]}x{dst[0]} after --resize-or-crop {self.resize_or_crop} is smaller "
                                f"than the --fine-size {self.crop} crop")
            self.transforms[src] = transform(src, dst, crop=self.crop, flip=self.flip,
                                             label_is_image=self.label_nc == 0)
        return self.transforms[src]

    def __getitem__(self, key):
        index, epoch = cdata.split_key(key)
        path = self.labels[index]
        if self.label_nc == 0:
            label = cdata.read_rgb(path)
        else:
            label = read_ids(path, "label map")
            if label.max(initial=0) >= self.label_nc or label.min(initial=0) < 0:
                bad = int(label.max()) if label.max() >= self.label_nc else int(label.min())
                raise DataError(f"{path}: label value {bad} is outside 0..{self.label_nc - 1} (--label-nc "
                                f"{self.label_nc}; Cityscapes labelIds need 35)")
            label = label.astype(np.uint8) if self.label_nc <= 256 else label
        image = cdata.read_rgb(self.images[index]) if self.images is not None else None
        targets = {"label": label}
        if self.insts is not None:
            targets["inst"] = read_ids(self.insts[index], "instance map")
        src = self.sizes[index]
        dummy = np.zeros((*src, 3), np.uint8) if image is None else image  # albumentations wants an image
        out = cdata.augment(self._transform(src, path), cdata.item_seed(self.seed, epoch, index), dummy, **targets)
        return make_item(out["label"], out.get("inst"), None if image is None else out["image"],
                         path.relative_to(self.label_dir).as_posix())


# ================================================================ entry points
def default_load_size(data: str) -> int:
    """--load-size when not given: 256 for the scenes (drawn at 128 x 256), the official 1024 for folders."""
    return EMBEDDED_SIZE[1] if data in EMBEDDED else OFFICIAL_LOAD_SIZE


def default_fine_size(data: str) -> int:
    """--fine-size when not given: 128 for the scenes, the official 512 for folders."""
    return EMBEDDED_SIZE[0] if data in EMBEDDED else OFFICIAL_FINE_SIZE


def default_label_nc(data: str) -> int:
    """--label-nc when not given: LABEL_NC for the scenes, the official 35 (Cityscapes) for folders."""
    return LABEL_NC if data in EMBEDDED else CITYSCAPES_LABEL_NC


def _resolved(opt) -> tuple[int, int, int | None]:
    load = opt.load_size or default_load_size(opt.data)
    fine = opt.fine_size or default_fine_size(opt.data)
    label_nc = default_label_nc(opt.data) if opt.label_nc is None else opt.label_nc
    return load, fine, label_nc


def scene_size(opt, multiple: int = DEFAULT_MULTIPLE) -> tuple[int, int]:
    """(h, w) the scenes are drawn at: EMBEDDED_SIZE scaled by --resize-or-crop / --load-size
    as a 128 x 256 photo would be (scaled_size)."""
    load, fine, _ = _resolved(opt)
    check_options(opt.resize_or_crop, fine, multiple)
    return scaled_size(*EMBEDDED_SIZE, opt.resize_or_crop, load, multiple)


def build_dataset(opt, phase: str = "train", *, train: bool | None = None, multiple: int = DEFAULT_MULTIPLE) -> Dataset:
    """--data scenes or a folder in the official layout. Reads opt.data, opt.label_nc,
    opt.no_instance, opt.load_size, opt.fine_size, opt.resize_or_crop, opt.no_flip, opt.seed
    (None for label_nc / load_size / fine_size: the data source's default, see default_*),
    and opt.epoch_length if present (the number of training scenes, default SCENES_TRAIN).
    train (default: phase == "train"): augment, and for the scenes, the training seeds;
    otherwise the held-out scenes (SCENES_HELD_OUT of them) without augmentation.
    `multiple`: what the generator needs the sides to be multiples of (DEFAULT_MULTIPLE)."""
    train = phase == "train" if train is None else train
    load, fine, label_nc = _resolved(opt)
    if opt.data in EMBEDDED:
        if label_nc != LABEL_NC:
            raise UserError(f"--data scenes has {LABEL_NC} classes ({', '.join(CLASS_NAMES)}): use --label-nc "
                            f"{LABEL_NC}, not {label_nc}")
        h, w = scene_size(opt, multiple)
        length = (getattr(opt, "epoch_length", None) or SCENES_TRAIN) if train else SCENES_HELD_OUT
        return EmbeddedScenes(length, h, w, opt.seed, train,
                              fine_size=fine if "crop" in opt.resize_or_crop else None,
                              flip=not opt.no_flip, no_instance=opt.no_instance)
    return LabelFolder(opt.data, phase, label_nc=label_nc, no_instance=opt.no_instance, load_size=load,
                       fine_size=fine, resize_or_crop=opt.resize_or_crop, flip=not opt.no_flip, train=train,
                       multiple=multiple, seed=opt.seed)


def evaluation_scenes(opt, n: int = 8, *, multiple: int = DEFAULT_MULTIPLE) -> tuple[dict, str]:
    """(batch, what): n held-out items collated into one batch ("label" N x H x W, "inst",
    "image", "name" a list), not augmented: the first n held-out scenes, or the first n of
    the folder's test split (else val), scaled as in training but never cropped or flipped."""
    if opt.data in EMBEDDED:
        ds = build_dataset(opt, "test", train=False, multiple=multiple)
        what = f"{n} held-out scenes (seeds {HELD_OUT_SEED}..{HELD_OUT_SEED + n - 1})"
    else:
        root = Path(opt.data)
        phases = [p for p in ("test", "val") if (root / f"{p}_label").is_dir() or (root / f"{p}_A").is_dir()]
        if not phases:
            raise DataError(f"--data {root}: no test_label/ (or val_label/) folder to evaluate on")
        ds = build_dataset(opt, phases[0], train=False, multiple=multiple)
        what = f"{min(n, len(ds))} scenes of {root}/{phases[0]}_*"
    items = [ds[i] for i in range(min(n, len(ds)))]
    sizes = {tuple(it["label"].shape[-2:]) for it in items}
    if len(sizes) > 1:
        raise DataError(f"the evaluation scenes of {opt.data} differ in size after scaling ({sorted(sizes)}); "
                        f"use --resize-or-crop scale_width or resize_and_crop")
    from torch.utils.data import default_collate

    return default_collate(items), what


def sample_scenes(opt, dataset: Dataset, multiple: int, n: int = 4) -> dict:
    """The fixed scenes of train.py's sample grids: evaluation_scenes (held-out scenes, a
    folder's test, else val, split) or, for a folder without one, its first training items as
    they were drawn in epoch 0 (those of the first one's size)."""
    try:
        return evaluation_scenes(opt, n, multiple=multiple)[0]
    except DataError:
        from torch.utils.data import default_collate

        items = [dataset[(i, 0)] for i in range(min(n, len(dataset)))]
        same = [it for it in items if it["label"].shape == items[0]["label"].shape]  # one size per grid
        return default_collate(same)
