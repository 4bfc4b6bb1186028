"""common.data: embedded datasets, image folders and files, torchvision wrappers, resumable loader,
keyed augmentation."""
from __future__ import annotations

import socket
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

import common.data as data
from common.data import (Digits, ImageFolderFlat, build_dataset, iterate_steps, list_images,
                         make_loader)
from common.errors import DataError


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# -------------------------------------------------------------------- digits
def test_digits_28():
    ds = Digits(28)
    assert len(ds) == 1797 and ds.channels == 1
    x, y = ds[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert ds.images.min() >= -1.0 and ds.images.max() <= 1.0
    assert ds.images.min() < -0.9 and ds.images.max() > 0.9
    assert set(ds.labels.tolist()) == set(range(10))
    assert int(y) == int(ds.labels[0])


def test_digits_64():
    x, _ = Digits(64)[5]
    assert x.shape == (1, 64, 64)


def test_build_dataset_digits():
    ds = build_dataset("digits", 16)
    assert isinstance(ds, Digits) and ds.channels == 1 and ds[0][0].shape == (1, 16, 16)


# -------------------------------------------------------------------- photos
WORKING_PHOTOS = data.SKIMAGE_PHOTOS


def test_load_bundled_photos(no_network):
    photos = data.load_bundled_photos()
    assert len(photos) >= 8
    for p in photos:
        assert p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3


@pytest.fixture(scope="module")
def bundled_photos():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "SKIMAGE_PHOTOS", WORKING_PHOTOS)
        return data.load_bundled_photos()


@pytest.fixture
def photo_crops(monkeypatch, bundled_photos):
    monkeypatch.setattr(data, "load_bundled_photos", lambda: bundled_photos)
    return data.PhotoCrops


def test_bundled_photos_are_rgb_uint8(bundled_photos):
    assert len(bundled_photos) >= 8
    for p in bundled_photos:
        assert p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 and min(p.shape[:2]) >= 64


def test_photo_crops(photo_crops):
    ds = photo_crops(32, length=16, seed=0)
    assert len(ds) == 16 and ds.channels == 3
    items = [ds[i][0] for i in range(len(ds))]
    for x in items:
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
        assert x.min() >= -1.0 and x.max() <= 1.0
    assert not all(torch.equal(items[0], x) for x in items[1:])
    # a pure function of (seed, i)
    assert torch.equal(ds[3][0], items[3])
    same = photo_crops(32, length=16, seed=0)
    assert all(torch.equal(same[i][0], items[i]) for i in (0, 7, 15))
    other = photo_crops(32, length=16, seed=1)
    assert not any(torch.equal(other[i][0], items[i]) for i in (0, 7, 15))


# ---------------------------------------------------------------- folders
def write_png(path, size=(20, 12), color=(255, 0, 128), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def test_image_folder_loads(tmp_path):
    write_png(tmp_path / "a.png", color=(255, 0, 102))
    write_png(tmp_path / "sub" / "b.png", size=(9, 30), color=(0, 255, 255))
    write_png(tmp_path / "c.jpg", color=(100, 100, 100))
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01junk")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "notes.txt").write_text("hidden folder")

    files = list_images(tmp_path)
    assert [p.name for p in files] == ["a.png", "c.jpg", "b.png"]  # sorted paths, hidden skipped

    ds = ImageFolderFlat(tmp_path, 16)
    assert len(ds) == 3 and ds.channels == 3
    x, label = ds[0]
    assert x.shape == (3, 16, 16) and label == 0
    assert x.min() >= -1.0 and x.max() <= 1.0
    # a flat colour survives resize/crop: (255, 0, 102) -> (1, -1, 102/255*2-1)
    expected = torch.tensor([1.0, -1.0, 102 / 255 * 2 - 1]).view(3, 1, 1).expand(3, 16, 16)
    torch.testing.assert_close(x, expected, atol=1e-5, rtol=0)

    grey = ImageFolderFlat(tmp_path, 8, channels=1)
    g, _ = grey[1]  # c.jpg, grey 100
    assert g.shape == (1, 8, 8)
    torch.testing.assert_close(g, torch.full((1, 8, 8), 100 / 255 * 2 - 1), atol=2 / 255 * 2, rtol=0)


def test_build_dataset_folder(tmp_path):
    write_png(tmp_path / "a.png")
    ds = build_dataset(str(tmp_path), 8, channels=1)
    assert isinstance(ds, ImageFolderFlat) and ds.channels == 1 and ds[0][0].shape == (1, 8, 8)


def test_missing_folder(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="nope") as info:
        list_images(missing)
    assert "--data digits" in str(info.value)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"junk")  # hidden files do not count
    with pytest.raises(DataError, match="empty") as info:
        ImageFolderFlat(tmp_path / "empty", 8)
    assert str(tmp_path / "empty") in str(info.value)


