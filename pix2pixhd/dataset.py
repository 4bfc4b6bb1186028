"""Semantic label maps, instance maps and photos for pix2pixHD (Wang et al. 2018,
arXiv:1711.11585), and the maths that turns them into the generator's input.

Two sources, one item format:

  * `--data scenes` (embedded, offline, the default): procedural street scenes drawn by
    `make_scene(seed, height, width)`: sky, a row of buildings sharing walls, a sidewalk,
    a road, trees, poles, people standing side by side, cars parked bumper to bumper.
    Every building, car and person is an instance with its own colour, so the label map
    alone cannot tell two touching cars apart (the instance boundary map can, Sec. 3.3)
    and one label map has many valid looks (what the instance-level feature encoder
    learns, Sec. 3.4). Training scenes are seeds 0..N-1, held-out scenes
    HELD_OUT_SEED + i: the two never meet.
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
sees the same flips and crops.

Instance ids follow Cityscapes: a "thing" (building, car, person here) has id
class * 1000 + k, "stuff" has id = class, so `inst // 1000` is the class of a thing and
`inst < 1000` marks stuff (the official encoder's `label = i if i < 1000 else i // 1000`).

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

import math
import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from common import image2image as i2i
from common.errors import DataError, UserError
from .model import generator_in_channels

# ================================================================ classes
CLASS_NAMES = ("sky", "road", "sidewalk", "building", "vegetation", "pole", "car", "person")
LABEL_NC = len(CLASS_NAMES)
SKY, ROAD, SIDEWALK, BUILDING, VEGETATION, POLE, CAR, PERSON = range(LABEL_NC)
THING_CLASSES = (BUILDING, CAR, PERSON)  # have instances (id = class * 1000 + k); the rest is stuff (id = class)
# Cityscapes' colours for the same classes, for showing label maps.
CLASS_COLORS = ((70, 130, 180), (128, 64, 128), (244, 35, 232), (70, 70, 70), (107, 142, 35),
                (153, 153, 153), (0, 0, 142), (220, 20, 60))

EMBEDDED = ("scenes",)
EMBEDDED_SIZE = (128, 256)  # H x W of --data scenes at its default --load-size 256 (Cityscapes' 1:2)
HELD_OUT_SEED = 10**6       # held-out scene i is make_scene(HELD_OUT_SEED + i); training scenes are 0..N-1
SCENES_TRAIN, SCENES_HELD_OUT = 2975, 500  # as many as Cityscapes' train and val splits

RESIZE_OR_CROP = ("scale_width", "scale_width_and_crop", "resize_and_crop", "crop", "none")
CITYSCAPES_LABEL_NC = 35    # the official --label_nc default (Cityscapes labelIds 0..33, plus one)
OFFICIAL_LOAD_SIZE, OFFICIAL_FINE_SIZE = 1024, 512  # the official --loadSize / --fineSize
DEFAULT_MULTIPLE = 32       # 2**4 (G1's downsamplings) * 2**1 (one local enhancer)


# ================================================================ the generator's input (Sec. 3.3)
def one_hot(label: torch.Tensor, label_nc: int) -> torch.Tensor:
    """N x H x W class ids (or N x 1 x H x W) -> float N x label_nc x H x W, 1 at each pixel's
    class and 0 elsewhere: the one-hot semantic map the official encode_input builds with
    scatter_. An id >= label_nc raises an index error (the datasets check ids on load)."""
    if label.dim() == 3:
        label = label.unsqueeze(1)
    n, _, h, w = label.shape
    out = torch.zeros(n, label_nc, h, w, device=label.device)
    return out.scatter_(1, label.long(), 1.0)


def boundary_map(inst: torch.Tensor) -> torch.Tensor:
    """N x H x W instance ids (or N x 1 x H x W) -> float N x 1 x H x W instance boundary map
    (Sec. 3.3, Fig. 4), the official `get_edges`: a pixel is 1 where its id differs from its
    right or lower neighbour, and also where it differs from its left or upper neighbour, so
    both pixels on either side of a boundary are marked (a boundary is two pixels thick);
    only the four axis neighbours count, never the diagonals; the image border is not a
    boundary."""
    if inst.dim() == 3:
        inst = inst.unsqueeze(1)
    edge = torch.zeros(inst.shape, dtype=torch.bool, device=inst.device)
    horizontal = inst[..., :, 1:] != inst[..., :, :-1]
    edge[..., :, 1:] |= horizontal
    edge[..., :, :-1] |= horizontal
    vertical = inst[..., 1:, :] != inst[..., :-1, :]
    edge[..., 1:, :] |= vertical
    edge[..., :-1, :] |= vertical
    return edge.float()


def encode_input(label: torch.Tensor, inst: torch.Tensor | None, label_nc: int,
                 use_instance: bool = True) -> torch.Tensor:
    """The generator's (and the conditional discriminator's) input: one_hot(label) and, with
    instance maps, boundary_map(inst) concatenated on channels: label_nc + 1 channels. With
    label_nc 0 `label` is already an image (N x 3 x H x W) and passes through (plus the
    boundary map when instances are used)."""
    x = label.float() if label_nc == 0 else one_hot(label, label_nc)
    if use_instance:
        x = torch.cat([x, boundary_map(inst).to(x.dtype)], dim=1)
    return x


def input_channels(label_nc: int, use_instance: bool, image_nc: int = 3) -> int:
    """Channels of encode_input's output: model.generator_in_channels without features."""
    return generator_in_channels(label_nc, use_instance, 0, image_nc)


