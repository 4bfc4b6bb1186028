"""Semantic-segmentation scores of synthesized images: pix2pixHD's evaluation (Wang et al.
2018, arXiv:1711.11585, Sec. 4.1, "Quantitative comparisons", Table 1).

The paper's protocol: run a semantic segmentation network that was trained on *real*
images over the *synthesized* ones and compare its prediction with the label map the
images were synthesized from. If the synthesis is realistic (and faithful to the input
layout) the network recognises the objects where the label map put them. Two numbers:
pixel accuracy and mean intersection-over-union; beside them the same network's scores on
the real images of the same label maps (the paper's "oracle" row for PSPNet on Cityscapes),
which is the ceiling a perfect synthesis reaches.

Our deviation: the paper uses PSPNet (Zhao et al. 2017, ResNet-101, trained on Cityscapes
at 2048 x 1024). Offline and on two CPU cores there is no such network, so this module
trains a small fully convolutional encoder-decoder (`Segmenter`, about 200k parameters)
deterministically on the embedded procedural street scenes (pix2pixhd.scenes.make_scene,
training seeds only) and caches it per machine (`load_segmenter`). Its scores are therefore
"segmentation scores by the offline scene segmenter on procedural scenes", not comparable
with the paper's Cityscapes numbers; only the protocol is the paper's. For a folder of
real data (e.g. Cityscapes) the functions `segment`, `segmentation_scores` and
`score_images` accept any `nn.Module` that maps images in [-1, 1] to per-pixel logits, so a
real segmentation network can be passed in instead.

Definitions (`segmentation_scores`, as the Cityscapes benchmark and the paper use them):
    pixel accuracy = correctly labelled pixels / all pixels,
    IoU_c          = TP_c / (TP_c + FP_c + FN_c), with the counts summed over the whole set
                     (one confusion matrix for all images, not a mean of per-image IoUs),
    mean IoU       = the mean of IoU_c over the classes with a non-zero union, i.e. present
                     in the target or in the prediction of at least one pixel of the set; a
                     class absent from both is skipped (its IoU is 0 / 0, reported as nan).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dataset import HELD_OUT_SEED
from .scenes import LABEL_NC, make_scene

VERSION = 1  # bump when the architecture or the training recipe changes: cached copies are then retrained
CHANNELS = (16, 32, 48, 64)  # full, 1/2, 1/4 and 1/8 resolution
# The defaults of train_segmenter / load_segmenter (what they reach: pix2pixhd/README.md, Results).
N_SCENES, STEPS, BATCH_SIZE, LR, CLASS_BALANCE = 256, 400, 4, 1e-2, 0.5


# ================================================================ the network
def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Segmenter(nn.Module):
    """RGB in [-1, 1] (N x 3 x H x W) -> N x label_nc x H x W class logits.

    A small U-Net-like encoder-decoder (our stand-in for the paper's PSPNet, see the module
    docstring): two 3x3 conv-BN-ReLU layers at each of 4 resolutions (full, 1/2, 1/4, 1/8;
    the first layer of each lower level has stride 2), then bilinear upsampling, a
    concatenated skip from the encoder level of the same size, and one 3x3 conv-BN-ReLU per
    level up to full resolution, and a 1x1 classifier. About 195k parameters with the
    default channels. Any H x W: the input is padded (edge replication) to a multiple of 8 and
    the logits cropped back."""

    def __init__(self, label_nc: int = LABEL_NC, channels: tuple[int, int, int, int] = CHANNELS):
        super().__init__()
        c1, c2, c3, c4 = channels
        self.label_nc = label_nc
        self.enc = nn.ModuleList([
            nn.Sequential(_conv_bn_relu(3, c1), _conv_bn_relu(c1, c1)),              # H
            nn.Sequential(_conv_bn_relu(c1, c2, 2), _conv_bn_relu(c2, c2)),          # H/2
            nn.Sequential(_conv_bn_relu(c2, c3, 2), _conv_bn_relu(c3, c3)),          # H/4
            nn.Sequential(_conv_bn_relu(c3, c4, 2), _conv_bn_relu(c4, c4)),          # H/8
        ])
        self.dec = nn.ModuleList([
            _conv_bn_relu(c4 + c3, c3),                                              # H/4
            _conv_bn_relu(c3 + c2, c2),                                              # H/2
            _conv_bn_relu(c2 + c1, c1),                                              # H
        ])
        self.head = nn.Conv2d(c1, label_nc, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        x = F.pad(images, (0, -w % 8, 0, -h % 8), mode="replicate") if (h % 8 or w % 8) else images
        skips = []
        for level in self.enc:
            x = level(x)
            skips.append(x)
        for level, skip in zip(self.dec, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = level(torch.cat([x, skip], dim=1))
        return self.head(x)[..., :h, :w]


# ================================================================ training on real scenes
def render_scenes(seeds, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 N x 3 x H x W, labels int64 N x H x W) of make_scene(seed) for each seed."""
    images, labels = [], []
    for s in seeds:
        label, _, image = make_scene(int(s), height, width)
        images.append(torch.from_numpy(image).permute(2, 0, 1))
        labels.append(torch.from_numpy(label).long())
    return torch.stack(images), torch.stack(labels)


