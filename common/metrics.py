"""GAN metrics: torchmetrics wherever it has the metric, plus ProGAN's SWD (common/swd.py).

Features are extracted once per image set and handed to torchmetrics as
precomputed vectors, so the real set's features serve FID, KID and the
Inception Score alike, and no metric runs the feature network twice.

Two kinds of feature extractor, and every figure names the one it used:

- ``offline``: the project's own network (common/features.py), trained in seconds
  on the embedded digits. On digit data (digits, mnist) its 128-d penultimate
  layer stands in for Inception's pool3 and its softmax for Inception's class
  posterior ("offline digit features"). On anything else (photos, cifar10,
  folders) the classifier head means nothing, so the features are the mean and
  standard deviation of its last convolutional layer over the image, computed at
  the image's own resolution ("offline conv-statistics features"); there is no
  Inception-Score analogue for them. tests/test_common_metrics.py shows that both
  rank real < blurred < noise on their data.
- ``inception``: the standard InceptionV3 of torch-fidelity (the TF-FID port that
  torchmetrics uses), with its 2048-d pool3 features and 1008-way logits. Its weights are
  found by common.pretrained's rule (given, cached, downloaded at start-up when online);
  offline, a one-line error names the file.
- ``auto`` (evaluate.py's default): Inception when its weights are cached or can be
  downloaded, so the figures a user compares with papers are Inception figures; otherwise
  the offline features, with a line that says so.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from common.errors import CheckpointError, UserError

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
DIGIT_DATA = ("digits", "mnist")


# ----------------------------------------------------------- feature extractors
class OfflineDigitFeatures:
    """128-d penultimate features and 10-way logits of the offline digit classifier."""

    has_logits = True

    def __init__(self, device="cpu", seed: int = 0):
        from common.features import VERSION, load_classifier

        model, self.test_accuracy = load_classifier(seed)
        self.model = model.to(device).eval()
        self.device = device
        self.name = f"offline digit features (classifier v{VERSION}, {100 * self.test_accuracy:.1f}% held-out)"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.model.features(images.to(self.device))
        return feats.double().cpu(), self.model.head(feats).double().cpu()


class OfflineConvStatistics:
    """Mean and standard deviation over the image of each of the digit classifier's
    64 last-conv channels (grayscale input at its own resolution): 128 values."""

    has_logits = False

    def __init__(self, device="cpu", seed: int = 0):
        from common.features import VERSION, load_classifier

        model, _ = load_classifier(seed)
        self.conv = model.conv.to(device).eval()
        self.device = device
        self.name = f"offline conv-statistics features (digit classifier v{VERSION} convolutions)"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        x = images.to(self.device).float()
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        maps = self.conv(x).flatten(2)
        return torch.cat([maps.mean(2), maps.std(2)], dim=1).double().cpu(), None


def inception_weights_path(path: str | Path | None = None) -> Path:
    """The Inception weights file by common.pretrained's rule: `path` if given, else torch hub's
    checkpoints folder (where torch-fidelity keeps it too), else downloaded there when online;
    a one-line error otherwise."""
    from common.pretrained import fetch

    return fetch(INCEPTION_URL, what="InceptionV3 weights (FID / KID / IS)", given=path, flag="--inception-weights",
                 without="--features offline needs none")


class InceptionFeatures:
    """torch-fidelity's InceptionV3 (TF-FID weights): 2048-d pool3 features, 1008 logits."""

    has_logits = True

    def __init__(self, device="cpu", weights: str | Path | None = None):
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError as exc:
            raise UserError("--features inception needs torch-fidelity: pip install torch-fidelity") from exc
        path = inception_weights_path(weights)
        try:  # check that the file holds plain tensors before torch-fidelity loads it
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{path} is not a readable weights file ({type(exc).__name__}: {exc})") from exc
        self.model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                                 feature_extractor_weights_path=str(path)).to(device).eval()
        self.device = device
        self.name = "Inception-v3 features (torch-fidelity TF-FID weights)"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.to(self.device).float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # the network resizes to 299 itself
        feats, logits = self.model(x)
        return feats.double().cpu(), logits.double().cpu()


