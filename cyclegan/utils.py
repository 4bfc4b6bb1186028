"""What only CycleGAN needs: the history of generated images the discriminators train on
(Sec. 4 "Training details", after Shrivastava et al. 2017), the training grid, the measures
of evaluate.py and --eval-every, and a trained generator loaded back and run on an image of
any size (what train.py, generate.py and evaluate.py share)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from common import metrics
from common.checkpoint import (FORMAT_VERSION, atomic_save, check_model_name, load_state_checked, load_tensors,
                               renamed_state)
from common.errors import CheckpointError
from .dataset import evaluation_set
from .model import build_generator, official_key, official_options, to_official_state

MODEL_NAME = "cyclegan"
OFFICIAL_CODE = "junyanz/pytorch-CycleGAN-and-pix2pix"
# the models the official scripts/download_cyclegan_model.sh names, at the address it fetches them from
RELEASED = ("apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra",
            "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh", "sat2map",
            "map2sat", "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label",
            "facades_label2photo", "iphone2dslr_flower")
RELEASED_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{}.pth"


def released_weights(name: str) -> str:
    """The path of a released model's G weights: cached, else downloaded once (common.pretrained)."""
    from common.pretrained import fetch

    return str(fetch(RELEASED_URL.format(name), what=f"the released CycleGAN model {name}",
                     filename=f"cyclegan_{name}.pth", flag="--checkpoint"))
GENERATORS = {"AtoB": "G_AB", "BtoA": "G_BA"}  # --direction: the paper's G and F


class ImagePool:
    """A buffer of the last `capacity` generated images of one domain (50 in the paper).

    Sec. 4: "we update the discriminators using a history of generated images rather than the
    ones produced by the latest generators", which damps oscillation. For each image of a
    batch (the rule of the official code):
      * while fewer than `capacity` images are stored: store it and hand it back;
      * then, with probability 1/2: hand back a stored image picked uniformly at random
        and store the new one in its slot; otherwise hand back the new image itself.
    The draws come from torch's global generator, whose state every checkpoint holds, and the
    stored images are in the checkpoint too (state_dict), so a resumed run repeats exactly.
    capacity 0 turns the pool off (every image is handed back as it is).
    """

    def __init__(self, capacity: int = 50):
        self.capacity = capacity
        self.images: list[torch.Tensor] = []  # each CxHxW, detached

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The batch D should see in place of `images` (BxCxHxW), in `images`' memory format."""
        if self.capacity == 0:
            return images.detach()
        out = []
        for image in images.detach():
            if len(self.images) < self.capacity:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                slot = int(torch.randint(self.capacity, ()))
                out.append(self.images[slot].to(image.device, image.dtype))
                self.images[slot] = image.clone()
            else:
                out.append(image)
        batch = torch.stack(out)
        if images.dim() == 4 and images.is_contiguous(memory_format=torch.channels_last) \
                and not images.is_contiguous():
            batch = batch.contiguous(memory_format=torch.channels_last)  # what D was given before
        return batch

    def state_dict(self) -> dict:
        stored = torch.stack([i.float().cpu().contiguous() for i in self.images]) if self.images \
            else torch.zeros(0)
        return {"capacity": self.capacity, "images": stored}

    def load_state_dict(self, state: dict) -> None:
        if int(state["capacity"]) != self.capacity:
            raise CheckpointError(f"the checkpoint's image pool holds {int(state['capacity'])} images, "
                                  f"this run asks for {self.capacity} (--pool-size)")
        self.images = [image.clone() for image in state["images"]] if state["images"].numel() else []