def held_out_scenes(n: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images float N x 3 x H x W in [-1, 1], labels N x H x W) of the first n held-out scenes
    (make_scene(HELD_OUT_SEED + i): the scenes pix2pixHD is evaluated on, never trained on)."""
    images, labels = render_scenes(range(HELD_OUT_SEED, HELD_OUT_SEED + n), height, width)
    return to_signed(images), labels


def to_signed(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], as pix2pixhd.dataset's items."""
    return images_uint8.float() / 127.5 - 1.0


def class_weights(labels: torch.Tensor, label_nc: int, power: float) -> torch.Tensor:
    """Cross-entropy class weights proportional to freq_c ** -power (freq_c: class c's share
    of the training pixels; a class with none counts as 1e-4), scaled so that the
    pixel-weighted mean weight is 1. power 0: plain cross-entropy; 0.5 (the default) lifts
    the thin and rare classes (poles, people) without giving up pixel accuracy."""
    freq = torch.bincount(labels.reshape(-1), minlength=label_nc).double() / max(labels.numel(), 1)
    weight = freq.clamp(min=1e-4) ** -power
    return (weight / (weight * freq).sum()).float()


def train_segmenter(n_scenes: int = N_SCENES, height: int = 128, width: int = 256, steps: int = STEPS,
                    seed: int = 0, batch_size: int = BATCH_SIZE, lr: float = LR, label_nc: int = LABEL_NC,
                    class_balance: float = CLASS_BALANCE, verbose: bool = False) -> Segmenter:
    """Train a Segmenter on real scenes, deterministically; returned in eval mode.

    Data: the training scenes make_scene(0..n_scenes-1) at height x width (the seeds the
    pix2pixHD generator trains on; the held-out seeds from HELD_OUT_SEED are never used),
    rendered once; each step draws batch_size of them at random with a random horizontal
    flip each. Loss: per-pixel cross-entropy weighted by class_weights(class_balance); Adam (lr, betas 0.9/0.999) with a cosine decay
    of the learning rate to 0 over `steps`. torch.manual_seed(seed) for the initial weights
    and a torch.Generator(seed) for the batches, inside torch.random.fork_rng so the
    caller's random state is left alone: same arguments, same weights (on one machine and
    thread count). channels_last memory format. The defaults and what they reach on real
    held-out scenes (and the settings tried before them) are in pix2pixhd/README.md."""
    images, labels = render_scenes(range(n_scenes), height, width)
    weight = class_weights(labels, label_nc, class_balance)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Segmenter(label_nc)
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / steps)))
    start = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(n_scenes, (batch_size,), generator=gen)
        flip = torch.rand(batch_size, generator=gen) < 0.5
        x, y = to_signed(images[idx]), labels[idx]
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        loss = F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y, weight=weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if verbose and (step + 1) % 50 == 0:
            print(f"segmenter step {step + 1}/{steps}: cross-entropy {loss.item():.4f} "
                  f"({time.perf_counter() - start:.0f} s)")
    return model.to(memory_format=torch.contiguous_format).eval()


# ================================================================ the cached copy
def cache_dir() -> Path:
    """Where trained evaluation networks are kept: $GAN_PAPERS_CACHE, else ~/.cache/gan-papers
    (common.features.cache_dir, shared with the offline digit classifier)."""
    from common.features import cache_dir as project_cache_dir

    return project_cache_dir()


def cache_settings(height: int, width: int, n_scenes: int = N_SCENES, steps: int = STEPS, seed: int = 0,
                   batch_size: int = BATCH_SIZE, lr: float = LR, label_nc: int = LABEL_NC,
                   class_balance: float = CLASS_BALANCE) -> dict:
    """What a cached segmenter is keyed by (besides VERSION): train_segmenter's arguments."""
    return {"height": height, "width": width, "n_scenes": n_scenes, "steps": steps, "seed": seed,
            "batch_size": batch_size, "lr": lr, "label_nc": label_nc, "class_balance": class_balance}


def cache_path(settings: dict, directory: str | Path | None = None) -> Path:
    s = settings
    name = (f"pix2pixhd_segmenter_v{VERSION}_{s['height']}x{s['width']}_c{s['label_nc']}_n{s['n_scenes']}"
            f"_steps{s['steps']}_b{s['batch_size']}_lr{s['lr']:g}_cb{s['class_balance']:g}_seed{s['seed']}.pt")
    return Path(directory or cache_dir()) / name