def instance_class(inst: torch.Tensor) -> torch.Tensor:
    """The class of each pixel from its instance id (Cityscapes: id < 1000 is stuff and
    the id is the class; otherwise the class is id // 1000)."""
    return torch.where(inst < 1000, inst, inst // 1000)


def palette(label_nc: int = LABEL_NC) -> np.ndarray:
    """label_nc x 3 uint8 colours for showing label maps: CLASS_COLORS for the scenes'
    classes, the usual bit-interleaved colour map (as PASCAL VOC's) for any other count."""
    colours = np.zeros((max(label_nc, 1), 3), np.uint8)
    for i in range(len(colours)):
        c, r, g, b = i, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours[i] = (r, g, b)
    if label_nc == LABEL_NC:
        colours[:] = CLASS_COLORS
    return colours


def colorize(label: torch.Tensor, label_nc: int = LABEL_NC) -> torch.Tensor:
    """Class ids (H x W or N x H x W) -> float (N x) 3 x H x W in [-1, 1], coloured by palette()."""
    colours = torch.from_numpy(palette(label_nc)).float() / 127.5 - 1.0
    out = colours[label.long().clamp(0, len(colours) - 1).cpu()]
    return out.movedim(-1, -3)


# ================================================================ procedural street scenes
FACADES = ((196, 172, 140), (168, 92, 72), (150, 150, 156), (222, 212, 184), (122, 102, 92),
           (204, 192, 168), (142, 112, 82), (180, 130, 110), (110, 120, 130))
CAR_PAINTS = ((178, 22, 24), (24, 52, 150), (232, 232, 228), (28, 28, 30), (160, 162, 168),
              (222, 180, 32), (32, 112, 62), (112, 22, 34), (92, 124, 164), (210, 110, 30))
SKIN = ((232, 190, 160), (198, 140, 100), (140, 92, 62), (92, 60, 42))
TROUSERS = ((40, 44, 60), (30, 30, 32), (70, 80, 110), (120, 100, 80), (150, 150, 150))


class _Canvas:
    """Label, instance and colour planes painted back to front (the painter's algorithm)."""

    def __init__(self, height: int, width: int):
        self.h, self.w = height, width
        self.label = np.zeros((height, width), np.uint8)
        self.inst = np.zeros((height, width), np.int32)
        self.image = np.zeros((height, width, 3), np.float32)

    def region(self, y0: float, y1: float, x0: float, x1: float):
        """(slices, ys, xs) for the pixels whose centres lie in [y0, y1) x [x0, x1): ys is a
        column and xs a row of those centres' coordinates; None when no pixel does."""
        i0, i1 = max(math.ceil(y0 - 0.5), 0), min(math.ceil(y1 - 0.5), self.h)
        j0, j1 = max(math.ceil(x0 - 0.5), 0), min(math.ceil(x1 - 0.5), self.w)
        if i0 >= i1 or j0 >= j1:
            return None
        ys = np.arange(i0, i1, dtype=np.float32)[:, None] + 0.5
        xs = np.arange(j0, j1, dtype=np.float32)[None, :] + 0.5
        return (slice(i0, i1), slice(j0, j1)), ys, xs

    def paint(self, sl, mask, cls: int, iid: int, colour) -> None:
        """Give the pixels of `mask` (within region `sl`) class cls, instance iid and `colour`
        (3 values, or an array that broadcasts to the region's h x w x 3)."""
        img = self.image[sl]
        mask = np.broadcast_to(mask, img.shape[:2])
        np.copyto(self.label[sl], cls, where=mask)
        np.copyto(self.inst[sl], iid, where=mask)
        np.copyto(img, np.asarray(colour, np.float32), where=mask[..., None])


def _smooth_noise(rng: np.random.Generator, grid: tuple[int, int], height: int, width: int) -> np.ndarray:
    """Low-frequency noise (about unit variance) at height x width: a grid of normal values
    enlarged bicubically, so it looks the same at any resolution."""
    import cv2

    return cv2.resize(rng.standard_normal(grid).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)


def _jitter(rng: np.random.Generator, colour, sigma: float) -> np.ndarray:
    return np.asarray(colour, np.float32) + rng.normal(0.0, sigma, 3).astype(np.float32)


def make_scene(seed: int, height: int = EMBEDDED_SIZE[0], width: int = EMBEDDED_SIZE[1]):
    """A street scene seen from across the road, a pure function of (seed, height, width):
    (label H x W uint8 class ids < LABEL_NC, inst H x W int32 Cityscapes-style instance ids,
    image H x W x 3 uint8). The layout is drawn in units of the height, so one seed gives the
    same scene at every resolution (only the finest noise differs).

    Touching instances of one class (buildings sharing walls, cars bumper to bumper, people
    shoulder to shoulder) are drawn with a dark seam exactly on the pixels the boundary map
    marks between them (both sides of the wall); each instance has its own colour."""
    if height < 16 or width < 16:
        raise UserError(f"scenes need at least 16 x 16 pixels, not {height} x {width}")
    rng = np.random.default_rng([0x5CE4E, int(seed)])
    c = _Canvas(height, width)
    H = float(height)
    coarse = _smooth_noise(rng, (6, 12), height, width)
    fine = _smooth_noise(rng, (24, 48), height, width)
    y_sw = rng.uniform(0.60, 0.68) * H            # where the buildings meet the sidewalk
    y_rd = y_sw + rng.uniform(0.07, 0.11) * H     # the kerb: the road starts here
    light = rng.uniform(0.85, 1.1)

    _sky(c, rng, coarse, y_sw)
    _buildings(c, rng, coarse, y_sw)
    _ground(c, rng, coarse, fine, y_sw, y_rd)
    for _ in range(int(rng.integers(0, 4))):
        _tree(c, rng, fine, y_sw, y_rd)
    for _ in range(int(rng.integers(0, 3))):
        _pole(c, rng, y_sw, y_rd)
    _people(c, rng, y_sw, y_rd)
    _cars(c, rng, y_rd)
    _seams(c)
    image = c.image * light + rng.standard_normal(c.image.shape, dtype=np.float32) * 2.5  # sensor noise
    return c.label, c.inst, np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _sky(c: _Canvas, rng, coarse, y_sw) -> None:
    top, low = _jitter(rng, (58, 112, 192), 12), _jitter(rng, (178, 202, 226), 8)
    sl, ys, xs = c.region(0, c.h, 0, c.w)
    t = np.clip(ys / y_sw, 0, 1)[..., None]
    clouds = np.clip(coarse - rng.uniform(0.5, 1.2), 0, None)[..., None] * 70.0
    c.paint(sl, True, SKY, SKY, top * (1 - t) + low * t + clouds)


def _buildings(c: _Canvas, rng, coarse, y_sw) -> None:
    """A row of buildings from the left edge to the right, each touching the next."""
    H = float(c.h)
    x, k = -rng.uniform(0.0, 0.4) * H, 0
    while x < c.w:
        bw = rng.uniform(0.35, 0.9) * H
        top = rng.uniform(0.04, 0.42) * H
        tone = _jitter(rng, FACADES[rng.integers(len(FACADES))], 10)
        glass = _jitter(rng, (52, 62, 80), 10)
        ww, wh = rng.uniform(0.035, 0.07) * H, rng.uniform(0.05, 0.09) * H      # window size
        sx, sy = ww + rng.uniform(0.025, 0.06) * H, wh + rng.uniform(0.035, 0.07) * H  # window pitch
        mx, my = rng.uniform(0.02, 0.05) * H, rng.uniform(0.03, 0.05) * H        # facade margins
        ground = rng.uniform(0.07, 0.11) * H                                     # shop floor
        lit = rng.random((32, 32))                                              # each window's brightness
        side = rng.uniform(-0.2, 0.2)                                           # light across the facade
        door = rng.uniform(0.1, 0.8) * bw
        shop = rng.random() < 0.5
        r = c.region(top, y_sw, x, x + bw)
        if r is not None:
            sl, ys, xs = r
            u, v = (xs - x) / bw, (ys - top) / max(y_sw - top, 1.0)
            shade = (1 + side * (u - 0.5)) * (0.9 + 0.1 * v)
            colour = tone * shade[..., None] + 7.0 * coarse[sl][..., None]
            colour = np.where((ys < top + 0.02 * H)[..., None], colour * 0.6, colour)  # cornice
            wx, wy = xs - x - mx, ys - top - my
            col, row = np.floor(wx / sx).astype(int), np.floor(wy / sy).astype(int)
            window = ((wx >= 0) & (wx % sx < ww) & (col * sx + ww <= bw - 2 * mx)
                      & (wy >= 0) & (wy % sy < wh) & (top + my + row * sy + wh <= y_sw - ground))
            b = lit[row.clip(0) % 32, col.clip(0) % 32]
            pane = np.where((b > 0.85)[..., None], np.float32([232, 210, 140]), glass * (0.7 + 0.6 * b)[..., None])
            colour = np.where(window[..., None], pane, colour)
            floor = ys >= y_sw - ground
            colour = np.where(floor[..., None], colour * 0.72, colour)
            if shop:
                glass_front = floor & (ys < y_sw - 0.02 * H) & (np.abs(u - 0.5) < 0.35) & (np.abs(xs - x - door) > 0.05 * H)
                colour = np.where(glass_front[..., None], glass * 1.3, colour)
            door_mask = floor & (ys >= y_sw - 0.085 * H) & (xs >= x + door) & (xs < x + door + 0.05 * H)
            colour = np.where(door_mask[..., None], np.float32([72, 52, 40]), colour)
            c.paint(sl, True, BUILDING, BUILDING * 1000 + k, colour)
        x, k = x + bw, k + 1


def _ground(c: _Canvas, rng, coarse, fine, y_sw, y_rd) -> None:
    H = float(c.h)
    tone = _jitter(rng, (172, 166, 160), 8)
    sl, ys, xs = c.region(y_sw, y_rd, 0, c.w)
    tile = 0.09 * H
    joints = ((xs + rng.uniform(0, tile)) % tile < max(1.0, 0.008 * H)) | (ys >= y_rd - 0.015 * H)
    colour = tone * np.where(joints, 0.78, 1.0)[..., None] + 6.0 * fine[sl][..., None]
    c.paint(sl, True, SIDEWALK, SIDEWALK, colour)

    asphalt = _jitter(rng, (84, 84, 90), 6)
    sl, ys, xs = c.region(y_rd, c.h, 0, c.w)
    y_lane = y_rd + rng.uniform(0.5, 0.7) * (H - y_rd)
    period, phase = 0.5 * H, rng.uniform(0, 0.5 * H)
    dash = (np.abs(ys - y_lane) < max(0.6, 0.009 * H)) & ((xs + phase) % period < 0.28 * H)
    colour = asphalt * (1.05 - 0.15 * (ys - y_rd) / (H - y_rd))[..., None] + (5.0 * fine[sl] + 4.0 * coarse[sl])[..., None]
    colour = np.where(dash[..., None], np.float32([214, 214, 204]), colour)
    c.paint(sl, True, ROAD, ROAD, colour)


def _tree(c: _Canvas, rng, fine, y_sw, y_rd) -> None:
    H = float(c.h)
    cx, foot = rng.uniform(0, c.w), y_sw + rng.uniform(0.1, 0.8) * (y_rd - y_sw)
    rx, ry = rng.uniform(0.12, 0.2) * H, rng.uniform(0.12, 0.2) * H
    cy = foot - rng.uniform(0.3, 0.42) * H
    leaves, bark = _jitter(rng, (58, 108, 42), 10), _jitter(rng, (92, 66, 42), 8)
    tw = 0.028 * H
    r = c.region(cy, foot, cx - tw / 2, cx + tw / 2)
    if r is not None:
        sl, ys, xs = r
        c.paint(sl, True, VEGETATION, VEGETATION, bark * (0.8 + 0.4 * (xs - cx + tw / 2) / tw)[..., None])
    r = c.region(cy - 1.4 * ry, cy + 1.4 * ry, cx - 1.4 * rx, cx + 1.4 * rx)
    if r is not None:
        sl, ys, xs = r
        crown = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 + 0.35 * fine[sl] < 1.0
        colour = leaves * ((0.8 + 0.22 * fine[sl]) * (1.05 - 0.2 * (ys - cy) / ry))[..., None]
        c.paint(sl, crown, VEGETATION, VEGETATION, colour)


def _pole(c: _Canvas, rng, y_sw, y_rd) -> None:
    H = float(c.h)
    cx, foot = rng.uniform(0, c.w), y_sw + rng.uniform(0.2, 0.9) * (y_rd - y_sw)
    top, pw = foot - rng.uniform(0.4, 0.55) * H, max(0.016 * H, 1.0)
    metal = _jitter(rng, (118, 120, 126), 10)
    arm = rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.1) * H
    for y0, y1, x0, x1 in ((top, foot, cx - pw / 2, cx + pw / 2),
                           (top, top + pw, min(cx, cx + arm), max(cx, cx + arm))):
        r = c.region(y0, y1, x0, x1)
        if r is not None:
            sl, ys, xs = r
            c.paint(sl, True, POLE, POLE, metal * (0.75 + 0.5 * np.clip((xs - x0) / (x1 - x0), 0, 1))[..., None]
                    * np.ones_like(ys)[..., None])