def test_file_instead_of_folder(tmp_path):
    f = write_png(tmp_path / "a.png")
    with pytest.raises(DataError, match="not a folder"):
        list_images(f)


def test_non_image_file(tmp_path):
    write_png(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="notes.txt"):
        list_images(tmp_path)


def test_corrupt_image(tmp_path):
    write_png(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match="bad.png"):
        ImageFolderFlat(tmp_path, 8)


def test_bad_channel_count(tmp_path):
    write_png(tmp_path / "a.png")
    with pytest.raises(DataError, match="channels"):
        ImageFolderFlat(tmp_path, 8, channels=2)


# ------------------------------------------------------------ torchvision
def write_idx_images(path, images: np.ndarray):
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes())


def write_idx_labels(path, labels: np.ndarray):
    path.write_bytes(struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes())


def test_mnist_from_local_raw_files(tmp_path, monkeypatch, no_network):
    import torchvision.datasets.mnist as tv_mnist

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_download)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    images[0] = 255
    images[1] = 0
    labels = np.arange(20) % 10
    write_idx_images(raw / "train-images-idx3-ubyte", images)
    write_idx_labels(raw / "train-labels-idx1-ubyte", labels)
    write_idx_images(raw / "t10k-images-idx3-ubyte", images[:2])
    write_idx_labels(raw / "t10k-labels-idx1-ubyte", labels[:2])

    ds = build_dataset("mnist", 32, data_root=tmp_path)
    assert len(ds) == 20 and ds.channels == 1
    x0, y0 = ds[0]
    assert x0.shape == (1, 32, 32) and y0 == 0
    torch.testing.assert_close(x0, torch.ones(1, 32, 32))
    torch.testing.assert_close(ds[1][0], -torch.ones(1, 32, 32))
    x7, y7 = ds[7]
    assert y7 == 7 and x7.min() >= -1.0 and x7.max() <= 1.0


def test_cifar10_offline_is_a_data_error(tmp_path, monkeypatch, no_network):
    import torchvision.datasets

    def offline(self):
        raise RuntimeError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", offline)
    with pytest.raises(DataError) as info:
        build_dataset("cifar10", 32, data_root=tmp_path)
    msg = str(info.value)
    assert "offline" in msg and "--data digits" in msg and "cifar10" in msg
    assert "\n" not in msg


# ------------------------------------------------------------------ loader
def index_dataset(n):
    return TensorDataset(torch.arange(n))


def run_steps(loader, start, total):
    return [(step, epoch, batch[0].tolist()) for step, epoch, batch in iterate_steps(loader, start, total)]


def test_steps_per_epoch_and_epochs():
    loader = make_loader(index_dataset(10), 3, seed=0)
    assert len(loader) == 3
    out = run_steps(loader, 0, 7)
    assert [s for s, _, _ in out] == list(range(1, 8))
    assert [e for _, e, _ in out] == [0, 0, 0, 1, 1, 1, 2]
    assert all(len(b) == 3 for _, _, b in out)
    for epoch in (0, 1):
        seen = sum((b for _, e, b in out if e == epoch), [])
        assert len(set(seen)) == 9 and set(seen) <= set(range(10))
    epoch0 = sum((b for _, e, b in out if e == 0), [])
    epoch1 = sum((b for _, e, b in out if e == 1), [])
    assert epoch0 != epoch1  # reshuffled each epoch


