"""What pix2pixHD's scripts share (train.py, generate.py, evaluate.py, cluster_features.py):
the training phases of Sec. 3.2 (G1 fixed, then released; stage 1's G loaded into G1), the
instance-level feature styles of Sec. 3.4 (k-means over E's features, sampled at inference),
running G on a batch and showing the result, loading a checkpoint for inference, and the
scores of Sec. 4.1 on the held-out scenes.

The losses and the training step are train.py's; the networks and the generator's input
encoding are model.py's.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from common import metrics
from common.checkpoint import (FORMAT_VERSION, atomic_save, check_model_name, load_file, load_state_checked,
                               load_tensors, renamed_state)
from common.errors import CheckpointError, UserError
from common.inference import load_generator
from .dataset import EMBEDDED, build_dataset
from .model import (build_encoder, build_generator, encode_input, instance_features, official_key, official_options,
                    size_multiple, to_official_state)
from .scenes import CLASS_COLORS, LABEL_NC
from .segmentation import cache_path, cache_settings, load_segmenter, score_images

MODEL_NAME = "pix2pixhd"
OFFICIAL_CODE = "NVIDIA/pix2pixHD"
STYLES_FILE = "features_clustered.npz"  # <run>/: the k-means centres of Sec. 3.4 (generate.py --style)

N_CLUSTERS = 10          # k of the k-means over each class's features (Sec. 3.4, official --n_clusters)
MIN_AREA_FRACTION = 0.5  # official encode_features.py: keep instances of more than (H*W/32) * 0.5 pixels


# ------------------------------------------------------------------- Sec. 3.2 phases
class GlobalFreeze:
    """The coarse-to-fine schedule of Sec. 3.2 for a G with local enhancers: during the first
    `epochs` epochs only the outermost enhancer (and E) learns, G1 and any inner enhancer fixed;
    then everything is fine-tuned together with a fresh Adam for G, as the official
    update_fixed_params does. Saved in the checkpoint (`released`), so a resumed run is in the
    same phase with the same optimizer state.

    The fresh Adam is the same optimizer with its state cleared: its learning rate (and the
    LambdaLR schedule stepping it) carry on unchanged."""

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


def load_global_stage(G, D, E, path: str) -> str:
    """Sec. 3.2's second stage starts from the first: the official --load_pretrain for the
    local-enhancer stage. A stage-1 (G1 alone) checkpoint's G goes into this G's G1
    (LocalEnhancer.load_global), its D and E where their shapes fit (D's don't when --num-D
    or the widths changed: that D starts afresh, as the official code's warning says).
    Returns a note of what was loaded; a wrong file is one clear line."""
    payload = load_tensors(path)
    if is_official_state(payload):  # the official stage 1: its global run's latest_net_G.pth
        if any(k.startswith("model1_") for k in payload):
            raise CheckpointError(f"--load-global {path}: the official G with a local enhancer, not a stage-1 (global) G")
        own = G.global_generator
        output = {k for k in payload if k.startswith("model.") and int(k.split(".")[1]) >= len(own.model)}
        kept = {k: v for k, v in payload.items() if k not in output}  # its output block: G1 here has none
        own.load_state_dict(renamed_state(kept, lambda key: official_key(key, own), own.state_dict(), path=path,
                                          what="the official global G (its --ngf must be twice this run's)"))
        return f"loaded G1 from the official code's global G ({path})"
    payload = load_file(path)
    if payload.get("model_name") != MODEL_NAME or payload.get("options", {}).get("n_local_enhancers", 0) != 0:
        raise CheckpointError(f"--load-global {path}: not a stage-1 pix2pixhd checkpoint (--n-local-enhancers 0)")
    try:
        G.load_global(payload["models"]["G"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise CheckpointError(f"--load-global {path}: its G does not fit this G1 (stage 1's --ngf must be twice "
                              f"this run's, and the label/instance options the same): {first}") from exc
    loaded = ["G1"]
    for name, net in (("D", D), ("E", E)):
        if net is not None and name in payload["models"]:
            try:
                load_state_checked(net, payload["models"][name], what=name, path=path)
                loaded.append(name)
            except CheckpointError:
                pass
    return f"loaded {', '.join(loaded)} from stage 1 ({path})"


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


def write_styles(E, options: dict, device, path: str | Path, k: int = N_CLUSTERS) -> str:
    """Sec. 3.4 after training (the official encode_features.py): encode every training scene
    of the run's data (scaled as in training, neither flipped nor cropped) with E, cluster each
    class's instance features (cluster_styles) and save the centres to `path` (save_styles).
    Returns a one-line note of what was written."""
    plain = SimpleNamespace(**{**options, "no_flip": True})
    if "crop" in plain.resize_or_crop:
        plain.resize_or_crop = "scale_width"
    dataset = build_dataset(plain, multiple=size_multiple(options))
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=False)
    features: dict = {}
    for batch in loader:
        for c, rows in encode_styles(E, batch["image"].to(device), batch["inst"].to(device)).items():
            features.setdefault(c, []).append(rows)
    centres = cluster_styles({c: np.concatenate(parts) for c, parts in features.items()}, k)
    path = save_styles(path, centres)
    return f"Sec. 3.4 styles: k-means centres for {len(centres)} classes from {len(dataset)} scenes -> {path}"


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


def styles_path(checkpoint: str | Path) -> Path:
    """Where a run keeps its k-means centres: <run>/features_clustered.npz beside checkpoints/."""
    return Path(checkpoint).resolve().parent.parent / STYLES_FILE


def save_styles(path: str | Path, centres: dict[int, np.ndarray]) -> Path:
    """The k-means centres, one array per class (key "class_<c>"), as a NumPy .npz file."""
    path = Path(path)
    np.savez(path, **{f"class_{c}": v for c, v in centres.items()})
    return path


def load_styles(path: str | Path) -> dict[int, np.ndarray]:
    with np.load(path) as data:
        return {int(k.split("_", 1)[1]): data[k] for k in data.files}


# ------------------------------------------------------------------------ inference
def load_encoder(path, payload: dict, device):
    """E (Sec. 3.4) from a checkpoint already read, on `device` in eval mode; None for a run
    trained without features."""
    E = build_encoder(payload["options"])
    if E is not None:
        load_state_checked(E, payload["models"]["E"], what="E", path=path)
        E = E.to(device).eval()
    return E


def is_official_state(obj) -> bool:
    """A plain state dict of the official G (its train.py's latest_net_G.pth, or the released
    label2city_512p / label2city_1024p), global or with local enhancers."""
    return (isinstance(obj, dict) and "model.1.weight" in obj and all(torch.is_tensor(v) for v in obj.values())
            and any(".conv_block." in k for k in obj))


def load_official(state: dict, path, device, no_instance: bool = False):
    """Our G with the official weights, its options read from the tensors (model.official_options)."""
    try:
        options = {**official_options(state), "data": None, "official": True}
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a whole official pix2pixHD generator ({exc})") from exc
    if options["n_downsample_global"] == 2 and options["label_nc"] == 2 and not options["n_local_enhancers"]:
        raise CheckpointError(f"{path} looks like the official CycleGAN / pix2pix ResNet generator (3 input channels, "
                              f"2 downsamplings): cyclegan/ reads those")
    if no_instance:
        options.update(label_nc=options["label_nc"] + 1, no_instance=True)
    G = build_generator(options)
    G.load_state_dict(renamed_state(state, lambda key: official_key(key, G), G.state_dict(), path=path,
                                    what="the official pix2pixHD G"))
    kind = (f"G1 with {options['n_local_enhancers']} local enhancer(s)" if options["n_local_enhancers"]
            else "global generator G1")
    inputs = (f"{options['label_nc']} labels" if options["no_instance"]
              else f"{options['label_nc']} labels + the instance boundary map (the official defaults; "
                   f"--no-instance if it was trained without)")
    print(f"loaded the official code's {kind} ({OFFICIAL_CODE}, ngf {options['ngf']}): its input read as {inputs}")
    return G.to(device).eval(), options


def load_model(path, device, *, no_instance: bool = False):
    """(G, E or None, options, payload): G (and E, with Sec. 3.4 features) from a checkpoint; or G
    alone from the official code's G weights (detected by their keys; payload {} then)."""
    payload = load_tensors(path)
    if is_official_state(payload):
        G, options = load_official(payload, path, device, no_instance)
        return G, None, options, {}
    if not (isinstance(payload, dict) and payload.get("format") == FORMAT_VERSION and "models" in payload):
        raise CheckpointError(f"{path} is neither a pix2pixhd checkpoint nor the official code's G weights "
                              f"(latest_net_G.pth of {OFFICIAL_CODE})")
    check_model_name(payload, MODEL_NAME, path)
    G, options = load_generator(path, MODEL_NAME, build_generator, device, payload=payload)
    return G, load_encoder(path, payload, device), options, payload


def export_official(G, path) -> Path:
    """Write G as the official code saves it (a plain state dict), for its test.py."""
    path = atomic_save(to_official_state(G), path)
    print(f"wrote {path}: G in the official format of {OFFICIAL_CODE}; put it in checkpoints/NAME/ as "
          f"latest_net_G.pth for its test.py --name NAME")
    return path


def style_setup(opt, E, checkpoint: Path) -> tuple[str, dict | None]:
    """(style, k-means centres) for opt.style / opt.n_styles / opt.styles; a style asked of a
    model without features is an error, and so are centres that were never computed."""
    if E is None:
        if opt.style not in (None, "encode") or opt.n_styles > 1:
            raise UserError(f"{checkpoint} was trained without --instance-feat: it has one look per label map "
                            f"(no --style / --n-styles)")
        return "encode", None
    style = opt.style or "random"
    if style == "encode" and opt.n_styles == 1:
        return style, None
    path = Path(opt.styles) if opt.styles else styles_path(checkpoint)
    if not path.is_file():
        raise UserError(f"no k-means styles at {path}: run cluster_features.py --checkpoint {checkpoint} (train.py "
                        f"writes them when an --instance-feat run ends), or pass --styles NPZ")
    return style, load_styles(path)


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


# ------------------------------------------------------------- showing label maps
def palette(label_nc: int = LABEL_NC) -> np.ndarray:
    """label_nc x 3 uint8 colours for showing label maps: the scenes' CLASS_COLORS for their
    classes, the usual bit-interleaved colour map (as PASCAL VOC's) for any other count."""
    colours = np.zeros((max(label_nc, 1), 3), np.uint8)
    for i in range(len(colours)):
        c, r, g, b = i, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours[i] = (r, g, b)
    if label_nc == LABEL_NC:
        colours[:] = CLASS_COLORS
    return colours


def colorize(label: torch.Tensor, label_nc: int = LABEL_NC) -> torch.Tensor:
    """Class ids (H x W or N x H x W) -> float (N x) 3 x H x W in [-1, 1], coloured by palette()."""
    colours = torch.from_numpy(palette(label_nc)).float() / 127.5 - 1.0
    out = colours[label.long().clamp(0, len(colours) - 1).cpu()]
    return out.movedim(-1, -3)


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


# ------------------------------------------------------- Sec. 4.1: the held-out scores
def held_out(options: dict, n: int) -> dict:
    """The first n held-out scenes as one batch, at the run's scene size, never augmented."""
    ds = build_dataset(SimpleNamespace(**options), "test", train=False, multiple=size_multiple(options))
    if n > len(ds):
        raise UserError(f"--n {n}: there are {len(ds)} held-out scenes")
    from torch.utils.data import default_collate

    return default_collate([ds[i] for i in range(n)])


class HeldOut:
    """What every score is measured against, built once: the first n held-out scenes, the
    segmenter for their size (and its cache name), and the features of their real images."""

    def __init__(self, options: dict, n: int):
        self.batch, self.n, self.label_nc = held_out(options, n), n, options["label_nc"]
        h, w = self.batch["image"].shape[-2:]
        self.segmenter = load_segmenter(h, w)
        self.segmenter_name = cache_path(cache_settings(h, w)).name
        self.extractor = metrics.feature_extractor("offline", "scenes")
        self.real_features = metrics.extract(self.extractor, self.batch["image"])[0]


def scores(G, E, held: HeldOut, options: dict, device, *, style: str = "encode", centres=None,
           seed: int = 0) -> dict:
    """Sec. 4.1 on the held-out scenes: the segmentation scores (pixel accuracy, mean IoU of a
    segmenter trained on real scenes, against the label maps G read) and FID of G's images."""
    g = torch.Generator().manual_seed(seed)
    fakes = synthesize(G, E, held.batch, options, device, style=style, centres=centres, generator=g)
    seg = score_images(held.segmenter, fakes, held.batch["label"], held.label_nc)
    return {"pixel_acc": seg["pixel_acc"], "mean_iou": seg["mean_iou"],
            "fid": metrics.fid(held.real_features, metrics.extract(held.extractor, fakes)[0]), "n": held.n}


def periodic_evaluation(G, E, options: dict, device, n: int):
    """train.py --eval-every: a function returning `scores` on n held-out scenes, the scenes,
    segmenter and real features built once now (E encodes the real image: the clusters come
    after training)."""
    if options["data"] not in EMBEDDED:
        raise UserError("--eval-every: the scene segmenter knows the embedded scenes only (--data scenes)")
    held = HeldOut(options, n)
    return lambda: scores(G, E, held, options, device)
