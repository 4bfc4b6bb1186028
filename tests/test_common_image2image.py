"""common.image2image and common.schedule: the pix2pix / CycleGAN family code (moving into those folders)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from common import image2image as i2i
from common.schedule import LinearDecay


# ------------------------------------------------------------------ schedule
def test_linear_decay_is_constant_then_linear_to_zero():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    s = LinearDecay(opt, 2e-4, epochs=200, decay_epochs=100)
    rates = [s.set_epoch(e) for e in range(200)]
    assert rates[:100] == [2e-4] * 100  # constant for the first 100 epochs
    assert rates[100] == pytest.approx(2e-4 * (1 - 1 / 101))
    assert rates[199] == pytest.approx(2e-4 / 101)  # the official rule's last step
    assert all(a > b for a, b in zip(rates[100:], rates[101:]))
    assert opt.param_groups[0]["lr"] == rates[199]
    assert s.set_epoch(500) == 0.0  # past the end: zero, never negative


def test_linear_decay_state_restores_the_epoch_not_the_options():
    p = torch.nn.Parameter(torch.zeros(1))
    a = LinearDecay(torch.optim.SGD([p], lr=1.0), 1.0, epochs=4, decay_epochs=2)
    a.set_epoch(3)
    opt = torch.optim.SGD([p], lr=1.0)
    b = LinearDecay(opt, 1.0, epochs=8, decay_epochs=2)  # a longer run resumed from a's checkpoint
    b.load_state_dict(a.state_dict())
    assert b.epoch == 3 and opt.param_groups[0]["lr"] == 1.0
    with pytest.raises(ValueError):
        LinearDecay(opt, 1.0, epochs=2, decay_epochs=3)


# ------------------------------------------------------------------ augmentation
def test_jitter_moves_every_target_alike_and_is_seeded():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    t = i2i.jitter(40, 32, targets=("target", "other"))
    outs = [i2i.augment(t, s, a, target=a.copy(), other=a.copy()) for s in range(6)]
    for out in outs:
        assert out["image"].shape == (32, 32, 3)
        assert np.array_equal(out["image"], out["target"]) and np.array_equal(out["image"], out["other"])
    assert len({o["image"].tobytes() for o in outs}) > 1  # the seeds give different crops
    again = i2i.augment(t, 3, a, target=a, other=a)
    assert np.array_equal(again["image"], outs[3]["image"])
    with pytest.raises(Exception, match="larger"):
        i2i.jitter(30, 32)


# ------------------------------------------------------------------ inference
def test_pad_to_multiple_mirrors_and_crops_back():
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(1, 2, 5, 7)
    y, (h, w) = i2i.pad_to_multiple(x, 4)
    assert y.shape == (1, 2, 8, 8) and (h, w) == (5, 7)
    assert torch.equal(y[..., :5, :7], x)
    assert torch.equal(y[..., 5, :7], x[..., 3, :])  # reflected, not zero
    tiny, _ = i2i.pad_to_multiple(torch.ones(1, 3, 2, 3), 256)  # too small to mirror: replicated
    assert tiny.shape == (1, 3, 256, 256) and float(tiny.min()) == 1.0
    same, _ = i2i.pad_to_multiple(x[..., :4, :4], 4)
    assert same.shape == (1, 2, 4, 4)


def test_translate_crops_back_to_the_input_size():
    class Shift(torch.nn.Module):
        def forward(self, x):
            assert x.shape[-1] % 8 == 0 and x.shape[-2] % 8 == 0
            return x + 1

    image = torch.rand(3, 11, 13)
    assert torch.allclose(i2i.translate(Shift(), image, 8, "cpu"), image + 1)


def test_rows_interleave_input_output_target():
    a, b, c = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    rows = i2i.input_output_target_rows(a, b, c)
    assert rows.shape == (6, 3, 4, 4)
    assert [float(r.mean()) for r in rows] == [0, 1, 0.5, 0, 1, 0.5]


def test_paired_report_by_hand():
    target = torch.zeros(2, 3, 8, 8)
    pred = torch.full((2, 3, 8, 8), 0.2)  # 0.1 apart on [0, 1]: PSNR = 20 dB
    report = i2i.paired_report(pred, target)
    assert report["l1"] == pytest.approx(0.2) and report["psnr"] == pytest.approx(20.0, abs=1e-4)
    textured = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert i2i.paired_report(textured, textured)["ssim"] == pytest.approx(1.0)