def feature_extractor(kind: str, data: str, device="cpu", inception_weights=None):
    """The extractor for `--features kind` on `--data data` (see the module docstring)."""
    if kind == "auto":
        try:
            return InceptionFeatures(device, inception_weights)
        except UserError as exc:
            if inception_weights:  # a file asked for by name is never replaced
                raise
            print(f"--features auto: the offline features, not Inception ({exc}); these figures are not "
                  f"comparable with papers' FID / IS")
            kind = "offline"
    if kind == "offline":
        return OfflineDigitFeatures(device) if data in DIGIT_DATA else OfflineConvStatistics(device)
    if kind == "inception":
        return InceptionFeatures(device, inception_weights)
    raise UserError(f"unknown feature extractor {kind!r} (auto | offline | inception)")


def extract(extractor, images: torch.Tensor, batch_size: int = 256):
    """(features, logits or None) for a whole image set, in batches."""
    parts = [extractor(chunk) for chunk in images.split(batch_size)]
    feats = torch.cat([p[0] for p in parts])
    logits = torch.cat([p[1] for p in parts]) if parts[0][1] is not None else None
    return feats, logits


# ------------------------------------------------------ torchmetrics, on features
class _Precomputed(nn.Module):
    """Identity 'network' so torchmetrics takes feature vectors we computed once."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def fid(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to the two feature sets (Heusel et al. 2017, eq. 6)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Precomputed(real_features.shape[1])).double()
    metric.update(real_features.double(), real=True)
    metric.update(fake_features.double(), real=False)
    return float(metric.compute())


def kid(real_features: torch.Tensor, fake_features: torch.Tensor, subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with the cubic
    polynomial kernel, mean and std over random subsets (seeded, so repeatable)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    # subsets of at most half of the smaller set, so that they differ and the std means something
    size = min(subset_size, len(real_features) // 2, len(fake_features) // 2)
    with warnings.catch_warnings():  # "will save all extracted features": they are 128-2048 floats each
        warnings.simplefilter("ignore")
        metric = KernelInceptionDistance(feature=_Precomputed(real_features.shape[1]), subsets=subsets, subset_size=size)
    metric.update(real_features.double(), real=True)
    metric.update(fake_features.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def inception_score(logits: torch.Tensor, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) over `splits` groups (Salimans et al. 2016, Sec. 4): mean, std."""
    from torchmetrics.image.inception import InceptionScore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = InceptionScore(feature=_Precomputed(logits.shape[1]), splits=splits)
    metric.update(logits.double())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


# ------------------------------------------------------ diversity and paired metrics
def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)


MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, the five scales' exponents


def ms_ssim_betas(size: int, kernel_size: int = 11) -> tuple[float, ...]:
    """The standard exponents for as many scales as an image of `size` allows (each scale
    must stay larger than the Gaussian window), renormalised to sum to 1: small images
    (28-32 px: 2 scales; 64 px: 3) cannot have the full five."""
    scales = 1
    while scales < 5 and size / 2 ** scales > kernel_size - 1:
        scales += 1
    betas = MS_SSIM_BETAS[:scales]
    return tuple(b / sum(betas) for b in betas)