# ------------------------------------------------------------------ seeing and measuring
@torch.no_grad()
def grid_rows(G_AB, G_BA, real_a: torch.Tensor, real_b: torch.Tensor) -> torch.Tensor:
    """The training grid: one row per example, real A | fake B | rec A | real B | fake A | rec B
    (six columns). InstanceNorm without running statistics behaves the same in train and
    eval mode, and nothing here draws random numbers, so sampling never changes the run."""
    fake_b, fake_a = G_AB(real_a), G_BA(real_b)
    rec_a, rec_b = G_BA(fake_b), G_AB(fake_a)
    columns = [real_a, fake_b, rec_a, real_b, fake_a, rec_b]
    return torch.stack([c.float().cpu() for c in columns], dim=1).flatten(0, 1)


@torch.no_grad()
def translate_batches(G, images: torch.Tensor, device, batch_size: int = 16) -> torch.Tensor:
    """G over a stack of equally sized images, chunk by chunk, as fp32 on the CPU."""
    return torch.cat([G(chunk.to(device)).float().cpu() for chunk in images.split(batch_size)])


# pix2pix/utils.py holds the same measure
def paired_report(outputs: torch.Tensor, targets: torch.Tensor) -> dict:
    """L1 (on [-1, 1], the scale of the cycle loss of eq. 2), PSNR (dB) and SSIM (both on
    [0, 1]) of outputs against their targets."""
    return {"l1": float((outputs.float() - targets.float()).abs().mean()),
            "psnr": metrics.psnr(outputs, targets), "ssim": metrics.ssim(outputs, targets)}


def translation_report(G_AB, G_BA, evaluation: dict, device) -> list[dict]:
    """L1 / PSNR / SSIM rows (paired_report) for an evaluation set (dataset.evaluation_set).
    With a known target T(a) (embedded data):
      translation  G_AB(a) vs T(a)       how well G_AB found the hidden mapping
      identity     a vs T(a)             the baseline: do nothing
      cycle_A      G_BA(G_AB(a)) vs a    cycle consistency (eq. 2)
    Without one (a folder): only the cycle errors, A -> B -> A and B -> A -> B."""
    a, target, b = evaluation["a"], evaluation.get("target"), evaluation.get("b")
    fake_b = translate_batches(G_AB, a, device)
    rows = []
    if target is not None:
        rows.append({"key": "translation", "what": "G_AB(a) vs T(a)", **paired_report(fake_b, target)})
        rows.append({"key": "identity", "what": "a vs T(a) (identity baseline)", **paired_report(a, target)})
    rows.append({"key": "cycle_A", "what": "G_BA(G_AB(a)) vs a (cycle)",
                 **paired_report(translate_batches(G_BA, fake_b, device), a)})
    if target is None and b is not None:
        fake_a = translate_batches(G_BA, b, device)
        rows.append({"key": "cycle_B", "what": "G_AB(G_BA(b)) vs b (cycle)",
                     **paired_report(translate_batches(G_AB, fake_a, device), b)})
    n = {"n": int(a.shape[0]), "source": evaluation["source"]}
    return [{**r, **n} for r in rows]


def training_report(G_AB, G_BA, evaluation: dict, device) -> dict:
    """--eval-every's report (common.loop logs one per evaluation): translation_report's first
    row (G_AB(a) vs T(a) on the embedded data, the A -> B -> A cycle on a folder) as its l1,
    psnr and ssim, and every other row's numbers beside them as <key>_l1, <key>_psnr, <key>_ssim."""
    first, *others = translation_report(G_AB, G_BA, evaluation, device)
    report = {"what": first["what"], "l1": first["l1"], "psnr": first["psnr"], "ssim": first["ssim"],
              "pairs": first["source"]}
    for row in others:
        report.update({f"{row['key']}_{m}": row[m] for m in ("l1", "psnr", "ssim")})
    return report


def evaluation(opt, session, G_AB, G_BA):
    """--eval-every's measure (training_report: evaluate.py's rows) on the evaluation set,
    read once now; None when it is off (and off rank 0). It draws no random numbers."""
    if opt.eval_every <= 0 or not session.is_main:
        return None
    images = evaluation_set(vars(opt))
    return lambda: training_report(G_AB, G_BA, images, session.device)


