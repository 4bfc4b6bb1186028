"""pix2pixHD's objective (Sec. 3.2-3.3, eq. 2-5), its training phases (Sec. 3.2) and the
instance-level feature styles of Sec. 3.4 (k-means over E's features, sampled at inference).

The least-squares GAN loss and the halved D loss come from cyclegan/train.py's functions of
the same job (folders never import one another), here summed over the discriminator scales.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pathlib import Path

from .dataset import colorize, encode_input
from .model import instance_features

# The perceptual loss the official code adds (networks.VGGLoss): L1 between VGG19 features of
# the output and of the real image after these layers, with these weights, times lambda_feat.
VGG_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
VGG_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

N_CLUSTERS = 10          # k of the k-means over each class's features (Sec. 3.4, official --n_clusters)
MIN_AREA_FRACTION = 0.5  # official encode_features.py: keep instances of more than (H*W/32) * 0.5 pixels


# ----------------------------------------------------------------- eq. 2: multi-scale GAN
def lsgan_discriminator_loss(real_outputs: list, fake_outputs: list) -> torch.Tensor:
    """D_1..D_k's part of eq. 2 in the least-squares form (Sec. 3.2, after Mao et al.): for each
    scale, E[(D_k(s, x) - 1)^2] + E[D_k(s, G(s))^2] on the last (patch score) map, summed over
    the scales, then halved as the official train.py halves loss_D."""
    loss = 0.0
    for real, fake in zip(real_outputs, fake_outputs):
        r, f = real[-1].float(), fake[-1].float()
        loss = loss + F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f))
    return 0.5 * loss


def lsgan_generator_loss(fake_outputs: list) -> torch.Tensor:
    """G's part of eq. 2, least squares: sum over the scales of E[(D_k(s, G(s)) - 1)^2]."""
    loss = 0.0
    for fake in fake_outputs:
        f = fake[-1].float()
        loss = loss + F.mse_loss(f, torch.ones_like(f))
    return loss


# ------------------------------------------------------------ eq. 4: feature matching
def feature_matching_loss(fake_outputs: list, real_outputs: list, n_layers_d: int) -> torch.Tensor:
    """L_FM(G, D_k) of eq. 4, summed over k: for every intermediate layer i of every D_k (all but
    the score map), the mean absolute difference (the 1/N_i of eq. 4) between D_k's features of
    the real and the generated image. D is only a feature extractor here: the real features are
    detached, and the caller runs D on the fake with its weights frozen. The official code
    weights each term by 1 / num_D and 4 / (n_layers_D + 1) (1 with 3 layers), which we keep."""
    num_d = len(fake_outputs)
    weight = (1.0 / num_d) * (4.0 / (n_layers_d + 1))
    loss = 0.0
    for fake, real in zip(fake_outputs, real_outputs):
        for f, r in zip(fake[:-1], real[:-1]):
            loss = loss + weight * F.l1_loss(f.float(), r.detach().float())
    return loss