def ms_ssim_diversity(images: torch.Tensor, n_pairs: int = 1000, seed: int = 0) -> float:
    """Mean MS-SSIM between random pairs of distinct images of one set: the diversity measure
    Odena et al. 2017 use and ProGAN (Sec. 5) discusses. Lower = more diverse; compare with
    the real data's value. It sees variety only, not quality."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim

    n = images.shape[0]
    if n < 2:
        raise ValueError("MS-SSIM diversity needs at least two images")
    gen = torch.Generator().manual_seed(seed)
    a = torch.randint(0, n, (n_pairs,), generator=gen)
    b = (a + torch.randint(1, n, (n_pairs,), generator=gen)) % n  # never the same image
    x = to_unit_range(images)
    betas = ms_ssim_betas(min(x.shape[-2:]))
    values = [ms_ssim(x[i], x[j], data_range=1.0, betas=betas, reduction="none")
              for i, j in zip(a.split(250), b.split(250))]
    return float(torch.cat(values).mean())


def _paired(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape:
        raise ValueError(f"paired metrics need equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}")
    return to_unit_range(pred), to_unit_range(target)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean per-image PSNR (dB) of images in [-1, 1], measured on [0, 1]. (The SR folders
    measure theirs on the Y channel with the border cropped, as their papers do.)"""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    pred, target = _paired(pred, target)
    return float(peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3)).mean())


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean SSIM (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5) of images in [-1, 1]."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    pred, target = _paired(pred, target)
    return float(structural_similarity_index_measure(pred, target, data_range=1.0))


# ---------------------------------------------------------------- whole reports
def reference_split(size: int, n: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of halves A and B of a dataset of `size` items: a fixed permutation, each half
    `n` items at most (default: half the data, capped at 10,000)."""
    half = size // 2
    n = min(n or 10_000, half)
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    return order[:n], order[half:half + n]


def real_reference(dataset, n: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint halves (A, B) of the real data (`reference_split`). Generated sets are
    compared with B; A against B is the real-data reference, computed with the same n."""
    stack = lambda idx: torch.stack([dataset[int(i)][0] for i in idx]).float()  # noqa: E731
    a, b = reference_split(len(dataset), n, seed)
    return stack(a), stack(b)


def image_report(images: torch.Tensor, reference: torch.Tensor, extractor, *, seed: int = 0,
                 reference_features=None) -> dict:
    """FID, KID (and IS where the extractor has logits) against `reference`, plus SWD and the
    MS-SSIM diversity of `images`. The dict names the feature extractor."""
    from common.swd import swd

    if images.shape[1:] != reference.shape[1:]:
        raise ValueError(f"generated images {tuple(images.shape[1:])} and real ones "
                         f"{tuple(reference.shape[1:])} differ in shape")
    start = time.perf_counter()
    real_feats = reference_features if reference_features is not None else extract(extractor, reference)[0]
    feats, logits = extract(extractor, images)
    report = {"features": extractor.name, "n": int(images.shape[0]), "n_reference": int(reference.shape[0]),
              "fid": fid(real_feats, feats)}
    report["kid"], report["kid_std"] = kid(real_feats, feats, seed=seed)
    if logits is not None:
        report["is"], report["is_std"] = inception_score(logits, seed=seed)
    n = min(len(images), len(reference))
    if images.shape[-1] == images.shape[-2] and images.shape[-1] >= 16:
        result = swd(images[:n], reference[:n], seed=seed)
        report["swd"] = result["mean"]
        report["swd_levels"] = result["levels"]
    report["ms_ssim"] = ms_ssim_diversity(images, seed=seed)
    report["seconds"] = round(time.perf_counter() - start, 2)
    return report


class Evaluator:
    """What evaluate.py and train.py's --eval-every share: the real reference half B (and A
    for the real-vs-real line), the feature extractor, and B's features, computed once."""

    def __init__(self, dataset, data: str, *, n: int | None = None, features: str = "offline",
                 device="cpu", inception_weights=None, seed: int = 0):
        self.real_a, self.reference = real_reference(dataset, n, seed)
        self.n = len(self.reference)
        self.seed = seed
        with torch.random.fork_rng(devices=[]):  # building the classifier must not move a training run's RNG
            self.extractor = feature_extractor(features, data, device, inception_weights)
        self.reference_features = extract(self.extractor, self.reference)[0]

    def __call__(self, images: torch.Tensor) -> dict:
        with torch.random.fork_rng(devices=[]):
            return image_report(images, self.reference, self.extractor, seed=self.seed,
                                reference_features=self.reference_features)

    def real_vs_real(self) -> dict:
        """The same report for real half A against B: the floor a model can hope for at this n."""
        return self(self.real_a)


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, device, batch_size: int = 256) -> torch.Tensor:
    """G(z) in eval mode, in batches, as fp32 on the CPU; G's train/eval mode is restored."""
    was_training = G.training
    G.eval()
    images = torch.cat([G(chunk.to(device)).float().cpu() for chunk in z.split(batch_size)])
    G.train(was_training)
    return images