def _people(c: _Canvas, rng, y_sw, y_rd) -> None:
    """Up to two groups of one to three people standing on the sidewalk shoulder to shoulder."""
    H, k = float(c.h), 0
    for _ in range(int(rng.integers(0, 3))):
        size = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
        x0, feet = rng.uniform(0, c.w), y_sw + rng.uniform(0.3, 0.95) * (y_rd - y_sw)
        ph = rng.uniform(0.22, 0.28) * H
        pw = 0.3 * ph
        for j in range(size):
            skin = _jitter(rng, SKIN[rng.integers(len(SKIN))], 6)
            shirt = rng.uniform(30, 230, 3).astype(np.float32)
            legs = _jitter(rng, TROUSERS[rng.integers(len(TROUSERS))], 6)
            px, top = x0 + j * pw, feet - ph
            r = c.region(top, feet, px, px + pw)
            if r is not None:
                sl, ys, xs = r
                u, v = (xs - px) / pw, (ys - top) / ph
                rh = 0.09 * ph
                head = (xs - px - pw / 2) ** 2 + (ys - top - rh) ** 2 < rh ** 2
                torso = (v >= 0.17) & (v < 0.58)
                leg = (v >= 0.58) & (((u >= 0.12) & (u < 0.46)) | ((u >= 0.54) & (u < 0.88)))
                colour = np.where(head[..., None], skin, np.where(torso[..., None], shirt * (0.85 + 0.3 * u)[..., None], legs))
                c.paint(sl, head | torso | leg, PERSON, PERSON * 1000 + k, colour)
            k += 1


