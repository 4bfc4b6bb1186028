"""pix2pixHD's Sec. 4.1 evaluation: the scores by hand, the scene segmenter (shape,
determinism, better than the majority class on held-out real scenes, worse on degraded
images) and its per-machine cache (always a tmp folder here, never the user's)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pix2pixhd import segmentation as seg
from pix2pixhd.scenes import LABEL_NC
from pix2pixhd.segmentation import (Segmenter, held_out_scenes, load_segmenter, score_images, segment,
                                    segmentation_scores, train_segmenter)

SMALL = dict(height=32, width=64, n_scenes=48, steps=80, batch_size=8)  # about 2 s on 2 cores
TINY = dict(height=32, width=64, n_scenes=8, steps=3, batch_size=2)     # for determinism and the cache


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    """Every test's cache is its own tmp folder (GAN_PAPERS_CACHE), never ~/.cache."""
    monkeypatch.setenv("GAN_PAPERS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The SMALL segmenter, trained once per test session: tests/test_pix2pixhd.py's evaluation
    tests use the same one, from the same folder of this session's temporary directory."""
    return load_segmenter(**SMALL, directory=tmp_path_factory.getbasetemp() / "pix2pixhd_small_segmenter",
                          verbose=False)


@pytest.fixture(scope="module")
def held_out():
    return held_out_scenes(32, SMALL["height"], SMALL["width"])


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ================================================================ the scores, by hand
def test_scores_accumulate_over_the_set_and_skip_absent_classes():
    # image 1: target [[0, 0], [1, 1]], predicted [[0, 1], [1, 1]]
    # image 2: target [[2, 2], [0, 0]], predicted [[2, 0], [0, 0]]; class 3 is in neither
    target = torch.tensor([[[0, 0], [1, 1]], [[2, 2], [0, 0]]])
    pred = torch.tensor([[[0, 1], [1, 1]], [[2, 0], [0, 0]]])
    s = segmentation_scores(pred, target, label_nc=4)
    assert s["pixel_acc"] == pytest.approx(6 / 8)
    # over both images: class 0 TP 3, FP 1 (a 2 taken for 0), FN 1 (a 0 taken for 1) -> 3/5;
    # class 1 TP 2, FP 1 -> 2/3; class 2 TP 1, FN 1 -> 1/2; class 3: 0/0, skipped (nan)
    iou = s["iou_per_class"]
    assert iou[:3] == pytest.approx([3 / 5, 2 / 3, 1 / 2])
    assert len(iou) == 4 and math.isnan(iou[3])
    assert s["mean_iou"] == pytest.approx((3 / 5 + 2 / 3 + 1 / 2) / 3)
    # not the mean of per-image scores: alone, image 1 has class 0 at 1/2 and image 2 at 2/3,
    # and their mIoUs (1/2 + 2/3) / 2 and (2/3 + 1/2) / 2 average to 7/12, not 53/90
    one, two = segmentation_scores(pred[:1], target[:1], 4), segmentation_scores(pred[1:], target[1:], 4)
    assert one["iou_per_class"][0] == pytest.approx(1 / 2) and two["iou_per_class"][0] == pytest.approx(2 / 3)
    assert (one["mean_iou"] + two["mean_iou"]) / 2 == pytest.approx(7 / 12)
    assert s["mean_iou"] == pytest.approx(53 / 90)


def test_scores_of_perfect_and_of_wrong_predictions():
    target = torch.tensor([[[0, 1, 2, 2]]])
    perfect = segmentation_scores(target.clone(), target, 5)
    assert perfect["pixel_acc"] == 1.0 and perfect["mean_iou"] == 1.0
    assert [math.isnan(v) for v in perfect["iou_per_class"]] == [False, False, False, True, True]
    # everything predicted as class 4: class 4 now counts (present in the prediction) with IoU 0
    wrong = segmentation_scores(torch.full_like(target, 4), target, 5)
    assert wrong["pixel_acc"] == 0.0 and wrong["mean_iou"] == 0.0
    assert wrong["iou_per_class"][4] == 0.0 and math.isnan(wrong["iou_per_class"][3])


def test_scores_reject_mismatched_shapes_and_ids():
    with pytest.raises(ValueError, match="shape"):
        segmentation_scores(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 3, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="outside"):
        segmentation_scores(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 3), 3)


