"""The embedded data of pix2pixHD (Wang et al. 2018, arXiv:1711.11585) in this collection:
procedural street scenes with a semantic label map, a Cityscapes-style instance map and a
photo, drawn offline by `make_scene(seed, height, width)`.

A scene is seen from across the road: sky, a row of buildings sharing walls, a sidewalk, a
road, trees, poles, people standing side by side, cars parked bumper to bumper. Every
building, car and person is an instance with its own colour, so the label map alone cannot
tell two touching cars apart (the instance boundary map can, Sec. 3.3) and one label map has
many valid looks (what the instance-level feature encoder learns, Sec. 3.4).

Instance ids follow Cityscapes: a "thing" (building, car, person here) has id
class * 1000 + k, "stuff" has id = class, so `inst // 1000` is the class of a thing and
`inst < 1000` marks stuff (the official encoder's `label = i if i < 1000 else i // 1000`).

dataset.py turns scenes into training and held-out datasets (which seeds, augmentation);
this module only draws them.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from common.errors import UserError

# ================================================================ classes
CLASS_NAMES = ("sky", "road", "sidewalk", "building", "vegetation", "pole", "car", "person")
LABEL_NC = len(CLASS_NAMES)
SKY, ROAD, SIDEWALK, BUILDING, VEGETATION, POLE, CAR, PERSON = range(LABEL_NC)
THING_CLASSES = (BUILDING, CAR, PERSON)  # have instances (id = class * 1000 + k); the rest is stuff (id = class)
# Cityscapes' colours for the same classes, for showing label maps.
CLASS_COLORS = ((70, 130, 180), (128, 64, 128), (244, 35, 232), (70, 70, 70), (107, 142, 35),
                (153, 153, 153), (0, 0, 142), (220, 20, 60))
EMBEDDED_SIZE = (128, 256)  # H x W of --data scenes at its default --load-size 256 (Cityscapes' 1:2)


def instance_class(inst: torch.Tensor) -> torch.Tensor:
    """The class of each pixel from its instance id (Cityscapes: id < 1000 is stuff and
    the id is the class; otherwise the class is id // 1000)."""
    return torch.where(inst < 1000, inst, inst // 1000)


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
    class: the same pixels model.boundary_map marks there, so what the boundary map says is seen."""
    seam = np.zeros(c.inst.shape, bool)
    d = (c.inst[:, 1:] != c.inst[:, :-1]) & (c.label[:, 1:] == c.label[:, :-1])
    seam[:, 1:] |= d
    seam[:, :-1] |= d
    d = (c.inst[1:] != c.inst[:-1]) & (c.label[1:] == c.label[:-1])
    seam[1:] |= d
    seam[:-1] |= d
    c.image[seam] *= 0.55