def _cars(c: _Canvas, rng, y_rd) -> None:
    """A row of cars parked along the kerb, most bumper to bumper, and sometimes one nearer."""
    H, k = float(c.h), 0
    y_cb = y_rd + rng.uniform(0.06, 0.1) * H
    x = rng.uniform(-0.5, 0.6) * H
    for _ in range(int(rng.integers(2, 6))):
        length = rng.uniform(0.34, 0.48) * H
        _car(c, rng, x, y_cb, length, CAR * 1000 + k)
        k += 1
        x += length + (0.0 if rng.random() < 0.65 else rng.uniform(0.05, 0.4) * H)
        if x >= c.w:
            break
    if rng.random() < 0.5:
        length = rng.uniform(0.5, 0.7) * H
        _car(c, rng, rng.uniform(-0.3 * H, c.w - 0.3 * H), H + rng.uniform(-0.04, 0.02) * H, length, CAR * 1000 + k)


def _car(c: _Canvas, rng, x: float, y_cb: float, length: float, iid: int) -> None:
    """A car seen from the side, its wheels touching the ground at y_cb, [x, x + length) long."""
    paint = _jitter(rng, CAR_PAINTS[rng.integers(len(CAR_PAINTS))], 10)
    facing_right = rng.random() < 0.5
    L = length
    r = 0.1 * L                                      # wheel radius
    body_top, body_bottom = y_cb - 0.34 * L, y_cb - 0.5 * r
    cabin_top = y_cb - rng.uniform(0.52, 0.6) * L
    region = c.region(cabin_top, y_cb, x, x + L)
    if region is None:
        return
    sl, ys, xs = region
    u = (xs - x) / L
    if not facing_right:
        u = 1.0 - u
    body = (ys >= body_top) & (ys < body_bottom) & np.ones_like(u, bool)
    t = np.clip((ys - cabin_top) / (body_top - cabin_top), 0, 1)      # 0 at the roof, 1 at the body
    left, right = 0.30 - 0.12 * t, 0.70 + 0.12 * t
    cabin = (ys >= cabin_top) & (ys < body_top) & (u >= left) & (u < right)
    inset = 0.035
    window = (cabin & (ys >= cabin_top + 0.04 * L) & (ys < body_top - 0.01 * L)
              & (u >= left + inset) & (u < right - inset) & (np.abs(u - 0.52) > 0.015))
    wheels = np.zeros_like(body)
    hubs = np.zeros_like(body)
    for cu in (0.2, 0.8):
        d2 = (xs - x - cu * L) ** 2 + (ys - (y_cb - r)) ** 2
        wheels |= d2 < r * r
        hubs |= d2 < (0.45 * r) ** 2
    shade = (1.12 - 0.3 * np.clip((ys - cabin_top) / (body_bottom - cabin_top), 0, 1)) * np.ones_like(u)
    colour = paint * shade[..., None]
    colour = np.where((body & (np.abs(u - 0.52) < 0.006 + 0.5 / L))[..., None], colour * 0.7, colour)  # door gap
    colour = np.where(window[..., None], np.float32([46, 56, 72]) * (1.3 - 0.5 * t)[..., None], colour)
    head = body & (u > 0.965) & (ys < body_top + 0.35 * (body_bottom - body_top))
    tail = body & (u < 0.025) & (ys < body_top + 0.35 * (body_bottom - body_top))
    colour = np.where(head[..., None], np.float32([236, 228, 176]), colour)
    colour = np.where(tail[..., None], np.float32([176, 26, 26]), colour)
    colour = np.where(wheels[..., None], np.float32([24, 24, 26]), colour)
    colour = np.where(hubs[..., None], np.float32([150, 150, 156]), colour)
    c.paint(sl, body | cabin | wheels, CAR, iid, colour)


