"""ESRGAN's data: random HR crops with their bicubic LR (common.superres), both in [0, 1] as the
official code keeps them.

`--data photos` (embedded, offline): crops of the bundled photos except the held-out ones
(common.image2image.HELD_OUT_PHOTOS), which evaluate.py measures whole. `--data PATH`: a folder
of HR images (DIV2K_train_HR), LR made on the fly. `--data PATH --lr-dir LR_PATH`: given LR/HR
pairs matched by name (DIV2K's 0001.png / 0001x4.png).
"""
from __future__ import annotations

from common import superres


def build_dataset(opt):
    """LR and HR in [0, 1], crops of --hr-size and 1 / --scale of it."""
    return superres.sr_dataset(opt, hr_unit=True)
