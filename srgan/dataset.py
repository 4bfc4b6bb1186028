"""SRGAN's data: random HR crops with their bicubic LR (common.superres).

`--data photos` (embedded, offline): crops of the bundled photos except the held-out ones
(common.image2image.HELD_OUT_PHOTOS), which evaluate.py measures whole. `--data PATH`: a folder
of HR images (DIV2K, or ImageNet images as the paper's 350 thousand), LR made on the fly.
"""
from __future__ import annotations

from common import superres


def build_dataset(opt):
    """HRCrops of --hr-size with LR at 1 / --scale; an embedded epoch is --epoch-length crops."""
    if opt.data == "photos":
        images, length = superres.training_photos(), opt.epoch_length
    else:
        images, length = superres.folder_images(opt.data), None
    return superres.HRCrops(images, opt.hr_size, opt.scale, length=length, seed=opt.seed)