def vgg_loss(vgg, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The perceptual term the official code adds (Sec. 4: "our final objective ... with the
    VGG loss"): sum_i w_i * L1(F_i(G(s)), F_i(x)) over VGG19's relu1_1..relu5_1 (VGG_LAYERS,
    VGG_LAYER_WEIGHTS); the real image's features carry no gradient."""
    with torch.no_grad():
        targets = vgg.taps(real, VGG_LAYERS)
    outputs = vgg.taps(fake, VGG_LAYERS)
    return sum(w * F.l1_loss(o.float(), t.float()) for w, o, t in zip(VGG_LAYER_WEIGHTS, outputs, targets))


# ------------------------------------------------------------------- Sec. 3.2 phases
class GlobalFreeze:
    """The coarse-to-fine schedule of Sec. 3.2 for a G with local enhancers: during the first
    `epochs` epochs only the outermost enhancer (and E) learns, G1 and any inner enhancer fixed;
    then everything is fine-tuned together with a fresh Adam for G, as the official
    update_fixed_params does. Saved in the checkpoint (`released`), so a resumed run is in the
    same phase with the same optimizer state."""

    def __init__(self, G, optimizer, epochs: int):
        self.G, self.optimizer, self.epochs = G, optimizer, epochs
        self.active = hasattr(G, "enhancer_parameters") and epochs > 0
        self.released = not self.active
        if self.active:  # fixed from the start: only the outermost enhancer keeps requires_grad
            learning = set(map(id, G.enhancer_parameters()))
            for p in G.parameters():
                p.requires_grad_(id(p) in learning)

    def set_epoch(self, epoch: int) -> bool:
        """Release G1 once `epoch` reaches `epochs`; True on the one call that releases it."""
        if self.released or epoch < self.epochs:
            return False
        self.released = True
        self.G.requires_grad_(True)
        self.optimizer.state.clear()  # update_fixed_params: a new Adam over every parameter
        return True

    def state_dict(self) -> dict:
        return {"epochs": self.epochs, "released": self.released}

    def load_state_dict(self, state: dict) -> None:
        self.released = bool(state["released"]) or not self.active
        if self.released:
            self.G.requires_grad_(True)


# --------------------------------------------------------- Sec. 3.4: feature styles
def instance_class(instance_id: int) -> int:
    """The class of an instance id, Cityscapes style (official: i if i < 1000 else i // 1000)."""
    return instance_id if instance_id < 1000 else instance_id // 1000


@torch.no_grad()
def encode_styles(E, images: torch.Tensor, inst: torch.Tensor) -> dict[int, np.ndarray]:
    """E's instance-averaged feature vector of every instance in a batch of real images, per
    class: {class: array (n, feat_num + 1)}, the last column the instance's area as a
    fraction of H*W/32 (official encode_features)."""
    features = E.encode(images)  # instance_features averages it over each instance, as E.forward does
    h, w = inst.shape[-2:]
    out: dict[int, list] = {}
    for per_image, ids in zip(instance_features(features, inst), inst.reshape(len(inst), -1)):
        counts = dict(zip(*[t.tolist() for t in torch.unique(ids, return_counts=True)]))
        for instance_id, vector in per_image:
            area = counts[instance_id] / (h * w // 32)
            out.setdefault(instance_class(instance_id), []).append(vector.float().tolist() + [area])
    return {c: np.asarray(rows, dtype=np.float64) for c, rows in out.items()}


def cluster_styles(features: dict[int, np.ndarray], k: int = N_CLUSTERS, seed: int = 0) -> dict[int, np.ndarray]:
    """Sec. 3.4: per class, k-means (scikit-learn, k = 10) over the features of the instances
    larger than MIN_AREA_FRACTION; the centres are the class's styles. Classes with fewer
    large instances than k get one centre per instance."""
    from sklearn.cluster import KMeans

    centres = {}
    for c, rows in sorted(features.items()):
        feats = rows[rows[:, -1] > MIN_AREA_FRACTION, :-1]
        if len(feats):
            km = KMeans(n_clusters=min(k, len(feats)), random_state=seed, n_init=10).fit(feats)
            centres[c] = km.cluster_centers_.astype(np.float32)
    return centres


def style_feature_map(inst: torch.Tensor, centres: dict[int, np.ndarray], feat_num: int, style: str,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The feature map G reads at inference (Sec. 3.4): every instance filled with one cluster
    centre of its class: `random` draws a centre per instance (official sample_features),
    `cluster=K` takes centre K of every class (K modulo the class's number of centres).
    Instances of a class without centres get zeros. N x feat_num x H x W."""
    inst = inst.reshape(len(inst), *inst.shape[-2:])
    out = torch.zeros(len(inst), feat_num, *inst.shape[-2:])
    pick = None if style == "random" else int(style.split("=", 1)[1])
    for n in range(len(inst)):
        for instance_id in torch.unique(inst[n]).tolist():
            table = centres.get(instance_class(instance_id))
            if table is None or not len(table):
                continue
            k = (int(torch.randint(len(table), (1,), generator=generator)) if pick is None else pick % len(table))
            mask = inst[n] == instance_id
            out[n][:, mask] = torch.from_numpy(table[k]).view(-1, 1)
    return out


def parse_style(text: str) -> str:
    """--style: `random`, `cluster=K` (K >= 0) or `encode` (the real image's own features)."""
    if text in ("random", "encode"):
        return text
    if text.startswith("cluster="):
        try:
            if int(text.split("=", 1)[1]) >= 0:
                return text
        except ValueError:
            pass
    raise ValueError(f"--style must be random, encode or cluster=K with K >= 0, not {text!r}")


def save_styles(path: str | Path, centres: dict[int, np.ndarray]) -> Path:
    """The k-means centres, one array per class (key "class_<c>"), as a NumPy .npz file."""
    path = Path(path)
    np.savez(path, **{f"class_{c}": v for c, v in centres.items()})
    return path


def load_styles(path: str | Path) -> dict[int, np.ndarray]:
    with np.load(path) as data:
        return {int(k.split("_", 1)[1]): data[k] for k in data.files}


# ------------------------------------------------------------------------ inference
@torch.no_grad()
def synthesize(G, E, batch: dict, options: dict, device, *, style: str = "encode",
               centres: dict[int, np.ndarray] | None = None, generator: torch.Generator | None = None,
               dtype: torch.dtype | None = None) -> torch.Tensor:
    """G's images (fp32 on the CPU, [-1, 1]) for a batch of label (+ instance) maps. With an
    encoder, the feature channels are E's encoding of batch["image"] (style "encode", the
    official --use_encoded_image) or cluster centres (Sec. 3.4: "random", "cluster=K")."""
    label_map = encode_input(batch["label"], batch["inst"], options["label_nc"], not options["no_instance"])
    x = label_map.to(device)
    if E is not None:
        if style == "encode":
            feat = E(batch["image"].to(device), batch["inst"].to(device))
        else:
            feat = style_feature_map(batch["inst"], centres or {}, options["feat_num"], style, generator).to(device)
        x = torch.cat([x, feat.to(x.dtype)], dim=1)
    return torch.cat([G(chunk).float().cpu() for chunk in x.split(1)])


def shown_labels(batch: dict, options: dict) -> torch.Tensor:
    """The label maps as images in [-1, 1]: the class colours, or the input image for label_nc 0."""
    if options["label_nc"] == 0:
        return batch["label"].float()
    return colorize(batch["label"], options["label_nc"])


def sample_rows(batch: dict, outputs: torch.Tensor, options: dict) -> torch.Tensor:
    """Rows labels | output | real image (or labels | output without real images), interleaved
    for a grid of 3 (or 2) columns."""
    parts = [shown_labels(batch, options), outputs] + ([batch["image"].float()] if "image" in batch else [])
    return torch.stack(parts, dim=1).flatten(0, 1)
