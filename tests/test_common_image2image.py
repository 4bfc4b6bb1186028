"""common.image2image, common.schedule, the keyed sampler, Checkpointer states, common.device.adam."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from common import image2image as i2i
from common.checkpoint import Checkpointer
from common.data import make_loader
from common.device import adam
from common.errors import CheckpointError, DataError
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


# ------------------------------------------------------------------ keyed sampler
class Keyed(torch.utils.data.Dataset):
    keyed = True

    def __len__(self):
        return 6

    def __getitem__(self, key):
        index, epoch = i2i.split_key(key)
        return torch.tensor([index, epoch, i2i.item_seed(0, epoch, index) % 1000])


def test_keyed_dataset_gets_index_and_epoch_and_resumes_mid_epoch():
    loader = make_loader(Keyed(), 2, seed=1)
    loader.sampler.set_epoch(1)
    batches = [b for b in loader]
    assert all(int(row[1]) == 1 for b in batches for row in b)
    assert sorted(int(row[0]) for b in batches for row in b) == list(range(6))
    loader.sampler.set_epoch(1, skip=2)
    assert torch.equal(torch.cat([b for b in loader]), torch.cat(batches[1:]))
    assert i2i.split_key(4) == (4, 0) and i2i.split_key((4, 2)) == (4, 2)
    seeds = {i2i.item_seed(0, e, i) for e in range(3) for i in range(20)}
    assert len(seeds) == 60 and i2i.item_seed(0, 1, 2) == i2i.item_seed(0, 1, 2)


# ------------------------------------------------------------------ checkpointer states
class Counter:
    def __init__(self):
        self.n = 0

    def state_dict(self):
        return {"n": torch.tensor(self.n)}

    def load_state_dict(self, state):
        self.n = int(state["n"])


def test_checkpointer_saves_and_restores_extra_states(tmp_path):
    m = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    c = Counter()
    c.n = 7
    Checkpointer(tmp_path, model_name="x", models={"m": m}, optimizers={"m": opt}, options={},
                 states={"pool": c}).save(3, 0)
    fresh = Counter()
    Checkpointer(tmp_path, model_name="x", models={"m": m}, optimizers={"m": opt}, options={},
                 states={"pool": fresh}).resume("auto")
    assert fresh.n == 7
    other = torch.nn.Linear(2, 2)
    with pytest.raises(CheckpointError, match="no state for 'missing'"):
        Checkpointer(tmp_path, model_name="x", models={"m": other}, optimizers={}, options={},
                     states={"missing": Counter()}).resume("auto")
    assert not torch.equal(other.weight, m.weight)  # nothing was loaded before the check failed


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


def test_tensor_round_trip_and_ranges():
    a = np.arange(0, 256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    x = i2i.to_tensor(a)
    assert x.shape == (3, 16, 16) and float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert np.array_equal(i2i.to_uint8(x), a)


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


def test_input_files_and_output_paths(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "sub/b.jpg")
    files = i2i.input_files(tmp_path)
    assert [f.name for f in files] == ["a.png", "b.jpg"]
    assert i2i.input_files(tmp_path / "a.png") == [tmp_path / "a.png"]
    assert i2i.output_path(files[1], tmp_path, tmp_path / "out") == tmp_path / "out/sub/b.png"
    assert i2i.output_path(files[0], None, tmp_path / "x.jpg") == tmp_path / "x.jpg"
    assert i2i.output_path(files[0], None, tmp_path / "dir") == tmp_path / "dir/a.png"
    note = i2i.conversion_note(files, "in")
    assert note.startswith("note: 1 of 2 images in in are not 8-bit RGB (L: 1)")
    assert i2i.conversion_note(files[:1], "in") is None
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="--input"):
        i2i.input_files(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="--input .*no such"):
        i2i.input_files(tmp_path / "missing")


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


def test_adam_is_adam_fused_or_not():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = adam(a.parameters(), lr=1e-2, betas=(0.5, 0.999)), torch.optim.Adam(b.parameters(), 1e-2, (0.5, 0.999))
    for _ in range(3):
        for m, o in ((a, opt_a), (b, opt_b)):
            o.zero_grad()
            m(torch.ones(2, 4)).square().sum().backward()
            o.step()
    assert torch.allclose(a.weight, b.weight, atol=1e-6)
    assert opt_a.param_groups[0]["betas"] == (0.5, 0.999)


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
