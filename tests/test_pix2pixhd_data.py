"""pix2pixHD's data: the procedural scenes (scenes.py), the embedded datasets, the official
folder layout and its augmentation (dataset.py), and how label maps are shown (utils.py).
The generator-input maths (one-hot label map, instance boundary map) is tested with the model."""
from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.errors import DataError, UserError
from pix2pixhd import dataset as D
from pix2pixhd import scenes as S
from pix2pixhd.model import boundary_map
from pix2pixhd.utils import colorize, palette


def opt(**kw) -> Namespace:
    base = dict(data="scenes", label_nc=None, no_instance=False, load_size=None, fine_size=None,
                resize_or_crop="scale_width", no_flip=False, seed=0, epoch_length=16)
    base.update(kw)
    return Namespace(**base)


def touching_pairs(inst: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Boolean H x W: pixels 4-adjacent to a pixel of the same class but another instance."""
    out = np.zeros(inst.shape, bool)
    d = (inst[:, 1:] != inst[:, :-1]) & (label[:, 1:] == label[:, :-1])
    out[:, 1:] |= d
    out[:, :-1] |= d
    d = (inst[1:] != inst[:-1]) & (label[1:] == label[:-1])
    out[1:] |= d
    out[:-1] |= d
    return out


# ---------------------------------------------------------------- scenes
def test_make_scene_is_a_pure_function_of_the_seed_with_consistent_planes():
    label, inst, image = S.make_scene(7, 64, 128)
    again = S.make_scene(7, 64, 128)
    assert all(np.array_equal(a, b) for a, b in zip((label, inst, image), again))
    other = S.make_scene(8, 64, 128)
    assert not np.array_equal(image, other[2]) and not np.array_equal(label, other[0])
    assert label.shape == inst.shape == (64, 128) and image.shape == (64, 128, 3)
    assert label.dtype == np.uint8 and inst.dtype == np.int32 and image.dtype == np.uint8
    assert label.max() < S.LABEL_NC == len(S.CLASS_NAMES)
    # Cityscapes convention: things class * 1000 + k, stuff = class, so the id gives the class back
    assert np.array_equal(S.instance_class(torch.from_numpy(inst)).numpy(), label)
    things = np.isin(label, S.THING_CLASSES)
    assert (inst[things] >= 1000).all() and np.array_equal(inst[~things], label[~things])


def test_scene_layout_does_not_depend_on_the_resolution():
    small = S.make_scene(3, 64, 128)[0]
    large = S.make_scene(3, 128, 256)[0]
    assert (large[::2, ::2] == small).mean() > 0.95


def test_train_and_held_out_scenes_come_from_disjoint_seeds():
    train, held = D.EmbeddedScenes(50, 32, 64), D.EmbeddedScenes(50, 32, 64, train=False)
    train_seeds = {train.scene_seed(i) for i in range(len(train))}
    held_seeds = {held.scene_seed(i) for i in range(len(held))}
    assert train_seeds == set(range(50)) and not train_seeds & held_seeds
    assert min(held_seeds) == D.HELD_OUT_SEED
    assert held[0]["name"] != train[0]["name"]
    assert not torch.equal(held[0]["image"], train[0]["image"])
    with pytest.raises(UserError):
        D.EmbeddedScenes(D.HELD_OUT_SEED + 1, 32, 64)


@pytest.mark.parametrize("seed", range(8))
def test_touching_instances_of_one_class_are_separated_only_by_the_boundary_map(seed):
    label, inst, image = S.make_scene(seed, 64, 128)
    touch = touching_pairs(inst, label)
    assert touch.any(), "no two instances of one class touch"
    edges = boundary_map(torch.from_numpy(inst)[None].long())[0, 0].numpy().astype(bool)
    label_edges = boundary_map(torch.from_numpy(label)[None].long())[0, 0].numpy().astype(bool)
    assert edges[touch].all()            # the instance boundary map marks the shared wall ...
    assert (edges | ~label_edges).all()  # (every class boundary is an instance boundary)
    extra = edges & ~label_edges         # ... and where the label map alone shows no boundary,
    assert extra.any() and not (extra & ~touch).any()  # it is between touching instances of one class
    # and the image shows it: the seam is darker than the rest of those instances
    brightness = image.astype(np.float32).mean(axis=2)
    ids = np.unique(inst[touch])
    inside = np.isin(inst, ids) & ~touch
    assert brightness[touch].mean() < 0.8 * brightness[inside].mean()


def test_instances_of_one_class_have_their_own_colours():
    spreads = []
    for seed in range(10):
        label, inst, image = S.make_scene(seed, 64, 128)
        for cls in (S.BUILDING, S.CAR):
            ids = [i for i in np.unique(inst[label == cls]) if (inst == i).sum() > 100]
            if len(ids) >= 2:
                means = np.stack([image[inst == i].astype(np.float32).mean(0) for i in ids])
                spreads.append(max(np.abs(a - b).sum() for a in means for b in means))
    assert len(spreads) >= 10
    assert np.mean(np.array(spreads) > 30) > 0.9


def test_scene_images_are_not_a_colour_lookup_of_the_label_map():
    label, inst, image = S.make_scene(1, 64, 128)
    for cls in (S.ROAD, S.BUILDING, S.SKY):
        pixels = image[label == cls].astype(np.float32)
        assert pixels.std(0).mean() > 5, S.CLASS_NAMES[cls]


# ---------------------------------------------------------------- showing label maps
def test_colorize_shows_the_scenes_colours_and_any_label_count():
    label = torch.randint(0, S.LABEL_NC, (2, 8, 16))
    shown = colorize(label)
    assert shown.shape == (2, 3, 8, 16) and shown.min() >= -1 and shown.max() <= 1
    assert torch.equal(((shown[0, :, 0, 0] + 1) * 127.5).round(), torch.tensor(S.CLASS_COLORS[label[0, 0, 0]]).float())
    assert len({tuple(c) for c in palette(35)}) == 35


# ---------------------------------------------------------------- embedded dataset
def test_scene_items_and_flip_applied_alike_to_label_inst_and_image():
    ds = D.EmbeddedScenes(4, 32, 64, seed=1)
    label, inst, image = S.make_scene(2, 32, 64)
    plain = D.make_item(label, inst, image, "")
    flipped = D.make_item(label[:, ::-1], inst[:, ::-1], image[:, ::-1], "")
    seen = set()
    for epoch in range(8):
        item = ds[(2, epoch)]
        assert item["label"].dtype == torch.long and item["inst"].dtype == torch.long
        assert item["image"].shape == (3, 32, 64) and -1 <= item["image"].min() and item["image"].max() <= 1
        assert item["name"] == "scene_0000002"
        for ref, name in ((plain, "plain"), (flipped, "flipped")):
            if torch.equal(item["label"], ref["label"]):
                assert torch.equal(item["inst"], ref["inst"]) and torch.equal(item["image"], ref["image"])
                seen.add(name)
        assert torch.equal(ds[(2, epoch)]["image"], item["image"])  # keyed: the same (index, epoch), the same item
    assert seen == {"plain", "flipped"}
    held = D.EmbeddedScenes(2, 32, 64, train=False)
    assert all(torch.equal(held[(0, e)]["image"], held[(0, 0)]["image"]) for e in range(4))  # never augmented


def test_build_dataset_scenes_sizes_and_options():
    ds = D.build_dataset(opt())
    assert len(ds) == 16 and ds[0]["label"].shape == S.EMBEDDED_SIZE and ds.input_nc == S.LABEL_NC + 1
    assert D.build_dataset(opt(load_size=512))[0]["image"].shape == (3, 256, 512)
    crop = D.build_dataset(opt(resize_or_crop="scale_width_and_crop", fine_size=64))[0]
    assert crop["label"].shape == (64, 64)
    assert not D.build_dataset(opt(no_instance=True))[0]["inst"].any()
    with pytest.raises(UserError, match="label-nc"):
        D.build_dataset(opt(label_nc=35))
    with pytest.raises(UserError, match="multiple"):
        D.build_dataset(opt(resize_or_crop="scale_width_and_crop", fine_size=100))
    with pytest.raises(UserError, match="resize-or-crop"):
        D.build_dataset(opt(resize_or_crop="zoom"))
    batch, what = D.evaluation_scenes(opt(load_size=128), 3)
    assert batch["image"].shape == (3, 3, 64, 128) and batch["label"].shape == (3, 64, 128)
    assert batch["name"][0] == f"scene_{D.HELD_OUT_SEED:07d}" and "held-out" in what


# ---------------------------------------------------------------- the official folder layout
def write_layout(root: Path, n: int = 3, h: int = 40, w: int = 80, phase: str = "train", *, inst_kind: str = "png16",
                 with_img: bool = True) -> Path:
    """n scenes: label ids 0..4 in vertical stripes, instance ids > 255 (two cars touching at
    the middle column, Cityscapes 26000 + k) and small stuff ids, a photo coloured by instance."""
    rng = np.random.default_rng(0)
    for sub in ("label", "inst", "img"):
        (root / f"{phase}_{sub}").mkdir(parents=True, exist_ok=True)
    for k in range(n):
        label = np.zeros((h, w), np.uint8)
        label[:, : w // 4] = 1
        label[h // 2:, w // 4:] = 4
        label[: h // 2, w // 4: w // 2] = 2
        inst = label.astype(np.int32)
        inst[h // 2:, w // 4: w // 2] = 26000 + k
        inst[h // 2:, w // 2:] = 26001 + k  # touches the other car along the middle column
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        image[..., 0] = (inst % 251).astype(np.uint8)
        name = f"city_{k:06d}"
        Image.fromarray(label).save(root / f"{phase}_label" / f"{name}_gtFine_labelIds.png")
        if inst_kind == "png16":
            Image.fromarray(inst.astype(np.uint16)).save(root / f"{phase}_inst" / f"{name}_gtFine_instanceIds.png")
        else:  # 32-bit integer TIFF (PNG has no 32-bit grey)
            Image.fromarray(inst).save(root / f"{phase}_inst" / f"{name}_gtFine_instanceIds.tif")
        if with_img:
            Image.fromarray(image).save(root / f"{phase}_img" / f"{name}_leftImg8bit.png")
    if not with_img:
        (root / f"{phase}_img").rmdir()
    return root


def folder_opt(root, **kw) -> Namespace:
    return opt(**{"data": str(root), "label_nc": 5, "load_size": 64, "fine_size": 32, **kw})


@pytest.mark.parametrize("inst_kind", ["png16", "tif32"])
@pytest.mark.parametrize("load_size", [64, 160])  # shrink 80 -> 64 wide, enlarge 80 -> 160
def test_folder_ids_survive_loading_and_resizing(tmp_path, inst_kind, load_size):
    root = write_layout(tmp_path, inst_kind=inst_kind)
    ds = D.build_dataset(folder_opt(root, load_size=load_size, no_flip=True), multiple=16)
    item = ds[1]
    h = D.make_multiple(int(load_size * 40 / 80), 16)
    assert item["label"].shape == item["inst"].shape == (h, load_size) and item["image"].shape == (3, h, load_size)
    assert set(item["label"].unique().tolist()) <= {0, 1, 2, 4}
    assert set(item["inst"].unique().tolist()) <= {0, 1, 2, 4, 26001, 26002}
    assert {26001, 26002} <= set(item["inst"].unique().tolist())  # 16/32-bit ids, not clipped to 8 bits
    assert (item["label"][item["inst"] >= 26000] == 4).all()      # label and instance maps stay aligned
    assert item["name"] == "city_000001_gtFine_labelIds.png"
    assert ds.input_nc == 6


def test_folder_flip_is_the_same_for_label_inst_and_image(tmp_path):
    root = write_layout(tmp_path, h=32, w=64)
    ds = D.build_dataset(folder_opt(root, load_size=64), multiple=16)  # no resize: 64 wide, 32 high
    label = torch.from_numpy(np.array(Image.open(ds.labels[0])).astype(np.int64))
    seen = set()
    for epoch in range(8):
        item = ds[(0, epoch)]
        flipped = not torch.equal(item["label"], label)
        ref_label = label.flip(-1) if flipped else label
        assert torch.equal(item["label"], ref_label)
        red = ((item["image"][0] + 1) * 127.5).round().long()
        assert torch.equal(red, item["inst"] % 251)  # the photo moved with the instance map
        seen.add(flipped)
    assert seen == {True, False}


def test_folder_crop_and_test_split_without_photos(tmp_path):
    root = write_layout(tmp_path)
    write_layout(tmp_path, n=2, phase="test", with_img=False)
    train = D.build_dataset(folder_opt(root, resize_or_crop="scale_width_and_crop"), multiple=16)
    assert train[0]["label"].shape == (32, 32)
    test = D.build_dataset(folder_opt(root, resize_or_crop="scale_width_and_crop"), "test", multiple=16)
    item = test[0]
    assert "image" not in item and item["label"].shape == (32, 64)  # no crop outside training
    batch, what = D.evaluation_scenes(folder_opt(root), 5, multiple=16)
    assert batch["label"].shape == (2, 32, 64) and "test" in what


def test_label_nc_0_reads_plain_images(tmp_path):
    for sub in ("train_A", "train_B"):
        (tmp_path / sub).mkdir()
        for k in range(2):
            Image.fromarray(np.full((32, 64, 3), 40 * k + (sub == "train_B") * 100, np.uint8)).save(
                tmp_path / sub / f"{k}.png")
    ds = D.build_dataset(opt(data=str(tmp_path), label_nc=0, load_size=64, no_flip=True), multiple=16)
    item = ds[1]
    assert item["label"].dtype == torch.float32 and item["label"].shape == (3, 32, 64)
    assert torch.allclose(item["label"], torch.full((3, 32, 64), 40 / 127.5 - 1))
    assert not item["inst"].any() and ds.input_nc == 3 and not ds.use_instance


def error_of(root, **kw) -> str:
    with pytest.raises(DataError) as info:
        ds = D.build_dataset(folder_opt(root, **kw), multiple=16)
        for i in range(len(ds)):
            ds[i]
    message = str(info.value)
    assert "\n" not in message
    return message


def test_folder_errors_name_the_culprit(tmp_path):
    assert "no such folder" in error_of(tmp_path / "nowhere")
    (tmp_path / "empty" / "train_label").mkdir(parents=True)
    message = error_of(tmp_path / "empty", no_instance=True)
    assert "empty" in message and "train_label" in message
    assert "train_label" in error_of(tmp_path)  # a folder without the layout

    root = write_layout(tmp_path / "extra")
    Image.fromarray(np.zeros((40, 80), np.uint8)).save(root / "train_label" / "city_000001b_gtFine_labelIds.png")
    assert "city_000001b_gtFine_labelIds.png" in error_of(root)  # count mismatch: the first without a partner

    root = write_layout(tmp_path / "size")
    Image.fromarray(np.zeros((40, 81, 3), np.uint8)).save(root / "train_img" / "city_000002_leftImg8bit.png")
    message = error_of(root)
    assert "city_000002_gtFine_labelIds.png" in message and "city_000002_leftImg8bit.png" in message

    root = write_layout(tmp_path / "value")
    Image.fromarray(np.full((40, 80), 9, np.uint8)).save(root / "train_label" / "city_000001_gtFine_labelIds.png")
    message = error_of(root)
    assert "city_000001_gtFine_labelIds.png" in message and "9" in message and "label-nc" in message

    root = write_layout(tmp_path / "rgb")
    Image.fromarray(np.zeros((40, 80, 3), np.uint8)).save(root / "train_label" / "city_000000_gtFine_labelIds.png")
    assert "city_000000_gtFine_labelIds.png" in error_of(root)

    root = write_layout(tmp_path / "noinst")
    for f in (root / "train_inst").iterdir():
        f.unlink()
    (root / "train_inst").rmdir()
    message = error_of(root)
    assert "train_inst" in message and "--no-instance" in message
    assert len(D.build_dataset(folder_opt(root, no_instance=True), multiple=16)) == 3