def _seams(c: _Canvas) -> None:
    """Darken the pixels on both sides of every boundary between two instances of the same
    class: the same pixels boundary_map marks there, so what the boundary map says is seen."""
    seam = np.zeros(c.inst.shape, bool)
    d = (c.inst[:, 1:] != c.inst[:, :-1]) & (c.label[:, 1:] == c.label[:, :-1])
    seam[:, 1:] |= d
    seam[:, :-1] |= d
    d = (c.inst[1:] != c.inst[:-1]) & (c.label[1:] == c.label[:-1])
    seam[1:] |= d
    seam[:-1] |= d
    c.image[seam] *= 0.55


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

    A = i2i.albumentations()
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
    item = {"label": i2i.to_tensor(label) if label.ndim == 3 else torch.from_numpy(label.astype(np.int64)),
            "inst": (torch.zeros(h, w, dtype=torch.long) if inst is None
                     else torch.from_numpy(inst.astype(np.int64)))}
    if image is not None:
        item["image"] = i2i.to_tensor(image)
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
        index, epoch = i2i.split_key(key)
        seed = self.scene_seed(index)
        label, inst, image = make_scene(seed, self.height, self.width)
        out = i2i.augment(self.transform, i2i.item_seed(self.seed, epoch, index), image, label=label, inst=inst)
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
        self.labels = i2i.image_files(label_dir)
        if not image_dir.is_dir() and train:
            raise DataError(f"--data {root}: no {image_dir.name}/ folder (the photos to train on)")
        if label_nc > 0 and not no_instance and not inst_dir.is_dir():
            raise DataError(f"--data {root}: no {inst_dir.name}/ folder; instance maps give the boundary map "
                            f"(Sec. 3.3): add them, or train without with --no-instance")
        self.use_instance = not no_instance and inst_dir.is_dir()
        self.label_dir = label_dir
        self.images = i2i.image_files(image_dir) if image_dir.is_dir() else None
        self.insts = i2i.image_files(inst_dir) if self.use_instance else None
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
        index, epoch = i2i.split_key(key)
        path = self.labels[index]
        if self.label_nc == 0:
            label = i2i.read_rgb(path)
        else:
            label = read_ids(path, "label map")
            if label.max(initial=0) >= self.label_nc or label.min(initial=0) < 0:
                bad = int(label.max()) if label.max() >= self.label_nc else int(label.min())
                raise DataError(f"{path}: label value {bad} is outside 0..{self.label_nc - 1} (--label-nc "
                                f"{self.label_nc}; Cityscapes labelIds need 35)")
            label = label.astype(np.uint8) if self.label_nc <= 256 else label
        image = i2i.read_rgb(self.images[index]) if self.images is not None else None
        targets = {"label": label}
        if self.insts is not None:
            targets["inst"] = read_ids(self.insts[index], "instance map")
        src = self.sizes[index]
        dummy = np.zeros((*src, 3), np.uint8) if image is None else image  # albumentations wants an image
        out = i2i.augment(self._transform(src, path), i2i.item_seed(self.seed, epoch, index), dummy, **targets)
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