@pytest.mark.parametrize("split", [1, 3, 4, 5])
def test_resume_mid_epoch_sees_the_same_batches(split):
    full = run_steps(make_loader(index_dataset(10), 3, seed=0), 0, 7)
    first = run_steps(make_loader(index_dataset(10), 3, seed=0), 0, split)
    rest = run_steps(make_loader(index_dataset(10), 3, seed=0), split, 7)
    assert first + rest == full


def test_order_depends_on_seed_only_and_spares_global_rng():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = run_steps(make_loader(index_dataset(10), 3, seed=0), 0, 6)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(999)
    b = run_steps(make_loader(index_dataset(10), 3, seed=0), 0, 6)
    c = run_steps(make_loader(index_dataset(10), 3, seed=1), 0, 6)
    assert a == b
    assert a != c


def test_two_ranks_see_disjoint_shards():
    ds = index_dataset(10)
    loaders = [make_loader(ds, 2, seed=0, rank=r, world_size=2) for r in (0, 1)]
    assert [len(lo) for lo in loaders] == [2, 2]
    for epoch in (0, 1):
        shards = [sum((b for _, e, b in run_steps(lo, 0, 4) if e == epoch), []) for lo in loaders]
        assert len(shards[0]) == len(shards[1]) == 4
        assert not set(shards[0]) & set(shards[1])


def test_dataset_smaller_than_a_batch():
    with pytest.raises(DataError, match="--batch-size"):
        make_loader(index_dataset(2), 3)
    with pytest.raises(DataError):
        make_loader(index_dataset(5), 3, world_size=2, rank=0)


# ------------------------------------------------------------ image modes
def png_rgb48(path, array: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (PIL cannot write one), written by hand: signature,
    IHDR (bit depth 16, colour type 2), one IDAT of filter-0 rows, IEND."""
    import zlib

    h, w, _ = array.shape
    rows = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def loaded_mean(path, channels=1) -> float:
    """Mean of the image as the dataset loads it, on the 0..255 scale."""
    x, _ = ImageFolderFlat(path.parent, 8, channels=channels)[0]
    return float(((x + 1) / 2 * 255).mean())


GREY16 = np.random.default_rng(0).integers(20_000, 44_000, (12, 12)).astype(np.uint16)  # mean ~32,000


def test_16bit_grey_png_is_scaled_not_clipped(tmp_path):
    """PIL's convert('L') clips a 16-bit image at 255: mean 32,000 came out as 255 (white)."""
    path = tmp_path / "a" / "grey16.png"
    path.parent.mkdir()
    Image.fromarray(GREY16).save(path)
    assert Image.open(path).mode in ("I;16", "I")  # Pillow < 10 opens it as 32-bit "I"
    assert Image.open(path).convert("L").getextrema() == (255, 255)  # what PIL alone does
    assert loaded_mean(path) == pytest.approx(GREY16.mean() / 257, abs=1.0)  # ~125, not 255
    assert loaded_mean(path, channels=3) == pytest.approx(GREY16.mean() / 257, abs=1.0)


def test_16bit_rgb_png(tmp_path):
    path = tmp_path / "a" / "rgb48.png"
    path.parent.mkdir()
    rgb = np.stack([GREY16, GREY16 // 2, GREY16 // 4], axis=-1)
    png_rgb48(path, rgb)
    x, _ = ImageFolderFlat(path.parent, 8, channels=3)[0]
    means = ((x + 1) / 2 * 255).mean(dim=(1, 2))
    torch.testing.assert_close(means, torch.tensor(rgb.reshape(-1, 3).mean(0) / 257, dtype=torch.float32),
                               atol=1.0, rtol=0)


@pytest.mark.parametrize("values, expected", [
    (GREY16.astype(np.int32), GREY16.mean() / 257),  # 16-bit data handed over as 32-bit integers
    (GREY16.astype(np.int32) // 200, (GREY16 // 200).mean()),  # 0..255 in 32 bits: as it is
    (GREY16.astype(np.int32) * 1000, None),  # beyond 16 bits: stretched from its own min..max
    (GREY16.astype(np.float32) / 65535, GREY16.mean() / 65535 * 255),  # float in 0..1
    (GREY16.astype(np.float32) - 30_000, None),  # float in another range: stretched
])
def test_32bit_integer_and_float_tiffs(tmp_path, values, expected):
    path = tmp_path / "a" / "deep.tif"
    path.parent.mkdir()
    Image.fromarray(values).save(path)
    assert Image.open(path).mode in ("I", "F")
    if expected is None:  # min..max -> 0..255
        v = values.astype(np.float64)
        expected = ((v - v.min()) / (v.max() - v.min()) * 255).mean()
    assert loaded_mean(path) == pytest.approx(expected, abs=1.0)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "1", "CMYK"])
def test_8bit_modes_convert_as_pil_does(tmp_path, mode):
    """Grey, palette, bilevel, CMYK and alpha images keep PIL's own conversion; alpha is dropped."""
    path = tmp_path / "a" / ("x.jpg" if mode == "CMYK" else "x.png")
    path.parent.mkdir()
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 12, 3)).astype(np.uint8))
    image = rgb.convert(mode)
    if mode == "RGBA":
        image.putalpha(0)  # fully transparent: the colours stay, the alpha goes
    image.save(path)
    for channels, target in ((3, "RGB"), (1, "L")):
        expected = np.asarray(Image.open(path).convert(target), dtype=np.float64).mean()
        assert loaded_mean(path, channels) == pytest.approx(expected, abs=1.0), (mode, channels)


