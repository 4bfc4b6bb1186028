"""What only ESRGAN needs: reading a generator from our checkpoints or from the official released
weights, the GAN stage's start from the PSNR-oriented model (Sec. 4.1), and network
interpolation between the two (Sec. 3.4).

The official x4 models (xinntao/ESRGAN: RRDB_PSNR_x4.pth, RRDB_ESRGAN_x4.pth) are plain state
dicts with the same keys as esrgan.model.RRDBNet; they are accepted wherever a checkpoint is, and
their shape (nf, nb, gc, scale) is read from the tensors.
"""
from __future__ import annotations

import re

import torch

from common.checkpoint import FORMAT_VERSION, check_model_name, load_state_checked, load_tensors
from common.errors import CheckpointError
from .model import build_generator, interpolate_state

MODEL_NAME = "esrgan"


def is_released_state(obj) -> bool:
    """A plain RRDBNet state dict, as the official code saves and releases it."""
    return isinstance(obj, dict) and "conv_first.weight" in obj and all(torch.is_tensor(v) for v in obj.values())


def released_options(state: dict) -> dict:
    """nf, nb, gc, scale and the channels of a plain RRDBNet state dict, read from its shapes."""
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"RRDB_trunk\.(\d+)\.", k))}
    ups = [k for k in state if re.fullmatch(r"upconv\d+\.weight", k)]
    return {"nf": state["conv_first.weight"].shape[0], "input_channels": state["conv_first.weight"].shape[1],
            "output_channels": state["conv_last.weight"].shape[0], "nb": len(blocks),
            "gc": state["RRDB_trunk.0.RDB1.conv1.weight"].shape[0] if blocks else 32, "scale": 2 ** len(ups),
            "stage": "released"}


def read_generator(path: str) -> tuple[dict, dict, dict]:
    """(G's state dict, options, {"what": a description, "step": the training step or None}) from
    an esrgan checkpoint of either stage or a released RRDBNet state dict; anything else is a
    one-line CheckpointError."""
    payload = load_tensors(path)
    if isinstance(payload, dict) and payload.get("format") == FORMAT_VERSION and "models" in payload:
        check_model_name(payload, MODEL_NAME, path)
        options = payload["options"]
        step = payload.get("step")
        return payload["models"]["G"], options, {"what": f"{options.get('stage')} stage, step {step}", "step": step}
    if is_released_state(payload):
        return payload, released_options(payload), {"what": "released RRDBNet weights", "step": None}
    raise CheckpointError(f"{path} is neither an esrgan checkpoint nor an RRDBNet state dict (the format of the "
                          f"official RRDB_ESRGAN_x4.pth)")


def load_init(G: torch.nn.Module, path: str) -> None:
    """The GAN stage starts from the PSNR-oriented model (Sec. 4.1, "to obtain more visually
    pleasing results" and avoid undesired local optima): an esrgan --stage psnr checkpoint, or
    the released RRDB_PSNR_x4.pth."""
    state, options, _ = read_generator(path)
    if options.get("stage") not in ("psnr", "released"):
        raise CheckpointError(f"--init {path}: not a --stage psnr checkpoint of esrgan (it is the "
                              f"{options.get('stage')} stage)")
    load_state_checked(G, state, what="G", path=path)


def load_generator(device, checkpoint: str | None = None, *, psnr_checkpoint: str | None = None,
                   gan_checkpoint: str | None = None, interp: float | None = None) -> tuple[torch.nn.Module, dict, dict]:
    """G in eval mode on `device`, its options and {"what", "step"}: from one checkpoint, or with
    `interp` = alpha the interpolation (1 - alpha) theta_PSNR + alpha theta_GAN (Sec. 3.4)."""
    if interp is None:
        state, options, info = read_generator(checkpoint)
    else:
        psnr_state, options, _ = read_generator(psnr_checkpoint)
        gan_state, gan_options, _ = read_generator(gan_checkpoint)
        shape = ("nf", "nb", "gc", "scale")
        if [options.get(k) for k in shape] != [gan_options.get(k) for k in shape]:
            raise CheckpointError(f"--psnr-checkpoint and --gan-checkpoint are different networks "
                                  f"({', '.join(f'{k} {options.get(k)}/{gan_options.get(k)}' for k in shape)}): "
                                  f"interpolation blends two trainings of one architecture")
        try:
            state = interpolate_state(psnr_state, gan_state, interp)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from exc
        info = {"what": f"interpolation alpha {interp:g}: {1 - interp:g} x PSNR + {interp:g} x GAN", "step": None}
    G = build_generator(options)
    load_state_checked(G, state, what="G", path=checkpoint or gan_checkpoint)
    return G.to(device).eval(), options, info