def log_to_run(run, step: int, report: dict, model: str) -> None:
    """train.py --eval-every: TensorBoard scalars and a line of <run>/metrics.jsonl."""
    run.log_scalars(step, scalars(report))
    append_jsonl(run.directory / "metrics.jsonl", {"model": model, "step": step, "what": "generated", **report})


def format_report(report: dict) -> str:
    """One line for the terminal: a paired report (L1 / PSNR / SSIM against targets) or a
    distribution report (FID, KID, ...), or a segmentation report (pixel accuracy and mean IoU
    of a segmenter on synthesized images, the semantic-synthesis measure; FID beside them)."""
    if "pixel_acc" in report:
        parts = [f"pixel accuracy {report['pixel_acc']:.4f}", f"mean IoU {report['mean_iou']:.4f}"]
        if "fid" in report:
            parts.append(f"FID {report['fid']:.3f}")
        return "  ".join(parts) + (f"  [n={report['n']}]" if "n" in report else "")
    if "fid" not in report and "psnr" in report:
        paired = [f"L1 {report['l1']:.4f}" if "l1" in report else "", f"PSNR {report['psnr']:.2f} dB",
                  f"SSIM {report['ssim']:.4f}" if "ssim" in report else ""]
        return "  ".join(p for p in paired if p) + (f"  [{report['pairs']}]" if "pairs" in report else "")
    parts = [f"FID {report['fid']:.3f}", f"KID {report['kid']:.4f} ± {report['kid_std']:.4f}"]
    if "is" in report:
        parts.append(f"IS {report['is']:.3f} ± {report['is_std']:.3f}")
    if "swd" in report:
        levels = ", ".join(f"{k}: {v:.1f}" for k, v in report["swd_levels"].items())
        parts.append(f"SWD x1e3 {report['swd']:.1f} ({levels})")
    parts.append(f"MS-SSIM {report['ms_ssim']:.4f}")
    if "class_accuracy" in report:
        parts.append(f"class accuracy {report['class_accuracy']:.3f}")
    return f"{'; '.join(parts)}  [{report['features']}, n={report['n']}]"


def scalars(report: dict) -> dict:
    """The report's numbers as TensorBoard scalars, tagged with the feature extractor."""
    if "pixel_acc" in report:  # a segmentation report
        return {f"eval/{k}": report[k] for k in ("pixel_acc", "mean_iou", "fid") if k in report}
    if "features" not in report:  # a paired report: L1 / PSNR / SSIM against targets
        return {f"eval/{k}": report[k] for k in ("l1", "psnr", "ssim") if k in report}
    tag = "inception" if report["features"].startswith("Inception") else "offline"
    keys = ("fid", "kid", "is", "swd", "ms_ssim", "class_accuracy")
    return {f"eval_{tag}/{k}": report[k] for k in keys if k in report}


def report_records(records: list[dict], checkpoint: str | Path, jsonl: str | Path | None = None) -> Path:
    """evaluate.py's output: a line per record on the terminal, and the records appended as JSON
    lines to `jsonl`, by default <run>/metrics.jsonl beside the checkpoint's checkpoints/ folder."""
    path = Path(jsonl) if jsonl else Path(checkpoint).resolve().parents[1] / "metrics.jsonl"
    for record in records:
        label = f"generated (step {record['step']})" if record["what"] == "generated" else record["what"]
        print(f"{label}: {format_report(record)}")
        append_jsonl(path, record)
    print(f"appended to {path}")
    return path


def append_jsonl(path: str | Path, record: dict) -> Path:
    """Append one JSON object per line (metrics.jsonl in the run directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")  # insertion order: the fields read as printed
    return path