def load_segmenter(height: int = 128, width: int = 256, *, n_scenes: int = N_SCENES, steps: int = STEPS,
                   seed: int = 0, batch_size: int = BATCH_SIZE, lr: float = LR, label_nc: int = LABEL_NC,
                   class_balance: float = CLASS_BALANCE, directory: str | Path | None = None,
                   verbose: bool = True) -> Segmenter:
    """The segmenter for images of height x width, in eval mode on the CPU: loaded from the
    cache when a copy with this VERSION and these settings is there, else trained with
    train_segmenter (about 1.5 min on 2 CPU cores at the defaults) and cached.

    Cache file: <directory or cache_dir()>/pix2pixhd_segmenter_v<VERSION>_<H>x<W>_c<label_nc>
    _n<n_scenes>_steps<steps>_b<batch_size>_lr<lr>_cb<class_balance>_seed<seed>.pt, written
    atomically and read with weights_only=True; a file whose stored version or settings differ from its name
    (or that cannot be read) is retrained and replaced."""
    from common.checkpoint import atomic_save

    settings = cache_settings(height, width, n_scenes, steps, seed, batch_size, lr, label_nc, class_balance)
    path = cache_path(settings, directory)
    model = Segmenter(label_nc)
    if path.is_file():
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if payload.get("version") == VERSION and payload.get("settings") == settings:
                model.load_state_dict(payload["model"])
                return model.eval()
        except Exception as exc:  # a truncated or foreign file: train again and overwrite it
            if verbose:
                print(f"cannot use the cached segmenter {path} ({exc}); training it again")
    start = time.perf_counter()
    model = train_segmenter(**settings)
    seconds = time.perf_counter() - start
    atomic_save({"model": model.state_dict(), "version": VERSION, "settings": settings,
                 "train_seconds": seconds}, path)
    if verbose:
        print(f"scene segmenter v{VERSION} trained on real scenes ({height} x {width}, {n_scenes} scenes, "
              f"{steps} steps) in {seconds:.0f} s; cached at {path}")
    return model


# ================================================================ scores (Sec. 4.1)
def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, label_nc: int) -> torch.Tensor:
    """label_nc x label_nc int64 counts: entry [t, p] = pixels of true class t predicted as p,
    summed over every pixel of every image (one bincount of t * label_nc + p). pred and
    target: class ids of one shape (N x H x W, or any); ids outside 0..label_nc-1 raise."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    pred, target = pred.reshape(-1).long().cpu(), target.reshape(-1).long().cpu()
    for name, t in (("prediction", pred), ("target", target)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= label_nc):
            raise ValueError(f"{name} holds class ids outside 0..{label_nc - 1}")
    return torch.bincount(target * label_nc + pred, minlength=label_nc * label_nc).reshape(label_nc, label_nc)


def scores_from_confusion(confusion: torch.Tensor) -> dict:
    """pixel_acc, mean_iou and iou_per_class from a confusion matrix (module docstring):
    IoU_c = TP / (TP + FP + FN) with TP the diagonal, FP the column sum minus TP, FN the
    row sum minus TP; classes with TP + FP + FN = 0 (in neither target nor prediction) get nan
    in iou_per_class and are left out of mean_iou."""
    cm = confusion.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    total = cm.sum()
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    present = union > 0
    return {"pixel_acc": float(tp.sum() / total) if total > 0 else float("nan"),
            "mean_iou": float(iou[present].mean()) if present.any() else float("nan"),
            "iou_per_class": iou.tolist()}


def segmentation_scores(pred: torch.Tensor, target: torch.Tensor, label_nc: int) -> dict:
    """{"pixel_acc": float, "mean_iou": float, "iou_per_class": list of label_nc floats (nan
    for a class absent from both)} of predicted class ids against the target label maps
    (both N x H x W), accumulated over the whole set as the paper's Table 1 (Cityscapes'
    definitions; see the module docstring)."""
    return scores_from_confusion(confusion_matrix(pred, target, label_nc))


@torch.no_grad()
def segment(segmenter: nn.Module, images: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """N x 3 x H x W images in [-1, 1] -> N x H x W predicted class ids (LongTensor on the
    CPU), in batches, without gradients and in eval mode (BatchNorm's running statistics);
    the segmenter's train/eval mode is restored afterwards. Runs on the segmenter's device."""
    was_training = segmenter.training
    segmenter.eval()
    device = next(segmenter.parameters()).device
    try:
        out = [segmenter(images[i:i + batch_size].to(device).float()).argmax(1).cpu()
               for i in range(0, len(images), batch_size)]
    finally:
        segmenter.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, *images.shape[-2:], dtype=torch.long)


def score_images(segmenter: nn.Module, images: torch.Tensor, labels: torch.Tensor, label_nc: int = LABEL_NC,
                 batch_size: int = 8) -> dict:
    """segmentation_scores(segment(segmenter, images), labels, label_nc): the Sec. 4.1 scores
    of images (synthesized or real, N x 3 x H x W in [-1, 1]) against the label maps
    (N x H x W) they should show, accumulated batch by batch."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} label maps")
    cm = torch.zeros(label_nc, label_nc, dtype=torch.long)
    for i in range(0, len(images), batch_size):
        pred = segment(segmenter, images[i:i + batch_size], batch_size)
        cm += confusion_matrix(pred, labels[i:i + batch_size], label_nc)
    return scores_from_confusion(cm)