# ------------------------------------------------ image files, tensors, keyed augmentation
class Keyed(torch.utils.data.Dataset):
    keyed = True

    def __len__(self):
        return 6

    def __getitem__(self, key):
        index, epoch = data.split_key(key)
        return torch.tensor([index, epoch, data.item_seed(0, epoch, index) % 1000])


def test_keyed_dataset_gets_index_and_epoch_and_resumes_mid_epoch():
    loader = make_loader(Keyed(), 2, seed=1)
    loader.sampler.set_epoch(1)
    batches = [b for b in loader]
    assert all(int(row[1]) == 1 for b in batches for row in b)
    assert sorted(int(row[0]) for b in batches for row in b) == list(range(6))
    loader.sampler.set_epoch(1, skip=2)
    assert torch.equal(torch.cat([b for b in loader]), torch.cat(batches[1:]))
    assert data.split_key(4) == (4, 0) and data.split_key((4, 2)) == (4, 2)
    seeds = {data.item_seed(0, e, i) for e in range(3) for i in range(20)}
    assert len(seeds) == 60 and data.item_seed(0, 1, 2) == data.item_seed(0, 1, 2)


def test_tensor_round_trip_and_ranges():
    a = np.arange(0, 256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    x = data.to_tensor(a)
    assert x.shape == (3, 16, 16) and float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert np.array_equal(data.to_uint8(x), a)


def test_input_files_and_output_paths(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "sub/b.jpg")
    files = data.input_files(tmp_path)
    assert [f.name for f in files] == ["a.png", "b.jpg"]
    assert data.input_files(tmp_path / "a.png") == [tmp_path / "a.png"]
    assert data.output_path(files[1], tmp_path, tmp_path / "out") == tmp_path / "out/sub/b.png"
    assert data.output_path(files[0], None, tmp_path / "x.jpg") == tmp_path / "x.jpg"
    assert data.output_path(files[0], None, tmp_path / "dir") == tmp_path / "dir/a.png"
    note = data.conversion_note(files, "in")
    assert note.startswith("note: 1 of 2 images in in are not 8-bit RGB (L: 1)")
    assert data.conversion_note(files[:1], "in") is None
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="--input"):
        data.input_files(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="--input .*no such"):
        data.input_files(tmp_path / "missing")
