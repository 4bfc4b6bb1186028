"""What only pix2pix needs: reading G from our checkpoints or from the authors' released weights,
running it the way the paper does at test time, on images of any size, and showing and
measuring its outputs beside their inputs and targets."""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import metrics
from common.checkpoint import FORMAT_VERSION, check_model_name, load_tensors, renamed_state
from common.errors import CheckpointError, DataError
from common.inference import load_generator as load_our_generator
from .dataset import as_images, evaluation_pairs
from .model import build_generator, official_key, to_official_state

MODEL_NAME = "pix2pix"
OFFICIAL_CODE = "junyanz/pytorch-CycleGAN-and-pix2pix"
# the models the official scripts/download_pix2pix_model.sh names, at the address it fetches them from
RELEASED = ("edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night")
RELEASED_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{}.pth"


def released_weights(name: str) -> str:
    """The path of a released model's G weights: cached, else downloaded once (common.pretrained)."""
    from common.pretrained import fetch

    return str(fetch(RELEASED_URL.format(name), what=f"the released pix2pix model {name}",
                     filename=f"pix2pix_{name}.pth", flag="--checkpoint"))


# ------------------------------------------- our checkpoints and the authors' released weights
def is_official_state(obj) -> bool:
    """A plain state dict of the official UnetGenerator (what its train.py saves as
    latest_net_G.pth and what the authors released, e.g. facades_label2photo.pth)."""
    return (isinstance(obj, dict) and "model.model.0.weight" in obj
            and all(torch.is_tensor(v) for v in obj.values()))


def official_options(state: dict) -> dict:
    """The options that rebuild the official U-Net of a state dict, read from its tensors: the
    number of levels from the depth of its keys (level d's keys hold d + 2 "model."), ngf and
    the channels from the outermost convolutions."""
    n_down = max(key.count("model.") for key in state) - 1
    first, last = state["model.model.0.weight"], state.get("model.model.3.weight")
    if last is None or n_down < 5:
        raise CheckpointError("the state dict is not a whole official U-Net (it lacks model.model.3.weight, its "
                              "last layer, or has fewer than 5 levels)")
    return {"netG": "unet", "unet_layout": "official", "ngf": first.shape[0], "image_size": 2 ** n_down,
            "input_channels": first.shape[1], "output_channels": last.shape[1], "data": None, "direction": "AtoB"}


def load_generator(path, device) -> tuple[nn.Module, dict, dict]:
    """G in eval mode on `device`, its options and {"what", "step"}: from a checkpoint of this
    folder, or from the official code's G weights (detected by their keys; G is then built in
    the official layout and a note says so). Anything else is a one-line CheckpointError."""
    payload = load_tensors(path)
    if isinstance(payload, dict) and payload.get("format") == FORMAT_VERSION and "models" in payload:
        check_model_name(payload, MODEL_NAME, path)
        G, options = load_our_generator(path, MODEL_NAME, build_generator, device, payload=payload)
        return G, options, {"what": f"step {payload.get('step')}", "step": payload.get("step")}
    if isinstance(payload, dict) and "model.1.weight" in payload and "model.10.conv_block.1.weight" in payload:
        raise CheckpointError(f"{path} holds the official code's ResNet generator (--netG resnet_*): this folder "
                              f"builds the paper's U-Net; cyclegan/ reads ResNet generators")
    if not is_official_state(payload):
        raise CheckpointError(f"{path} is neither a pix2pix checkpoint nor the official code's U-Net G weights "
                              f"(latest_net_G.pth of {OFFICIAL_CODE}, --netG unet_256 / unet_128)")
    options = official_options(payload)
    G = build_generator(options)
    n_down = len(G.encoder)
    G.load_state_dict(renamed_state(payload, lambda key: official_key(key, n_down), G.state_dict(), path=path,
                                    what="the official U-Net"))
    n_down = len(G.encoder)
    dropout = f"dropout in decoder layers 2-{n_down - 4}" if n_down > 5 else "no dropout"
    print(f"loaded the official code's U-Net G ({OFFICIAL_CODE}, unet_{options['image_size']}, ngf "
          f"{options['ngf']}, {options['input_channels']} -> {options['output_channels']} channels), built in its "
          f"layout: {dropout}, skips concatenated before the upsampled features")
    return G.to(device).eval(), options, {"what": "the official released weights", "step": None}


def export_official(G: nn.Module, path) -> Path:
    """Write G's weights as the official code saves its G (latest_net_G.pth, a plain state dict),
    so that its test.py runs them (--netG unet_<size> --norm batch)."""
    from common.checkpoint import atomic_save

    if not getattr(G, "skips", True):
        raise CheckpointError("the encoder-decoder ablation (--netG encoder-decoder) has no counterpart in the "
                              "official code: only the U-Net can be exported")
    path = atomic_save(to_official_state(G), path)
    note = "" if G.skip_first else (
        " (trained here in the paper's layout: the official network drops out in other decoder layers, so its "
        "outputs match ours exactly with --eval, and carry other noise without it)")
    print(f"wrote {path}: G in the official format of {OFFICIAL_CODE}; put it in checkpoints/NAME/ as "
          f"latest_net_G.pth and run its test.py --name NAME --model pix2pix --netG unet_"
          f"{2 ** len(G.encoder)} --norm batch{note}")
    return path


