"""common.superres: antialiased bicubic LR, keyed HR crops with flips and rotations, held-out photos."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from common import superres as sr
from common.errors import DataError


def test_bicubic_downsample_is_antialiased_and_exact_in_size():
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: a point-sampling resize would keep them black or white
    lr = sr.bicubic_downsample(stripes, 4)
    assert lr.shape == (16, 16, 3)
    assert 100 < lr.mean() < 155 and lr.std() < 20  # filtered to grey, as MATLAB's imresize does
    with pytest.raises(ValueError, match="exactly"):
        sr.bicubic_downsample(np.zeros((30, 32, 3), np.uint8), 4)
    assert sr.modcrop(np.zeros((30, 33, 3)), 4).shape == (28, 32, 3)


def test_bicubic_upsample_keeps_a_constant_image():
    lr = torch.full((1, 3, 5, 6), 0.3)
    up = sr.bicubic_upsample(lr, 4)
    assert up.shape == (1, 3, 20, 24) and torch.allclose(up, torch.full_like(up, 0.3), atol=1e-6)


def test_hr_crops_pair_lr_with_hr_and_are_keyed():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (50, 70, 3), dtype=np.uint8) for _ in range(3)]
    ds = sr.HRCrops(images, hr_size=24, scale=4, length=5, seed=1)
    lr, hr = ds[(2, 0)]
    assert lr.shape == (3, 6, 6) and hr.shape == (3, 24, 24)
    assert float(lr.min()) >= 0 and float(lr.max()) <= 1 and float(hr.min()) >= -1 and float(hr.max()) <= 1
    hr_uint8 = ((hr + 1) * 127.5).round().permute(1, 2, 0).byte().numpy()
    assert torch.allclose(lr, sr.to_unit_tensor(sr.bicubic_downsample(hr_uint8, 4)), atol=1 / 255 + 1e-6)
    assert torch.equal(ds[(2, 0)][1], hr) and not torch.equal(ds[(2, 1)][1], hr)
    with pytest.raises(DataError, match="multiple of the scale"):
        sr.HRCrops(images, hr_size=30, scale=4)
    with pytest.raises(DataError, match="smaller than the HR crop"):
        sr.HRCrops(images, hr_size=64, scale=4)[(0, 0)]


def test_flips_and_rotations_keep_the_content():
    image = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
    ds = sr.HRCrops([image], hr_size=16, scale=4, length=1)
    seen = set()
    for epoch in range(12):
        _, hr = ds[(0, epoch)]
        back = ((hr + 1) * 127.5).round().permute(1, 2, 0).byte().numpy()
        assert sorted(back.ravel().tolist()) == sorted(image.ravel().tolist())  # a permutation of the pixels
        seen.add(back.tobytes())
    assert len(seen) > 2  # several of the 8 orientations over 12 epochs


def test_folder_images_and_held_out_photos(tmp_path):
    Image.new("RGB", (40, 40)).save(tmp_path / "a.png")
    assert sr.folder_images(tmp_path) == [tmp_path / "a.png"]
    with pytest.raises(DataError):
        sr.folder_images(tmp_path / "missing")
    pairs = sr.held_out_images(4, max_side=64)
    assert len(pairs) == 2
    for lr, hr in pairs:
        assert hr.shape[1] == 4 * lr.shape[1] and hr.shape[2] == 4 * lr.shape[2] and hr.shape[1] <= 64
    assert len(sr.training_photos()) == 8  # the ten bundled photos minus the two held out


def write_pair_folders(tmp_path, sizes, scale=4, suffix="x4"):
    """HR folder and LR folder (DIV2K naming) made from random HR images by bicubic_downsample."""
    rng = np.random.default_rng(3)
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
    hr_dir.mkdir(), lr_dir.mkdir()
    for i, (h, w) in enumerate(sizes):
        hr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(hr).save(hr_dir / f"{i:04d}.png")
        Image.fromarray(sr.bicubic_downsample(sr.modcrop(hr, scale), scale)).save(lr_dir / f"{i:04d}{suffix}.png")
    return hr_dir, lr_dir


def test_paired_crops_keep_lr_and_hr_aligned_through_flips_and_rotations(tmp_path):
    hr_dir, lr_dir = write_pair_folders(tmp_path, [(50, 70), (64, 66)])  # 50x70 and 64x66: modcrop cuts HR
    ds = sr.PairedCrops(sr.paired_files(hr_dir, lr_dir, 4), hr_size=24, scale=4, length=4, seed=2, hr_unit=True)
    orientations = set()
    for epoch in range(10):
        lr, hr = ds[(epoch % 2, epoch)]
        assert lr.shape == (3, 6, 6) and hr.shape == (3, 24, 24) and float(hr.min()) >= 0
        hr_uint8 = (hr * 255).round().permute(1, 2, 0).byte().numpy()
        # the given LR crop is the HR crop's own bicubic LR (up to the bicubic's edge pixels): same place, same
        # orientation; compare the interior, where PIL's border handling cannot differ
        made = sr.to_unit_tensor(sr.bicubic_downsample(hr_uint8, 4))
        assert (lr[:, 1:-1, 1:-1] - made[:, 1:-1, 1:-1]).abs().max() < 0.03, f"epoch {epoch}: LR and HR disagree"
        orientations.add(hr_uint8.tobytes())
    assert len(orientations) > 2
    assert torch.equal(ds[(1, 3)][0], ds[(1, 3)][0]) and not torch.equal(ds[(1, 3)][1], ds[(1, 4)][1])


def test_paired_files_refuse_missing_and_mismatched_partners(tmp_path):
    hr_dir, lr_dir = write_pair_folders(tmp_path, [(32, 32), (40, 40)], suffix="")  # same-stem naming also pairs
    assert [lr.name for lr, _ in sr.paired_files(hr_dir, lr_dir, 4)] == ["0000.png", "0001.png"]
    Image.new("RGB", (9, 10)).save(lr_dir / "0001.png")  # 9x10 is not 1/4 of 40x40
    with pytest.raises(DataError, match="is not 1/4 of"):
        sr.PairedCrops(sr.paired_files(hr_dir, lr_dir, 4), hr_size=16, scale=4)[(1, 0)]
    Image.new("RGB", (32, 32)).save(hr_dir / "0002.png")
    with pytest.raises(DataError, match="no LR image for 0002.png"):
        sr.paired_files(hr_dir, lr_dir, 4)


# moved from test_common_image2image.py: the SR family's tiling and step schedule
from common import image2image as i2i  # noqa: E402


def test_tiled_translation_equals_the_untiled_one():
    """A small x2 super-resolution net (three 3x3 convolutions: it sees 3 pixels around each
    input pixel, then a sub-pixel step): with an overlap of 4 the tiles leave no seam anywhere."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 12, 3, padding=1), torch.nn.PixelShuffle(2))
    image = torch.rand(3, 37, 53)
    whole = i2i.translate(net, image, 1, "cpu", scale=2)
    tiled = i2i.translate_tiled(net, image, 1, "cpu", tile=16, overlap=4, scale=2)
    assert tiled.shape == whole.shape == (3, 74, 106)
    assert torch.allclose(tiled, whole, atol=1e-5)
    too_little = i2i.translate_tiled(net, image, 1, "cpu", tile=16, overlap=1, scale=2)
    assert not torch.allclose(too_little, whole, atol=1e-3)  # the check can fail: a 1-pixel overlap shows seams
    with pytest.raises(Exception, match="larger than twice"):
        i2i.translate_tiled(net, image, 1, "cpu", tile=8, overlap=4)


def test_multistep_schedule_by_hand():
    from common.schedule import MultiStep

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    s = MultiStep(opt, 1e-4, milestones=[100, 50], gamma=0.1)
    assert [s.rate(k) for k in (1, 50, 51, 100, 101)] == pytest.approx([1e-4, 1e-4, 1e-5, 1e-5, 1e-6])
    s.set_step(60)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5)
    other = torch.optim.SGD([p], lr=1.0)
    restored = MultiStep(other, 1e-4, milestones=[50, 100])
    restored.load_state_dict(s.state_dict())
    assert restored.step == 60 and other.param_groups[0]["lr"] == pytest.approx(1e-5)