# ------------------------------------------------------------------ a trained generator
def is_official_state(obj) -> bool:
    """A plain state dict of the official ResnetGenerator: its train.py's latest_net_G_A.pth /
    latest_net_G_B.pth, or a released model such as horse2zebra.pth."""
    return (isinstance(obj, dict) and "model.1.weight" in obj and "model.10.conv_block.1.weight" in obj
            and all(torch.is_tensor(v) for v in obj.values()))


def load_official(state: dict, path) -> tuple[torch.nn.Module, dict]:
    """Our G with the official weights. Files saved by PyTorch before 0.4 hold running-statistics
    entries for the InstanceNorm layers, which track none (the official test script drops them
    too); they are dropped here, and anything else that does not fit is named in one line."""
    state = {k: v for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    options = {**official_options(state), "official": True}
    G = build_generator(options)
    G.load_state_dict(renamed_state(state, official_key, G.state_dict(), path=path, what="the official ResNet generator"))
    print(f"loaded the official code's ResNet G ({OFFICIAL_CODE}, resnet_{options['n_blocks']}blocks, ngf "
          f"{options['ngf']}): one generator, whichever direction it was trained for")
    return G, options


def load_generator(path, direction: str, device, payload: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """G_AB (AtoB) or G_BA (BtoA) rebuilt from the checkpoint's options, in eval mode; or the one
    generator of the official code's G weights (detected by their keys), whatever `direction`."""
    if payload is None:
        payload = load_tensors(path)
        if is_official_state(payload):
            G, options = load_official(payload, path)
            return G.to(device).eval(), options
        if isinstance(payload, dict) and "model.model.0.weight" in payload:
            raise CheckpointError(f"{path} holds the official code's U-Net generator (--netG unet_*): CycleGAN's "
                                  f"G is a ResNet; pix2pix/ reads U-Net generators")
        if not (isinstance(payload, dict) and payload.get("format") == FORMAT_VERSION and "models" in payload):
            raise CheckpointError(f"{path} is neither a cyclegan checkpoint nor the official code's ResNet G weights "
                                  f"(latest_net_G_A.pth of {OFFICIAL_CODE})")
        check_model_name(payload, MODEL_NAME, path)
    name = GENERATORS[direction]
    try:
        G = build_generator(payload["options"])
    except KeyError as exc:
        raise CheckpointError(f"{path}: options lack {exc}, needed to rebuild the generator") from exc
    if name not in payload["models"]:
        raise CheckpointError(f"{path} holds no weights for {name}")
    load_state_checked(G, payload["models"][name], what=name, path=path)
    return G.to(device).eval(), payload["options"]


def export_official(G: torch.nn.Module, path, direction: str) -> Path:
    """Write one G as the official code saves it (a plain state dict), for its test.py."""
    path = atomic_save(to_official_state(G), path)
    print(f"wrote {path}: {GENERATORS.get(direction, 'G')} in the official format of {OFFICIAL_CODE}; put it in "
          f"checkpoints/NAME/ as latest_net_G.pth and run its test.py --name NAME --model test --no_dropout "
          f"--netG resnet_{G.n_blocks}blocks")
    return path


# pix2pix/utils.py holds the same padding
def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad a BxCxHxW batch on the right and bottom to multiples of `multiple` (4 for G's two
    stride-2 convolutions) by mirroring the border (replicating it where the image is too
    small to mirror); returns the padded batch and the original (H, W) to crop back to."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


@torch.no_grad()
def translate(G: torch.nn.Module, image: torch.Tensor, multiple: int, device) -> torch.Tensor:
    """G on one CxHxW image of any size (the networks are fully convolutional): padded to
    `multiple`, run, cropped back; fp32 on the CPU out."""
    x, (h, w) = pad_to_multiple(image.unsqueeze(0).to(device), multiple)
    return G(x)[..., :h, :w].float().cpu()[0]