@contextlib.contextmanager
def paper_test_mode(G: nn.Module, seed: int):
    """G as the paper runs it at test time (Sec. 3.1 and 6.1): dropout on and BatchNorm with
    the test batch's own statistics ("instance normalization" at batch size 1), i.e. G in
    train mode, without gradients. Around it: the global RNG forked and seeded with `seed`
    (the dropout masks are reproducible and a training run's random stream is untouched),
    and BatchNorm's running statistics put back afterwards (they are what --eval-mode uses,
    and a sample grid must not move them)."""
    buffers = {k: v.clone() for k, v in G.named_buffers()}
    was_training = G.training
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        G.train()
        try:
            yield G
        finally:
            G.train(was_training)
            for k, v in G.named_buffers():
                v.copy_(buffers[k])


@torch.no_grad()
def run_generator(G: nn.Module, inputs: torch.Tensor, device, *, eval_mode: bool = False, seed: int = 0,
                  batch_size: int = 1) -> torch.Tensor:
    """G on a batch of inputs, `batch_size` at a time (1: each image's statistics are its own,
    as at training time), in the paper's test mode or, with eval_mode, in eval mode (no
    dropout, BatchNorm's running statistics). fp32 on the CPU out."""
    def forward():
        return torch.cat([G(x.to(device)).float().cpu() for x in inputs.split(batch_size)])

    if eval_mode:
        was_training = G.training
        G.eval()
        try:
            return forward()
        finally:
            G.train(was_training)
    with paper_test_mode(G, seed):
        return forward()


# cyclegan/utils.py holds the same padding (its translate() runs G on one image of any size)
def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad a BxCxHxW batch on the right and bottom to multiples of `multiple` (the U-Net's total
    stride, 2 ** its downsamplings) by mirroring the border (replicating it where the image is
    too small to mirror); returns the padded batch and the original (H, W) to crop back to."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


# ------------------------------------------------------------------ seeing and measuring
def input_output_target_rows(inputs: torch.Tensor, outputs: torch.Tensor,
                             targets: torch.Tensor | None = None) -> torch.Tensor:
    """Images interleaved as rows input | output | target (or input | output): a grid of
    them with nrow = 3 (or 2) shows one example per row."""
    parts = [inputs, outputs] + ([targets] if targets is not None else [])
    return torch.stack([p.float().cpu() for p in parts], dim=1).flatten(0, 1)


# cyclegan/utils.py holds the same measure (its translation_report rows)
def paired_report(outputs: torch.Tensor, targets: torch.Tensor) -> dict:
    """L1 (on [-1, 1], the scale of the L1 term of eq. 3), PSNR (dB) and SSIM (both on [0, 1])
    of outputs against their targets: the paired-translation measures of evaluate.py and --eval-every."""
    return {"l1": float((outputs.float() - targets.float()).abs().mean()),
            "psnr": metrics.psnr(outputs, targets), "ssim": metrics.ssim(outputs, targets)}


# ------------------------------------------------------- what a training run shows and measures
def sample_pairs(opt, dataset, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed pairs of the sample grids: held-out crops for the embedded tasks, the test
    (or val) split of a folder where it has one, else the first training pairs unjittered."""
    try:
        inputs, targets, _ = evaluation_pairs(opt, n)
    except DataError:  # a folder without test/ or val/: show training pairs
        items = [dataset[(i, 0)] for i in range(min(n, len(dataset)))]
        inputs, targets = torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])
    return inputs, targets


def sample_rows(G, opt, inputs: torch.Tensor, targets: torch.Tensor, device) -> torch.Tensor:
    """The grid's rows input | output | target, G run as at test time (generate.py's default)."""
    outputs = run_generator(G, inputs, device, seed=opt.seed)
    return input_output_target_rows(*as_images(opt.data, inputs, outputs, targets))


def evaluation(opt, session, G):
    """--eval-every's measure, evaluate.py's (L1 / PSNR / SSIM of G's outputs against the
    targets, on RGB images), on pairs read once now; None when it is off (and off rank 0)."""
    if opt.eval_every <= 0 or not session.is_main:
        return None
    inputs, targets, _ = evaluation_pairs(opt, opt.eval_n or 16)

    def evaluate() -> dict:
        outputs = run_generator(G, inputs, session.device, seed=opt.seed)
        return paired_report(*as_images(opt.data, inputs, outputs, targets)[1:])
    return evaluate