# ================================================================ the network
def test_segmenter_shape_and_size():
    torch.manual_seed(0)
    net = Segmenter().eval()
    assert 100_000 <= sum(p.numel() for p in net.parameters()) <= 300_000
    assert net(torch.zeros(2, 3, 32, 64)).shape == (2, LABEL_NC, 32, 64)
    assert net(torch.zeros(1, 3, 30, 50)).shape == (1, LABEL_NC, 30, 50)  # padded to 32 x 56, cropped back


def test_segment_is_argmax_in_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    net = Segmenter(label_nc=5).train()
    x = torch.rand(3, 3, 16, 24) * 2 - 1
    pred = segment(net, x, batch_size=2)
    assert net.training  # restored
    assert pred.dtype == torch.long and pred.shape == (3, 16, 24)
    with torch.no_grad():
        assert torch.equal(pred, net.eval()(x).argmax(1))


# ================================================================ training on real scenes
def test_training_is_deterministic_and_leaves_the_callers_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = train_segmenter(**TINY)
    assert torch.equal(torch.rand(3), expected)
    assert same_weights(a, train_segmenter(**TINY))
    assert not same_weights(a, train_segmenter(**TINY, seed=1))
    assert not a.training


def test_trained_segmenter_beats_the_majority_class_on_held_out_real_scenes(trained, held_out):
    images, labels = held_out
    s = score_images(trained, images, labels, LABEL_NC)
    majority = torch.bincount(labels.reshape(-1), minlength=LABEL_NC).max().item() / labels.numel()
    assert majority < 0.5
    assert s["pixel_acc"] > majority + 0.3
    assert s["mean_iou"] > 0.4
    # score_images is segmentation_scores of segment, whatever the batch size
    batched = score_images(trained, images, labels, LABEL_NC, batch_size=5)
    whole = segmentation_scores(segment(trained, images), labels, LABEL_NC)
    assert batched["pixel_acc"] == whole["pixel_acc"] == s["pixel_acc"]
    assert batched["mean_iou"] == pytest.approx(whole["mean_iou"])
    assert batched["iou_per_class"] == pytest.approx(whole["iou_per_class"], nan_ok=True)


def test_degraded_images_score_below_the_real_ones(trained, held_out):
    """The metric can fail: the same label maps shown by blurred or colour-shuffled images
    are recognised far less often than by the real images."""
    images, labels = held_out
    real = score_images(trained, images, labels, LABEL_NC)
    blurred = F.interpolate(F.avg_pool2d(images, 8), size=images.shape[-2:], mode="nearest")
    shuffled = images[:, [2, 0, 1]]  # RGB -> BRG: blue sky turns red, green trees blue
    for degraded in (blurred, shuffled):
        s = score_images(trained, degraded, labels, LABEL_NC)
        assert s["pixel_acc"] < real["pixel_acc"] - 0.1
        assert s["mean_iou"] < real["mean_iou"] - 0.1


# ================================================================ the cache
def test_cache_reuses_the_weights_and_retrains_for_another_key(tmp_cache, monkeypatch):
    calls = []
    real_train = seg.train_segmenter

    def counting(**kwargs):
        calls.append(kwargs)
        return real_train(**kwargs)

    monkeypatch.setattr(seg, "train_segmenter", counting)
    first = load_segmenter(**TINY, verbose=False)
    assert len(calls) == 1 and not first.training
    files = list(tmp_cache.glob("pix2pixhd_segmenter_v*.pt"))
    assert len(files) == 1 and f"_{TINY['height']}x{TINY['width']}_" in files[0].name

    again = load_segmenter(**TINY, verbose=False)
    assert len(calls) == 1 and same_weights(first, again) and not again.training

    load_segmenter(**{**TINY, "height": 16}, verbose=False)      # another size
    assert len(calls) == 2
    monkeypatch.setattr(seg, "VERSION", seg.VERSION + 1)           # another recipe
    load_segmenter(**TINY, verbose=False)
    assert len(calls) == 3
    assert len(list(tmp_cache.glob("*.pt"))) == 3


def test_cache_replaces_an_unreadable_file(tmp_cache, monkeypatch, capsys):
    path = seg.cache_path(seg.cache_settings(**TINY))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    assert path.parent == tmp_cache
    model = load_segmenter(**TINY)
    assert "training it again" in capsys.readouterr().out
    monkeypatch.setattr(seg, "train_segmenter", lambda **k: pytest.fail("trained again"))
    assert same_weights(model, load_segmenter(**TINY, verbose=False))
